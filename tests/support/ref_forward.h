// A plain double-precision forward pass of a llama-family model (test oracle): weights are dequantized with
// the scalar reference dequantizers, everything else (norms, RoPE, attention, softmax, SwiGLU) is computed
// in double. With round_activations, each matmul input is first rounded through the weight type's
// activation type (kernels::activation_type), the one numerical step the engine shares with llama.cpp on
// purpose; without it, no rounding at all. Returns logits [n_tokens, n_vocab] for positions
// pos_offset .. pos_offset + n_tokens - 1 of one sequence starting from an empty cache.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"

namespace cw::testing {

std::vector<double> reference_forward_f64(const model::Model& m, const std::vector<int32_t>& tokens, double pos_offset = 0,
                                          bool round_activations = false);

// The same fp64 forward pass fed one token at a time through a StreamingLLM cache (kv/policies/
// sink_window.cc): every layer keeps the unrotated keys and the values of its retained slots; the token
// appended at slot s has its query and key at position pos_offset + s, and it attends to exactly the retained
// slots, slot j's key rotated at pos_offset + j. After each token, when n_slots - sinks - window >= block,
// k = (n_slots - sinks - window) / block whole blocks of slots right after the sinks are dropped and
// pos_offset grows by k * block: the window's keys keep their positions, the sinks move to pos_offset + s.
// No activation rounding. Returns logits [n_tokens, n_vocab]; *n_slides (when given) counts the slides.
std::vector<double> reference_streaming_f64(const model::Model& m, const std::vector<int32_t>& tokens, int64_t sinks,
                                            int64_t window, int64_t block, int* n_slides = nullptr);

// The model of the GGUF at `path` cut to its first `n_layers` layers (an in-memory GGUF that lives until
// the process exits). With one layer a key or value depends only on its token and position, so a cache
// that keeps some tokens equals a fresh session's over exactly those tokens: an exact reference for KV
// policies. Test failures (EXPECT) on a bad file.
std::unique_ptr<model::Model> first_layers(const std::string& path, int n_layers);

}  // namespace cw::testing
