// Element-wise steps of the forward pass in their fast form, dispatched on the active ISA (dispatch.h).
// ops_ref.h holds the references they are tested against.
#pragma once

#include <cstdint>

#include "kernels/cpu/ops_ref.h"

namespace cw::kernels {

// y[i] = silu(g[i]) * u[i] = g / (1 + e^-g) * u; y may alias g or u. The AVX2 path uses an 8-lane exp
// (x86_simd.h exp8, within ~2 ulp of expf): within a few ulp of swiglu_ref. Each element's result depends
// only on g[i] and u[i] (not on n or i), so applying it to pieces of an array equals one call.
void swiglu(const float* g, const float* u, float* y, int64_t n);
void swiglu_avx2(const float* g, const float* u, float* y, int64_t n);  // callers check the ISA
// swiglu on n_rows rows of n_cols values at stride ld (the same stride for g, u and y): one call for a block of
// columns of every token's row, as the fused gate/up matmul produces them.
void swiglu_rows(const float* g, const float* u, float* y, int64_t n_rows, int64_t n_cols, int64_t ld);
void swiglu_rows_avx2(const float* g, const float* u, float* y, int64_t n_rows, int64_t n_cols, int64_t ld);

// Moving cached keys to other RoPE positions: rope_reposition_apply_ref / rope_reposition_ref (ops_ref.h, which
// states the contract and numerics) on the active ISA. Every ISA gives the reference's bits exactly: all
// products are exact in fp64 and the sums run in the reference's order, so FMA contraction changes nothing.
void rope_reposition_apply(void* k, KvElem elem, int64_t n_rows, int64_t row_stride, int64_t n_head_kv,
                           int64_t head_dim, int64_t n_rot, RopeStyle style, const float* coeffs);
void rope_reposition(void* k, KvElem elem, int64_t n_rows, int64_t row_stride, int64_t n_head_kv, int64_t head_dim,
                     int64_t n_rot, const double* old_pos, const double* new_pos, double base, double freq_scale,
                     RopeStyle style, const float* freq_factors = nullptr);
// The ISA bodies (callers check the ISA and the arguments; rope_reposition_apply does both).
void rope_reposition_apply_avx2(void* k, KvElem elem, int64_t n_rows, int64_t row_stride, int64_t n_head_kv,
                                int64_t head_dim, int64_t n_rot, RopeStyle style, const float* coeffs);

}  // namespace cw::kernels
