// Per-ISA entry points of the float-type dot kernels (F32, F16, BF16), registered by float_dot_kernels().
#pragma once

#include <cstdint>

#include "kernels/cpu/dispatch.h"

namespace cw::kernels {

const DotKernels* float_dot_kernels_avx2(uint32_t w_type);
const DotKernels* float_dot_kernels_avx512(uint32_t w_type);

}  // namespace cw::kernels
