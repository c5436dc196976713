// K-quant dot kernels (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K weights x Q8_K activations), portable scalar versions,
// and the family registry kquant_dot_kernels().
//
// What and why: a k-quant weight super-block of 256 values carries small integer scales (and mins) per
// sub-block of 16 or 32 against one or two fp16 super-scales; the Q8_K activation block carries an fp32
// scale, 256 int8 codes and the sums of each run of 16 codes (bsums). So the dot product of one super-block
// is exact integer arithmetic up to two float multiplies:
//   d_w * d_a * sum_sub sc * sum(q_w * q_a)  -  dmin_w * d_a * sum_sub mn * bsum
// (the second term only for the affine types Q2_K/Q4_K/Q5_K; the mins never touch the codes because
// sum(mn * q_a) over a sub-block is mn times its bsums). Here each super-block is unpacked into int8 codes
// in element order (Q3_K and Q6_K already centred, so they need no bsum correction), summed per sub-block
// in int32, and only the per-super-block totals are converted to fp32 and accumulated. The result equals
// the fp64 dot of the reference dequantizations (quant_ref.h) up to fp32 rounding of those few products.
// The activation quantizer of the scalar path is the reference quantize_row_q8_K_ref itself.
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/kquant_kernels.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {
namespace {

inline float load_half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}

// The parts of a Q8_K block the dot products need; the block is read in place (no alignment assumed).
struct ActBlock {
  float d;
  const int8_t* qs;
  int16_t bsums[kQK_K / 16];
};

inline ActBlock load_act(const uint8_t* p) {
  ActBlock b;
  std::memcpy(&b.d, p + offsetof(BlockQ8_K, d), sizeof(float));
  b.qs = reinterpret_cast<const int8_t*>(p + offsetof(BlockQ8_K, qs));
  std::memcpy(b.bsums, p + offsetof(BlockQ8_K, bsums), sizeof(b.bsums));
  return b;
}

// sum_{e < kLen} q[e] * a[e] in int32 (|sum| <= 32 * 64 * 128, no overflow). A fixed length lets the
// compiler unroll (and, on the baseline ISA, vectorize with SSE2) the loop.
template <int kLen>
inline int dot_i8(const int8_t* q, const int8_t* a) {
  int s = 0;
  for (int e = 0; e < kLen; ++e) s += static_cast<int>(q[e]) * static_cast<int>(a[e]);
  return s;
}

// 6-bit scale and min codes of Q4_K/Q5_K (same packing as get_scale_min_k4 in quant_ref_k.cc).
inline void unpack_scales_k4(const uint8_t* q, int* sc, int* mn) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = q[j] & 63;
    mn[j] = q[j + 4] & 63;
    sc[j + 4] = (q[j + 8] & 0x0f) | ((q[j] >> 6) << 4);
    mn[j + 4] = (q[j + 8] >> 4) | ((q[j + 4] >> 6) << 4);
  }
}

float vec_dot_q2_K(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const uint8_t*>(w);
  const auto* y = static_cast<const uint8_t*>(a);
  float sum = 0.0f;
  int8_t q[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i, x += sizeof(BlockQ2_K), y += sizeof(BlockQ8_K)) {
    const ActBlock ab = load_act(y);
    const uint8_t* scales = x + offsetof(BlockQ2_K, scales);
    const uint8_t* qs = x + offsetof(BlockQ2_K, qs);
    for (int h = 0; h < 2; ++h)  // element 128 h + 32 g + l: bits 2g..2g+1 of qs[32 h + l]
      for (int g = 0; g < 4; ++g)
        for (int l = 0; l < 32; ++l) q[128 * h + 32 * g + l] = static_cast<int8_t>((qs[32 * h + l] >> (2 * g)) & 3);
    int isum = 0, msum = 0;
    for (int j = 0; j < 16; ++j) {
      isum += (scales[j] & 0x0f) * dot_i8<16>(q + 16 * j, ab.qs + 16 * j);
      msum += (scales[j] >> 4) * ab.bsums[j];
    }
    const float d = load_half(x + offsetof(BlockQ2_K, d)) * ab.d;
    const float dmin = load_half(x + offsetof(BlockQ2_K, dmin)) * ab.d;
    sum += d * static_cast<float>(isum) - dmin * static_cast<float>(msum);
  }
  return sum;
}

float vec_dot_q3_K(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const uint8_t*>(w);
  const auto* y = static_cast<const uint8_t*>(a);
  float sum = 0.0f;
  int8_t q[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i, x += sizeof(BlockQ3_K), y += sizeof(BlockQ8_K)) {
    const ActBlock ab = load_act(y);
    const uint8_t* hmask = x + offsetof(BlockQ3_K, hmask);
    const uint8_t* qs = x + offsetof(BlockQ3_K, qs);
    const uint8_t* s = x + offsetof(BlockQ3_K, scales);
    for (int h = 0; h < 2; ++h) {  // element 128 h + 32 g + l; its high bit is bit 4 h + g of hmask[l]
      for (int g = 0; g < 4; ++g) {
        for (int l = 0; l < 32; ++l) {
          const int lo = (qs[32 * h + l] >> (2 * g)) & 3;
          const int hi = (hmask[l] >> (4 * h + g)) & 1;
          q[128 * h + 32 * g + l] = static_cast<int8_t>(lo + 4 * hi - 4);
        }
      }
    }
    int isum = 0;
    for (int j = 0; j < 16; ++j) {
      const int code = ((s[j % 8] >> (4 * (j / 8))) & 0x0f) | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4);
      isum += (code - 32) * dot_i8<16>(q + 16 * j, ab.qs + 16 * j);
    }
    sum += load_half(x + offsetof(BlockQ3_K, d)) * ab.d * static_cast<float>(isum);
  }
  return sum;
}

