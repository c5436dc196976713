// Cross-checks of the legacy quant family's prefill GEMM (DotKernels::gemm, legacy_gemm_avx2.cc) for every
// weight type (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0) x every ISA this CPU can run that provides one:
//   - gemm against vec_dot of the same ISA per (row, token) pair and against a double-precision dot of the
//     reference dequantizations, for nr in {1, 3, 4, 5, 8, 9, 16} rows x nt in {1, 2, 3, 4, 5, 7, 64} tokens x
//     n in {32, 96, 2048}, weight and activation rows at odd strides from unaligned pointers, y with a
//     leading dimension larger than nr and sentinels around every written element;
//   - raw random blocks (every code, Q8_0's -128 included; scales of both signs) at the int16 accumulation
//     limits (activation codes +-127);
//   - exact results on the largest codes of each format against activations of +-127 (int16 overflow of
//     the per-block accumulation);
//   - exact results when every partial sum is an integer below 2^24 (catches a wrong row, token or
//     element order with no tolerance).
// Tolerance: as legacy_kernels_test.cc, |gemm - oracle| <= 1e-5 M with M the sum of absolute terms; gemm and
// vec_dot sum the same per-block terms in different orders, so they are compared with the same bound.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/ops_ref.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {
namespace {

const uint32_t kWTypes[] = {kTypeQ4_0, kTypeQ4_1, kTypeQ5_0, kTypeQ5_1, kTypeQ8_0};
const Isa kIsas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512};

bool has_min(uint32_t w_type) { return w_type == kTypeQ4_1 || w_type == kTypeQ5_1; }

float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}

// Rows of `bytes` bytes at a stride of bytes + pad, starting 3 bytes past a 64-byte boundary.
class Rows {
 public:
  Rows(int64_t n_rows, int64_t bytes, int64_t pad) : stride_(bytes + pad), buf_(n_rows * (bytes + pad) + 128) {
    const auto addr = reinterpret_cast<uintptr_t>(buf_.data());
    off_ = static_cast<size_t>((64 - addr % 64) % 64) + 3;
  }
  uint8_t* row(int64_t i) { return buf_.data() + off_ + i * stride_; }
  int64_t stride() const { return stride_; }

 private:
  int64_t stride_;
  std::vector<uint8_t> buf_;
  size_t off_ = 0;
};

// The mathematical value of one (row, token) dot (with Q8_1's stored s, as the kernels use it) and M.
struct Oracle {
  double value = 0.0;
  double magnitude = 0.0;
};

Oracle oracle(uint32_t w_type, const uint8_t* w, const uint8_t* a, int64_t n) {
  const uint32_t a_type = activation_type(w_type);
  std::vector<float> wf(static_cast<size_t>(n)), af(static_cast<size_t>(n));
  quant_traits(w_type)->dequantize(w, wf.data(), n);
  quant_traits(a_type)->dequantize(a, af.data(), n);
  const int wb = quant_traits(w_type)->block_bytes;
  const int ab = quant_traits(a_type)->block_bytes;
  Oracle o;
  for (int64_t b = 0; b < n / kQK; ++b) {
    const double m = has_min(w_type) ? half_at(w + b * wb + 2) : 0.0;
    for (int j = 0; j < kQK; ++j) {
      const size_t k = static_cast<size_t>(b * kQK + j);
      o.value += static_cast<double>(wf[k]) * af[k];
      o.magnitude += (std::fabs(static_cast<double>(wf[k])) + std::fabs(m)) * std::fabs(static_cast<double>(af[k]));
    }
    if (has_min(w_type)) {
      const uint8_t* ablk = a + b * ab;
      int isum = 0;
      for (int j = 0; j < kQK; ++j) isum += static_cast<int8_t>(ablk[4 + j]);
      const double s = half_at(ablk + 2);
      o.value += m * (s - static_cast<double>(half_at(ablk)) * isum);
      o.magnitude += std::fabs(m * s);
    }
  }
  return o;
}

struct Case {
  uint32_t w_type;
  Isa isa;
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return std::string(quant_traits(info.param.w_type)->name) + "_" + isa_name(info.param.isa);
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (uint32_t t : kWTypes)
    for (Isa isa : kIsas) cases.push_back({t, isa});
  return cases;
}

