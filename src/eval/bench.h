// Throughput benchmark of the forward pass, measured like llama-bench: prefill of n_prompt tokens from an
// empty cache (pp), and n_gen single-token decode steps from an empty cache (tg); each repeated `reps`
// times after one warm-up, reporting medians. Decode GB/s counts the weight bytes one token reads (every
// matrix once; the embedding table only by one row).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/model.h"

namespace cw::eval {

struct BenchOptions {
  int64_t n_prompt = 128;
  int64_t n_gen = 32;
  int n_threads = 2;
  int reps = 5;
  model::KvType kv_type = model::KvType::kF16;
  // KV policy spec; empty or `full`: the plain Session. Otherwise both tests run through
  // runtime::PolicySession (ubatch = n_prompt, at least 1), which lifts the context rule when the policy does.
  std::string kv_policy;
  std::function<void(const char* phase, int rep, int reps)> progress;  // may be empty
  // bench_depths: the context depths to measure decode at (each >= 1, at most kMaxDepths, any order).
  std::vector<int64_t> depths;
  // bench_depths with full attention (no acting policy): a depth beyond the model's training context runs
  // on a paged session instead of being refused — for speed and memory only (the model was not trained at
  // those positions, so what it would answer there means nothing).
  bool past_training_context = false;
};

// One row of bench_depths: decode after `depth` tokens of context.
struct DepthResult {
  int64_t depth = 0;
  double decode_tok_s = 0;  // median over reps
  double ms_per_token = 0;  // 1000 / decode_tok_s
  std::vector<double> decode_samples;  // tok/s of each repetition
  double prefill_s = 0;                // seconds to build the context (last repetition)
  uint64_t kv_bytes = 0;               // the KV cache allocated for this depth
  uint64_t peak_rss_bytes = 0;         // of the process, after this depth
};

inline constexpr size_t kMaxDepths = 16;

struct BenchResult {
  double prefill_tok_s = 0;  // median
  double decode_tok_s = 0;   // median
  double decode_gb_s = 0;    // weight bytes per token * decode_tok_s
  std::vector<double> prefill_samples, decode_samples;  // tok/s of each repetition
  uint64_t weight_bytes_per_token = 0;
  uint64_t model_bytes = 0;
  uint64_t kv_bytes = 0;
  uint64_t peak_rss_bytes = 0;
};

// Errors: nothing to measure, reps or n_threads < 1, max(n_prompt, n_gen) beyond the model's training
// context (model::check_context_size), token ids out of range, non-finite logits (kDataLoss naming the
// corrupt tensor). n_threads is capped at the hardware's concurrency (cap_threads).
Result<BenchResult> bench(const model::Model& m, const BenchOptions& opt);

// Decode rate by context depth (`bench --depth`): for each depth in opt.depths (in the order given), each of
// opt.reps repetitions builds the context from an empty sequence (depth - 1 tokens fed in chunks of up to
// 256, then one single-token step, untimed, that warms the decode path) and times opt.n_gen single-token
// decode steps on top; the row's rate is the median. opt.kv_policy picks the sequence: full (plain Session
// of depth + n_gen slots) or a policy that acts (runtime::PolicySession, constant memory: the context streams
// through its window). progress, when set, gets ("depth D rep R/N prefill" or "... decode", done, total).
// Errors (kInvalidArgument unless noted): no depths or more than kMaxDepths, a depth < 1, n_gen < 1, reps or
// n_threads < 1, a bad policy spec; under a policy that does not lift the context rule (full), any
// depth + n_gen beyond the training context (kOutOfRange, model::check_context_size's message, checked for
// every depth before any work); PolicySession::create's and the forward pass's errors.
Result<std::vector<DepthResult>> bench_depths(const model::Model& m, const BenchOptions& opt);

// Bytes of weights one decode step reads.
uint64_t weight_bytes_per_token(const model::Model& m);
// Peak resident set size of this process so far.
uint64_t peak_rss_bytes();

}  // namespace cw::eval
