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
// Thread-safety: every method may be called from any thread. Token callbacks run on the engine's step
// thread, one at a time; they must not call wait(). Destroying the engine cancels what is still running
// (callbacks see the cancellation) and joins the step thread.
// Failure: configuration and requests are validated (Status / Result, never an abort): unknown names,
// out-of-range numbers, prompt + n_predict beyond the model's training context (unless the KV policy
// lifts that rule), a prompt that does not fit the KV cache. Results carry finish_reason "error" and the
// Status if a request fails while running (e.g. kDataLoss when the model's weights turn out corrupt).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace cw {

struct EngineConfig {
  std::string model_path;
  int threads = 1;               // forward-pass threads (>= 1; capped at the hardware's concurrency)
  // KV cache size: kv_mem_bytes if > 0, else ctx tokens if > 0 (one request of ctx tokens fits), else
  // parallel x min(training context, 4096) tokens, at most 1 GiB.
  uint64_t kv_mem_bytes = 0;
  int64_t ctx = 0;
  int block_size = 16;           // tokens per KV block
  std::string kv_type = "f16";   // "f16" | "f32"
  int64_t batch_tokens = 512;    // token budget of one step
  int64_t parallel = 16;         // requests running at once
  std::string schedule = "chunked";  // "chunked" | "prefill-first"
  std::string kv_policy = "full";    // KV policy spec (kv/policy.h)
  bool batch_invariant = false;      // outputs independent of batching for every weight type (slower)
};

struct SamplingConfig {
  float temperature = 0.8f;  // 0 = greedy
  int top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int penalty_last_n = 64;
  uint64_t seed = 0;
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
};

struct GenerationResult {
  int64_t id = -1;
  std::string finish_reason;  // "length", "eos", "cancelled", "error"
  Status error;               // set when finish_reason == "error"
  std::vector<int32_t> tokens;  // generated ids (a final eos included)
  std::string text;             // detokenized, eos left out
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;    // prompt tokens reused from the prefix cache
  int64_t computed_tokens = 0;  // tokens run through the model for this request (recomputes included)
  int preemptions = 0;
  std::vector<float> logits;
};

// Called for each generated token with its text piece (eos: empty piece).
using TokenStream = std::function<void(int64_t id, int32_t token, const std::string& piece)>;

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
  // Queues a request; returns its id. Errors: those of validate().
  Result<int64_t> submit(const GenerationRequest& request, TokenStream on_token = {});
  // Cancels at the next step; false when unknown or finished.
  bool cancel(int64_t id);
  // Blocks until the request finishes; each id can be waited for once.
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
