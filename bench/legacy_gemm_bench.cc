// Prefill GEMM micro-benchmark of the legacy quant kernels (kernels/cpu/legacy_gemm_avx2.cc): one call of
// the matmul driver's shape, a block of nr weight rows x nt tokens of Q8_0/Q8_1 activations, single thread,
// timed as DotKernels::gemm and as the per-pair vec_dot loop it replaces (the matmul fallback). The rate is
// multiply-accumulates per second (nr * nt * n per call). Weights and activations: reference-quantized
// Gaussian rows.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {
namespace {

struct Setup {
  std::vector<uint8_t> w, a;
  int64_t w_row = 0, a_row = 0;
  std::vector<float> y;
};

Setup make(const DotKernels& k, int64_t nr, int64_t nt, int64_t n) {
  Setup s;
  const QuantTraits* wt = quant_traits(k.w_type);
  const QuantTraits* at = quant_traits(k.a_type);
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  s.w_row = quant_row_bytes(*wt, n);
  s.w.resize(static_cast<size_t>(s.w_row * nr));
  for (int64_t r = 0; r < nr; ++r) {
    for (auto& v : x) v = g(rng);
    wt->quantize(x.data(), s.w.data() + r * s.w_row, n);
  }
  s.a_row = quant_row_bytes(*at, n);
  s.a.resize(static_cast<size_t>(s.a_row * nt));
  for (int64_t i = 0; i < nt; ++i) {
    for (auto& v : x) v = g(rng);
    k.quantize_act(x.data(), s.a.data() + i * s.a_row, n);
  }
  s.y.resize(static_cast<size_t>(nr * nt));
  return s;
}

void bm(benchmark::State& state, uint32_t type, bool use_gemm, int64_t nr, int64_t nt, int64_t n) {
  const DotKernels* k = dot_kernels(type, Isa::kAvx2);
  if (k == nullptr || k->isa != Isa::kAvx2 || (use_gemm && k->gemm == nullptr)) {
    state.SkipWithError("no avx2 kernel");
    return;
  }
  Setup s = make(*k, nr, nt, n);
  for (auto _ : state) {
    if (use_gemm) {
      k->gemm(n, s.w.data(), s.w_row, nr, s.a.data(), s.a_row, nt, s.y.data(), nr, nullptr);
    } else {
      for (int64_t t = 0; t < nt; ++t)
        for (int64_t r = 0; r < nr; ++r)
          s.y[t * nr + r] = k->vec_dot(n, s.w.data() + r * s.w_row, s.a.data() + t * s.a_row);
    }
    benchmark::DoNotOptimize(s.y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GMAC/s"] = benchmark::Counter(
      static_cast<double>(nr * nt * n) * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// A whole DRAM-resident matrix (larger than the L3) the way the matmul driver walks it on one thread: row
// blocks of 16 rows in order, each a gemm call over nt tokens; the weights of every call come from DRAM,
// so this also times the repacking's memory stalls (and what the GEMM's prefetch of later rows hides).
void bm_matrix(benchmark::State& state, uint32_t type, int64_t rows, int64_t nt, int64_t n) {
  const DotKernels* k = dot_kernels(type, Isa::kAvx2);
  if (k == nullptr || k->isa != Isa::kAvx2 || k->gemm == nullptr) {
    state.SkipWithError("no avx2 kernel");
    return;
  }
  // Quantizing every row of a large matrix is slow; repeat one 64-row slab (content does not matter for
  // the timing, only that the bytes are distinct memory).
  Setup s = make(*k, 64, nt, n);
  std::vector<uint8_t> w(static_cast<size_t>(s.w_row * rows));
  for (int64_t r = 0; r < rows; r += 64)
    std::memcpy(w.data() + r * s.w_row, s.w.data(), static_cast<size_t>(s.w_row * std::min<int64_t>(64, rows - r)));
  std::vector<float> y(static_cast<size_t>(rows * nt));
  constexpr int64_t kBlock = 16;
  for (auto _ : state) {
    for (int64_t r0 = 0; r0 < rows; r0 += kBlock)
      k->gemm(n, w.data() + r0 * s.w_row, s.w_row, std::min(kBlock, rows - r0), s.a.data(), s.a_row, nt,
              y.data() + r0, rows, nullptr);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GMAC/s"] = benchmark::Counter(
      static_cast<double>(rows * nt * n) * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void register_all() {
  if (static_cast<int>(detected_isa()) < static_cast<int>(Isa::kAvx2)) return;
  const uint32_t types[] = {kTypeQ4_0, kTypeQ4_1, kTypeQ5_0, kTypeQ5_1, kTypeQ8_0};
  const int64_t shapes[][3] = {{16, 128, 2048}, {16, 128, 5632}, {16, 4, 2048}};
  for (uint32_t type : types) {
    for (const auto& sh : shapes) {
      for (bool g : {false, true}) {
        const std::string name = std::string(quant_traits(type)->name) + (g ? "/gemm" : "/vec_dot") + "/nr" +
                                 std::to_string(sh[0]) + "_nt" + std::to_string(sh[1]) + "_n" + std::to_string(sh[2]);
        benchmark::RegisterBenchmark(name.c_str(), bm, type, g, sh[0], sh[1], sh[2])->Unit(benchmark::kMicrosecond);
      }
    }
    // 8192 rows x 5632: 49 MB in Q8_0, 26 MB in Q4_0 (beyond the 32 MiB L3 for Q8_0), 128 tokens (pp128).
    const std::string name = std::string(quant_traits(type)->name) + "/matrix/8192x5632_nt128";
    benchmark::RegisterBenchmark(name.c_str(), bm_matrix, type, int64_t{8192}, int64_t{128}, int64_t{5632})
        ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace
}  // namespace cw::kernels

int main(int argc, char** argv) {
  cw::kernels::register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
