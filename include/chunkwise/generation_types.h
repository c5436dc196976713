// Small value types shared by the public Engine API (chunkwise/engine.h) and the runtime
// (runtime/scheduler.h, runtime/sampler.h), defined once: why a request finished, the sampling settings,
// and the log-probabilities of a generated token. Plain data; no thread-safety concerns.
#pragma once

#include <cstdint>
#include <vector>

namespace cw {

enum class FinishReason : uint8_t {
  kLength,     // n_predict tokens generated (or n_predict == 0: the prompt only)
  kEos,        // the end-of-sequence token was sampled (it ends the result's tokens)
  kStop,       // the text reached one of the request's stop strings (the result's text ends before it)
  kCancelled,  // cancel(), engine destruction, or a client whose callbacks fell too far behind
  kError,      // the request failed while running; the result carries the Status
  kDeadline,   // the request's deadline passed; what it generated before is kept
};

// "length", "eos", "stop", "cancelled", "error", "deadline" (the CLI's spelling; stable).
const char* finish_reason_name(FinishReason r);
// OpenAI's finish_reason: "stop" for kEos and kStop, "length" for kLength and kDeadline (the output was
// cut by a limit). kCancelled and kError have no OpenAI value: "cancelled" and "error" (a server reports
// them as errors, not as a finish reason).
const char* openai_finish_reason(FinishReason r);

// Sampling of one request, llama.cpp's chain: repetition / presence / frequency penalties over the last
// penalty_last_n tokens, top-k, top-p, min-p, temperature (0 = greedy). Ranges (runtime::validate):
// temperature >= 0, top_k >= 0, top_p and min_p in [0, 1], repeat_penalty > 0, penalties finite,
// penalty_last_n in [0, 2^20]. The public API and the runtime's sampler share this one type.
struct SamplingConfig {
  float temperature = 0.8f;        // 0 = greedy
  int top_k = 40;                  // 0 = off
  float top_p = 0.95f;             // 1 = off
  float min_p = 0.05f;             // 0 = off
  float repeat_penalty = 1.0f;     // 1 = off
  float presence_penalty = 0.0f;   // 0 = off
  float frequency_penalty = 0.0f;  // 0 = off
  int penalty_last_n = 64;         // 0 = penalties off
  uint64_t seed = 0;
};

// A token id with its log-probability.
struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0;
  bool operator==(const TokenLogprob&) const = default;
};

// The log-probabilities of one generated token: log-softmax of the raw logits the token was sampled
// from (before repetition penalties, temperature, top-k/top-p/min-p), so they do not depend on the
// sampling settings. `top`: the k most likely tokens, most likely first (ties: lower id first).
struct TokenLogprobs {
  int32_t token = -1;
  float logprob = 0;
  std::vector<TokenLogprob> top;
};

// The most alternatives a request may ask for (OpenAI's limit).
constexpr int kMaxTopLogprobs = 20;

}  // namespace cw
