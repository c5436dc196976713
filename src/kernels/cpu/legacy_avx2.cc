// AVX2 dot products and activation quantizers of the legacy quant formats (built with -mavx2 -mfma -mf16c).
//
// What and why: GEMV over Q4_0 .. Q8_0 weights streams 18-34 bytes per 32 weights, so the inner loop must
// expand, multiply and scale a block in about ten vector instructions to keep up with memory. Per block:
// the weight codes become 32 bytes (nibbles: one broadcast load, a variable shift of the high lane and an
// and; Q5's fifth bit spread from qh with shuffle/and/cmpeq), _mm256_maddubs_epi16 multiplies unsigned x
// signed bytes (Q4_0 as sum q a - sum 8 a with unsigned q; Q5_0/Q8_0 through the sign trick
// |w| x sign(a, w)), _mm256_madd_epi16 widens to 8 int32 partial sums, which are converted, multiplied by
// d_w and fused into one of four independent fp32 accumulators with d_a. Both fp16 scales come from a
// 256 KiB fp16->fp32 table (legacy_half_table) as broadcast loads, which cost no ALU slot: cheaper
// than an F16C conversion of each scale (two vcvtph2ps, a multiply and a broadcast per block). The
// Q4_1/Q5_1 min term m_w * s_a goes to scalar accumulators. No horizontal sum inside the block loop.
// Weights are software-prefetched 1 KiB ahead (into the next row at a row's end, as a GEMV reads them):
// on a DRAM-resident matrix this lifted Q4_0 from ~7.5 to ~10 GB/s on the Zen 3 dev VM.
//
// The activation quantizers reproduce quantize_row_q8_{0,1}_ref byte for byte: same amax, same scalar
// d = amax / 127 and id = 1 / d, the same fp32 product x * id, and rounding half away from zero (std::round)
// done exactly as floor(|v|) + (|v| - floor(|v|) >= 0.5), whose subtraction is exact; d and s are rounded to
// fp16 with vcvtps2ph in round-to-nearest-even, which is what fp32_to_fp16 computes. A block holding a NaN or
// an inf gets d = s = NaN and codes 0, as in the reference, so corrupt activations reach the logits as NaN
// instead of being laundered into finite codes (the max is taken on the |x| bit patterns, which costs
// nothing over a float max and lets NaN/inf win it).
//
// This file includes no inline functions of other headers (only structs and constants): an inline function
// compiled here with AVX2 could be picked by the linker for callers on the baseline path.
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/x86_simd.h"
#include "kernels/cpu/legacy_kernels.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {
namespace {

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// 16 bytes of packed nibbles -> 32 bytes: low nibbles (elements 0..15), then high nibbles (16..31).
inline __m256i expand_nibbles(const uint8_t* qs) {
  const __m256i t = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  const __m256i both = _mm256_srlv_epi64(t, _mm256_setr_epi64x(0, 0, 4, 4));  // high lane >> 4
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

// 32 bits (little-endian at qh) -> 32 bytes, 0xff where bit j is set, 0 elsewhere.
inline __m256i expand_bits(const uint8_t* qh) {
  // Byte j takes byte j / 8 of the word (shuffles stay inside 128-bit lanes; every lane has the word).
  const __m256i pick = _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202,
                                          0x0303030303030303);
  const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(load_u32(qh))), pick);
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));  // 1 << (j % 8)
  return _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
}

// Partial sums (8 x int32) of unsigned weight codes (<= 31) times signed activations.
inline __m256i dot_us(__m256i w, __m256i a) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1));
}

