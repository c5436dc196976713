// Registry of the legacy quant family: maps (weight type, ISA) to that ISA's table (legacy_kernels.h).
// dot_kernels() (dispatch.cc) walks ISAs downwards, so returning nullptr here for an ISA falls back to a
// lower one.
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

}  // namespace cw::kernels
