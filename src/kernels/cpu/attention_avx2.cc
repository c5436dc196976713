// AVX2 + F16C attention over an fp16 KV cache (see attention.h for the numerics): fp16 loads converted
// with F16C, 8-wide FMAs over head_dim, the same rounding of Q and of the probabilities to fp16 as the
// scalar version. Selected at run time by attention_f16().
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/x86_simd.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/ops_ref.h"

namespace cw::kernels {
namespace {

inline __m256 load_h8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

inline float round_f16(float x) {
  return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtps_ph(_mm_set_ss(x), _MM_FROUND_TO_NEAREST_INT)));
}

}  // namespace

// Requires head_dim % 8 == 0 (checked by the caller).
void attention_f16_avx2(const AttentionShape& s, const float* q, const KvBlocks& kv, int64_t n_kv, float* out,
                        float* scratch, int64_t h0, int64_t h1) {
  const int64_t D = s.head_dim, group = s.n_head / s.n_head_kv, bs = kv.block_size;
  float* scores = scratch;
  float* qr = scratch + n_kv;
  for (int64_t h = h0; h < h1; ++h) {
    for (int64_t d = 0; d < D; d += 8)
      _mm256_storeu_ps(qr + d, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(q + h * D + d), _MM_FROUND_TO_NEAREST_INT)));
    const int64_t kvh = h / group;
    for (int64_t b = 0, j = 0; j < n_kv; ++b) {
      const uint16_t* kj = static_cast<const uint16_t*>(kv.k[b]) + kvh * D;
      for (const int64_t end = std::min(n_kv, j + bs); j < end; ++j, kj += s.kv_stride) {
        __m256 acc = _mm256_mul_ps(_mm256_loadu_ps(qr), load_h8(kj));
        for (int64_t d = 8; d < D; d += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(qr + d), load_h8(kj + d), acc);
        scores[j] = hsum8(acc) * s.scale;
      }
    }
    softmax_ref(scores, n_kv);
    float* o = out + h * D;
    for (int64_t d0 = 0; d0 < D; d0 += 32) {
      // Up to four 8-wide accumulators over a 32-dim slice of the head, kept in registers across positions.
      const int64_t w = std::min<int64_t>(32, D - d0);
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (int64_t b = 0, j = 0; j < n_kv; ++b) {
        const uint16_t* vj = static_cast<const uint16_t*>(kv.v[b]) + kvh * D + d0;
        for (const int64_t end = std::min(n_kv, j + bs); j < end; ++j, vj += s.kv_stride) {
          const __m256 p = _mm256_set1_ps(round_f16(scores[j]));
          a0 = _mm256_fmadd_ps(p, load_h8(vj), a0);
          if (w > 8) a1 = _mm256_fmadd_ps(p, load_h8(vj + 8), a1);
          if (w > 16) a2 = _mm256_fmadd_ps(p, load_h8(vj + 16), a2);
          if (w > 24) a3 = _mm256_fmadd_ps(p, load_h8(vj + 24), a3);
        }
      }
      _mm256_storeu_ps(o + d0, a0);
      if (w > 8) _mm256_storeu_ps(o + d0 + 8, a1);
      if (w > 16) _mm256_storeu_ps(o + d0 + 16, a2);
      if (w > 24) _mm256_storeu_ps(o + d0 + 24, a3);
    }
  }
}

}  // namespace cw::kernels
