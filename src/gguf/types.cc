#include "gguf/types.h"

#include <array>
#include <cctype>

#include "base/status.h"

namespace cw::gguf {
namespace {

// Block layouts (bytes per block of block_size elements):
//   F32 4, F16 2, BF16 2 per element; Q4_0 = f16 d + 16 B nibbles; Q4_1 = f16 d, m + 16 B;
//   Q5_0 = f16 d + 4 B high bits + 16 B; Q5_1 = f16 d, m + 4 B + 16 B; Q8_0 = f16 d + 32 int8;
//   Q8_1 = f16 d, s + 32 int8; Q2_K = 16 B scales + 64 B quants + f16 d, dmin; Q3_K = 32 B hmask + 64 B
//   quants + 12 B scales + f16 d; Q4_K = f16 d, dmin + 12 B scales + 128 B; Q5_K = Q4_K + 32 B high bits;
//   Q6_K = 128 B low + 64 B high + 16 int8 scales + f16 d; Q8_K = f32 d + 256 int8 + 16 int16 sums.
constexpr std::array<TypeTraits, 20> kTypes = {{
    {TensorType::kF32, "F32", 1, 4},
    {TensorType::kF16, "F16", 1, 2},
    {TensorType::kQ4_0, "Q4_0", 32, 18},
    {TensorType::kQ4_1, "Q4_1", 32, 20},
    {TensorType::kQ5_0, "Q5_0", 32, 22},
    {TensorType::kQ5_1, "Q5_1", 32, 24},
    {TensorType::kQ8_0, "Q8_0", 32, 34},
    {TensorType::kQ8_1, "Q8_1", 32, 36},
    {TensorType::kQ2_K, "Q2_K", 256, 84},
    {TensorType::kQ3_K, "Q3_K", 256, 110},
    {TensorType::kQ4_K, "Q4_K", 256, 144},
    {TensorType::kQ5_K, "Q5_K", 256, 176},
    {TensorType::kQ6_K, "Q6_K", 256, 210},
    {TensorType::kQ8_K, "Q8_K", 256, 292},
    {TensorType::kI8, "I8", 1, 1},
    {TensorType::kI16, "I16", 1, 2},
    {TensorType::kI32, "I32", 1, 4},
    {TensorType::kI64, "I64", 1, 8},
    {TensorType::kF64, "F64", 1, 8},
    {TensorType::kBF16, "BF16", 1, 2},
}};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

}  // namespace

std::optional<TypeTraits> type_traits(uint32_t type_id) {
  for (const auto& t : kTypes)
    if (static_cast<uint32_t>(t.type) == type_id) return t;
  return std::nullopt;
}

const TypeTraits& type_traits(TensorType type) {
  for (const auto& t : kTypes)
    if (t.type == type) return t;
  CW_CHECK_MSG(false, "unknown TensorType " + std::to_string(static_cast<uint32_t>(type)));
  __builtin_unreachable();
}

std::optional<TensorType> type_from_name(std::string_view name) {
  for (const auto& t : kTypes)
    if (iequals(t.name, name)) return t.type;
  return std::nullopt;
}

std::string supported_type_names() {
  std::string out;
  for (const auto& t : kTypes) {
    if (!out.empty()) out += ", ";
    out += t.name;
  }
  return out;
}

std::optional<uint64_t> row_bytes(TensorType type, uint64_t n) {
  const TypeTraits& t = type_traits(type);
  if (n % t.block_size != 0) return std::nullopt;
  return n / t.block_size * t.block_bytes;
}

}  // namespace cw::gguf
