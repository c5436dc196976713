// generate(): one prompt -> one completion on a model::Session, the loop behind `chunkwise run`.
//
// The prompt is fed in micro-batches of `ubatch` tokens (only the last one's logits are kept); then each
// step samples a token from the last logits, hands it to `on_token`, and evaluates it. Generation stops
// after n_predict tokens or at `eos` (which is reported and recorded, but not evaluated). Prompt tokens
// are accepted into the sampler first, so penalties see them (as llama.cpp does).
//
// The single-sequence path (`run`); many sequences at once go through runtime/engine.h.
// Thread-safety: uses the session and the sampler exclusively for the duration of the call.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <utility>
#include <vector>

#include "base/status.h"
#include "model/model.h"
#include "runtime/kv_executor.h"
#include "runtime/sampler.h"

namespace cw::runtime {

struct GenerateOptions {
  int64_t n_predict = 64;  // >= 0; 0 = prompt only
  int64_t ubatch = 512;    // >= 1: prompt tokens per forward pass
  int32_t eos = -1;        // stop token; -1 = none
  int logits_top = 0;      // > 0: record the k highest logits of every step
};

struct GenerateStep {
  int32_t token = 0;
  std::vector<std::pair<int32_t, float>> top;  // highest first; the logits the token was sampled from
};

struct GenerateResult {
  std::vector<int32_t> tokens;     // generated, including a final eos
  std::vector<GenerateStep> steps;  // one per generated token when logits_top > 0, else empty
  bool stopped_at_eos = false;
  double prompt_ms = 0;  // prefill
  double decode_ms = 0;  // sampling + forward passes of the generated tokens
};

// Called with each generated token as soon as it is sampled; a non-ok Status stops generation and is
// returned (e.g. the output stream failed).
using TokenCallback = std::function<Status(int32_t token)>;

// The session must be empty (n_past() == 0). Errors: empty prompt, bad options, prompt + n_predict beyond
// the model's training context (model::check_context, the rule every entry point applies) or the
// session's n_ctx (invalid_argument / out_of_range, before any forward pass), token ids out of range and
// non-finite logits (from Session::eval: kDataLoss naming the corrupt tensor), and whatever on_token
// returns.
Result<GenerateResult> generate(model::Session& session, Sampler& sampler, std::span<const int32_t> prompt,
                                const GenerateOptions& options, const TokenCallback& on_token = {});
// The same loop under a KV policy (runtime/kv_executor.h): the session must be fresh; no context rule on
// prompt + n_predict (the policy bounds the slots; PolicySession::create checked its positions against the
// training context), and prompt chunks are the session's ubatch (options.ubatch is ignored).
Result<GenerateResult> generate(PolicySession& session, Sampler& sampler, std::span<const int32_t> prompt,
                                const GenerateOptions& options, const TokenCallback& on_token = {});

}  // namespace cw::runtime
