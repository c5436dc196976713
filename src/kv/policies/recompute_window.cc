// recompute_window:window=W — StreamingLLM's quality baseline ("sliding window with re-computation",
// Xiao et al., Fig. 1c): before every step the KV of the last W - 1 tokens is rebuilt from those tokens
// alone, so the next token attends to exactly W tokens whose states never saw anything older. Exact but
// O(W^2) per generated token — the cost sink_window avoids; measured against it in docs/perf.md.
//
// Layout: one window segment of min(n_seen, W - 1) slots holding the latest tokens, at positions
// pos_offset + slot with pos_offset = tokens forgotten. Once more than W - 1 tokens are held, an append
// ends with Recompute{0, W - 1} (the executor discards the cache and runs the window's tokens again). With
// a micro-batch of k rows, the rows of one forward see up to W - 1 + k keys (the window is rebuilt between
// forwards, as sink_window slides between them).
#include <string>

#include "kv/policy.h"

namespace cw::kv {
namespace {

class RecomputeWindowState final : public PolicyState {
 public:
  explicit RecomputeWindowState(int64_t window) : keep_(window - 1) {}

  std::vector<KvAction> after_append(int64_t n) override {
    if (n <= 0) return {};
    SeqLayout& l = layout_;
    l.n_seen += n;
    l.n_slots += n;
    if (l.n_slots <= keep_) {
      if (l.segments.empty()) l.segments.push_back({0, 0, 0, Segment::Kind::kWindow});
      l.segments.back().n = l.n_slots;
      return {};
    }
    l.n_slots = keep_;
    l.pos_offset = l.n_seen - keep_;
    l.segments.assign(1, Segment{0, keep_, l.pos_offset, Segment::Kind::kWindow});
    if (keep_ == 0) l.segments.clear();
    return {Recompute{0, keep_}};
  }
  const SeqLayout& layout() const override { return layout_; }
  int64_t max_slots() const override { return keep_; }

 private:
  const int64_t keep_;
  SeqLayout layout_;
};

class RecomputeWindowPolicy final : public KvPolicy {
 public:
  explicit RecomputeWindowPolicy(int64_t window) : window_(window) {}
  std::string spec() const override { return "recompute_window:window=" + std::to_string(window_); }
  Result<std::unique_ptr<PolicyState>> make_state(int32_t block_size) const override {
    if (block_size <= 0) return invalid_argument("block size must be > 0");
    return std::unique_ptr<PolicyState>(std::make_unique<RecomputeWindowState>(window_));
  }
  bool lifts_context_limit() const override { return true; }

 private:
  const int64_t window_;
};

Result<std::unique_ptr<KvPolicy>> create(const PolicySpec& spec) {
  CW_RETURN_IF_ERROR(only_keys(spec, {"window"}));
  CW_ASSIGN_OR_RETURN(const int64_t window, int_param(spec, "window", 2048, 1, kMaxPolicyTokens));
  return std::unique_ptr<KvPolicy>(std::make_unique<RecomputeWindowPolicy>(window));
}

}  // namespace

extern const KvPolicyFactory kRecomputeWindowPolicy = {
    "recompute_window", "the last `window` tokens, their KV rebuilt from them alone every step (StreamingLLM's "
    "quality baseline; O(window^2) per token)", &create};

}  // namespace cw::kv
