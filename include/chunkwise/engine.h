// chunkwise::Engine — the public generation API of libchunkwise: open a GGUF model, submit text (or token)
// prompts from any thread, receive tokens as they are sampled, cancel, wait for results. Many requests
// run at once: one step thread batches every running decode with chunks of waiting prompts under a
// token budget (SARATHI-style chunked prefill), reuses cached prompt prefixes (paged KV cache with
// content-addressed blocks), and preempts / recomputes when KV memory runs out. See DESIGN.md §3.
//
//   auto engine = cw::Engine::open({.model_path = "model.gguf", .threads = 2});
//   auto id = (*engine)->submit({.prompt = "Once upon a time", .n_predict = 32});
//   cw::GenerationResult r = (*engine)->wait(*id);   // r.text, r.tokens, r.cached_tokens, ...
//
//   // Or streaming, with no thread parked in wait():
//   (*engine)->submit({.prompt = "Hello", .stop = {"\n\n"}},
//                     {.on_text = [](int64_t, std::string_view piece) { send(piece); },
//                      .on_done = [](cw::GenerationResult r) { finish(r); }});
//
// Threading contract. Every method may be called from any thread. One step thread runs the model; it
// never runs client code. Client callbacks (on_token, on_text, on_done) run on the engine's delivery
// threads (EngineConfig::callback_threads): the callbacks of one request run one at a time, in order
// (its tokens, then on_done, exactly once); callbacks of different requests may run concurrently, so a
// slow callback delays only its own request. Each request's undelivered events are bounded
// (EngineConfig::callback_queue): a client that falls that far behind has its request cancelled
// (FinishReason::kCancelled, error kResourceExhausted saying why; no more on_token / on_text, on_done
// still comes) -- the step thread never blocks on a client and memory stays bounded. A callback may call
// submit() and cancel(), never wait(). An exception escaping a callback cancels its request (the error
// names it). Destroying the engine cancels what is still running, delivers every pending callback
// (on_done included), then joins its threads; submit() from a callback during destruction is refused.
// Failure: configuration and requests are validated (Status / Result, never an abort): unknown names,
// out-of-range numbers, prompt + n_predict beyond the model's training context (unless the KV policy
// lifts that rule), a prompt that does not fit the KV cache, bad stop strings or top_logprobs. Results
// carry FinishReason::kError and the Status if a request fails while running (e.g. kDataLoss when the
// model's weights turn out corrupt).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "chunkwise/generation_types.h"

