// AVX2 element-wise ops (ops.h); built with -mavx2 -mfma -mf16c.
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/x86_simd.h"

namespace cw::kernels {

namespace {
inline __m256 swiglu8(__m256 g, __m256 u) {
  const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
  return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}
}  // namespace

// The tail goes through the same 8-lane code (padded), so an element's result never depends on where it
// sits in the array: the forward pass applies this per row block and must equal one call over all rows.
void swiglu_avx2(const float* g, const float* u, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, swiglu8(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
  if (i < n) {
    float gt[8] = {}, ut[8] = {}, yt[8];
    std::copy(g + i, g + n, gt);
    std::copy(u + i, u + n, ut);
    _mm256_storeu_ps(yt, swiglu8(_mm256_loadu_ps(gt), _mm256_loadu_ps(ut)));
    std::copy(yt, yt + (n - i), y + i);
  }
}

void swiglu_rows_avx2(const float* g, const float* u, float* y, int64_t n_rows, int64_t n_cols, int64_t ld) {
  for (int64_t r = 0; r < n_rows; ++r) swiglu_avx2(g + r * ld, u + r * ld, y + r * ld, n_cols);
}

}  // namespace cw::kernels
