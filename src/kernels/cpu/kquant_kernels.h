// Per-ISA entry points of the k-quant dot kernels (Q2_K .. Q6_K weights x Q8_K activations), registered by
// kquant_dot_kernels() (kquant_scalar.cc). Each returns nullptr for a type it does not cover.
#pragma once

#include <cstdint>

#include "kernels/cpu/dispatch.h"

namespace cw::kernels {

const DotKernels* kquant_dot_kernels_avx2(uint32_t w_type);    // kquant_avx2.cc
const DotKernels* kquant_dot_kernels_avx512(uint32_t w_type);  // kquant_avx512.cc

}  // namespace cw::kernels
