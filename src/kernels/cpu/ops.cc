#include "kernels/cpu/ops.h"

#include <algorithm>
#include <vector>

#include "base/status.h"
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

void rope_reposition_apply(void* k, KvElem elem, int64_t n_rows, int64_t row_stride, int64_t n_head_kv,
                           int64_t head_dim, int64_t n_rot, RopeStyle style, const float* coeffs) {
  CW_CHECK(n_rot % 2 == 0 && n_rot >= 0 && n_rot <= head_dim && n_rows >= 0 && n_head_kv >= 0);
  CW_CHECK(n_rows <= 1 || row_stride >= n_head_kv * head_dim);
  if (n_rows == 0 || n_rot == 0 || n_head_kv == 0) return;
  if (active_isa() != Isa::kScalar)
    rope_reposition_apply_avx2(k, elem, n_rows, row_stride, n_head_kv, head_dim, n_rot, style, coeffs);
  else
    rope_reposition_apply_ref(k, elem, n_rows, row_stride, n_head_kv, head_dim, n_rot, style, coeffs);
}

void rope_reposition(void* k, KvElem elem, int64_t n_rows, int64_t row_stride, int64_t n_head_kv, int64_t head_dim,
                     int64_t n_rot, const double* old_pos, const double* new_pos, double base, double freq_scale,
                     RopeStyle style, const float* freq_factors) {
  CW_CHECK(n_rot % 2 == 0 && n_rot >= 0 && n_rot <= head_dim && n_rows >= 0);
  // Coefficients for a few rows at a time (the angles dominate the cost: 2 x n_rot/2 cos, sin and pow per row;
  // callers moving a slot in every layer should compute them once with rope_reposition_coeffs instead).
  constexpr int64_t kRows = 16;
  const int64_t nc = rope_reposition_coeff_floats(n_rot), esz = elem == KvElem::kF16 ? 2 : 4;
  std::vector<float> cf(static_cast<size_t>(kRows * nc));
  for (int64_t r0 = 0; r0 < n_rows; r0 += kRows) {
    const int64_t nr = std::min(kRows, n_rows - r0);
    for (int64_t r = 0; r < nr; ++r)
      rope_reposition_coeffs(old_pos[r0 + r], new_pos[r0 + r], n_rot, base, freq_scale, freq_factors,
                             cf.data() + r * nc);
    rope_reposition_apply(static_cast<uint8_t*>(k) + r0 * row_stride * esz, elem, nr, row_stride, n_head_kv, head_dim,
                          n_rot, style, cf.data());
  }
}

}  // namespace cw::kernels
