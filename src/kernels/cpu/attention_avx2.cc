// AVX2 + F16C attention over an fp16 KV cache (see attention.h for the numerics): fp16 loads converted
// with F16C, 8-wide FMAs over head_dim, the same rounding of Q and of the probabilities to fp16 as the
// scalar version. Selected at run time by attention_f16().
#include <immintrin.h>

#include <algorithm>
#include <cmath>

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
//
// The query heads of [h0, h1) that share a KV head (GQA) are processed together, up to kAttentionMaxGroup at
// a time: each cached K row is loaded and converted once for the whole group, and each V row once per
// 8-dim slice. For long contexts this divides the KV cache traffic by the group size. Per head the
// arithmetic is unchanged — each score is the 8-lane FMA chain over head_dim then hsum8, and each output
// lane accumulates its probability-weighted V values position after position — so the results are bit
// for bit those of processing the heads one at a time.
// softmax_ref's steps (max-subtracted exponentials, fp64 sum, one fp32 scale) with an 8-lane exp.
void softmax_f32_avx2(float* x, int64_t n) {
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
  float mx = hmax8(vmax);
  for (; i < n; ++i) mx = std::max(mx, x[i]);
  const __m256 m8 = _mm256_set1_ps(mx);
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m8));
    _mm256_storeu_ps(x + i, e);
    s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  alignas(32) double parts[4];
  _mm256_store_pd(parts, _mm256_add_pd(s0, s1));
  double sum = (parts[0] + parts[1]) + (parts[2] + parts[3]);
  if (i < n) {
    alignas(32) float tail[8], out[8];
    for (int k = 0; k < 8; ++k) tail[k] = i + k < n ? x[i + k] - mx : -INFINITY;
    _mm256_store_ps(out, exp8(_mm256_load_ps(tail)));
    for (int k = 0; i + k < n; ++k) x[i + k] = out[k], sum += out[k];
  }
  const __m256 inv = _mm256_set1_ps(static_cast<float>(1.0 / sum));
  i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
  for (; i < n; ++i) x[i] *= static_cast<float>(1.0 / sum);
}

namespace {

// Heads h .. h + G - 1 (all on KV head kvh); G is a template parameter so the accumulators stay in registers.
template <int G>
void head_group(const AttentionShape& s, const float* q, const KvBlocks& kv, int64_t n_kv, float* out,
                float* scratch, int64_t h, int64_t kvh) {
  const int64_t D = s.head_dim, bs = kv.block_size;
  float* scores = scratch;                          // [G, n_kv]
  float* qr = scratch + kAttentionMaxGroup * n_kv;  // [G, D]
  for (int g = 0; g < G; ++g)
    for (int64_t d = 0; d < D; d += 8)
      _mm256_storeu_ps(qr + g * D + d,
                       _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(q + (h + g) * D + d), _MM_FROUND_TO_NEAREST_INT)));
  // Scores of the G heads, position by position.
  for (int64_t b = 0, j = 0; j < n_kv; ++b) {
    const uint16_t* kj = static_cast<const uint16_t*>(kv.k[b]) + kvh * D;
    for (const int64_t end = std::min(n_kv, j + bs); j < end; ++j, kj += s.kv_stride) {
      __m256 acc[G];
      const __m256 k0 = load_h8(kj);
      for (int g = 0; g < G; ++g) acc[g] = _mm256_mul_ps(_mm256_loadu_ps(qr + g * D), k0);
      for (int64_t d = 8; d < D; d += 8) {
        const __m256 kd = load_h8(kj + d);
        for (int g = 0; g < G; ++g) acc[g] = _mm256_fmadd_ps(_mm256_loadu_ps(qr + g * D + d), kd, acc[g]);
      }
      for (int g = 0; g < G; ++g) scores[g * n_kv + j] = hsum8(acc[g]) * s.scale;
    }
  }
  // Softmax per head, then the probabilities rounded to fp16 once (the V product's operand).
  for (int g = 0; g < G; ++g) {
    float* sg = scores + g * n_kv;
    softmax_f32_avx2(sg, n_kv);
    for (int64_t j = 0; j < n_kv; ++j) sg[j] = round_f16(sg[j]);
  }
  // out[h + g] = sum_j p[g][j] * V[j], one 8-dim slice at a time, positions in order.
  for (int64_t d0 = 0; d0 < D; d0 += 8) {
    __m256 acc[G];
    for (int g = 0; g < G; ++g) acc[g] = _mm256_setzero_ps();
    for (int64_t b = 0, j = 0; j < n_kv; ++b) {
      const uint16_t* vj = static_cast<const uint16_t*>(kv.v[b]) + kvh * D + d0;
      for (const int64_t end = std::min(n_kv, j + bs); j < end; ++j, vj += s.kv_stride) {
        const __m256 v8 = load_h8(vj);
        for (int g = 0; g < G; ++g) acc[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(scores + g * n_kv + j), v8, acc[g]);
      }
    }
    for (int g = 0; g < G; ++g) _mm256_storeu_ps(out + (h + g) * D + d0, acc[g]);
  }
}

}  // namespace

void attention_f16_avx2(const AttentionShape& s, const float* q, const KvBlocks& kv, int64_t n_kv, float* out,
                        float* scratch, int64_t h0, int64_t h1) {
  const int64_t group = s.n_head / s.n_head_kv;
  static_assert(kAttentionMaxGroup == 8);
  for (int64_t h = h0; h < h1;) {
    const int64_t kvh = h / group;
    const int G = static_cast<int>(std::min({h1, (kvh + 1) * group, h + kAttentionMaxGroup}) - h);
    switch (G) {
      case 1: head_group<1>(s, q, kv, n_kv, out, scratch, h, kvh); break;
      case 2: head_group<2>(s, q, kv, n_kv, out, scratch, h, kvh); break;
      case 3: head_group<3>(s, q, kv, n_kv, out, scratch, h, kvh); break;
      case 4: head_group<4>(s, q, kv, n_kv, out, scratch, h, kvh); break;
      case 5: head_group<5>(s, q, kv, n_kv, out, scratch, h, kvh); break;
      case 6: head_group<6>(s, q, kv, n_kv, out, scratch, h, kvh); break;
      case 7: head_group<7>(s, q, kv, n_kv, out, scratch, h, kvh); break;
      default: head_group<8>(s, q, kv, n_kv, out, scratch, h, kvh); break;
    }
    h += G;
  }
}

}  // namespace cw::kernels
