// Model hyper-parameters read from GGUF metadata, and the architecture registry.
// Adding an architecture = one file in arch/ + one line in registry.cc (see docs/howto when written).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "gguf/reader.h"
#include "kernels/cpu/ops_ref.h"

namespace cw::model {

struct HParams {
  std::string arch;
  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  int64_t n_ff = 0;
  int64_t n_rot = 0;  // rotary dims per head (partial rotary when < head_dim)
  double rope_freq_base = 10000.0;
  double rope_freq_scale = 1.0;  // linear scaling: 1 / factor
  float rms_eps = 1e-5f;
  kernels::RopeStyle rope_style = kernels::RopeStyle::kNormal;
  bool qkv_bias = false;
};

// What distinguishes one architecture from another in the forward pass.
struct ArchSpec {
  const char* name;
  kernels::RopeStyle rope_style;
  bool qkv_bias;
};

// Registered architectures (arch/*.cc).
const std::vector<const ArchSpec*>& architectures();
std::string supported_architectures();  // "llama, qwen2"

// Reads and validates hyper-parameters (unknown architecture -> unimplemented listing the supported ones).
Result<HParams> read_hparams(const gguf::File& f);

}  // namespace cw::model
