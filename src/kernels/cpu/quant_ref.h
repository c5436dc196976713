// Scalar reference implementations of the GGML block quantization formats found in GGUF files.
//
// What and why: a quantized tensor row is a sequence of fixed-size blocks, each holding a few scales and
// packed integer codes. The structs below are the exact on-disk layouts (little-endian, no padding; sizes
// are static_asserted). `dequantize_row_*` is the normative meaning of each format: it reproduces what
// llama.cpp's dequantization computes, bit for bit in fp32 (same operations in the same order, no fused
// multiply-add), and is the oracle every optimised kernel and the forward pass are tested against.
// `quantize_row_*_ref` are reference quantizers (round to nearest with a scale search for k-quants): good
// enough to write model files and to quantize activations, not tuned for speed. The legacy quantizers
// (Q4_0 .. Q8_1) follow GGML's reference rounding, so they reproduce llama.cpp's output (without imatrix);
// the k-quant quantizers are our own search and give comparable, not identical, codes.
//
// Contract: `n` (elements) must be a multiple of the type's block size (checked: a violation is a bug and
// aborts). `src`/`dst` need no particular alignment (blocks are copied with memcpy). Functions are pure and
// thread-safe. Element order inside each block is documented next to its struct. The activation quantizers
// (Q8_0, Q8_1, Q8_K) turn a block holding a NaN or an inf into d = NaN (and s = NaN for Q8_1) with all codes
// 0, so non-finite activations make every dot product with them NaN instead of finite garbage.
#pragma once

#include <cstdint>

namespace cw::kernels {

inline constexpr int kQK = 32;           // elements per block of the legacy formats
inline constexpr int kQK_K = 256;        // elements per super-block of the k-quants
inline constexpr int kKScaleSize = 12;   // bytes of packed 6-bit scales/mins in Q3_K, Q4_K, Q5_K

// GGML type ids, as stored in GGUF tensor infos (the kernels do not depend on cw_gguf).
inline constexpr uint32_t kTypeF32 = 0;
inline constexpr uint32_t kTypeF16 = 1;
inline constexpr uint32_t kTypeQ4_0 = 2;
inline constexpr uint32_t kTypeQ4_1 = 3;
inline constexpr uint32_t kTypeQ5_0 = 6;
inline constexpr uint32_t kTypeQ5_1 = 7;
inline constexpr uint32_t kTypeQ8_0 = 8;
inline constexpr uint32_t kTypeQ8_1 = 9;
inline constexpr uint32_t kTypeQ2_K = 10;
inline constexpr uint32_t kTypeQ3_K = 11;
inline constexpr uint32_t kTypeQ4_K = 12;
inline constexpr uint32_t kTypeQ5_K = 13;
inline constexpr uint32_t kTypeQ6_K = 14;
inline constexpr uint32_t kTypeQ8_K = 15;
inline constexpr uint32_t kTypeBF16 = 30;

// Halves are raw IEEE binary16 bit patterns (see fp16.h).

// ---- legacy formats: blocks of 32 ----------------------------------------------------------------------

// x[j] = (q_j - 8) * d. qs[j] holds element j in its low nibble and element j + 16 in its high nibble.
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQK / 2];
};
// x[j] = q_j * d + m; nibble order as Q4_0.
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK / 2];
};
// x[j] = (q_j - 16) * d, q_j 5 bits: low 4 bits in nibbles as Q4_0, bit 4 of element j is bit j of the
// little-endian uint32 qh.
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
// x[j] = q_j * d + m; bits as Q5_0.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
// x[j] = qs[j] * d.
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK];
};
// x[j] = qs[j] * d; s = d * sum(qs) (used by dot products with Q4_1/Q5_1).
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[kQK];
};

// ---- k-quants: super-blocks of 256 ---------------------------------------------------------------------

