// 256-bit x86 bodies of the k-quant dot kernels and the Q8_K activation quantizer, shared by
// kquant_avx2.cc and kquant_avx512.cc. Include it from those two files only: everything here has internal
// linkage, so each ISA translation unit compiles its own copy with its own flags (no ODR mixing of code
// built for different ISAs). With CW_KQUANT_VNNI defined (the AVX-512 file) the scale multiply-accumulate
// uses AVX512-VNNI's vpdpwssd (madd + add in one instruction).
//
// What and why: per 32 weights, the unsigned codes are unpacked into one 256-bit register (shifts and
// masks), multiplied with the 32 signed int8 activations by vpmaddubsw (pairs summed into int16; the
// largest code, 63, times 127 times 2 fits int16), and those int16 sums multiplied by the sub-block's
// integer scale and widened to int32 by vpmaddwd. Sub-blocks of 16 put two scales in one register (low
// 128-bit lane / high lane). Codes that the format stores with an offset (Q3_K: q - 4, Q6_K: q - 32) are
// kept unsigned for vpmaddubsw; the offset comes back once per super-block as offset * sum(sc * bsum), like
// the mins of the affine types. So a super-block ends in one int32 vector that is converted and multiplied
// by d_w * d_a into an fp32 accumulator; the only horizontal sum is at the end of the row.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/x86_simd.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {
namespace {

inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);  // exact, like fp16_to_fp32
}

inline float f32_at(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, 4);
  return f;
}

inline __m256i load256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m128i load128(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

// acc + (pairwise products of int16 p and scales s, summed into int32).
inline __m256i madd_acc(__m256i acc, __m256i p, __m256i s) {
#if defined(CW_KQUANT_VNNI)
  return _mm256_dpwssd_epi32(acc, p, s);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p, s));
#endif
}

// Scales of 16 sub-blocks of 16, ready for pair_scale(): both lanes of `lo` hold int16 scales 0..7 and
// both lanes of `hi` scales 8..15, so that one in-lane vpshufb (no cross-lane permute) picks a pair.
struct Scales16 {
  __m256i lo, hi;
};

inline Scales16 scales16(__m128i s8, bool is_signed) {
  const __m128i w0 = is_signed ? _mm_cvtepi8_epi16(s8) : _mm_cvtepu8_epi16(s8);
  const __m128i w1 = is_signed ? _mm_cvtepi8_epi16(_mm_srli_si128(s8, 8)) : _mm_cvtepu8_epi16(_mm_srli_si128(s8, 8));
  return {_mm256_broadcastsi128_si256(w0), _mm256_broadcastsi128_si256(w1)};
}

// For 32 codes spanning sub-blocks 2k and 2k + 1 (k = 0..7): scale 2k in all words of the low lane and
// scale 2k + 1 in all words of the high lane.
inline __m256i pair_scale(const Scales16& s, int k) {
  const int w = 2 * (k % 4);  // word of scale 2k within its half
  const __m256i pick = _mm256_setr_epi8(2 * w, 2 * w + 1, 2 * w, 2 * w + 1, 2 * w, 2 * w + 1, 2 * w, 2 * w + 1,
                                        2 * w, 2 * w + 1, 2 * w, 2 * w + 1, 2 * w, 2 * w + 1, 2 * w, 2 * w + 1,
                                        2 * w + 2, 2 * w + 3, 2 * w + 2, 2 * w + 3, 2 * w + 2, 2 * w + 3, 2 * w + 2,
                                        2 * w + 3, 2 * w + 2, 2 * w + 3, 2 * w + 2, 2 * w + 3, 2 * w + 2, 2 * w + 3,
                                        2 * w + 2, 2 * w + 3);
  return _mm256_shuffle_epi8(k < 4 ? s.lo : s.hi, pick);
}