// Q4_K (kBits = 4) and Q5_K (kBits = 5): sub-blocks of 32, affine.
template <int kBits>
float vec_dot_q45_K(int64_t n, const void* w, const void* a) {
  using Block = std::conditional_t<kBits == 4, BlockQ4_K, BlockQ5_K>;
  const auto* x = static_cast<const uint8_t*>(w);
  const auto* y = static_cast<const uint8_t*>(a);
  float sum = 0.0f;
  int8_t q[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i, x += sizeof(Block), y += sizeof(BlockQ8_K)) {
    const ActBlock ab = load_act(y);
    const uint8_t* qs = x + offsetof(Block, qs);
    for (int c = 0; c < 4; ++c) {  // element 64 c + l: low nibble of qs[32 c + l]; 64 c + 32 + l: high nibble
      for (int l = 0; l < 32; ++l) {
        q[64 * c + l] = static_cast<int8_t>(qs[32 * c + l] & 0x0f);
        q[64 * c + 32 + l] = static_cast<int8_t>(qs[32 * c + l] >> 4);
      }
    }
    if constexpr (kBits == 5) {  // 5th bit of element 32 j + l: bit j of qh[l]
      const uint8_t* qh = x + offsetof(BlockQ5_K, qh);
      for (int j = 0; j < 8; ++j)
        for (int l = 0; l < 32; ++l) q[32 * j + l] = static_cast<int8_t>(q[32 * j + l] | (((qh[l] >> j) & 1) << 4));
    }
    int sc[8], mn[8];
    unpack_scales_k4(x + offsetof(Block, scales), sc, mn);
    int isum = 0, msum = 0;
    for (int j = 0; j < 8; ++j) {
      isum += sc[j] * dot_i8<32>(q + 32 * j, ab.qs + 32 * j);
      msum += mn[j] * (ab.bsums[2 * j] + ab.bsums[2 * j + 1]);
    }
    const float d = load_half(x + offsetof(Block, d)) * ab.d;
    const float dmin = load_half(x + offsetof(Block, dmin)) * ab.d;
    sum += d * static_cast<float>(isum) - dmin * static_cast<float>(msum);
  }
  return sum;
}

float vec_dot_q6_K(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const uint8_t*>(w);
  const auto* y = static_cast<const uint8_t*>(a);
  float sum = 0.0f;
  int8_t q[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i, x += sizeof(BlockQ6_K), y += sizeof(BlockQ8_K)) {
    const ActBlock ab = load_act(y);
    const uint8_t* ql = x + offsetof(BlockQ6_K, ql);
    const uint8_t* qh = x + offsetof(BlockQ6_K, qh);
    const auto* scales = reinterpret_cast<const int8_t*>(x + offsetof(BlockQ6_K, scales));
    for (int h = 0; h < 2; ++h) {  // element 128 h + 32 k + l (see BlockQ6_K)
      for (int k = 0; k < 4; ++k) {
        for (int l = 0; l < 32; ++l) {
          const int lo = (ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0x0f;
          const int hi = (qh[32 * h + l] >> (2 * k)) & 3;
          q[128 * h + 32 * k + l] = static_cast<int8_t>((lo | (hi << 4)) - 32);
        }
      }
    }
    int isum = 0;
    for (int j = 0; j < 16; ++j) isum += scales[j] * dot_i8<16>(q + 16 * j, ab.qs + 16 * j);
    sum += load_half(x + offsetof(BlockQ6_K, d)) * ab.d * static_cast<float>(isum);
  }
  return sum;
}

constexpr DotKernels kScalar[] = {
    {kTypeQ2_K, kTypeQ8_K, quantize_row_q8_K_ref, vec_dot_q2_K, Isa::kScalar},
    {kTypeQ3_K, kTypeQ8_K, quantize_row_q8_K_ref, vec_dot_q3_K, Isa::kScalar},
    {kTypeQ4_K, kTypeQ8_K, quantize_row_q8_K_ref, vec_dot_q45_K<4>, Isa::kScalar},
    {kTypeQ5_K, kTypeQ8_K, quantize_row_q8_K_ref, vec_dot_q45_K<5>, Isa::kScalar},
    {kTypeQ6_K, kTypeQ8_K, quantize_row_q8_K_ref, vec_dot_q6_K, Isa::kScalar},
};

}  // namespace

const DotKernels* kquant_dot_kernels(uint32_t w_type, Isa isa) {
  switch (isa) {
    case Isa::kAvx512: return kquant_dot_kernels_avx512(w_type);
    case Isa::kAvx2: return kquant_dot_kernels_avx2(w_type);
    case Isa::kScalar:
      for (const auto& k : kScalar)
        if (k.w_type == w_type) return &k;
      return nullptr;
  }
  return nullptr;
}

}  // namespace cw::kernels
