// Tests of the scalar reference conversions (fp16.h) and block (de)quantizers (quant_ref.h): exhaustive
// fp16/bf16 round trips and rounding, per-type round-trip error bounds on several data distributions,
// re-quantization stability, block-field invariants, and the type table. Golden checks against files
// quantized by llama.cpp live in quant_golden_test.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {
namespace {

uint32_t bits_of(float f) { return std::bit_cast<uint32_t>(f); }
float float_of(uint32_t u) { return std::bit_cast<float>(u); }

// ---- fp16 ----------------------------------------------------------------------------------------------

TEST(Fp16, ExhaustiveRoundTrip) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    const uint16_t back = fp32_to_fp16(f);
    const bool is_nan = (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0;
    if (is_nan) {
      ASSERT_TRUE(std::isnan(f)) << h;
      ASSERT_EQ(back, h | 0x200u) << "NaN keeps sign and payload, gains the quiet bit: " << h;
    } else {
      ASSERT_EQ(back, h) << "half 0x" << std::hex << h << " -> " << f;
    }
  }
}

TEST(Fp16, ExactValues) {
  EXPECT_EQ(fp16_to_fp32(0x3c00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xc000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x7bff), 65504.0f);
  EXPECT_EQ(fp16_to_fp32(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(fp16_to_fp32(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(fp16_to_fp32(0x3555), 0.333251953125f);
  EXPECT_EQ(bits_of(fp16_to_fp32(0x8000)), 0x80000000u);
  EXPECT_EQ(fp16_to_fp32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(fp16_to_fp32(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7e00)));
}

TEST(Fp16, EdgeCasesFromFp32) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(inf), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-inf), 0xfc00);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::quiet_NaN()) & 0x7e00, 0x7e00);
  EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::quiet_NaN()) & 0xfe00, 0xfe00);
  EXPECT_EQ(fp32_to_fp16(float_of(0x7f800001u)) & 0x7e00, 0x7e00);  // signalling NaN with low payload
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65519.996f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);  // tie between 65504 (odd) and 65536 -> inf
  EXPECT_EQ(fp32_to_fp16(1e10f), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-1e10f), 0xfc00);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::max()), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);          // tie 0 / 2^-24 -> even 0
  EXPECT_EQ(fp32_to_fp16(-std::ldexp(1.0f, -25)), 0x8000);
  EXPECT_EQ(fp32_to_fp16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(3.0f, -25)), 0x0002);          // tie 1 / 2 -> even 2
  EXPECT_EQ(fp32_to_fp16(std::ldexp(5.0f, -25)), 0x0002);          // tie 2 / 3 -> even 2
  EXPECT_EQ(fp32_to_fp16(std::ldexp(2047.0f, -25)), 0x0400);       // tie 1023 / 1024 sub->normal: even
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(fp32_to_fp16(1e-8f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);   // tie -> even mantissa 0
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(3.0f, -11)), 0x3c02);   // tie -> even mantissa 2
  EXPECT_EQ(fp32_to_fp16(2047.5f), 0x67ff + 1);                    // 2047.5: tie 2047 / 2048 -> 2048
  EXPECT_EQ(fp32_to_fp16(0.1f), 0x2e66);
}

// Every midpoint between adjacent halves (ties -> even), and one fp32 ulp either side of it.
TEST(Fp16, RoundingAtEveryMidpoint) {
  for (uint32_t h = 0; h < 0x7bff; ++h) {  // positive finite halves below the largest (65504: see above)
    const double lo = fp16_to_fp32(static_cast<uint16_t>(h));
    const double hi = fp16_to_fp32(static_cast<uint16_t>(h + 1));
    const float mid = static_cast<float>((lo + hi) / 2);  // exact: 12 significant bits
    ASSERT_EQ(static_cast<double>(mid), (lo + hi) / 2);
    const uint16_t even = (h & 1u) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h);
    for (const float sgn : {1.0f, -1.0f}) {
      const uint16_t s = sgn < 0 ? 0x8000 : 0;
      ASSERT_EQ(fp32_to_fp16(sgn * mid), s | even) << "h=" << h;
      ASSERT_EQ(fp32_to_fp16(sgn * std::nextafter(mid, 0.0f)), s | h) << "h=" << h;
      ASSERT_EQ(fp32_to_fp16(sgn * std::nextafter(mid, 1e30f)), s | (h + 1)) << "h=" << h;
    }
  }
}

