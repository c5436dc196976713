// Scalar reference (de)quantization of the k-quant super-block formats: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
//
// What and why: a k-quant super-block holds 256 values in sub-blocks of 16 or 32, each with its own small
// integer scale (and min, for the affine types) that is itself quantized against one or two fp16
// super-scales. Dequantization here is the normative meaning and reproduces llama.cpp's fp32 results bit
// for bit (same products in the same order, no FMA). The quantizers are our own: per sub-block a grid
// search over the code range followed by least-squares refits of scale (and min) for the chosen codes, then
// the sub-block scales are quantized against the super-scale and the codes re-rounded with the scales
// actually stored. Quality is close to llama.cpp's reference quantizer (see quant_golden_test.cc).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/status.h"
#include "kernels/cpu/block_io.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {
namespace {

int64_t n_blocks(int64_t n) {
  CW_CHECK_MSG(n >= 0 && n % kQK_K == 0, "row length must be a multiple of 256");
  return n / kQK_K;
}

int nearest(float v) { return static_cast<int>(std::lrintf(v)); }  // ties to even

// 6-bit scale and min codes of sub-block j (0..7) of Q4_K/Q5_K. Bytes 0..3 hold scales 0..3 in their low
// 6 bits, bytes 4..7 mins 0..3; scales/mins 4..7 keep their low nibbles in bytes 8..11 (scale low, min high)
// and their top 2 bits in the top bits of bytes 0..3 (scales) and 4..7 (mins).
void get_scale_min_k4(int j, const uint8_t* q, int* sc, int* mn) {
  if (j < 4) {
    *sc = q[j] & 63;
    *mn = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
    *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

void set_scale_min_k4(int j, int sc, int mn, uint8_t* q) {
  if (j < 4) {
    q[j] = static_cast<uint8_t>((q[j] & 0xc0) | sc);
    q[j + 4] = static_cast<uint8_t>((q[j + 4] & 0xc0) | mn);
  } else {
    q[j + 4] = static_cast<uint8_t>((sc & 0x0f) | ((mn & 0x0f) << 4));
    q[j - 4] = static_cast<uint8_t>(q[j - 4] | ((sc >> 4) << 6));
    q[j] = static_cast<uint8_t>(q[j] | ((mn >> 4) << 6));
  }
}

// 6-bit scale code i (0..15) of Q3_K, 0..63 (the value used is code - 32).
int get_scale_q3_k(int i, const uint8_t* s) {
  const int lo = (s[i % 8] >> (4 * (i / 8))) & 0x0f;
  const int hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
  return lo | (hi << 4);
}

void set_scale_q3_k(int i, int code, uint8_t* s) {
  s[i % 8] = static_cast<uint8_t>(s[i % 8] | ((code & 0x0f) << (4 * (i / 8))));
  s[8 + i % 4] = static_cast<uint8_t>(s[8 + i % 4] | (((code >> 4) & 3) << (2 * (i / 4))));
}

// ---- per sub-block fits --------------------------------------------------------------------------------

// Grid of candidate code ranges, relative to the data range: slightly shrunk (<1) to stretched (>1, which
// clips the extremes but refines the bulk of the distribution).
constexpr int kGridLo = -3;
constexpr int kGridHi = 20;
constexpr float kGridStep = 0.02f;

struct AffineFit {
  float scale = 0;  // x ~ scale * L - min
  float min = 0;    // >= 0
  double err = std::numeric_limits<double>::infinity();
};

// Least-squares (scale, min) for fixed codes L, with the constraint min >= 0; returns the squared error.
AffineFit refit_affine(const float* x, const int* L, int n) {
  double sl = 0, sll = 0, sx = 0, sxl = 0;
  for (int i = 0; i < n; ++i) {
    sl += L[i];
    sll += static_cast<double>(L[i]) * L[i];
    sx += x[i];
    sxl += static_cast<double>(x[i]) * L[i];
  }
  double a = 0, b = 0;  // x ~ a * L + b
  const double det = n * sll - sl * sl;
  if (det > 0) {
    a = (n * sxl - sx * sl) / det;
    b = (sll * sx - sl * sxl) / det;
  } else {
    b = sx / n;  // all codes equal: fit the mean
  }
  if (b > 0) {  // the format can only subtract a min
    b = 0;
    a = sll > 0 ? sxl / sll : 0;
  }
  a = std::max(a, 0.0);
  AffineFit f;
  f.scale = static_cast<float>(a);
  f.min = static_cast<float>(-b);
  f.err = 0;
  for (int i = 0; i < n; ++i) {
    const double e = static_cast<double>(f.scale) * L[i] - f.min - x[i];
    f.err += e * e;
  }
  return f;
}

void round_affine(const float* x, int n, int nmax, float scale, float min, int* L) {
  for (int i = 0; i < n; ++i) L[i] = scale > 0 ? std::clamp(nearest((x[i] + min) / scale), 0, nmax) : 0;
}

// Fits x ~ scale * L - min with L in [0, nmax] and min >= 0 (n <= 32).
AffineFit fit_affine(const float* x, int n, int nmax) {
  float lo = 0, hi = x[0];
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  AffineFit best;
  if (!(hi > lo)) {  // constant non-positive sub-block (or all zero): the min alone represents it
    best.scale = 0;
    best.min = -lo;
    best.err = 0;
    return best;
  }
  int L[32];
  for (int t = kGridLo; t <= kGridHi; ++t) {
    const float iscale = static_cast<float>(nmax) * (1.0f + kGridStep * t) / (hi - lo);
    for (int i = 0; i < n; ++i) L[i] = std::clamp(nearest(iscale * (x[i] - lo)), 0, nmax);
    const AffineFit f = refit_affine(x, L, n);
    if (f.err < best.err) best = f;
  }
  for (int iter = 0; iter < 4; ++iter) {  // alternate: re-round codes, refit
    round_affine(x, n, nmax, best.scale, best.min, L);
    const AffineFit f = refit_affine(x, L, n);
    if (!(f.err < best.err)) break;
    best = f;
  }
  return best;
}

struct SymFit {
  float scale = 0;  // x ~ scale * L, L in [-nmax, nmax - 1]; the sign of scale is free
  double err = std::numeric_limits<double>::infinity();
};

SymFit refit_symmetric(const float* x, const int* L, int n) {
  double sxl = 0, sll = 0;
  for (int i = 0; i < n; ++i) {
    sxl += static_cast<double>(x[i]) * L[i];
    sll += static_cast<double>(L[i]) * L[i];
  }
  SymFit f;
  f.scale = sll > 0 ? static_cast<float>(sxl / sll) : 0.0f;
  f.err = 0;
  for (int i = 0; i < n; ++i) {
    const double e = static_cast<double>(f.scale) * L[i] - x[i];
    f.err += e * e;
  }
  return f;
}

void round_symmetric(const float* x, int n, int nmax, float scale, int* L) {
  for (int i = 0; i < n; ++i) L[i] = scale != 0 ? std::clamp(nearest(x[i] / scale), -nmax, nmax - 1) : 0;
}

// Fits x ~ scale * L with L in [-nmax, nmax - 1] (n <= 32). The largest-magnitude element is mapped towards
// -nmax (the side with the extra code), so scale has the opposite sign of that element.
SymFit fit_symmetric(const float* x, int n, int nmax) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  SymFit best;
  if (amax == 0) {
    best.scale = 0;
    best.err = 0;
    return best;
  }
  int L[32];
  for (int t = kGridLo; t <= kGridHi; ++t) {
    const float iscale = -static_cast<float>(nmax) * (1.0f + kGridStep * t) / max;
    for (int i = 0; i < n; ++i) L[i] = std::clamp(nearest(iscale * x[i]), -nmax, nmax - 1);
    const SymFit f = refit_symmetric(x, L, n);
    if (f.err < best.err) best = f;
  }
  for (int iter = 0; iter < 4; ++iter) {
    round_symmetric(x, n, nmax, best.scale, L);
    const SymFit f = refit_symmetric(x, L, n);
    if (!(f.err < best.err)) break;
    best = f;
  }
  return best;
}

// Super-scale for non-negative sub-block values v[0..n) with codes 0..code_max: returns the stored fp16 and
// writes the codes (computed against the rounded super-scale).
uint16_t quantize_unsigned_scales(const float* v, int n, int code_max, int* codes) {
  float vmax = 0;
  for (int i = 0; i < n; ++i) vmax = std::max(vmax, v[i]);
  const uint16_t dh = fp32_to_fp16(vmax / static_cast<float>(code_max));
  const float d = fp16_to_fp32(dh);
  for (int i = 0; i < n; ++i) codes[i] = d > 0 ? std::clamp(nearest(v[i] / d), 0, code_max) : 0;
  return dh;
}

// Super-scale for signed sub-block scales with codes in [-code_lim, code_lim - 1]; the largest magnitude
// maps towards -code_lim, so the super-scale's sign is opposite to it.
uint16_t quantize_signed_scales(const float* v, int n, int code_lim, int* codes) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(v[i]) > amax) {
      amax = std::fabs(v[i]);
      max = v[i];
    }
  }
  const uint16_t dh = fp32_to_fp16(amax > 0 ? max / -static_cast<float>(code_lim) : 0.0f);
  const float d = fp16_to_fp32(dh);
  for (int i = 0; i < n; ++i) codes[i] = d != 0 ? std::clamp(nearest(v[i] / d), -code_lim, code_lim - 1) : 0;
  return dh;
}

