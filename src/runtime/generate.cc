#include "runtime/generate.h"

#include <algorithm>
#include <chrono>
#include <string>

namespace cw::runtime {
namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

Status check_options(std::span<const int32_t> prompt, const GenerateOptions& options) {
  if (prompt.empty()) return invalid_argument("the prompt has no tokens");
  if (options.n_predict < 0) return invalid_argument("n_predict must be >= 0");
  if (options.ubatch < 1) return invalid_argument("ubatch must be >= 1");
  if (options.logits_top < 0) return invalid_argument("logits_top must be >= 0");
  return Status::ok();
}

// The loop of both paths; `session.eval(tokens, all_logits, logits)` is a model::Session or a PolicySession.
template <typename S>
Result<GenerateResult> generate_loop(S& session, Sampler& sampler, std::span<const int32_t> prompt,
                                     const GenerateOptions& options, const TokenCallback& on_token) {
  const auto n_prompt = static_cast<int64_t>(prompt.size());
  GenerateResult r;
  std::vector<float> logits;
  const auto t_prompt = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n_prompt; i += options.ubatch) {
    const int64_t n = std::min(options.ubatch, n_prompt - i);
    CW_RETURN_IF_ERROR(session.eval(prompt.subspan(static_cast<size_t>(i), static_cast<size_t>(n)),
                                    /*all_logits=*/false, &logits));
  }
  r.prompt_ms = ms_since(t_prompt);
  for (int32_t t : prompt) sampler.accept(t);

  const auto t_decode = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < options.n_predict; ++step) {
    const int32_t token = sampler.sample(logits);
    sampler.accept(token);
    r.tokens.push_back(token);
    if (options.logits_top > 0) r.steps.push_back({token, top_logits(logits, options.logits_top)});
    if (on_token) CW_RETURN_IF_ERROR(on_token(token));
    if (token == options.eos) {
      r.stopped_at_eos = true;
      break;
    }
    if (step + 1 < options.n_predict) CW_RETURN_IF_ERROR(session.eval({&token, 1}, /*all_logits=*/false, &logits));
  }
  r.decode_ms = ms_since(t_decode);
  return r;
}

}  // namespace

Result<GenerateResult> generate(model::Session& session, Sampler& sampler, std::span<const int32_t> prompt,
                                const GenerateOptions& options, const TokenCallback& on_token) {
  CW_RETURN_IF_ERROR(check_options(prompt, options));
  CW_CHECK(session.n_past() == 0);
  const auto n_prompt = static_cast<int64_t>(prompt.size());
  CW_RETURN_IF_ERROR(model::check_context(session.model().hparams(), n_prompt, options.n_predict));
  if (n_prompt + options.n_predict > session.n_ctx()) {
    return out_of_range("the prompt (" + std::to_string(n_prompt) + " tokens) + " + std::to_string(options.n_predict) +
                        " tokens to generate = " + std::to_string(n_prompt + options.n_predict) +
                        " exceeds the context size of " + std::to_string(session.n_ctx()) + " tokens");
  }
  return generate_loop(session, sampler, prompt, options, on_token);
}

Result<GenerateResult> generate(PolicySession& session, Sampler& sampler, std::span<const int32_t> prompt,
                                const GenerateOptions& options, const TokenCallback& on_token) {
  CW_RETURN_IF_ERROR(check_options(prompt, options));
  CW_CHECK(session.state().layout().n_seen == 0);
  // The policy bounds the slots (PolicySession::create checked max_slots + ubatch against the training
  // context): no context rule on prompt + n_predict. Prompt chunks are the session's ubatch.
  GenerateOptions o = options;
  o.ubatch = session.ubatch();
  return generate_loop(session, sampler, prompt, o, on_token);
}

}  // namespace cw::runtime
