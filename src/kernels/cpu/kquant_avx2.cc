// K-quant dot kernels (Q2_K .. Q6_K x Q8_K) and the Q8_K activation quantizer for AVX2 + FMA + F16C
// (compiled with those flags only; selected at run time by cpu/dispatch.h).
//
// What and why: the bodies live in kquant_x86_impl.h (shared with the AVX-512 file, which compiles them
// with VNNI); see there for the scheme, and kquant_gemm_x86.h for the prefill GEMM. This file only
// instantiates them for AVX2 and registers them.
#include "kernels/cpu/kquant_kernels.h"
#include "kernels/cpu/kquant_x86_impl.h"
#include "kernels/cpu/kquant_gemm_x86.h"

namespace cw::kernels {
namespace {

constexpr DotKernels kAvx2[] = {
    {kTypeQ2_K, kTypeQ8_K, quantize_row_q8_K_avx2, vec_dot_q2_K, Isa::kAvx2,
     gemm_kquant<kexp_q2_K, true>},
    {kTypeQ3_K, kTypeQ8_K, quantize_row_q8_K_avx2, vec_dot_q3_K, Isa::kAvx2,
     gemm_kquant<kexp_q3_K, false>},
    {kTypeQ4_K, kTypeQ8_K, quantize_row_q8_K_avx2, vec_dot_q45_K<4>, Isa::kAvx2,
     gemm_kquant<kexp_q45_K<4>, true>},
    {kTypeQ5_K, kTypeQ8_K, quantize_row_q8_K_avx2, vec_dot_q45_K<5>, Isa::kAvx2,
     gemm_kquant<kexp_q45_K<5>, true>},
    {kTypeQ6_K, kTypeQ8_K, quantize_row_q8_K_avx2, vec_dot_q6_K, Isa::kAvx2,
     gemm_kquant<kexp_q6_K, false>},
};

}  // namespace

const DotKernels* kquant_dot_kernels_avx2(uint32_t w_type) {
  for (const auto& k : kAvx2)
    if (k.w_type == w_type) return &k;
  return nullptr;
}

}  // namespace cw::kernels
