// The optimised matmul (every ISA available here, 1-3 threads, GEMV and prefill shapes) against the scalar
// reference matmul_ref, for every weight type that has kernels.
#include "kernels/cpu/matmul.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include "kernels/cpu/fp16.h"

#include "kernels/cpu/ops.h"
#include "kernels/cpu/ops_ref.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {
namespace {

const uint32_t kTypes[] = {kTypeF32, kTypeF16, kTypeBF16, kTypeQ8_0, kTypeQ4_0, kTypeQ4_1, kTypeQ5_0,
                           kTypeQ5_1, kTypeQ2_K, kTypeQ3_K, kTypeQ4_K, kTypeQ5_K, kTypeQ6_K};

std::vector<uint8_t> random_matrix(uint32_t type, int64_t n_in, int64_t n_out, std::mt19937& rng) {
  const QuantTraits* t = quant_traits(type);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> row(static_cast<size_t>(n_in));
  const int64_t rb = quant_row_bytes(*t, n_in);
  std::vector<uint8_t> w(static_cast<size_t>(rb * n_out));
  for (int64_t r = 0; r < n_out; ++r) {
    for (auto& v : row) v = nd(rng) / std::sqrt(static_cast<float>(n_in));
    t->quantize(row.data(), w.data() + r * rb, n_in);
  }
  return w;
}

TEST(Matmul, MatchesReferenceForEveryTypeIsaAndThreadCount) {
  std::mt19937 rng(7);
  const Isa detected = detected_isa();
  int checked = 0;
  for (uint32_t type : kTypes) {
    if (!matmul_supports(type)) {
      ADD_FAILURE() << "no kernels for type " << type;
      continue;
    }
    for (int64_t n_in : {256, 512}) {
      const int64_t n_out = n_in == 256 ? 48 : 37;  // 37: a partial row block and gemv row tile
      auto w = random_matrix(type, n_in, n_out, rng);
      for (int64_t n_tokens : {1, 3, 9}) {
        std::normal_distribution<float> nd(0.0f, 1.0f);
        std::vector<float> x(static_cast<size_t>(n_tokens * n_in)), bias(static_cast<size_t>(n_out));
        for (auto& v : x) v = nd(rng);
        for (auto& v : bias) v = nd(rng);
        std::vector<float> ref(static_cast<size_t>(n_tokens * n_out));
        matmul_ref(w.data(), type, n_in, n_out, x.data(), n_tokens, ref.data(), bias.data());
        double scale = 0;
        for (float v : ref) scale = std::max(scale, static_cast<double>(std::fabs(v)));
        // Q4_1/Q5_1 dot products take the min term from the Q8_1 block sum s = d * sum(q), stored as fp16
        // (as llama.cpp does), while matmul_ref sums the dequantized activations exactly: allow 2^-10 of
        // sum_b |m_b| * |sum of block b of x| for that rounding (m_b is the fp16 at offset 2 of each block).
        const double rel = 1e-5;
        double min_term = 0;
        if (activation_type(type) == kTypeQ8_1) {
          const QuantTraits* qt = quant_traits(type);
          double max_m = 0;
          for (size_t off = 0; off < w.size(); off += static_cast<size_t>(qt->block_bytes)) {
            uint16_t m;
            std::memcpy(&m, &w[off + 2], 2);
            max_m = std::max(max_m, static_cast<double>(std::fabs(fp16_to_fp32(m))));
          }
          for (int64_t t = 0; t < n_tokens; ++t) {
            double sum_abs = 0;
            for (int64_t b = 0; b < n_in / 32; ++b) {
              double bs = 0;
              for (int64_t i = 0; i < 32; ++i) bs += x[static_cast<size_t>(t * n_in + b * 32 + i)];
              sum_abs += std::fabs(bs);
            }
            min_term = std::max(min_term, max_m * sum_abs * std::ldexp(1.0, -10));
          }
        }
        for (int isa = 0; isa <= static_cast<int>(detected); ++isa) {
          set_isa(static_cast<Isa>(isa));
          for (int threads : {1, 3}) {
            ThreadPool pool(threads);
            MatmulScratch scratch;
            std::vector<float> y(ref.size(), NAN);
            matmul(w.data(), type, n_in, n_out, x.data(), n_tokens, y.data(), bias.data(), pool, scratch);
            for (size_t i = 0; i < y.size(); ++i)
              ASSERT_NEAR(y[i], ref[i], rel * scale + min_term + 1e-6)
                  << "type " << type << " isa " << isa_name(static_cast<Isa>(isa)) << " threads " << threads
                  << " n_in " << n_in << " tokens " << n_tokens << " i " << i;
            ++checked;
          }
        }
      }
    }
  }
  set_isa(detected);
  std::printf("checked %d (type, shape, isa, threads) combinations; detected ISA %s\n", checked, isa_name(detected));
}

}  // namespace
}  // namespace cw::kernels