// Partial sums of signed weight codes times signed activations (activations never -128: the Q8 quantizers
// produce [-127, 127]). |w| <= 128 as unsigned, so the int16 pair sums stay below 2 * 128 * 127 < 2^15.
inline __m256i dot_ss(__m256i w, __m256i a) {
  return dot_us(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
}

inline __m256i load32(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// One block of each type: returns the int32 partial sums; the scales are at offset 0 of both blocks.
struct Q4_0 {
  static constexpr int kWBytes = sizeof(BlockQ4_0);
  static constexpr bool kMin = false;
  static __m256i idot(const uint8_t* w, const uint8_t* aq) {
    // sum (q - 8) a = sum q a - sum 8 a, both as unsigned x signed pair sums (|each| <= 2 * 15 * 127).
    const __m256i a = load32(aq);
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(expand_nibbles(w + 2), a),
                                       _mm256_maddubs_epi16(_mm256_set1_epi8(8), a));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
  }
};
struct Q4_1 {
  static constexpr int kWBytes = sizeof(BlockQ4_1);
  static constexpr bool kMin = true;
  static __m256i idot(const uint8_t* w, const uint8_t* aq) { return dot_us(expand_nibbles(w + 4), load32(aq)); }
};
struct Q5_0 {
  static constexpr int kWBytes = sizeof(BlockQ5_0);
  static constexpr bool kMin = false;
  static __m256i idot(const uint8_t* w, const uint8_t* aq) {
    // (q | h << 4) - 16 as a signed byte is q when h = 1 and q | 0xf0 when h = 0.
    const __m256i hi = _mm256_andnot_si256(expand_bits(w + 2), _mm256_set1_epi8(static_cast<char>(0xf0)));
    return dot_ss(_mm256_or_si256(expand_nibbles(w + 6), hi), load32(aq));
  }
};
struct Q5_1 {
  static constexpr int kWBytes = sizeof(BlockQ5_1);
  static constexpr bool kMin = true;
  static __m256i idot(const uint8_t* w, const uint8_t* aq) {
    const __m256i hi = _mm256_and_si256(expand_bits(w + 4), _mm256_set1_epi8(0x10));
    return dot_us(_mm256_or_si256(expand_nibbles(w + 8), hi), load32(aq));
  }
};
struct Q8_0 {
  static constexpr int kWBytes = sizeof(BlockQ8_0);
  static constexpr bool kMin = false;
  static __m256i idot(const uint8_t* w, const uint8_t* aq) { return dot_ss(load32(w + 2), load32(aq)); }
};

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// acc += isum * d_w * d_a for one block (both scales broadcast straight from the fp16 table, so the scale
// costs two loads and one multiply); mins += m_w * s_a for the types with a min.
template <typename T>
inline __m256 step(const float* ht, const uint8_t* w, const uint8_t* a, __m256 acc, float& mins) {
  constexpr int kAq = T::kMin ? 4 : 2;  // Q8_1: d, s, qs; Q8_0: d, qs
  const __m256 p = _mm256_cvtepi32_ps(T::idot(w, a + kAq));
  const __m256 pw = _mm256_mul_ps(p, _mm256_broadcast_ss(ht + load_u16(w)));
  if constexpr (T::kMin) mins += ht[load_u16(w + 2)] * ht[load_u16(a + 2)];
  return _mm256_fmadd_ps(pw, _mm256_broadcast_ss(ht + load_u16(a)), acc);
}

constexpr int kPrefetchAhead = 1024;

template <typename T>
float vec_dot(int64_t n, const void* vw, const void* va) {
  constexpr int kABytes = T::kMin ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
  const float* ht = legacy_half_table();
  const auto* w = static_cast<const uint8_t*>(vw);
  const auto* a = static_cast<const uint8_t*>(va);
  const int64_t nb = n / kQK;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  float mins0 = 0.0f, mins1 = 0.0f;
  int64_t i = 0;
  for (; i + 4 <= nb; i += 4) {
    const uint8_t* wb = w + i * T::kWBytes;
    const uint8_t* ab = a + i * kABytes;
    _mm_prefetch(reinterpret_cast<const char*>(wb + kPrefetchAhead), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(wb + kPrefetchAhead + 64), _MM_HINT_T0);
    acc0 = step<T>(ht, wb, ab, acc0, mins0);
    acc1 = step<T>(ht, wb + T::kWBytes, ab + kABytes, acc1, mins1);
    acc2 = step<T>(ht, wb + 2 * T::kWBytes, ab + 2 * kABytes, acc2, mins0);
    acc3 = step<T>(ht, wb + 3 * T::kWBytes, ab + 3 * kABytes, acc3, mins1);
  }
  for (; i < nb; ++i) acc0 = step<T>(ht, w + i * T::kWBytes, a + i * kABytes, acc0, mins0);
  return hsum8(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3))) + (mins0 + mins1);
}

