// Attention kernels: fp32 cache against a double-precision computation; the fp16-cache paths (scalar and
// the ISA-dispatched one) against a double computation with the same fp16 rounding of Q and P.
#include "kernels/cpu/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/ops_ref.h"

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

// A paged cache (positions scattered over blocks in shuffled order) gives bit-identical results to the
// contiguous cache, for every block size and ISA: only the addressing changes, not the arithmetic.
TEST(Attention, PagedCacheIsBitIdenticalToContiguous) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const Isa detected = detected_isa();
  const Case c{8, 2, 16, 45};
  const int64_t D = c.head_dim, stride = c.n_head_kv * D;
  std::vector<float> q(static_cast<size_t>(c.n_head * D)), k(static_cast<size_t>(c.n_kv * stride)), v(k.size());
  for (auto* vec : {&q, &k, &v})
    for (float& x : *vec) x = nd(rng);
  std::vector<uint16_t> k16(k.size()), v16(v.size());
  for (size_t i = 0; i < k.size(); ++i) k16[i] = fp32_to_fp16(k[i]), v16[i] = fp32_to_fp16(v[i]);
  const AttentionShape shape{c.n_head, c.n_head_kv, D, stride, 0.25f};
  std::vector<float> scratch(static_cast<size_t>(attention_scratch_floats(c.n_kv, D)));
  for (int64_t bs : {1, 3, 16, 64}) {
    const int64_t n_blocks = (c.n_kv + bs - 1) / bs;
    std::vector<int64_t> order(static_cast<size_t>(n_blocks));
    for (int64_t b = 0; b < n_blocks; ++b) order[static_cast<size_t>(b)] = b;
    std::shuffle(order.begin(), order.end(), rng);
    // Pool slot order[b] holds logical block b.
    std::vector<float> pk(static_cast<size_t>(n_blocks * bs * stride)), pv(pk.size());
    std::vector<uint16_t> pk16(pk.size()), pv16(pk.size());
    std::vector<const void*> kb32, vb32, kb16, vb16;
    for (int64_t b = 0; b < n_blocks; ++b) {
      const size_t at = static_cast<size_t>(order[static_cast<size_t>(b)] * bs * stride);
      for (int64_t r = 0; r < bs && b * bs + r < c.n_kv; ++r)
        for (int64_t i = 0; i < stride; ++i) {
          const size_t src = static_cast<size_t>((b * bs + r) * stride + i), dst = at + static_cast<size_t>(r * stride + i);
          pk[dst] = k[src], pv[dst] = v[src], pk16[dst] = k16[src], pv16[dst] = v16[src];
        }
      kb32.push_back(&pk[at]), vb32.push_back(&pv[at]), kb16.push_back(&pk16[at]), vb16.push_back(&pv16[at]);
    }
    std::vector<float> want(q.size()), got(q.size());
    attention_f32(shape, q.data(), k.data(), v.data(), c.n_kv, want.data(), scratch.data(), 0, c.n_head);
    attention_f32(shape, q.data(), KvBlocks{kb32.data(), vb32.data(), bs}, c.n_kv, got.data(), scratch.data(), 0, c.n_head);
    ASSERT_EQ(want, got) << "f32 block_size " << bs;
    for (int isa = 0; isa <= static_cast<int>(detected); ++isa) {
      set_isa(static_cast<Isa>(isa));
      attention_f16(shape, q.data(), k16.data(), v16.data(), c.n_kv, want.data(), scratch.data(), 0, c.n_head);
      attention_f16(shape, q.data(), KvBlocks{kb16.data(), vb16.data(), bs}, c.n_kv, got.data(), scratch.data(), 0,
                    c.n_head);
      ASSERT_EQ(want, got) << "f16 " << isa_name(static_cast<Isa>(isa)) << " block_size " << bs;
    }
    set_isa(detected);
  }
}

// The AVX2 kernel processes the query heads of a KV head together; per head the arithmetic is that of
// processing the head alone, so any split of the head range gives bit-identical results (GQA groups of
// 1, 4, 8 and 12 heads, the last one larger than the kernel's group of 8).
TEST(Attention, GroupedHeadsAreBitIdenticalToOneHeadAtATime) {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const Isa detected = detected_isa();
  for (const Case& c : {Case{8, 8, 64, 50}, Case{8, 2, 64, 77}, Case{16, 2, 32, 33}, Case{24, 2, 16, 20}}) {
    const int64_t D = c.head_dim, stride = c.n_head_kv * D;
    std::vector<float> q(static_cast<size_t>(c.n_head * D));
    std::vector<uint16_t> k16(static_cast<size_t>(c.n_kv * stride)), v16(k16.size());
    for (float& x : q) x = nd(rng);
    for (size_t i = 0; i < k16.size(); ++i) k16[i] = fp32_to_fp16(nd(rng)), v16[i] = fp32_to_fp16(nd(rng));
    const AttentionShape shape{c.n_head, c.n_head_kv, D, stride, 0.125f};
    std::vector<float> scratch(static_cast<size_t>(attention_scratch_floats(c.n_kv, D)));
    std::vector<float> all(q.size()), one(q.size());
    for (int isa = 0; isa <= static_cast<int>(detected); ++isa) {
      set_isa(static_cast<Isa>(isa));
      attention_f16(shape, q.data(), k16.data(), v16.data(), c.n_kv, all.data(), scratch.data(), 0, c.n_head);
      for (int64_t h = 0; h < c.n_head; ++h)
        attention_f16(shape, q.data(), k16.data(), v16.data(), c.n_kv, one.data(), scratch.data(), h, h + 1);
      EXPECT_EQ(all, one) << isa_name(static_cast<Isa>(isa)) << " heads " << c.n_head << "/" << c.n_head_kv;
    }
    set_isa(detected);
  }
}

