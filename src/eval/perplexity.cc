#include "eval/perplexity.h"

#include <chrono>
#include <cmath>
#include <vector>

#include "kv/policy.h"
#include "runtime/kv_executor.h"

namespace cw::eval {

double nll_of(const float* row, int64_t n_vocab, int32_t next) {
  CW_CHECK(next >= 0 && next < n_vocab);
  float mx = row[0];
  for (int64_t v = 1; v < n_vocab; ++v) mx = std::max(mx, row[v]);
  double sum = 0;
  for (int64_t v = 0; v < n_vocab; ++v) sum += std::exp(static_cast<double>(row[v]) - mx);
  return std::log(sum) - (static_cast<double>(row[next]) - mx);
}

Result<int64_t> default_ubatch(const model::Model& m, const std::string& kv_policy, int64_t preferred) {
  CW_ASSIGN_OR_RETURN(std::unique_ptr<kv::KvPolicy> policy, runtime::make_acting_policy(kv_policy));
  if (policy == nullptr) return preferred;
  return runtime::PolicySession::fit_ubatch(m, *policy, preferred);
}

Result<PerplexityResult> perplexity(const model::Model& m, std::span<const int32_t> tokens, const PerplexityOptions& opt) {
  if (opt.n_ctx < 4 || opt.n_ctx % 2 != 0) return invalid_argument("the window size must be an even number >= 4");
  if (opt.ubatch < 1) return invalid_argument("the micro-batch size must be >= 1");
  CW_ASSIGN_OR_RETURN(std::unique_ptr<kv::KvPolicy> policy, runtime::make_acting_policy(opt.kv_policy));
  std::unique_ptr<runtime::PolicySession> psession;
  // The context rule of every entry point: a window is one sequence (unless the policy lifts it).
  if (policy == nullptr || !policy->lifts_context_limit())
    CW_RETURN_IF_ERROR(model::check_context_size(m.hparams(), opt.n_ctx));
  const int64_t n_tokens = static_cast<int64_t>(tokens.size());
  const int64_t n_windows = n_tokens / opt.n_ctx;
  if (n_windows == 0)
    return invalid_argument("the text has " + std::to_string(n_tokens) + " tokens, fewer than one window of " +
                            std::to_string(opt.n_ctx));
  const int64_t n_vocab = m.hparams().n_vocab;
  auto t0 = std::chrono::steady_clock::now();
  PerplexityResult r;
  double sum_nll = 0, sum_nll2 = 0;
  std::unique_ptr<model::Session> owned;
  if (policy != nullptr) {
    CW_ASSIGN_OR_RETURN(psession, runtime::PolicySession::create(m, *policy, opt.ubatch, opt.kv_type, opt.n_threads));
  } else {
    CW_ASSIGN_OR_RETURN(owned, model::Session::create(m, opt.n_ctx, opt.kv_type, opt.n_threads));
  }
  std::vector<int32_t> window(static_cast<size_t>(opt.n_ctx));
  std::vector<float> logits, chunk_logits;
  const int64_t first = opt.n_ctx / 2;
  for (int64_t w = 0; w < n_windows; ++w) {
    std::copy_n(tokens.begin() + w * opt.n_ctx, opt.n_ctx, window.begin());
    if (opt.bos >= 0) window[0] = opt.bos;
    if (psession != nullptr) {
      CW_RETURN_IF_ERROR(psession->reset());
      CW_RETURN_IF_ERROR(psession->eval(window, true, &logits));  // chunked by ubatch, sliding after each
    } else {
      model::Session& session = *owned;
      session.reset();
      logits.assign(static_cast<size_t>(opt.n_ctx * n_vocab), 0.0f);
      for (int64_t p = 0; p < opt.n_ctx; p += opt.ubatch) {
        const int64_t len = std::min(opt.ubatch, opt.n_ctx - p);
        CW_RETURN_IF_ERROR(session.eval(std::span<const int32_t>(window.data() + p, static_cast<size_t>(len)), true,
                                        &chunk_logits));
        std::copy(chunk_logits.begin(), chunk_logits.end(), logits.begin() + p * n_vocab);
      }
    }
    for (int64_t j = first; j < opt.n_ctx - 1; ++j) {
      const int32_t next = tokens[static_cast<size_t>(w * opt.n_ctx + j + 1)];
      const double nll = nll_of(&logits[static_cast<size_t>(j * n_vocab)], n_vocab, next);
      sum_nll += nll;
      sum_nll2 += nll * nll;
      ++r.n_scored;
    }
    ++r.n_windows;
    if (opt.progress) opt.progress(r.n_windows, n_windows, std::exp(sum_nll / static_cast<double>(r.n_scored)));
  }
  const double n = static_cast<double>(r.n_scored);
  const double mean = sum_nll / n;
  r.ppl = std::exp(mean);
  if (r.n_scored > 1) {
    const double var = std::max(0.0, sum_nll2 / n - mean * mean);
    r.ppl_stderr = r.ppl * std::sqrt(var / (n - 1));
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace cw::eval