// Affine super-block (Q2_K, Q4_K, Q5_K): fits each of the n_sub sub-blocks, quantizes scales and mins to
// code_max, then re-rounds the codes L[256] against the stored values.
struct AffineSuper {
  uint16_t d, dmin;
  int sc[16], mn[16];
  int L[kQK_K];
};

void quantize_affine_super(const float* x, int sub, int nmax, int code_max, AffineSuper* out) {
  const int n_sub = kQK_K / sub;
  float scales[16], mins[16];
  for (int j = 0; j < n_sub; ++j) {
    const AffineFit f = fit_affine(x + j * sub, sub, nmax);
    scales[j] = f.scale;
    mins[j] = f.min;
  }
  out->d = quantize_unsigned_scales(scales, n_sub, code_max, out->sc);
  out->dmin = quantize_unsigned_scales(mins, n_sub, code_max, out->mn);
  const float d = fp16_to_fp32(out->d);
  const float dmin = fp16_to_fp32(out->dmin);
  for (int j = 0; j < n_sub; ++j) {
    const float s = d * static_cast<float>(out->sc[j]);
    const float m = dmin * static_cast<float>(out->mn[j]);
    round_affine(x + j * sub, sub, nmax, s, m, out->L + j * sub);
  }
}

// Symmetric super-block (Q3_K, Q6_K): sub-blocks of 16, codes L[256] in [-nmax, nmax - 1].
struct SymSuper {
  uint16_t d;
  int sc[16];  // signed scale codes
  int L[kQK_K];
};

