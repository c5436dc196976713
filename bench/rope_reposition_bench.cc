// rope_reposition micro-benchmark (kernels/cpu/ops.h): moving cached key rows to other RoPE positions, single
// thread, per ISA, fp16 and fp32 storage. A row is one slot of one layer, [n_head_kv = 8, head_dim = 128] with
// n_rot = 128 (a Llama-style KV row), 4,096 rows per call (8 MB fp16, 16 MB fp32: past L2). "apply" uses
// coefficients computed beforehand (one set serves every layer of a moved slot); "full" computes them per row
// (rope_angles twice: 128 cos/sin/pow in fp64). bytes_per_second counts each row read and written once, to
// compare with the machine's memory bandwidth (cw_membw).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/ops.h"

namespace cw::kernels {
namespace {

constexpr int64_t kHeads = 8, kDim = 128, kRot = 128, kRows = 4096, kRowElems = kHeads * kDim;

void bm_reposition(benchmark::State& state, Isa isa, KvElem elem, bool full) {
  if (static_cast<int>(isa) > static_cast<int>(detected_isa())) {
    state.SkipWithError("ISA not available");
    return;
  }
  set_isa(isa);
  const int64_t esz = elem == KvElem::kF16 ? 2 : 4;
  std::vector<uint8_t> k(static_cast<size_t>(kRows * kRowElems * esz));
  std::mt19937 rng(1);
  for (auto& b : k) b = static_cast<uint8_t>(rng() & 0x3b);  // finite values either way
  std::vector<double> from(kRows), to(kRows);
  for (int64_t r = 0; r < kRows; ++r) {
    from[size_t(r)] = 4096.0 + double(r);
    to[size_t(r)] = from[size_t(r)] - 16.0;
  }
  const int64_t nc = rope_reposition_coeff_floats(kRot);
  std::vector<float> cf(static_cast<size_t>(kRows * nc));
  for (int64_t r = 0; r < kRows; ++r)
    rope_reposition_coeffs(from[size_t(r)], to[size_t(r)], kRot, 10000.0, 1.0, nullptr, cf.data() + r * nc);
  for (auto _ : state) {
    if (full)
      rope_reposition(k.data(), elem, kRows, kRowElems, kHeads, kDim, kRot, from.data(), to.data(), 10000.0, 1.0,
                      RopeStyle::kNeox);
    else
      rope_reposition_apply(k.data(), elem, kRows, kRowElems, kHeads, kDim, kRot, RopeStyle::kNeox, cf.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kRows);  // rows/s
  state.SetBytesProcessed(state.iterations() * kRows * kRowElems * esz * 2);
  set_isa(detected_isa());
}

const int kRegistered = [] {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2})
    for (KvElem elem : {KvElem::kF16, KvElem::kF32})
      for (bool full : {false, true}) {
        const std::string name = std::string("rope_reposition/") + (full ? "full/" : "apply/") +
                                 (elem == KvElem::kF16 ? "f16/" : "f32/") + isa_name(isa);
        benchmark::RegisterBenchmark(name.c_str(), bm_reposition, isa, elem, full)->Unit(benchmark::kMicrosecond);
      }
  return 0;
}();

}  // namespace
}  // namespace cw::kernels

BENCHMARK_MAIN();
