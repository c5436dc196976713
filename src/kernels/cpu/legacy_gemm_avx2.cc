// AVX2 prefill GEMM of the legacy quant formats (GemmFn of dispatch.h; built with -mavx2 -mfma -mf16c).
//
// What and why: in prefill every weight row meets every token, so the per-(row, token) work of vec_dot
// (expand a block, sign trick, maddubs, madd, convert, two scale multiplies, one accumulator) can be cut by
// expanding each weight block once and letting a register hold one value per weight ROW instead of eight
// partial sums of one pair. The weight rows of the call are repacked, 8 rows to a panel, into a
// thread-local buffer (legacy_gemm_scratch): per 32-element block, 8 groups of 32 bytes where group g holds
// elements 4g..4g+3 of rows 0..7 as int8 codes, then d_w of the 8 rows as fp32 (then m_w for Q4_1/Q5_1).
// The microkernel keeps 8 rows x kT tokens in registers: per group it loads the 32 weight bytes once and,
// for each token, broadcasts the token's 4 matching activation bytes, so one maddubs multiplies 8 rows x 4
// elements. Codes are stored unsigned (q for Q4_0 Q4_1 Q5_0 Q5_1) so that maddubs needs no sign trick; the
// offsets of Q4_0/Q5_0 (8, 16) are subtracted per block as offset * sum(a), computed once per token tile
// for all panels. Q8_0 keeps signed codes and the sign trick (|w| x sign(a, w)). The int16 pair sums are
// accumulated over groups in int16 while they cannot overflow (codes <= 15: 8 groups x 2 x 15 x 127 =
// 30480; codes <= 31: 4 groups; Q8_0: 1), then widened by madd. Per block and token: one convert, one
// multiply d_w[8] x d_a and one FMA into the (row, token) fp32 lanes (+ one FMA m_w[8] x s_a for Q4_1 /
// Q5_1). No horizontal sums. Tiles of 4 tokens (1-3 for the remainder); token tiles outside, panels inside,
// so a tile's activations stay in L1 while the call's panels (16 rows: 2 x 18 KiB at n = 2048) sit in L2.
// Side by side (cw_legacy_gemm_bench, one thread, 16 rows x 128 tokens x 2048, Zen 3): vec_dot loop
// 20-25 GMAC/s, this GEMM 57 (Q8_0) - 76 (Q4_0, Q4_1) GMAC/s.
//
// Numerics: per block the integer dot is exact, as in vec_dot; each (row, token) adds isum * (d_w * d_a)
// (+ m_w * s_a) to one fp32 accumulator block after block, i.e. the scalar reference's per-block terms
// summed in one sequence (vec_dot sums four interleaved sequences): equal to vec_dot to fp32 rounding.
// Activation codes are assumed in [-127, 127] (the Q8 quantizers guarantee it), as in vec_dot.
//
// This file includes no inline functions of other headers (only structs and constants), see legacy_avx2.cc.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/legacy_kernels.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {
namespace {

constexpr int kPanelRows = 8;
constexpr int kGroupBytes = 32;                        // 8 rows x 4 codes
constexpr int kCodeBytes = kQK * kPanelRows;           // 256 codes per block of a panel
constexpr int kMaxTileTokens = 4;

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline __m256i load32(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// 16 bytes of packed nibbles -> 32 bytes: low nibbles (elements 0..15), then high nibbles (16..31).
inline __m256i expand_nibbles(const uint8_t* qs) {
  const __m256i t = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  return _mm256_and_si256(_mm256_srlv_epi64(t, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
}

// 32 bits (little-endian at qh) -> 32 bytes, 0xff where bit j is set, 0 elsewhere.
inline __m256i expand_bits(const uint8_t* qh) {
  const __m256i pick = _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202,
                                          0x0303030303030303);
  const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(load_u32(qh))), pick);
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  return _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
}

// Per type: block size, whether it has a min, whether its codes are signed, how many groups may be summed
// in int16 before widening, and the block's 32 codes in element order.
struct Q4_0 {
  static constexpr int kWBytes = sizeof(BlockQ4_0);
  static constexpr bool kMin = false, kSigned = false;
  static constexpr int kOffset = 8, kInt16Groups = 8;
  static __m256i codes(const uint8_t* w) { return expand_nibbles(w + 2); }
};
struct Q4_1 {
  static constexpr int kWBytes = sizeof(BlockQ4_1);
  static constexpr bool kMin = true, kSigned = false;
  static constexpr int kOffset = 0, kInt16Groups = 8;
  static __m256i codes(const uint8_t* w) { return expand_nibbles(w + 4); }
};
struct Q5_0 {
  static constexpr int kWBytes = sizeof(BlockQ5_0);
  static constexpr bool kMin = false, kSigned = false;
  static constexpr int kOffset = 16, kInt16Groups = 4;
  static __m256i codes(const uint8_t* w) {
    return _mm256_or_si256(expand_nibbles(w + 6), _mm256_and_si256(expand_bits(w + 2), _mm256_set1_epi8(0x10)));
  }
};
struct Q5_1 {
  static constexpr int kWBytes = sizeof(BlockQ5_1);
  static constexpr bool kMin = true, kSigned = false;
  static constexpr int kOffset = 0, kInt16Groups = 4;
  static __m256i codes(const uint8_t* w) {
    return _mm256_or_si256(expand_nibbles(w + 8), _mm256_and_si256(expand_bits(w + 4), _mm256_set1_epi8(0x10)));
  }
};
struct Q8_0 {
  static constexpr int kWBytes = sizeof(BlockQ8_0);
  static constexpr bool kMin = false, kSigned = true;
  static constexpr int kOffset = 0, kInt16Groups = 1;
  static __m256i codes(const uint8_t* w) { return load32(w + 2); }
};

template <typename T>
constexpr int panel_block_bytes() {
  return kCodeBytes + (T::kMin ? 2 : 1) * kPanelRows * static_cast<int>(sizeof(float));
}

// Repacks rows [0, rows) (rows <= 8) of w into one panel of nb blocks; missing rows get codes 0, scales 0.
template <typename T>
void pack_panel(const uint8_t* w, int64_t w_stride, int rows, int64_t nb, uint8_t* panel) {
  const float* ht = legacy_half_table();
  constexpr int kBytes = panel_block_bytes<T>();
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* pb = panel + b * kBytes;
    float* d = reinterpret_cast<float*>(pb + kCodeBytes);
    __m256i r[kPanelRows];
    for (int i = 0; i < kPanelRows; ++i) {
      if (i < rows) {
        const uint8_t* wb = w + i * w_stride + b * T::kWBytes;
        r[i] = T::codes(wb);
        d[i] = ht[load_u16(wb)];
        if constexpr (T::kMin) d[kPanelRows + i] = ht[load_u16(wb + 2)];
      } else {
        r[i] = _mm256_setzero_si256();
        d[i] = 0.0f;
        if constexpr (T::kMin) d[kPanelRows + i] = 0.0f;
      }
    }
    // 8 x 8 transpose of 32-bit elements: out[g] = (r[0][g], r[1][g], ..., r[7][g]).
    const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
    const __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    const __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
    const __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
    const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
    const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
    const __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
    const __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
    // u0 = elements (0 | 4) of rows 0..3, u4 the same of rows 4..7, u1 = (1 | 5), u2 = (2 | 6), u3 = (3 | 7).
    const __m256i out[kPanelRows] = {
        _mm256_permute2x128_si256(u0, u4, 0x20), _mm256_permute2x128_si256(u1, u5, 0x20),
        _mm256_permute2x128_si256(u2, u6, 0x20), _mm256_permute2x128_si256(u3, u7, 0x20),
        _mm256_permute2x128_si256(u0, u4, 0x31), _mm256_permute2x128_si256(u1, u5, 0x31),
        _mm256_permute2x128_si256(u2, u6, 0x31), _mm256_permute2x128_si256(u3, u7, 0x31)};
    for (int g = 0; g < kPanelRows; ++g)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(pb + g * kGroupBytes), out[g]);
  }
}

