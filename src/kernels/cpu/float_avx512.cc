// Float-type dot kernels for AVX-512 (compiled with AVX-512 flags; selected at run time only on CPUs with
// F/BW/VL/DQ/VNNI). 16-wide FMA with four accumulators; BF16·BF16 uses VDPBF16PS when the CPU has
// AVX512_BF16 (pairs of bf16 products summed in fp32), else the shift-and-FMA path.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/float_kernels.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {
namespace {

inline __m512 load_f16(const uint8_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
inline __m512 load_bf16(const uint8_t* p) {
  __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}
inline __m512 load_f32(const uint8_t* p) { return _mm512_loadu_ps(reinterpret_cast<const float*>(p)); }

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

template <__m512 (*Load)(const uint8_t*), int kBytes, float (*Cvt)(const uint8_t*)>
float dot(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const uint8_t*>(w);
  const auto* y = static_cast<const uint8_t*>(a);
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_fmadd_ps(Load(x + kBytes * i), Load(y + kBytes * i), s0);
    s1 = _mm512_fmadd_ps(Load(x + kBytes * (i + 16)), Load(y + kBytes * (i + 16)), s1);
    s2 = _mm512_fmadd_ps(Load(x + kBytes * (i + 32)), Load(y + kBytes * (i + 32)), s2);
    s3 = _mm512_fmadd_ps(Load(x + kBytes * (i + 48)), Load(y + kBytes * (i + 48)), s3);
  }
  for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(Load(x + kBytes * i), Load(y + kBytes * i), s0);
  float acc = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
  for (; i < n; ++i) acc += Cvt(x + kBytes * i) * Cvt(y + kBytes * i);
  return acc;
}

float dot_bf16_dp(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const uint8_t*>(w);
  const auto* y = static_cast<const uint8_t*>(a);
  __m512 s0 = _mm512_setzero_ps(), s1 = s0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_dpbf16_ps(s0, (__m512bh)_mm512_loadu_si512(x + 2 * i), (__m512bh)_mm512_loadu_si512(y + 2 * i));
    s1 = _mm512_dpbf16_ps(s1, (__m512bh)_mm512_loadu_si512(x + 2 * (i + 32)), (__m512bh)_mm512_loadu_si512(y + 2 * (i + 32)));
  }
  float acc = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
  for (; i < n; ++i) acc += cvt_bf16(x + 2 * i) * cvt_bf16(y + 2 * i);
  return acc;
}

void to_f16(const float* x, void* dst, int64_t n) {
  auto* d = static_cast<uint8_t*>(dst);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 2 * i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  if (i < n) quantize_row_f16_ref(x + i, d + 2 * i, n - i);
}

constexpr DotKernels kAvx512[] = {
    {kTypeF32, kTypeF32, quantize_row_f32_ref, dot<load_f32, 4, cvt_f32>, Isa::kAvx512},
    {kTypeF16, kTypeF16, to_f16, dot<load_f16, 2, cvt_f16>, Isa::kAvx512},
    {kTypeBF16, kTypeBF16, quantize_row_bf16_ref, dot<load_bf16, 2, cvt_bf16>, Isa::kAvx512},
};
constexpr DotKernels kBf16Dp = {kTypeBF16, kTypeBF16, quantize_row_bf16_ref, dot_bf16_dp, Isa::kAvx512};

}  // namespace

const DotKernels* float_dot_kernels_avx512(uint32_t w_type) {
  if (w_type == kTypeBF16 && cpu_has_avx512_bf16()) return &kBf16Dp;
  for (const auto& k : kAvx512)
    if (k.w_type == w_type) return &k;
  return nullptr;
}

}  // namespace cw::kernels