namespace cw {

struct EngineConfig {
  std::string model_path;
  int threads = 1;               // forward-pass threads (>= 1; capped at the hardware's concurrency)
  // KV cache size: kv_mem_bytes if > 0, else ctx tokens if > 0 (one request of ctx tokens fits), else
  // parallel x min(training context, 4096) tokens, at most 1 GiB. With ctx > 0 (and no kv_mem_bytes),
  // a request whose prompt + n_predict exceeds ctx is refused, unless the KV policy lifts the context rule.
  uint64_t kv_mem_bytes = 0;
  int64_t ctx = 0;
  int block_size = 16;           // tokens per KV block
  std::string kv_type = "f16";   // "f16" | "f32"
  int64_t batch_tokens = 512;    // token budget of one step
  int64_t parallel = 16;         // requests running at once
  std::string schedule = "chunked";  // "chunked" | "prefill-first"
  std::string kv_policy = "full";    // KV policy spec (kv/policy.h)
  bool batch_invariant = false;      // outputs independent of batching for every weight type (slower)
  int callback_threads = 2;          // delivery threads running client callbacks (1..64)
  int64_t callback_queue = 1024;     // events one request may have undelivered (1..2^20); then cancelled
};

struct GenerationRequest {
  std::string prompt;                  // text, tokenized with the vocabulary's BOS rule ...
  std::vector<int32_t> prompt_tokens;  // ... unless token ids are given here
  int64_t n_predict = 64;              // tokens to generate (>= 0)
  SamplingConfig sampling;
  bool stop_at_eos = true;
  // Keep the logits each token was sampled from ([tokens, n_vocab]; n_predict 0: the prompt's last row).
  bool keep_logits = false;
  // KV policy spec for this request (e.g. "sink_window:sinks=4,window=1020"); empty = the engine's.
  std::string kv_policy;
  // Stop strings: generation ends (kStop) at the token whose text completes one of them; the result's
  // text ends before it, and no streamed piece holds any part of it. At most 4, each non-empty, at most
  // 256 bytes, valid UTF-8.
  std::vector<std::string> stop;
  // Log-probabilities of each generated token, and its top_logprobs (0..20) most likely alternatives
  // (top_logprobs > 0 implies logprobs). They are the log-softmax of the raw logits the token was sampled
  // from -- before repetition penalties, temperature and top-k/top-p/min-p -- computed on the step thread
  // (no logit rows are kept for them).
  bool logprobs = false;
  int top_logprobs = 0;
  // Past this time the request finishes with kDeadline at the next step, keeping what it generated
  // (a deadline already past: it finishes at once). max() = none.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

struct GenerationResult {
  int64_t id = -1;
  FinishReason finish_reason = FinishReason::kLength;
  // kError: why it failed; kCancelled: non-ok when the engine cancelled it (a client that fell behind
  // (kResourceExhausted), a callback that threw); else ok.
  Status error;
  std::vector<int32_t> tokens;  // generated ids (a final eos included; kStop: up to the stopping token)
  std::string text;             // detokenized, eos left out; kStop: ends before the stop string
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;    // prompt tokens reused from the prefix cache
  int64_t computed_tokens = 0;  // tokens run through the model for this request (recomputes included)
  int preemptions = 0;
  std::vector<float> logits;
  std::vector<TokenLogprobs> logprobs;  // logprobs / top_logprobs: one per generated token
};

// Streaming callbacks of one request (all optional). See the threading contract above.
struct StreamCallbacks {
  // Each generated token (a final eos included); `logprobs` is null unless the request asked for them.
  std::function<void(int64_t id, int32_t token, const TokenLogprobs* logprobs)> on_token;
  // Text as it becomes final: never splits a UTF-8 character (bytes no continuation can make valid pass
  // as they are), never holds any part of a stop string. The pieces concatenate to the result's text
  // (unless the request was cancelled for falling behind: then they stop early).
  std::function<void(int64_t id, std::string_view piece)> on_text;
  // The result, exactly once, after the request's last on_token / on_text. When set, wait() does not
  // apply to the request.
  std::function<void(GenerationResult result)> on_done;
};

struct EngineInfo {
  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;
  int32_t kv_blocks = 0;
  int32_t block_size = 0;
  uint64_t kv_bytes = 0;
  int64_t max_request_tokens = 0;  // prompt + n_predict - 1 one request may hold
};

struct EngineCounters {
  int64_t steps = 0, preemptions = 0, cached_tokens = 0, decode_rows = 0, prefill_rows = 0;
  int64_t running = 0, waiting = 0;
  int32_t free_blocks = 0, cached_blocks = 0;
  double busy_ms = 0;
};

class Engine {
 public:
  // Loads the model and tokenizer and starts the step thread. Errors: unreadable / invalid model,
  // invalid configuration (naming the option), KV cache larger than this machine's memory.
  static Result<std::unique_ptr<Engine>> open(const EngineConfig& config);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Checks a request without submitting it (empty prompt, token ids, sampling ranges, KV fit).
  Status validate(const GenerationRequest& request) const;
  // Queues a request; returns its id. Errors: those of validate(); the engine is shutting down.
  Result<int64_t> submit(const GenerationRequest& request, StreamCallbacks callbacks = {});
  // Cancels at the next step; false when unknown or finished.
  bool cancel(int64_t id);
  // Blocks until the request finishes (and its callbacks have run); each id can be waited for once.
  // Requests with on_done, unknown ids and ids already waited for: kError with kNotFound.
  GenerationResult wait(int64_t id);

  std::vector<int32_t> tokenize(std::string_view text, bool add_special = true) const;
  std::string token_piece(int32_t token) const;
  int32_t eos() const;
  EngineInfo info() const;
  EngineCounters counters() const;

 private:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cw
