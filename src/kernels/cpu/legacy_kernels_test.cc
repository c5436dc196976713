// Cross-checks of the legacy quant kernels (legacy_*.cc) against the scalar reference (quant_ref.h), for
// every weight type (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0) x every ISA this CPU can run (others skip with a message):
//   - vec_dot against a double-precision dot of the reference dequantizations, on rows quantized by the
//     reference quantizers from Gaussian data with outliers and all-zero blocks, at several lengths
//     (including every tail length of the 4- and 2-block unrolled loops), with unaligned pointers;
//   - vec_dot on raw random blocks (every code the format can hold, scales of both signs) and exactly on
//     blocks whose scales make the whole sum exact in fp32 (catches lane-order bugs with no tolerance);
//   - quantize_act byte for byte against quantize_row_q8_{0,1}_ref, including exact .5 ties, their float
//     neighbours, fp16-subnormal and fp16-overflowing scales, -0.0 and all-zero blocks.
//
// Tolerance of vec_dot. The kernels compute, per block b, the exact integer dot isum_b and then sum_b isum_b
// d_w d_a (+ m_w s_a) in fp32 (two roundings per scaling) over a few independent accumulators. The oracle is
// the same mathematical value in double: sum_j dequant(w)_j dequant(a)_j, plus for Q4_1/Q5_1 the correction
// m_w (s_a - d_a sum q_a) that the Q8_1 format's fp16 s implies (llama.cpp's dot uses the stored s too; the
// test also checks the plain dequantized dot within a bound on that difference). Let M = sum_j (|w_j| +
// |m_b|) |a_j| + sum_b |m_b s_a,b|, which bounds the magnitude of every term. With k blocks summed in
// sequence per accumulator lane, the rigorous fp32 error bound is about (k + 4) u M with u = 2^-24, i.e. <=
// 2.4e-6 M at n = 14336 for every path (all use four accumulators: 112 blocks per accumulator lane), while
// the observed error is near sqrt(k) u M ~ 1e-7 M. Dequantized weights of Q4_1/Q5_1 carry one more fp32
// rounding each (q d + m), inside the same bound. We therefore require |kernel - oracle| <= 1e-5 M (+ 1e-30
// for the all-zero case): above every rigorous bound here, far below what any wrong element or block would
// cause.
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

// A byte buffer whose data() is deliberately 1 byte past a 64-byte boundary.
class Unaligned {
 public:
  explicit Unaligned(size_t n) : buf_(n + 64 + 1) {
    const auto addr = reinterpret_cast<uintptr_t>(buf_.data());
    off_ = static_cast<size_t>((64 - addr % 64) % 64) + 1;
  }
  uint8_t* data() { return buf_.data() + off_; }

 private:
  std::vector<uint8_t> buf_;
  size_t off_ = 0;
};

// Gaussian data; some blocks scaled up (outliers), some single outliers, some all-zero blocks.
std::vector<float> test_data(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 15);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = nd(rng);
  for (int64_t b = 0; b < n / kQK; ++b) {
    float* blk = x.data() + b * kQK;
    switch (pick(rng)) {
      case 0: for (int j = 0; j < kQK; ++j) blk[j] = 0.0f; break;
      case 1: for (int j = 0; j < kQK; ++j) blk[j] *= 40.0f; break;
      case 2: blk[pick(rng)] *= 100.0f; break;
      case 3: for (int j = 0; j < kQK; ++j) blk[j] = std::fabs(blk[j]) + 3.0f; break;  // all positive, min
      case 4: for (int j = 0; j < kQK; ++j) blk[j] *= 1e-3f; break;
      default: break;
    }
  }
  return x;
}

struct Oracle {
  double value = 0.0;      // the kernel's mathematical value (stored s for Q8_1)
  double plain = 0.0;      // sum_j dequant(w)_j dequant(a)_j only
  double magnitude = 0.0;  // M of the header comment
  double s_rounding = 0.0; // bound on |value - plain| (fp16 roundings of Q8_1's d and s)
};

