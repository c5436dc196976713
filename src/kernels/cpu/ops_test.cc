// The dispatched element-wise ops (ops.h) against their references (ops_ref.h) on every ISA available.
#include "kernels/cpu/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/ops_ref.h"

namespace cw::kernels {
namespace {

TEST(Ops, SwiGluMatchesReferenceOnEveryIsa) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> wide(-30.0f, 30.0f);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const Isa detected = detected_isa();
  for (int64_t n : {1, 7, 8, 9, 64, 1000}) {
    std::vector<float> g(static_cast<size_t>(n)), u(g.size());
    for (auto& v : g) v = wide(rng);
    for (auto& v : u) v = nd(rng);
    // Edges: zero, the exp clamps (|g| > 87), tiny values.
    const float edges[] = {0.0f, -100.0f, 100.0f, 1e-30f, -1e-30f, 88.5f, -88.5f};
    for (size_t i = 0; i < g.size() && i < std::size(edges); ++i) g[i * 7 % g.size()] = edges[i];
    std::vector<float> ref(g.size());
    swiglu_ref(g.data(), u.data(), ref.data(), n);
    for (int isa = 0; isa <= static_cast<int>(detected); ++isa) {
      set_isa(static_cast<Isa>(isa));
      std::vector<float> y(g.size(), NAN), alias = g;
      swiglu(g.data(), u.data(), y.data(), n);
      swiglu(alias.data(), u.data(), alias.data(), n);  // in place, as the forward pass calls it
      for (int64_t i = 0; i < n; ++i) {
        const float tol = 4e-7f * std::fabs(ref[static_cast<size_t>(i)]) + 1e-30f;
        ASSERT_NEAR(y[static_cast<size_t>(i)], ref[static_cast<size_t>(i)], tol)
            << "g " << g[static_cast<size_t>(i)] << " isa " << isa_name(static_cast<Isa>(isa));
        ASSERT_EQ(alias[static_cast<size_t>(i)], y[static_cast<size_t>(i)]);
      }
    }
    set_isa(detected);
  }
}

// swiglu_rows = swiglu on each row of a strided block, bit for bit, on every ISA (in place too).
TEST(Ops, SwiGluRowsEqualsSwiGluPerRow) {
  std::mt19937 rng(8);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  const Isa detected = detected_isa();
  const int64_t ld = 37, rows = 5;
  for (int64_t cols : {1, 8, 16, 21}) {
    std::vector<float> g(static_cast<size_t>(rows * ld)), u(g.size());
    for (auto& v : g) v = nd(rng);
    for (auto& v : u) v = nd(rng);
    for (int isa = 0; isa <= static_cast<int>(detected); ++isa) {
      set_isa(static_cast<Isa>(isa));
      std::vector<float> want = g, got = g;
      for (int64_t r = 0; r < rows; ++r) swiglu(g.data() + r * ld + 3, u.data() + r * ld + 3, want.data() + r * ld + 3, cols);
      swiglu_rows(got.data() + 3, u.data() + 3, got.data() + 3, rows, cols, ld);
      EXPECT_EQ(got, want) << "cols " << cols << " " << isa_name(static_cast<Isa>(isa));
    }
    set_isa(detected);
  }
}

// rope_ref is rope_angles then rope_apply; the angles of one position serve every head of every layer.
TEST(Ops, RopeAnglesThenApplyEqualsRopeRef) {
  std::mt19937 rng(4);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t n_heads = 3, head_dim = 16;
  for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox}) {
    for (int64_t n_rot : {16, 8}) {
      for (double pos : {0.0, 1.0, 777.0, 1e6}) {
        std::vector<float> x(static_cast<size_t>(n_heads * head_dim));
        for (auto& v : x) v = nd(rng);
        std::vector<float> a = x, b = x, cs(static_cast<size_t>(n_rot));
        const float factors[8] = {1, 2, 4, 8, 1, 1, 1, 1};
        rope_ref(a.data(), n_heads, head_dim, n_rot, pos, 10000.0, 0.5, style, factors);
        rope_angles(pos, n_rot, 10000.0, 0.5, factors, cs.data());
        rope_apply(b.data(), n_heads, head_dim, n_rot, style, cs.data());
        EXPECT_EQ(a, b);
        if (pos != 0.0) {
          EXPECT_NE(a, x) << "nothing rotated";
        }
        // The unrotated tail (n_rot < head_dim) is untouched.
        for (int64_t h = 0; h < n_heads; ++h)
          for (int64_t d = n_rot; d < head_dim; ++d)
            EXPECT_EQ(b[static_cast<size_t>(h * head_dim + d)], x[static_cast<size_t>(h * head_dim + d)]);
        if (pos == 0.0) {
          EXPECT_EQ(b, x) << "position 0 is the identity";
        }
      }
    }
  }
}

}  // namespace
}  // namespace cw::kernels
