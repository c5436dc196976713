// Per-ISA kernel tables of the legacy quant family (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 weights, Q8_0/Q8_1 activations).
//
// Internal to cw_kernels: legacy_dispatch.cc picks one of these tables; tests and benches reach them through
// dot_kernels(w_type, isa) (dispatch.h). Each function returns nullptr for a type it does not cover. The
// AVX2 and AVX-512 tables live in translation units compiled for those ISAs: call them only when
// detected_isa() allows (dispatch does).
//
// Numerics shared by all three ISAs (the scalar file is the readable statement of them): per 32-element block
// the integer dot of the codes is exact (int32); it is scaled by d_w and d_a (two fp32 roundings) and, for
// Q4_1/Q5_1, the block adds m_w * s_a where s_a is the Q8_1 block's stored fp16 s = d_a * sum(q_a) (as in
// llama.cpp; it differs from the exact d_a * sum(q_a) by the fp16 rounding of s). Blocks accumulate in fp32
// in an ISA-specific order, so results agree across ISAs to fp32 rounding, not bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/dispatch.h"

namespace cw::kernels {

const DotKernels* legacy_scalar_kernels(uint32_t w_type);
const DotKernels* legacy_avx2_kernels(uint32_t w_type);
const DotKernels* legacy_avx512_kernels(uint32_t w_type);

// fp16 -> fp32 for all 65536 bit patterns (exact, fp16_to_fp32), built on first call (thread-safe) by
// baseline code, so that any ISA's kernel can load a block scale and broadcast it in one instruction.
const float* legacy_half_table();

// AVX2 prefill GEMM of a legacy weight type (legacy_gemm_avx2.cc); nullptr for other types.
GemmFn legacy_avx2_gemm(uint32_t w_type);
// The ActSumsFn of its offset types (Q4_0, Q5_0: Q8_0 activations); nullptr for the others.
ActSumsFn legacy_avx2_act_sums(uint32_t w_type);

// A thread-local buffer of at least `bytes` bytes, 64-byte aligned, owned by the calling thread and reused
// by its next call (contents not preserved when it grows). For the GEMMs' repacked weight panels.
uint8_t* legacy_gemm_scratch(size_t bytes);

}  // namespace cw::kernels