namespace cw::kernels {
namespace {

// The multi-row (prefill) path computes each (row, token) in an order that does not depend on the other
// tokens of the call: any split of the tokens into calls of >= 2 tokens gives bit-identical results. The
// engine's batch-invariant mode relies on this (model/forward.h). Single-token calls take the GEMV path,
// whose order may differ for quantized types (the test reports which types agree bit for bit) unless
// forced onto the multi-row path.
TEST(Matmul, MultiTokenRowsDoNotDependOnTheOtherTokens) {
  std::mt19937 rng(11);
  const Isa detected = detected_isa();
  ThreadPool pool(2);
  MatmulScratch scratch;
  const int64_t n_in = 512, n_out = 40, n_tokens = 9;
  for (uint32_t type : kTypes) {
    auto w = random_matrix(type, n_in, n_out, rng);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n_tokens * n_in));
    for (auto& v : x) v = nd(rng);
    for (int isa = 0; isa <= static_cast<int>(detected); ++isa) {
      set_isa(static_cast<Isa>(isa));
      std::vector<float> all(static_cast<size_t>(n_tokens * n_out)), split(all.size()), one(static_cast<size_t>(n_out));
      matmul(w.data(), type, n_in, n_out, x.data(), n_tokens, all.data(), nullptr, pool, scratch);
      for (int64_t t0 = 0; t0 < n_tokens;) {
        const int64_t len = t0 == 0 ? 2 : (t0 == 2 ? 4 : n_tokens - t0);
        matmul(w.data(), type, n_in, n_out, x.data() + t0 * n_in, len, split.data() + t0 * n_out, nullptr, pool, scratch);
        t0 += len;
      }
      EXPECT_EQ(all, split) << "type " << type << " " << isa_name(static_cast<Isa>(isa));
      matmul(w.data(), type, n_in, n_out, x.data() + 5 * n_in, 1, one.data(), nullptr, pool, scratch);
      const bool same = std::equal(one.begin(), one.end(), all.begin() + 5 * n_out);
      std::printf("type %-5s %-6s single-token (GEMV) == multi-token row: %s\n", quant_traits(type)->name,
                  isa_name(static_cast<Isa>(isa)), same ? "yes" : "no");
      // Forced onto the multi-row path, a single token gets exactly its multi-token row.
      matmul(w.data(), type, n_in, n_out, x.data() + 5 * n_in, 1, one.data(), nullptr, pool, scratch, true);
      EXPECT_TRUE(std::equal(one.begin(), one.end(), all.begin() + 5 * n_out))
          << "type " << type << " " << isa_name(static_cast<Isa>(isa)) << ": forced multi-row path differs";
    }
    set_isa(detected);
  }
}

}  // namespace
}  // namespace cw::kernels

