// fp32 <-> fp16 (IEEE binary16) and fp32 <-> bf16 (bfloat16) conversions, scalar and header-inline.
//
// What and why: every GGUF block format stores its scales as fp16, and F16/BF16 tensors are common. These
// are the exact reference conversions the rest of the engine (and its SIMD kernels) is tested against:
//   - fp16 -> fp32 and bf16 -> fp32 are exact (every half/bfloat value is representable in fp32).
//   - fp32 -> fp16 and fp32 -> bf16 round to nearest, ties to even (the IEEE default, and what F16C's
//     vcvtps2ph with imm 0 does), handle subnormals gradually (no flush to zero), overflow to +-inf, and
//     keep NaN a NaN (quiet bit set, sign and the top payload bits kept).
// Halves are carried as raw uint16_t bit patterns so that block structs have a fixed on-disk layout.
#pragma once

#include <bit>
#include <cstdint>

namespace cw::kernels {

// Exact conversion of an IEEE half (bit pattern) to fp32.
inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;  // +-0
    } else {
      // Subnormal: man * 2^-24, exact in fp32. Normalise the mantissa.
      uint32_t e = 113;  // fp32 biased exponent of 2^-14, i.e. of a half with exp field 1
      uint32_t m = man;
      while ((m & 0x400u) == 0) {
        m <<= 1;
        --e;
      }
      bits = sign | (e << 23) | ((m & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);  // inf or NaN (payload kept)
  } else {
    bits = sign | ((exp + 112u) << 23) | (man << 13);  // rebias 15 -> 127
  }
  return std::bit_cast<float>(bits);
}

// fp32 to IEEE half, round to nearest even.
inline uint16_t fp32_to_fp16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t a = x & 0x7fffffffu;
  if (a >= 0x7f800000u) {
    if (a == 0x7f800000u) return sign | 0x7c00u;                       // inf
    return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // NaN, quieted
  }
  // 65520 = halfway between 65504 (largest half) and 65536: ties go to the even neighbour, which is inf.
  if (a >= 0x477ff000u) return sign | 0x7c00u;
  if (a < 0x38800000u) {  // below 2^-14: the result is a half subnormal (or zero, or the smallest normal)
    if (a <= 0x33000000u) return sign;  // <= 2^-25: rounds to zero (2^-25 exactly is a tie -> even 0)
    const uint32_t e = a >> 23;                      // 102..112
    const uint32_t m = (a & 0x7fffffu) | 0x800000u;  // value = m * 2^(e-150)
    const uint32_t shift = 126u - e;                 // result = m * 2^(e-126) = m >> shift, rounded
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) ++r;  // may carry into the smallest normal: still right
    return static_cast<uint16_t>(sign | r);
  }
  // Normal: rebias 127 -> 15 and round the 13 dropped mantissa bits; a carry bumps the exponent correctly.
  uint32_t r = (a >> 13) - (112u << 10);
  const uint32_t rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
  return static_cast<uint16_t>(sign | r);
}

// Exact conversion of a bfloat16 (bit pattern) to fp32.
inline float bf16_to_fp32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

// fp32 to bfloat16, round to nearest even (subnormals rounded, not flushed; NaN stays NaN).
inline uint16_t fp32_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  // Adding 0x7fff plus the lowest kept bit rounds to nearest even; overflow carries into inf correctly.
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

}  // namespace cw::kernels
