// y = W x for a batch of activation rows, on the thread pool, with the ISA's dot kernels.
//
// What and why: decode (n_tokens = 1) is a GEMV that must stream the weight matrix once at memory speed,
// split across threads by contiguous row ranges; prefill reuses each block of weight rows for every
// token while it is in L1/L2. Activations are rounded once per call into the weight type's activation
// type (dispatch.h), exactly as the reference matmul_ref does, so both agree to fp32 summation order.
#pragma once

#include <cstdint>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/cpu/dispatch.h"

namespace cw::kernels {

// Reusable buffer for quantized activations (grows to the largest call; no allocation afterwards).
struct MatmulScratch {
  std::vector<uint8_t> act;
};

// W is [n_out, n_in] in GGML type `w_type` (rows contiguous); x is [n_tokens, n_in]; y is [n_tokens, n_out];
// bias [n_out] or nullptr. Types without kernels are a bug (CW_CHECK): callers validate at model load.
//
// Row invariance: with n_tokens >= 2 (the multi-row path), each output row is computed in an order that does
// not depend on the other rows of the call. n_tokens == 1 takes the GEMV path, whose fp32 summation order
// differs for quantized types; `multi_row_path` = true makes a single row take the multi-row path too, so
// that a row's bits never depend on how rows are grouped into calls (batch-invariant decoding; slower for
// one row because the multi-row kernels repack the weights they read).
void matmul(const void* w, uint32_t w_type, int64_t n_in, int64_t n_out, const float* x, int64_t n_tokens, float* y,
            const float* bias, ThreadPool& pool, MatmulScratch& scratch, bool multi_row_path = false);

// True if `w_type` has dot kernels on every ISA (used to validate weights at load).
bool matmul_supports(uint32_t w_type);

}  // namespace cw::kernels
