// Prefill GEMM micro-benchmark of the k-quant kernels (kernels/cpu/kquant_gemm_x86.h): one call of the
// matmul driver's shape, a block of nr weight rows x nt tokens of Q8_K activations, single thread, timed
// as DotKernels::gemm and as the per-pair vec_dot loop it replaces (the matmul fallback). The rate is
// multiply-accumulates per second (nr * nt * n per call). Weights: random bytes with sane fp16 scales
// (speed does not depend on the code values).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {
namespace {

struct Setup {
  std::vector<uint8_t> w, a;
  int64_t w_row = 0, a_row = 0;
  std::vector<float> y;
};

Setup make(const DotKernels& k, uint32_t type, int64_t nr, int64_t nt, int64_t n) {
  Setup s;
  const QuantTraits* t = quant_traits(type);
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  s.w_row = quant_row_bytes(*t, n);
  s.w.resize(static_cast<size_t>(s.w_row * nr));
  for (int64_t r = 0; r < nr; ++r) {
    for (auto& v : x) v = g(rng);
    t->quantize(x.data(), s.w.data() + r * s.w_row, n);
  }
  s.a_row = n / kQK_K * static_cast<int64_t>(sizeof(BlockQ8_K));
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
  Setup s = make(*k, type, nr, nt, n);
  for (auto _ : state) {
    if (use_gemm) {
      k->gemm(n, s.w.data(), s.w_row, nr, s.a.data(), s.a_row, nt, s.y.data(), nr, nullptr);
    } else {
      for (int64_t t = 0; t < nt; ++t)
        for (int64_t r = 0; r < nr; ++r) s.y[t * nr + r] = k->vec_dot(n, s.w.data() + r * s.w_row, s.a.data() + t * s.a_row);
    }
    benchmark::DoNotOptimize(s.y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(nr * nt * n) * 1e-9 *
                                                    static_cast<double>(state.iterations()),
                                                benchmark::Counter::kIsRate);
}

void register_all() {
  if (static_cast<int>(detected_isa()) < static_cast<int>(Isa::kAvx2)) return;
  const uint32_t types[] = {kTypeQ2_K, kTypeQ3_K, kTypeQ4_K, kTypeQ5_K, kTypeQ6_K};
  const int64_t shapes[][3] = {{16, 128, 2048}, {4, 128, 8192}, {7, 128, 8192}};
  for (uint32_t type : types) {
    for (const auto& sh : shapes) {
      for (bool g : {false, true}) {
        const std::string name = std::string(quant_traits(type)->name) + (g ? "/gemm" : "/vec_dot") + "/nr" +
                                 std::to_string(sh[0]) + "_nt" + std::to_string(sh[1]) + "_n" + std::to_string(sh[2]);
        benchmark::RegisterBenchmark(name.c_str(), bm, type, g, sh[0], sh[1], sh[2])->Unit(benchmark::kMicrosecond);
      }
    }
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
