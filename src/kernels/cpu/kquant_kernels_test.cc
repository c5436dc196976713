// Cross-checks of the k-quant dot kernels (Q2_K .. Q6_K x Q8_K) against the scalar references of
// quant_ref.h, for every ISA path the running CPU has (paths it lacks are skipped with a message).
//
// vec_dot: weight rows quantized with the reference quantizers, activations with the kernel's own
// quantize_act; the oracle is the fp64 dot product of the reference dequantizations. Tolerance: the kernels
// sum integers exactly and only round (in fp32, u = 2^-24) when converting each super-block's integer sums,
// multiplying by d_w * d_a and accumulating across the nb = n / 256 super-blocks (plus the final horizontal
// sum), so |error| <~ (nb + 6) u * sum_blocks |terms|; for the largest row (n = 14336, nb = 56) that worst
// case is ~3.7e-6 of the magnitude of the terms, and rounding errors add like a random walk, not in the
// worst case. The reference dequantization itself rounds each element (~2u). A bound of 1e-5 of
// sum |w| |a| therefore leaves a margin of >2x over the worst case when the terms do not cancel, while a
// real bug (a wrong scale, a code off by one in one sub-block, a lost min) moves the result by far more.
// quantize_act: byte-exact against quantize_row_q8_K_ref, including adversarial blocks (exact .5 ties,
// +-amax in both orders, zeros, -0, subnormals, huge values, inf, NaN). All quantized buffers sit one byte
// off alignment; the float input of the SIMD quantizers too.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "base/status.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {
namespace {

constexpr uint32_t kTypes[] = {kTypeQ2_K, kTypeQ3_K, kTypeQ4_K, kTypeQ5_K, kTypeQ6_K};
constexpr Isa kIsas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512};
constexpr int64_t kLengths[] = {256, 512, 4096, 14336};

}  // namespace

// Readable parameter values in test listings (found by argument-dependent lookup).
void PrintTo(Isa isa, std::ostream* os) { *os << isa_name(isa); }

namespace {

bool isa_runs_here(Isa isa) { return static_cast<int>(isa) <= static_cast<int>(detected_isa()); }

#define CW_SKIP_IF_UNAVAILABLE(isa)                                                                     \
  if (!isa_runs_here(isa))                                                                              \
  GTEST_SKIP() << "the " << isa_name(isa) << " path cannot run on this CPU (detected "                  \
               << isa_name(detected_isa()) << "); run this test on a CPU with " << isa_name(isa)        \
               << " to cover it"

enum class Dist { kGauss, kOutliers, kZeros, kShifted };
const char* dist_name(Dist d) {
  switch (d) {
    case Dist::kGauss: return "gauss";
    case Dist::kOutliers: return "outliers";
    case Dist::kZeros: return "zeros";
    case Dist::kShifted: return "shifted";
  }
  return "?";
}

// Gaussian rows with variations: rare large outliers of both signs; zeroed super-blocks, sub-blocks and
// sparse entries; a per-sub-block offset (all-positive / all-negative runs exercise the mins).
std::vector<float> make_row(int64_t n, Dist dist, std::mt19937& rng) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = g(rng);
  switch (dist) {
    case Dist::kGauss: break;
    case Dist::kOutliers:
      for (auto& v : x)
        if (u(rng) < 0.01f) v *= 40.0f;
      break;
    case Dist::kZeros:
      for (int64_t i = 0; i < n; ++i) {
        const int64_t sb = i / 256, sub = (i % 256) / 16;
        if (sb % 3 == 1 || sub % 5 == 2 || u(rng) < 0.3f) x[i] = 0.0f;
      }
      break;
    case Dist::kShifted:
      for (int64_t i = 0; i < n; i += 16) {
        const float off = 4.0f * (u(rng) - 0.5f);
        for (int64_t l = i; l < i + 16; ++l) x[l] = 0.5f * x[l] + off;
      }
      break;
  }
  return x;
}

// A byte buffer whose payload starts one byte past a 64-byte boundary.
struct Misaligned {
  explicit Misaligned(size_t bytes) : storage(bytes + 64) {}
  uint8_t* data() {
    auto p = reinterpret_cast<uintptr_t>(storage.data());
    return reinterpret_cast<uint8_t*>((p + 63) / 64 * 64 + 1);
  }
  std::vector<uint8_t> storage;
};

std::string hex_diff(const std::vector<uint8_t>& want, const uint8_t* got, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (want[i] != got[i]) {
      const size_t blk = i / sizeof(BlockQ8_K), off = i % sizeof(BlockQ8_K);
      return "first difference at block " + std::to_string(blk) + " byte " + std::to_string(off) +
             ": want " + std::to_string(want[i]) + " got " + std::to_string(got[i]);
    }
  }
  return "";
}