#if defined(__FLT16_MAX__) && !defined(__clang__)
// Cross-check against the compiler's own _Float16 conversion (IEEE, round to nearest even) on many fp32
// bit patterns across the whole range.
TEST(Fp16, MatchesCompilerFloat16) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000000; ++i) {
    uint32_t u = rng();
    // Every other pattern gets an exponent in the half's range (2^-24 .. 2^16: subnormals to overflow).
    if (i % 2) u = (u & 0x807fffffu) | ((103u + rng() % 40u) << 23);
    const float f = float_of(u);
    if (std::isnan(f)) continue;
    const _Float16 c = static_cast<_Float16>(f);
    uint16_t cb;
    std::memcpy(&cb, &c, 2);
    ASSERT_EQ(fp32_to_fp16(f), cb) << "fp32 bits 0x" << std::hex << u;
  }
  for (uint32_t h = 0; h < 65536; ++h) {
    _Float16 c;
    const uint16_t hb = static_cast<uint16_t>(h);
    std::memcpy(&c, &hb, 2);
    const float f = fp16_to_fp32(hb);
    if (std::isnan(f)) continue;
    ASSERT_EQ(bits_of(f), bits_of(static_cast<float>(c))) << h;
  }
}
#endif

// ---- bf16 ----------------------------------------------------------------------------------------------

TEST(Bf16, ExhaustiveRoundTrip) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_to_fp32(static_cast<uint16_t>(h));
    ASSERT_EQ(bits_of(f), h << 16);
    const uint16_t back = fp32_to_bf16(f);
    if (std::isnan(f)) {
      ASSERT_EQ(back, h | 0x40u) << h;
    } else {
      ASSERT_EQ(back, h) << h;
    }
  }
}

TEST(Bf16, RoundingAtEveryMidpoint) {
  for (uint32_t h = 0; h < 0x7f80; ++h) {  // positive finite bf16 values (incl. subnormals)
    const uint32_t mid_bits = (h << 16) | 0x8000u;  // exactly halfway to h + 1
    const uint16_t even = (h & 1u) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h);
    ASSERT_EQ(fp32_to_bf16(float_of(mid_bits)), even) << h;
    ASSERT_EQ(fp32_to_bf16(float_of(mid_bits - 1)), h) << h;
    ASSERT_EQ(fp32_to_bf16(float_of(mid_bits + 1)), h + 1) << h;
    ASSERT_EQ(fp32_to_bf16(float_of(mid_bits | 0x80000000u)), even | 0x8000u) << h;
  }
}

TEST(Bf16, EdgeCases) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(fp32_to_bf16(0.0f), 0x0000);
  EXPECT_EQ(fp32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_bf16(inf), 0x7f80);
  EXPECT_EQ(fp32_to_bf16(-inf), 0xff80);
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds up past the largest
  EXPECT_EQ(fp32_to_bf16(float_of(0x7f7f7fffu)), 0x7f7f);
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(float_of(0x7f800001u)))));  // payload only in low bits
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::denorm_min()), 0x0000);  // rounded, not flushed
  EXPECT_EQ(fp32_to_bf16(float_of(0x00008001u)), 0x0001);
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(3.140625f), 0x4049);
}

// ---- quantized formats: data -------------------------------------------------------------------------

enum class Dist { kGaussian, kUniform, kPositive, kOutliers, kZeros, kConstPos, kConstNeg, kMixedScale };

const char* dist_name(Dist d) {
  switch (d) {
    case Dist::kGaussian: return "gaussian";
    case Dist::kUniform: return "uniform";
    case Dist::kPositive: return "positive";
    case Dist::kOutliers: return "outliers";
    case Dist::kZeros: return "zeros";
    case Dist::kConstPos: return "const+";
    case Dist::kConstNeg: return "const-";
    case Dist::kMixedScale: return "mixed-scale";
  }
  return "?";
}

