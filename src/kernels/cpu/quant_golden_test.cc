// Golden checks of the reference dequantizers against real llama.cpp output: the synth-tiny model in
// ../shared/data/models/synth-tiny was quantized by llama.cpp from seed1-F32.gguf into every type we read.
// Dequantizing each tensor with our code must reproduce the F32 tensor within that type's precision (a
// layout or packing bug gives garbage, far outside the bounds); F16/BF16 and copied F32 tensors must be
// bit exact; our legacy quantizers must reproduce llama.cpp's bytes; our k-quant quantizers must be about
// as accurate as llama.cpp's on the same weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/quant_ref.h"
#include "support/testing.h"

namespace cw::kernels {
namespace {

// Bound on rms(dequantized - f32) / rms(f32) per tensor, by tensor type: each extra bit of code halves the
// error; the bounds sit ~15-25% above the worst tensor of llama.cpp's files (measured, printed below).
// A layout bug (wrong nibble order, scale packing, high-bit placement) gives errors of order 1.
double rel_rms_bound(uint32_t type) {
  switch (type) {
    case kTypeF32: return 0.0;      // copied
    case kTypeF16: return 1e-3;     // measured 0.00021 (also checked bit-exact)
    case kTypeBF16: return 4e-3;    // measured 0.0017 (also checked bit-exact)
    case kTypeQ8_0: return 0.0068;  // measured 0.0054
    case kTypeQ6_K: return 0.022;   // measured 0.0179
    case kTypeQ5_1: return 0.045;   // measured 0.0381
    case kTypeQ5_0: return 0.05;    // measured 0.0430
    case kTypeQ5_K: return 0.045;   // measured 0.0363
    case kTypeQ4_1: return 0.09;    // measured 0.0786
    case kTypeQ4_0: return 0.10;    // measured 0.0864
    case kTypeQ4_K: return 0.088;   // measured 0.0715
    case kTypeQ3_K: return 0.185;   // measured 0.1515
    case kTypeQ2_K: return 0.36;    // measured 0.2981
    default: return 0.0;
  }
}

// The k-quant quantizer search is slow in sanitizer builds: compare ours on the first rows only.
constexpr int64_t kMaxRowsOurs = 64;

std::vector<float> dequantize_tensor(const gguf::TensorInfo& t) {
  const QuantTraits* q = quant_traits(static_cast<uint32_t>(t.type));
  EXPECT_NE(q, nullptr) << "no reference for type " << static_cast<uint32_t>(t.type);
  if (q == nullptr) return {};
  const auto row = static_cast<int64_t>(t.shape.at(0));
  const int64_t n_rows = static_cast<int64_t>(t.n_elements) / row;
  const int64_t row_bytes = quant_row_bytes(*q, row);
  EXPECT_EQ(static_cast<uint64_t>(row_bytes * n_rows), t.n_bytes);
  std::vector<float> out(t.n_elements);
  for (int64_t r = 0; r < n_rows; ++r) q->dequantize(t.data + r * row_bytes, out.data() + r * row, row);
  return out;
}

double rel_rms(const std::vector<float>& y, const float* ref, size_t n) {
  double se = 0, sr = 0;
  for (size_t i = 0; i < n; ++i) {
    const double e = static_cast<double>(y[i]) - ref[i];
    se += e * e;
    sr += static_cast<double>(ref[i]) * ref[i];
  }
  return sr > 0 ? std::sqrt(se / sr) : std::sqrt(se);
}

struct GoldenFile {
  const char* name;    // seed1-<name>.gguf
  uint32_t main_type;  // the type most of its matrices have (must be present)
};

const GoldenFile kFiles[] = {
    {"F32", kTypeF32},   {"F16", kTypeF16},   {"BF16", kTypeBF16},     {"Q8_0", kTypeQ8_0},
    {"Q4_0", kTypeQ4_0}, {"Q4_1", kTypeQ4_1}, {"Q5_0", kTypeQ5_0},     {"Q5_1", kTypeQ5_1},
    {"Q2_K", kTypeQ2_K}, {"Q3_K_M", kTypeQ3_K}, {"Q4_K_M", kTypeQ4_K}, {"Q5_K_M", kTypeQ5_K},
    {"Q6_K", kTypeQ6_K},
};

void PrintTo(const GoldenFile& f, std::ostream* os) { *os << f.name; }

class QuantGolden : public ::testing::TestWithParam<GoldenFile> {};

TEST_P(QuantGolden, DequantizeMatchesF32) {
  CW_REQUIRE_SHARED_DATA(data);
  const std::string dir = data + "/models/synth-tiny/";
  auto ref_file = gguf::File::open(dir + "seed1-F32.gguf");
  ASSERT_TRUE(ref_file.is_ok()) << ref_file.status().to_string();
  const GoldenFile golden = GetParam();
  auto file = gguf::File::open(dir + "seed1-" + golden.name + ".gguf");
  ASSERT_TRUE(file.is_ok()) << file.status().to_string();

  std::map<uint32_t, double> worst;            // per tensor type: worst rel. RMS of llama.cpp's data
  std::map<uint32_t, double> worst_ours_ratio;  // k-quants: our quantizer's rel. RMS / llama.cpp's
  std::map<uint32_t, std::pair<int64_t, int64_t>> legacy_blocks;  // type: (identical, total) blocks
  int n_checked = 0;
  for (const gguf::TensorInfo& t : (*file)->tensors()) {
    SCOPED_TRACE(std::string(t.name));
    const gguf::TensorInfo* r = (*ref_file)->find_tensor(t.name);
    ASSERT_NE(r, nullptr);
    ASSERT_EQ(r->type, gguf::TensorType::kF32);
    ASSERT_EQ(r->shape, t.shape);
    const auto* ref = reinterpret_cast<const float*>(r->data);
    const auto type = static_cast<uint32_t>(t.type);
    const std::vector<float> y = dequantize_tensor(t);
    ASSERT_EQ(y.size(), r->n_elements);
    ++n_checked;

    if (type == kTypeF32 || type == kTypeF16 || type == kTypeBF16) {
      // Exact: a copy, or fp32 rounded to nearest even.
      for (size_t i = 0; i < y.size(); ++i) {
        const float want = type == kTypeF32   ? ref[i]
                           : type == kTypeF16 ? fp16_to_fp32(fp32_to_fp16(ref[i]))
                                              : bf16_to_fp32(fp32_to_bf16(ref[i]));
        ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(want)) << "element " << i;
      }
    }
    const double e = rel_rms(y, ref, y.size());
    worst[type] = std::max(worst[type], e);
    EXPECT_LE(e, rel_rms_bound(type)) << "type " << quant_traits(type)->name;

    if (type == kTypeF32 || type == kTypeF16 || type == kTypeBF16) continue;
    // Our quantizer on the same fp32 weights.
    const QuantTraits* q = quant_traits(type);
    const auto row = static_cast<int64_t>(t.shape[0]);
    const int64_t n_rows = q->block_size == kQK_K ? std::min<int64_t>(kMaxRowsOurs, t.n_elements / row)
                                                  : static_cast<int64_t>(t.n_elements) / row;
    const int64_t row_bytes = quant_row_bytes(*q, row);
    std::vector<uint8_t> mine(static_cast<size_t>(row_bytes * n_rows));
    std::vector<float> y2(static_cast<size_t>(n_rows * row));
    for (int64_t i = 0; i < n_rows; ++i) {
      q->quantize(ref + i * row, mine.data() + i * row_bytes, row);
      q->dequantize(mine.data() + i * row_bytes, y2.data() + i * row, row);
    }
    if (q->block_size == kQK) {
      // Legacy: the same rounding rules as llama.cpp, so (nearly) the same bytes.
      auto& [same, total] = legacy_blocks[type];
      for (size_t b = 0; b < mine.size() / q->block_bytes; ++b) {
        same += std::memcmp(mine.data() + b * q->block_bytes, t.data + b * q->block_bytes, q->block_bytes) == 0;
        ++total;
      }
    } else {
      const double ours = rel_rms(y2, ref, y2.size());
      const double theirs = rel_rms(y, ref, y2.size());  // llama.cpp's on the same rows
      worst_ours_ratio[type] = std::max(worst_ours_ratio[type], ours / theirs);
      EXPECT_LE(ours, 1.10 * theirs) << "our " << q->name << " quantizer is clearly worse than llama.cpp's";
    }
  }
  EXPECT_GT(n_checked, 0);
  EXPECT_TRUE(worst.count(golden.main_type)) << "no tensor of type " << quant_traits(golden.main_type)->name;
  for (const auto& [type, e] : worst) {
    std::printf("  %-7s tensors of %-5s worst rel_rms %.5f (bound %.4g)", golden.name, quant_traits(type)->name, e,
                rel_rms_bound(type));
    if (worst_ours_ratio.count(type)) std::printf("  ours/llama.cpp worst %.3f", worst_ours_ratio[type]);
    if (legacy_blocks.count(type)) {
      std::printf("  identical blocks %lld/%lld", static_cast<long long>(legacy_blocks[type].first),
                  static_cast<long long>(legacy_blocks[type].second));
    }
    std::printf("\n");
  }
  for (const auto& [type, c] : legacy_blocks) {
    // Any mismatch would be a rounding tie resolved differently (e.g. llama.cpp built with FMA); allow a
    // handful, never a pattern.
    EXPECT_GE(c.first, c.second - c.second / 1000) << quant_traits(type)->name << " blocks differ from llama.cpp";
  }
}

INSTANTIATE_TEST_SUITE_P(SynthTiny, QuantGolden, ::testing::ValuesIn(kFiles),
                         [](const ::testing::TestParamInfo<GoldenFile>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace cw::kernels
