// K-quant dot kernels (Q2_K .. Q6_K x Q8_K) and the Q8_K activation quantizer for AVX-512 (F, BW, VL, DQ,
// VNNI; compiled with those flags only, selected at run time by cpu/dispatch.h).
//
// What and why: a GEMV over k-quant weights is bound by memory bandwidth, not by arithmetic, so the dot
// products reuse the 256-bit bodies of kquant_x86_impl.h and only gain VNNI's vpdpwssd (scale multiply and
// int32 accumulate fused into one instruction, AVX512-VL encoding); 512-bit registers would double the
// unpacking width without reading weights any faster. The activation quantizer is 512-bit: it needs no
// packing permutes because vpmovdb narrows int32 to int8 by truncation, exactly the reference's int ->
// int8_t cast (see the byte-exactness notes in kquant_x86_impl.h).
// GCC 12's AVX-512 intrinsic headers trip -Wmaybe-uninitialized on their internal `__Y = __Y` placeholder
// vectors (a known false positive); silenced for this file only.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#define CW_KQUANT_VNNI 1
#include "kernels/cpu/kquant_kernels.h"
#include "kernels/cpu/kquant_x86_impl.h"
#include "kernels/cpu/kquant_gemm_x86.h"

namespace cw::kernels {
namespace {

void quantize_row_q8_K_avx512(const float* src, void* dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst);
  const __m512i v127 = _mm512_set1_epi32(127);
  for (int64_t i = 0; i < n / kQK_K; ++i, out += sizeof(BlockQ8_K)) {
    const float* x = src + i * kQK_K;
    // Integer max of the |x| bit patterns: the float max for finite input, while NaN and inf win it.
    __m512i m0 = _mm512_setzero_si512(), m1 = m0, m2 = m0, m3 = m0;
    for (int k = 0; k < kQK_K; k += 64) {
      m0 = _mm512_max_epi32(_mm512_castps_si512(_mm512_abs_ps(_mm512_loadu_ps(x + k))), m0);
      m1 = _mm512_max_epi32(_mm512_castps_si512(_mm512_abs_ps(_mm512_loadu_ps(x + k + 16))), m1);
      m2 = _mm512_max_epi32(_mm512_castps_si512(_mm512_abs_ps(_mm512_loadu_ps(x + k + 32))), m2);
      m3 = _mm512_max_epi32(_mm512_castps_si512(_mm512_abs_ps(_mm512_loadu_ps(x + k + 48))), m3);
    }
    const int32_t amax_bits =
        _mm512_reduce_max_epi32(_mm512_max_epi32(_mm512_max_epi32(m0, m1), _mm512_max_epi32(m2, m3)));
    if (amax_bits == 0 || amax_bits >= 0x7f800000) {  // all zero; or NaN/inf: d NaN, codes 0 (as the ref)
      std::memset(out, 0, sizeof(BlockQ8_K));
      if (amax_bits != 0) {
        const float nan = __builtin_nanf("");
        std::memcpy(out + kActD, &nan, sizeof(float));
      }
      continue;
    }
    float amax;
    std::memcpy(&amax, &amax_bits, sizeof(amax));
    // The first element of magnitude amax gives the sign (the reference keeps the first strict maximum).
    const __m512 va = _mm512_set1_ps(amax);
    float max = amax;
    for (int k = 0; k < kQK_K; k += 16) {
      const __mmask16 m = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + k)), va, _CMP_EQ_OQ);
      if (m != 0) {
        std::memcpy(&max, x + k + __builtin_ctz(static_cast<unsigned>(m)), sizeof(float));
        break;
      }
    }
    const float iscale = -127.0f / max;
    const float d = 1.0f / iscale;
    std::memcpy(out + kActD, &d, sizeof(float));
    const __m512 vis = _mm512_set1_ps(iscale);
    for (int k = 0; k < kQK_K; k += 16) {
      const __m512i v = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + k), vis)), v127);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + kActQs + k), _mm512_cvtepi32_epi8(v));
    }
    q8_K_bsums(out + kActQs, out + kActBsums);
  }
}

constexpr DotKernels kAvx512[] = {
    {kTypeQ2_K, kTypeQ8_K, quantize_row_q8_K_avx512, vec_dot_q2_K, Isa::kAvx512,
     gemm_kquant<kexp_q2_K, true>},
    {kTypeQ3_K, kTypeQ8_K, quantize_row_q8_K_avx512, vec_dot_q3_K, Isa::kAvx512,
     gemm_kquant<kexp_q3_K, false>},
    {kTypeQ4_K, kTypeQ8_K, quantize_row_q8_K_avx512, vec_dot_q45_K<4>, Isa::kAvx512,
     gemm_kquant<kexp_q45_K<4>, true>},
    {kTypeQ5_K, kTypeQ8_K, quantize_row_q8_K_avx512, vec_dot_q45_K<5>, Isa::kAvx512,
     gemm_kquant<kexp_q45_K<5>, true>},
    {kTypeQ6_K, kTypeQ8_K, quantize_row_q8_K_avx512, vec_dot_q6_K, Isa::kAvx512,
     gemm_kquant<kexp_q6_K, false>},
};

}  // namespace

const DotKernels* kquant_dot_kernels_avx512(uint32_t w_type) {
  for (const auto& k : kAvx512)
    if (k.w_type == w_type) return &k;
  return nullptr;
}

}  // namespace cw::kernels