// sc8x2 holds 8 int16 scales in each lane (word j = sub-block j). Returns scale j in all 16 words.
inline __m256i one_scale(__m256i sc8x2, int j) {
  return _mm256_shuffle_epi8(sc8x2, _mm256_set1_epi16(static_cast<int16_t>(0x0100 + 0x0202 * j)));
}

constexpr size_t kActD = offsetof(BlockQ8_K, d);
constexpr size_t kActQs = offsetof(BlockQ8_K, qs);
constexpr size_t kActBsums = offsetof(BlockQ8_K, bsums);

// ---- dot products --------------------------------------------------------------------------------------

template <int h>
inline void q2_K_half(const uint8_t* qs, const uint8_t* a8, const Scales16& sc, __m256i& s0, __m256i& s1) {
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m256i q = load256(qs + 32 * h);
  const __m256i c0 = _mm256_and_si256(q, m3);
  const __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(q, 2), m3);
  const __m256i c2 = _mm256_and_si256(_mm256_srli_epi16(q, 4), m3);
  const __m256i c3 = _mm256_and_si256(_mm256_srli_epi16(q, 6), m3);
  const uint8_t* ah = a8 + 128 * h;
  s0 = madd_acc(s0, _mm256_maddubs_epi16(c0, load256(ah)), pair_scale(sc, 4 * h + 0));
  s1 = madd_acc(s1, _mm256_maddubs_epi16(c1, load256(ah + 32)), pair_scale(sc, 4 * h + 1));
  s0 = madd_acc(s0, _mm256_maddubs_epi16(c2, load256(ah + 64)), pair_scale(sc, 4 * h + 2));
  s1 = madd_acc(s1, _mm256_maddubs_epi16(c3, load256(ah + 96)), pair_scale(sc, 4 * h + 3));
}

float vec_dot_q2_K(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const uint8_t*>(w);
  const auto* y = static_cast<const uint8_t*>(a);
  const __m128i m4 = _mm_set1_epi8(0x0f);
  __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i, x += sizeof(BlockQ2_K), y += sizeof(BlockQ8_K)) {
    const float da = f32_at(y + kActD);
    const __m128i s8 = load128(x + offsetof(BlockQ2_K, scales));
    const Scales16 sc = scales16(_mm_and_si128(s8, m4), false);
    const __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s8, 4), m4));
    const __m256i msum = _mm256_madd_epi16(load256(y + kActBsums), mn16);
    const uint8_t* qs = x + offsetof(BlockQ2_K, qs);
    const uint8_t* a8 = y + kActQs;
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    q2_K_half<0>(qs, a8, sc, s0, s1);
    q2_K_half<1>(qs, a8, sc, s0, s1);
    const float d = half_at(x + offsetof(BlockQ2_K, d)) * da;
    const float dmin = half_at(x + offsetof(BlockQ2_K, dmin)) * da;
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), acc);
    acc_min = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(msum), acc_min);
  }
  return hsum8(_mm256_sub_ps(acc, acc_min));
}

// 16 signed 6-bit Q3_K scales (code - 32) as int8, byte i = sub-block i, decoded in one register. `block`
// is the start of the BlockQ3_K; the 16 bytes read end at its d (the scales sit at its end, so a load
// starting at the scales could run past the row).
inline __m128i q3_K_scales(const uint8_t* block) {
  constexpr size_t kAt = offsetof(BlockQ3_K, scales) - 4;
  static_assert(kAt + 16 <= sizeof(BlockQ3_K));
  const __m128i u = _mm_srli_si128(load128(block + kAt), 4);  // dwords u0 u1 u2 = the 12 scale bytes
  // low nibbles: code i (i < 8) from byte i % 8 low nibble, (i >= 8) high nibble.
  const __m128i u0101 = _mm_shuffle_epi32(u, _MM_SHUFFLE(1, 0, 1, 0));
  const __m128i lo = _mm_and_si128(_mm_srlv_epi32(u0101, _mm_setr_epi32(0, 0, 4, 4)), _mm_set1_epi8(0x0f));
  // high 2 bits: bits 2 (i / 4) .. +1 of byte 8 + i % 4, i.e. of u2 shifted by 0, 2, 4, 6 per group of 4.
  const __m128i u2 = _mm_shuffle_epi32(u, _MM_SHUFFLE(2, 2, 2, 2));
  const __m128i hi = _mm_and_si128(_mm_srlv_epi32(u2, _mm_setr_epi32(0, 2, 4, 6)), _mm_set1_epi8(3));
  return _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi32(hi, 4)), _mm_set1_epi8(32));
}

