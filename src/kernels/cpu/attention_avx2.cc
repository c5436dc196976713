// AVX2 + F16C attention over an fp16 KV cache (see attention.h for the numerics): fp16 loads converted
// with F16C, 8-wide FMAs over head_dim, the same rounding of Q and of the probabilities to fp16 as the
// scalar version. Selected at run time by attention_f16() and attention_f16_rows().
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/x86_simd.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/ops_ref.h"

namespace cw::kernels {
namespace {

inline __m256 load_h8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

}  // namespace

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

// One query vector of a tile: its (fp32) query, its output, how many positions it attends.
struct Query {
  const float* q;
  float* out;
  int64_t n_kv;
};

// r[p] = the sum of the 8 lanes of a[p], p < 8, as ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)).
inline __m256 reduce8x8(const __m256* a) {
  const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// NQ query vectors (all on KV head kvh) over positions [0, their n_kv). NQ is a template parameter so the
// PV accumulators stay in registers.
//
// Scores: positions are taken 8 at a time; their K rows are converted from fp16 once into kb ([8, D] fp32,
// L1) for all NQ queries; per query, 8 per-position accumulators of 8-lane partial sums over D, reduced
// together by reduce8x8 (instead of one horizontal sum per score). A score's arithmetic — its FMA chain
// over D, then the same reduction tree in every lane — depends only on its query and K row, never on the
// other queries of the tile or on the block of 8 it falls in. Softmax per query (softmax_f32_avx2),
// probabilities rounded to fp16 8 at a time. PV: per 8-dim slice, each V row converted once for all NQ
// queries, accumulated position after position (a query stops at its own n_kv). So every (row, head)
// result is the same whichever queries share its tile: the GQA heads of one row (decode) or of several rows
// (prefill, attention_f16_rows). Requires head_dim % 8 == 0 (checked by the callers).
template <int NQ>
void query_tile(const AttentionShape& s, const Query* qs, const KvBlocks& kv, int64_t kvh, float* scratch) {
  const int64_t D = s.head_dim, bs = kv.block_size;
  int64_t n_max = 0, n_min = INT64_MAX;
  for (int i = 0; i < NQ; ++i) n_max = std::max(n_max, qs[i].n_kv), n_min = std::min(n_min, qs[i].n_kv);
  const int64_t stride = (n_max + 7) / 8 * 8;
  float* scores = scratch;             // [NQ, stride]
  float* qr = scores + NQ * stride;    // [NQ, D]: queries rounded to fp16
  float* kb = qr + NQ * D;             // [8, D]: a block of K rows in fp32
  for (int i = 0; i < NQ; ++i)
    for (int64_t d = 0; d < D; d += 8)
      _mm256_storeu_ps(qr + i * D + d,
                       _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(qs[i].q + d), _MM_FROUND_TO_NEAREST_INT)));
  const auto k_row = [&](int64_t j) {
    return static_cast<const uint16_t*>(kv.k[j / bs]) + (j % bs) * s.kv_stride + kvh * D;
  };
  const auto v_row = [&](int64_t j) {
    return static_cast<const uint16_t*>(kv.v[j / bs]) + (j % bs) * s.kv_stride + kvh * D;
  };
  const __m256 scale = _mm256_set1_ps(s.scale);
  for (int64_t j0 = 0; j0 < n_max; j0 += 8) {
    const int64_t m = std::min<int64_t>(8, n_max - j0);
    for (int64_t p = 0; p < 8; ++p) {
      if (p < m) {
        const uint16_t* kj = k_row(j0 + p);
        for (int64_t d = 0; d < D; d += 8) _mm256_storeu_ps(kb + p * D + d, load_h8(kj + d));
      } else {
        for (int64_t d = 0; d < D; d += 8) _mm256_storeu_ps(kb + p * D + d, _mm256_setzero_ps());
      }
    }
    for (int i = 0; i < NQ; ++i) {
      if (j0 >= qs[i].n_kv) continue;
      const float* qi = qr + i * D;
      __m256 acc[8];
      const __m256 q0 = _mm256_loadu_ps(qi);
      for (int p = 0; p < 8; ++p) acc[p] = _mm256_mul_ps(q0, _mm256_loadu_ps(kb + p * D));
      for (int64_t d = 8; d < D; d += 8) {
        const __m256 qd = _mm256_loadu_ps(qi + d);
        for (int p = 0; p < 8; ++p) acc[p] = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kb + p * D + d), acc[p]);
      }
      _mm256_storeu_ps(scores + i * stride + j0, _mm256_mul_ps(reduce8x8(acc), scale));
    }
  }
  // Softmax per query, then the probabilities rounded to fp16 once (the V product's operand).
  for (int i = 0; i < NQ; ++i) {
    float* si = scores + i * stride;
    softmax_f32_avx2(si, qs[i].n_kv);
    for (int64_t j = 0; j < qs[i].n_kv; j += 8) {
      const __m256 p = _mm256_loadu_ps(si + j);  // lanes past n_kv are scratch (within stride)
      _mm256_storeu_ps(si + j, _mm256_cvtph_ps(_mm256_cvtps_ph(p, _MM_FROUND_TO_NEAREST_INT)));
    }
  }
  // out[i] = sum_j p[i][j] * V[j], one 8-dim slice at a time, positions in order.
  for (int64_t d0 = 0; d0 < D; d0 += 8) {
    __m256 acc[NQ];
    for (int i = 0; i < NQ; ++i) acc[i] = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j < n_min; ++j) {
      const __m256 v8 = load_h8(v_row(j) + d0);
      for (int i = 0; i < NQ; ++i) acc[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(scores + i * stride + j), v8, acc[i]);
    }
    for (; j < n_max; ++j) {
      const __m256 v8 = load_h8(v_row(j) + d0);
      for (int i = 0; i < NQ; ++i)
        if (j < qs[i].n_kv) acc[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(scores + i * stride + j), v8, acc[i]);
    }
    for (int i = 0; i < NQ; ++i) _mm256_storeu_ps(qs[i].out + d0, acc[i]);
  }
}

