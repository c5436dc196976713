// AVX-512 (F BW VL DQ VNNI) dot products and activation quantizers of the legacy quant formats.
//
// What and why: as legacy_avx2.cc, but two blocks share one 512-bit register (64 codes) and VNNI's
// _mm512_dpbusd_epi32 (unsigned x signed bytes, summed in fours into int32) replaces maddubs + madd.
// dpbusd needs an unsigned weight operand, so the signed codes are handled by an offset: for Q4_0/Q5_0,
// sum (q - o) a = dpbusd(q, a) - dpbusd(o, a) with q the unsigned code and o = 8 or 16; for Q8_0,
// w ^ 0x80 = w + 128 is unsigned and the second dpbusd subtracts 128 * sum(a). Q5's fifth bits come
// straight from qh as a 64-bit mask for the two blocks. The int32 sums of a pair are converted and fused
// into fp32 accumulators, multiplied by [d_w0 x8, d_w1 x8] and [d_a0 x8, d_a1 x8] built from broadcast loads
// of the fp16 table (legacy_half_table), as in the AVX2 file. An odd last block is paired with an all-zero
// block (scales 0, codes 0), which adds exactly 0.
//
// The quantizers reproduce quantize_row_q8_{0,1}_ref byte for byte with the same method as the AVX2 file
// (exact floor-based half-away-from-zero rounding; F16C round-to-nearest-even for the fp16 fields; a block
// with a NaN or inf gets d = s = NaN and codes 0).
// No inline functions of other headers are used here (see legacy_avx2.cc for why).
//
// GCC 12's avx512fintrin.h seeds many intrinsics with _mm512_undefined_*(), which -Wmaybe-uninitialized
// (and -Wuninitialized) report at every inlined use: a known false positive of the header, not of this file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/legacy_kernels.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {
namespace {

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Two 32-byte runs -> one register [p0[0..31], p1[0..31]].
inline __m512i load2x32(const uint8_t* p0, const uint8_t* p1) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p0));
  const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p1));
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// Two blocks of 16 packed-nibble bytes -> 64 codes 0..15 in element order [block0 (lo, hi), block1 (lo, hi)].
inline __m512i expand_nibbles2(const uint8_t* qs0, const uint8_t* qs1) {
  const __m256i b0 = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs0)));
  const __m256i b1 = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs1)));
  const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(b0), b1, 1);  // [qs0 qs0 qs1 qs1]
  const __m512i shifted = _mm512_srlv_epi64(both, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4));
  return _mm512_and_si512(shifted, _mm512_set1_epi8(0x0f));
}

// 64-bit mask of the fifth bits of two Q5 blocks (bit j: element j of block 0; bit 32 + j: of block 1).
inline __mmask64 fifth_bits2(const uint8_t* qh0, const uint8_t* qh1) {
  return _cvtu64_mask64(static_cast<uint64_t>(load_u32(qh0)) | static_cast<uint64_t>(load_u32(qh1)) << 32);
}

inline __m512i dpbusd(__m512i u, __m512i s) { return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s); }

