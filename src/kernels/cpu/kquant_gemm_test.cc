// Cross-checks of the k-quant prefill GEMM (DotKernels::gemm for Q2_K .. Q6_K x Q8_K) for every ISA path
// the running CPU has (paths it lacks are skipped with a message; paths without a gemm are skipped too,
// matmul then uses vec_dot).
//
// For nr weight rows x nt activation rows (shapes covering every tile remainder of the 2 x 4 register
// tile), each y[t * ldy + r] is compared with (1) vec_dot of the same pair and (2) the fp64 dot product of
// the reference dequantizations. Tolerance 1e-5 of sum |w| |a| (as in kquant_kernels_test.cc: both sides
// sum exact integers per super-block and differ only in fp32 rounding of the per-super-block products and
// the accumulation order, ~(nb + 6) u of the terms at worst). Weight rows and activation rows sit one byte
// off alignment with strides that are not multiples of the row size, y has ldy > nr, and every y entry the
// kernel must not write is a sentinel that has to survive.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
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
constexpr int64_t kLengths[] = {256, 2048};
constexpr int64_t kRows[] = {1, 3, 4, 5, 16};
constexpr int64_t kTokens[] = {1, 2, 3, 4, 7, 64};

}  // namespace

void PrintTo(Isa isa, std::ostream* os) { *os << isa_name(isa); }

namespace {

bool isa_runs_here(Isa isa) { return static_cast<int>(isa) <= static_cast<int>(detected_isa()); }

// A byte buffer whose payload starts one byte past a 64-byte boundary.
struct Misaligned {
  explicit Misaligned(size_t bytes) : storage(bytes + 64) {}
  uint8_t* data() {
    auto p = reinterpret_cast<uintptr_t>(storage.data());
    return reinterpret_cast<uint8_t*>((p + 63) / 64 * 64 + 1);
  }
  std::vector<uint8_t> storage;
};

// Gaussian values with a per-sub-block offset (exercises the mins) and rare outliers.
std::vector<float> make_row(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; i += 16) {
    const float off = u(rng) < 0.5f ? 0.0f : 3.0f * (u(rng) - 0.5f);
    for (int64_t l = i; l < i + 16; ++l) x[l] = g(rng) + off;
  }
  for (auto& v : x)
    if (u(rng) < 0.005f) v *= 30.0f;
  return x;
}

class KQuantGemmTest : public ::testing::TestWithParam<std::tuple<uint32_t, Isa>> {
 protected:
  uint32_t type() const { return std::get<0>(GetParam()); }
  Isa isa() const { return std::get<1>(GetParam()); }
};

TEST_P(KQuantGemmTest, MatchesVecDotAndReferenceDequantization) {
  if (!isa_runs_here(isa()))
    GTEST_SKIP() << "the " << isa_name(isa()) << " path cannot run on this CPU (detected " << isa_name(detected_isa())
                 << "); run this test on a CPU with " << isa_name(isa()) << " to cover it";
  const DotKernels* k = dot_kernels(type(), isa());
  ASSERT_NE(k, nullptr);
  if (k->isa != isa()) GTEST_SKIP() << "no " << isa_name(isa()) << " kernels for this type";
  if (k->gemm == nullptr) GTEST_SKIP() << "no gemm on the " << isa_name(isa()) << " path (matmul uses vec_dot)";
  const QuantTraits* wt = quant_traits(type());
  ASSERT_NE(wt, nullptr);
  std::mt19937 rng(4321 + type());
  constexpr float kSentinel = -12345.0f;
  double worst_ref = 0.0, worst_vd = 0.0;
  for (int64_t n : kLengths) {
    const int64_t max_rows = kRows[std::size(kRows) - 1], max_tokens = kTokens[std::size(kTokens) - 1];
    const int64_t w_row = quant_row_bytes(*wt, n), a_row = n / kQK_K * static_cast<int64_t>(sizeof(BlockQ8_K));
    const int64_t w_stride = w_row + 3, a_stride = a_row + 5;
    Misaligned wq(static_cast<size_t>(w_stride * max_rows)), aq(static_cast<size_t>(a_stride * max_tokens));
    std::vector<std::vector<float>> wd(max_rows, std::vector<float>(n)), ad(max_tokens, std::vector<float>(n));
    for (int64_t r = 0; r < max_rows; ++r) {
      const std::vector<float> x = make_row(n, rng);
      wt->quantize(x.data(), wq.data() + r * w_stride, n);
      wt->dequantize(wq.data() + r * w_stride, wd[r].data(), n);
    }
    for (int64_t t = 0; t < max_tokens; ++t) {
      const std::vector<float> x = make_row(n, rng);
      k->quantize_act(x.data(), aq.data() + t * a_stride, n);
      dequantize_row_q8_K(aq.data() + t * a_stride, ad[t].data(), n);
    }
    for (int64_t nr : kRows) {
      for (int64_t nt : kTokens) {
        const int64_t ldy = nr + 2;
        std::vector<float> y(static_cast<size_t>(ldy * nt + 1), kSentinel);
        k->gemm(n, wq.data(), w_stride, nr, aq.data(), a_stride, nt, y.data() + 1, ldy, nullptr);  // y unaligned too
        ASSERT_EQ(y[0], kSentinel);
        for (int64_t t = 0; t < nt; ++t) {
          for (int64_t c = 0; c < ldy; ++c) {
            const float got = y[1 + t * ldy + c];
            if (c >= nr) {
              ASSERT_EQ(got, kSentinel) << "wrote outside the nr columns: t=" << t << " c=" << c;
              continue;
            }
            double want = 0.0, mag = 0.0;
            for (int64_t i = 0; i < n; ++i) {
              const double p = static_cast<double>(wd[c][i]) * ad[t][i];
              want += p;
              mag += std::fabs(p);
            }
            const double vd = k->vec_dot(n, wq.data() + c * w_stride, aq.data() + t * a_stride);
            const double tol = 1e-5 * mag + 1e-30;
            ASSERT_LE(std::fabs(got - want), tol) << wt->name << " " << isa_name(k->isa) << " n=" << n << " nr=" << nr
                                                  << " nt=" << nt << " r=" << c << " t=" << t << " got " << got
                                                  << " want " << want << " sum|w||a| " << mag;
            ASSERT_LE(std::fabs(got - vd), tol) << wt->name << " " << isa_name(k->isa) << " n=" << n << " nr=" << nr
                                                << " nt=" << nt << " r=" << c << " t=" << t << " got " << got
                                                << " vec_dot " << vd << " sum|w||a| " << mag;
            if (mag > 0) {
              worst_ref = std::max(worst_ref, std::fabs(got - want) / mag);
              worst_vd = std::max(worst_vd, std::fabs(got - vd) / mag);
            }
          }
        }
      }
    }
  }
  std::printf("[ info ] %s %s gemm: max |error| / sum|w||a| = %.3g vs fp64 reference, %.3g vs vec_dot\n", wt->name,
              isa_name(k->isa), worst_ref, worst_vd);
}

std::string param_name(const ::testing::TestParamInfo<std::tuple<uint32_t, Isa>>& info) {
  return std::string(quant_traits(std::get<0>(info.param))->name) + "_" + isa_name(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(AllTypesAllIsas, KQuantGemmTest,
                         ::testing::Combine(::testing::ValuesIn(kTypes), ::testing::ValuesIn(kIsas)), param_name);

}  // namespace
}  // namespace cw::kernels
