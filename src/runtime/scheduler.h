// Scheduler: decides what one forward pass computes (DESIGN.md §3). It owns the sequences of the
// requests, the block accounting (kv::BlockManager) and the per-request samplers; it never touches the KV
// tensors or the model. A StepExecutor (the Forward pass over a KvCache in the Engine, a fake in tests)
// runs the plans it produces.
//
// A sequence is the token list prompt ++ generated; its KV cache holds the first n_computed of them; the
// rest are "pending". A step (plan()) builds one batch under a token budget (batch_tokens):
//
//   kChunked (SARATHI): 1. every decoding sequence (pending == 1 after the prompt) gets its row, oldest
//     admission first; 2. sequences still prefilling get chunks of their pending tokens, oldest first, as
//     long as budget remains; 3. waiting requests are admitted (FIFO) while budget remains and fewer than
//     max_running run, each with a first chunk.
//   kPrefillFirst (the baseline): while any prompt is waiting or prefilling, a step holds only whole
//     prompts (at least one, then more while the budget holds them) and the decodes wait; otherwise a
//     step holds every decode.
//
// Admission first asks BlockManager::match_prefix for a cached prefix (cached_tokens; the policy's
// place_reused() must accept it) and computes only the rest. Blocks written in the current step are never
// matched (their K/V do not exist before the forward pass ends): such an admission waits one step.
//
// KV exhaustion. A decode that cannot get a block preempts the most recently admitted running sequence
// that has no rows in this step (possibly itself): its blocks are freed (full ones stay cached, so a
// re-admission usually matches them) and it goes back to the front of the queue to recompute prompt +
// generated tokens; its sampler keeps its state, so the output is what it would have been. A prefill chunk
// that does not fit preempts newer sequences the same way, then shrinks to what fits; new admissions
// never preempt. The oldest running sequence therefore always progresses, and a request is accepted only
// if it fits alone (validate()): no deadlock, no lost request.
//
// KV policies (docs/design/kv_layout.md). A request runs under its own policy (SeqRequest::kv_policy) or
// the scheduler's. When the policy's state acts (sink_window, window, recompute_window: max_slots() >= 0),
// the sequence's KV holds layout().n_slots slots at RoPE positions pos_offset + slot; after each step the
// state's actions are applied to the block accounting (drops release blocks, copies and key moves first make
// their blocks private, the sinks' first-written keys are kept in held blocks, a Recompute truncates and
// queues the tokens to run again before the next new row) and to the KV tensors through the plan's kv_ops;
// the first action detaches the sequence from prefix registration. Such a request may run past the KV cache
// size: it needs max_slots() + one step's rows, and each step gives it at most n_ctx_train - max_slots()
// new rows (every position difference stays within the training context). A cached prefix is reused up to
// max_slots() tokens (whole blocks). Preemption restarts the state: the request replays from its first token.
//
// A row's logits are requested only where its sequence reaches the end of its tokens; complete() samples
// the next token from them (greedy when temperature == 0), streams it, and finishes the request at
// n_predict tokens, eos, or when its stop_after() says so (kStop); expire() ends requests past their
// deadline (kDeadline).
//
// Thread-safety: none; one thread (the Engine's step loop) drives a Scheduler. validate() is const and
// reads only immutable configuration, so it may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/status.h"
#include "chunkwise/generation_types.h"
#include "kv/block_manager.h"
#include "kv/policy.h"
#include "model/forward.h"
#include "runtime/sampler.h"