// out[b] = sum of the 32 codes of activation block b (Q8_0 activations: d, qs). For the types stored as
// unsigned codes q = w + offset (Q4_0, Q5_0): sum w a = sum q a - offset * sum a.
void block_sums(const uint8_t* a, int64_t nb, int32_t* out) {
  const __m256i ones8 = _mm256_set1_epi8(1);
  const __m256i ones16 = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, load32(a + b * sizeof(BlockQ8_0) + 2)), ones16);
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
    out[b] = _mm_cvtsi128_si32(s4);
  }
}

inline __m256i bcast4(const uint8_t* p) { return _mm256_set1_epi32(static_cast<int>(load_u32(p))); }

// One panel (8 rows) x kT tokens over nb blocks; writes y[t * ldy + r] for r < rows.
template <typename T, int kT>
void panel_tile(const uint8_t* panel, int rows, int64_t nb, const uint8_t* a, int64_t a_stride,
                const int32_t* corr, float* y, int64_t ldy) {
  constexpr int kABytes = T::kMin ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
  constexpr int kAq = T::kMin ? 4 : 2;  // Q8_1: d, s, qs; Q8_0: d, qs
  constexpr int kBytes = panel_block_bytes<T>();
  const float* ht = legacy_half_table();
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[kT];
  for (int t = 0; t < kT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* pb = panel + b * kBytes;
    const uint8_t* ab = a + b * kABytes;
    __m256i isum[kT];
    for (int t = 0; t < kT; ++t) isum[t] = _mm256_setzero_si256();
#pragma GCC unroll 1
    for (int g0 = 0; g0 < kPanelRows; g0 += T::kInt16Groups) {
      __m256i s16[kT];
      for (int t = 0; t < kT; ++t) s16[t] = _mm256_setzero_si256();
#pragma GCC unroll 2
      for (int g = g0; g < g0 + T::kInt16Groups; ++g) {
        const __m256i w = load32(pb + g * kGroupBytes);
        if constexpr (T::kSigned) {
          const __m256i aw = _mm256_sign_epi8(w, w);  // |w| as unsigned (-128 -> 128)
          for (int t = 0; t < kT; ++t) {
            const __m256i av = bcast4(ab + t * a_stride + kAq + 4 * g);
            s16[t] = _mm256_add_epi16(s16[t], _mm256_maddubs_epi16(aw, _mm256_sign_epi8(av, w)));
          }
        } else {
          for (int t = 0; t < kT; ++t) {
            const __m256i av = bcast4(ab + t * a_stride + kAq + 4 * g);
            s16[t] = _mm256_add_epi16(s16[t], _mm256_maddubs_epi16(w, av));
          }
        }
      }
      for (int t = 0; t < kT; ++t) isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(s16[t], ones));
    }
    if constexpr (T::kOffset != 0) {
      for (int t = 0; t < kT; ++t) isum[t] = _mm256_sub_epi32(isum[t], _mm256_set1_epi32(T::kOffset * corr[t * nb + b]));
    }
    const __m256 dw = _mm256_loadu_ps(reinterpret_cast<const float*>(pb + kCodeBytes));
    for (int t = 0; t < kT; ++t) {
      const uint8_t* at = ab + t * a_stride;
      const __m256 scale = _mm256_mul_ps(dw, _mm256_broadcast_ss(ht + load_u16(at)));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), scale, acc[t]);
      if constexpr (T::kMin) {
        const __m256 mw = _mm256_loadu_ps(reinterpret_cast<const float*>(pb + kCodeBytes) + kPanelRows);
        acc[t] = _mm256_fmadd_ps(mw, _mm256_broadcast_ss(ht + load_u16(at + 2)), acc[t]);
      }
    }
  }
  for (int t = 0; t < kT; ++t) {
    if (rows == kPanelRows) {
      _mm256_storeu_ps(y + t * ldy, acc[t]);
    } else {
      float tmp[kPanelRows];
      _mm256_storeu_ps(tmp, acc[t]);
      for (int r = 0; r < rows; ++r) y[t * ldy + r] = tmp[r];
    }
  }
}

