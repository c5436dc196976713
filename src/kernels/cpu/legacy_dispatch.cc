// Registry of the legacy quant family: maps (weight type, ISA) to that ISA's table (legacy_kernels.h).
// dot_kernels() (dispatch.cc) walks ISAs downwards, so returning nullptr here for an ISA falls back to a
// lower one. Also the family's shared GEMM scratch (legacy_kernels.h).
#include <cstdint>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/legacy_kernels.h"

namespace cw::kernels {

const DotKernels* legacy_dot_kernels(uint32_t w_type, Isa isa) {
  switch (isa) {
    case Isa::kScalar: return legacy_scalar_kernels(w_type);
    case Isa::kAvx2: return legacy_avx2_kernels(w_type);
    case Isa::kAvx512: return legacy_avx512_kernels(w_type);
  }
  return nullptr;
}

uint8_t* legacy_gemm_scratch(size_t bytes) {
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < bytes + 64) buf.resize(bytes + 64);
  const auto addr = reinterpret_cast<uintptr_t>(buf.data());
  return buf.data() + (64 - addr % 64) % 64;
}

}  // namespace cw::kernels
