// runtime::Engine: the multi-sequence generation loop (DESIGN.md §3). Requests (token ids) are submitted
// from any thread; one step thread repeatedly asks the Scheduler for a plan (one batch under the token
// budget), runs it on a StepExecutor (the Forward pass over a paged KvCache, or a fake in tests), and
// delivers the sampled tokens and finished requests through the request's callbacks.
//
// The public façade for users is include/chunkwise/engine.h (text in, text out); this class is what the
// façade, the CLI's `bench --scenario` and the tests drive.
//
// Thread-safety: submit(), cancel(), wait() and stats() may be called from any thread, concurrently.
// Callbacks run on the step thread, one at a time, in generation order; a callback must not call wait()
// (it would wait for itself) but may call submit() and cancel(). They must be quick: the step loop waits
// for them (the public façade, chunkwise/engine.h, only queues events here and runs its clients'
// callbacks on delivery threads). Destruction stops the loop: requests
// still queued or running finish as kCancelled (their callbacks run) before the destructor returns.
// Failure: submit() validates the request synchronously (Scheduler::validate) and returns the Status; an
// executor failure during a step finishes the requests of that batch with kError (see Scheduler::fail);
// an exception escaping the loop finishes every request with kInternal and stops the engine.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "kv/policy.h"
#include "model/forward.h"
#include "model/kv_cache.h"
#include "runtime/scheduler.h"

namespace cw::model {
class Model;
}

namespace cw::runtime {

struct EngineOptions {
  int32_t block_size = 16;     // token slots per KV block (16 or 32 are typical)
  // KV capacity: kv_mem_bytes if > 0, else ctx_tokens if > 0 (a single request of ctx_tokens fits),
  // else the default: max_running * min(training context, 4096) tokens, at most 1 GiB. ctx_tokens > 0 (without
  // kv_mem_bytes) is also the context size requests are held to (SchedulerOptions::n_ctx) unless the KV
  // policy lifts the context rule.
  uint64_t kv_mem_bytes = 0;
  int64_t ctx_tokens = 0;
  model::KvType kv_type = model::KvType::kF16;
  int n_threads = 1;           // forward-pass threads (the step thread counts as one; capped: cap_threads)
  int64_t batch_tokens = 512;  // token budget of one step
  int64_t max_running = 16;    // sequences admitted at once
  Schedule schedule = Schedule::kChunked;
  std::string kv_policy = "full";
  // Every matmul on the multi-row kernels (model::Forward::set_batch_invariant): each request's tokens are
  // then bit-identical to a batch-invariant single-sequence run, whatever shares its batches, for every
  // weight type. Off by default: F32/F16/BF16 weights are batch-invariant anyway; quantized decoding is
  // faster without it.
  bool batch_invariant = false;
};

// The number of KV blocks `o` asks for on a model with `hp` (validated: sizes > 0, at least two blocks,
// kOutOfRange / kInvalidArgument naming the option otherwise).
Result<int32_t> kv_blocks_for(const model::HParams& hp, const EngineOptions& o);

struct RequestCallbacks {
  // Each generated token, as soon as it is sampled (an eos included).
  std::function<void(RequestId id, int32_t token)> on_token;
  // The same event with the token's log-probabilities (when the request wants_logprobs()); called instead
  // of on_token when set.
  std::function<void(const StepEvents::Token& token)> on_token_event;
  // The request finished. When set, the result is handed here and not kept for wait().
  std::function<void(SeqResult result)> on_done;
};

struct EngineStats {
  SchedulerStats scheduler;
  int64_t running = 0, waiting = 0;  // in the scheduler after the last step
  int64_t active = 0;                // submitted and not finished (exact at the time of the call)
  int32_t kv_blocks = 0, block_size = 0, free_blocks = 0, cached_blocks = 0;
  uint64_t kv_bytes = 0;
  double busy_ms = 0;  // time spent in steps
};

class Engine {
 public:
  // An engine over `model` (which must outlive it) with a Forward pass and a paged KvCache (memory
  // committed as blocks are used). n_threads is capped at the hardware's concurrency (cap_threads);
  // requests are held to the model's training context (SchedulerOptions::n_ctx_train) unless the KV
  // policy lifts it; non-finite logits finish the requests of that step with kDataLoss (Forward::run).
  // Errors: bad options (see kv_blocks_for, Scheduler::create), unknown kv policy, a KV cache larger than
  // this machine's memory.
  static Result<std::unique_ptr<Engine>> create(const model::Model& model, const EngineOptions& options);
  // An engine over any executor (tests, other backends). options.n_vocab etc. as Scheduler::create.
  static Result<std::unique_ptr<Engine>> create(std::unique_ptr<StepExecutor> executor,
                                                const SchedulerOptions& options, const std::string& kv_policy);
  ~Engine();  // shutdown()
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Stops the loop: what is queued or running finishes as kCancelled (callbacks run) and the step thread
  // is joined. Idempotent; afterwards submit() fails (kInternal), wait() still returns kept results.
  void shutdown();

  // Queues a request; returns its id (increasing from 0). Errors: Scheduler::validate's, or the engine
  // was stopped by an internal failure (kInternal).
  Result<RequestId> submit(SeqRequest request, RequestCallbacks callbacks = {});
  // The checks submit() makes, without submitting.
  Status validate(const SeqRequest& request) const { return sched_->validate(request); }
  // Asks to cancel: the request finishes as kCancelled at the next step boundary (tokens streamed before
  // stay). False when the id is unknown or the request already finished.
  bool cancel(RequestId id);
  // Blocks until the request finishes and returns its result (once; the engine forgets it then).
  // A request submitted with on_done, an unknown id or one already waited for -> kError / kNotFound.
  SeqResult wait(RequestId id);

  EngineStats stats() const;
  const SchedulerOptions& scheduler_options() const { return sched_opt_; }

 private:
  Engine(std::unique_ptr<StepExecutor> executor, std::unique_ptr<kv::KvPolicy> policy,
         std::unique_ptr<Scheduler> scheduler, uint64_t kv_bytes);
  void loop();
  void step_once();
  void deliver(StepEvents* events);
  // Copies the scheduler's counters into stats_ (under mu_); called before every deliver().
  void publish_stats(double busy_ms);

  std::unique_ptr<StepExecutor> exec_;
  std::unique_ptr<kv::KvPolicy> policy_;
  std::unique_ptr<Scheduler> sched_;  // step thread only
  SchedulerOptions sched_opt_;
  uint64_t kv_bytes_ = 0;

  // Step-thread state.
  StepPlan plan_;
  StepEvents events_;
  std::vector<float> logits_;
  std::map<RequestId, RequestCallbacks> callbacks_;

  mutable std::mutex mu_;
  std::condition_variable wake_;  // the step thread: work arrived / stop
  std::condition_variable done_;  // waiters: a result arrived
  struct Pending {
    RequestId id;
    SeqRequest request;
    RequestCallbacks callbacks;
  };
  std::vector<Pending> inbox_;
  std::vector<RequestId> cancels_;
  std::set<RequestId> active_;  // submitted, not finished
  std::map<RequestId, SeqResult> results_;
  std::set<RequestId> detached_;  // have on_done: never kept for wait()
  RequestId next_id_ = 0;
  bool stop_ = false;
  Status fatal_;
  EngineStats stats_;  // under mu_; copied out by stats()
  std::mutex join_mu_;  // shutdown() from several threads joins once
  std::thread thread_;
};

}  // namespace cw::runtime
