// Non-finite values must survive every quantized dot product, for every weight type x every ISA this CPU
// runs (others skip with a message; the AVX2 path is tested on AVX-512 CPUs too).
//
// Why: the model stops a run whose logits are non-finite and names the corrupt tensor, but that check only
// sees NaN/inf that reach the logits. An activation quantizer that ignores a NaN when taking the block's
// amax (x86 max_ps drops it; `fabs(x) > amax` is false for it) and converts NaN * id to an integer code
// launders a corrupt activation into finite codes. The contract (quant_ref.h): a block holding a NaN or
// +-inf quantizes to d = NaN (s = NaN for Q8_1) with codes 0, byte-exact between the SIMD quantizers and the
// reference, and every vec_dot / gemv / gemm that reads that block returns NaN, while finite blocks of the
// same row quantize exactly as before. The weight side is checked too: a NaN or inf fp16 scale (d, and the
// min / dmin of the formats with one) in one weight block makes that row's results non-finite in vec_dot,
// gemv and gemm, and leaves the other rows finite.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {
namespace {

constexpr uint32_t kTypes[] = {kTypeQ4_0, kTypeQ4_1, kTypeQ5_0, kTypeQ5_1, kTypeQ8_0, kTypeQ2_K,
                               kTypeQ3_K, kTypeQ4_K, kTypeQ5_K, kTypeQ6_K, kTypeF16,  kTypeBF16};
constexpr Isa kIsas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512};
constexpr int64_t kN = 512;  // 16 Q8_0/Q8_1 blocks, 2 Q8_K blocks
constexpr int64_t kRows = 6;
constexpr int64_t kTokens = 5;
const float kBad[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                      -std::numeric_limits<float>::infinity()};

// Byte offsets of the fp16 scale fields (d, and min / dmin where the format has one) in a weight block.
std::vector<size_t> scale_fields(uint32_t type) {
  switch (type) {
    case kTypeQ4_0: case kTypeQ5_0: case kTypeQ8_0: return {0};
    case kTypeQ4_1: case kTypeQ5_1: return {0, 2};
    case kTypeQ2_K: return {offsetof(BlockQ2_K, d), offsetof(BlockQ2_K, dmin)};
    case kTypeQ3_K: return {offsetof(BlockQ3_K, d)};
    case kTypeQ4_K: return {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)};
    case kTypeQ5_K: return {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)};
    case kTypeQ6_K: return {offsetof(BlockQ6_K, d)};
    default: return {};
  }
}

std::vector<float> gauss(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = g(rng);
  return x;
}

float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}

class NonFinite : public ::testing::TestWithParam<std::tuple<uint32_t, Isa>> {
 protected:
  void SetUp() override {
    const Isa isa = std::get<1>(GetParam());
    if (static_cast<int>(isa) > static_cast<int>(detected_isa())) {
      GTEST_SKIP() << "this CPU cannot run the " << isa_name(isa) << " path (detected "
                   << isa_name(detected_isa()) << "); run on a CPU with it to test it";
    }
    k_ = dot_kernels(std::get<0>(GetParam()), isa);
    ASSERT_NE(k_, nullptr);
    wt_ = quant_traits(k_->w_type);
    at_ = quant_traits(k_->a_type);
    w_stride_ = quant_row_bytes(*wt_, kN);
    a_stride_ = quant_row_bytes(*at_, kN);
    std::mt19937 rng(17 + k_->w_type);
    w_.resize(static_cast<size_t>(w_stride_ * kRows));
    for (int64_t r = 0; r < kRows; ++r) wt_->quantize(gauss(kN, rng).data(), w_.data() + r * w_stride_, kN);
  }

  // y[t * kRows + r] for the kTokens activation rows in `a` through every path the kernels have: vec_dot
  // always; gemv (token by token) and gemm (all tokens at once, with and without act_sums) when present.
  // Each path's results are returned separately, labelled.
  std::vector<std::pair<std::string, std::vector<float>>> all_paths(const std::vector<uint8_t>& a) const {
    std::vector<std::pair<std::string, std::vector<float>>> out;
    std::vector<float> y(static_cast<size_t>(kRows * kTokens));
    for (int64_t t = 0; t < kTokens; ++t) {
      for (int64_t r = 0; r < kRows; ++r)
        y[t * kRows + r] = k_->vec_dot(kN, w_.data() + r * w_stride_, a.data() + t * a_stride_);
    }
    out.emplace_back("vec_dot", y);
    if (k_->gemv != nullptr) {
      for (int64_t t = 0; t < kTokens; ++t)
        k_->gemv(kN, w_.data(), w_stride_, kRows, a.data() + t * a_stride_, y.data() + t * kRows);
      out.emplace_back("gemv", y);
    }
    if (k_->gemm != nullptr) {
      k_->gemm(kN, w_.data(), w_stride_, kRows, a.data(), a_stride_, kTokens, y.data(), kRows, nullptr);
      out.emplace_back("gemm", y);
      if (k_->act_sums != nullptr) {
        std::vector<int32_t> sums(static_cast<size_t>(kTokens * (kN / 32)));
        for (int64_t t = 0; t < kTokens; ++t) k_->act_sums(a.data() + t * a_stride_, kN, sums.data() + t * (kN / 32));
        k_->gemm(kN, w_.data(), w_stride_, kRows, a.data(), a_stride_, kTokens, y.data(), kRows, sums.data());
        out.emplace_back("gemm+act_sums", y);
      }
    }
    return out;
  }

  const DotKernels* k_ = nullptr;
  const QuantTraits* wt_ = nullptr;
  const QuantTraits* at_ = nullptr;
  int64_t w_stride_ = 0;
  int64_t a_stride_ = 0;
  std::vector<uint8_t> w_;
};

