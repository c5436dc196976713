// Perplexity with llama.cpp's method (llama-perplexity): the token stream is cut into consecutive windows
// of n_ctx tokens; each window is evaluated from an empty cache with its first token replaced by BOS, and
// only the second half is scored (logits at positions n_ctx/2 .. n_ctx-2 predicting the next token).
// PPL = exp(mean negative log-likelihood). The log-softmax is computed in double.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "base/status.h"
#include "model/model.h"

namespace cw::eval {

struct PerplexityOptions {
  int64_t n_ctx = 512;
  int64_t ubatch = 512;              // tokens per forward call within a window
  int32_t bos = -1;                  // replaces the first token of each window when >= 0
  model::KvType kv_type = model::KvType::kF16;
  // KV policy spec (kv::make_kv_policy). Empty or a policy that keeps every slot (`full`): the plain
  // Session path. Otherwise each window runs through runtime::PolicySession from an empty state; the
  // window may then exceed the training context when the policy lifts the context rule.
  std::string kv_policy;
  int n_threads = 1;  // >= 1, capped at the hardware's concurrency
  // Called after each window with (windows done, windows total, running PPL). May be empty.
  std::function<void(int64_t, int64_t, double)> progress;
};

struct PerplexityResult {
  double ppl = 0;
  double ppl_stderr = 0;   // ppl * standard error of the mean NLL
  int64_t n_windows = 0;
  int64_t n_scored = 0;    // tokens scored
  double seconds = 0;
};

// Errors: n_ctx < 4 or odd, n_ctx beyond the model's training context (model::check_context_size), fewer
// than n_ctx tokens (a message naming both counts), token ids out of range, non-finite logits (kDataLoss
// naming the corrupt tensor, from Session::eval), a bad kv_policy spec, PolicySession::create's errors.
Result<PerplexityResult> perplexity(const model::Model& m, std::span<const int32_t> tokens, const PerplexityOptions& opt);

// Negative log-likelihood of token `next` under one row of logits [n_vocab]: log-softmax in double
// (max-subtracted). `next` must be in [0, n_vocab) (a bug otherwise).
double nll_of(const float* row, int64_t n_vocab, int32_t next);

// The micro-batch a KV policy runs with when the user did not choose one: `preferred` for a policy that
// does not act (`full`, empty spec), else shrunk so that max_slots() + ubatch stays within the model's
// training context (runtime::PolicySession::create refuses more); `preferred` unchanged when even one token
// does not fit (create then reports it). Errors: a bad spec (runtime::make_acting_policy).
Result<int64_t> default_ubatch(const model::Model& m, const std::string& kv_policy, int64_t preferred);

}  // namespace cw::eval
