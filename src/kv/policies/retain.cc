// `retain:budget=N,probe=P,sinks=S,local=L` (InfiniRetri, Ye et al. 2025, "Infinite Retrieval: Attention
// Enhanced LLMs in Long-Context Processing"): read the input chunk by chunk; after each chunk the executor
// measures the attention that P probe rows — the prompt's last P tokens (where the question is), run after
// the chunk and removed again, or the chunk's own last rows when the prompt is not known — pay to each block
// of the cache (PolicyState::probe_rows / after_observe), and the state keeps, within N slots, the first S
// slots (whole blocks), the last L slots and the blocks with the most attention (max-pooled with their
// neighbours, so that a needle keeps its context); the other whole blocks are dropped. What is kept is packed:
// every kept slot after the first hole is re-rotated down (Reposition), so slot s is at position
// pos_offset + s and the cache never spans more than N + ubatch + P positions — within the trained window
// however long the input (the policy lifts the context rule). Memory: N + ubatch + P slots.
#include <algorithm>
#include <numeric>
#include <string>

#include "kv/policy.h"

namespace cw::kv {
namespace {

class RetainState final : public PolicyState {
 public:
  RetainState(int64_t budget, int64_t probe, int64_t sinks, int64_t local, int64_t block)
      : budget_(budget), probe_(probe), sinks_(sinks), local_(local), block_(block) {}

  std::vector<KvAction> after_append(int64_t n) override {
    append_new_tokens(&layout_, n);  // pruning waits for the observation (after_observe)
    return {};
  }

  std::vector<KvAction> after_observe(const std::vector<float>& mass) override {
    const int64_t n = layout_.n_slots, B = block_;
    if (n <= budget_) return {};
    const int64_t n_blocks = (n + B - 1) / B;
    const int64_t sink_blocks = (sinks_ + B - 1) / B;
    const int64_t local_first = std::max<int64_t>(0, n - local_) / B;  // blocks from here on stay (the last is partial)
    if (local_first <= sink_blocks) return {};
    std::vector<uint8_t> keep(static_cast<size_t>(n_blocks), 0);
    for (int64_t b = 0; b < sink_blocks; ++b) keep[static_cast<size_t>(b)] = 1;
    for (int64_t b = local_first; b < n_blocks; ++b) keep[static_cast<size_t>(b)] = 1;
    int64_t room = budget_ - sink_blocks * B - (n - local_first * B);
    const auto at = [&](int64_t b) { return b < static_cast<int64_t>(mass.size()) ? mass[static_cast<size_t>(b)] : 0.0f; };
    std::vector<int64_t> order(static_cast<size_t>(local_first - sink_blocks));
    std::iota(order.begin(), order.end(), sink_blocks);
    std::vector<float> pooled(static_cast<size_t>(local_first), 0.0f);
    for (int64_t b = sink_blocks; b < local_first; ++b)
      pooled[static_cast<size_t>(b)] = std::max({b > 0 ? at(b - 1) : 0.0f, at(b), at(b + 1)});
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return pooled[static_cast<size_t>(a)] > pooled[static_cast<size_t>(b)];
    });
    for (int64_t b : order) {
      if (room < B) break;
      keep[static_cast<size_t>(b)] = 1;
      room -= B;
    }
    // Drop the other blocks (last range first, so that earlier slot numbers stay valid), then move every
    // kept run after the first hole down to its packed slots.
    std::vector<KvAction> drops, moves;
    std::vector<Segment> segs;
    int64_t slot = 0;
    for (int64_t b = 0; b < n_blocks;) {
      int64_t e = b;
      while (e < n_blocks && keep[static_cast<size_t>(e)] == keep[static_cast<size_t>(b)]) ++e;
      const int64_t lo = b * B, hi = std::min(e * B, n);
      if (keep[static_cast<size_t>(b)] == 0) {
        drops.push_back(DropSlots{lo, hi - lo});
      } else {
        if (lo != slot) moves.push_back(Reposition{slot, hi - lo, slot - lo});
        append_slot_tokens(layout_.segments, lo, hi, slot, &segs);
        slot += hi - lo;
      }
      b = e;
    }
    if (drops.empty()) return {};
    std::reverse(drops.begin(), drops.end());
    drops.insert(drops.end(), moves.begin(), moves.end());
    layout_.n_slots = slot;
    layout_.segments = std::move(segs);
    return drops;
  }

  const SeqLayout& layout() const override { return layout_; }
  // The kept slots plus the probe's rows (an append of k tokens needs k more).
  int64_t max_slots() const override { return budget_ + probe_; }
  int64_t probe_rows() const override { return probe_; }

 private:
  const int64_t budget_, probe_, sinks_, local_, block_;
  SeqLayout layout_;
};

class RetainPolicy final : public KvPolicy {
 public:
  RetainPolicy(int64_t budget, int64_t probe, int64_t sinks, int64_t local)
      : budget_(budget), probe_(probe), sinks_(sinks), local_(local) {}
  std::string spec() const override {
    return "retain:budget=" + std::to_string(budget_) + ",probe=" + std::to_string(probe_) +
           ",sinks=" + std::to_string(sinks_) + ",local=" + std::to_string(local_);
  }
  Result<std::unique_ptr<PolicyState>> make_state(int32_t block_size) const override {
    if (block_size <= 0) return invalid_argument("block size must be > 0");
    const int64_t sink_slots = (sinks_ + block_size - 1) / block_size * block_size;
    // The sinks, the local window (it may reach into a partial block on either side) and one picked block.
    const int64_t need = sink_slots + local_ + 3 * int64_t{block_size};
    if (budget_ < need)
      return invalid_argument("kv policy '" + spec() + "': the budget (" + std::to_string(budget_) +
                              " slots) cannot hold the sinks (" + std::to_string(sink_slots) + " slots in whole blocks of " +
                              std::to_string(block_size) + "), the local window (" + std::to_string(local_) +
                              ") and a picked block: make it at least " + std::to_string(need));
    return std::unique_ptr<PolicyState>(std::make_unique<RetainState>(budget_, probe_, sinks_, local_, block_size));
  }
  bool lifts_context_limit() const override { return true; }

 private:
  const int64_t budget_, probe_, sinks_, local_;
};

Result<std::unique_ptr<KvPolicy>> create_retain(const PolicySpec& spec) {
  CW_RETURN_IF_ERROR(only_keys(spec, {"budget", "probe", "sinks", "local"}));
  CW_ASSIGN_OR_RETURN(const int64_t budget, int_param(spec, "budget", 512, 1, kMaxPolicyTokens));
  CW_ASSIGN_OR_RETURN(const int64_t probe, int_param(spec, "probe", 32, 1, 4096));
  CW_ASSIGN_OR_RETURN(const int64_t sinks, int_param(spec, "sinks", 16, 0, kMaxPolicyTokens));
  CW_ASSIGN_OR_RETURN(const int64_t local, int_param(spec, "local", 128, 0, kMaxPolicyTokens));
  return std::unique_ptr<KvPolicy>(std::make_unique<RetainPolicy>(budget, probe, sinks, local));
}

}  // namespace

extern const KvPolicyFactory kRetainPolicy = {
    "retain",
    "InfiniRetri: read chunk by chunk, keep within `budget` slots the blocks the prompt's last `probe` tokens "
    "attend to most (+ sinks, local), packed",
    &create_retain};

}  // namespace cw::kv
