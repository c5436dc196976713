// Plain float row conversions (F32, F16, BF16) and the type-erased table of reference (de)quantizers.
//
// What and why: code that walks a GGUF tensor (weight loading, tests, tools) needs one switch-free way to
// turn a row of any supported type into fp32 and back; this table is that registry. Adding a format is one
// row here plus its functions.
#include <cstring>

#include "base/status.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {

void dequantize_row_f32(const void* src, float* dst, int64_t n) {
  CW_CHECK(n >= 0);
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void dequantize_row_f16(const void* src, float* dst, int64_t n) {
  CW_CHECK(n >= 0);
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    dst[i] = fp16_to_fp32(h);
  }
}

void dequantize_row_bf16(const void* src, float* dst, int64_t n) {
  CW_CHECK(n >= 0);
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    dst[i] = bf16_to_fp32(h);
  }
}

void quantize_row_f32_ref(const float* src, void* dst, int64_t n) {
  CW_CHECK(n >= 0);
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void quantize_row_f16_ref(const float* src, void* dst, int64_t n) {
  CW_CHECK(n >= 0);
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = fp32_to_fp16(src[i]);
    std::memcpy(p + 2 * i, &h, 2);
  }
}

void quantize_row_bf16_ref(const float* src, void* dst, int64_t n) {
  CW_CHECK(n >= 0);
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = fp32_to_bf16(src[i]);
    std::memcpy(p + 2 * i, &h, 2);
  }
}

namespace {

constexpr QuantTraits kTraits[] = {
    {kTypeF32, "F32", 1, 4, dequantize_row_f32, quantize_row_f32_ref},
    {kTypeF16, "F16", 1, 2, dequantize_row_f16, quantize_row_f16_ref},
    {kTypeQ4_0, "Q4_0", kQK, sizeof(BlockQ4_0), dequantize_row_q4_0, quantize_row_q4_0_ref},
    {kTypeQ4_1, "Q4_1", kQK, sizeof(BlockQ4_1), dequantize_row_q4_1, quantize_row_q4_1_ref},
    {kTypeQ5_0, "Q5_0", kQK, sizeof(BlockQ5_0), dequantize_row_q5_0, quantize_row_q5_0_ref},
    {kTypeQ5_1, "Q5_1", kQK, sizeof(BlockQ5_1), dequantize_row_q5_1, quantize_row_q5_1_ref},
    {kTypeQ8_0, "Q8_0", kQK, sizeof(BlockQ8_0), dequantize_row_q8_0, quantize_row_q8_0_ref},
    {kTypeQ8_1, "Q8_1", kQK, sizeof(BlockQ8_1), dequantize_row_q8_1, quantize_row_q8_1_ref},
    {kTypeQ2_K, "Q2_K", kQK_K, sizeof(BlockQ2_K), dequantize_row_q2_K, quantize_row_q2_K_ref},
    {kTypeQ3_K, "Q3_K", kQK_K, sizeof(BlockQ3_K), dequantize_row_q3_K, quantize_row_q3_K_ref},
    {kTypeQ4_K, "Q4_K", kQK_K, sizeof(BlockQ4_K), dequantize_row_q4_K, quantize_row_q4_K_ref},
    {kTypeQ5_K, "Q5_K", kQK_K, sizeof(BlockQ5_K), dequantize_row_q5_K, quantize_row_q5_K_ref},
    {kTypeQ6_K, "Q6_K", kQK_K, sizeof(BlockQ6_K), dequantize_row_q6_K, quantize_row_q6_K_ref},
    {kTypeQ8_K, "Q8_K", kQK_K, sizeof(BlockQ8_K), dequantize_row_q8_K, quantize_row_q8_K_ref},
    {kTypeBF16, "BF16", 1, 2, dequantize_row_bf16, quantize_row_bf16_ref},
};

}  // namespace

const QuantTraits* quant_traits(uint32_t ggml_type_id) {
  for (const QuantTraits& t : kTraits) {
    if (t.type_id == ggml_type_id) return &t;
  }
  return nullptr;
}

int64_t quant_row_bytes(const QuantTraits& traits, int64_t n) {
  CW_CHECK_MSG(n >= 0 && n % traits.block_size == 0, "row length must be a multiple of the block size");
  return n / traits.block_size * traits.block_bytes;
}

}  // namespace cw::kernels
