// Log-probabilities of a sampled token and its top-k alternatives from one row of raw logits (the
// scheduler calls this on the step thread, so no logit row outlives its step). Thread-safety: pure.
#pragma once

#include <cstdint>
#include <span>

#include "chunkwise/generation_types.h"

namespace cw::runtime {

// Fills `out` with log-softmax(row)[token] and the k highest entries of log-softmax(row), most likely
// first (ties: lower id first). k is clamped to [0, row.size()]. Sums in double; non-finite logits give
// non-finite log-probabilities (the forward pass refuses those rows before they get here).
void compute_logprobs(std::span<const float> row, int32_t token, int k, TokenLogprobs* out);

}  // namespace cw::runtime