void quantize_symmetric_super(const float* x, int nmax, int code_lim, SymSuper* out) {
  constexpr int kSub = 16;
  float scales[kQK_K / kSub];
  for (int j = 0; j < kQK_K / kSub; ++j) scales[j] = fit_symmetric(x + j * kSub, kSub, nmax).scale;
  out->d = quantize_signed_scales(scales, kQK_K / kSub, code_lim, out->sc);
  const float d = fp16_to_fp32(out->d);
  for (int j = 0; j < kQK_K / kSub; ++j) {
    round_symmetric(x + j * kSub, kSub, nmax, d * static_cast<float>(out->sc[j]), out->L + j * kSub);
  }
}

}  // namespace

// ---- dequantization ------------------------------------------------------------------------------------

void dequantize_row_q2_K(const void* src, float* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ2_K>(src, i);
    const float d = fp16_to_fp32(b.d);
    const float dmin = fp16_to_fp32(b.dmin);
    float* y = dst + i * kQK_K;
    const uint8_t* q = b.qs;
    int is = 0;
    for (int h = 0; h < 2; ++h, q += 32) {        // two halves of 128
      for (int shift = 0; shift < 8; shift += 2) {  // four groups of 32, one bit pair each
        for (int k = 0; k < 2; ++k) {               // two sub-blocks of 16
          const uint8_t sc = b.scales[is++];
          const float dl = d * static_cast<float>(sc & 0x0f);
          const float ml = dmin * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[16 * k + l] >> shift) & 3) - ml;
        }
      }
    }
  }
}

