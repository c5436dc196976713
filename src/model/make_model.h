// Random-weight GGUF models at real shapes (`chunkwise make-model`): the tensor table, metadata and
// per-tensor types of a llama.cpp model of a given architecture, size and file type, with deterministic
// pseudo-random weights, so that the engine (and llama.cpp) can be tested and benchmarked at 0.5B..8B
// without downloading weights.
//
// What the file holds:
//  - metadata keys and tensor names exactly as llama.cpp writes them; all `tokenizer.*` keys are copied
//    from a vocabulary GGUF, whose token count is n_vocab;
//  - weights drawn from an approximate unit normal (see make_model.cc), scaled so activations keep unit
//    scale: embeddings std 1, projections std 1/sqrt(fan_in), norms 1, qwen2 q/k/v biases std 0.1, and
//    the output projection std kOutputGain/sqrt(n_embd) so that next-token distributions are peaked;
//  - per-tensor types chosen by llama.cpp's quantizer rules for the file type (see tensor_type_for());
//  - bytes that depend only on (seed, arch, shape, type, vocab): identical across runs and thread counts.
//
// Memory: the file is streamed tensor by tensor, a few rows at a time (a bounded chunk buffer plus one row
// of floats per thread), so making an 8B model needs well under 1 GB.
//
// Thread-safety: the functions are reentrant; make_model() runs its own worker threads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gguf/reader.h"
#include "gguf/types.h"

namespace cw::gguf {
class Writer;
}

namespace cw::model {

// llama.cpp's `llama_ftype` values (written as general.file_type).
enum class FileType : uint32_t {
  kAllF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ8_0 = 7,
  kQ5_0 = 8,
  kQ5_1 = 9,
  kQ2_K = 10,
  kQ3_K_S = 11,
  kQ3_K_M = 12,
  kQ3_K_L = 13,
  kQ4_K_S = 14,
  kQ4_K_M = 15,
  kQ5_K_S = 16,
  kQ5_K_M = 17,
  kQ6_K = 18,
  kBF16 = 32,
};

// All supported file types, in the order of supported_file_types().
const std::vector<FileType>& all_file_types();
// Case-insensitive: "f32", "F16", "q4_k_m", ... Unknown -> invalid_argument listing the supported names.
Result<FileType> file_type_from_name(std::string_view name);
const char* file_type_name(FileType t);  // llama.cpp's spelling: "Q4_K_M", "F16", ...
std::string supported_file_types();     // "f32, f16, bf16, q8_0, ..."
// The type of most weights (Q4_K for Q4_K_M, F16 for F16, ...).
gguf::TensorType base_tensor_type(FileType t);

// Model dimensions (head_dim = n_embd / n_head).
struct ModelShape {
  std::string name;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t n_ff = 0;
  int64_t n_ctx = 0;  // written as {arch}.context_length
};
// "tiny", "0.5b", "1b", "3b", "8b" (case-insensitive). Unknown -> invalid_argument listing the names.
Result<ModelShape> model_shape(std::string_view name);
std::string supported_shapes();
// "llama", "qwen2". Unknown -> invalid_argument listing the names.
Status check_make_arch(std::string_view arch);
std::string supported_make_archs();

// What a tensor is, for the type rules.
enum class TensorRole {
  kTokEmbd, kOutput, kOutputNorm, kAttnNorm, kAttnQ, kAttnK, kAttnV, kAttnOut, kFfnNorm, kFfnGate, kFfnUp,
  kFfnDown, kBias,
};

// The type llama.cpp's quantizer gives a 2-D weight of `role` in layer `layer` (of n_layer) of a model
// with n_head / n_head_kv = n_gqa, whose rows have ne0 elements. Norms and biases are always F32.
gguf::TensorType tensor_type_for(FileType ft, TensorRole role, int64_t layer, int64_t n_layer, int64_t n_gqa,
                                 int64_t ne0);

// One tensor of the file, in file order.
struct PlannedTensor {
  std::string name;
  TensorRole role = TensorRole::kBias;
  gguf::TensorType type = gguf::TensorType::kF32;
  std::vector<uint64_t> shape;  // GGUF order: {ne0 (row length), n_rows}
  float stddev = 0;             // 0: every element is `fill`
  float fill = 0;
};
// The tensor table of a model: token_embd, then per layer attn_norm, attn_q/k/v (+ biases for qwen2),
// attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down; then output_norm and output.
std::vector<PlannedTensor> plan_tensors(std::string_view arch, const ModelShape& shape, FileType ft, int64_t n_vocab);

// The model-level metadata of a file (make_model() and convert_safetensors() write the same keys).
struct ModelMetadata {
  std::string arch;          // "llama", "qwen2", "bert"
  std::string name;          // general.name
  ModelShape shape;          // n_ctx is written as {arch}.context_length
  double rope_freq_base = 10000.0;  // decoders only
  double rms_eps = 1e-5;            // decoders only
  uint32_t pooling = 1;             // bert only
  FileType file_type = FileType::kF16;
};
// Adds general.architecture, general.name, the {arch}.* hyper-parameters (llama.cpp's keys),
// general.file_type (+ general.quantization_version for quantized types), then copies every tokenizer.*
// key of `vocab`, in that order.
void add_model_metadata(gguf::Writer& w, const ModelMetadata& md, const gguf::File& vocab);
// n_vocab of a vocabulary GGUF: its tokenizer.ggml.tokens count. Errors (invalid_argument naming the
// file): no string array of tokens, too many tokens, a vocabulary the tokenizer refuses.
Result<int64_t> vocab_size(const gguf::File& vocab);

struct MakeModelProgress {
  size_t tensors_done = 0;
  size_t n_tensors = 0;
  uint64_t bytes_done = 0;   // of tensor data
  uint64_t bytes_total = 0;
};

struct MakeModelOptions {
  std::string arch = "llama";
  std::string shape = "tiny";
  std::string type = "f16";
  uint64_t seed = 1;
  uint32_t pooling = 1;  // bert only: bert.pooling_type (1 mean, 2 cls, 3 last)
  int n_threads = 0;  // 0: std::thread::hardware_concurrency()
  // Called from the calling thread after each chunk of rows is written (optional).
  std::function<void(const MakeModelProgress&)> on_progress;
};

struct MakeModelResult {
  uint64_t file_bytes = 0;
  size_t n_tensors = 0;
  int64_t n_vocab = 0;
  int64_t n_params = 0;
  FileType file_type = FileType::kF16;
};

// Writes the model to `out_path`. Errors: unknown arch/shape/type (invalid_argument listing the supported
// names), a vocabulary without tokenizer.ggml.tokens (invalid_argument), I/O errors (io_error; the partial
// file is removed).
Result<MakeModelResult> make_model(const MakeModelOptions& opts, const gguf::File& vocab, const std::string& out_path);
// The same, opening the vocabulary GGUF at `vocab_path`.
Result<MakeModelResult> make_model(const MakeModelOptions& opts, const std::string& vocab_path,
                                   const std::string& out_path);

}  // namespace cw::model
