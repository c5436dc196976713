// Unaligned load/store of the i-th block of a quantized row (blocks are packed structs read with memcpy,
// so rows need no alignment). Internal to the reference (de)quantizers.
#pragma once

#include <cstdint>
#include <cstring>

namespace cw::kernels {

template <typename Block>
inline Block load_block(const void* src, int64_t i) {
  Block b;
  std::memcpy(&b, static_cast<const uint8_t*>(src) + i * static_cast<int64_t>(sizeof(Block)), sizeof(Block));
  return b;
}

template <typename Block>
inline void store_block(void* dst, int64_t i, const Block& b) {
  std::memcpy(static_cast<uint8_t*>(dst) + i * static_cast<int64_t>(sizeof(Block)), &b, sizeof(Block));
}

}  // namespace cw::kernels
