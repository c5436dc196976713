// Float-type dot kernels for AVX2 + FMA + F16C (compiled with those flags only; selected at run time).
//
// What and why: F32·F32, F16·F16 (F16C conversion) and BF16·BF16 (shift into the fp32 high half) rows,
// four independent 8-wide FMA accumulators to hide FMA latency. F16 activation conversion uses F16C with
// round-to-nearest-even, which is bit-identical to the scalar reference conversion.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/x86_simd.h"
#include "kernels/cpu/float_kernels.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {
namespace {

inline __m256 load_f16(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline __m256 load_bf16(const uint8_t* p) {
  __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}
inline __m256 load_f32(const uint8_t* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }

template <__m256 (*Load)(const uint8_t*), int kBytes, float (*Cvt)(const uint8_t*)>
float dot(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const uint8_t*>(w);
  const auto* y = static_cast<const uint8_t*>(a);
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(Load(x + kBytes * i), Load(y + kBytes * i), s0);
    s1 = _mm256_fmadd_ps(Load(x + kBytes * (i + 8)), Load(y + kBytes * (i + 8)), s1);
    s2 = _mm256_fmadd_ps(Load(x + kBytes * (i + 16)), Load(y + kBytes * (i + 16)), s2);
    s3 = _mm256_fmadd_ps(Load(x + kBytes * (i + 24)), Load(y + kBytes * (i + 24)), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(Load(x + kBytes * i), Load(y + kBytes * i), s0);
  float acc = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < n; ++i) acc += Cvt(x + kBytes * i) * Cvt(y + kBytes * i);
  return acc;
}

float cvt_f32(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, 4);
  return f;
}
float cvt_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}
float cvt_bf16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return bf16_to_fp32(h);
}

void to_f16(const float* x, void* dst, int64_t n) {
  auto* d = static_cast<uint8_t*>(dst);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 2 * i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  if (i < n) quantize_row_f16_ref(x + i, d + 2 * i, n - i);
}

constexpr DotKernels kAvx2[] = {
    {kTypeF32, kTypeF32, quantize_row_f32_ref, dot<load_f32, 4, cvt_f32>, Isa::kAvx2},
    {kTypeF16, kTypeF16, to_f16, dot<load_f16, 2, cvt_f16>, Isa::kAvx2},
    {kTypeBF16, kTypeBF16, quantize_row_bf16_ref, dot<load_bf16, 2, cvt_bf16>, Isa::kAvx2},
};

}  // namespace

const DotKernels* float_dot_kernels_avx2(uint32_t w_type) {
  for (const auto& k : kAvx2)
    if (k.w_type == w_type) return &k;
  return nullptr;
}

}  // namespace cw::kernels