// One NaN / +inf / -inf at every position of one activation block (token 2 of kTokens): the SIMD quantizer
// matches the reference byte for byte, the block's scale is NaN, the other blocks are unchanged, and every
// result of token 2 is NaN on every path while the other tokens stay finite.
TEST_P(NonFinite, ActivationBlockWithNaNOrInfGivesNaN) {
  std::mt19937 rng(5 + k_->w_type);
  std::vector<std::vector<float>> x;
  for (int64_t t = 0; t < kTokens; ++t) x.push_back(gauss(kN, rng));
  const bool quantized = at_->block_size > 1;
  const int bs = quantized ? at_->block_size : 32;
  const int64_t bad_token = 2, bad_block = 1;
  std::vector<uint8_t> clean(static_cast<size_t>(a_stride_));
  at_->quantize(x[bad_token].data(), clean.data(), kN);
  for (const float bad : kBad) {
    for (int j = 0; j < bs; ++j) {
      SCOPED_TRACE("value " + std::to_string(bad) + " at element " + std::to_string(j) + " of its block");
      std::vector<float> xb = x[bad_token];
      xb[static_cast<size_t>(bad_block * bs + j)] = bad;
      std::vector<uint8_t> a(static_cast<size_t>(a_stride_ * kTokens));
      for (int64_t t = 0; t < kTokens; ++t)
        k_->quantize_act(t == bad_token ? xb.data() : x[t].data(), a.data() + t * a_stride_, kN);
      const uint8_t* row = a.data() + bad_token * a_stride_;
      std::vector<uint8_t> want(static_cast<size_t>(a_stride_));
      at_->quantize(xb.data(), want.data(), kN);
      ASSERT_EQ(std::memcmp(want.data(), row, want.size()), 0) << "quantize_act differs from the reference";
      if (quantized) {
        const size_t bb = static_cast<size_t>(at_->block_bytes);
        const uint8_t* blk = row + bad_block * bb;
        if (k_->a_type == kTypeQ8_K) {
          float d;
          std::memcpy(&d, blk + offsetof(BlockQ8_K, d), sizeof(d));
          ASSERT_TRUE(std::isnan(d));
        } else {
          ASSERT_TRUE(std::isnan(half_at(blk)));
          if (k_->a_type == kTypeQ8_1) {
            ASSERT_TRUE(std::isnan(half_at(blk + 2)));  // s
          }
        }
        for (size_t i = 0; i < want.size(); ++i) {
          if (i / bb != static_cast<size_t>(bad_block)) {
            ASSERT_EQ(row[i], clean[i]) << "finite block changed";
          }
        }
      }
      for (const auto& [path, y] : all_paths(a)) {
        for (int64_t t = 0; t < kTokens; ++t) {
          for (int64_t r = 0; r < kRows; ++r) {
            const float v = y[static_cast<size_t>(t * kRows + r)];
            if (t == bad_token) {
              ASSERT_TRUE(std::isnan(v) || (!quantized && std::isinf(bad) && std::isinf(v)))
                  << path << " row " << r << " gave " << v;
            } else {
              ASSERT_TRUE(std::isfinite(v)) << path << " token " << t << " row " << r << " gave " << v;
            }
          }
        }
      }
    }
  }
}

// A NaN or inf fp16 scale (d, or the min / dmin) in one block of one weight row: that row's results are
// non-finite for every token on every path (NaN for a NaN scale), the other rows' stay finite.
TEST_P(NonFinite, WeightBlockWithNaNOrInfScaleGivesNonFinite) {
  const std::vector<size_t> fields = scale_fields(k_->w_type);
  if (fields.empty()) GTEST_SKIP() << "float weights have no block scale";
  std::mt19937 rng(9 + k_->w_type);
  std::vector<uint8_t> a(static_cast<size_t>(a_stride_ * kTokens));
  for (int64_t t = 0; t < kTokens; ++t) k_->quantize_act(gauss(kN, rng).data(), a.data() + t * a_stride_, kN);
  const std::vector<uint8_t> w0 = w_;
  const int64_t bad_row = 3, bad_block = 1;
  for (const size_t field : fields) {
    for (const uint16_t h : {uint16_t{0x7e00}, uint16_t{0xfe00}, uint16_t{0x7c00}, uint16_t{0xfc00}}) {
      SCOPED_TRACE("fp16 " + std::to_string(h) + " at byte " + std::to_string(field) + " of a block");
      w_ = w0;
      std::memcpy(w_.data() + bad_row * w_stride_ + bad_block * wt_->block_bytes + field, &h, 2);
      const bool nan = (h & 0x7fff) > 0x7c00;
      for (const auto& [path, y] : all_paths(a)) {
        for (int64_t t = 0; t < kTokens; ++t) {
          for (int64_t r = 0; r < kRows; ++r) {
            const float v = y[static_cast<size_t>(t * kRows + r)];
            if (r == bad_row) {
              ASSERT_TRUE(nan ? std::isnan(v) : !std::isfinite(v)) << path << " token " << t << " gave " << v;
            } else {
              ASSERT_TRUE(std::isfinite(v)) << path << " token " << t << " row " << r << " gave " << v;
            }
          }
        }
      }
    }
  }
  w_ = w0;
}

std::string param_name(const ::testing::TestParamInfo<std::tuple<uint32_t, Isa>>& info) {
  return std::string(quant_traits(std::get<0>(info.param))->name) + "_" + isa_name(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(AllTypesAllIsas, NonFinite,
                         ::testing::Combine(::testing::ValuesIn(kTypes), ::testing::ValuesIn(kIsas)), param_name);

}  // namespace
}  // namespace cw::kernels
