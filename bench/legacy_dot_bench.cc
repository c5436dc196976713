// GEMV micro-benchmark of the legacy quant dot kernels (kernels/cpu/legacy_*.cc): y = W x for one
// activation row, single thread, every weight type (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0) x every ISA this CPU runs.
// Shapes are rows x n: 2048x2048 and 8192x2048 (2.4-17.8 MB: past L2, inside a 32 MB L3) and 8192x8192
// (9.4-71 MB: mostly DRAM). Reported bytes are weight bytes read per GEMV, so bytes_per_second is the
// weight-read bandwidth to compare with the core's memory bandwidth. The activation is quantized once
// outside the timed loop (as a matmul driver does); quantize_act has its own benchmark.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {
namespace {

const uint32_t kWTypes[] = {kTypeQ4_0, kTypeQ4_1, kTypeQ5_0, kTypeQ5_1, kTypeQ8_0};

struct Matrix {
  std::vector<uint8_t> w;
  int64_t row_bytes = 0;
};

// Weight matrices are built once per (type, rows, n) and shared by the ISAs.
const Matrix& matrix(uint32_t type, int64_t rows, int64_t n) {
  static std::map<std::tuple<uint32_t, int64_t, int64_t>, std::unique_ptr<Matrix>> cache;
  auto& slot = cache[{type, rows, n}];
  if (!slot) {
    slot = std::make_unique<Matrix>();
    const QuantTraits* t = quant_traits(type);
    slot->row_bytes = quant_row_bytes(*t, n);
    slot->w.resize(static_cast<size_t>(slot->row_bytes * rows));
    std::mt19937 rng(static_cast<uint32_t>(type * 131 + rows + n));
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> row(static_cast<size_t>(n));
    for (int64_t r = 0; r < rows; ++r) {
      for (auto& v : row) v = nd(rng);
      t->quantize(row.data(), slot->w.data() + r * slot->row_bytes, n);
    }
  }
  return *slot;
}

// multi: one DotKernels::gemv call over all rows (the decode path of matmul) instead of vec_dot per row.
void bm_gemv(benchmark::State& state, uint32_t type, Isa isa, int64_t rows, int64_t n, bool multi) {
  const DotKernels* k = dot_kernels(type, isa);
  if (k == nullptr || k->isa != isa) {
    state.SkipWithError("no legacy kernel for this ISA");
    return;
  }
  const Matrix& m = matrix(type, rows, n);
  const QuantTraits* at = quant_traits(k->a_type);
  std::vector<float> x(static_cast<size_t>(n));
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : x) v = nd(rng);
  std::vector<uint8_t> a(static_cast<size_t>(quant_row_bytes(*at, n)));
  k->quantize_act(x.data(), a.data(), n);
  std::vector<float> y(static_cast<size_t>(rows));
  if (multi && k->gemv == nullptr) {
    state.SkipWithError("no gemv for this type / ISA");
    return;
  }
  for (auto _ : state) {
    if (multi)
      k->gemv(n, m.w.data(), m.row_bytes, rows, a.data(), y.data());
    else
      for (int64_t r = 0; r < rows; ++r) y[r] = k->vec_dot(n, m.w.data() + r * m.row_bytes, a.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(m.w.size()));
  state.counters["MiB"] = static_cast<double>(m.w.size()) / (1 << 20);
}

void bm_quantize_act(benchmark::State& state, uint32_t w_type, Isa isa, int64_t n) {
  const DotKernels* k = dot_kernels(w_type, isa);
  const QuantTraits* at = quant_traits(k->a_type);
  std::vector<float> x(static_cast<size_t>(n));
  std::mt19937 rng(4);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : x) v = nd(rng);
  std::vector<uint8_t> a(static_cast<size_t>(quant_row_bytes(*at, n)));
  for (auto _ : state) {
    k->quantize_act(x.data(), a.data(), n);
    benchmark::DoNotOptimize(a.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n * static_cast<int64_t>(sizeof(float)));
}

void register_all() {
  const Isa detected = detected_isa();
  const std::pair<int64_t, int64_t> shapes[] = {{2048, 2048}, {8192, 2048}, {8192, 8192}};
  for (auto [rows, n] : shapes) {
    for (uint32_t type : kWTypes) {
      for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
        if (static_cast<int>(isa) > static_cast<int>(detected)) continue;
        const std::string name = std::string("gemv/") + quant_traits(type)->name + "/" + isa_name(isa) + "/" +
                                 std::to_string(rows) + "x" + std::to_string(n);
        benchmark::RegisterBenchmark(name.c_str(), bm_gemv, type, isa, rows, n, false)->Unit(benchmark::kMicrosecond);
        const DotKernels* k = dot_kernels(type, isa);
        if (k != nullptr && k->isa == isa && k->gemv != nullptr)
          benchmark::RegisterBenchmark(("gemv_rows/" + name.substr(5)).c_str(), bm_gemv, type, isa, rows, n, true)
              ->Unit(benchmark::kMicrosecond);
      }
    }
  }
  for (uint32_t type : {kTypeQ8_0, kTypeQ4_1}) {  // Q8_0 and Q8_1 activation quantizers
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
      if (static_cast<int>(isa) > static_cast<int>(detected)) continue;
      const uint32_t a_type = dot_kernels(type, Isa::kScalar)->a_type;
      const std::string name =
          std::string("quantize_act/") + quant_traits(a_type)->name + "/" + isa_name(isa) + "/4096";
      benchmark::RegisterBenchmark(name.c_str(), bm_quantize_act, type, isa, int64_t{4096});
    }
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
