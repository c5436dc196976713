// Scalar reference ops of the forward pass (pointer + size; no tensor classes).
//
// What and why: these are the plain, obviously-correct versions of every op the model runs. The forward
// pass uses them until optimised kernels exist, and later the optimised kernels are tested against them.
// Numerics follow llama.cpp where it matters for matching its logits: RMSNorm accumulates in double;
// RoPE angles are computed in double from the integer position (exact at any position, see AnchorAttention)
// and only cos/sin are rounded to fp32.
#pragma once

#include <cstdint>

namespace cw::kernels {

// y[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]   (w may be nullptr: no weight). x and y may alias.
void rms_norm_ref(const float* x, const float* w, float* y, int64_t n, float eps);

// The type activations are rounded to before a dot product with weights of `w_type` (as llama.cpp does):
// F32 -> F32, F16 -> F16, BF16 -> BF16, Q4_0/Q5_0/Q8_0 -> Q8_0, Q4_1/Q5_1 -> Q8_1, k-quants -> Q8_K.
uint32_t activation_type(uint32_t w_type);

// y[t, o] = sum_i W[o, i] * x'[t, i] (+ bias[o])  for t < n_tokens, o < n_out.
// W is [n_out, n_in] in GGML type `w_type` (each row contiguous, n_in a multiple of the block size).
// x is [n_tokens, n_in] fp32, y is [n_tokens, n_out]. x' is x rounded through activation_type(w_type)
// (quantize + dequantize); weight rows are dequantized to fp32 and the dot product accumulates in fp32.
void matmul_ref(const void* w, uint32_t w_type, int64_t n_in, int64_t n_out, const float* x, int64_t n_tokens,
                float* y, const float* bias = nullptr);

// Dequantizes row `row` of a [n_rows, n_cols] matrix of GGML type `type` into dst[n_cols].
void get_row_ref(const void* w, uint32_t type, int64_t n_cols, int64_t row, float* dst);

enum class RopeStyle { kNormal, kNeox };
// Rotates the first n_rot dims of each of n_heads vectors of size head_dim, in place, at `pos`.
// kNormal rotates pairs (2i, 2i+1); kNeox rotates pairs (i, i + n_rot/2). theta_i = pos * freq_scale *
// base^(-2i/n_rot) * (freq_factors ? 1/freq_factors[i] : 1).
void rope_ref(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, double pos, double base, double freq_scale,
              RopeStyle style, const float* freq_factors = nullptr);
// rope_ref in two steps, so that a forward pass computes a position's angles once for all heads and layers:
// rope_angles writes cs[2i] = cos(theta_i), cs[2i + 1] = sin(theta_i) (fp32, i < n_rot / 2) and rope_apply
// rotates with them. rope_ref is exactly rope_angles then rope_apply.
void rope_angles(double pos, int64_t n_rot, double base, double freq_scale, const float* freq_factors, float* cs);
void rope_apply(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, RopeStyle style, const float* cs);

// In-place softmax over n values (max-subtracted, fp32 exp, double sum).
void softmax_ref(float* x, int64_t n);

// y[i] = silu(g[i]) * u[i].
void swiglu_ref(const float* g, const float* u, float* y, int64_t n);

}  // namespace cw::kernels