std::vector<float> make_data(Dist dist, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::uniform_real_distribution<float> unif(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    float v = 0;
    switch (dist) {
      case Dist::kGaussian: v = gauss(rng); break;
      case Dist::kUniform: v = unif(rng); break;
      case Dist::kPositive: v = 0.5f + 0.5f * unif(rng); break;  // [0, 1]: affine formats must use the range
      case Dist::kOutliers: v = gauss(rng) * ((rng() % 100) == 0 ? 30.0f : 1.0f); break;
      case Dist::kZeros: v = 0; break;
      case Dist::kConstPos: v = 0.37f; break;
      case Dist::kConstNeg: v = -1.25f; break;
      // Blocks of very different magnitudes (1e-3 .. 1e3): scales must adapt per block.
      case Dist::kMixedScale: v = gauss(rng) * std::pow(10.0f, static_cast<float>((i / 256) % 7) - 3.0f); break;
    }
    x[static_cast<size_t>(i)] = v;
  }
  return x;
}

// ---- quantized formats: error bounds -----------------------------------------------------------------

// Max-error bounds, per block of the type (32 or 256 elements), in terms of the block's absmax A and
// range R (max - min). An fp16 scale s is stored with error <= max(u |s|, v), u = 2^-11 (normal halves),
// v = 2^-25 (half the subnormal spacing); C is the largest |code * sub-scale code| the stored scale is
// multiplied by, so the scale's rounding adds <= u A + C v (the u terms are written out below).
//   Q8_0, Q8_1  max|err| <= A (0.5/127 + u) + 127 v     (half a step; d multiplies codes up to 127)
//   Q8_K        max|err| <= A (0.5/127)                  (fp32 scale)
//   Q4_0        max|err| <= A/8 (1 + 8u) + 8 v           (d = A/8; the extreme opposite to the largest-
//                                                         magnitude element clips by a whole step)
//   Q5_0        max|err| <= A/16 (1 + 16u) + 16 v
//   Q4_1        max|err| <= R (0.5/15 + u) + A u + 16 v  (half a step; fp16 d and m)
//   Q5_1        max|err| <= R (0.5/31 + u) + A u + 32 v
// The k-quants choose codes that minimise squared error and may clip the extremes of a sub-block, so
// their main guarantee is the RMS error relative to the RMS of the data, on Gaussian data (the shape of
// model weights). Their max bound (relative to the super-block's A, plus C v) catches gross errors only.
// Both are set from the measured values (printed by the test) with ~10-30% headroom; each extra bit of
// code halves them:
//   type  rel. RMS (gaussian): measured, bound   max|err| / A: measured (worst data), bound   C
//   Q2_K  0.269, 0.32                             0.44, 0.50                                   3*15 + 15
//   Q3_K  0.146, 0.17                             0.27, 0.32                                   4*32
//   Q4_K  0.071, 0.085                            0.113, 0.13                                  15*63 + 63
//   Q5_K  0.036, 0.042                            0.056, 0.065                                 31*63 + 63
//   Q6_K  0.017, 0.020                            0.022, 0.03                                  32*128
// (the max errors of the k-quants come from uniform data: least squares clips the sub-block's extremes
// by up to ~0.85 of a step, where round-to-nearest over the full range would give 0.5 step.)
// Legacy and Q8 rel. RMS on Gaussian data, measured, bound: Q4_0 0.087, 0.10; Q4_1 0.078, 0.09;
// Q5_0 0.043, 0.05; Q5_1 0.038, 0.045; Q8_0/Q8_1 0.0054, 0.0065; Q8_K 0.0070, 0.0085.
struct TypeCase {
  uint32_t type;
  double rel_rms_gauss;  // bound on rms(err)/rms(x) for Gaussian data
  double kq_max;         // k-quants: bound on max|err| / super-block absmax
  double kq_c;           // k-quants: C above
};

