// Float-type dot kernels (F32 x F32, F16 x F16, BF16 x BF16), scalar versions, and the family registry.
//
// What and why: as in llama.cpp, F16 and BF16 weights are multiplied with activations rounded to the same
// type, so the dot product is a plain sum of products of two rows of the same 16-bit format; products are
// accumulated in fp32. The activation "quantizers" are the reference conversions.
#include <cstring>

#include "kernels/cpu/float_kernels.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {
namespace {

float dot_f32(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const uint8_t*>(w);
  const auto* y = static_cast<const uint8_t*>(a);
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    float p, q;
    std::memcpy(&p, x + 4 * i, 4);
    std::memcpy(&q, y + 4 * i, 4);
    acc += p * q;
  }
  return acc;
}

template <float (*Cvt)(uint16_t)>
float dot_16(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const uint8_t*>(w);
  const auto* y = static_cast<const uint8_t*>(a);
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    uint16_t p, q;
    std::memcpy(&p, x + 2 * i, 2);
    std::memcpy(&q, y + 2 * i, 2);
    acc += Cvt(p) * Cvt(q);
  }
  return acc;
}

constexpr DotKernels kScalar[] = {
    {kTypeF32, kTypeF32, quantize_row_f32_ref, dot_f32, Isa::kScalar},
    {kTypeF16, kTypeF16, quantize_row_f16_ref, dot_16<fp16_to_fp32>, Isa::kScalar},
    {kTypeBF16, kTypeBF16, quantize_row_bf16_ref, dot_16<bf16_to_fp32>, Isa::kScalar},
};

}  // namespace

const DotKernels* float_dot_kernels(uint32_t w_type, Isa isa) {
  switch (isa) {
    case Isa::kAvx512: return float_dot_kernels_avx512(w_type);
    case Isa::kAvx2: return float_dot_kernels_avx2(w_type);
    case Isa::kScalar:
      for (const auto& k : kScalar)
        if (k.w_type == w_type) return &k;
      return nullptr;
  }
  return nullptr;
}

}  // namespace cw::kernels