class LegacyGemm : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const Case c = GetParam();
    if (static_cast<int>(c.isa) > static_cast<int>(detected_isa())) {
      GTEST_SKIP() << "this CPU cannot run the " << isa_name(c.isa) << " path (detected "
                   << isa_name(detected_isa()) << "); run on a CPU with it to test it";
    }
    k_ = dot_kernels(c.w_type, c.isa);
    ASSERT_NE(k_, nullptr);
    if (k_->gemm == nullptr) GTEST_SKIP() << "no gemm for " << isa_name(c.isa) << " (matmul uses vec_dot)";
    wt_ = quant_traits(c.w_type);
    at_ = quant_traits(k_->a_type);
  }

  enum class Fill { kQuantized, kRaw, kIntegerScales, kExtreme };

  // Fills nr weight rows and nt activation rows of length n.
  void fill(Fill fill, int64_t n, Rows& w, int64_t nr, Rows& a, int64_t nt, std::mt19937& rng) {
    const int64_t nb = n / kQK;
    const int qoff = at_->type_id == kTypeQ8_1 ? 4 : 2;
    if (fill == Fill::kQuantized) {
      std::normal_distribution<float> nd(0.0f, 1.0f);
      std::vector<float> x(static_cast<size_t>(n));
      for (int64_t r = 0; r < nr; ++r) {
        for (auto& v : x) v = nd(rng);
        if (r % 3 == 1) for (int j = 0; j < kQK; ++j) x[static_cast<size_t>(j)] = 0.0f;  // an all-zero block
        wt_->quantize(x.data(), w.row(r), n);
      }
      for (int64_t t = 0; t < nt; ++t) {
        for (auto& v : x) v = nd(rng) * (t % 2 ? 10.0f : 1.0f);
        at_->quantize(x.data(), a.row(t), n);
      }
      return;
    }
    // kExtreme: every weight byte one of 0x00 0xff 0x80 0x7f per row (largest codes of every format), every
    // activation code +127 or -127 per token, unit scales: the int16 sums reach their largest magnitudes.
    const bool extreme_fill = fill == Fill::kExtreme;
    const bool exact = fill == Fill::kIntegerScales || extreme_fill;
    const uint8_t kExtremeBytes[] = {0x00, 0xff, 0x80, 0x7f};
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<int> code(-127, 127);
    std::uniform_int_distribution<int> extreme(0, 3);
    std::uniform_int_distribution<int> small(-3, 3);
    std::uniform_real_distribution<float> scale(-2.0f, 2.0f);
    for (int64_t r = 0; r < nr; ++r) {
      const uint8_t fixed = kExtremeBytes[r % 4];
      for (int64_t i = 0; i < nb * wt_->block_bytes; ++i)
        w.row(r)[i] = extreme_fill ? fixed : static_cast<uint8_t>(byte(rng));
      for (int64_t b = 0; b < nb; ++b) {
        uint8_t* wb = w.row(r) + b * wt_->block_bytes;
        const uint16_t d = fp32_to_fp16(exact ? 1.0f : scale(rng));
        std::memcpy(wb, &d, 2);
        if (has_min(k_->w_type)) {
          const uint16_t m = fp32_to_fp16(exact ? static_cast<float>(small(rng)) : scale(rng));
          std::memcpy(wb + 2, &m, 2);
        }
      }
    }
    for (int64_t t = 0; t < nt; ++t) {
      for (int64_t b = 0; b < nb; ++b) {
        uint8_t* ab = a.row(t) + b * at_->block_bytes;
        const bool ext = !exact && extreme(rng) == 0;  // a block of +-127 (int16 accumulation limits)
        int sum = 0;
        for (int j = 0; j < kQK; ++j) {
          int q = ext ? (byte(rng) % 2 ? 127 : -127) : code(rng);
          if (exact) q /= 8;
          if (extreme_fill) q = t % 2 ? -127 : 127;
          sum += q;
          ab[qoff + j] = static_cast<uint8_t>(static_cast<int8_t>(q));
        }
        const float da = exact ? 1.0f : std::fabs(scale(rng)) * 0.01f;
        const uint16_t dh = fp32_to_fp16(da);
        std::memcpy(ab, &dh, 2);
        if (qoff == 4) {
          const uint16_t s = fp32_to_fp16(static_cast<float>(sum) * da);
          std::memcpy(ab + 2, &s, 2);
        }
      }
    }
  }

  // Runs gemm on nr x nt and compares every element with vec_dot and the oracle (exactly if `exact`).
  void check(Fill f, int64_t n, int64_t nr, int64_t nt, std::mt19937& rng, double* worst) {
    Rows w(nr, quant_row_bytes(*wt_, n), 5);
    Rows a(nt, quant_row_bytes(*at_, n), 7);
    fill(f, n, w, nr, a, nt, rng);
    const int64_t ldy = nr + 3;
    const float kSentinel = -12345.678f;
    std::vector<float> y(static_cast<size_t>(nt * ldy + 1), kSentinel);
    float* yp = y.data() + 1;  // not 32-byte aligned
    k_->gemm(n, w.row(0), w.stride(), nr, a.row(0), a.stride(), nt, yp, ldy, nullptr);
    EXPECT_EQ(y[0], kSentinel);
    if (k_->act_sums != nullptr) {
      // With the activation block sums precomputed (as matmul passes them): the same bits.
      std::vector<int32_t> sums(static_cast<size_t>(nt * (n / 32)));
      for (int64_t t = 0; t < nt; ++t) k_->act_sums(a.row(t), n, sums.data() + t * (n / 32));
      for (int64_t t = 0; t < nt; ++t) {
        int32_t want = 0;
        for (int64_t i = 0; i < 32; ++i) want += static_cast<int8_t>(a.row(t)[2 + i]);  // Q8_0 block 0: d, qs
        ASSERT_EQ(sums[static_cast<size_t>(t * (n / 32))], want) << "t=" << t;
      }
      std::vector<float> y2(y.size(), kSentinel);
      k_->gemm(n, w.row(0), w.stride(), nr, a.row(0), a.stride(), nt, y2.data() + 1, ldy, sums.data());
      ASSERT_EQ(y2, y) << "gemm with precomputed act_sums differs";
    }
    for (int64_t t = 0; t < nt; ++t) {
      for (int64_t r = 0; r < ldy; ++r) {
        const float got = yp[t * ldy + r];
        if (r >= nr) {
          ASSERT_EQ(got, kSentinel) << "wrote outside the tile: t=" << t << " r=" << r;
          continue;
        }
        const Oracle o = oracle(k_->w_type, w.row(r), a.row(t), n);
        const double vd = k_->vec_dot(n, w.row(r), a.row(t));
        const std::string where = "n=" + std::to_string(n) + " nr=" + std::to_string(nr) + " nt=" +
                                  std::to_string(nt) + " r=" + std::to_string(r) + " t=" + std::to_string(t);
        if (f == Fill::kIntegerScales || f == Fill::kExtreme) {
          ASSERT_EQ(static_cast<double>(got), o.value) << where;
          continue;
        }
        const double tol = 1e-5 * o.magnitude + 1e-30;
        ASSERT_NEAR(got, o.value, tol) << where;
        ASSERT_NEAR(got, vd, tol) << where;
        if (o.magnitude > 0) *worst = std::max(*worst, std::fabs(got - o.value) / o.magnitude);
      }
    }
  }

  // Runs gemv (DotKernels::gemv, one token) on nr rows and compares each output with vec_dot and the
  // oracle (exactly if the fill is exact); checks nothing is written past y[nr - 1] or before y[0].
  void check_gemv(Fill f, int64_t n, int64_t nr, std::mt19937& rng, double* worst) {
    Rows w(nr, quant_row_bytes(*wt_, n), 5);
    Rows a(1, quant_row_bytes(*at_, n), 7);
    fill(f, n, w, nr, a, 1, rng);
    const float kSentinel = -12345.678f;
    std::vector<float> y(static_cast<size_t>(nr + 3), kSentinel);
    float* yp = y.data() + 1;  // not 32-byte aligned
    k_->gemv(n, w.row(0), w.stride(), nr, a.row(0), yp);
    EXPECT_EQ(y[0], kSentinel);
    EXPECT_EQ(yp[nr], kSentinel);
    EXPECT_EQ(yp[nr + 1], kSentinel);
    for (int64_t r = 0; r < nr; ++r) {
      const float got = yp[r];
      const Oracle o = oracle(k_->w_type, w.row(r), a.row(0), n);
      const double vd = k_->vec_dot(n, w.row(r), a.row(0));
      const std::string where = "gemv n=" + std::to_string(n) + " nr=" + std::to_string(nr) + " r=" +
                                std::to_string(r);
      if (f == Fill::kIntegerScales || f == Fill::kExtreme) {
        ASSERT_EQ(static_cast<double>(got), o.value) << where;
        continue;
      }
      const double tol = 1e-5 * o.magnitude + 1e-30;
      ASSERT_NEAR(got, o.value, tol) << where;
      ASSERT_NEAR(got, vd, tol) << where;
      if (o.magnitude > 0) *worst = std::max(*worst, std::fabs(got - o.value) / o.magnitude);
    }
  }

  const DotKernels* k_ = nullptr;
  const QuantTraits* wt_ = nullptr;
  const QuantTraits* at_ = nullptr;
};

