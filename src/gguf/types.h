// GGML tensor types as they appear in GGUF files: id, name, block size (elements) and bytes per block.
// The formats are public facts (see docs/design/gguf.md); this table is ours.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cw::gguf {

// Numeric ids are the on-disk values of the `ggml_type` field of a tensor info.
enum class TensorType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kBF16 = 30,
};

struct TypeTraits {
  TensorType type;
  const char* name;       // "F32", "Q4_K", ... (llama.cpp's spelling, upper case)
  uint32_t block_size;    // elements per block
  uint32_t block_bytes;   // bytes per block
};

// Traits of a type id read from a file; nullopt for ids we do not know.
std::optional<TypeTraits> type_traits(uint32_t type_id);
const TypeTraits& type_traits(TensorType type);
// Case-insensitive lookup by name ("q4_k", "F16").
std::optional<TensorType> type_from_name(std::string_view name);
// Comma-separated list of the supported names, for error messages.
std::string supported_type_names();

// Bytes of a row of `n` elements; nullopt if n is not a multiple of the block size.
std::optional<uint64_t> row_bytes(TensorType type, uint64_t n);

}  // namespace cw::gguf