float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}

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
      o.plain += static_cast<double>(wf[k]) * af[k];
      o.magnitude += (std::fabs(static_cast<double>(wf[k])) + std::fabs(m))
                     * std::fabs(static_cast<double>(af[k]));
    }
    if (has_min(w_type)) {
      const uint8_t* ablk = a + b * ab;
      const double da = half_at(ablk);
      const double s = half_at(ablk + 2);
      int isum = 0;
      for (int j = 0; j < kQK; ++j) isum += static_cast<int8_t>(ablk[4 + j]);
      o.value += m * (s - da * isum);
      o.magnitude += std::fabs(m * s);
      // s = fp16(d * sum q) with the fp32 d, while dequant(a) uses fp16(d): both roundings (relative 2^-11,
      // or absolute 2^-25 in the fp16 subnormal range) separate s from d_a * sum q.
      const double sq = std::fabs(static_cast<double>(isum));
      o.s_rounding += std::fabs(m) * (std::ldexp(std::fabs(s) + 2.0 * sq * std::fabs(da), -11) +
                                      std::ldexp(sq + 1.0, -24));
    }
  }
  o.value += o.plain;
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
  for (uint32_t t : kWTypes) {
    for (Isa isa : kIsas) cases.push_back({t, isa});
  }
  return cases;
}

class LegacyKernels : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const Case c = GetParam();
    if (static_cast<int>(c.isa) > static_cast<int>(detected_isa())) {
      GTEST_SKIP() << "this CPU cannot run the " << isa_name(c.isa) << " path (detected "
                   << isa_name(detected_isa()) << "); run on a CPU with it to test it";
    }
    k_ = dot_kernels(c.w_type, c.isa);
    ASSERT_NE(k_, nullptr);
    ASSERT_EQ(k_->isa, c.isa) << "the legacy family must provide its own kernels for this ISA";
    ASSERT_EQ(k_->w_type, c.w_type);
    ASSERT_EQ(k_->a_type, activation_type(c.w_type));
    wt_ = quant_traits(c.w_type);
    at_ = quant_traits(k_->a_type);
  }

  const DotKernels* k_ = nullptr;
  const QuantTraits* wt_ = nullptr;
  const QuantTraits* at_ = nullptr;
};

TEST_P(LegacyKernels, VecDotMatchesDequantizedReference) {
  std::mt19937 rng(1234 + GetParam().w_type * 7 + static_cast<int>(GetParam().isa));
  double worst = 0.0;
  for (int64_t n : {32, 64, 96, 128, 160, 224, 4096, 14336}) {
    for (int rep = 0; rep < 4; ++rep) {
      const std::vector<float> xw = test_data(n, rng);
      std::vector<float> xa = test_data(n, rng);
      Unaligned w(static_cast<size_t>(quant_row_bytes(*wt_, n)));
      Unaligned a(static_cast<size_t>(quant_row_bytes(*at_, n)));
      wt_->quantize(xw.data(), w.data(), n);
      at_->quantize(xa.data(), a.data(), n);  // the reference activation quantizer
      const Oracle o = oracle(k_->w_type, w.data(), a.data(), n);
      const double got = k_->vec_dot(n, w.data(), a.data());
      const double tol = 1e-5 * o.magnitude + 1e-30;
      ASSERT_NEAR(got, o.value, tol) << "n=" << n << " rep=" << rep;
      ASSERT_NEAR(got, o.plain, tol + o.s_rounding) << "n=" << n << " rep=" << rep;
      if (o.magnitude > 0) worst = std::max(worst, std::fabs(got - o.value) / o.magnitude);
    }
  }
  std::printf("  worst |err| / M = %.3g (tolerance 1e-5)\n", worst);
}