const TypeCase kTypeCases[] = {
    {kTypeQ4_0, 0.10, 0, 0},         {kTypeQ4_1, 0.09, 0, 0},         {kTypeQ5_0, 0.05, 0, 0},
    {kTypeQ5_1, 0.045, 0, 0},        {kTypeQ8_0, 0.0065, 0, 0},       {kTypeQ8_1, 0.0065, 0, 0},
    {kTypeQ2_K, 0.32, 0.50, 60},     {kTypeQ3_K, 0.17, 0.32, 128},    {kTypeQ4_K, 0.085, 0.13, 1008},
    {kTypeQ5_K, 0.042, 0.065, 2016},  {kTypeQ6_K, 0.020, 0.03, 4096},  {kTypeQ8_K, 0.0085, 0, 0},
};

void PrintTo(const TypeCase& tc, std::ostream* os) { *os << quant_traits(tc.type)->name; }

constexpr double kU = 1.0 / 2048;
constexpr double kV = 1.0 / (1 << 25);

// Max-error bound for one block of a legacy / Q8 type (see the table above).
double legacy_block_bound(uint32_t type, const float* x, int n) {
  double amax = 0, mn = x[0], mx = x[0];
  for (int i = 0; i < n; ++i) {
    amax = std::max(amax, std::fabs(static_cast<double>(x[i])));
    mn = std::min(mn, static_cast<double>(x[i]));
    mx = std::max(mx, static_cast<double>(x[i]));
  }
  const double r = mx - mn;
  double b = 0;
  switch (type) {
    case kTypeQ8_0:
    case kTypeQ8_1: b = amax * (0.5 / 127 + kU) + 127 * kV; break;
    case kTypeQ8_K: b = amax * (0.5 / 127); break;
    case kTypeQ4_0: b = amax / 8 * (1 + 8 * kU) + 8 * kV; break;
    case kTypeQ5_0: b = amax / 16 * (1 + 16 * kU) + 16 * kV; break;
    case kTypeQ4_1: b = r * (0.5 / 15 + kU) + amax * kU + 16 * kV; break;
    case kTypeQ5_1: b = r * (0.5 / 31 + kU) + amax * kU + 32 * kV; break;
    default: ADD_FAILURE() << "not a legacy type";
  }
  return b * (1 + 1e-4) + 1e-30;  // fp32 rounding of x * (1/d) and of the products
}

struct RoundTrip {
  std::vector<uint8_t> q;
  std::vector<float> y;
};

RoundTrip round_trip(const QuantTraits& t, const std::vector<float>& x) {
  const auto n = static_cast<int64_t>(x.size());
  RoundTrip r;
  r.q.assign(static_cast<size_t>(quant_row_bytes(t, n)), 0xcd);
  r.y.assign(x.size(), std::numeric_limits<float>::quiet_NaN());
  t.quantize(x.data(), r.q.data(), n);
  t.dequantize(r.q.data(), r.y.data(), n);
  return r;
}

class QuantRoundTrip : public ::testing::TestWithParam<TypeCase> {};

