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

// ---- rope_reposition_apply (ops_ref.h states the numerics; this reproduces rope_reposition_apply_ref's bits) ----
// Four pairs at a time in fp64 lanes: values widened exactly (fp16 via F16C), every product exact, the sums in
// the reference's order, one rounding to fp32 (and fp16). Coefficient vectors are built once per 4 pairs and
// reused for every head of the row.
namespace cw::kernels {
namespace {

inline __m256d load4_pd(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
inline __m256d load4_pd(const uint16_t* p) {
  return _mm256_cvtps_pd(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
inline void store4_pd(float* p, __m256d v) { _mm_storeu_ps(p, _mm256_cvtpd_ps(v)); }
inline void store4_pd(uint16_t* p, __m256d v) {
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p),
                   _mm_cvtps_ph(_mm256_cvtpd_ps(v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline double load1(const float* p) { return *p; }
inline double load1(const uint16_t* p) { return _cvtsh_ss(*p); }
inline void store1(float* p, double v) { *p = static_cast<float>(v); }
inline void store1(uint16_t* p, double v) {
  *p = static_cast<uint16_t>(_cvtss_sh(static_cast<float>(v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// (a * c - b * s) + (a * cl - b * sl) and (b * c + a * s) + (b * cl + a * sl): the reference's expressions.
inline __m256d rot0(__m256d a, __m256d b, __m256d c, __m256d cl, __m256d s, __m256d sl) {
  return _mm256_add_pd(_mm256_sub_pd(_mm256_mul_pd(a, c), _mm256_mul_pd(b, s)),
                       _mm256_sub_pd(_mm256_mul_pd(a, cl), _mm256_mul_pd(b, sl)));
}
inline __m256d rot1(__m256d a, __m256d b, __m256d c, __m256d cl, __m256d s, __m256d sl) {
  return _mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(b, c), _mm256_mul_pd(a, s)),
                       _mm256_add_pd(_mm256_mul_pd(b, cl), _mm256_mul_pd(a, sl)));
}

template <typename T>
void reposition_rows_avx2(T* k, int64_t n_rows, int64_t row_stride, int64_t n_head_kv, int64_t head_dim,
                          int64_t n_rot, RopeStyle style, const float* coeffs) {
  const int64_t half = n_rot / 2;
  const bool normal = style == RopeStyle::kNormal;
  // [-0, +0, -0, +0]: flips the sign of the even lanes (the first element of each interleaved pair).
  const __m256d even_neg = _mm256_set_pd(0.0, -0.0, 0.0, -0.0);
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* cf = coeffs + r * 2 * n_rot;
    const float *chi = cf, *clo = cf + half, *shi = cf + 2 * half, *slo = cf + 3 * half;
    T* row = k + r * row_stride;
    int64_t i = 0;
    for (; i + 4 <= half; i += 4) {
      const __m128 c4 = _mm_loadu_ps(chi + i), cl4 = _mm_loadu_ps(clo + i);
      const __m128 s4 = _mm_loadu_ps(shi + i), sl4 = _mm_loadu_ps(slo + i);
      if (normal) {
        // Elements 2i .. 2i+7 = pairs i .. i+3 interleaved: x = [a b a b], xs = [b a b a]; y = x c + xs (-+s), the
        // reference's a c - b s and b c + a s term by term (negating an exact product is exact).
        const __m256d c_lo = _mm256_cvtps_pd(_mm_unpacklo_ps(c4, c4)), c_hi = _mm256_cvtps_pd(_mm_unpackhi_ps(c4, c4));
        const __m256d cl_lo = _mm256_cvtps_pd(_mm_unpacklo_ps(cl4, cl4)),
                      cl_hi = _mm256_cvtps_pd(_mm_unpackhi_ps(cl4, cl4));
        const __m256d s_lo = _mm256_xor_pd(_mm256_cvtps_pd(_mm_unpacklo_ps(s4, s4)), even_neg),
                      s_hi = _mm256_xor_pd(_mm256_cvtps_pd(_mm_unpackhi_ps(s4, s4)), even_neg);
        const __m256d sl_lo = _mm256_xor_pd(_mm256_cvtps_pd(_mm_unpacklo_ps(sl4, sl4)), even_neg),
                      sl_hi = _mm256_xor_pd(_mm256_cvtps_pd(_mm_unpackhi_ps(sl4, sl4)), even_neg);
        for (int64_t h = 0; h < n_head_kv; ++h) {
          T* v = row + h * head_dim + 2 * i;
          const __m256d x_lo = load4_pd(v), x_hi = load4_pd(v + 4);
          const __m256d xs_lo = _mm256_permute_pd(x_lo, 0x5), xs_hi = _mm256_permute_pd(x_hi, 0x5);
          const __m256d y_lo =
              _mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(x_lo, c_lo), _mm256_mul_pd(xs_lo, s_lo)),
                            _mm256_add_pd(_mm256_mul_pd(x_lo, cl_lo), _mm256_mul_pd(xs_lo, sl_lo)));
          const __m256d y_hi =
              _mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(x_hi, c_hi), _mm256_mul_pd(xs_hi, s_hi)),
                            _mm256_add_pd(_mm256_mul_pd(x_hi, cl_hi), _mm256_mul_pd(xs_hi, sl_hi)));
          store4_pd(v, y_lo);
          store4_pd(v + 4, y_hi);
        }
      } else {
        const __m256d c = _mm256_cvtps_pd(c4), cl = _mm256_cvtps_pd(cl4);
        const __m256d s = _mm256_cvtps_pd(s4), sl = _mm256_cvtps_pd(sl4);
        for (int64_t h = 0; h < n_head_kv; ++h) {
          T* v = row + h * head_dim + i;
          const __m256d a = load4_pd(v), b = load4_pd(v + half);
          store4_pd(v, rot0(a, b, c, cl, s, sl));
          store4_pd(v + half, rot1(a, b, c, cl, s, sl));
        }
      }
    }
    for (; i < half; ++i) {  // the last n_rot/2 % 4 pairs, one at a time (same expressions)
      const double c = chi[i], cl = clo[i], s = shi[i], sl = slo[i];
      const int64_t ia = normal ? 2 * i : i, ib = normal ? 2 * i + 1 : i + half;
      for (int64_t h = 0; h < n_head_kv; ++h) {
        T* v = row + h * head_dim;
        const double a = load1(v + ia), b = load1(v + ib);
        store1(v + ia, (a * c - b * s) + (a * cl - b * sl));
        store1(v + ib, (b * c + a * s) + (b * cl + a * sl));
      }
    }
  }
}

}  // namespace

void rope_reposition_apply_avx2(void* k, KvElem elem, int64_t n_rows, int64_t row_stride, int64_t n_head_kv,
                                int64_t head_dim, int64_t n_rot, RopeStyle style, const float* coeffs) {
  if (elem == KvElem::kF16)
    reposition_rows_avx2(static_cast<uint16_t*>(k), n_rows, row_stride, n_head_kv, head_dim, n_rot, style, coeffs);
  else
    reposition_rows_avx2(static_cast<float*>(k), n_rows, row_stride, n_head_kv, head_dim, n_rot, style, coeffs);
}

}  // namespace cw::kernels