namespace cw::runtime {

using RequestId = int64_t;

enum class Schedule : uint8_t { kChunked, kPrefillFirst };
// "chunked" | "prefill-first"; anything else -> kInvalidArgument listing both.
Result<Schedule> schedule_from_name(std::string_view name);
const char* schedule_name(Schedule s);

struct SchedulerOptions {
  int32_t n_blocks = 0;        // KV blocks in the pool (> 0)
  int32_t block_size = 16;     // token slots per block (> 0)
  int64_t batch_tokens = 512;  // token budget of one step (>= 1)
  int64_t max_running = 16;    // sequences admitted at once (>= 1)
  Schedule schedule = Schedule::kChunked;
  int32_t n_vocab = 0;         // > 0
  // The model's training context: validate() applies the context rule (model::check_context) unless the
  // KV policy lifts it. 0 = no rule (executors without a model, in tests).
  int64_t n_ctx_train = 0;
  // The context size the engine was asked for (EngineOptions::ctx_tokens): validate() refuses a request
  // whose prompt + n_predict exceeds it, under the same exception as the training context. 0 = none.
  int64_t n_ctx = 0;
};

// One generation request, as token ids.
struct SeqRequest {
  std::vector<int32_t> prompt;  // non-empty, ids in [0, n_vocab)
  int64_t n_predict = 64;       // >= 0; 0 = prompt only
  SamplerParams sampling;
  int32_t eos = -1;             // stop token (reported, not evaluated); -1 = none
  // Keep the logits each generated token was sampled from (rows [n_tokens, n_vocab]); with n_predict == 0,
  // the logits after the prompt (one row).
  bool keep_logits = false;
  // The KV policy of this request; null = the scheduler's.
  std::shared_ptr<const kv::KvPolicy> kv_policy;
  // Log-probabilities of each generated token (compute_logprobs on the row it was sampled from, on the
  // step thread) with its top_logprobs most likely alternatives (0..kMaxTopLogprobs; > 0 implies logprobs).
  bool logprobs = false;
  int32_t top_logprobs = 0;
  // Called on the step thread right after each generated token (eos excepted) is sampled; true finishes
  // the request with kStop at that token (stop strings: the façade's TextStream). Called once per token,
  // preemptions included.
  std::function<bool(int32_t token)> stop_after;
  // Past this time the request finishes with kDeadline at the next step (what it generated is kept).
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  bool wants_logprobs() const { return logprobs || top_logprobs > 0; }
};

// One enum for the runtime and the public API (chunkwise/generation_types.h).
using cw::FinishReason;
using cw::finish_reason_name;

struct SeqResult {
  RequestId id = -1;
  FinishReason reason = FinishReason::kLength;
  Status error;                 // non-ok only for kError
  std::vector<int32_t> tokens;  // generated (a final eos included)
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;    // prompt tokens reused from the cache at (first) admission
  int64_t computed_tokens = 0;  // tokens this request ran through the forward pass (recomputes included)
  int n_preemptions = 0;
  std::vector<float> logits;    // keep_logits: [rows, n_vocab]
  std::vector<TokenLogprobs> logprobs;  // wants_logprobs(): one per generated token
};

// KV tensor operations a step applies, in order, before its forward pass.
// Copies n slots (K and V, every layer) from slot src_slot of block src to dst_slot of block dst.
struct RowCopy {
  int32_t src = -1, src_slot = 0, dst = -1, dst_slot = 0, n = 0;
  bool operator==(const RowCopy&) const = default;
};
// Slots [0, n) of the table `blocks`: keys rewritten at RoPE positions to_offset + s, re-rotated from the
// keys of the same slots in `origin` (first written at positions s) — model::move_keys.
struct KeyMove {
  std::vector<int32_t> origin, blocks;
  int64_t n = 0;
  double to_offset = 0;
};
// Keys of slots [slot, slot + n) of block `block` re-rotated by `delta` positions — model::rotate_keys
// (kv::Reposition, `retain`'s packing).
struct KeyRotate {
  int32_t block = -1, slot = 0, n = 0;
  int64_t delta = 0;
  bool operator==(const KeyRotate&) const = default;
};
using KvOp = std::variant<kv::BlockCopy, RowCopy, KeyMove, KeyRotate>;

// The work of one step. `batch.seqs[i].block_table` points into `tables[i]`: move, never copy, a plan.
struct StepPlan {
  model::Batch batch;
  std::vector<std::vector<int32_t>> tables;  // [batch.seqs.size()] block tables
  std::vector<RequestId> ids;                // [batch.seqs.size()] request of each batch sequence
  std::vector<KvOp> kv_ops;                  // apply to the KV tensors, in order, before the forward
  int64_t n_decode_rows = 0;
  int64_t n_prefill_rows = 0;
  int64_t n_output_rows = 0;                 // rows whose logits the forward must return, in seq order
  void clear();
};

// What a step produced, for the caller to deliver.
struct StepEvents {
  struct Token {
    RequestId id = -1;
    int32_t token = -1;
    bool has_logprobs = false;  // the request wants_logprobs()
    TokenLogprobs logprobs;
  };
  std::vector<Token> tokens;          // in generation order
  std::vector<SeqResult> finished;
  void clear() {
    tokens.clear();
    finished.clear();
  }
};

// Runs plans. execute() applies plan.kv_ops, then the forward pass of plan.batch, writing the logits of
// the output rows ([plan.n_output_rows, n_vocab], in sequence order) into *logits.
class StepExecutor {
 public:
  virtual ~StepExecutor() = default;
  virtual Status execute(const StepPlan& plan, std::vector<float>* logits) = 0;
};

struct SchedulerStats {
  int64_t steps = 0;
  int64_t preemptions = 0;
  int64_t decode_rows = 0;
  int64_t prefill_rows = 0;
  int64_t cached_tokens = 0;  // prompt tokens served from the prefix cache
};

class Scheduler {
 public:
  // Errors: option out of range (kInvalidArgument naming it). `policy` must outlive the scheduler.
  static Result<std::unique_ptr<Scheduler>> create(const SchedulerOptions& options, const kv::KvPolicy* policy);

