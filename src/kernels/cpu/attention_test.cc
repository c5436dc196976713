// Attention kernels: fp32 cache against a double-precision computation; the fp16-cache paths (scalar and
// the ISA-dispatched one) against a double computation with the same fp16 rounding of Q and P.
#include "kernels/cpu/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/fp16.h"

namespace cw::kernels {
namespace {

struct Case {
  int64_t n_head, n_head_kv, head_dim, n_kv;
};

double r16(double x) { return fp16_to_fp32(fp32_to_fp16(static_cast<float>(x))); }

// out[h, d] in double; `f16` applies the fp16 rounding of Q, K, V and P.
std::vector<double> reference(const Case& c, const std::vector<float>& q, const std::vector<float>& k,
                              const std::vector<float>& v, bool f16) {
  const int64_t D = c.head_dim, stride = c.n_head_kv * D, group = c.n_head / c.n_head_kv;
  std::vector<double> out(static_cast<size_t>(c.n_head * D), 0.0);
  for (int64_t h = 0; h < c.n_head; ++h) {
    const int64_t kvh = h / group;
    std::vector<double> s(static_cast<size_t>(c.n_kv));
    double mx = -INFINITY;
    for (int64_t j = 0; j < c.n_kv; ++j) {
      double dot = 0;
      for (int64_t d = 0; d < D; ++d) {
        double qv = q[static_cast<size_t>(h * D + d)], kv = k[static_cast<size_t>(j * stride + kvh * D + d)];
        if (f16) qv = r16(qv), kv = r16(kv);
        dot += qv * kv;
      }
      s[static_cast<size_t>(j)] = dot / std::sqrt(static_cast<double>(D));
      mx = std::max(mx, s[static_cast<size_t>(j)]);
    }
    double sum = 0;
    for (double& e : s) sum += (e = std::exp(e - mx));
    for (int64_t j = 0; j < c.n_kv; ++j) {
      double p = s[static_cast<size_t>(j)] / sum;
      if (f16) p = r16(p);
      for (int64_t d = 0; d < D; ++d) {
        double vv = v[static_cast<size_t>(j * stride + kvh * D + d)];
        if (f16) vv = r16(vv);
        out[static_cast<size_t>(h * D + d)] += p * vv;
      }
    }
  }
  return out;
}

TEST(Attention, Fp32AndFp16CachesMatchDoubleReference) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const Isa detected = detected_isa();
  for (const Case& c : {Case{8, 4, 8, 1}, Case{8, 4, 8, 37}, Case{4, 2, 64, 100}, Case{4, 1, 128, 300}, Case{2, 2, 12, 9}}) {
    const int64_t D = c.head_dim, stride = c.n_head_kv * D;
    std::vector<float> q(static_cast<size_t>(c.n_head * D)), k(static_cast<size_t>(c.n_kv * stride)), v(k.size());
    for (auto* vec : {&q, &k, &v})
      for (float& x : *vec) x = 2.0f * nd(rng);
    std::vector<uint16_t> k16(k.size()), v16(v.size());
    for (size_t i = 0; i < k.size(); ++i) k16[i] = fp32_to_fp16(k[i]), v16[i] = fp32_to_fp16(v[i]);
    const AttentionShape shape{c.n_head, c.n_head_kv, D, stride, 1.0f / std::sqrt(static_cast<float>(D))};
    std::vector<float> scratch(static_cast<size_t>(attention_scratch_floats(c.n_kv, D))), out(q.size());

    const auto ref32 = reference(c, q, k, v, false);
    attention_f32(shape, q.data(), k.data(), v.data(), c.n_kv, out.data(), scratch.data(), 0, c.n_head);
    for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], ref32[i], 1e-4) << "f32 D=" << D << " i=" << i;

    const auto ref16 = reference(c, q, k, v, true);
    attention_f16_scalar(shape, q.data(), k16.data(), v16.data(), c.n_kv, out.data(), scratch.data(), 0, c.n_head);
    for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], ref16[i], 1e-3) << "f16 scalar D=" << D << " i=" << i;
    for (int isa = 0; isa <= static_cast<int>(detected); ++isa) {
      set_isa(static_cast<Isa>(isa));
      // Two head ranges, as the forward pass splits them across threads.
      attention_f16(shape, q.data(), k16.data(), v16.data(), c.n_kv, out.data(), scratch.data(), 0, c.n_head / 2);
      attention_f16(shape, q.data(), k16.data(), v16.data(), c.n_kv, out.data(), scratch.data(), c.n_head / 2, c.n_head);
      // Against the double reference with the same rounding (a different summation order can move a
      // probability across an fp16 rounding boundary, so paths agree to fp16 precision, not bit for bit).
      for (size_t i = 0; i < out.size(); ++i)
        ASSERT_NEAR(out[i], ref16[i], 1e-3) << isa_name(static_cast<Isa>(isa)) << " D=" << D << " i=" << i;
    }
    set_isa(detected);
  }
}

}  // namespace
}  // namespace cw::kernels