TEST_P(QuantRoundTrip, ErrorBounds) {
  const TypeCase tc = GetParam();
  const QuantTraits* t = quant_traits(tc.type);
  ASSERT_NE(t, nullptr);
  const bool is_k = t->block_size == kQK_K && tc.type != kTypeQ8_K;
  const int64_t n = 64 * kQK_K;  // several rows' worth: 64 super-blocks, 512 legacy blocks
  for (Dist dist : {Dist::kGaussian, Dist::kUniform, Dist::kPositive, Dist::kOutliers, Dist::kZeros,
                    Dist::kConstPos, Dist::kConstNeg, Dist::kMixedScale}) {
    SCOPED_TRACE(std::string(t->name) + " / " + dist_name(dist));
    const std::vector<float> x = make_data(dist, n, 1234 + static_cast<uint32_t>(dist));
    const RoundTrip r = round_trip(*t, x);
    double se = 0, sx = 0, worst_ratio = 0;
    int64_t first_bad = -1;
    for (int64_t b = 0; b < n / t->block_size; ++b) {
      const float* xb = x.data() + b * t->block_size;
      const float* yb = r.y.data() + b * t->block_size;
      double amax = 0, emax = 0;
      for (int i = 0; i < t->block_size; ++i) {
        ASSERT_TRUE(std::isfinite(yb[i]));
        const double e = static_cast<double>(yb[i]) - xb[i];
        se += e * e;
        sx += static_cast<double>(xb[i]) * xb[i];
        emax = std::max(emax, std::fabs(e));
        amax = std::max(amax, std::fabs(static_cast<double>(xb[i])));
      }
      const double bound =
          is_k ? tc.kq_max * amax + tc.kq_c * kV : legacy_block_bound(tc.type, xb, t->block_size);
      if (emax > 0) worst_ratio = std::max(worst_ratio, emax / bound);
      if (emax > bound && first_bad < 0) first_bad = b;
    }
    EXPECT_LT(first_bad, 0) << "max error bound exceeded, first in block " << first_bad;
    const double rel_rms = sx > 0 ? std::sqrt(se / sx) : std::sqrt(se);
    std::printf("  %-5s %-12s rel_rms %.5f  max_err/bound %.3f\n", t->name, dist_name(dist), rel_rms,
                worst_ratio);
    if (dist == Dist::kGaussian) {
      EXPECT_LE(rel_rms, tc.rel_rms_gauss);
    }
    if (dist == Dist::kZeros) {
      EXPECT_EQ(se, 0.0) << "zeros must stay exactly zero";
    }
    if (dist == Dist::kConstPos || dist == Dist::kConstNeg) {
      EXPECT_LE(rel_rms, 1.0 / 512) << "a constant block is represented up to scale rounding";
    }
  }
}

