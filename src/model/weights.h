// Binding GGUF tensors to a model's weights (shared by the decoder, model.cc, and the encoder, encoder.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "gguf/reader.h"
#include "model/model.h"

namespace cw::model {

// Binds a 2-D matrix with GGUF shape {n_in, n_out} (zero copy). Errors: missing tensor, wrong shape
// (kDataLoss naming both), a type without matmul kernels (kUnimplemented listing the supported ones).
Status bind_matrix(const gguf::File& f, const std::string& name, int64_t n_in, int64_t n_out, WeightRef* out);
// Reads a 1-D vector of n elements (any supported type) into fp32. Errors like bind_matrix's.
Status read_vector(const gguf::File& f, const std::string& name, int64_t n, std::vector<float>* out);

}  // namespace cw::model
