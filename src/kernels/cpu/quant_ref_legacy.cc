// Scalar reference (de)quantization of the legacy 32-element block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q8_1.
//
// What and why: these are the normative definitions the SIMD kernels are checked against. The quantizers
// use the classic rounding rules of these formats (Q4_0/Q5_0: the element of largest magnitude maps to the
// code -8/-16 so the asymmetric code range is used fully; Q4_1/Q5_1: min/max range; Q8_0/Q8_1: absmax/127,
// round half away from zero), so quantizing the same fp32 data reproduces llama.cpp's files byte for byte.
// Float expressions are written in the order GGML evaluates them (no FMA: this TU is built with the
// default -ffp-contract=off of ISO C++ mode) so dequantization is bit-exact.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/status.h"
#include "kernels/cpu/block_io.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {
namespace {

int64_t n_blocks(int64_t n) {
  CW_CHECK_MSG(n >= 0 && n % kQK == 0, "row length must be a multiple of 32");
  return n / kQK;
}

// Largest-magnitude element, with its sign (the first one on ties).
float signed_absmax(const float* x, int n) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int j = 0; j < n; ++j) {
    const float v = std::fabs(x[j]);
    if (amax < v) {
      amax = v;
      max = x[j];
    }
  }
  return max;
}

uint32_t load_qh(const uint8_t qh[4]) {
  return static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 |
         static_cast<uint32_t>(qh[2]) << 16 | static_cast<uint32_t>(qh[3]) << 24;
}

void store_qh(uint8_t qh[4], uint32_t v) {
  for (int k = 0; k < 4; ++k) qh[k] = static_cast<uint8_t>(v >> (8 * k));
}

}  // namespace

// ---- dequantization ------------------------------------------------------------------------------------

void dequantize_row_q4_0(const void* src, float* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ4_0>(src, i);
    const float d = fp16_to_fp32(b.d);
    float* y = dst + i * kQK;
    for (int j = 0; j < kQK / 2; ++j) {
      const int x0 = (b.qs[j] & 0x0f) - 8;
      const int x1 = (b.qs[j] >> 4) - 8;
      y[j] = static_cast<float>(x0) * d;
      y[j + kQK / 2] = static_cast<float>(x1) * d;
    }
  }
}

void dequantize_row_q4_1(const void* src, float* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ4_1>(src, i);
    const float d = fp16_to_fp32(b.d);
    const float m = fp16_to_fp32(b.m);
    float* y = dst + i * kQK;
    for (int j = 0; j < kQK / 2; ++j) {
      const int x0 = b.qs[j] & 0x0f;
      const int x1 = b.qs[j] >> 4;
      y[j] = static_cast<float>(x0) * d + m;
      y[j + kQK / 2] = static_cast<float>(x1) * d + m;
    }
  }
}

void dequantize_row_q5_0(const void* src, float* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ5_0>(src, i);
    const float d = fp16_to_fp32(b.d);
    const uint32_t qh = load_qh(b.qh);
    float* y = dst + i * kQK;
    for (int j = 0; j < kQK / 2; ++j) {
      const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
      const int h1 = static_cast<int>((qh >> (j + kQK / 2)) & 1u) << 4;
      const int x0 = ((b.qs[j] & 0x0f) | h0) - 16;
      const int x1 = ((b.qs[j] >> 4) | h1) - 16;
      y[j] = static_cast<float>(x0) * d;
      y[j + kQK / 2] = static_cast<float>(x1) * d;
    }
  }
}

void dequantize_row_q5_1(const void* src, float* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ5_1>(src, i);
    const float d = fp16_to_fp32(b.d);
    const float m = fp16_to_fp32(b.m);
    const uint32_t qh = load_qh(b.qh);
    float* y = dst + i * kQK;
    for (int j = 0; j < kQK / 2; ++j) {
      const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
      const int h1 = static_cast<int>((qh >> (j + kQK / 2)) & 1u) << 4;
      const int x0 = (b.qs[j] & 0x0f) | h0;
      const int x1 = (b.qs[j] >> 4) | h1;
      y[j] = static_cast<float>(x0) * d + m;
      y[j + kQK / 2] = static_cast<float>(x1) * d + m;
    }
  }
}

void dequantize_row_q8_0(const void* src, float* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ8_0>(src, i);
    const float d = fp16_to_fp32(b.d);
    for (int j = 0; j < kQK; ++j) dst[i * kQK + j] = static_cast<float>(b.qs[j]) * d;
  }
}

void dequantize_row_q8_1(const void* src, float* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ8_1>(src, i);
    const float d = fp16_to_fp32(b.d);
    for (int j = 0; j < kQK; ++j) dst[i * kQK + j] = static_cast<float>(b.qs[j]) * d;
  }
}

// ---- quantization --------------------------------------------------------------------------------------

