#include "eval/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <string>

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

// The i-th token of a bench_depths context: deterministic, spread over the vocabulary, never ids 0..2.
int32_t context_token(int64_t i, int64_t n_vocab) {
  return static_cast<int32_t>(3 + (static_cast<uint64_t>(i) * 7919u) % static_cast<uint64_t>(n_vocab - 3));
}

// One repetition at one depth on a freshly reset sequence: the context (depth - 1 tokens in chunks, then
// one untimed single-token step), then n_gen timed decode steps.
template <typename S>
Status depth_rep(S& s, const model::Model& m, const BenchOptions& opt, int64_t depth, int rep, double* prefill_s,
                 double* decode_tok_s) {
  constexpr int64_t kChunk = 256;
  const int64_t n_vocab = m.hparams().n_vocab;
  const std::string label =
      "depth " + std::to_string(depth) + " rep " + std::to_string(rep + 1) + "/" + std::to_string(opt.reps);
  std::vector<float> logits;
  std::vector<int32_t> chunk;
  CW_RETURN_IF_ERROR(reset(s));
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t done = 0; done < depth - 1;) {
    const int64_t k = std::min(kChunk, depth - 1 - done);
    chunk.resize(static_cast<size_t>(k));
    for (int64_t j = 0; j < k; ++j) chunk[static_cast<size_t>(j)] = context_token(done + j, n_vocab);
    CW_RETURN_IF_ERROR(s.eval(chunk, false, &logits));
    done += k;
    if (opt.progress) opt.progress((label + " prefill").c_str(), static_cast<int>(done), static_cast<int>(depth));
  }
  int32_t tok = context_token(depth - 1, n_vocab);
  CW_RETURN_IF_ERROR(s.eval(std::span<const int32_t>(&tok, 1), false, &logits));  // warms the decode path
  *prefill_s = seconds_since(t0);
  if (opt.progress) opt.progress((label + " decode").c_str(), 0, static_cast<int>(opt.n_gen));
  t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < opt.n_gen; ++i) {
    tok = context_token(depth + i, n_vocab);
    CW_RETURN_IF_ERROR(s.eval(std::span<const int32_t>(&tok, 1), false, &logits));
  }
  *decode_tok_s = static_cast<double>(opt.n_gen) / seconds_since(t0);
  return Status::ok();
}

template <typename S>
Status depth_row(S& s, const model::Model& m, const BenchOptions& opt, DepthResult* row) {
  for (int rep = 0; rep < opt.reps; ++rep) {
    double tok_s = 0;
    CW_RETURN_IF_ERROR(depth_rep(s, m, opt, row->depth, rep, &row->prefill_s, &tok_s));
    row->decode_samples.push_back(tok_s);
  }
  row->decode_tok_s = median(row->decode_samples);
  row->ms_per_token = row->decode_tok_s > 0 ? 1000.0 / row->decode_tok_s : 0;
  row->peak_rss_bytes = peak_rss_bytes();
  return Status::ok();
}

}  // namespace

Result<std::vector<DepthResult>> bench_depths(const model::Model& m, const BenchOptions& opt) {
  if (opt.depths.empty()) return invalid_argument("no depths to measure");
  if (opt.depths.size() > kMaxDepths)
    return invalid_argument("at most " + std::to_string(kMaxDepths) + " depths, got " +
                            std::to_string(opt.depths.size()));
  for (int64_t d : opt.depths)
    if (d < 1) return invalid_argument("a depth must be >= 1, got " + std::to_string(d));
  if (opt.n_gen < 1) return invalid_argument("the decode length must be >= 1 to measure a depth");
  if (opt.reps < 1) return invalid_argument("the repetition count must be >= 1");
  if (opt.n_threads < 1) return invalid_argument("the thread count must be >= 1");
  const model::HParams& hp = m.hparams();
  CW_ASSIGN_OR_RETURN(std::unique_ptr<kv::KvPolicy> policy, runtime::make_acting_policy(opt.kv_policy));
  // The context rule, for every depth before any work, unless the policy lifts it.
  if ((policy == nullptr && !opt.past_training_context) || (policy != nullptr && !policy->lifts_context_limit()))
    for (int64_t d : opt.depths) CW_RETURN_IF_ERROR(model::check_context_size(hp, d + opt.n_gen));
  const int64_t max_depth = *std::max_element(opt.depths.begin(), opt.depths.end());
  std::vector<DepthResult> rows;
  if (policy != nullptr) {
    // One constant-size sequence for every depth; ubatch as large as the training context leaves room for
    // next to the policy's slots, at most 256.
    CW_ASSIGN_OR_RETURN(const int64_t ubatch, runtime::PolicySession::fit_ubatch(m, *policy, 256));
    CW_ASSIGN_OR_RETURN(std::unique_ptr<runtime::PolicySession> ps,
                        runtime::PolicySession::create(m, *policy, ubatch, opt.kv_type, opt.n_threads, 16,
                                                       max_depth + opt.n_gen));
    for (int64_t d : opt.depths) {
      DepthResult row;
      row.depth = d;
      row.kv_bytes = model::Session::kv_bytes(hp, ps->session().n_ctx(), opt.kv_type);
      CW_RETURN_IF_ERROR(depth_row(*ps, m, opt, &row));
      rows.push_back(std::move(row));
    }
    return rows;
  }
  for (int64_t d : opt.depths) {
    DepthResult row;
    row.depth = d;
    row.kv_bytes = model::Session::kv_bytes(hp, d + opt.n_gen, opt.kv_type);
    std::unique_ptr<model::Session> session;
    if (hp.n_ctx_train > 0 && d + opt.n_gen > hp.n_ctx_train) {  // past_training_context (checked above)
      CW_ASSIGN_OR_RETURN(session, model::Session::create_paged(m, static_cast<int32_t>((d + opt.n_gen + 15) / 16), 16,
                                                                opt.kv_type, opt.n_threads));
    } else {
      CW_ASSIGN_OR_RETURN(session, model::Session::create(m, d + opt.n_gen, opt.kv_type, opt.n_threads));
    }
    CW_RETURN_IF_ERROR(depth_row(*session, m, opt, &row));
    rows.push_back(std::move(row));
  }
  return rows;
}

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
  CW_ASSIGN_OR_RETURN(std::unique_ptr<kv::KvPolicy> policy, runtime::make_acting_policy(opt.kv_policy));
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