// ---- multi-row GEMV (decode) -----------------------------------------------------------------------------
//
// vec_dot redoes per row what depends only on the activation block: its 32-byte load, its scale, and for
// Q4_0 the offset term maddubs(8, a). gemv takes kGemvRows weight rows at a time against one activation
// row: per block it loads a, d_a (and s_a) once and, for Q4_0/Q5_0, computes the offset term once as
// off16 = maddubs(offset, a) (int16 pair sums of offset * a); each row then costs the code expansion, one
// maddubs of its unsigned codes (q = w + offset, no sign trick), one int16 subtract, madd, convert, one
// multiply d_w x d_a and one FMA into the row's own fp32 accumulator. Pair sums stay in int16 range:
// |2 * 31 * 127| and |2 * 16 * 127| < 2^15. Numerics as vec_dot: the block's integer dot is exact and scaled
// by d_w * d_a (here one product, then one FMA), blocks summed in one fp32 sequence per row.
// Prefetch: while a tile of R rows is processed, the next tile (the R rows after it, contiguous in a weight
// matrix) is prefetched as one linear stream, R * block bytes per block (two lines, so no line is skipped
// for R * 24 <= 128). Prefetching each of the R rows kPrefetchAhead ahead instead left the DRAM-resident
// case no faster than vec_dot (4 interleaved streams per core); the linear next-tile stream lifted Q4_0
// 8192x8192 (cw_legacy_dot_bench, one thread, Zen 3 VM) from ~11 to ~13.5-14.8 GB/s, Q4_1 8.5 -> 13.3,
// Q5_0 9.9 -> 10-11.4. Q5_1 (compute-bound on its bit expansion) gained nothing and keeps vec_dot; Q8_0
// keeps vec_dot (no offset to share).
struct G4_0 {
  using V = Q4_0;
  static constexpr int kOffset = 8;
  static __m256i codes(const uint8_t* w) { return expand_nibbles(w + 2); }
};
struct G4_1 {
  using V = Q4_1;
  static constexpr int kOffset = 0;
  static __m256i codes(const uint8_t* w) { return expand_nibbles(w + 4); }
};
struct G5_0 {
  using V = Q5_0;
  static constexpr int kOffset = 16;
  static __m256i codes(const uint8_t* w) {
    return _mm256_or_si256(expand_nibbles(w + 6), _mm256_and_si256(expand_bits(w + 2), _mm256_set1_epi8(0x10)));
  }
};

constexpr int kGemvRows = 4;

template <typename G, int R>
void gemv_tile(int64_t nb, const uint8_t* w, int64_t ws, const uint8_t* a, float* y) {
  using T = typename G::V;
  constexpr int kABytes = T::kMin ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
  constexpr int kAq = T::kMin ? 4 : 2;
  const float* ht = legacy_half_table();
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[R];
  float mins[R];
  for (int r = 0; r < R; ++r) {
    acc[r] = _mm256_setzero_ps();
    mins[r] = 0.0f;
  }
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* ab = a + b * kABytes;
    const uint8_t* wb = w + b * T::kWBytes;
    {  // the next tile's rows (contiguous when w_stride is the row size), one line-pair per block
      const char* nx = reinterpret_cast<const char*>(w + R * ws + b * R * T::kWBytes);
      _mm_prefetch(nx, _MM_HINT_T0);
      _mm_prefetch(nx + 64, _MM_HINT_T0);
    }
    const __m256i av = load32(ab + kAq);
    const __m256 da = _mm256_broadcast_ss(ht + load_u16(ab));
    __m256i off16 = _mm256_setzero_si256();
    if constexpr (G::kOffset != 0) off16 = _mm256_maddubs_epi16(_mm256_set1_epi8(G::kOffset), av);
    float sa = 0.0f;
    if constexpr (T::kMin) sa = ht[load_u16(ab + 2)];
    for (int r = 0; r < R; ++r) {
      const uint8_t* wr = wb + r * ws;
      __m256i p16 = _mm256_maddubs_epi16(G::codes(wr), av);
      if constexpr (G::kOffset != 0) p16 = _mm256_sub_epi16(p16, off16);
      const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
      const __m256 scale = _mm256_mul_ps(_mm256_broadcast_ss(ht + load_u16(wr)), da);
      acc[r] = _mm256_fmadd_ps(p, scale, acc[r]);
      if constexpr (T::kMin) mins[r] += ht[load_u16(wr + 2)] * sa;
    }
  }
  for (int r = 0; r < R; ++r) y[r] = hsum8(acc[r]) + mins[r];
}