// Prefill tiles: attention_f16_rows over several consecutive rows of one sequence (row i attends n_kv0 + i
// positions) gives, for every (row, head), exactly what attention_f16 gives for that row alone, on a paged
// cache with odd block sizes, for GQA groups of 1, 2, 4 and 8 (tiles of 8, 4, 2 and 1 rows), every ISA.
TEST(Attention, RowTilesAreBitIdenticalToOneRowAtATime) {
  std::mt19937 rng(21);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const Isa detected = detected_isa();
  struct TileCase {
    int64_t n_head, n_head_kv, head_dim, n_kv0;
  };
  for (const TileCase& c : {TileCase{4, 4, 16, 1}, TileCase{8, 4, 32, 9}, TileCase{8, 2, 64, 30},
                            TileCase{8, 1, 8, 3}, TileCase{4, 2, 24, 17}}) {
    const int64_t D = c.head_dim, stride = c.n_head_kv * D, group = c.n_head / c.n_head_kv, q_dim = c.n_head * D;
    const int64_t rows = kAttentionMaxGroup / group, n_kv = c.n_kv0 + rows - 1;
    std::vector<float> q(static_cast<size_t>(rows * q_dim));
    for (float& x : q) x = nd(rng);
    for (int64_t bs : {1, 5, 64}) {
      const int64_t n_blocks = (n_kv + bs - 1) / bs;
      std::vector<uint16_t> k16(static_cast<size_t>(n_blocks * bs * stride)), v16(k16.size());
      for (size_t i = 0; i < k16.size(); ++i) k16[i] = fp32_to_fp16(nd(rng)), v16[i] = fp32_to_fp16(nd(rng));
      std::vector<const void*> kb, vb;
      for (int64_t b = n_blocks - 1; b >= 0; --b) {  // logical block i lives in slot n_blocks - 1 - i
        kb.push_back(&k16[static_cast<size_t>(b * bs * stride)]);
        vb.push_back(&v16[static_cast<size_t>(b * bs * stride)]);
      }
      const KvBlocks blocks{kb.data(), vb.data(), bs};
      const AttentionShape shape{c.n_head, c.n_head_kv, D, stride, 1.0f / std::sqrt(static_cast<float>(D))};
      std::vector<float> scratch(static_cast<size_t>(attention_scratch_floats(n_kv, D)));
      for (int isa = 0; isa <= static_cast<int>(detected); ++isa) {
        set_isa(static_cast<Isa>(isa));
        std::vector<float> tiled(q.size(), NAN), single(q.size(), NAN);
        for (int64_t g = 0; g < c.n_head_kv; ++g)
          attention_f16_rows(shape, q.data(), rows, blocks, c.n_kv0, g, tiled.data(), scratch.data());
        for (int64_t i = 0; i < rows; ++i)
          attention_f16(shape, q.data() + i * q_dim, blocks, c.n_kv0 + i, single.data() + i * q_dim, scratch.data(), 0,
                        c.n_head);
        EXPECT_EQ(tiled, single) << isa_name(static_cast<Isa>(isa)) << " heads " << c.n_head << "/" << c.n_head_kv
                                 << " D " << D << " block " << bs;
        // Tiles of fewer rows (the end of a prompt) too.
        std::vector<float> part(q.size(), NAN);
        for (int64_t g = 0; g < c.n_head_kv; ++g) {
          attention_f16_rows(shape, q.data(), 1, blocks, c.n_kv0, g, part.data(), scratch.data());
          if (rows > 1)
            attention_f16_rows(shape, q.data() + q_dim, rows - 1, blocks, c.n_kv0 + 1, g, part.data() + q_dim,
                               scratch.data());
        }
        EXPECT_EQ(part, single) << isa_name(static_cast<Isa>(isa)) << " split tile";
      }
      set_isa(detected);
    }
  }
}

// The vectorized softmax against softmax_ref (libm expf): every probability within 1e-6 relative, or 2e-38
// absolute near the fp32 underflow (exponents below -87 give ~e^-87 instead of a denormal or 0), over
// lengths that exercise the 8-lane body and the tail, with scores far below the maximum.
TEST(Attention, VectorizedSoftmaxMatchesReference) {
  if (detected_isa() == Isa::kScalar) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(13);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t n : {1, 7, 8, 9, 64, 333, 4096}) {
    for (float spread : {0.1f, 3.0f, 60.0f}) {
      std::vector<float> a(static_cast<size_t>(n));
      for (float& v : a) v = spread * nd(rng);
      if (n > 2) a[1] = -1e30f;  // a score far below the others
      std::vector<float> b = a;
      softmax_ref(a.data(), n);
      softmax_f32_avx2(b.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const float want = a[static_cast<size_t>(i)], got = b[static_cast<size_t>(i)];
        EXPECT_NEAR(got, want, std::max(1e-6f * want, 2e-38f)) << "n " << n << " spread " << spread << " i " << i;
      }
    }
  }
}

}  // namespace
}  // namespace cw::kernels