// Each type: idot2 gives the int32 sums of a pair of blocks (lanes 0..7 block 0, 8..15 block 1).
struct Q4_0 {
  static constexpr int kWBytes = sizeof(BlockQ4_0);
  static constexpr bool kMin = false;
  static __m512i idot2(const uint8_t* w0, const uint8_t* w1, __m512i a) {
    return _mm512_sub_epi32(dpbusd(expand_nibbles2(w0 + 2, w1 + 2), a), dpbusd(_mm512_set1_epi8(8), a));
  }
};
struct Q4_1 {
  static constexpr int kWBytes = sizeof(BlockQ4_1);
  static constexpr bool kMin = true;
  static __m512i idot2(const uint8_t* w0, const uint8_t* w1, __m512i a) {
    return dpbusd(expand_nibbles2(w0 + 4, w1 + 4), a);
  }
};
struct Q5_0 {
  static constexpr int kWBytes = sizeof(BlockQ5_0);
  static constexpr bool kMin = false;
  static __m512i idot2(const uint8_t* w0, const uint8_t* w1, __m512i a) {
    const __m512i q4 = expand_nibbles2(w0 + 6, w1 + 6);
    const __m512i q5 = _mm512_mask_add_epi8(q4, fifth_bits2(w0 + 2, w1 + 2), q4, _mm512_set1_epi8(16));
    return _mm512_sub_epi32(dpbusd(q5, a), dpbusd(_mm512_set1_epi8(16), a));
  }
};
struct Q5_1 {
  static constexpr int kWBytes = sizeof(BlockQ5_1);
  static constexpr bool kMin = true;
  static __m512i idot2(const uint8_t* w0, const uint8_t* w1, __m512i a) {
    const __m512i q4 = expand_nibbles2(w0 + 8, w1 + 8);
    return dpbusd(_mm512_mask_add_epi8(q4, fifth_bits2(w0 + 4, w1 + 4), q4, _mm512_set1_epi8(16)), a);
  }
};
struct Q8_0 {
  static constexpr int kWBytes = sizeof(BlockQ8_0);
  static constexpr bool kMin = false;
  static __m512i idot2(const uint8_t* w0, const uint8_t* w1, __m512i a) {
    const __m512i u = _mm512_xor_si512(load2x32(w0 + 2, w1 + 2), _mm512_set1_epi8(static_cast<char>(0x80)));
    return _mm512_sub_epi32(dpbusd(u, a), dpbusd(_mm512_set1_epi8(static_cast<char>(0x80)), a));
  }
};

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// [ht[h0] x8, ht[h1] x8]: two broadcast loads from the fp16 table and one insert.
inline __m512 scales2(const float* ht, const uint8_t* p0, const uint8_t* p1) {
  return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_broadcast_ss(ht + load_u16(p0))),
                            _mm256_broadcast_ss(ht + load_u16(p1)), 1);
}

// acc += isums * [d_w0 x8, d_w1 x8] * [d_a0 x8, d_a1 x8] for a pair of blocks; mins += m_w * s_a for the
// types with a min.
template <typename T>
inline __m512 step2(const float* ht, const uint8_t* w0, const uint8_t* w1, const uint8_t* a0, const uint8_t* a1,
                    __m512 acc, float& mins) {
  constexpr int kAq = T::kMin ? 4 : 2;
  const __m512 p = _mm512_cvtepi32_ps(T::idot2(w0, w1, load2x32(a0 + kAq, a1 + kAq)));
  if constexpr (T::kMin) {
    mins += ht[load_u16(w0 + 2)] * ht[load_u16(a0 + 2)];
    mins += ht[load_u16(w1 + 2)] * ht[load_u16(a1 + 2)];
  }
  return _mm512_fmadd_ps(_mm512_mul_ps(p, scales2(ht, w0, w1)), scales2(ht, a0, a1), acc);
}

// An all-zero weight or activation block of any legacy type (scales 0, codes 0).
alignas(64) constexpr uint8_t kZeroBlock[64] = {};

constexpr int kPrefetchAhead = 1024;  // weights, 1 KiB ahead, as in legacy_avx2.cc

template <typename T>
float vec_dot(int64_t n, const void* vw, const void* va) {
  constexpr int kABytes = T::kMin ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
  const auto* w = static_cast<const uint8_t*>(vw);
  const auto* a = static_cast<const uint8_t*>(va);
  const int64_t nb = n / kQK;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  float mins0 = 0.0f, mins1 = 0.0f;
  const float* ht = legacy_half_table();
  int64_t i = 0;
  for (; i + 4 <= nb; i += 4) {
    const uint8_t* wb = w + i * T::kWBytes;
    const uint8_t* ab = a + i * kABytes;
    _mm_prefetch(reinterpret_cast<const char*>(wb + kPrefetchAhead), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(wb + kPrefetchAhead + 64), _MM_HINT_T0);
    acc0 = step2<T>(ht, wb, wb + T::kWBytes, ab, ab + kABytes, acc0, mins0);
    acc1 = step2<T>(ht, wb + 2 * T::kWBytes, wb + 3 * T::kWBytes, ab + 2 * kABytes, ab + 3 * kABytes, acc1,
                    mins1);
  }
  for (; i + 2 <= nb; i += 2) {
    const uint8_t* wb = w + i * T::kWBytes;
    const uint8_t* ab = a + i * kABytes;
    acc0 = step2<T>(ht, wb, wb + T::kWBytes, ab, ab + kABytes, acc0, mins0);
  }
  if (i < nb) acc1 = step2<T>(ht, w + i * T::kWBytes, kZeroBlock, a + i * kABytes, kZeroBlock, acc1, mins1);
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + (mins0 + mins1);
}

