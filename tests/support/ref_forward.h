// A plain double-precision forward pass of a llama-family model (test oracle): weights are dequantized with
// the scalar reference dequantizers, everything else (norms, RoPE, attention, softmax, SwiGLU) is computed
// in double. With round_activations, each matmul input is first rounded through the weight type's
// activation type (kernels::activation_type), the one numerical step the engine shares with llama.cpp on
// purpose; without it, no rounding at all. Returns logits [n_tokens, n_vocab] for positions
// pos_offset .. pos_offset + n_tokens - 1 of one sequence starting from an empty cache.
#pragma once

#include <cstdint>
#include <vector>

#include "model/model.h"

namespace cw::testing {

std::vector<double> reference_forward_f64(const model::Model& m, const std::vector<int32_t>& tokens, double pos_offset = 0,
                                          bool round_activations = false);

}  // namespace cw::testing