void run_tile(const AttentionShape& s, const Query* qs, int nq, const KvBlocks& kv, int64_t kvh, float* scratch) {
  static_assert(kAttentionMaxGroup == 8);
  switch (nq) {
    case 1: query_tile<1>(s, qs, kv, kvh, scratch); break;
    case 2: query_tile<2>(s, qs, kv, kvh, scratch); break;
    case 3: query_tile<3>(s, qs, kv, kvh, scratch); break;
    case 4: query_tile<4>(s, qs, kv, kvh, scratch); break;
    case 5: query_tile<5>(s, qs, kv, kvh, scratch); break;
    case 6: query_tile<6>(s, qs, kv, kvh, scratch); break;
    case 7: query_tile<7>(s, qs, kv, kvh, scratch); break;
    default: query_tile<8>(s, qs, kv, kvh, scratch); break;
  }
}

}  // namespace

void attention_f16_avx2(const AttentionShape& s, const float* q, const KvBlocks& kv, int64_t n_kv, float* out,
                        float* scratch, int64_t h0, int64_t h1) {
  const int64_t group = s.n_head / s.n_head_kv, D = s.head_dim;
  Query qs[kAttentionMaxGroup];
  for (int64_t h = h0; h < h1;) {
    const int64_t kvh = h / group;
    const int nq = static_cast<int>(std::min({h1, (kvh + 1) * group, h + kAttentionMaxGroup}) - h);
    for (int i = 0; i < nq; ++i) qs[i] = Query{q + (h + i) * D, out + (h + i) * D, n_kv};
    run_tile(s, qs, nq, kv, kvh, scratch);
    h += nq;
  }
}

void attention_f16_rows_avx2(const AttentionShape& s, const float* q, int64_t n_rows, const KvBlocks& kv,
                             int64_t n_kv0, int64_t kvh, float* out, float* scratch) {
  const int64_t group = s.n_head / s.n_head_kv, D = s.head_dim, q_dim = s.n_head * D;
  Query qs[kAttentionMaxGroup];
  int nq = 0;
  for (int64_t i = 0; i < n_rows; ++i)
    for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h)
      qs[nq++] = Query{q + i * q_dim + h * D, out + i * q_dim + h * D, n_kv0 + i};
  run_tile(s, qs, nq, kv, kvh, scratch);
}

}  // namespace cw::kernels