// High bit of group g (0..7) of Q3_K, moved to bit 2 of each byte.
template <int g>
inline __m256i q3_K_hbit(__m256i hm) {
  const __m256i m = _mm256_set1_epi8(4);
  if constexpr (g <= 2) return _mm256_and_si256(_mm256_slli_epi16(hm, 2 - g), m);
  else return _mm256_and_si256(_mm256_srli_epi16(hm, g - 2), m);
}

template <int h>
inline void q3_K_half(const uint8_t* qs, __m256i hm, const uint8_t* a8, const Scales16& sc, __m256i& s0,
                      __m256i& s1) {
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m256i q = load256(qs + 32 * h);
  const __m256i c0 = _mm256_or_si256(_mm256_and_si256(q, m3), q3_K_hbit<4 * h + 0>(hm));
  const __m256i c1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2), m3), q3_K_hbit<4 * h + 1>(hm));
  const __m256i c2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m3), q3_K_hbit<4 * h + 2>(hm));
  const __m256i c3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 6), m3), q3_K_hbit<4 * h + 3>(hm));
  const uint8_t* ah = a8 + 128 * h;
  s0 = madd_acc(s0, _mm256_maddubs_epi16(c0, load256(ah)), pair_scale(sc, 4 * h + 0));
  s1 = madd_acc(s1, _mm256_maddubs_epi16(c1, load256(ah + 32)), pair_scale(sc, 4 * h + 1));
  s0 = madd_acc(s0, _mm256_maddubs_epi16(c2, load256(ah + 64)), pair_scale(sc, 4 * h + 2));
  s1 = madd_acc(s1, _mm256_maddubs_epi16(c3, load256(ah + 96)), pair_scale(sc, 4 * h + 3));
}

float vec_dot_q3_K(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const uint8_t*>(w);
  const auto* y = static_cast<const uint8_t*>(a);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i, x += sizeof(BlockQ3_K), y += sizeof(BlockQ8_K)) {
    const __m128i s8 = q3_K_scales(x);
    const Scales16 sc = scales16(s8, true);
    const __m256i sc16 = _mm256_cvtepi8_epi16(s8);
    // Codes are stored as v + 4 (0..7): subtract 4 * sum(sc * bsum) once per super-block.
    const __m256i corr = _mm256_madd_epi16(load256(y + kActBsums), sc16);
    const __m256i hm = load256(x + offsetof(BlockQ3_K, hmask));
    const uint8_t* qs = x + offsetof(BlockQ3_K, qs);
    const uint8_t* a8 = y + kActQs;
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    q3_K_half<0>(qs, hm, a8, sc, s0, s1);
    q3_K_half<1>(qs, hm, a8, sc, s0, s1);
    const __m256i isum = _mm256_sub_epi32(_mm256_add_epi32(s0, s1), _mm256_slli_epi32(corr, 2));
    const float d = half_at(x + offsetof(BlockQ3_K, d)) * f32_at(y + kActD);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum), acc);
  }
  return hsum8(acc);
}