TEST_P(LegacyGemm, MatchesVecDotAndReferenceOnQuantizedRows) {
  std::mt19937 rng(4321 + GetParam().w_type * 13 + static_cast<int>(GetParam().isa));
  double worst = 0.0;
  for (int64_t n : {32, 96, 2048})
    for (int64_t nr : {1, 3, 4, 5, 8, 9, 16})
      for (int64_t nt : {1, 2, 3, 4, 5, 7, 64}) check(Fill::kQuantized, n, nr, nt, rng, &worst);
  std::printf("  worst |err| / M = %.3g (tolerance 1e-5)\n", worst);
}

TEST_P(LegacyGemm, MatchesOnRawRandomBlocks) {
  std::mt19937 rng(77 + GetParam().w_type);
  double worst = 0.0;
  for (int64_t n : {32, 96, 2048})
    for (int64_t nr : {3, 8, 16})
      for (int64_t nt : {1, 4, 7}) check(Fill::kRaw, n, nr, nt, rng, &worst);
  std::printf("  worst |err| / M = %.3g (tolerance 1e-5)\n", worst);
}

TEST_P(LegacyGemm, ExactOnIntegerScales) {
  std::mt19937 rng(5 + GetParam().w_type);
  double worst = 0.0;
  for (int64_t nr : {5, 16})
    for (int64_t nt : {3, 4, 6}) check(Fill::kIntegerScales, 4096, nr, nt, rng, &worst);
}

