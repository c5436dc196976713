#include "kernels/cpu/ops_ref.h"

#include <cmath>
#include <vector>

#include "base/status.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {

void rms_norm_ref(const float* x, const float* w, float* y, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);  // fp32 square, fp64 sum (as llama.cpp)
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * (w != nullptr ? w[i] : 1.0f);
}

void get_row_ref(const void* w, uint32_t type, int64_t n_cols, int64_t row, float* dst) {
  const QuantTraits* t = quant_traits(type);
  CW_CHECK_MSG(t != nullptr, "no dequantizer for type " + std::to_string(type));
  const int64_t rb = quant_row_bytes(*t, n_cols);
  t->dequantize(static_cast<const uint8_t*>(w) + row * rb, dst, n_cols);
}

uint32_t activation_type(uint32_t w_type) {
  switch (w_type) {
    case kTypeF32:
    case kTypeF16:
    case kTypeBF16: return w_type;
    case kTypeQ4_0:
    case kTypeQ5_0:
    case kTypeQ8_0: return kTypeQ8_0;
    case kTypeQ4_1:
    case kTypeQ5_1: return kTypeQ8_1;
    default: return kTypeQ8_K;
  }
}

void matmul_ref(const void* w, uint32_t w_type, int64_t n_in, int64_t n_out, const float* x, int64_t n_tokens, float* y,
                const float* bias) {
  std::vector<float> row(static_cast<size_t>(n_in));
  // Round the activations through the type llama.cpp's dot products use.
  std::vector<float> xq;
  const uint32_t a_type = activation_type(w_type);
  if (a_type != kTypeF32) {
    const QuantTraits* at = quant_traits(a_type);
    CW_CHECK(at != nullptr);
    std::vector<uint8_t> buf(static_cast<size_t>(quant_row_bytes(*at, n_in)));
    xq.resize(static_cast<size_t>(n_tokens * n_in));
    for (int64_t t = 0; t < n_tokens; ++t) {
      at->quantize(x + t * n_in, buf.data(), n_in);
      at->dequantize(buf.data(), &xq[static_cast<size_t>(t * n_in)], n_in);
    }
    x = xq.data();
  }
  for (int64_t o = 0; o < n_out; ++o) {
    get_row_ref(w, w_type, n_in, o, row.data());
    for (int64_t t = 0; t < n_tokens; ++t) {
      const float* xt = x + t * n_in;
      float acc = 0.0f;
      for (int64_t i = 0; i < n_in; ++i) acc += row[static_cast<size_t>(i)] * xt[i];
      y[t * n_out + o] = acc + (bias != nullptr ? bias[o] : 0.0f);
    }
  }
}

void rope_angles(double pos, int64_t n_rot, double base, double freq_scale, const float* freq_factors, float* cs) {
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    double inv_freq = std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(n_rot));
    if (freq_factors != nullptr) inv_freq /= freq_factors[i];
    const double theta = pos * freq_scale * inv_freq;
    cs[2 * i] = static_cast<float>(std::cos(theta));
    cs[2 * i + 1] = static_cast<float>(std::sin(theta));
  }
}

void rope_apply(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, RopeStyle style, const float* cs) {
  CW_CHECK(n_rot % 2 == 0 && n_rot <= head_dim);
  const int64_t half = n_rot / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float c = cs[2 * i], s = cs[2 * i + 1];
      const int64_t a = style == RopeStyle::kNormal ? 2 * i : i;
      const int64_t b = style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * c - x1 * s;
      v[b] = x0 * s + x1 * c;
    }
  }
}

void rope_ref(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, double pos, double base, double freq_scale,
              RopeStyle style, const float* freq_factors) {
  CW_CHECK(n_rot % 2 == 0 && n_rot <= head_dim);
  std::vector<float> cs(static_cast<size_t>(n_rot));
  rope_angles(pos, n_rot, base, freq_scale, freq_factors, cs.data());
  rope_apply(x, n_heads, head_dim, n_rot, style, cs.data());
}