// Q4_0 decode tile of R rows (R even) as R / 2 row pairs: a pair shares one 256-bit register, row 2k in
// the low 128-bit lane and row 2k + 1 in the high lane. Per pair and block: the two rows' 16 code bytes are
// one load + vinserti128; the low nibbles (elements 0..15) are x & 0x0f and the high ones (16..31)
// (x >> 4) & 0x0f, multiplied by the activation halves alo = a[0..15] and ahi = a[16..31] broadcast to both
// lanes (loaded once per block for all pairs), so one maddubs pair + add gives both rows' int16 pair sums;
// the offset term 8 * (alo + ahi) pair sums is shared by all pairs. Then one madd, one convert, a blend of
// the two rows' d_w (table broadcasts), one multiply by d_a and one FMA per pair: 13 vector ops per two rows
// against 16 for two rows of gemv_tile, and 5 instead of 8 on the multiply pipes. Each row's lane half holds
// its 4 partial sums (hsum at the end), so the fp32 summation order differs from vec_dot (exact integer
// block dots, same scaling). cw_legacy_dot_bench, one thread, Zen 3 VM: 8192x8192 DRAM-resident 10.4-13.5
// -> 12.6-16.4 GB/s, 128x2048 (L2) ~14.5 -> ~17.5 GB/s; R = 12 was slower from DRAM than R = 8.
constexpr int kQ4_0PairRows = 8;

template <int R>
void gemv_q4_0_pairs(int64_t nb, const uint8_t* w, int64_t ws, const uint8_t* a, float* y) {
  static_assert(R % 2 == 0);
  constexpr int P = R / 2;
  constexpr int kWB = sizeof(BlockQ4_0);
  constexpr int kAB = sizeof(BlockQ8_0);
  const float* ht = legacy_half_table();
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i eight = _mm256_set1_epi8(8);
  __m256 acc[P];
  for (int p = 0; p < P; ++p) acc[p] = _mm256_setzero_ps();
#pragma GCC unroll 2
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* ab = a + b * kAB;
    const uint8_t* wb = w + b * kWB;
    {  // the next tile, as in gemv_tile (R * 18 bytes per block: up to three lines)
      const char* nx = reinterpret_cast<const char*>(w + R * ws + b * R * kWB);
      _mm_prefetch(nx, _MM_HINT_T0);
      _mm_prefetch(nx + 64, _MM_HINT_T0);
      if constexpr (R * kWB > 128) _mm_prefetch(nx + 128, _MM_HINT_T0);
    }
    const __m256i alo = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ab + 2)));
    const __m256i ahi = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ab + 18)));
    const __m256i off16 = _mm256_add_epi16(_mm256_maddubs_epi16(eight, alo), _mm256_maddubs_epi16(eight, ahi));
    const __m256 da = _mm256_broadcast_ss(ht + load_u16(ab));
    for (int p = 0; p < P; ++p) {
      const uint8_t* w0 = wb + (2 * p) * ws;
      const uint8_t* w1 = w0 + ws;
      const __m256i x = _mm256_inserti128_si256(
          _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w0 + 2))),
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(w1 + 2)), 1);
      const __m256i lo = _mm256_and_si256(x, m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), m4);
      __m256i p16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, alo), _mm256_maddubs_epi16(hi, ahi));
      p16 = _mm256_sub_epi16(p16, off16);
      const __m256 pf = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
      const __m256 sw = _mm256_blend_ps(_mm256_broadcast_ss(ht + load_u16(w1)),
                                        _mm256_castps128_ps256(_mm_broadcast_ss(ht + load_u16(w0))), 0x0f);
      acc[p] = _mm256_fmadd_ps(pf, _mm256_mul_ps(sw, da), acc[p]);
    }
  }
  for (int p = 0; p < P; ++p) {
    __m128 lo = _mm256_castps256_ps128(acc[p]), hi = _mm256_extractf128_ps(acc[p], 1);
    __m128 s = _mm_hadd_ps(lo, hi);  // lo0+lo1, lo2+lo3, hi0+hi1, hi2+hi3
    s = _mm_hadd_ps(s, s);           // lo, hi, lo, hi
    y[2 * p] = _mm_cvtss_f32(s);
    y[2 * p + 1] = _mm_cvtss_f32(_mm_shuffle_ps(s, s, 1));
  }
}

