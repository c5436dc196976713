// 256-bit x86 prefill GEMM for the k-quants (Q2_K .. Q6_K weights x Q8_K activations): the GemmFn of the
// k-quant DotKernels tables. Include it from kquant_avx2.cc and kquant_avx512.cc only, after
// kquant_x86_impl.h (internal linkage; each ISA translation unit compiles its own copy with its own flags;
// with CW_KQUANT_VNNI the scale multiply-accumulate is one vpdpwssd).
//
// What and why: in a GEMV most of the work per super-block is unpacking the codes and scales of the weight
// row (shifts, masks, high-bit merges, 6-bit scale decoding, scale broadcasts), then 8 vpmaddubsw + 8 scale
// vpmaddwd. In prefill every weight row meets many tokens, so here each weight row of the call is expanded
// ONCE into a uniform, cache-resident format (KExpBlock: 256 unsigned codes in element order, per 32 codes
// a ready-made int16 scale vector, 16 int16 "min" coefficients, fp32 d and dmin), and the inner loop is a
// plain register-tiled int8 GEMM: a tile of 2 weight rows x 4 tokens keeps 8 int32 accumulators; per 32
// codes it loads 2 code vectors and 2 scale vectors and, per token, one activation vector that serves both
// rows (vpmaddubsw, then vpmaddwd by the scale). The mins (Q2_K/Q4_K/Q5_K) and the code offsets (Q3_K: 4,
// Q6_K: 32, stored as offset * scale with dmin = d) come from the activation bsums, one vpmaddwd per pair,
// before the chunk loop (offsets: as the accumulators' start value; mins: reduced and applied at once), so
// only the 8 accumulators are live across it.
// At each super-block end the 8 pair accumulators are reduced into one vector (lane = pair) by an hadd
// tree, converted once and multiplied by d_w * d_a (and dmin_w * d_a) in one FMA for all 8 pairs; the fp32
// result is stored only at the tile end. Loop order: token tiles outer, row tiles inner, so a tile's
// activations stay in L1 while the expanded rows (<= ~130 KB per call) stay in L2.
//
// Numerics: the integer sums per super-block and pair are exact, as in vec_dot; d_w * d_a is the same fp32
// product; only the fp32 accumulation order across super-blocks differs from vec_dot (one accumulator per
// pair instead of 8 lanes summed at the end), so results agree with vec_dot to fp32 summation-order
// rounding (~nb ulp), not bitwise.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {
namespace {

// One expanded super-block of one weight row. value(e) = d * sc(e) * codes[e] - dmin * mn[e / 16], where
// sc(e) is word (e % 32) / 16 * 8 of sc[e / 32] (so that vpmaddwd of a vpmaddubsw result with sc[k] applies
// sub-block 2k's scale to the low lane and 2k + 1's to the high lane).
struct alignas(64) KExpBlock {
  uint8_t codes[kQK_K];
  int16_t sc[8][16];
  int16_t mn[16];
  float d;
  float dmin;
  uint8_t pad[24];
};
static_assert(sizeof(KExpBlock) == 576);

inline void kexp_store(uint8_t* p, __m256i v) { _mm256_store_si256(reinterpret_cast<__m256i*>(p), v); }

// Scale vectors and mins of one expanded block from per-sub-block-of-16 scales and mins.
inline void kexp_put_scales(KExpBlock* o, const int16_t* sc16, const int16_t* mn16, float d, float dmin) {
  for (int k = 0; k < 8; ++k)
    kexp_store(reinterpret_cast<uint8_t*>(o->sc[k]),
               _mm256_setr_m128i(_mm_set1_epi16(sc16[2 * k]), _mm_set1_epi16(sc16[2 * k + 1])));
  std::memcpy(o->mn, mn16, sizeof(o->mn));
  o->d = d;
  o->dmin = dmin;
}

// ---- expansion, one function per type (nb super-blocks of row x into o[0 .. nb)) ----------------------

void kexp_q2_K(const uint8_t* x, int64_t nb, KExpBlock* o) {
  const __m256i m3 = _mm256_set1_epi8(3);
  for (int64_t i = 0; i < nb; ++i, x += sizeof(BlockQ2_K), ++o) {
    const uint8_t* qs = x + offsetof(BlockQ2_K, qs);
    for (int h = 0; h < 2; ++h) {  // element 128 h + 32 g + l: bits 2g..2g+1 of qs[32 h + l]
      const __m256i q = load256(qs + 32 * h);
      kexp_store(o->codes + 128 * h, _mm256_and_si256(q, m3));
      kexp_store(o->codes + 128 * h + 32, _mm256_and_si256(_mm256_srli_epi16(q, 2), m3));
      kexp_store(o->codes + 128 * h + 64, _mm256_and_si256(_mm256_srli_epi16(q, 4), m3));
      kexp_store(o->codes + 128 * h + 96, _mm256_and_si256(_mm256_srli_epi16(q, 6), m3));
    }
    const uint8_t* s = x + offsetof(BlockQ2_K, scales);
    int16_t sc[16], mn[16];
    for (int j = 0; j < 16; ++j) {
      sc[j] = static_cast<int16_t>(s[j] & 0x0f);
      mn[j] = static_cast<int16_t>(s[j] >> 4);
    }
    kexp_put_scales(o, sc, mn, half_at(x + offsetof(BlockQ2_K, d)), half_at(x + offsetof(BlockQ2_K, dmin)));
  }
}

template <int h>
inline void kexp_q3_K_half(const uint8_t* qs, __m256i hm, uint8_t* codes) {
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m256i q = load256(qs + 32 * h);
  kexp_store(codes + 128 * h, _mm256_or_si256(_mm256_and_si256(q, m3), q3_K_hbit<4 * h + 0>(hm)));
  kexp_store(codes + 128 * h + 32,
             _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2), m3), q3_K_hbit<4 * h + 1>(hm)));
  kexp_store(codes + 128 * h + 64,
             _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m3), q3_K_hbit<4 * h + 2>(hm)));
  kexp_store(codes + 128 * h + 96,
             _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 6), m3), q3_K_hbit<4 * h + 3>(hm)));
}

