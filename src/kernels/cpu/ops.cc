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

void swiglu_rows(const float* g, const float* u, float* y, int64_t n_rows, int64_t n_cols, int64_t ld) {
  if (active_isa() != Isa::kScalar) {
    swiglu_rows_avx2(g, u, y, n_rows, n_cols, ld);
    return;
  }
  for (int64_t r = 0; r < n_rows; ++r) swiglu_ref(g + r * ld, u + r * ld, y + r * ld, n_cols);
}

}  // namespace cw::kernels
