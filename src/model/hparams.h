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
// Head counts are checked against each other, embedding_length and the shapes of layer 0's attention
// tensors; when they disagree the message names the key the tensors say is wrong (and the value that
// would fit), or every key that could be.
Result<HParams> read_hparams(const gguf::File& f);

// ---- The context rule -------------------------------------------------------------------------------------
// One rule for every entry point (run, batch, perplexity, bench, model::Session, runtime::Engine): one
// sequence's prompt + tokens to generate may not exceed the model's training context n_ctx_train, where
// the model was never trained to attend and its output degrades. A KV policy may lift the rule when it
// keeps every sequence within the trained positions (kv::KvPolicy::lifts_context_limit; `full` does not).

// Errors: kOutOfRange "the prompt (P tokens) + N tokens to generate = T exceeds the model's training
// context of C tokens" (n_predict 0: "the prompt (P tokens) exceeds ..."). n_prompt, n_predict >= 0.
Status check_context(const HParams& hp, int64_t n_prompt, int64_t n_predict);
// The same rule for a context size (the positions one sequence may hold: a KV capacity, a perplexity
// window): kOutOfRange "a context of N tokens exceeds the model's training context of C tokens".
Status check_context_size(const HParams& hp, int64_t n_ctx);

}  // namespace cw::model
