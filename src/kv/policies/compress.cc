// `compress:keep=P,obs=R` (SnapKV, Li et al. 2024; shared across layers as WindowKV does): once the prompt is
// in the cache, keep P% of its slots, token by token — the R observed rows' own slots (at most half the
// budget) and the slots those rows attended to most (softmax weights summed over query heads and layers by
// the forward pass, one value per slot, max-pooled over the 5 slots before and 1 after, so that the tokens
// following an attended one stay with it) — packed down in order by copies (CopySlots), the tail dropped.
// Kept keys stay at their own positions and generated tokens continue at the prompt's positions, as in
// SnapKV: the cache shrinks, positions do not change. The prompt itself must fit the model's training
// context (the policy does not lift the context rule). Nothing happens before the prompt ends, and nothing
// after.
#include <algorithm>
#include <numeric>
#include <string>

#include "kv/policy.h"

namespace cw::kv {
namespace {

class CompressState final : public PolicyState {
 public:
  CompressState(int64_t keep_pct, int64_t obs) : keep_pct_(keep_pct), obs_(obs) {}

  std::vector<KvAction> after_append(int64_t n) override {
    append_new_tokens(&layout_, n);  // nothing happens before the prompt ends (after_prompt)
    return {};
  }

  std::vector<KvAction> after_prompt(const std::vector<float>& mass) override {
    if (done_) return {};
    done_ = true;
    const int64_t n = layout_.n_slots;
    const int64_t keep = std::max<int64_t>(1, (n * keep_pct_ + 99) / 100);
    if (keep >= n) return {};
    // The observed rows' own slots stay (at most half the budget when the budget is smaller than them);
    // the rest of the budget goes to the slots [0, n - window) with the most attention, max-pooled over
    // neighbours — a slot takes the largest mass of the kPoolBefore slots before it, itself and the
    // kPoolAfter after it, so what follows an attended token (the value after "the key is") stays with it —
    // ties to the earlier slot.
    const int64_t window = std::min(obs_, std::max<int64_t>(1, keep / 2));
    const int64_t cand = n - window;
    const auto at = [&](int64_t j) { return j < static_cast<int64_t>(mass.size()) ? mass[static_cast<size_t>(j)] : 0.0f; };
    std::vector<float> pooled(static_cast<size_t>(cand), 0.0f);
    for (int64_t j = 0; j < cand; ++j)
      for (int64_t k = std::max<int64_t>(0, j - kPoolBefore); k <= std::min(cand - 1, j + kPoolAfter); ++k)
        pooled[static_cast<size_t>(j)] = std::max(pooled[static_cast<size_t>(j)], at(k));
    std::vector<int64_t> order(static_cast<size_t>(cand));
    std::iota(order.begin(), order.end(), int64_t{0});
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return pooled[static_cast<size_t>(a)] > pooled[static_cast<size_t>(b)];
    });
    std::vector<uint8_t> kept(static_cast<size_t>(n), 0);
    for (int64_t j = cand; j < n; ++j) kept[static_cast<size_t>(j)] = 1;
    for (int64_t i = 0; i < keep - window; ++i) kept[static_cast<size_t>(order[static_cast<size_t>(i)])] = 1;
    // Pack the kept slots down in order (their keys keep their positions: copies, no rotation), then drop
    // the tail.
    std::vector<KvAction> actions;
    std::vector<Segment> segs;
    int64_t slot = 0;
    for (int64_t j = 0; j < n;) {
      int64_t e = j;
      while (e < n && kept[static_cast<size_t>(e)] == kept[static_cast<size_t>(j)]) ++e;
      if (kept[static_cast<size_t>(j)] != 0) {
        if (slot != j) actions.push_back(CopySlots{j, slot, e - j});
        append_slot_tokens(layout_.segments, j, e, slot, &segs);
        slot += e - j;
      }
      j = e;
    }
    actions.push_back(DropSlots{slot, n - slot});
    layout_.pos_offset += n - slot;
    layout_.n_slots = slot;
    layout_.segments = std::move(segs);
    return actions;
  }

  const SeqLayout& layout() const override { return layout_; }
  int64_t max_slots() const override { return -1; }
  int64_t observe_rows() const override { return done_ ? 0 : obs_; }

 private:
  static constexpr int64_t kPoolBefore = 5, kPoolAfter = 1;
  const int64_t keep_pct_, obs_;
  bool done_ = false;
  SeqLayout layout_;
};

class CompressPolicy final : public KvPolicy {
 public:
  CompressPolicy(int64_t keep_pct, int64_t obs) : keep_pct_(keep_pct), obs_(obs) {}
  std::string spec() const override {
    return "compress:keep=" + std::to_string(keep_pct_) + ",obs=" + std::to_string(obs_);
  }
  Result<std::unique_ptr<PolicyState>> make_state(int32_t block_size) const override {
    if (block_size <= 0) return invalid_argument("block size must be > 0");
    return std::unique_ptr<PolicyState>(std::make_unique<CompressState>(keep_pct_, obs_));
  }

 private:
  const int64_t keep_pct_, obs_;
};

Result<std::unique_ptr<KvPolicy>> create_compress(const PolicySpec& spec) {
  CW_RETURN_IF_ERROR(only_keys(spec, {"keep", "obs"}));
  CW_ASSIGN_OR_RETURN(const int64_t keep, int_param(spec, "keep", 12, 1, 100));
  CW_ASSIGN_OR_RETURN(const int64_t obs, int_param(spec, "obs", 32, 1, 4096));
  return std::unique_ptr<KvPolicy>(std::make_unique<CompressPolicy>(keep, obs));
}

}  // namespace

extern const KvPolicyFactory kCompressPolicy = {
    "compress",
    "after the prompt, keep keep% of its KV: the blocks its last obs rows attended to most (SnapKV / WindowKV)",
    &create_compress};

}  // namespace cw::kv