// 16 sub-blocks of 16. scales[i]: low nibble = scale code, high nibble = min code of sub-block i;
// x = d * sc * q - dmin * mn, q 2 bits. Element e: 128-half h = e / 128, r = e % 128, its bits are
// (qs[32 * h + r % 32] >> (2 * (r / 32))) & 3.
struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  uint16_t d;
  uint16_t dmin;
};
// 16 sub-blocks of 16, x = d * (sc - 32) * (q - 4), q 3 bits: low 2 bits placed as Q2_K, high bit is bit
// e / 32 of hmask[e % 32]. 6-bit scale code i: low 4 bits = nibble (i / 8) of scales[i % 8], high 2 bits =
// bits 2 * (i / 4) .. +1 of scales[8 + i % 4].
struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[kKScaleSize];
  uint16_t d;
};
// 8 sub-blocks of 32 with 6-bit scale and min codes (packing: see get_scale_min_k4 in quant_ref_k.cc);
// x = d * sc * q - dmin * mn, q 4 bits. Element e: chunk c = e / 64, qs[32 * c + e % 32], low nibble for
// e % 64 < 32, high nibble otherwise.
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qs[kQK_K / 2];
};
// As Q4_K with a 5th bit: bit e / 32 of qh[e % 32].
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
// 16 sub-blocks of 16, x = d * scales[e / 16] * (q - 32), q 6 bits. Element e: h = e / 128, r = e % 128,
// k = r / 32, l = r % 32: low 4 bits = nibble (k / 2) of ql[64 * h + 32 * (k % 2) + l], high 2 bits =
// bits 2k..2k+1 of qh[32 * h + l].
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};
// Intermediate format for activations: x = d * qs (d is fp32); bsums[i] = sum of qs[16 i .. 16 i + 15].
struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);

// ---- row functions -------------------------------------------------------------------------------------

void dequantize_row_q4_0(const void* src, float* dst, int64_t n);
void dequantize_row_q4_1(const void* src, float* dst, int64_t n);
void dequantize_row_q5_0(const void* src, float* dst, int64_t n);
void dequantize_row_q5_1(const void* src, float* dst, int64_t n);
void dequantize_row_q8_0(const void* src, float* dst, int64_t n);
void dequantize_row_q8_1(const void* src, float* dst, int64_t n);
void dequantize_row_q2_K(const void* src, float* dst, int64_t n);
void dequantize_row_q3_K(const void* src, float* dst, int64_t n);
void dequantize_row_q4_K(const void* src, float* dst, int64_t n);
void dequantize_row_q5_K(const void* src, float* dst, int64_t n);
void dequantize_row_q6_K(const void* src, float* dst, int64_t n);
void dequantize_row_q8_K(const void* src, float* dst, int64_t n);
void dequantize_row_f32(const void* src, float* dst, int64_t n);
void dequantize_row_f16(const void* src, float* dst, int64_t n);
void dequantize_row_bf16(const void* src, float* dst, int64_t n);

void quantize_row_q4_0_ref(const float* src, void* dst, int64_t n);
void quantize_row_q4_1_ref(const float* src, void* dst, int64_t n);
void quantize_row_q5_0_ref(const float* src, void* dst, int64_t n);
void quantize_row_q5_1_ref(const float* src, void* dst, int64_t n);
void quantize_row_q8_0_ref(const float* src, void* dst, int64_t n);
void quantize_row_q8_1_ref(const float* src, void* dst, int64_t n);
void quantize_row_q2_K_ref(const float* src, void* dst, int64_t n);
void quantize_row_q3_K_ref(const float* src, void* dst, int64_t n);
void quantize_row_q4_K_ref(const float* src, void* dst, int64_t n);
void quantize_row_q5_K_ref(const float* src, void* dst, int64_t n);
void quantize_row_q6_K_ref(const float* src, void* dst, int64_t n);
void quantize_row_q8_K_ref(const float* src, void* dst, int64_t n);
void quantize_row_f32_ref(const float* src, void* dst, int64_t n);
void quantize_row_f16_ref(const float* src, void* dst, int64_t n);
void quantize_row_bf16_ref(const float* src, void* dst, int64_t n);

// ---- type-erased table ---------------------------------------------------------------------------------

using DequantizeRowFn = void (*)(const void* src, float* dst, int64_t n);
using QuantizeRowFn = void (*)(const float* src, void* dst, int64_t n);

struct QuantTraits {
  uint32_t type_id;       // GGML type id
  const char* name;       // "Q4_K", llama.cpp's spelling
  int block_size;         // elements per block (1 for F32/F16/BF16)
  int block_bytes;        // bytes per block
  DequantizeRowFn dequantize;
  QuantizeRowFn quantize;
};

// Traits of a GGML type id; nullptr for ids without a reference implementation here (I8, F64, ...).
const QuantTraits* quant_traits(uint32_t ggml_type_id);

// Bytes of a row of `n` elements (n must be a multiple of the block size: checked).
int64_t quant_row_bytes(const QuantTraits& traits, int64_t n);

}  // namespace cw::kernels