// Q4_K / Q5_K scales and mins: 8 6-bit codes each (packing as get_scale_min_k4 in quant_ref_k.cc), decoded
// in one register from the 12 packed bytes at q (16 bytes are read: the 4 after the scales are the start
// of the block's qh/qs). Returns dwords [scales 0-3, scales 4-7, mins 0-3, mins 4-7] (one byte each).
inline __m128i k4_scales_mins(const uint8_t* q) {
  const __m128i u = load128(q);                                   // dwords u0 u1 u2 (x)
  const __m128i a = _mm_shuffle_epi32(u, _MM_SHUFFLE(2, 1, 2, 0));  // u0 u2 u1 u2
  const __m128i b = _mm_shuffle_epi32(u, _MM_SHUFFLE(1, 1, 0, 0));  // u0 u0 u1 u1
  // low 6 bits (sc/mn 0-3) or low nibbles (sc/mn 4-7, from u2) ...
  const __m128i lo = _mm_and_si128(_mm_srlv_epi32(a, _mm_setr_epi32(0, 0, 0, 4)),
                                   _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  // ... plus, for 4-7, the top 2 bits of bytes 0-3 (scales) or 4-7 (mins) as bits 4-5.
  const __m128i hi = _mm_and_si128(_mm_srli_epi32(b, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
  return _mm_or_si128(lo, hi);
}

// Q4_K (kBits = 4) and Q5_K (kBits = 5).
template <int kBits>
float vec_dot_q45_K(int64_t n, const void* w, const void* a) {
  using Block = std::conditional_t<kBits == 4, BlockQ4_K, BlockQ5_K>;
  const auto* x = static_cast<const uint8_t*>(w);
  const auto* y = static_cast<const uint8_t*>(a);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i m16 = _mm256_set1_epi8(0x10);
  __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i, x += sizeof(Block), y += sizeof(BlockQ8_K)) {
    const float da = f32_at(y + kActD);
    const __m128i sm = k4_scales_mins(x + offsetof(Block, scales));
    const __m256i sc8x2 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
    // mins: word 2j and 2j + 1 = min j, so madd with the 16 bsums gives min_j * (bsum_2j + bsum_2j+1).
    const __m128i mn8 = _mm_unpackhi_epi64(sm, sm);
    const __m256i mn16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mn8, mn8));
    const __m256i msum = _mm256_madd_epi16(load256(y + kActBsums), mn16);
    const uint8_t* qs = x + offsetof(Block, qs);
    const uint8_t* a8 = y + kActQs;
    __m256i hb;
    if constexpr (kBits == 5) hb = load256(x + offsetof(BlockQ5_K, qh));
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      const __m256i q = load256(qs + 32 * j);
      __m256i lo = _mm256_and_si256(q, m4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      if constexpr (kBits == 5) {  // bit 2j of qh -> bit 4 of the low code, bit 2j + 1 -> of the high code
        lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(hb, 4), m16));
        hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(hb, 3), m16));
        hb = _mm256_srli_epi16(hb, 2);
      }
      s0 = madd_acc(s0, _mm256_maddubs_epi16(lo, load256(a8 + 64 * j)), one_scale(sc8x2, 2 * j));
      s1 = madd_acc(s1, _mm256_maddubs_epi16(hi, load256(a8 + 64 * j + 32)), one_scale(sc8x2, 2 * j + 1));
    }
    const float d = half_at(x + offsetof(Block, d)) * da;
    const float dmin = half_at(x + offsetof(Block, dmin)) * da;
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), acc);
    acc_min = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(msum), acc_min);
  }
  return hsum8(_mm256_sub_ps(acc, acc_min));
}