// Largest codes against +-127 activations: catches int16 overflow of the per-block accumulation exactly.
TEST_P(LegacyGemm, ExactOnExtremeCodes) {
  std::mt19937 rng(11 + GetParam().w_type);
  double worst = 0.0;
  for (int64_t nt : {2, 4, 5}) check(Fill::kExtreme, 512, 8, nt, rng, &worst);
}

// The decode GEMV (optional; Q8_0 has none): odd and tile-remainder row counts, unaligned rows and output.
TEST_P(LegacyGemm, GemvMatchesVecDotAndReference) {
  if (k_->gemv == nullptr) GTEST_SKIP() << "no gemv (matmul uses vec_dot)";
  std::mt19937 rng(999 + GetParam().w_type);
  double worst = 0.0;
  for (int64_t n : {32, 64, 96, 2048})
    for (int64_t nr : {1, 2, 3, 4, 5, 7, 8, 9, 13, 16}) {
      check_gemv(Fill::kQuantized, n, nr, rng, &worst);
      check_gemv(Fill::kRaw, n, nr, rng, &worst);
    }
  for (int64_t nr : {1, 5, 8}) {
    check_gemv(Fill::kIntegerScales, 4096, nr, rng, &worst);
    check_gemv(Fill::kExtreme, 512, nr, rng, &worst);
  }
  std::printf("  worst |err| / M = %.3g (tolerance 1e-5)\n", worst);
}

INSTANTIATE_TEST_SUITE_P(All, LegacyGemm, ::testing::ValuesIn(all_cases()), case_name);

}  // namespace
}  // namespace cw::kernels