// ---- activation quantizers -----------------------------------------------------------------------------

inline __m512 round_away(__m512 v) {
  const __m512 a = _mm512_abs_ps(v);
  const __m512 t = _mm512_roundscale_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  const __mmask16 up = _mm512_cmp_ps_mask(_mm512_sub_ps(a, t), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const __m512 r = _mm512_mask_add_ps(t, up, t, _mm512_set1_ps(1.0f));
  return _mm512_or_ps(r, _mm512_and_ps(v, _mm512_set1_ps(-0.0f)));
}

inline uint16_t to_half(float f) { return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)); }

inline float quantize_block(const float* x, uint8_t* q, int32_t* sum) {
  const __m512 v0 = _mm512_loadu_ps(x);
  const __m512 v1 = _mm512_loadu_ps(x + 16);
  // Integer max of the |x| bit patterns: the float max for finite input, NaN/inf win it (see legacy_avx2.cc).
  const int32_t amax_bits = _mm512_reduce_max_epi32(
      _mm512_max_epi32(_mm512_castps_si512(_mm512_abs_ps(v0)), _mm512_castps_si512(_mm512_abs_ps(v1))));
  if (amax_bits >= 0x7f800000) {  // NaN or inf in the block: codes 0, d NaN (as the reference)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), _mm256_setzero_si256());
    if (sum != nullptr) *sum = 0;
    return __builtin_nanf("");
  }
  float amax;
  std::memcpy(&amax, &amax_bits, sizeof(amax));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const __m512 vid = _mm512_set1_ps(id);
  const __m512i i0 = _mm512_cvttps_epi32(round_away(_mm512_mul_ps(v0, vid)));
  const __m512i i1 = _mm512_cvttps_epi32(round_away(_mm512_mul_ps(v1, vid)));
  if (sum != nullptr) *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(i0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtepi32_epi8(i1));
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

// Prefill uses the AVX2 GEMM (legacy_gemm_avx2.cc; every AVX-512 CPU runs AVX2).
const DotKernels kQ4_0k{kTypeQ4_0, kTypeQ8_0, quantize_q8_0, vec_dot<Q4_0>, Isa::kAvx512,
                       legacy_avx2_gemm(kTypeQ4_0), nullptr, legacy_avx2_act_sums(kTypeQ4_0)};
const DotKernels kQ4_1k{kTypeQ4_1, kTypeQ8_1, quantize_q8_1, vec_dot<Q4_1>, Isa::kAvx512,
                       legacy_avx2_gemm(kTypeQ4_1)};
const DotKernels kQ5_0k{kTypeQ5_0, kTypeQ8_0, quantize_q8_0, vec_dot<Q5_0>, Isa::kAvx512,
                       legacy_avx2_gemm(kTypeQ5_0), nullptr, legacy_avx2_act_sums(kTypeQ5_0)};
const DotKernels kQ5_1k{kTypeQ5_1, kTypeQ8_1, quantize_q8_1, vec_dot<Q5_1>, Isa::kAvx512,
                       legacy_avx2_gemm(kTypeQ5_1)};
const DotKernels kQ8_0k{kTypeQ8_0, kTypeQ8_0, quantize_q8_0, vec_dot<Q8_0>, Isa::kAvx512,
                       legacy_avx2_gemm(kTypeQ8_0)};

}  // namespace

const DotKernels* legacy_avx512_kernels(uint32_t w_type) {
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
