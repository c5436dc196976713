// The StreamingLLM family (Xiao et al., "Efficient Streaming Language Models with Attention Sinks"):
//   sink_window:sinks=S,window=W  keep the first S tokens (attention sinks) and the last W (at least W,
//                                 fewer than W + block_size);
//   window:window=W               the same without sinks (the paper's dense-window baseline).
// Positions are those within the cache, as in the paper: slot s is at pos_offset + s (pos_offset = tokens
// dropped), which under RoPE is the same attention as position s. The window slides a whole number of
// blocks at a time: for k blocks, the slots [S, S + k*B) are dropped by copying the tail of block q+k into
// the tail of block q (q = S / B, only when S is not a multiple of B) and releasing blocks q+1 .. q+k; the
// window's keys keep their positions, and only the S sinks move (MoveSinks, from their original keys).
// See docs/design/kv_layout.md.
#include <string>

#include "kv/policy.h"

namespace cw::kv {
namespace {

class SinkWindowState final : public PolicyState {
 public:
  SinkWindowState(int64_t sinks, int64_t window, int64_t block) : sinks_(sinks), window_(window), block_(block) {}

  std::vector<KvAction> after_append(int64_t n) override {
    if (n <= 0) return {};
    SeqLayout& l = layout_;
    // The first `sinks_` tokens ever appended form the sink segment; the rest the window segment.
    int64_t left = n;
    if (l.n_seen < sinks_) {
      const int64_t take = std::min(left, sinks_ - l.n_seen);
      if (l.segments.empty()) l.segments.push_back({0, 0, 0, Segment::Kind::kSink});
      l.segments.back().n += take;
      l.n_slots += take;
      l.n_seen += take;
      left -= take;
    }
    if (left > 0) {
      if (l.segments.empty() || l.segments.back().kind != Segment::Kind::kWindow)
        l.segments.push_back({l.n_slots, 0, l.n_seen, Segment::Kind::kWindow});
      l.segments.back().n += left;
      l.n_slots += left;
      l.n_seen += left;
    }
    std::vector<KvAction> actions;
    const int64_t over = l.n_slots - sinks_ - window_;
    if (over < block_) return actions;
    // Slide k blocks at once (a long prompt chunk may need several): drop slots [S, S + k*B).
    const int64_t k = over / block_, drop = k * block_;
    const int64_t q = sinks_ / block_, r = sinks_ % block_;
    if (r == 0) {
      actions.push_back(DropSlots{q * block_, drop});
    } else {
      actions.push_back(CopySlots{(q + k) * block_ + r, q * block_ + r, block_ - r});
      actions.push_back(DropSlots{(q + 1) * block_, drop});
    }
    l.n_slots -= drop;
    l.pos_offset += drop;
    Segment& w = l.segments.back();
    w.token_begin += drop;
    w.n -= drop;
    if (sinks_ > 0) actions.push_back(MoveSinks{sinks_, l.pos_offset});
    return actions;
  }
  const SeqLayout& layout() const override { return layout_; }
  int64_t max_slots() const override { return sinks_ + window_ + block_ - 1; }
  int64_t moved_slots() const override { return sinks_; }

 private:
  const int64_t sinks_, window_, block_;
  SeqLayout layout_;
};

class SinkWindowPolicy final : public KvPolicy {
 public:
  SinkWindowPolicy(int64_t sinks, int64_t window, bool named_window)
      : sinks_(sinks), window_(window), named_window_(named_window) {}

  std::string spec() const override {
    if (named_window_) return "window:window=" + std::to_string(window_);
    return "sink_window:sinks=" + std::to_string(sinks_) + ",window=" + std::to_string(window_);
  }
  Result<std::unique_ptr<PolicyState>> make_state(int32_t block_size) const override {
    if (block_size <= 0) return invalid_argument("block size must be > 0");
    if (window_ < block_size)
      return invalid_argument("kv policy '" + spec() + "': the window (" + std::to_string(window_) +
                              ") is smaller than one KV block (" + std::to_string(block_size) +
                              " slots): make it at least " + std::to_string(block_size));
    return std::unique_ptr<PolicyState>(std::make_unique<SinkWindowState>(sinks_, window_, block_size));
  }
  bool lifts_context_limit() const override { return true; }

 private:
  const int64_t sinks_, window_;
  const bool named_window_;
};

Result<std::unique_ptr<KvPolicy>> create_sink_window(const PolicySpec& spec) {
  CW_RETURN_IF_ERROR(only_keys(spec, {"sinks", "window"}));
  CW_ASSIGN_OR_RETURN(const int64_t sinks, int_param(spec, "sinks", 4, 0, kMaxPolicyTokens));
  CW_ASSIGN_OR_RETURN(const int64_t window, int_param(spec, "window", 2044, 1, kMaxPolicyTokens));
  return std::unique_ptr<KvPolicy>(std::make_unique<SinkWindowPolicy>(sinks, window, false));
}

Result<std::unique_ptr<KvPolicy>> create_window(const PolicySpec& spec) {
  CW_RETURN_IF_ERROR(only_keys(spec, {"window"}));
  CW_ASSIGN_OR_RETURN(const int64_t window, int_param(spec, "window", 2048, 1, kMaxPolicyTokens));
  return std::unique_ptr<KvPolicy>(std::make_unique<SinkWindowPolicy>(0, window, true));
}

}  // namespace

// Registered in policy.cc; executed by runtime::PolicySession (run, perplexity, bench).
extern const KvPolicyFactory kSinkWindowPolicy = {
    "sink_window", "StreamingLLM: the first `sinks` tokens + the last `window` (positions re-indexed)",
    &create_sink_window};
extern const KvPolicyFactory kWindowPolicy = {"window", "the last `window` tokens only (StreamingLLM's baseline)",
                                              &create_window};

}  // namespace cw::kv
