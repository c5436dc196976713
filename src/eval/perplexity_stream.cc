#include "eval/perplexity_stream.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "eval/bench.h"
#include "eval/perplexity.h"
#include "kv/policy.h"
#include "runtime/kv_executor.h"

namespace cw::eval {

namespace {

// A "Name:   123 kB" field of /proc/self/status in bytes; 0 where unavailable.
uint64_t proc_status_bytes(const char* field) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  const size_t len = std::strlen(field);
  uint64_t kb = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, field, len) == 0 && line[len] == ':') {
      kb = std::strtoull(line + len + 1, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return kb * 1024;
}

// The process's peak resident set size: VmHWM (same accounting as VmRSS), else getrusage's.
uint64_t peak_rss() { return std::max(proc_status_bytes("VmHWM"), peak_rss_bytes()); }

}  // namespace

uint64_t current_rss_bytes() { return proc_status_bytes("VmRSS"); }

namespace {

using Clock = std::chrono::steady_clock;

// Token i of the cyclic stream.
inline int32_t token_at(std::span<const int32_t> tokens, int64_t i) {
  return tokens[static_cast<size_t>(i % static_cast<int64_t>(tokens.size()))];
}

}  // namespace

Result<StreamResult> stream_perplexity(const model::Model& m, std::span<const int32_t> tokens, const StreamOptions& opt) {
  if (opt.segment < 1) return invalid_argument("the segment length must be >= 1, got " + std::to_string(opt.segment));
  if (opt.max_tokens < 2)
    return invalid_argument("the stream must have at least 2 tokens to score one, got " + std::to_string(opt.max_tokens));
  if (tokens.empty()) return invalid_argument("no tokens to stream");
  if (opt.ubatch < 1) return invalid_argument("the micro-batch size must be >= 1");
  if (opt.n_threads < 1) return invalid_argument("the thread count must be >= 1");
  const int64_t n_vocab = m.hparams().n_vocab;
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= n_vocab)
      return invalid_argument("token id " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                              " is outside the vocabulary of " + std::to_string(n_vocab));

  CW_ASSIGN_OR_RETURN(std::unique_ptr<kv::KvPolicy> policy, runtime::make_acting_policy(opt.kv_policy));
  StreamResult r;
  std::unique_ptr<runtime::PolicySession> psession;
  std::unique_ptr<model::Session> session;
  const int64_t n = opt.max_tokens;
  int64_t limit = n - 1;  // positions fed and scored: the stream's last token is only a target
  if (policy != nullptr) {
    r.policy = policy->spec();
    CW_ASSIGN_OR_RETURN(psession, runtime::PolicySession::create(m, *policy, opt.ubatch, opt.kv_type, opt.n_threads));
  } else {
    r.policy = "full";
    if (!opt.kv_policy.empty()) {
      CW_ASSIGN_OR_RETURN(std::unique_ptr<kv::KvPolicy> full, kv::make_kv_policy(opt.kv_policy));
      r.policy = full->spec();
    }
    // Full attention keeps every key: the sequence ends at the training context.
    const int64_t n_ctx_train = m.hparams().n_ctx_train;
    if (limit > n_ctx_train) {
      limit = n_ctx_train;
      r.stopped_at = n_ctx_train;
      r.stopped = "training context " + std::to_string(n_ctx_train) + " reached";
    }
    CW_ASSIGN_OR_RETURN(session, model::Session::create(m, limit, opt.kv_type, opt.n_threads));
  }

  std::vector<int32_t> chunk;
  std::vector<float> logits;
  double total_nll = 0;
  const auto t_start = Clock::now();
  for (int64_t seg_begin = 0; seg_begin < limit; seg_begin += opt.segment) {
    const int64_t seg_end = std::min(seg_begin + opt.segment, limit);
    StreamSegment seg;
    seg.begin = seg_begin;
    seg.end = seg_end;
    double seg_nll = 0;
    const auto t_seg = Clock::now();
    for (int64_t p = seg_begin; p < seg_end; p += opt.ubatch) {
      const int64_t len = std::min(opt.ubatch, seg_end - p);
      chunk.resize(static_cast<size_t>(len));
      for (int64_t i = 0; i < len; ++i) chunk[static_cast<size_t>(i)] = token_at(tokens, p + i);
      if (psession != nullptr) {
        CW_RETURN_IF_ERROR(psession->eval(chunk, /*all_logits=*/true, &logits));
      } else {
        CW_RETURN_IF_ERROR(session->eval(chunk, /*all_logits=*/true, &logits));
      }
      // Row i (position p + i) scores token p + i + 1, which lies in the next chunk for the last row: it
      // comes from the stream, not from what was fed.
      for (int64_t i = 0; i < len; ++i)
        seg_nll += nll_of(&logits[static_cast<size_t>(i * n_vocab)], n_vocab, token_at(tokens, p + i + 1));
      seg.n_scored += len;
      if (opt.progress)
        opt.progress(p + len, n - 1, std::exp((total_nll + seg_nll) / static_cast<double>(r.n_scored + seg.n_scored)));
    }
    seg.seconds = std::chrono::duration<double>(Clock::now() - t_seg).count();
    seg.tok_s = seg.seconds > 0 ? static_cast<double>(seg_end - seg_begin) / seg.seconds : 0;
    seg.mean_nll = seg_nll / static_cast<double>(seg.n_scored);
    seg.ppl = std::exp(seg.mean_nll);
    seg.rss_bytes = current_rss_bytes();
    seg.peak_rss_bytes = peak_rss();
    total_nll += seg_nll;
    r.n_scored += seg.n_scored;
    r.segments.push_back(seg);
  }
  r.n_positions = limit;
  r.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  r.tok_s = r.seconds > 0 ? static_cast<double>(r.n_positions) / r.seconds : 0;
  r.mean_nll = total_nll / static_cast<double>(r.n_scored);
  r.ppl = std::exp(r.mean_nll);
  r.peak_rss_bytes = peak_rss();
  return r;
}

}  // namespace cw::eval