// Quantizing what was dequantized: the legacy formats reproduce the same bytes; the k-quants (whose
// search need not find the previous grid) must not drift: the second round trip adds less error than the
// first one made (measured: far less).
TEST_P(QuantRoundTrip, RequantizationIsStable) {
  const TypeCase tc = GetParam();
  const QuantTraits* t = quant_traits(tc.type);
  ASSERT_NE(t, nullptr);
  const bool is_k = t->block_size == kQK_K && tc.type != kTypeQ8_K;
  const int64_t n = 32 * kQK_K;
  for (Dist dist : {Dist::kGaussian, Dist::kUniform, Dist::kPositive, Dist::kOutliers}) {
    SCOPED_TRACE(std::string(t->name) + " / " + dist_name(dist));
    const std::vector<float> x = make_data(dist, n, 99 + static_cast<uint32_t>(dist));
    RoundTrip r1 = round_trip(*t, x);
    RoundTrip r2 = round_trip(*t, r1.y);
    if (tc.type == kTypeQ8_K) {
      // The fp32 d = 1/iscale may move by an ulp (1/(1/d) != d), and when +127 and -127 both occur the
      // codes may all flip sign with d; the values must stay put.
      for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(r2.y[i], r1.y[i], std::fabs(r1.y[i]) * 4e-7) << i;
      continue;
    }
    if (!is_k) {
      if (tc.type == kTypeQ8_1) {  // s = fp16(d * sum) used the unrounded d the first time: ignore it
        for (size_t b = 0; b < r1.q.size(); b += sizeof(BlockQ8_1)) {
          std::memset(&r1.q[b + offsetof(BlockQ8_1, s)], 0, 2);
          std::memset(&r2.q[b + offsetof(BlockQ8_1, s)], 0, 2);
        }
      }
      EXPECT_EQ(r1.q, r2.q);
      EXPECT_EQ(r1.y, r2.y);
      continue;
    }
    double e1 = 0, e2 = 0;
    for (int64_t i = 0; i < n; ++i) {
      e1 += (static_cast<double>(r1.y[i]) - x[i]) * (static_cast<double>(r1.y[i]) - x[i]);
      e2 += (static_cast<double>(r2.y[i]) - r1.y[i]) * (static_cast<double>(r2.y[i]) - r1.y[i]);
    }
    std::printf("  %-5s %-12s requant rms ratio %.4f\n", t->name, dist_name(dist), std::sqrt(e2 / e1));
    EXPECT_LE(std::sqrt(e2 / e1), 0.5);
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, QuantRoundTrip, ::testing::ValuesIn(kTypeCases),
                         [](const ::testing::TestParamInfo<TypeCase>& info) {
                           return std::string(quant_traits(info.param.type)->name);
                         });

// ---- block fields ------------------------------------------------------------------------------------

TEST(QuantBlocks, Q8_1SumAndQ8_KBsums) {
  const std::vector<float> x = make_data(Dist::kGaussian, kQK_K, 5);
  std::vector<BlockQ8_1> b1(kQK_K / kQK);
  quantize_row_q8_1_ref(x.data(), b1.data(), kQK_K);
  for (const BlockQ8_1& b : b1) {
    int sum = 0;
    for (int8_t q : b.qs) sum += q;
    // s = fp16(d * sum) with the unrounded d: equal to sum * stored d up to fp16 rounding.
    EXPECT_NEAR(fp16_to_fp32(b.s), sum * fp16_to_fp32(b.d), std::fabs(sum * fp16_to_fp32(b.d)) * 2e-3 + 1e-6);
  }
  BlockQ8_K bk;
  quantize_row_q8_K_ref(x.data(), &bk, kQK_K);
  for (int j = 0; j < kQK_K / 16; ++j) {
    int sum = 0;
    for (int l = 0; l < 16; ++l) sum += bk.qs[16 * j + l];
    EXPECT_EQ(bk.bsums[j], sum);
  }
}

// Hand-built blocks pin the documented element order independently of the quantizers.
TEST(QuantBlocks, Q4_0AndQ5_0ElementOrder) {
  BlockQ4_0 b{};
  b.d = fp32_to_fp16(1.0f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>((j & 15) | ((15 - j) << 4));
  float y[32];
  dequantize_row_q4_0(&b, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], static_cast<float>(j - 8));
    EXPECT_EQ(y[j + 16], static_cast<float>(7 - j));
  }
  BlockQ5_0 c{};
  c.d = fp32_to_fp16(0.5f);
  const uint32_t qh = 0x80000001u;  // high bit of element 0 and element 31
  std::memcpy(c.qh, &qh, 4);
  dequantize_row_q5_0(&c, y, 32);
  EXPECT_EQ(y[0], 0.0f);             // (0 | 16) - 16
  EXPECT_EQ(y[1], -8.0f);            // (0) - 16, * 0.5
  EXPECT_EQ(y[31], 0.0f);
  EXPECT_EQ(y[30], -8.0f);
}

