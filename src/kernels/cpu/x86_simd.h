// Small AVX helpers shared by the ISA translation units (*_avx2.cc, *_avx512.cc and the *_x86*.h bodies
// they include). Include only from files compiled with AVX2 or higher: everything here has internal
// linkage, so each ISA file gets its own copy and no AVX code can be picked for a baseline caller.
#pragma once

#include <immintrin.h>

namespace cw::kernels {
namespace {

// Sum of the 8 lanes of v.
inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Maximum of the 8 lanes of v.
inline float hmax8(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace
}  // namespace cw::kernels
