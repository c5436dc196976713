// SeqLayout invariants and the default policy state (keep every slot, never act: `full`).
#include <algorithm>
#include <string>

#include "kv/policy.h"

namespace cw::kv {

Status SeqLayout::check() const {
  auto bad = [](const std::string& what) { return internal_error("kv layout: " + what); };
  if (n_slots < 0 || n_seen < n_slots) return bad("n_slots " + std::to_string(n_slots) + " vs n_seen " + std::to_string(n_seen));
  if (pos_offset < 0 || pos_offset > n_seen - n_slots) return bad("pos_offset " + std::to_string(pos_offset));
  int64_t slot = 0, token = -1;
  for (size_t i = 0; i < segments.size(); ++i) {
    const Segment& s = segments[i];
    if (s.n <= 0) return bad("segment " + std::to_string(i) + " is empty");
    if (s.slot_begin != slot) return bad("segment " + std::to_string(i) + " does not start where the previous ends");
    if (s.token_begin <= token || s.token_begin + s.n > n_seen)
      return bad("segment " + std::to_string(i) + " tokens out of order or past n_seen");
    slot += s.n;
    token = s.token_begin + s.n - 1;
  }
  if (slot != n_slots) return bad("segments cover " + std::to_string(slot) + " of " + std::to_string(n_slots) + " slots");
  return Status::ok();
}

void append_new_tokens(SeqLayout* l, int64_t n) {
  if (n <= 0) return;
  if (l->segments.empty() || l->segments.back().token_begin + l->segments.back().n != l->n_seen)
    l->segments.push_back({l->n_slots, 0, l->n_seen, Segment::Kind::kWindow});
  l->segments.back().n += n;
  l->n_slots += n;
  l->n_seen += n;
}

void append_slot_tokens(const std::vector<Segment>& segments, int64_t lo, int64_t hi, int64_t slot,
                        std::vector<Segment>* out) {
  for (const Segment& s : segments) {
    const int64_t a = std::max(lo, s.slot_begin), b = std::min(hi, s.slot_begin + s.n);
    if (a >= b) continue;
    const int64_t token = s.token_begin + (a - s.slot_begin);
    if (!out->empty() && out->back().token_begin + out->back().n == token) out->back().n += b - a;
    else out->push_back({slot + (a - lo), b - a, token, Segment::Kind::kWindow});
  }
}

namespace {

// Appends grow one window segment; nothing is ever dropped or moved.
class KeepAllState final : public PolicyState {
 public:
  explicit KeepAllState(const HeadSelection& select) { layout_.select = select; }
  std::vector<KvAction> after_append(int64_t n) override {
    append_new_tokens(&layout_, n);
    return {};
  }
  const SeqLayout& layout() const override { return layout_; }
  int64_t max_slots() const override { return -1; }

 private:
  SeqLayout layout_;
};

}  // namespace

Result<std::unique_ptr<PolicyState>> KvPolicy::make_state(int32_t block_size) const {
  if (block_size <= 0) return invalid_argument("block size must be > 0");
  return keep_all_state();
}

std::unique_ptr<PolicyState> keep_all_state(const HeadSelection& select) {
  return std::make_unique<KeepAllState>(select);
}

Status HeadSelection::check(int64_t resolved_span, int32_t block_size) const {
  const int64_t sink_slots = (sinks + block_size - 1) / block_size * block_size;
  const int64_t need = sink_slots + local + group + 2 * block_size;
  if (resolved_span < need)
    return invalid_argument("chunk selection: span " + std::to_string(resolved_span) + " cannot hold the sinks (" +
                            std::to_string(sink_slots) + " slots in whole blocks of " + std::to_string(block_size) +
                            "), the local window (" + std::to_string(local) + "), a row group (" + std::to_string(group) +
                            ") and a picked block: it needs at least " + std::to_string(need));
  return Status::ok();
}

}  // namespace cw::kv