void dequantize_row_q3_K(const void* src, float* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ3_K>(src, i);
    const float d = fp16_to_fp32(b.d);
    float* y = dst + i * kQK_K;
    const uint8_t* q = b.qs;
    int is = 0;
    int m = 1;  // hmask bit of the current group of 32
    for (int h = 0; h < 2; ++h, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
        for (int k = 0; k < 2; ++k) {
          const float dl = d * static_cast<float>(get_scale_q3_k(is++, b.scales) - 32);
          for (int l = 16 * k; l < 16 * k + 16; ++l) {
            const int v = ((q[l] >> shift) & 3) - ((b.hmask[l] & m) ? 0 : 4);
            *y++ = dl * static_cast<float>(v);
          }
        }
      }
    }
  }
}

void dequantize_row_q4_K(const void* src, float* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ4_K>(src, i);
    const float d = fp16_to_fp32(b.d);
    const float dmin = fp16_to_fp32(b.dmin);
    float* y = dst + i * kQK_K;
    const uint8_t* q = b.qs;
    for (int j = 0; j < 8; j += 2, q += 32) {  // chunks of 64: low nibbles, then high nibbles
      int sc, mn;
      get_scale_min_k4(j, b.scales, &sc, &mn);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(mn);
      get_scale_min_k4(j + 1, b.scales, &sc, &mn);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = dmin * static_cast<float>(mn);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0x0f) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void dequantize_row_q5_K(const void* src, float* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ5_K>(src, i);
    const float d = fp16_to_fp32(b.d);
    const float dmin = fp16_to_fp32(b.dmin);
    float* y = dst + i * kQK_K;
    const uint8_t* ql = b.qs;
    int u1 = 1, u2 = 2;  // qh bits of the two sub-blocks of the current chunk of 64
    for (int j = 0; j < 8; j += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
      int sc, mn;
      get_scale_min_k4(j, b.scales, &sc, &mn);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(mn);
      get_scale_min_k4(j + 1, b.scales, &sc, &mn);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = dmin * static_cast<float>(mn);
      for (int l = 0; l < 32; ++l) {
        *y++ = d1 * static_cast<float>((ql[l] & 0x0f) + ((b.qh[l] & u1) ? 16 : 0)) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((b.qh[l] & u2) ? 16 : 0)) - m2;
      }
    }
  }
}

