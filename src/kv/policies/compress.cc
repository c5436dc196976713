// `compress:keep=P,obs=R` (SnapKV, Li et al. 2024; shared across layers as WindowKV does): once the prompt is
// in the cache, keep P% of its slots — the blocks its last R rows attended to most (softmax weights summed
// over query heads and layers by the forward pass, then max-pooled over neighbouring blocks so that a
// needle's block keeps its context), plus the first block (attention sink) and the blocks of the R
// observed rows — and drop the rest. Kept keys stay at their own positions and generated tokens continue at
// the prompt's positions, as in SnapKV: the cache shrinks, positions do not change. The prompt itself must
// fit the model's training context (the policy does not lift the context rule). Nothing happens before the
// prompt ends, and nothing after.
#include <algorithm>
#include <numeric>
#include <string>

#include "kv/policy.h"

namespace cw::kv {
namespace {

class CompressState final : public PolicyState {
 public:
  CompressState(int64_t keep_pct, int64_t obs, int64_t block) : keep_pct_(keep_pct), obs_(obs), block_(block) {}

  std::vector<KvAction> after_append(int64_t n) override {
    if (n <= 0) return {};
    if (layout_.segments.empty() || layout_.segments.back().token_begin + layout_.segments.back().n != layout_.n_seen)
      layout_.segments.push_back({layout_.n_slots, 0, layout_.n_seen, Segment::Kind::kWindow});
    layout_.segments.back().n += n;
    layout_.n_slots += n;
    layout_.n_seen += n;
    return {};
  }

  std::vector<KvAction> after_prompt(const std::vector<float>& mass) override {
    if (done_) return {};
    done_ = true;
    const int64_t n = layout_.n_slots, B = block_;
    const int64_t n_full = n / B;  // only whole blocks are dropped; the partial last block stays
    const int64_t keep_blocks = std::max<int64_t>(1, (n * keep_pct_ / 100 + B - 1) / B);
    const int64_t obs_first = std::max<int64_t>(0, n - obs_) / B;  // blocks of the observed rows stay
    if (n_full <= 1 || obs_first <= 1 || keep_blocks >= n_full) return {};
    std::vector<uint8_t> keep(static_cast<size_t>(n_full), 0);
    keep[0] = 1;
    int64_t kept = 1;
    for (int64_t b = obs_first; b < n_full; ++b) {
      keep[static_cast<size_t>(b)] = 1;
      ++kept;
    }
    // Candidates [1, obs_first), ranked by the block's mass max-pooled with its neighbours.
    std::vector<float> pooled(static_cast<size_t>(obs_first), 0.0f);
    const auto at = [&](int64_t b) { return b < static_cast<int64_t>(mass.size()) ? mass[static_cast<size_t>(b)] : 0.0f; };
    for (int64_t b = 1; b < obs_first; ++b) pooled[static_cast<size_t>(b)] = std::max({at(b - 1), at(b), at(b + 1)});
    std::vector<int64_t> order(static_cast<size_t>(obs_first - 1));
    std::iota(order.begin(), order.end(), int64_t{1});
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return pooled[static_cast<size_t>(a)] > pooled[static_cast<size_t>(b)];
    });
    for (int64_t b : order) {
      if (kept >= keep_blocks) break;
      keep[static_cast<size_t>(b)] = 1;
      ++kept;
    }
    // Drop the other whole blocks, last range first so that earlier slot numbers stay valid.
    std::vector<KvAction> actions;
    std::vector<Segment> segs;
    int64_t slot = 0;
    for (int64_t b = 0; b < n_full;) {
      int64_t e = b;
      while (e < n_full && keep[static_cast<size_t>(e)] == keep[static_cast<size_t>(b)]) ++e;
      if (keep[static_cast<size_t>(b)] != 0) {
        segs.push_back({slot, (e - b) * B, b * B, Segment::Kind::kWindow});
        slot += (e - b) * B;
      } else {
        actions.push_back(DropSlots{b * B, (e - b) * B});
      }
      b = e;
    }
    if (n > n_full * B) {
      if (!segs.empty() && segs.back().token_begin + segs.back().n == n_full * B) segs.back().n += n - n_full * B;
      else segs.push_back({slot, n - n_full * B, n_full * B, Segment::Kind::kWindow});
      slot += n - n_full * B;
    }
    std::reverse(actions.begin(), actions.end());
    layout_.pos_offset += n - slot;
    layout_.n_slots = slot;
    layout_.segments = std::move(segs);
    return actions;
  }

  const SeqLayout& layout() const override { return layout_; }
  int64_t max_slots() const override { return -1; }
  int64_t observe_rows() const override { return done_ ? 0 : obs_; }

 private:
  const int64_t keep_pct_, obs_, block_;
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
    return std::unique_ptr<PolicyState>(std::make_unique<CompressState>(keep_pct_, obs_, block_size));
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
