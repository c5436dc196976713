// y = W x for a batch of activation rows, on the thread pool, with the ISA's dot kernels.
//
// What and why: decode (n_tokens = 1) is a GEMV that must stream the weight matrix once at memory speed,
// split across threads by contiguous row ranges; prefill reuses each block of weight rows for every
// token while it is in L1/L2. Activations are rounded once per call into the weight type's activation
// type (dispatch.h), exactly as the reference matmul_ref does, so both agree to fp32 summation order.
//
// matmul_group runs several matrices that read the same input (a layer's Q, K, V; its gate and up) as one
// pool dispatch: one activation quantization per activation type and one synchronisation instead of one per
// matrix (a 1B model's decode step issues ~8 dispatches per layer otherwise), and it fuses the element-wise
// steps that follow a matmul in a llama layer into the same pass over the output rows: the residual add
// (x += W·h) and SwiGLU (silu(gate) * up), so those never run as a serial pass of thread 0.
#pragma once

#include <cstdint>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/cpu/dispatch.h"

namespace cw::kernels {

// Reusable buffers for quantized activations, one per activation type of a group (grows to the largest
// call; no allocation afterwards).
struct MatmulScratch {
  std::vector<uint8_t> act[3];
  std::vector<int32_t> sums[3];  // per activation type: its code sums when a GEMM wants them (ActSumsFn)
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

// One matrix of a matmul_group: y = W x (+ bias); then, if `residual` is set, residual += y element by
// element (residual is [n_tokens, n_out] like y; the same fp32 additions as a separate loop would do).
struct MatmulPart {
  const void* w = nullptr;
  uint32_t w_type = 0;
  int64_t n_out = 0;
  float* y = nullptr;
  const float* bias = nullptr;
  float* residual = nullptr;
};

enum class MatmulEpilogue {
  kNone,
  // Exactly two parts, gate then up, of equal n_out: once a block of rows of both is done, the gate rows
  // become silu(gate) * up (swiglu, ops.h); the up rows keep W_up x.
  kSwiGlu,
};

// Every part reads x ([n_tokens, n_in]); at most 3 distinct activation types (matmul.cc checks). Each part's
// rows are computed exactly as matmul() computes them, whatever the grouping.
void matmul_group(const MatmulPart* parts, int n_parts, int64_t n_in, const float* x, int64_t n_tokens,
                  ThreadPool& pool, MatmulScratch& scratch, bool multi_row_path = false,
                  MatmulEpilogue epilogue = MatmulEpilogue::kNone);

// True if `w_type` has dot kernels on every ISA (used to validate weights at load).
bool matmul_supports(uint32_t w_type);

}  // namespace cw::kernels