void quantize_row_q4_0_ref(const float* src, void* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const float* x = src + i * kQK;
    // The largest-magnitude element gets code 0 (value -8 d): the sign of d follows it.
    const float d = signed_absmax(x, kQK) / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ4_0 b{};
    b.d = fp32_to_fp16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const float x0 = x[j] * id;
      const float x1 = x[j + kQK / 2] * id;
      // x * id lies in [-8, 8]: +8.5 and truncation round to nearest (half up), code 16 clamps to 15.
      const int q0 = std::min(15, static_cast<int>(x0 + 8.5f));
      const int q1 = std::min(15, static_cast<int>(x1 + 8.5f));
      b.qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
    store_block(dst, i, b);
  }
}

void quantize_row_q4_1_ref(const float* src, void* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const float* x = src + i * kQK;
    float min = FLT_MAX;
    float max = -FLT_MAX;
    for (int j = 0; j < kQK; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ4_1 b{};
    b.d = fp32_to_fp16(d);
    b.m = fp32_to_fp16(min);
    for (int j = 0; j < kQK / 2; ++j) {
      const float x0 = (x[j] - min) * id;
      const float x1 = (x[j + kQK / 2] - min) * id;
      const int q0 = std::min(15, static_cast<int>(x0 + 0.5f));
      const int q1 = std::min(15, static_cast<int>(x1 + 0.5f));
      b.qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
    store_block(dst, i, b);
  }
}

void quantize_row_q5_0_ref(const float* src, void* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const float* x = src + i * kQK;
    const float d = signed_absmax(x, kQK) / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ5_0 b{};
    b.d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const float x0 = x[j] * id;
      const float x1 = x[j + kQK / 2] * id;
      const int q0 = std::min(31, static_cast<int>(x0 + 16.5f));
      const int q1 = std::min(31, static_cast<int>(x1 + 16.5f));
      b.qs[j] = static_cast<uint8_t>((q0 & 0x0f) | ((q1 & 0x0f) << 4));
      qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + kQK / 2);
    }
    store_qh(b.qh, qh);
    store_block(dst, i, b);
  }
}

void quantize_row_q5_1_ref(const float* src, void* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const float* x = src + i * kQK;
    float min = FLT_MAX;
    float max = -FLT_MAX;
    for (int j = 0; j < kQK; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ5_1 b{};
    b.d = fp32_to_fp16(d);
    b.m = fp32_to_fp16(min);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const float x0 = (x[j] - min) * id;
      const float x1 = (x[j + kQK / 2] - min) * id;
      const int q0 = std::min(31, static_cast<int>(x0 + 0.5f));
      const int q1 = std::min(31, static_cast<int>(x1 + 0.5f));
      b.qs[j] = static_cast<uint8_t>((q0 & 0x0f) | ((q1 & 0x0f) << 4));
      qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + kQK / 2);
    }
    store_qh(b.qh, qh);
    store_block(dst, i, b);
  }
}

// max |x[j]| over a block of 32; *non_finite = whether one of them is NaN or +-inf. Such a block of an
// activation quantizer gets d = NaN and codes 0: the NaN then reaches every dot product, and the logits,
// instead of becoming finite codes (std::max drops a NaN). One pass: the check stays off the max's chain.
static float block_absmax(const float* x, bool* non_finite) {
  float amax = 0.0f;
  bool bad = false;
  for (int j = 0; j < kQK; ++j) {
    amax = std::max(amax, std::fabs(x[j]));
    bad |= !std::isfinite(x[j]);
  }
  *non_finite = bad;
  return amax;
}

void quantize_row_q8_0_ref(const float* src, void* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const float* x = src + i * kQK;
    bool non_finite = false;
    const float amax = block_absmax(x, &non_finite);
    if (non_finite) {
      BlockQ8_0 b{};
      b.d = fp32_to_fp16(std::numeric_limits<float>::quiet_NaN());
      store_block(dst, i, b);
      continue;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ8_0 b{};
    b.d = fp32_to_fp16(d);
    for (int j = 0; j < kQK; ++j) b.qs[j] = static_cast<int8_t>(std::round(x[j] * id));
    store_block(dst, i, b);
  }
}

void quantize_row_q8_1_ref(const float* src, void* dst, int64_t n) {
  const int64_t nb = n_blocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const float* x = src + i * kQK;
    bool non_finite = false;
    const float amax = block_absmax(x, &non_finite);
    if (non_finite) {
      BlockQ8_1 b{};
      b.d = b.s = fp32_to_fp16(std::numeric_limits<float>::quiet_NaN());
      store_block(dst, i, b);
      continue;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ8_1 b{};
    b.d = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < kQK; ++j) {
      b.qs[j] = static_cast<int8_t>(std::round(x[j] * id));
      sum += b.qs[j];
    }
    b.s = fp32_to_fp16(static_cast<float>(sum) * d);
    store_block(dst, i, b);
  }
}

}  // namespace cw::kernels
