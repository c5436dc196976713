// GEMV micro-benchmark of the k-quant dot kernels (kernels/cpu/kquant_*.cc): y = W x for one activation
// row, single thread, every weight type (Q2_K Q3_K Q4_K Q5_K Q6_K) x every ISA this CPU runs, plus the
// Q8_K activation quantizer. Shapes are rows x n: 256x4096 (0.3-0.9 MB: L2-resident, so the kernels'
// compute roofline), 2048x2048 and 8192x2048 (1.3-13.8 MB: past a 1 MiB L2,
// inside a 32 MB L3) and 32768x4096 (44-110 MB: DRAM). The reported rate is weight bytes read per
// second, to compare with the core's read bandwidth (~25 GB/s on the Zen 3 dev box). Speed does not
// depend on the code values, so the weights are random bytes with sane fp16 super-scales (quantizing
// 100+ MB with the reference quantizer would take minutes); the activation is quantized once outside the
// timed loop, as a matmul driver does.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
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

const uint32_t kWTypes[] = {kTypeQ2_K, kTypeQ3_K, kTypeQ4_K, kTypeQ5_K, kTypeQ6_K};
constexpr Isa kIsas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512};

// Byte offsets of the fp16 super-scales in one block of `type` (dmin: -1 when the type has none).
std::pair<int, int> scale_offsets(uint32_t type) {
  switch (type) {
    case kTypeQ2_K: return {offsetof(BlockQ2_K, d), offsetof(BlockQ2_K, dmin)};
    case kTypeQ3_K: return {offsetof(BlockQ3_K, d), -1};
    case kTypeQ4_K: return {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)};
    case kTypeQ5_K: return {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)};
    case kTypeQ6_K: return {offsetof(BlockQ6_K, d), -1};
  }
  return {-1, -1};
}

struct Matrix {
  std::vector<uint8_t> w;
  int64_t row_bytes = 0;
};

// Built once per (type, rows, n) and shared by the ISAs.
const Matrix& matrix(uint32_t type, int64_t rows, int64_t n) {
  static std::map<std::tuple<uint32_t, int64_t, int64_t>, std::unique_ptr<Matrix>> cache;
  auto& slot = cache[{type, rows, n}];
  if (!slot) {
    slot = std::make_unique<Matrix>();
    const QuantTraits* t = quant_traits(type);
    slot->row_bytes = quant_row_bytes(*t, n);
    slot->w.resize(static_cast<size_t>(slot->row_bytes * rows));
    std::mt19937_64 rng(type * 131 + rows + n);
    for (size_t i = 0; i + 8 <= slot->w.size(); i += 8) {
      const uint64_t v = rng();
      std::memcpy(slot->w.data() + i, &v, 8);
    }
    const auto [od, odmin] = scale_offsets(type);
    const uint16_t d = fp32_to_fp16(0.01f), dmin = fp32_to_fp16(0.002f);
    for (size_t b = 0; b < slot->w.size(); b += static_cast<size_t>(t->block_bytes)) {
      std::memcpy(slot->w.data() + b + od, &d, 2);
      if (odmin >= 0) std::memcpy(slot->w.data() + b + odmin, &dmin, 2);
    }
  }
  return *slot;
}

std::vector<float> gaussian(int64_t n, uint32_t seed) {
  std::vector<float> x(static_cast<size_t>(n));
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : x) v = nd(rng);
  return x;
}

void bm_gemv(benchmark::State& state, uint32_t type, Isa isa, int64_t rows, int64_t n) {
  const DotKernels* k = dot_kernels(type, isa);
  if (k == nullptr || k->isa != isa) {
    state.SkipWithError("no k-quant kernel for this ISA");
    return;
  }
  const Matrix& m = matrix(type, rows, n);
  const std::vector<float> x = gaussian(n, 3);
  std::vector<uint8_t> a(static_cast<size_t>(n / kQK_K) * sizeof(BlockQ8_K));
  k->quantize_act(x.data(), a.data(), n);
  std::vector<float> y(static_cast<size_t>(rows));
  for (auto _ : state) {
    for (int64_t r = 0; r < rows; ++r) y[r] = k->vec_dot(n, m.w.data() + r * m.row_bytes, a.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double bytes = static_cast<double>(m.w.size());
  state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9 * static_cast<double>(state.iterations()),
                                              benchmark::Counter::kIsRate);
  state.counters["MB"] = bytes * 1e-6;
}

void bm_quantize_act(benchmark::State& state, Isa isa, int64_t n) {
  const DotKernels* k = dot_kernels(kTypeQ4_K, isa);
  const std::vector<float> x = gaussian(n, 4);
  std::vector<uint8_t> a(static_cast<size_t>(n / kQK_K) * sizeof(BlockQ8_K));
  for (auto _ : state) {
    k->quantize_act(x.data(), a.data(), n);
    benchmark::DoNotOptimize(a.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n * static_cast<int64_t>(sizeof(float)));
}

void register_all() {
  const Isa detected = detected_isa();
  const std::pair<int64_t, int64_t> shapes[] = {{256, 4096}, {2048, 2048}, {8192, 2048}, {32768, 4096}};
  for (auto [rows, n] : shapes) {
    for (uint32_t type : kWTypes) {
      for (Isa isa : kIsas) {
        if (static_cast<int>(isa) > static_cast<int>(detected)) continue;
        const std::string name = std::string("gemv/") + quant_traits(type)->name + "/" + isa_name(isa) + "/" +
                                 std::to_string(rows) + "x" + std::to_string(n);
        benchmark::RegisterBenchmark(name.c_str(), bm_gemv, type, isa, rows, n)->Unit(benchmark::kMicrosecond);
      }
    }
  }
  for (Isa isa : kIsas) {
    if (static_cast<int>(isa) > static_cast<int>(detected)) continue;
    const std::string name = std::string("quantize_act/Q8_K/") + isa_name(isa) + "/4096";
    benchmark::RegisterBenchmark(name.c_str(), bm_quantize_act, isa, int64_t{4096});
  }
}

}  // namespace
}  // namespace cw::kernels

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::printf("detected ISA: %s (higher ISAs are not benchmarked on this CPU)\n",
              cw::kernels::isa_name(cw::kernels::detected_isa()));
  cw::kernels::register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