void rope_reposition_coeffs(double old_pos, double new_pos, int64_t n_rot, double base, double freq_scale,
                            const float* freq_factors, float* coeffs) {
  CW_CHECK(n_rot % 2 == 0 && n_rot >= 0);
  const int64_t half = n_rot / 2;
  std::vector<float> cs_old(static_cast<size_t>(n_rot)), cs_new(static_cast<size_t>(n_rot));
  rope_angles(old_pos, n_rot, base, freq_scale, freq_factors, cs_old.data());
  rope_angles(new_pos, n_rot, base, freq_scale, freq_factors, cs_new.data());
  float *chi = coeffs, *clo = coeffs + half, *shi = coeffs + 2 * half, *slo = coeffs + 3 * half;
  for (int64_t i = 0; i < half; ++i) {
    const double co = cs_old[static_cast<size_t>(2 * i)], so = cs_old[static_cast<size_t>(2 * i + 1)];
    const double cn = cs_new[static_cast<size_t>(2 * i)], sn = cs_new[static_cast<size_t>(2 * i + 1)];
    // R(new) R(old)^-1: products of fp32 values are exact in fp64, so each sum rounds once. With old == new
    // the numerator of c is the same expression as the norm (c = 1) and that of s is exactly 0.
    const double norm = co * co + so * so;
    const double c = (cn * co + sn * so) / norm;
    const double s = (sn * co - cn * so) / norm;
    chi[i] = static_cast<float>(c);
    clo[i] = static_cast<float>(c - static_cast<double>(chi[i]));  // c - hi is exact in fp64
    shi[i] = static_cast<float>(s);
    slo[i] = static_cast<float>(s - static_cast<double>(shi[i]));
  }
}

namespace {
template <typename T>
double load_key(const T* p) {
  if constexpr (sizeof(T) == 2)
    return fp16_to_fp32(*p);
  else
    return *p;
}
template <typename T>
void store_key(T* p, double v) {
  if constexpr (sizeof(T) == 2)
    *p = fp32_to_fp16(static_cast<float>(v));
  else
    *p = static_cast<float>(v);
}
// The fixed evaluation order every ISA reproduces: all products exact (fp32 x fp32 in fp64), 3 roundings in fp64.
template <typename T>
void reposition_rows(T* k, int64_t n_rows, int64_t row_stride, int64_t n_head_kv, int64_t head_dim, int64_t n_rot,
                     RopeStyle style, const float* coeffs) {
  const int64_t half = n_rot / 2;
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* cf = coeffs + r * rope_reposition_coeff_floats(n_rot);
    const float *chi = cf, *clo = cf + half, *shi = cf + 2 * half, *slo = cf + 3 * half;
    for (int64_t h = 0; h < n_head_kv; ++h) {
      T* v = k + r * row_stride + h * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const int64_t a = style == RopeStyle::kNormal ? 2 * i : i;
        const int64_t b = style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
        const double x0 = load_key(v + a), x1 = load_key(v + b);
        const double ch = chi[i], cl = clo[i], sh = shi[i], sl = slo[i];
        const double y0 = (x0 * ch - x1 * sh) + (x0 * cl - x1 * sl);
        const double y1 = (x1 * ch + x0 * sh) + (x1 * cl + x0 * sl);
        store_key(v + a, y0);
        store_key(v + b, y1);
      }
    }
  }
}
}  // namespace

void rope_reposition_apply_ref(void* k, KvElem elem, int64_t n_rows, int64_t row_stride, int64_t n_head_kv,
                               int64_t head_dim, int64_t n_rot, RopeStyle style, const float* coeffs) {
  CW_CHECK(n_rot % 2 == 0 && n_rot >= 0 && n_rot <= head_dim && n_rows >= 0 && n_head_kv >= 0);
  CW_CHECK(n_rows <= 1 || row_stride >= n_head_kv * head_dim);
  if (n_rows == 0 || n_rot == 0 || n_head_kv == 0) return;
  if (elem == KvElem::kF16)
    reposition_rows(static_cast<uint16_t*>(k), n_rows, row_stride, n_head_kv, head_dim, n_rot, style, coeffs);
  else
    reposition_rows(static_cast<float*>(k), n_rows, row_stride, n_head_kv, head_dim, n_rot, style, coeffs);
}

void rope_reposition_ref(void* k, KvElem elem, int64_t n_rows, int64_t row_stride, int64_t n_head_kv, int64_t head_dim,
                         int64_t n_rot, const double* old_pos, const double* new_pos, double base, double freq_scale,
                         RopeStyle style, const float* freq_factors) {
  CW_CHECK(n_rot % 2 == 0 && n_rot >= 0 && n_rot <= head_dim);
  std::vector<float> cf(static_cast<size_t>(rope_reposition_coeff_floats(n_rot)));
  const int64_t esz = elem == KvElem::kF16 ? 2 : 4;
  for (int64_t r = 0; r < n_rows; ++r) {
    rope_reposition_coeffs(old_pos[r], new_pos[r], n_rot, base, freq_scale, freq_factors, cf.data());
    rope_reposition_apply_ref(static_cast<uint8_t*>(k) + r * row_stride * esz, elem, 1, row_stride, n_head_kv,
                              head_dim, n_rot, style, cf.data());
  }
}

void softmax_ref(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void swiglu_ref(const float* g, const float* u, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

}  // namespace cw::kernels