void dequantize_row_q6_K(const void* src, float* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ6_K>(src, i);
    const float d = fp16_to_fp32(b.d);
    float* y = dst + i * kQK_K;
    for (int h = 0; h < 2; ++h) {  // halves of 128
      const uint8_t* ql = b.ql + 64 * h;
      const uint8_t* qh = b.qh + 32 * h;
      const int8_t* sc = b.scales + 8 * h;
      float* yh = y + 128 * h;
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        yh[l + 0] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
        yh[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        yh[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        yh[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

void dequantize_row_q8_K(const void* src, float* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ8_K>(src, i);
    for (int j = 0; j < kQK_K; ++j) dst[i * kQK_K + j] = b.d * static_cast<float>(b.qs[j]);
  }
}

// ---- quantization --------------------------------------------------------------------------------------

void quantize_row_q2_K_ref(const float* src, void* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  AffineSuper s;
  for (int64_t i = 0; i < nb; ++i) {
    quantize_affine_super(src + i * kQK_K, 16, 3, 15, &s);
    BlockQ2_K b{};
    b.d = s.d;
    b.dmin = s.dmin;
    for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<uint8_t>(s.sc[j] | (s.mn[j] << 4));
    for (int e = 0; e < kQK_K; ++e) {
      const int r = e % 128;
      b.qs[32 * (e / 128) + r % 32] |= static_cast<uint8_t>(s.L[e] << (2 * (r / 32)));
    }
    store_block(dst, i, b);
  }
}

void quantize_row_q3_K_ref(const float* src, void* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  SymSuper s;
  for (int64_t i = 0; i < nb; ++i) {
    quantize_symmetric_super(src + i * kQK_K, 4, 32, &s);
    BlockQ3_K b{};
    b.d = s.d;
    for (int j = 0; j < 16; ++j) set_scale_q3_k(j, s.sc[j] + 32, b.scales);
    for (int e = 0; e < kQK_K; ++e) {
      const int q = s.L[e] + 4;  // 0..7
      const int r = e % 128;
      b.qs[32 * (e / 128) + r % 32] |= static_cast<uint8_t>((q & 3) << (2 * (r / 32)));
      if (q & 4) b.hmask[e % 32] |= static_cast<uint8_t>(1 << (e / 32));
    }
    store_block(dst, i, b);
  }
}

void quantize_row_q4_K_ref(const float* src, void* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  AffineSuper s;
  for (int64_t i = 0; i < nb; ++i) {
    quantize_affine_super(src + i * kQK_K, 32, 15, 63, &s);
    BlockQ4_K b{};
    b.d = s.d;
    b.dmin = s.dmin;
    for (int j = 0; j < 8; ++j) set_scale_min_k4(j, s.sc[j], s.mn[j], b.scales);
    for (int e = 0; e < kQK_K; ++e) {
      b.qs[32 * (e / 64) + e % 32] |= static_cast<uint8_t>(s.L[e] << (4 * ((e % 64) / 32)));
    }
    store_block(dst, i, b);
  }
}

void quantize_row_q5_K_ref(const float* src, void* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  AffineSuper s;
  for (int64_t i = 0; i < nb; ++i) {
    quantize_affine_super(src + i * kQK_K, 32, 31, 63, &s);
    BlockQ5_K b{};
    b.d = s.d;
    b.dmin = s.dmin;
    for (int j = 0; j < 8; ++j) set_scale_min_k4(j, s.sc[j], s.mn[j], b.scales);
    for (int e = 0; e < kQK_K; ++e) {
      b.qs[32 * (e / 64) + e % 32] |= static_cast<uint8_t>((s.L[e] & 0x0f) << (4 * ((e % 64) / 32)));
      if (s.L[e] & 16) b.qh[e % 32] |= static_cast<uint8_t>(1 << (e / 32));
    }
    store_block(dst, i, b);
  }
}

void quantize_row_q6_K_ref(const float* src, void* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  SymSuper s;
  for (int64_t i = 0; i < nb; ++i) {
    quantize_symmetric_super(src + i * kQK_K, 32, 128, &s);
    BlockQ6_K b{};
    b.d = s.d;
    for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<int8_t>(s.sc[j]);
    for (int e = 0; e < kQK_K; ++e) {
      const int q = s.L[e] + 32;  // 0..63
      const int h = e / 128, r = e % 128, k = r / 32, l = r % 32;
      b.ql[64 * h + 32 * (k % 2) + l] |= static_cast<uint8_t>((q & 0x0f) << (4 * (k / 2)));
      b.qh[32 * h + l] |= static_cast<uint8_t>((q >> 4) << (2 * k));
    }
    store_block(dst, i, b);
  }
}

void quantize_row_q8_K_ref(const float* src, void* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const float* x = src + i * kQK_K;
    float amax = 0, max = 0;
    bool non_finite = false;
    for (int j = 0; j < kQK_K; ++j) {
      non_finite |= !std::isfinite(x[j]);
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    BlockQ8_K b{};
    if (non_finite) {
      // A NaN or inf gives d = NaN and codes 0, so it reaches the dot products (and the logits) as NaN.
      b.d = std::numeric_limits<float>::quiet_NaN();
    } else if (amax > 0) {
      // The largest-magnitude element maps to -127 (d takes the opposite sign), as GGML does.
      const float iscale = -127.0f / max;
      for (int j = 0; j < kQK_K; ++j) b.qs[j] = static_cast<int8_t>(std::min(127, nearest(iscale * x[j])));
      b.d = 1.0f / iscale;
    }
    for (int j = 0; j < kQK_K / 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += b.qs[16 * j + l];
      b.bsums[j] = static_cast<int16_t>(sum);
    }
    store_block(dst, i, b);
  }
}

}  // namespace cw::kernels
