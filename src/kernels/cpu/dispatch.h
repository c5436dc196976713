// Runtime ISA dispatch for the CPU kernels.
//
// What and why: one binary must run on any x86-64 with AVX2 and use AVX-512 (VNNI, BF16) where present,
// so each ISA's kernels live in their own translation unit compiled with that ISA's flags (see
// src/kernels/CMakeLists.txt) and are picked at run time here. A scalar path is always available and is
// the fallback on other CPUs. `CW_ISA=scalar|avx2|avx512` in the environment (or set_isa in tests)
// forces a lower path, so every path can be tested on one machine.
//
// The unit of dispatch is a weight type's DotKernels: how to quantize an activation row into the type its
// dot products consume (activation_type() in ops_ref.h, as llama.cpp does) and the dot product of one
// weight row with one such activation row. Families register their kernels through one function each
// (legacy quants, k-quants, float types); dot_kernels() asks them in order for the requested ISA and falls
// back to a lower ISA when a family has no kernel for it.
#pragma once

#include <cstdint>

namespace cw::kernels {

enum class Isa : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };
const char* isa_name(Isa isa);

// Best ISA this CPU supports (AVX2 needs AVX2+FMA+F16C; AVX512 needs F, BW, VL, DQ, VNNI).
Isa detected_isa();
// detected_isa(), lowered by $CW_ISA or set_isa().
Isa active_isa();
// Forces the active ISA (clamped to detected_isa()); returns the ISA now active. For tests and benches.
Isa set_isa(Isa isa);
// True if the CPU also has AVX512_BF16 (used by the BF16 kernels of the AVX512 path).
bool cpu_has_avx512_bf16();

// sum_i W[i] * A[i] over n elements of one weight row `w` (in the weight type) and one activation row `a`
// (in the activation type). n is a multiple of both block sizes. Pointers need no alignment.
using VecDotFn = float (*)(int64_t n, const void* w, const void* a);
// Quantizes n floats into the activation type. Must produce exactly the bytes of the reference quantizer
// of that type (quant_ref.h), so optimised and reference paths see identical activations.
using QuantizeActFn = void (*)(const float* x, void* dst, int64_t n);

// Optional multi-row x multi-token kernel for prefill: y[t * ldy + r] = sum_i W_r[i] * A_t[i] for r < nr,
// t < nt, where row r of W starts at w + r * w_stride bytes and row t of A at a + t * a_stride bytes.
// Tiles rows and tokens in registers so each loaded weight block serves several tokens (and each
// activation block several rows). Must agree with vec_dot to fp32 summation order.
// a_sums: nullptr, or (for kernels with act_sums) the act_sums of every activation row, [nt, n / 32].
using GemmFn = void (*)(int64_t n, const void* w, int64_t w_stride, int64_t nr, const void* a, int64_t a_stride,
                        int64_t nt, float* y, int64_t ldy, const int32_t* a_sums);

// Optional, for GEMMs of offset formats (Q4_0, Q5_0: w = q - offset): the sum of the int8 codes of each
// 32-element block of one activation row (n / 32 values). The sums depend only on the activations, so
// matmul computes them once per call and hands them to every row block's gemm (which otherwise recomputes
// them per call).
using ActSumsFn = void (*)(const void* a, int64_t n, int32_t* sums);

// Optional multi-row GEMV for decode (one token): y[r] = sum_i W_r[i] * A[i] for r < nr (any nr >= 1), row r
// of W at w + r * w_stride bytes, one activation row a. Shares each activation block's load, scale and (for
// offset formats) its offset term across the rows of a register tile, where vec_dot redoes them per row.
// Must agree with vec_dot to fp32 summation order.
using GemvFn = void (*)(int64_t n, const void* w, int64_t w_stride, int64_t nr, const void* a, float* y);

struct DotKernels {
  uint32_t w_type;
  uint32_t a_type;
  QuantizeActFn quantize_act;
  VecDotFn vec_dot;
  Isa isa;               // the ISA these kernels were written for
  GemmFn gemm = nullptr;  // optional; matmul falls back to vec_dot per (row, token)
  GemvFn gemv = nullptr;  // optional; matmul's one-token path falls back to vec_dot per row
  ActSumsFn act_sums = nullptr;  // optional; see ActSumsFn
};

// Kernels for weight type `w_type` at the highest ISA <= `isa` that has them; nullptr if the type has no
// kernels at all.
const DotKernels* dot_kernels(uint32_t w_type, Isa isa);
inline const DotKernels* dot_kernels(uint32_t w_type) { return dot_kernels(w_type, active_isa()); }

// Family registries (one per family of types; each returns nullptr for types or ISAs it does not cover).
const DotKernels* legacy_dot_kernels(uint32_t w_type, Isa isa);  // Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 (legacy_*.cc)
const DotKernels* kquant_dot_kernels(uint32_t w_type, Isa isa);  // Q2_K .. Q6_K (kquant_*.cc)
const DotKernels* float_dot_kernels(uint32_t w_type, Isa isa);   // F32 F16 BF16 (float_*.cc)

}  // namespace cw::kernels