TEST(QuantBlocks, KQuantElementOrder) {
  // Q6_K: code 32 + (e % 32) - 16 ... built from the documented formula, all scales 1, d = 1.
  BlockQ6_K b{};
  b.d = fp32_to_fp16(1.0f);
  for (int i = 0; i < 16; ++i) b.scales[i] = static_cast<int8_t>(i + 1);
  std::vector<int> code(kQK_K);
  for (int e = 0; e < kQK_K; ++e) {
    code[e] = (e * 37 + 11) % 64;
    const int h = e / 128, r = e % 128, k = r / 32, l = r % 32;
    b.ql[64 * h + 32 * (k % 2) + l] |= static_cast<uint8_t>((code[e] & 15) << (4 * (k / 2)));
    b.qh[32 * h + l] |= static_cast<uint8_t>((code[e] >> 4) << (2 * k));
  }
  std::vector<float> y(kQK_K);
  dequantize_row_q6_K(&b, y.data(), kQK_K);
  for (int e = 0; e < kQK_K; ++e) ASSERT_EQ(y[e], static_cast<float>((e / 16 + 1) * (code[e] - 32))) << e;

  // Q4_K: scale code j+1 and min code 2j for sub-block j (exercises the 6-bit packing of j >= 4 too).
  BlockQ4_K c{};
  c.d = fp32_to_fp16(1.0f);
  c.dmin = fp32_to_fp16(1.0f);
  const int sc[8] = {1, 2, 3, 63, 17, 40, 33, 62};
  const int mn[8] = {0, 5, 63, 9, 48, 1, 31, 16};
  // Packing per the layout: bytes 0..3 scale low 6 bits, 4..7 min low 6 bits, 8..11 nibbles of 4..7.
  for (int j = 0; j < 4; ++j) {
    c.scales[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    c.scales[j + 4] = static_cast<uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
    c.scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
  }
  for (int e = 0; e < kQK_K; ++e) {
    c.qs[32 * (e / 64) + e % 32] |= static_cast<uint8_t>(((e * 7) % 16) << (4 * ((e % 64) / 32)));
  }
  dequantize_row_q4_K(&c, y.data(), kQK_K);
  for (int e = 0; e < kQK_K; ++e) {
    ASSERT_EQ(y[e], static_cast<float>(sc[e / 32] * ((e * 7) % 16) - mn[e / 32])) << e;
  }
}

// ---- type table --------------------------------------------------------------------------------------

TEST(QuantTraits, Table) {
  struct Expect {
    uint32_t id;
    const char* name;
    int block_size, block_bytes;
  };
  const Expect expect[] = {
      {0, "F32", 1, 4},      {1, "F16", 1, 2},      {2, "Q4_0", 32, 18},   {3, "Q4_1", 32, 20},
      {6, "Q5_0", 32, 22},   {7, "Q5_1", 32, 24},   {8, "Q8_0", 32, 34},   {9, "Q8_1", 32, 36},
      {10, "Q2_K", 256, 84}, {11, "Q3_K", 256, 110}, {12, "Q4_K", 256, 144}, {13, "Q5_K", 256, 176},
      {14, "Q6_K", 256, 210}, {15, "Q8_K", 256, 292}, {30, "BF16", 1, 2},
  };
  for (const Expect& e : expect) {
    const QuantTraits* t = quant_traits(e.id);
    ASSERT_NE(t, nullptr) << e.id;
    EXPECT_EQ(t->type_id, e.id);
    EXPECT_STREQ(t->name, e.name);
    EXPECT_EQ(t->block_size, e.block_size);
    EXPECT_EQ(t->block_bytes, e.block_bytes);
    EXPECT_NE(t->dequantize, nullptr);
    EXPECT_NE(t->quantize, nullptr);
    EXPECT_EQ(quant_row_bytes(*t, 4096), 4096 / e.block_size * e.block_bytes);
  }
  for (uint32_t id : {4u, 5u, 16u, 24u, 28u, 31u, 1000u}) EXPECT_EQ(quant_traits(id), nullptr) << id;
}

TEST(QuantTraits, FloatRows) {
  const std::vector<float> x = {1.0f, -2.5f, 1e-6f, 65504.0f, 0.1f, -0.0f, 3.0e38f, 7.0f};
  for (uint32_t id : {kTypeF32, kTypeF16, kTypeBF16}) {
    const QuantTraits* t = quant_traits(id);
    const RoundTrip r = round_trip(*t, x);
    for (size_t i = 0; i < x.size(); ++i) {
      const float want = id == kTypeF32 ? x[i]
                         : id == kTypeF16 ? fp16_to_fp32(fp32_to_fp16(x[i]))
                                          : bf16_to_fp32(fp32_to_bf16(x[i]));
      EXPECT_EQ(bits_of(r.y[i]), bits_of(want)) << t->name << " " << i;
    }
  }
}

TEST(QuantTraitsDeathTest, RowLengthMustBeWholeBlocks) {
  std::vector<float> x(48, 1.0f);
  std::vector<uint8_t> q(64);
  EXPECT_DEATH(quantize_row_q8_0_ref(x.data(), q.data(), 48), "multiple of 32");
  EXPECT_DEATH(dequantize_row_q4_K(q.data(), x.data(), 48), "multiple of 256");
}

}  // namespace
}  // namespace cw::kernels