// Raw random blocks: every code pattern (Q8_0 weights include -128), random scales and mins of both signs;
// activation codes in [-127, 127] as the quantizers produce.
TEST_P(LegacyKernels, VecDotOnRawRandomBlocks) {
  std::mt19937 rng(99 + GetParam().w_type);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> code(-127, 127);
  std::uniform_real_distribution<float> scale(-2.0f, 2.0f);
  for (int64_t n : {32, 96, 160, 4096}) {
    const int64_t nb = n / kQK;
    Unaligned w(static_cast<size_t>(quant_row_bytes(*wt_, n)));
    Unaligned a(static_cast<size_t>(quant_row_bytes(*at_, n)));
    for (int64_t i = 0; i < nb * wt_->block_bytes; ++i) w.data()[i] = static_cast<uint8_t>(byte(rng));
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* wb = w.data() + b * wt_->block_bytes;
      const uint16_t d = fp32_to_fp16(scale(rng));
      std::memcpy(wb, &d, 2);
      if (has_min(k_->w_type)) {
        const uint16_t m = fp32_to_fp16(scale(rng));
        std::memcpy(wb + 2, &m, 2);
      }
      uint8_t* ab = a.data() + b * at_->block_bytes;
      const float da = std::fabs(scale(rng)) * 0.01f;
      int sum = 0;
      const int qoff = at_->type_id == kTypeQ8_1 ? 4 : 2;
      for (int j = 0; j < kQK; ++j) {
        const int q = code(rng);
        sum += q;
        ab[qoff + j] = static_cast<uint8_t>(static_cast<int8_t>(q));
      }
      const uint16_t dh = fp32_to_fp16(da);
      std::memcpy(ab, &dh, 2);
      if (qoff == 4) {
        const uint16_t s = fp32_to_fp16(static_cast<float>(sum) * da);
        std::memcpy(ab + 2, &s, 2);
      }
    }
    const Oracle o = oracle(k_->w_type, w.data(), a.data(), n);
    const double got = k_->vec_dot(n, w.data(), a.data());
    ASSERT_NEAR(got, o.value, 1e-5 * o.magnitude + 1e-30) << "n=" << n;
  }
}

// Scales 1 (and mins small integers): every partial sum is an integer below 2^24, so every ISA must return
// the exact integer oracle, whatever its summation order.
TEST_P(LegacyKernels, VecDotExactOnIntegerScales) {
  std::mt19937 rng(5 + GetParam().w_type);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> code(-127, 127);
  std::uniform_int_distribution<int> small(-3, 3);
  const int64_t n = 14336;
  const int64_t nb = n / kQK;
  Unaligned w(static_cast<size_t>(quant_row_bytes(*wt_, n)));
  Unaligned a(static_cast<size_t>(quant_row_bytes(*at_, n)));
  for (int64_t i = 0; i < nb * wt_->block_bytes; ++i) w.data()[i] = static_cast<uint8_t>(byte(rng));
  const uint16_t one = fp32_to_fp16(1.0f);
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* wb = w.data() + b * wt_->block_bytes;
    std::memcpy(wb, &one, 2);
    if (has_min(k_->w_type)) {
      const uint16_t m = fp32_to_fp16(static_cast<float>(small(rng)));
      std::memcpy(wb + 2, &m, 2);
    }
    uint8_t* ab = a.data() + b * at_->block_bytes;
    std::memcpy(ab, &one, 2);
    const int qoff = at_->type_id == kTypeQ8_1 ? 4 : 2;
    int sum = 0;
    for (int j = 0; j < kQK; ++j) {
      const int q = code(rng) / 8;  // keeps |total| well below 2^24
      sum += q;
      ab[qoff + j] = static_cast<uint8_t>(static_cast<int8_t>(q));
    }
    if (qoff == 4) {
      const uint16_t s = fp32_to_fp16(static_cast<float>(sum));
      std::memcpy(ab + 2, &s, 2);
    }
  }
  const Oracle o = oracle(k_->w_type, w.data(), a.data(), n);
  ASSERT_LT(std::fabs(o.value), 1 << 24);
  EXPECT_EQ(static_cast<double>(k_->vec_dot(n, w.data(), a.data())), o.value);
}