// Runs the ISA's quantize_act on x (the float input one byte off alignment for the SIMD paths) and
// checks the bytes against the reference. Returns the quantized row (in `out`, misaligned).
void check_quantize_act(const DotKernels& k, const std::vector<float>& x, Misaligned& out) {
  const int64_t n = static_cast<int64_t>(x.size());
  const size_t bytes = static_cast<size_t>(n / kQK_K) * sizeof(BlockQ8_K);
  std::vector<uint8_t> want(bytes);
  quantize_row_q8_K_ref(x.data(), want.data(), n);
  if (k.isa == Isa::kScalar) {
    k.quantize_act(x.data(), out.data(), n);  // the reference itself reads floats directly
  } else {
    Misaligned xin(x.size() * sizeof(float));
    std::memcpy(xin.data(), x.data(), x.size() * sizeof(float));
    k.quantize_act(reinterpret_cast<const float*>(xin.data()), out.data(), n);
  }
  ASSERT_EQ(std::memcmp(want.data(), out.data(), bytes), 0) << hex_diff(want, out.data(), bytes);
}

class KQuantTest : public ::testing::TestWithParam<std::tuple<uint32_t, Isa>> {
 protected:
  uint32_t type() const { return std::get<0>(GetParam()); }
  Isa isa() const { return std::get<1>(GetParam()); }
  const DotKernels& kernels() const {
    const DotKernels* k = dot_kernels(type(), isa());
    CW_CHECK(k != nullptr);
    return *k;
  }
};

TEST_P(KQuantTest, KernelsRegisteredForThisIsa) {
  CW_SKIP_IF_UNAVAILABLE(isa());
  const DotKernels* k = dot_kernels(type(), isa());
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->isa, isa());
  EXPECT_EQ(k->w_type, type());
  EXPECT_EQ(k->a_type, kTypeQ8_K);
  EXPECT_NE(k->quantize_act, nullptr);
  EXPECT_NE(k->vec_dot, nullptr);
}

TEST_P(KQuantTest, VecDotMatchesReferenceDequantization) {
  CW_SKIP_IF_UNAVAILABLE(isa());
  const DotKernels& k = kernels();
  const QuantTraits* wt = quant_traits(type());
  ASSERT_NE(wt, nullptr);
  std::mt19937 rng(1234 + type());
  double worst = 0.0;
  for (int64_t n : kLengths) {
    for (Dist wd : {Dist::kGauss, Dist::kOutliers, Dist::kZeros, Dist::kShifted}) {
      for (Dist ad : {Dist::kGauss, Dist::kOutliers, Dist::kZeros}) {
        const std::vector<float> wf = make_row(n, wd, rng);
        const std::vector<float> af = make_row(n, ad, rng);
        Misaligned wq(static_cast<size_t>(quant_row_bytes(*wt, n)));
        wt->quantize(wf.data(), wq.data(), n);
        Misaligned aq(static_cast<size_t>(n / kQK_K) * sizeof(BlockQ8_K));
        check_quantize_act(k, af, aq);
        if (HasFatalFailure()) return;

        std::vector<float> wd_ref(n), ad_ref(n);
        wt->dequantize(wq.data(), wd_ref.data(), n);
        dequantize_row_q8_K(aq.data(), ad_ref.data(), n);
        double want = 0.0, mag = 0.0;
        for (int64_t i = 0; i < n; ++i) {
          want += static_cast<double>(wd_ref[i]) * ad_ref[i];
          mag += std::fabs(static_cast<double>(wd_ref[i]) * ad_ref[i]);
        }
        const double got = k.vec_dot(n, wq.data(), aq.data());
        const double err = std::fabs(got - want);
        EXPECT_LE(err, 1e-5 * mag + 1e-30)
            << wt->name << " " << isa_name(k.isa) << " n=" << n << " w=" << dist_name(wd) << " a=" << dist_name(ad)
            << " got " << got << " want " << want << " sum|w||a| " << mag;
        if (mag > 0) worst = std::max(worst, err / mag);
      }
    }
  }
  std::printf("[ info ] %s %s: max |error| / sum|w||a| = %.3g\n", wt->name, isa_name(k.isa), worst);
}

