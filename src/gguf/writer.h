// GGUF v3 writer: metadata + tensors, aligned per `general.alignment` (default 32). Used by tests,
// tools and `make-model`. Builds the whole image in memory (models written this way are small) or
// streams to a file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gguf/reader.h"
#include "gguf/types.h"

namespace cw::gguf {

class Writer {
 public:
  Writer& set_alignment(uint32_t alignment);  // also written as general.alignment when != 32

  Writer& add_u8(std::string_view key, uint8_t v);
  Writer& add_i8(std::string_view key, int8_t v);
  Writer& add_u16(std::string_view key, uint16_t v);
  Writer& add_i16(std::string_view key, int16_t v);
  Writer& add_u32(std::string_view key, uint32_t v);
  Writer& add_i32(std::string_view key, int32_t v);
  Writer& add_u64(std::string_view key, uint64_t v);
  Writer& add_i64(std::string_view key, int64_t v);
  Writer& add_f32(std::string_view key, float v);
  Writer& add_f64(std::string_view key, double v);
  Writer& add_bool(std::string_view key, bool v);
  Writer& add_string(std::string_view key, std::string_view v);
  Writer& add_string_array(std::string_view key, const std::vector<std::string>& v);
  Writer& add_f32_array(std::string_view key, const std::vector<float>& v);
  Writer& add_i32_array(std::string_view key, const std::vector<int32_t>& v);
  // A nested array: array of arrays of int32 (exercises the nested-array path of readers).
  Writer& add_i32_array_array(std::string_view key, const std::vector<std::vector<int32_t>>& v);

  // Adds a tensor. `shape` is GGUF order (ne[0] first). `data` must hold exactly the bytes of the tensor
  // for `type` (checked: invalid_argument otherwise).
  Status add_tensor(std::string_view name, TensorType type, std::vector<uint64_t> shape,
                    std::vector<uint8_t> data);

  // Serialized file image.
  std::vector<uint8_t> bytes() const;
  Status write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    TensorType type;
    std::vector<uint64_t> shape;
    std::vector<uint8_t> data;
  };
  Writer& add_raw(std::string_view key, ValueType type, std::vector<uint8_t> payload);
  uint32_t alignment_ = 32;
  uint64_t n_kv_ = 0;
  std::vector<uint8_t> kv_bytes_;
  std::vector<Tensor> tensors_;
};

}  // namespace cw::gguf