// Codes kept as stored (v + 4, 0..7); the offset becomes mn = 4 * sc with dmin = d.
void kexp_q3_K(const uint8_t* x, int64_t nb, KExpBlock* o) {
  for (int64_t i = 0; i < nb; ++i, x += sizeof(BlockQ3_K), ++o) {
    const __m256i hm = load256(x + offsetof(BlockQ3_K, hmask));
    const uint8_t* qs = x + offsetof(BlockQ3_K, qs);
    kexp_q3_K_half<0>(qs, hm, o->codes);
    kexp_q3_K_half<1>(qs, hm, o->codes);
    int8_t s8[16];
    _mm_storeu_si128(reinterpret_cast<__m128i*>(s8), q3_K_scales(x));
    int16_t sc[16], mn[16];
    for (int j = 0; j < 16; ++j) {
      sc[j] = s8[j];
      mn[j] = static_cast<int16_t>(4 * s8[j]);
    }
    const float d = half_at(x + offsetof(BlockQ3_K, d));
    kexp_put_scales(o, sc, mn, d, d);
  }
}

template <int kBits>
void kexp_q45_K(const uint8_t* x, int64_t nb, KExpBlock* o) {
  using Block = std::conditional_t<kBits == 4, BlockQ4_K, BlockQ5_K>;
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i m16 = _mm256_set1_epi8(0x10);
  for (int64_t i = 0; i < nb; ++i, x += sizeof(Block), ++o) {
    const uint8_t* qs = x + offsetof(Block, qs);
    __m256i hb;
    if constexpr (kBits == 5) hb = load256(x + offsetof(BlockQ5_K, qh));
    for (int j = 0; j < 4; ++j) {  // element 64 j + l: low nibble of qs[32 j + l]; 64 j + 32 + l: high nibble
      const __m256i q = load256(qs + 32 * j);
      __m256i lo = _mm256_and_si256(q, m4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      if constexpr (kBits == 5) {  // bit 2j of qh -> bit 4 of the low code, bit 2j + 1 -> of the high code
        lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(hb, 4), m16));
        hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(hb, 3), m16));
        hb = _mm256_srli_epi16(hb, 2);
      }
      kexp_store(o->codes + 64 * j, lo);
      kexp_store(o->codes + 64 * j + 32, hi);
    }
    uint8_t sm[16];  // scales 0-7, mins 0-7
    _mm_storeu_si128(reinterpret_cast<__m128i*>(sm), k4_scales_mins(x + offsetof(Block, scales)));
    int16_t sc[16], mn[16];
    for (int j = 0; j < 16; ++j) {
      sc[j] = sm[j / 2];
      mn[j] = sm[8 + j / 2];
    }
    kexp_put_scales(o, sc, mn, half_at(x + offsetof(Block, d)), half_at(x + offsetof(Block, dmin)));
  }
}

