// Token sampling: the llama.cpp default chain, reproducible across platforms.
//
//   penalties (repeat / frequency / presence over the last penalty_last_n accepted tokens)
//   -> top-k -> top-p -> min-p   (filters on probabilities at temperature 1, as llama.cpp does)
//   -> temperature -> draw from the softmax with our own PRNG (xoshiro256**, seeded through splitmix64).
//
// temperature == 0 is greedy: the argmax of the penalised logits, ties broken towards the lowest id.
// Candidates are ordered by (logit descending, id ascending), a total order, so the result does not depend
// on the standard library's sort / nth_element; floating-point sums are done in double in a fixed order.
// Cost per token: O(n_vocab) plus O(n_vocab log top_k) for top-k; without top-k, top-p sorts only as many
// candidates as it needs (min-p, when on, cuts the candidates first in O(n_vocab)).
//
// Thread-safety: a Sampler is single-threaded (it owns the RNG state and the penalty history).
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <utility>
#include <vector>

#include "base/status.h"
#include "chunkwise/generation_types.h"

namespace cw::runtime {

// The sampling settings: the public type (chunkwise/generation_types.h), one definition.
using SamplerParams = cw::SamplingConfig;

// Checks every field's range: temperature >= 0, top_k >= 0, top_p in [0, 1], min_p in [0, 1],
// repeat_penalty > 0, presence / frequency penalties finite, penalty_last_n in [0, 2^20].
// Errors: kOutOfRange / kInvalidArgument naming the field and the allowed range.
Status validate(const SamplerParams& params);

class Sampler {
 public:
  // `params` must pass validate() and n_vocab must be > 0 (CW_CHECK: a caller bug otherwise).
  Sampler(SamplerParams params, int32_t n_vocab);

  // Draws the next token from `logits` ([n_vocab], CW_CHECKed). NaN logits count as -inf. Does not
  // record the token: call accept() with the token actually appended to the sequence.
  int32_t sample(std::span<const float> logits);

  // Records a token of the sequence for the penalties (prompt tokens may be accepted too).
  // Out-of-range ids are ignored.
  void accept(int32_t token);

  // Forgets the history and re-seeds the RNG: the next samples repeat those of a fresh Sampler.
  void reset();

  const SamplerParams& params() const { return params_; }
  int32_t n_vocab() const { return n_vocab_; }

 private:
  struct Candidate {
    float logit;
    int32_t id;
  };
  bool penalties_on() const;
  void apply_penalties();
  void top_k(int k);
  void top_p_min_p();
  int32_t draw();
  double next_uniform();  // [0, 1), 53 bits

  SamplerParams params_;
  int32_t n_vocab_;
  uint64_t rng_[4];
  std::deque<int32_t> history_;  // last penalty_last_n accepted tokens, oldest first
  std::vector<Candidate> cur_;    // scratch: the surviving candidates
  std::vector<int32_t> scratch_ids_;
};

// The k highest logits, highest first (ties: lowest id first); k is clamped to [0, logits.size()].
std::vector<std::pair<int32_t, float>> top_logits(std::span<const float> logits, int k);

}  // namespace cw::runtime
