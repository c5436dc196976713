#include "eval/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>

#include "kv/policy.h"
#include "runtime/kv_executor.h"

namespace cw::eval {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Status reset(model::Session& s) {
  s.reset();
  return Status::ok();
}
Status reset(runtime::PolicySession& s) { return s.reset(); }

template <typename S>
Result<BenchResult> run_bench(S& s, const model::Model& m, const BenchOptions& opt, BenchResult r);

}  // namespace

uint64_t weight_bytes_per_token(const model::Model& m) {
  uint64_t total = 0;
  for (const auto& t : m.file().tensors()) total += t.n_bytes;
  // The embedding table is gathered by one row per token, unless it doubles as the output matrix.
  if (const gguf::TensorInfo* emb = m.file().find_tensor("token_embd.weight");
      emb != nullptr && m.output().data != m.tok_embd().data)
    total -= emb->n_bytes - emb->n_bytes / static_cast<uint64_t>(m.hparams().n_vocab);
  return total;
}

uint64_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;
}

Result<BenchResult> bench(const model::Model& m, const BenchOptions& opt) {
  if (opt.n_prompt < 0 || opt.n_gen < 0 || opt.n_prompt + opt.n_gen == 0)
    return invalid_argument("nothing to measure: the prompt and generation lengths are both 0");
  if (opt.reps < 1) return invalid_argument("the repetition count must be >= 1");
  if (opt.n_threads < 1) return invalid_argument("the thread count must be >= 1");
  // The prefill test holds n_prompt positions, the decode test n_gen: the larger is the context, under the
  // context rule of every entry point (Session::create checks it against the training context).
  const int64_t n_ctx = std::max<int64_t>(opt.n_prompt, opt.n_gen);
  BenchResult r;
  for (const auto& t : m.file().tensors()) r.model_bytes += t.n_bytes;
  r.weight_bytes_per_token = weight_bytes_per_token(m);
  std::unique_ptr<kv::KvPolicy> policy;
  if (!opt.kv_policy.empty()) {
    CW_ASSIGN_OR_RETURN(policy, kv::make_kv_policy(opt.kv_policy));
    CW_ASSIGN_OR_RETURN(const bool acts, runtime::policy_acts(*policy, 16));
    if (!acts) policy.reset();
  }
  const model::HParams& hp = m.hparams();
  if (policy != nullptr) {
    CW_ASSIGN_OR_RETURN(std::unique_ptr<runtime::PolicySession> ps,
                        runtime::PolicySession::create(m, *policy, std::max<int64_t>(1, opt.n_prompt), opt.kv_type,
                                                       opt.n_threads));
    r.kv_bytes = model::Session::kv_bytes(hp, ps->session().n_ctx(), opt.kv_type);
    return run_bench(*ps, m, opt, std::move(r));
  }
  CW_ASSIGN_OR_RETURN(std::unique_ptr<model::Session> session, model::Session::create(m, n_ctx, opt.kv_type, opt.n_threads));
  r.kv_bytes = model::Session::kv_bytes(hp, n_ctx, opt.kv_type);
  return run_bench(*session, m, opt, std::move(r));
}

namespace {

template <typename S>
Result<BenchResult> run_bench(S& s, const model::Model& m, const BenchOptions& opt, BenchResult r) {
  const model::HParams& hp = m.hparams();
  std::vector<float> logits;
  // Deterministic pseudo-random tokens (avoid special ids 0..2).
  std::vector<int32_t> prompt(static_cast<size_t>(opt.n_prompt));
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(3 + (i * 7919) % static_cast<size_t>(hp.n_vocab - 3));

  if (opt.n_prompt > 0) {
    for (int rep = -1; rep < opt.reps; ++rep) {  // rep -1: warm-up
      if (opt.progress) opt.progress("prefill", rep + 1, opt.reps);
      CW_RETURN_IF_ERROR(reset(s));
      auto t0 = std::chrono::steady_clock::now();
      CW_RETURN_IF_ERROR(s.eval(prompt, false, &logits));
      const double sec = seconds_since(t0);
      if (rep >= 0) r.prefill_samples.push_back(static_cast<double>(opt.n_prompt) / sec);
    }
    r.prefill_tok_s = median(r.prefill_samples);
  }
  if (opt.n_gen > 0) {
    for (int rep = -1; rep < opt.reps; ++rep) {
      if (opt.progress) opt.progress("decode", rep + 1, opt.reps);
      CW_RETURN_IF_ERROR(reset(s));
      int32_t tok = 3;
      auto t0 = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < opt.n_gen; ++i) {
        CW_RETURN_IF_ERROR(s.eval(std::span<const int32_t>(&tok, 1), false, &logits));
        tok = static_cast<int32_t>(3 + (static_cast<size_t>(tok) * 31 + 7) % static_cast<size_t>(hp.n_vocab - 3));
      }
      const double sec = seconds_since(t0);
      if (rep >= 0) r.decode_samples.push_back(static_cast<double>(opt.n_gen) / sec);
    }
    r.decode_tok_s = median(r.decode_samples);
    r.decode_gb_s = r.decode_tok_s * static_cast<double>(r.weight_bytes_per_token) / 1e9;
  }
  r.peak_rss_bytes = peak_rss_bytes();
  return r;
}

}  // namespace

}  // namespace cw::eval
