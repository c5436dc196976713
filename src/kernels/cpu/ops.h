// Element-wise steps of the forward pass in their fast form, dispatched on the active ISA (dispatch.h).
// ops_ref.h holds the references they are tested against.
#pragma once

#include <cstdint>

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

}  // namespace cw::kernels