template <typename G>
void gemv(int64_t n, const void* vw, int64_t w_stride, int64_t nr, const void* va, float* y) {
  const auto* w = static_cast<const uint8_t*>(vw);
  const auto* a = static_cast<const uint8_t*>(va);
  const int64_t nb = n / kQK;
  int64_t r = 0;
  if constexpr (std::is_same_v<G, G4_0>) {
    constexpr int kR = kQ4_0PairRows;
    for (; r + kR <= nr; r += kR) gemv_q4_0_pairs<kR>(nb, w + r * w_stride, w_stride, a, y + r);
    for (; r + 4 <= nr; r += 4) gemv_tile<G, 4>(nb, w + r * w_stride, w_stride, a, y + r);
  } else {
  for (; r + kGemvRows <= nr; r += kGemvRows) gemv_tile<G, kGemvRows>(nb, w + r * w_stride, w_stride, a, y + r);
  }
  switch (nr - r) {
    case 3: gemv_tile<G, 3>(nb, w + r * w_stride, w_stride, a, y + r); break;
    case 2: gemv_tile<G, 2>(nb, w + r * w_stride, w_stride, a, y + r); break;
    case 1: gemv_tile<G, 1>(nb, w + r * w_stride, w_stride, a, y + r); break;
    default: break;
  }
}

// ---- activation quantizers -----------------------------------------------------------------------------

// std::round (half away from zero) of each lane, exactly: floor(|v|) + (frac >= 0.5), sign restored.
inline __m256 round_away(__m256 v) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 a = _mm256_andnot_ps(sign, v);
  const __m256 t = _mm256_round_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  const __m256 up = _mm256_and_ps(_mm256_cmp_ps(_mm256_sub_ps(a, t), _mm256_set1_ps(0.5f), _CMP_GE_OQ),
                                  _mm256_set1_ps(1.0f));
  return _mm256_or_ps(_mm256_add_ps(t, up), _mm256_and_ps(sign, v));
}

inline uint16_t to_half(float f) { return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)); }