template <int h>
inline void q6_K_half(const uint8_t* ql, const uint8_t* qh, const uint8_t* a8, const Scales16& sc, __m256i& s0,
                      __m256i& s1) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i m30 = _mm256_set1_epi8(0x30);
  const __m256i l0 = load256(ql + 64 * h);
  const __m256i l1 = load256(ql + 64 * h + 32);
  const __m256i hh = load256(qh + 32 * h);
  // Group k of this half: low nibble k / 2 of ql[32 * (k % 2) + l], high bits 2k..2k+1 of qh[l] -> bits 4..5.
  const __m256i q0 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hh, 4), m30));
  const __m256i q1 = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hh, 2), m30));
  const __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hh, m30));
  const __m256i q3 =
      _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(hh, 2), m30));
  const uint8_t* ah = a8 + 128 * h;
  s0 = madd_acc(s0, _mm256_maddubs_epi16(q0, load256(ah)), pair_scale(sc, 4 * h + 0));
  s1 = madd_acc(s1, _mm256_maddubs_epi16(q1, load256(ah + 32)), pair_scale(sc, 4 * h + 1));
  s0 = madd_acc(s0, _mm256_maddubs_epi16(q2, load256(ah + 64)), pair_scale(sc, 4 * h + 2));
  s1 = madd_acc(s1, _mm256_maddubs_epi16(q3, load256(ah + 96)), pair_scale(sc, 4 * h + 3));
}

float vec_dot_q6_K(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const uint8_t*>(w);
  const auto* y = static_cast<const uint8_t*>(a);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i, x += sizeof(BlockQ6_K), y += sizeof(BlockQ8_K)) {
    const __m128i s8 = load128(x + offsetof(BlockQ6_K, scales));
    const Scales16 sc = scales16(s8, true);
    const __m256i sc16 = _mm256_cvtepi8_epi16(s8);
    // Codes are stored as q + 32 (0..63): subtract 32 * sum(sc * bsum) once per super-block.
    const __m256i corr = _mm256_madd_epi16(load256(y + kActBsums), sc16);
    const uint8_t* ql = x + offsetof(BlockQ6_K, ql);
    const uint8_t* qh = x + offsetof(BlockQ6_K, qh);
    const uint8_t* a8 = y + kActQs;
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    q6_K_half<0>(ql, qh, a8, sc, s0, s1);
    q6_K_half<1>(ql, qh, a8, sc, s0, s1);
    const __m256i isum = _mm256_sub_epi32(_mm256_add_epi32(s0, s1), _mm256_slli_epi32(corr, 5));
    const float d = half_at(x + offsetof(BlockQ6_K, d)) * f32_at(y + kActD);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum), acc);
  }
  return hsum8(acc);
}

// ---- Q8_K activation quantizer -------------------------------------------------------------------------
//
// Byte-exact with quantize_row_q8_K_ref: a block holding a NaN or an inf gets d = NaN, codes and bsums 0 (so
// corrupt activations reach the logits as NaN); otherwise amax = max |x| (an integer max of the |x| bit
// patterns, equal to the float max for finite values, and the one place NaN/inf are caught), the
// sign taken from the FIRST element of that magnitude, iscale = -127 / max and d = 1 / iscale in the same
// fp32 operations, codes = min(127, round-half-even(iscale * x)) truncated to 8 bits exactly like the
// reference's int -> int8_t cast (vcvtps2dq rounds with the default MXCSR mode, like lrintf; its overflow
// value 0x80000000 truncates to 0 as the reference's LONG_MIN does), bsums from the stored codes.

// Sign-carrying element of largest magnitude among 256 (amax > 0 given): first index with |x| == amax.
inline float first_of_magnitude(const float* x, float amax) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 va = _mm256_set1_ps(amax);
  for (int k = 0; k < kQK_K; k += 8) {
    const __m256 v = _mm256_and_ps(_mm256_loadu_ps(x + k), abs_mask);
    const int m = _mm256_movemask_ps(_mm256_cmp_ps(v, va, _CMP_EQ_OQ));
    if (m != 0) {
      float v0;
      std::memcpy(&v0, x + k + __builtin_ctz(static_cast<unsigned>(m)), sizeof(float));
      return v0;
    }
  }
  return amax;  // unreachable: amax is one of the |x|
}

