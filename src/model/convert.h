// Trained weights -> GGUF (`chunkwise convert`, issue 14): a safetensors file whose tensor names are already
// llama.cpp's GGUF names (token_embd.weight, blk.N.attn_q.weight, ..., output.weight optional) in PyTorch's
// [n_out, n_in] layout, a JSON config of hyper-parameters and a vocabulary GGUF become a GGUF model with
// llama.cpp's metadata keys (the same as make_model: model/make_model.h add_model_metadata), written through
// our GGUF writer in F32, F16 or Q8_0 (per-tensor types by tensor_type_for: norms stay F32).
//
// Safetensors format: 8-byte little-endian header length N, N bytes of JSON {name: {"dtype", "shape",
// "data_offsets": [begin, end]}, "__metadata__": {...}}, then the data (offsets relative to its start).
// Everything is validated; malformed input is a one-line Status (invalid_argument / data_loss naming the
// file and the tensor), never an abort.
//
// The output is written to a temporary file and renamed into place (gguf::Writer): a failed conversion
// leaves no partial file and any previous file of that name intact.
//
// Thread-safety: the functions are reentrant; a SafetensorsFile is immutable after open().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/mapped_file.h"
#include "base/status.h"
#include "model/make_model.h"

namespace cw::model {

enum class StDtype { kF32, kF16, kBF16 };

struct SafetensorsTensor {
  std::string name;
  StDtype dtype = StDtype::kF32;
  std::vector<uint64_t> shape;  // as stored: PyTorch order, outermost first ([n_out, n_in])
  uint64_t n_elements = 0;
  const uint8_t* data = nullptr;  // into the mapping; not necessarily aligned
  uint64_t n_bytes = 0;
};

class SafetensorsFile {
 public:
  // Maps and validates `path`: header length within the file, well-formed JSON object, known dtypes,
  // non-negative integer shapes, offsets in range and non-overlapping, size = product(shape) x dtype size,
  // no duplicate names. Errors name the file.
  static Result<SafetensorsFile> open(const std::string& path);

  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(std::string_view name) const;  // nullptr when absent
  // Element i of tensor t as fp32 (exact for every supported dtype).
  static float element(const SafetensorsTensor& t, uint64_t i);

 private:
  MappedFile map_;
  std::vector<SafetensorsTensor> tensors_;
};

// The hyper-parameters: {"arch":"llama","n_embd":..,"n_layer":..,"n_head":..,"n_head_kv":..,"n_ff":..,
// "n_ctx":..,"rope_freq_base":..,"rms_eps":..} (optional "name": general.name). Every key is required;
// unknown keys are refused (a typo would otherwise go unnoticed).
struct ConvertConfig {
  std::string arch;
  std::string name;
  ModelShape shape;
  double rope_freq_base = 0;
  double rms_eps = 0;
};
Result<ConvertConfig> parse_convert_config(std::string_view json, const std::string& file_name = "<config>");

struct ConvertOptions {
  std::string safetensors_path;
  std::string config_path;
  std::string vocab_path;
  std::string type = "f16";  // f32, f16, q8_0
  std::string out_path;
};

struct ConvertResult {
  size_t n_tensors = 0;
  int64_t n_params = 0;
  int64_t n_vocab = 0;
  uint64_t file_bytes = 0;
  FileType file_type = FileType::kF16;
};

// Converts. The tensor set is checked against the config before anything is written: every required
// tensor present with the right shape (n_vocab from the vocabulary), no unknown tensor.
Result<ConvertResult> convert_safetensors(const ConvertOptions& opts);

}  // namespace cw::model
