// Portable integer dot products of the legacy quant formats with Q8_0/Q8_1 activation rows.
//
// What and why: a weight block (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0) and an activation block (Q8_0, or Q8_1 for the
// types with a min) both hold 32 small integers and fp16 scales, so their dot product is one exact integer
// dot of the codes times d_w * d_a (plus m_w * s_a for Q4_1/Q5_1, where Q8_1's s = d_a * sum(q_a)). This is
// what llama.cpp computes and what the SIMD files vectorise; it is also the fallback on CPUs without AVX2.
// The activation quantizers are the reference ones (quant_ref.h): they define the bytes the SIMD
// quantizers must reproduce.
//
// Numerics: the integer dot is exact; each block adds (float(d_w) * float(d_a)) * float(isum) (+ m_w * s_a)
// to one of four fp32 accumulators (block i goes to accumulator i % 4), summed pairwise at the end.
// Pointers need no alignment: fields are read byte-wise.
#include <cstdint>
#include <cstring>
#include <memory>

#include "base/status.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/legacy_kernels.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {
namespace {

inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof(h));
  return fp16_to_fp32(h);
}

inline uint32_t u32_at(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;  // little-endian host (x86-64) assumed, as everywhere in the GGUF code
}

// Activation block views. Q8_0: d, qs[32]. Q8_1: d, s, qs[32].
constexpr int kA0Qs = 2;
constexpr int kA1S = 2;
constexpr int kA1Qs = 4;

// Integer dots of one block: `w` points at the weight block, `q` at the activation codes.
inline int32_t idot_q4_0(const uint8_t* w, const int8_t* q) {
  const uint8_t* qs = w + 2;
  int32_t s = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    s += ((qs[j] & 0x0f) - 8) * q[j] + ((qs[j] >> 4) - 8) * q[j + kQK / 2];
  }
  return s;
}

inline int32_t idot_q4_1(const uint8_t* w, const int8_t* q) {
  const uint8_t* qs = w + 4;
  int32_t s = 0;
  for (int j = 0; j < kQK / 2; ++j) s += (qs[j] & 0x0f) * q[j] + (qs[j] >> 4) * q[j + kQK / 2];
  return s;
}

inline int32_t idot_q5_0(const uint8_t* w, const int8_t* q) {
  const uint32_t qh = u32_at(w + 2);
  const uint8_t* qs = w + 6;
  int32_t s = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    const int x0 = ((qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4)) - 16;
    const int x1 = ((qs[j] >> 4) | static_cast<int>(((qh >> (j + kQK / 2)) & 1u) << 4)) - 16;
    s += x0 * q[j] + x1 * q[j + kQK / 2];
  }
  return s;
}

inline int32_t idot_q5_1(const uint8_t* w, const int8_t* q) {
  const uint32_t qh = u32_at(w + 4);
  const uint8_t* qs = w + 8;
  int32_t s = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    const int x0 = (qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int x1 = (qs[j] >> 4) | static_cast<int>(((qh >> (j + kQK / 2)) & 1u) << 4);
    s += x0 * q[j] + x1 * q[j + kQK / 2];
  }
  return s;
}

inline int32_t idot_q8_0(const uint8_t* w, const int8_t* q) {
  const int8_t* qs = reinterpret_cast<const int8_t*>(w + 2);
  int32_t s = 0;
  for (int j = 0; j < kQK; ++j) s += qs[j] * q[j];
  return s;
}

// Weight types without a min: sum_b (d_w * d_a) * isum_b, Q8_0 activations.
template <int kWBytes, int32_t (*Idot)(const uint8_t*, const int8_t*)>
float dot_sym(int64_t n, const void* vw, const void* va) {
  CW_CHECK_MSG(n % kQK == 0, "row length must be a multiple of 32");
  const auto* w = static_cast<const uint8_t*>(vw);
  const auto* a = static_cast<const uint8_t*>(va);
  constexpr int kABytes = sizeof(BlockQ8_0);
  const int64_t nb = n / kQK;
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* wb = w + i * kWBytes;
    const uint8_t* ab = a + i * kABytes;
    const int32_t isum = Idot(wb, reinterpret_cast<const int8_t*>(ab + kA0Qs));
    acc[i & 3] += (half_at(wb) * half_at(ab)) * static_cast<float>(isum);
  }
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// Weight types with a min (d, m first): sum_b (d_w * d_a) * isum_b + m_w * s_a, Q8_1 activations.
template <int kWBytes, int32_t (*Idot)(const uint8_t*, const int8_t*)>
float dot_min(int64_t n, const void* vw, const void* va) {
  CW_CHECK_MSG(n % kQK == 0, "row length must be a multiple of 32");
  const auto* w = static_cast<const uint8_t*>(vw);
  const auto* a = static_cast<const uint8_t*>(va);
  constexpr int kABytes = sizeof(BlockQ8_1);
  const int64_t nb = n / kQK;
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* wb = w + i * kWBytes;
    const uint8_t* ab = a + i * kABytes;
    const int32_t isum = Idot(wb, reinterpret_cast<const int8_t*>(ab + kA1Qs));
    acc[i & 3] += (half_at(wb) * half_at(ab)) * static_cast<float>(isum) + half_at(wb + 2) * half_at(ab + kA1S);
  }
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

const DotKernels kQ4_0{kTypeQ4_0, kTypeQ8_0, quantize_row_q8_0_ref, dot_sym<sizeof(BlockQ4_0), idot_q4_0>,
                       Isa::kScalar};
const DotKernels kQ4_1{kTypeQ4_1, kTypeQ8_1, quantize_row_q8_1_ref, dot_min<sizeof(BlockQ4_1), idot_q4_1>,
                       Isa::kScalar};
const DotKernels kQ5_0{kTypeQ5_0, kTypeQ8_0, quantize_row_q8_0_ref, dot_sym<sizeof(BlockQ5_0), idot_q5_0>,
                       Isa::kScalar};
const DotKernels kQ5_1{kTypeQ5_1, kTypeQ8_1, quantize_row_q8_1_ref, dot_min<sizeof(BlockQ5_1), idot_q5_1>,
                       Isa::kScalar};
const DotKernels kQ8_0{kTypeQ8_0, kTypeQ8_0, quantize_row_q8_0_ref, dot_sym<sizeof(BlockQ8_0), idot_q8_0>,
                       Isa::kScalar};

}  // namespace

const float* legacy_half_table() {
  static const std::unique_ptr<float[]> table = [] {
    auto t = std::make_unique<float[]>(65536);
    for (uint32_t h = 0; h < 65536; ++h) t[h] = fp16_to_fp32(static_cast<uint16_t>(h));
    return t;
  }();
  return table.get();
}

const DotKernels* legacy_scalar_kernels(uint32_t w_type) {
  switch (w_type) {
    case kTypeQ4_0: return &kQ4_0;
    case kTypeQ4_1: return &kQ4_1;
    case kTypeQ5_0: return &kQ5_0;
    case kTypeQ5_1: return &kQ5_1;
    case kTypeQ8_0: return &kQ8_0;
    default: return nullptr;
  }
}

}  // namespace cw::kernels