  // Checks a request against the configuration: prompt empty or a token id out of range
  // (kInvalidArgument), n_predict < 0, bad sampling parameters, prompt + n_predict beyond the training
  // context (model::check_context; skipped when n_ctx_train is 0 or the policy lifts it), a policy whose
  // state cannot be made for this block size or holds no room for a new row within the training context,
  // or a request that cannot fit in the KV cache even alone (kOutOfRange naming the sizes).
  Status validate(const SeqRequest& request) const;

  // Queues a request under a caller-chosen unique id (CW_CHECK). Validates first; on error nothing changes.
  Status add(RequestId id, SeqRequest request);
  // Cancels a queued or running request: its result (kCancelled) goes to `events`. False when unknown
  // (never added, or already finished).
  bool cancel(RequestId id, StepEvents* events);

  // Builds the next step into `plan` (cleared first). Requests that fail before computing (a policy
  // answer the engine cannot execute) finish in `events`. Returns false when there is nothing to run.
  bool plan(StepPlan* plan, StepEvents* events);
  // Consumes the executor's output for `plan`: advances the sequences, samples, streams, finishes.
  void complete(const StepPlan& plan, const std::vector<float>& logits, StepEvents* events);
  // Finishes every queued or running request whose deadline is <= now with kDeadline (into `events`).
  void expire(std::chrono::steady_clock::time_point now, StepEvents* events);
  // The executor failed on `plan`: the requests in it finish with `error`, the KV contents are treated as
  // lost (the block pool and prefix cache are reset; other running requests are requeued to recompute).
  void fail(const StepPlan& plan, const Status& error, StepEvents* events);

  bool idle() const { return running_.empty() && waiting_.empty(); }
  size_t n_running() const { return running_.size(); }
  size_t n_waiting() const { return waiting_.size(); }
  const SchedulerStats& stats() const { return stats_; }
  const SchedulerOptions& options() const { return opt_; }
  const kv::BlockManager& blocks() const { return bm_; }
  // Tokens one request may hold in the KV cache (prompt + n_predict - 1).
  int64_t max_request_tokens() const;

