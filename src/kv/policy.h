// KvPolicy: the long-context KV policy interface of DESIGN.md §3 (docs/design/kv_layout.md). A policy is
// created from a spec string "name[:key=value,key=value...]" through the registry below (`--kv-policy full`,
// `sink_window:sinks=4,window=2044`, ...). Each sequence gets its own PolicyState (make_state): a small state
// machine that keeps the sequence's KV layout and, after every append, returns the actions (copy slots,
// drop blocks, re-rotate the sinks, recompute a range) that the executor applies to the paged cache before
// the next forward: runtime::PolicySession for one sequence (run, perplexity, bench), the Scheduler for the
// Engine (batch, server). A third question, place_reused(), says whether a cached chunk may be reused at a
// new position. `full` (policies/full.cc) keeps every slot and never acts. Adding a policy:
// docs/howto/add_kv_policy.md.
//
// Thread-safety: a policy object is immutable after creation (the methods are const) and may be shared by
// many sequences and threads; a PolicyState belongs to one sequence. Failure: make_kv_policy() validates the
// spec (unknown name, unknown or malformed parameter -> kInvalidArgument naming the problem and the allowed
// values); make_state() rejects parameters that do not fit the block size.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/status.h"

namespace cw::kv {

// Half-open range of KV slots [begin, end) of one sequence.
struct SlotRange {
  int64_t begin = 0;
  int64_t end = 0;
  bool operator==(const SlotRange&) const = default;
};

// A cached chunk of n_tokens, computed at position src_position, that a new request would
// reuse at dst_position.
struct ReusedChunk {
  int64_t src_position = 0;
  int64_t dst_position = 0;
  int64_t n_tokens = 0;
};
struct Placement {
  bool reuse = false;             // false: compute the chunk from scratch
  double position_delta = 0;      // re-rotate the cached keys by this many positions (exact fp32 RoPE)
  std::vector<SlotRange> recompute;  // chunk-relative slots to recompute after placing (Cache-Craft)
};

// --- Per-sequence state: layout and actions (docs/design/kv_layout.md) -----------------------------------
//
// A policy keeps a sequence's slots compact ([0, n_slots), no holes) and the RoPE position of slot s equal
// to pos_offset + s (model::BatchSeq::pos_offset); it changes what the slots hold through actions that the
// executor applies, in order, after an append and before the next forward. So the forward pass, the
// attention kernels and the scheduler's row budgeting stay as they are; a new policy is a new state
// machine, nothing else. Attention depends only on position differences, so pos_offset + s is the paper's
// "position within the cache" s, and a key, once written, never has to move (re-rotating stored fp16 keys
// at every slide would accumulate a rounding per move) — except attention sinks, which MoveSinks
// re-rotates from their keys as first written.

// Slots [slot_begin, slot_begin + n) hold the KV of the sequence's tokens [token_begin, token_begin + n).
struct Segment {
  enum class Kind : uint8_t { kSink, kWindow };
  int64_t slot_begin = 0;
  int64_t n = 0;
  int64_t token_begin = 0;
  Kind kind = Kind::kWindow;
  bool operator==(const Segment&) const = default;
};

// Chunk-selective attention (LongHeads-style; executed inside the forward pass by model::ChunkSelect, where
// the queries and the key summaries are): when `on`, a row whose causal span exceeds `span` slots sees, per
// KV head, the first `sinks` slots, up to `top_k` blocks picked by a query·key-summary bound (each with
// `expand` neighbour blocks on either side) and the `local` slots before its row group of `group` rows,
// packed at consecutive positions, at most `span` in all. span 0: the model's training context.
struct HeadSelection {
  bool on = false;
  int64_t span = 0, sinks = 0, local = 0, top_k = 0, expand = 0, group = 1;
  bool operator==(const HeadSelection&) const = default;
  // kInvalidArgument (naming the parameters) unless span (resolved: > 0) holds the sinks rounded up to whole
  // blocks, the local window, one row group and one picked block.
  Status check(int64_t resolved_span, int32_t block_size) const;
};

struct SeqLayout {
  int64_t n_slots = 0;  // slots in use: [0, n_slots); the RoPE position of slot s is pos_offset + s
  int64_t pos_offset = 0;  // tokens dropped so far (a window key stays at its token's own position)
  int64_t n_seen = 0;   // tokens appended since the start; n_seen - n_slots were dropped
  std::vector<Segment> segments;  // in slot order, contiguous, covering [0, n_slots); token ranges ascending
  // Per query head, the slots it sees (chunk-selective policies); empty = every head sees every slot.
  std::vector<std::vector<SlotRange>> visibility;
  // Chunk-selective attention over the slots (per KV head, chosen in the forward pass).
  HeadSelection select;
  // kInternal naming the first broken invariant (the list above).
  Status check() const;
};

// Copy K and V of slots [src, src + n) to [dst, dst + n), every layer (dst < src; ranges may span blocks).
struct CopySlots {
  int64_t src = 0, dst = 0, n = 0;
  bool operator==(const CopySlots&) const = default;
};
// Slots [begin, begin + n) are gone: their blocks leave the table (begin, n multiples of the block size)
// and every later slot moves down by n. Or [begin, begin + n) is the sequence's tail (begin + n = the slots
// held): the slots from `begin` on are discarded, whole blocks or not.
struct DropSlots {
  int64_t begin = 0, n = 0;
  bool operator==(const DropSlots&) const = default;
};
// Slots [0, n) hold the sequence's first n tokens (attention sinks): write their keys at positions
// [pos_offset, pos_offset + n), re-rotated from the keys as first written at [0, n) (the executor keeps
// that copy), so a sink key is rotated once from its original, never cumulatively
// (kernels::rope_reposition: exact angles from both positions, one rounding).
struct MoveSinks {
  int64_t n = 0, pos_offset = 0;
  bool operator==(const MoveSinks&) const = default;
};
// Slots [begin, begin + n) — the sequence's last n slots after the preceding actions — are written again:
// every slot from `begin` on is discarded, and the tokens the layout says slots [begin, begin + n) hold
// (segments' token ranges) run through the model again as prompt rows at positions pos_offset + slot,
// attending to slots [0, begin) and causally to each other. The executor keeps the tokens of the slots it
// holds (and of the latest append) for this. `recompute_window` (StreamingLLM's quality baseline) emits
// Recompute{0, W - 1}: rebuild the window's KV from its own tokens alone before every step.
struct Recompute {
  int64_t begin = 0, n = 0;
  bool operator==(const Recompute&) const = default;
};
// Slots [begin, begin + n) hold keys rotated at positions p (their own): rotate them to p + delta (one rounding
// per move). `retain` packs what it keeps this way, so that its slot s is again at position pos_offset + s.
struct Reposition {
  int64_t begin = 0, n = 0, delta = 0;
  bool operator==(const Reposition&) const = default;
};
using KvAction = std::variant<CopySlots, DropSlots, MoveSinks, Recompute, Reposition>;

// One sequence's policy state. Not thread-safe (the sequence's owner calls it); created by
// KvPolicy::make_state.
class PolicyState {
 public:
  virtual ~PolicyState() = default;
  // `n` tokens were appended at slots [n_slots, n_slots + n). Updates the layout and returns the actions
  // that bring the cache to it, in the order to apply them.
  virtual std::vector<KvAction> after_append(int64_t n) = 0;
  virtual const SeqLayout& layout() const = 0;
  // The most slots the sequence holds after its actions (-1: unbounded); an append of k tokens needs k
  // more before they run.
  virtual int64_t max_slots() const = 0;
  // The most slots MoveSinks will name (the executor keeps their keys as first written).
  virtual int64_t moved_slots() const { return 0; }
  // Observation window (SnapKV / WindowKV): how many of the prompt's last rows' attention the state wants
  // to see (0: none). The executor then has the forward pass that computes the prompt's last rows add their
  // softmax weights, summed over query heads and layers, into one value per slot of the cache, and calls
  // after_prompt with them once the whole prompt is appended (after its after_append).
  virtual int64_t observe_rows() const { return 0; }
  // `slot_mass[s]`: the attention the observed rows paid to slot s (at least n_slots entries). Returns the
  // actions to apply before the first generated token runs.
  virtual std::vector<KvAction> after_prompt(const std::vector<float>& slot_mass) {
    (void)slot_mass;
    return {};
  }
  // Retention (InfiniRetri): after each forward of the sequence the state wants the attention that
  // probe_rows() query rows pay to each block of the cache (summed over query heads and layers, as above,
  // but one value per block: block_mass[b] for slots [b * B, (b + 1) * B)):
  // when the executor knows the prompt, its last probe_rows() tokens, run after the chunk as a probe at the
  // next positions and then removed (so every chunk is read "with the question in mind"); otherwise the
  // forward's own last rows. after_observe gets it; its actions run before the next forward. 0: no probe.
  virtual int64_t probe_rows() const { return 0; }
  virtual std::vector<KvAction> after_observe(const std::vector<float>& block_mass) {
    (void)block_mass;
    return {};
  }
};

// `n` tokens were appended at slots [n_slots, n_slots + n) of `l`: its last segment grows when it ends at the
// latest token seen, else a window segment starts there (the after_append of a state that keeps every new
// token until it decides otherwise).
void append_new_tokens(SeqLayout* l, int64_t n);

// Appends to `out` the tokens that `segments` say slots [lo, hi) hold, as segments from slot `slot` on
// (merging with out's last segment where the tokens continue it): how a state that keeps some slots and
// packs them down describes its new layout.
void append_slot_tokens(const std::vector<Segment>& segments, int64_t lo, int64_t hi, int64_t slot,
                        std::vector<Segment>* out);

// The state of a policy that keeps every slot and never acts (`full`; `chunk_select` with its selection).
std::unique_ptr<PolicyState> keep_all_state(const HeadSelection& select = {});

class KvPolicy {
 public:
  virtual ~KvPolicy() = default;