// bsums of one Q8_K block from its 256 stored codes.
inline void q8_K_bsums(const uint8_t* qs, uint8_t* bsums) {
  const __m256i ones8 = _mm256_set1_epi8(1);
  const __m256i ones16 = _mm256_set1_epi16(1);
  __m256i t[8];  // t[k]: low lane = 4 partial sums of bsum 2k, high lane = of bsum 2k + 1
  for (int k = 0; k < 8; ++k) t[k] = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, load256(qs + 32 * k)), ones16);
  const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(t[0], t[1]), _mm256_hadd_epi32(t[2], t[3]));
  const __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(t[4], t[5]), _mm256_hadd_epi32(t[6], t[7]));
  // a: low lane bsums 0 2 4 6, high lane 1 3 5 7; b: 8 10 12 14 | 9 11 13 15.
  const __m256i p = _mm256_packs_epi32(a, b);  // low lane: 0 2 .. 14, high lane: 1 3 .. 15 (int16)
  const __m128i even = _mm256_castsi256_si128(p), odd = _mm256_extracti128_si256(p, 1);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(bsums), _mm_unpacklo_epi16(even, odd));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(bsums + 16), _mm_unpackhi_epi16(even, odd));
}

[[maybe_unused]] void quantize_row_q8_K_avx2(const float* src, void* dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i v127 = _mm256_set1_epi32(127);
  const __m256i low8 = _mm256_set1_epi32(0xff);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t i = 0; i < n / kQK_K; ++i, out += sizeof(BlockQ8_K)) {
    const float* x = src + i * kQK_K;
    // Integer max of the |x| bit patterns: the float max for finite input, while NaN and inf win it.
    __m256i m0 = _mm256_setzero_si256(), m1 = m0, m2 = m0, m3 = m0;
    for (int k = 0; k < kQK_K; k += 32) {
      m0 = _mm256_max_epi32(_mm256_castps_si256(_mm256_and_ps(_mm256_loadu_ps(x + k), abs_mask)), m0);
      m1 = _mm256_max_epi32(_mm256_castps_si256(_mm256_and_ps(_mm256_loadu_ps(x + k + 8), abs_mask)), m1);
      m2 = _mm256_max_epi32(_mm256_castps_si256(_mm256_and_ps(_mm256_loadu_ps(x + k + 16), abs_mask)), m2);
      m3 = _mm256_max_epi32(_mm256_castps_si256(_mm256_and_ps(_mm256_loadu_ps(x + k + 24), abs_mask)), m3);
    }
    const __m256i m = _mm256_max_epi32(_mm256_max_epi32(m0, m1), _mm256_max_epi32(m2, m3));
    __m128i r = _mm_max_epi32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
    r = _mm_max_epi32(r, _mm_shuffle_epi32(r, _MM_SHUFFLE(1, 0, 3, 2)));
    r = _mm_max_epi32(r, _mm_shuffle_epi32(r, _MM_SHUFFLE(2, 3, 0, 1)));
    const int32_t amax_bits = _mm_cvtsi128_si32(r);
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
    const float iscale = -127.0f / first_of_magnitude(x, amax);
    const float d = 1.0f / iscale;
    std::memcpy(out + kActD, &d, sizeof(float));
    const __m256 vis = _mm256_set1_ps(iscale);
    for (int k = 0; k < kQK_K; k += 32) {
      __m256i c[4];
      for (int r4 = 0; r4 < 4; ++r4) {
        const __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + k + 8 * r4), vis));
        c[r4] = _mm256_and_si256(_mm256_min_epi32(v, v127), low8);  // the int8 bit pattern, as 0..255
      }
      const __m256i b = _mm256_packus_epi16(_mm256_packus_epi32(c[0], c[1]), _mm256_packus_epi32(c[2], c[3]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + kActQs + k), _mm256_permutevar8x32_epi32(b, order));
    }
    q8_K_bsums(out + kActQs, out + kActBsums);
  }
}

}  // namespace
}  // namespace cw::kernels