template <typename T>
void gemm(int64_t n, const void* vw, int64_t w_stride, int64_t nr, const void* va, int64_t a_stride, int64_t nt,
          float* y, int64_t ldy, const int32_t* a_sums) {
  const auto* w = static_cast<const uint8_t*>(vw);
  const auto* a = static_cast<const uint8_t*>(va);
  const int64_t nb = n / kQK;
  const int64_t n_panels = (nr + kPanelRows - 1) / kPanelRows;
  const int64_t panel_bytes = nb * panel_block_bytes<T>();
  // Packed panels, then (Q4_0 / Q5_0, when the caller has no a_sums) the block sums of one token tile.
  uint8_t* packed = legacy_gemm_scratch(static_cast<size_t>(n_panels * panel_bytes + kMaxTileTokens * nb * 4));
  auto* corr = reinterpret_cast<int32_t*>(packed + n_panels * panel_bytes);
  for (int64_t p = 0; p < n_panels; ++p) {
    const int rows = static_cast<int>(nr - p * kPanelRows < kPanelRows ? nr - p * kPanelRows : kPanelRows);
    pack_panel<T>(w + p * kPanelRows * w_stride, w_stride, rows, nb, packed + p * panel_bytes);
  }
  for (int64_t t0 = 0; t0 < nt; t0 += kMaxTileTokens) {
    const int64_t left = nt - t0;
    const uint8_t* at = a + t0 * a_stride;
    const int64_t tile = left >= kMaxTileTokens ? kMaxTileTokens : left;
    const int32_t* tile_sums = a_sums != nullptr ? a_sums + t0 * nb : corr;
    if constexpr (T::kOffset != 0) {
      if (a_sums == nullptr)
        for (int64_t t = 0; t < tile; ++t) block_sums(at + t * a_stride, nb, corr + t * nb);
    }
    for (int64_t p = 0; p < n_panels; ++p) {
      const int rows = static_cast<int>(nr - p * kPanelRows < kPanelRows ? nr - p * kPanelRows : kPanelRows);
      const uint8_t* panel = packed + p * panel_bytes;
      float* yp = y + t0 * ldy + p * kPanelRows;
      switch (tile) {
        case 4: panel_tile<T, 4>(panel, rows, nb, at, a_stride, tile_sums, yp, ldy); break;
        case 3: panel_tile<T, 3>(panel, rows, nb, at, a_stride, tile_sums, yp, ldy); break;
        case 2: panel_tile<T, 2>(panel, rows, nb, at, a_stride, tile_sums, yp, ldy); break;
        default: panel_tile<T, 1>(panel, rows, nb, at, a_stride, tile_sums, yp, ldy); break;
      }
    }
  }
}

void act_sums_q8_0(const void* a, int64_t n, int32_t* sums) {
  block_sums(static_cast<const uint8_t*>(a), n / kQK, sums);
}

}  // namespace

ActSumsFn legacy_avx2_act_sums(uint32_t w_type) {
  return w_type == kTypeQ4_0 || w_type == kTypeQ5_0 ? act_sums_q8_0 : nullptr;
}

GemmFn legacy_avx2_gemm(uint32_t w_type) {
  switch (w_type) {
    case kTypeQ4_0: return gemm<Q4_0>;
    case kTypeQ4_1: return gemm<Q4_1>;
    case kTypeQ5_0: return gemm<Q5_0>;
    case kTypeQ5_1: return gemm<Q5_1>;
    case kTypeQ8_0: return gemm<Q8_0>;
    default: return nullptr;
  }
}

}  // namespace cw::kernels
