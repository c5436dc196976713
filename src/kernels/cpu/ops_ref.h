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

// ---- Moving cached keys to other RoPE positions (StreamingLLM's sink+window, chunk reuse) ----
//
// A cached key row was stored as K_old = R(cs_old) k, where cs_old = rope_angles(old_pos) (the fp32 table the
// forward pass rotated it with). Repositioning rewrites it as R(cs_new) R(cs_old)^-1 K_old, cs_new =
// rope_angles(new_pos): the angles always come from the exact positions, so a key moved any number of times
// has the angles of its last position; no delta rotation is ever accumulated. R(cs) is the 2x2 matrix
// [[c, -s], [s, c]] of rope_apply; its inverse is [[c, s], [-s, c]] / (c^2 + s^2) (the fp32 table is not
// exactly orthonormal; dividing by c^2 + s^2 makes the move the exact inverse of the rotation applied).
//
// Numerics (the same on every ISA, bit for bit): per rotated pair the composed matrix is formed in fp64 from
// the fp32 tables and split into fp32 hi + lo parts (|hi + lo - exact| <~ 2^-48); the stored values (fp32, or
// fp16 widened exactly) times those parts are exact fp64 products, summed in a fixed order in fp64, and the
// result is rounded once to fp32 (then, for fp16 storage, to fp16: the same fp32 -> fp16 rounding the forward
// pass applies when it stores a key). So each output is the fp32 rounding (0.5 ulp) of the exact composed
// rotation of the stored values, up to ~1e-14 relative; FMA contraction cannot change a bit because every
// product is exact. Moving to the same position is the identity, bit for bit.

// How cached key rows are stored.
enum class KvElem { kF32, kF16 };  // fp32, or IEEE fp16 bit patterns (uint16_t)

// Coefficients of one row's move, 2 * n_rot floats, planar: [chi, clo, shi, slo], each n_rot / 2 long, where
// chi[i] + clo[i] = cos and shi[i] + slo[i] = sin of the composed rotation of pair i (i < n_rot / 2).
// Computed from rope_angles(old_pos) and rope_angles(new_pos) with the forward pass's parameters. They depend
// only on the two positions, so one call serves every head and every layer of a moved slot.
inline constexpr int64_t rope_reposition_coeff_floats(int64_t n_rot) { return 2 * n_rot; }
void rope_reposition_coeffs(double old_pos, double new_pos, int64_t n_rot, double base, double freq_scale,
                            const float* freq_factors, float* coeffs);

// Applies per-row coefficients in place: row r (r < n_rows) is [n_head_kv, head_dim] elements of type `elem`
// starting at k + r * row_stride elements, moved with coeffs + r * rope_reposition_coeff_floats(n_rot). Only the
// first n_rot dims of each head are rewritten (n_rot even, <= head_dim; pairs as in rope_apply for `style`);
// everything else, including the gap between rows (row_stride >= n_head_kv * head_dim), is not touched.
// n_rows == 0 does nothing (k may then be nullptr). Rows must not overlap.
void rope_reposition_apply_ref(void* k, KvElem elem, int64_t n_rows, int64_t row_stride, int64_t n_head_kv,
                               int64_t head_dim, int64_t n_rot, RopeStyle style, const float* coeffs);

// rope_reposition_coeffs for each row (old_pos[r] -> new_pos[r]) then rope_reposition_apply_ref.
void rope_reposition_ref(void* k, KvElem elem, int64_t n_rows, int64_t row_stride, int64_t n_head_kv, int64_t head_dim,
                         int64_t n_rot, const double* old_pos, const double* new_pos, double base, double freq_scale,
                         RopeStyle style, const float* freq_factors = nullptr);

// In-place softmax over n values (max-subtracted, fp32 exp, double sum).
void softmax_ref(float* x, int64_t n);

// y[i] = silu(g[i]) * u[i].
void swiglu_ref(const float* g, const float* u, float* y, int64_t n);

}  // namespace cw::kernels