  // A fresh state for one sequence of a cache with `block_size` slots per block. Errors (kInvalidArgument):
  // parameters that do not fit the block size (e.g. a window smaller than a block). The default keeps
  // every slot and never acts (`full`).
  virtual Result<std::unique_ptr<PolicyState>> make_state(int32_t block_size) const;

  // The canonical spec string this policy was created from (name plus every parameter, defaults included).
  virtual std::string spec() const = 0;

  // Whether and how a cached chunk is reused at a new position. Default: only at its own position, as
  // computed (exact prefix reuse; no re-rotation, no recompute).
  virtual Placement place_reused(const ReusedChunk& chunk) const;

  // Whether the policy lifts the context rule (model::check_context: prompt + tokens to generate within
  // the model's training context), because it keeps every sequence within the trained positions however
  // long it grows (a sink+window policy would). `full` keeps everything: it does not.
  virtual bool lifts_context_limit() const { return false; }
};

// A parsed spec: "name:key=value,key=value". Keys are unique; values are non-empty strings.
struct PolicySpec {
  std::string name;
  std::map<std::string, std::string> params;
};
// Errors (kInvalidArgument): empty name, a parameter without '=', an empty key or value, a repeated key.
Result<PolicySpec> parse_policy_spec(std::string_view spec);

// One registry entry. `create` must reject unknown parameters (kInvalidArgument listing the known ones).
struct KvPolicyFactory {
  const char* name;
  const char* summary;  // one line for --help
  Result<std::unique_ptr<KvPolicy>> (*create)(const PolicySpec& spec);
};

// The registered policies (registry in policy.cc: one line per policy).
const std::vector<const KvPolicyFactory*>& kv_policies();
// "full, ..." for error messages and --help.
std::string supported_kv_policies();

// The largest token count a policy parameter may name (2^24, the largest KV cache).
inline constexpr int64_t kMaxPolicyTokens = int64_t{1} << 24;

// Parameter helpers for policy factories. int_param: the integer value of `key` in [lo, hi], `fallback`
// when absent; kInvalidArgument naming the policy, the key and the range otherwise. only_keys: every
// parameter of `spec` is one of `keys`, else kInvalidArgument listing them.
Result<int64_t> int_param(const PolicySpec& spec, const std::string& key, int64_t fallback, int64_t lo, int64_t hi);
Status only_keys(const PolicySpec& spec, std::initializer_list<const char*> keys);

// Creates a policy from its spec string. Errors: malformed spec, unknown name (listing the supported ones),
// parameters the policy rejects.
Result<std::unique_ptr<KvPolicy>> make_kv_policy(std::string_view spec);

}  // namespace cw::kv