// Adversarial activation rows for the quantizers: exact ties of x * id, their neighbours, extreme scales.
std::vector<float> adversarial_row(std::mt19937& rng) {
  std::uniform_int_distribution<int> k(-126, 126);
  std::uniform_int_distribution<int> ex(-20, 20);
  std::uniform_int_distribution<int> kind(0, 9);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x;
  for (int blk = 0; blk < 64; ++blk) {
    float b[kQK];
    const int type = kind(rng);
    // amax = 127 * 2^e makes d = 2^e and id = 2^-e exact, so (k + 0.5) * 2^e lands exactly on a tie.
    const float p = std::ldexp(1.0f, ex(rng));
    for (int j = 0; j < kQK; ++j) {
      const float tie = (static_cast<float>(k(rng)) + 0.5f) * p;
      switch (type) {
        case 0: case 1: case 2: b[j] = tie; break;
        case 3: b[j] = std::nextafter(tie, 1e30f); break;
        case 4: b[j] = std::nextafter(tie, -1e30f); break;
        case 5: b[j] = (j % 3 == 0 ? 0.49999997f : (j % 3 == 1 ? -0.49999997f : 0.5f)) * p; break;
        case 6: b[j] = nd(rng) * 1e-9f; break;      // d well inside fp16 subnormals / underflow
        case 7: b[j] = nd(rng) * 3e7f; break;       // d overflows fp16 (inf)
        case 8: b[j] = (j % 2 == 0) ? -0.0f : 0.0f; break;
        default: b[j] = nd(rng); break;
      }
    }
    if (type <= 5) b[kQK - 1 - blk % kQK] = (blk % 2 ? 127.0f : -127.0f) * p;  // pins amax (either sign)
    x.insert(x.end(), b, b + kQK);
  }
  return x;
}

TEST_P(LegacyKernels, QuantizeActIsByteExact) {
  std::mt19937 rng(77 + GetParam().w_type);
  std::vector<std::vector<float>> rows;
  for (int r = 0; r < 8; ++r) rows.push_back(adversarial_row(rng));
  for (int64_t n : {32, 64, 96, 4096, 14336}) rows.push_back(test_data(n, rng));
  // Rows of tiny and huge magnitude relative to fp16, in a graded sweep.
  for (int e = -40; e <= 30; e += 5) {
    std::vector<float> x = test_data(256, rng);
    for (auto& v : x) v = std::ldexp(v, e);
    rows.push_back(x);
  }
  for (const auto& x : rows) {
    const int64_t n = static_cast<int64_t>(x.size());
    const size_t bytes = static_cast<size_t>(quant_row_bytes(*at_, n));
    // The input is offset by one float (4 bytes) from a 64-byte boundary: loads must not assume alignment.
    std::vector<float> xin(x.size() + 17);
    float* xp = xin.data() + (16 - reinterpret_cast<uintptr_t>(xin.data()) / 4 % 16) % 16 + 1;
    std::memcpy(xp, x.data(), x.size() * sizeof(float));
    Unaligned want(bytes), got(bytes);
    at_->quantize(xp, want.data(), n);
    std::memset(got.data(), 0xa5, bytes);
    k_->quantize_act(xp, got.data(), n);
    for (size_t i = 0; i < bytes; ++i) {
      ASSERT_EQ(got.data()[i], want.data()[i])
          << "byte " << i << " (block " << i / at_->block_bytes << ") of a row of " << n;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, LegacyKernels, ::testing::ValuesIn(all_cases()), case_name);

TEST(LegacyDispatch, CoversExactlyTheLegacyTypes) {
  for (Isa isa : kIsas) {
    for (uint32_t t : kWTypes) EXPECT_NE(legacy_dot_kernels(t, isa), nullptr) << t;
    for (uint32_t t : {kTypeF32, kTypeF16, kTypeQ8_1, kTypeQ4_K, kTypeQ6_K, kTypeBF16}) {
      EXPECT_EQ(legacy_dot_kernels(t, isa), nullptr) << t;
    }
  }
}

}  // namespace
}  // namespace cw::kernels