// Codes kept as stored (q + 32, 0..63); the offset becomes mn = 32 * sc with dmin = d.
void kexp_q6_K(const uint8_t* x, int64_t nb, KExpBlock* o) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i m30 = _mm256_set1_epi8(0x30);
  for (int64_t i = 0; i < nb; ++i, x += sizeof(BlockQ6_K), ++o) {
    const uint8_t* ql = x + offsetof(BlockQ6_K, ql);
    const uint8_t* qh = x + offsetof(BlockQ6_K, qh);
    for (int h = 0; h < 2; ++h) {
      const __m256i l0 = load256(ql + 64 * h);
      const __m256i l1 = load256(ql + 64 * h + 32);
      const __m256i hh = load256(qh + 32 * h);
      uint8_t* c = o->codes + 128 * h;
      kexp_store(c, _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hh, 4), m30)));
      kexp_store(c + 32, _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hh, 2), m30)));
      kexp_store(c + 64,
                 _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hh, m30)));
      kexp_store(c + 96, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                         _mm256_and_si256(_mm256_srli_epi16(hh, 2), m30)));
    }
    const auto* s8 = reinterpret_cast<const int8_t*>(x + offsetof(BlockQ6_K, scales));
    int16_t sc[16], mn[16];
    for (int j = 0; j < 16; ++j) {
      sc[j] = s8[j];
      mn[j] = static_cast<int16_t>(32 * s8[j]);
    }
    const float d = half_at(x + offsetof(BlockQ6_K, d));
    kexp_put_scales(o, sc, mn, d, d);
  }
}

// ---- the tile kernel -------------------------------------------------------------------------------------

// Lane i of the result = horizontal sum of v[i] (8 int32 vectors in, one out).
inline __m256i kexp_reduce8(const __m256i* v) {
  const __m256i t0 = _mm256_hadd_epi32(v[0], v[1]), t1 = _mm256_hadd_epi32(v[2], v[3]);
  const __m256i t2 = _mm256_hadd_epi32(v[4], v[5]), t3 = _mm256_hadd_epi32(v[6], v[7]);
  const __m256i u0 = _mm256_hadd_epi32(t0, t1), u1 = _mm256_hadd_epi32(t2, t3);
  // u0: low lane = low-half sums of v0..v3, high lane = their high-half sums; u1 likewise for v4..v7.
  return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20), _mm256_permute2x128_si256(u0, u1, 0x31));
}

// Pins v to a register: without it GCC folds the scale and activation loads into every vpmaddwd /
// vpmaddubsw as memory operands (one load per pair instead of one per row or token), and the tile becomes
// bound by loads instead of by the multiply pipes.
inline void kexp_in_register(__m256i& v) { __asm__ volatile("" : "+x"(v)); }

constexpr int kTileRows = 2;
constexpr int kTileTokens = 4;

// The 8 chunks of 32 codes of one super-block for an R x T tile: acc[4 r + t] += vpmaddwd(vpmaddubsw(codes_r,
// act_t), scale_r).
template <int R, int T>
inline void kexp_chunks(const KExpBlock* const* wb, const uint8_t* const* ab, __m256i* acc) {
  for (int k = 0; k < 8; ++k) {
    __m256i c[R], s[R];
    for (int r = 0; r < R; ++r) {
      c[r] = _mm256_load_si256(reinterpret_cast<const __m256i*>(wb[r]->codes + 32 * k));
      s[r] = _mm256_load_si256(reinterpret_cast<const __m256i*>(wb[r]->sc[k]));
      kexp_in_register(c[r]);
      kexp_in_register(s[r]);
    }
    for (int t = 0; t < T; ++t) {
      __m256i av = load256(ab[t] + kActQs + 32 * k);
      kexp_in_register(av);
      for (int r = 0; r < R; ++r) {
        __m256i p = _mm256_maddubs_epi16(c[r], av);
        kexp_in_register(p);
        acc[4 * r + t] = madd_acc(acc[4 * r + t], p, s[r]);
      }
    }
  }
}

// d of T (<= 4) activation blocks, in lanes t and 4 + t (0 for t >= T).
template <int T>
inline __m256 kexp_act_scales(const uint8_t* const* ab) {
  float da[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int t = 0; t < T; ++t) da[t] = f32_at(ab[t] + kActD);
  const __m128 da4 = _mm_setr_ps(da[0], da[1], da[2], da[3]);
  return _mm256_setr_m128(da4, da4);
}