 private:
  struct Seq {
    RequestId id = -1;
    SeqRequest req;
    const kv::KvPolicy* policy = nullptr;     // req.kv_policy or the scheduler's
    std::unique_ptr<kv::PolicyState> state;   // while running under an acting policy
    model::ChunkSelect select;                // a chunk-selective policy's parameters (span 0: none)
    std::vector<float> block_mass;            // observation: the prompt's last rows (state->observe_rows()),
                                              // or the probe / own rows of a retaining state (probe_rows())
    int64_t step_probe = 0;       // probe rows (the prompt's last tokens) after the plan's rows, removed after
    std::vector<int32_t> redo;    // tokens a Recompute runs again before the next new rows
    int64_t step_redo = 0;        // redo rows in the plan being built / completed
    int64_t step_n_past = 0;      // KV slots before the plan's rows
    std::vector<int32_t> tokens;  // prompt ++ generated
    std::unique_ptr<Sampler> sampler;
    kv::SeqId kv = -1;            // >= 0 while running
    int64_t n_computed = 0;
    int64_t admit_order = -1;
    int64_t cached_tokens = -1;   // at first admission
    int64_t computed_tokens = 0;
    int n_preemptions = 0;
    int64_t step_rows = 0;        // rows in the plan being built
    std::vector<float> logits;
    std::vector<TokenLogprobs> logprobs;
    int64_t n_generated() const { return static_cast<int64_t>(tokens.size() - req.prompt.size()); }
    int64_t pending() const { return static_cast<int64_t>(tokens.size()) - n_computed; }
    bool decoding() const { return n_generated() > 0 && pending() == 1; }
  };

  Scheduler(const SchedulerOptions& options, const kv::KvPolicy* policy, kv::BlockManager bm);
  Seq& seq(RequestId id);
  // Appends seq's redo tokens and next `n` pending tokens to the KV accounting and records the rows;
  // false (nothing changed) when they do not fit.
  bool try_append(Seq& s, int64_t n);
  // Appends up to `n` pending tokens (and the redo rows), preempting newer unscheduled sequences (when
  // allowed) and then shrinking the chunk; returns the rows appended, redo included (0: none fit).
  int64_t append_prefill(Seq& s, int64_t n, bool may_preempt);
  // Probe rows a prompt chunk of `n` new rows takes under a retaining state (the prompt's last
  // probe_rows() tokens when the chunk does not end the prompt; else 0).
  int64_t probe_rows(const Seq& s, int64_t n) const;
  // New rows one step may give `s` (its policy keeps positions within the training context).
  int64_t row_cap(const Seq& s) const;
  // Applies a policy state's actions to the block accounting and queues their KV ops. On a full pool it
  // preempts newer sequences, and `s` itself last (returns false then).
  bool apply_actions(Seq& s, const std::vector<kv::KvAction>& actions);
  Status apply_action(Seq& s, const kv::KvAction& action);
  void take_copies();  // the block manager's pending copies -> kv_ops_
  // The newest running sequence with no rows in this step, newer than `than` (admit order); -1: none.
  RequestId preemption_victim(int64_t than) const;
  void preempt(RequestId id);
  // Admits waiting_.front() with at most `max_rows` first-chunk rows; false when it cannot start now.
  bool admit_front(int64_t max_rows, StepEvents* events);
  void finish(Seq& s, FinishReason reason, Status error, StepEvents* events);
  void build_batch(StepPlan* plan);
  // One decode row for each running decoding sequence, oldest admission first, at most `budget` rows
  // (preempting newer sequences when the KV cache is full); returns the budget left.
  int64_t plan_decodes(int64_t budget, StepEvents* events);
  void plan_chunked(StepEvents* events);
  void plan_prefill_first(StepEvents* events);

  SchedulerOptions opt_;
  const kv::KvPolicy* policy_;
  kv::BlockManager bm_;
  std::map<RequestId, Seq> seqs_;
  std::deque<RequestId> waiting_;   // front = next to admit
  std::vector<RequestId> running_;  // in admission order
  std::vector<RequestId> step_order_;  // sequences with rows in the plan being built, in row order
  std::vector<int32_t> dirty_blocks_;  // blocks written by the plan being built (sorted at admission)
  std::vector<KvOp> kv_ops_;           // for the next plan, in order
  int64_t next_admit_ = 0;
  int64_t n_deadlines_ = 0;  // requests in seqs_ with a deadline
  SchedulerStats stats_;
};

}  // namespace cw::runtime