namespace cw::kernels {
namespace {

// matmul_group = the same matmuls one by one, bit for bit: parts of one or several activation types, the
// fused residual add, and the SwiGLU epilogue (= swiglu() of the separately computed gate and up rows).
TEST(MatmulGroup, EqualsSeparateMatmulsBitForBit) {
  std::mt19937 rng(5);
  const Isa detected = detected_isa();
  const int64_t n_in = 512;
  struct Case {
    uint32_t types[3];
    int64_t n_out[3];
  };
  // Shapes like Q/K/V: same type; mixed types of one activation type (Q4_K_M's Q4_K + Q6_K); three
  // activation types (Q8_0, Q8_K, F16); a partial last row block (37, 5).
  const Case cases[] = {{{kTypeQ4_0, kTypeQ4_0, kTypeQ4_0}, {64, 16, 16}},
                        {{kTypeQ4_K, kTypeQ4_K, kTypeQ6_K}, {48, 37, 5}},
                        {{kTypeQ8_0, kTypeQ4_K, kTypeF16}, {40, 33, 64}}};
  int checked = 0;
  for (const Case& c : cases) {
    std::vector<std::vector<uint8_t>> w;
    for (int i = 0; i < 3; ++i) w.push_back(random_matrix(c.types[i], n_in, c.n_out[i], rng));
    for (int64_t n_tokens : {1, 2, 9}) {
      std::normal_distribution<float> nd(0.0f, 1.0f);
      std::vector<float> x(static_cast<size_t>(n_tokens * n_in));
      for (auto& v : x) v = nd(rng);
      for (int isa = 0; isa <= static_cast<int>(detected); ++isa) {
        set_isa(static_cast<Isa>(isa));
        for (int threads : {1, 2, 3}) {
          ThreadPool pool(threads);
          MatmulScratch scratch;
          std::vector<float> sep[3], grp[3], res_sep[3], res_grp[3];
          MatmulPart parts[3];
          for (int i = 0; i < 3; ++i) {
            const size_t sz = static_cast<size_t>(n_tokens * c.n_out[i]);
            sep[i].assign(sz, NAN);
            grp[i].assign(sz, NAN);
            res_sep[i].resize(sz);
            for (auto& v : res_sep[i]) v = nd(rng);
            res_grp[i] = res_sep[i];
            matmul(w[i].data(), c.types[i], n_in, c.n_out[i], x.data(), n_tokens, sep[i].data(), nullptr, pool, scratch);
            for (size_t j = 0; j < sz; ++j) res_sep[i][j] += sep[i][j];
            parts[i].w = w[i].data();
            parts[i].w_type = c.types[i];
            parts[i].n_out = c.n_out[i];
            parts[i].y = grp[i].data();
            parts[i].residual = i == 1 ? res_grp[i].data() : nullptr;
          }
          matmul_group(parts, 3, n_in, x.data(), n_tokens, pool, scratch);
          const std::string where = std::string("types ") + quant_traits(c.types[0])->name + "/" +
                                    quant_traits(c.types[1])->name + "/" + quant_traits(c.types[2])->name +
                                    " tokens " + std::to_string(n_tokens) + " " + isa_name(static_cast<Isa>(isa)) +
                                    " threads " + std::to_string(threads);
          for (int i = 0; i < 3; ++i) EXPECT_EQ(grp[i], sep[i]) << where << " part " << i;
          EXPECT_EQ(res_grp[1], res_sep[1]) << where << " residual";

          // SwiGLU: parts 0 and 1 cut to the same row count (the smaller one).
          const int64_t n_ff = std::min(c.n_out[0], c.n_out[1]);
          std::vector<float> g(static_cast<size_t>(n_tokens * n_ff)), u(g.size()), gs(g.size()), us(g.size());
          matmul(w[0].data(), c.types[0], n_in, n_ff, x.data(), n_tokens, gs.data(), nullptr, pool, scratch);
          matmul(w[1].data(), c.types[1], n_in, n_ff, x.data(), n_tokens, us.data(), nullptr, pool, scratch);
          swiglu(gs.data(), us.data(), gs.data(), n_tokens * n_ff);
          MatmulPart glu[2];
          glu[0].w = w[0].data(), glu[0].w_type = c.types[0], glu[0].n_out = n_ff, glu[0].y = g.data();
          glu[1].w = w[1].data(), glu[1].w_type = c.types[1], glu[1].n_out = n_ff, glu[1].y = u.data();
          matmul_group(glu, 2, n_in, x.data(), n_tokens, pool, scratch, false, MatmulEpilogue::kSwiGlu);
          EXPECT_EQ(g, gs) << where << " swiglu";
          EXPECT_EQ(u, us) << where << " up rows";
          ++checked;
        }
      }
      set_isa(detected);
    }
  }
  EXPECT_EQ(checked, 3 * 3 * 3 * (static_cast<int>(detected) + 1));
}

}  // namespace
}  // namespace cw::kernels
