// The needle-in-a-haystack harness (`chunkwise eval needle`, issue 14): haystacks from the generator the
// model was trained on (haystack.h), greedy answers, exact-match scoring, an accuracy grid length x depth
// per KV policy.
//
// A trial of cell (length L, depth d) is sample `t` of the haystack stream seeded by (seed, L, d)
// (trial_seed): the same cell gives the same haystacks whatever other cells, policies or trial counts are
// asked, so policies are compared on identical inputs and a table can be reproduced cell by cell.
// The prompt is format_prompt(sample) encoded with the model's vocabulary (BOS as the vocabulary asks);
// the answer is the greedy continuation up to the first "\n" (or EOS, or max_answer_tokens), leading and
// trailing spaces trimmed (pipelines::answer_text, as `ask` prints it), compared byte for byte with sample.answer.
//
// Policies: `full` keeps every key. Within the training context it runs on a plain Session; past it, on a
// paged Session with no policy, so the positions go beyond those trained (RoPE extrapolation) — what a
// user of full attention would get, reported as it is. A policy that acts (sink_window, window,
// recompute_window, ...) runs on a runtime::PolicySession.
//
// Thread-safety: a pure function of its arguments (the model, tokenizer and generator are read-only);
// progress runs under a lock, on a worker thread when jobs > 1. Tokenizer::encode and
// HaystackGenerator::generate are const and keep no caches, so jobs share them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "eval/haystack.h"
#include "model/model.h"

namespace cw::tok {
class Tokenizer;
}

namespace cw::eval {

struct NeedleOptions {
  Recipe recipe = Recipe::kPasskey;   // passkey, kv, multi, extract (mix is refused: cells need one recipe)
  std::vector<int64_t> lengths;       // document lengths in tokens of the model's vocabulary (>= 1 each)
  std::vector<double> depths;         // asked needle's depth, each in [0, 1]
  int needles = 4;                    // facts per document for kv and multi (1..64)
  int trials = 10;                    // per cell, >= 1
  uint64_t seed = 1;                  // haystack stream (with the cell: trial_seed)
  std::vector<std::string> policies = {"full"};  // KV policy specs (kv::make_kv_policy), at least one
  int64_t max_answer_tokens = 32;     // greedy steps at most (>= 1)
  int64_t ubatch = 256;               // prompt tokens per forward pass (shrunk to fit a policy)
  model::KvType kv_type = model::KvType::kF16;
  int n_threads = 1;                  // threads of each job's forward pass
  int jobs = 1;                       // trials of a cell run at once, each on its own session (1..1024)
  // "" (default): the haystack and the question go to the model as one prompt. "retrieval" / "attention":
  // through `ask` instead (pipelines::ask on an in-memory index of the haystack, the default chunker, quoting):
  // retrieval puts the best BM25 chunks that fit the window in the prompt (the cell's policy, "full" = none);
  // attention reads every chunk through the cell's policy (chunk_select when it is "full").
  std::string ask_mode;
  // After each trial: (trials done, trials in all). May be empty.
  std::function<void(int64_t, int64_t)> progress;
};

struct NeedleMiss {  // one wrong answer (the first few per cell are kept, for inspection)
  int64_t index = 0;
  std::string expected, got;
};

struct NeedleCell {
  std::string policy;  // canonical spec
  int64_t length = 0;  // requested document tokens
  double depth = 0;
  int trials = 0;
  int correct = 0;
  double accuracy = 0;           // correct / trials
  double mean_prompt_tokens = 0;  // prompt (document + question + BOS) tokens, averaged
  double seconds = 0;            // prefill + answer of every trial
  std::vector<NeedleMiss> misses;  // at most 3
};

struct NeedleReport {
  std::string recipe;
  int64_t n_ctx_train = 0;
  std::vector<NeedleCell> cells;  // policy-major, then length, then depth (the options' orders)
  double seconds = 0;
};

// The haystack stream of cell (length, depth): seed mixed with the length and the depth (in 1e-6 steps).
uint64_t needle_trial_seed(uint64_t seed, int64_t length, double depth);

// Checks options (each field's range, the policy specs) without running anything.
Status validate(const NeedleOptions& options);

// Runs every policy x length x depth x trial. Errors: invalid options, the generator's errors, a policy
// that does not fit the model (PolicySession::create's message), the forward pass's errors.
Result<NeedleReport> run_needle(const model::Model& model, const tok::Tokenizer& tokenizer,
                                const HaystackGenerator& generator, const NeedleOptions& options);

}  // namespace cw::eval
