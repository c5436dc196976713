#include "kernels/cpu/ops.h"

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/ops_ref.h"

namespace cw::kernels {

void swiglu(const float* g, const float* u, float* y, int64_t n) {
  if (active_isa() != Isa::kScalar)
    swiglu_avx2(g, u, y, n);
  else
    swiglu_ref(g, u, y, n);
}

}  // namespace cw::kernels
