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
};

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

// Bytes of weights one decode step reads.
uint64_t weight_bytes_per_token(const model::Model& m);
// Peak resident set size of this process so far.
uint64_t peak_rss_bytes();

}  // namespace cw::eval