// Quantizes 32 floats into 32 int8 codes at q; returns d (fp32) and the code sum in *sum.
inline float quantize_block(const float* x, uint8_t* q, int32_t* sum) {
  __m256 v[4];
  for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(x + 8 * k);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  // amax as the integer max of the |x| bit patterns: for finite |x| the same value as a float max, and
  // NaN (> 0x7f800000) or inf (== 0x7f800000) win it instead of being dropped, so one compare flags them.
  __m256i a[4];
  for (int k = 0; k < 4; ++k) a[k] = _mm256_castps_si256(_mm256_andnot_ps(sign, v[k]));
  const __m256i m = _mm256_max_epi32(_mm256_max_epi32(a[0], a[1]), _mm256_max_epi32(a[2], a[3]));
  __m128i m4 = _mm_max_epi32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
  m4 = _mm_max_epi32(m4, _mm_shuffle_epi32(m4, _MM_SHUFFLE(1, 0, 3, 2)));
  m4 = _mm_max_epi32(m4, _mm_shuffle_epi32(m4, _MM_SHUFFLE(2, 3, 0, 1)));
  const int32_t amax_bits = _mm_cvtsi128_si32(m4);
  if (amax_bits >= 0x7f800000) {  // NaN or inf in the block: codes 0, d NaN (as the reference)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), _mm256_setzero_si256());
    if (sum != nullptr) *sum = 0;
    return __builtin_nanf("");
  }
  float amax;
  std::memcpy(&amax, &amax_bits, sizeof(amax));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const __m256 vid = _mm256_set1_ps(id);
  __m256i iq[4];
  for (int k = 0; k < 4; ++k) iq[k] = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(v[k], vid)));
  if (sum != nullptr) {
    const __m256i s8 = _mm256_add_epi32(_mm256_add_epi32(iq[0], iq[1]), _mm256_add_epi32(iq[2], iq[3]));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
    *sum = _mm_cvtsi128_si32(s4);
  }
  // Pack 4 x 8 int32 -> 32 int8; the packs work per 128-bit lane, the permute restores element order.
  const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(iq[0], iq[1]), _mm256_packs_epi32(iq[2], iq[3]));
  const __m256i ordered = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), ordered);
  return d;
}

void quantize_q8_0(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    uint8_t* b = y + i * static_cast<int64_t>(sizeof(BlockQ8_0));
    const uint16_t d = to_half(quantize_block(x + i * kQK, b + 2, nullptr));
    std::memcpy(b, &d, sizeof(d));
  }
}

void quantize_q8_1(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    uint8_t* b = y + i * static_cast<int64_t>(sizeof(BlockQ8_1));
    int32_t sum = 0;
    const float df = quantize_block(x + i * kQK, b + 4, &sum);
    const uint16_t d = to_half(df);
    const uint16_t s = to_half(static_cast<float>(sum) * df);
    std::memcpy(b, &d, sizeof(d));
    std::memcpy(b + 2, &s, sizeof(s));
  }
}

const DotKernels kQ4_0k{kTypeQ4_0, kTypeQ8_0, quantize_q8_0, vec_dot<Q4_0>, Isa::kAvx2,
                       legacy_avx2_gemm(kTypeQ4_0), gemv<G4_0>, legacy_avx2_act_sums(kTypeQ4_0)};
const DotKernels kQ4_1k{kTypeQ4_1, kTypeQ8_1, quantize_q8_1, vec_dot<Q4_1>, Isa::kAvx2,
                       legacy_avx2_gemm(kTypeQ4_1), gemv<G4_1>};
const DotKernels kQ5_0k{kTypeQ5_0, kTypeQ8_0, quantize_q8_0, vec_dot<Q5_0>, Isa::kAvx2,
                       legacy_avx2_gemm(kTypeQ5_0), gemv<G5_0>, legacy_avx2_act_sums(kTypeQ5_0)};
const DotKernels kQ5_1k{kTypeQ5_1, kTypeQ8_1, quantize_q8_1, vec_dot<Q5_1>, Isa::kAvx2,
                       legacy_avx2_gemm(kTypeQ5_1)};
const DotKernels kQ8_0k{kTypeQ8_0, kTypeQ8_0, quantize_q8_0, vec_dot<Q8_0>, Isa::kAvx2,
                       legacy_avx2_gemm(kTypeQ8_0)};

}  // namespace

const DotKernels* legacy_avx2_kernels(uint32_t w_type) {
  switch (w_type) {
    case kTypeQ4_0: return &kQ4_0k;
    case kTypeQ4_1: return &kQ4_1k;
    case kTypeQ5_0: return &kQ5_0k;
    case kTypeQ5_1: return &kQ5_1k;
    case kTypeQ8_0: return &kQ8_0k;
    default: return nullptr;
  }
}

}  // namespace cw::kernels