// Adversarial Q8_K inputs, one 256-element block each.
std::vector<std::vector<float>> adversarial_blocks() {
  std::vector<std::vector<float>> out;
  auto block = [&](auto fill) {
    std::vector<float> b(kQK_K, 0.0f);
    fill(b);
    out.push_back(std::move(b));
  };
  // max = -127 -> iscale = 1: x = k + 0.5 are exact ties (round half to even).
  block([](auto& b) {
    for (int j = 0; j < kQK_K; ++j) b[j] = static_cast<float>(j % 254 - 127) + 0.5f;
    b[7] = -127.0f;
  });
  // max = +254 -> iscale = -0.5: odd integers are exact ties, of both signs.
  block([](auto& b) {
    for (int j = 0; j < kQK_K; ++j) b[j] = static_cast<float>(2 * (j % 254) - 253);
    b[100] = 254.0f;
  });
  // max = 12.7 (iscale = -10 in fp32 only approximately): ties in the products are data dependent.
  block([](auto& b) {
    for (int j = 0; j < kQK_K; ++j) b[j] = 0.05f * static_cast<float>(j - 128);
    b[0] = 12.7f;
  });
  // +amax before -amax, and -amax before +amax: the first one sets the sign.
  block([](auto& b) {
    for (int j = 0; j < kQK_K; ++j) b[j] = std::sin(0.1f * j);
    b[30] = 5.0f;
    b[200] = -5.0f;
  });
  block([](auto& b) {
    for (int j = 0; j < kQK_K; ++j) b[j] = std::cos(0.1f * j);
    b[3] = -5.0f;
    b[4] = 5.0f;
  });
  // The largest magnitude in the last element; its neighbour slightly smaller with the opposite sign.
  block([](auto& b) {
    for (int j = 0; j < kQK_K; ++j) b[j] = 0.01f * static_cast<float>(j);
    b[255] = 3.0f;
    b[254] = -std::nextafter(3.0f, 0.0f);
  });
  block([](auto& b) {});  // all zero
  block([](auto& b) {
    for (auto& v : b) v = -0.0f;
  });
  block([](auto& b) { b[255] = -1e-3f; });  // one non-zero element
  // Tiny values: -127 / max overflows to inf (codes from inf * x and inf * 0 = NaN).
  block([](auto& b) {
    for (int j = 0; j < kQK_K; ++j) b[j] = (j % 3 == 0) ? 0.0f : 1e-38f * static_cast<float>(j % 7 - 3);
  });
  block([](auto& b) {  // subnormals
    for (int j = 0; j < kQK_K; ++j) b[j] = 1e-42f * static_cast<float>(j % 11 - 5);
  });
  block([](auto& b) {  // huge values
    for (int j = 0; j < kQK_K; ++j) b[j] = 3e38f * std::sin(0.37f * j);
    b[9] = -std::numeric_limits<float>::max();
  });
  block([](auto& b) {  // an infinity
    for (int j = 0; j < kQK_K; ++j) b[j] = static_cast<float>(j % 5);
    b[17] = -std::numeric_limits<float>::infinity();
  });
  block([](auto& b) {  // NaNs are ignored by the amax search
    for (int j = 0; j < kQK_K; ++j) b[j] = 0.1f * static_cast<float>(j % 9 - 4);
    b[0] = std::numeric_limits<float>::quiet_NaN();
    b[50] = std::numeric_limits<float>::quiet_NaN();
  });
  block([](auto& b) {  // all equal magnitude, alternating sign
    for (int j = 0; j < kQK_K; ++j) b[j] = (j % 2) ? 0.75f : -0.75f;
  });
  return out;
}

TEST_P(KQuantTest, QuantizeActIsByteExact) {
  CW_SKIP_IF_UNAVAILABLE(isa());
  const DotKernels& k = kernels();
  std::mt19937 rng(99);
  for (int64_t n : kLengths) {
    for (Dist d : {Dist::kGauss, Dist::kOutliers, Dist::kZeros, Dist::kShifted}) {
      SCOPED_TRACE(std::string("n=") + std::to_string(n) + " " + dist_name(d));
      const std::vector<float> x = make_row(n, d, rng);
      Misaligned out(static_cast<size_t>(n / kQK_K) * sizeof(BlockQ8_K));
      check_quantize_act(k, x, out);
    }
  }
  // All adversarial blocks in one row (block order matters only for the error message).
  std::vector<float> row;
  for (const auto& b : adversarial_blocks()) row.insert(row.end(), b.begin(), b.end());
  Misaligned out(row.size() / kQK_K * sizeof(BlockQ8_K));
  check_quantize_act(k, row, out);
}

std::string param_name(const ::testing::TestParamInfo<std::tuple<uint32_t, Isa>>& info) {
  return std::string(quant_traits(std::get<0>(info.param))->name) + "_" + isa_name(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(AllTypesAllIsas, KQuantTest,
                         ::testing::Combine(::testing::ValuesIn(kTypes), ::testing::ValuesIn(kIsas)), param_name);

}  // namespace
}  // namespace cw::kernels