// R (<= 2) expanded rows w[r][0 .. nb) x T (<= 4) Q8_K activation rows at a + t * a_stride. Pair (r, t) is
// lane 4 r + t of the accumulators. kAffine: dmin is independent of d (Q2_K, Q4_K, Q5_K); otherwise
// (Q3_K, Q6_K) dmin == d and the offset term is subtracted exactly in int32.
template <bool kAffine, int R, int T>
void kexp_tile(int64_t nb, const KExpBlock* const* w, const uint8_t* a, int64_t a_stride, float* y, int64_t ldy) {
  __m256 facc = _mm256_setzero_ps();
  const uint8_t* at[T];
  for (int t = 0; t < T; ++t) at[t] = a + t * a_stride;
  for (int64_t b = 0; b < nb; ++b) {
    const KExpBlock* wb[R];
    for (int r = 0; r < R; ++r) wb[r] = w[r] + b;
    const uint8_t* ab[T];
    for (int t = 0; t < T; ++t) ab[t] = at[t] + b * static_cast<int64_t>(sizeof(BlockQ8_K));
    // Mins / offsets first, so that only the 8 code accumulators are live across the chunk loop.
    __m256i acc[8];
    for (auto& v : acc) v = _mm256_setzero_si256();
    for (int t = 0; t < T; ++t) {
      const __m256i bs = load256(ab[t] + kActBsums);
      for (int r = 0; r < R; ++r)
        acc[4 * r + t] = _mm256_madd_epi16(bs, _mm256_load_si256(reinterpret_cast<const __m256i*>(wb[r]->mn)));
    }
    if constexpr (kAffine) {
      const __m256 dav = kexp_act_scales<T>(ab);
      const __m256 dmw = _mm256_setr_m128(_mm_set1_ps(wb[0]->dmin), _mm_set1_ps(wb[R - 1]->dmin));
      facc = _mm256_fnmadd_ps(_mm256_mul_ps(dmw, dav), _mm256_cvtepi32_ps(kexp_reduce8(acc)), facc);
      for (auto& v : acc) v = _mm256_setzero_si256();
    } else {  // dmin == d: start the integer sums at -offset * sum(sc * bsum), exact
      for (auto& v : acc) v = _mm256_sub_epi32(_mm256_setzero_si256(), v);
    }
    kexp_chunks<R, T>(wb, ab, acc);
    const __m256 dav = kexp_act_scales<T>(ab);  // reloaded: keeping it live would spill accumulators
    const __m256 dw = _mm256_setr_m128(_mm_set1_ps(wb[0]->d), _mm_set1_ps(wb[R - 1]->d));
    facc = _mm256_fmadd_ps(_mm256_mul_ps(dw, dav), _mm256_cvtepi32_ps(kexp_reduce8(acc)), facc);
  }
  alignas(32) float out[8];
  _mm256_store_ps(out, facc);
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * ldy + r] = out[4 * r + t];
}

template <bool kAffine, int R>
inline void kexp_tile_t(int T, int64_t nb, const KExpBlock* const* w, const uint8_t* a, int64_t a_stride, float* y,
                        int64_t ldy) {
  switch (T) {
    case 4: kexp_tile<kAffine, R, 4>(nb, w, a, a_stride, y, ldy); break;
    case 3: kexp_tile<kAffine, R, 3>(nb, w, a, a_stride, y, ldy); break;
    case 2: kexp_tile<kAffine, R, 2>(nb, w, a, a_stride, y, ldy); break;
    default: kexp_tile<kAffine, R, 1>(nb, w, a, a_stride, y, ldy); break;
  }
}

using KExpandFn = void (*)(const uint8_t* x, int64_t nb, KExpBlock* o);

// The GemmFn body: expand the nr rows into a thread-local buffer, then tile.
template <KExpandFn kExpand, bool kAffine>
void gemm_kquant(int64_t n, const void* w, int64_t w_stride, int64_t nr, const void* a, int64_t a_stride, int64_t nt,
                 float* y, int64_t ldy, const int32_t* /*a_sums: k-quants have no offset term*/) {
  const int64_t nb = n / kQK_K;
  thread_local std::vector<KExpBlock> buf;
  const size_t need = static_cast<size_t>(nr * nb);
  if (buf.size() < need) buf.resize(need);
  const auto* wb = static_cast<const uint8_t*>(w);
  for (int64_t r = 0; r < nr; ++r) kExpand(wb + r * w_stride, nb, buf.data() + r * nb);
  const auto* ab = static_cast<const uint8_t*>(a);
  for (int64_t t0 = 0; t0 < nt; t0 += kTileTokens) {
    const int T = static_cast<int>(std::min<int64_t>(kTileTokens, nt - t0));
    const uint8_t* at = ab + t0 * a_stride;
    float* yt = y + t0 * ldy;
    for (int64_t r0 = 0; r0 < nr; r0 += kTileRows) {
      const KExpBlock* rows[2] = {buf.data() + r0 * nb, buf.data() + std::min(r0 + 1, nr - 1) * nb};
      if (nr - r0 >= 2) kexp_tile_t<kAffine, 2>(T, nb, rows, at, a_stride, yt + r0, ldy);
      else kexp_tile_t<kAffine, 1>(T, nb, rows, at, a_stride, yt + r0, ldy);
    }
  }
}

}  // namespace
}  // namespace cw::kernels
