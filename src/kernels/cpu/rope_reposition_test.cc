// rope_reposition (ops.h / ops_ref.h): moving cached keys to other RoPE positions. Checks that a key rotated at p
// and moved to p' is the key rotated at p' directly (fp32 and fp16 storage, both styles, partial rotation,
// freq_factors, positions up to 2^24, moves both ways), that 1,000 successive moves do not drift, that every ISA
// gives the reference's bits, and the edges (no rows, odd head counts, strides, identity moves).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/ops_ref.h"

namespace cw::kernels {
namespace {

struct RopeCase {
  RopeStyle style;
  int64_t n_head_kv, head_dim, n_rot;
  bool factors;
};

const float kFactors[64] = {1.0f, 1.0f, 1.5f, 2.0f, 4.0f, 8.0f, 8.0f, 16.0f, 32.0f, 1.25f, 3.0f, 5.0f,
                            1.0f, 2.5f, 7.0f, 9.0f, 1.0f,  1.0f,  2.0f,  2.0f,  3.0f,  3.0f,  4.0f,  4.0f,
                            5.0f, 6.0f, 7.0f, 8.0f, 9.0f,  10.0f, 11.0f, 12.0f, 1.0f,  1.0f,  1.0f,  1.0f,
                            1.0f, 1.0f, 1.0f, 1.0f, 1.0f,  1.0f,  1.0f,  1.0f,  1.0f,  1.0f,  1.0f,  1.0f,
                            1.0f, 1.0f, 1.0f, 1.0f, 1.0f,  1.0f,  1.0f,  1.0f,  1.0f,  1.0f,  1.0f,  1.0f,
                            1.0f, 1.0f, 1.0f, 1.0f};
constexpr double kBase = 10000.0, kScale = 1.0;

std::vector<RopeCase> cases() {
  std::vector<RopeCase> out;
  for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox})
    for (bool f : {false, true}) {
      out.push_back({style, 2, 64, 64, f});   // full rotation
      out.push_back({style, 3, 64, 32, f});   // partial rotation, odd head count
      out.push_back({style, 1, 128, 128, f});
      out.push_back({style, 5, 10, 6, f});    // tails: n_rot / 2 = 3 pairs, odd head_dim stride
    }
  return out;
}

void direct(std::vector<float>& x, const RopeCase& c, double pos) {
  rope_ref(x.data(), c.n_head_kv, c.head_dim, c.n_rot, pos, kBase, kScale, c.style, c.factors ? kFactors : nullptr);
}

// Largest |a - b| / |pair| over rotated pairs, where |pair| is the norm of b's pair (floored at 1e-30);
// and the largest |a - b|. Unrotated dims must be equal bit for bit.
struct Err {
  double abs = 0, rel = 0;
};
Err compare(const std::vector<float>& a, const std::vector<float>& b, const RopeCase& c) {
  Err e;
  const int64_t half = c.n_rot / 2;
  for (int64_t h = 0; h < c.n_head_kv; ++h) {
    const float* pa = a.data() + h * c.head_dim;
    const float* pb = b.data() + h * c.head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const int64_t i0 = c.style == RopeStyle::kNormal ? 2 * i : i;
      const int64_t i1 = c.style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
      const double norm = std::max(1e-30, std::hypot(double(pb[i0]), double(pb[i1])));
      for (int64_t j : {i0, i1}) {
        const double d = std::fabs(double(pa[j]) - double(pb[j]));
        e.abs = std::max(e.abs, d);
        e.rel = std::max(e.rel, d / norm);
      }
    }
    for (int64_t d = c.n_rot; d < c.head_dim; ++d) EXPECT_EQ(pa[d], pb[d]) << "unrotated dim " << d << " changed";
  }
  return e;
}

std::vector<float> random_keys(std::mt19937& rng, const RopeCase& c) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(c.n_head_kv * c.head_dim));
  for (auto& v : x) v = nd(rng);
  return x;
}

std::vector<std::pair<double, double>> moves(std::mt19937& rng) {
  const double big = 16777216.0;  // 2^24
  std::vector<std::pair<double, double>> m = {{0, 1},       {1, 0},           {5000, 4},      {4, 5000},
                                              {big, 0},     {0, big},         {big, big - 1}, {big - 1, big},
                                              {big, 4},     {1000000, 2043},  {2047, 2048},   {123457, 123457}};
  std::uniform_int_distribution<int64_t> pos(0, 1 << 24);
  for (int i = 0; i < 20; ++i) m.push_back({double(pos(rng)), double(pos(rng))});
  return m;
}

// (1) rotate at p, move to p' == rotate at p' directly (fp32 storage), on every ISA.
TEST(RopeReposition, MoveEqualsDirectRotationF32) {
  std::mt19937 rng(12);
  const Isa detected = detected_isa();
  Err worst;
  for (const RopeCase& c : cases()) {
    for (auto [p, q] : moves(rng)) {
      const std::vector<float> k = random_keys(rng, c);
      std::vector<float> want = k, got = k;
      direct(want, c, q);
      direct(got, c, p);
      for (int isa = 0; isa <= static_cast<int>(detected); ++isa) {
        set_isa(static_cast<Isa>(isa));
        std::vector<float> moved = got;
        rope_reposition(moved.data(), KvElem::kF32, 1, 0, c.n_head_kv, c.head_dim, c.n_rot, &p, &q, kBase, kScale,
                        c.style, c.factors ? kFactors : nullptr);
        const Err e = compare(moved, want, c);
        ASSERT_LE(e.rel, 1e-5) << "p " << p << " -> " << q << " n_rot " << c.n_rot << " " << isa_name(Isa(isa));
        worst.abs = std::max(worst.abs, e.abs);
        worst.rel = std::max(worst.rel, e.rel);
        if (p == q) {
          EXPECT_EQ(moved, got) << "a move to the same position is the identity";
        }
      }
      set_isa(detected);
    }
  }
  std::printf("f32 move vs direct rotation: max abs %.3g, max rel (to the pair's norm) %.3g\n", worst.abs, worst.rel);
}

// (2) fp16 storage: the key the forward pass stored at p (fp16 of the fp32 rotation), moved to p', is within one
// fp16 rounding unit of the fp32 direct rotation at p' on each side (stored input and result): |err| <= 2^-10 |pair|.
TEST(RopeReposition, MoveEqualsDirectRotationF16) {
  std::mt19937 rng(13);
  const Isa detected = detected_isa();
  double worst = 0;
  int64_t n = 0, same = 0;
  for (const RopeCase& c : cases()) {
    for (auto [p, q] : moves(rng)) {
      const std::vector<float> k = random_keys(rng, c);
      std::vector<float> want = k, at_p = k;
      direct(want, c, q);
      direct(at_p, c, p);
      std::vector<uint16_t> stored(at_p.size());
      for (size_t j = 0; j < at_p.size(); ++j) stored[j] = fp32_to_fp16(at_p[j]);
      for (int isa = 0; isa <= static_cast<int>(detected); ++isa) {
        set_isa(static_cast<Isa>(isa));
        std::vector<uint16_t> moved = stored;
        rope_reposition(moved.data(), KvElem::kF16, 1, 0, c.n_head_kv, c.head_dim, c.n_rot, &p, &q, kBase, kScale,
                        c.style, c.factors ? kFactors : nullptr);
        std::vector<float> got(moved.size());
        for (size_t j = 0; j < moved.size(); ++j) got[j] = fp16_to_fp32(moved[j]);
        // The unrotated dims are the stored fp16 values; compare those against the stored input.
        std::vector<float> ref = want;
        for (int64_t h = 0; h < c.n_head_kv; ++h)
          for (int64_t d = c.n_rot; d < c.head_dim; ++d)
            ref[size_t(h * c.head_dim + d)] = fp16_to_fp32(stored[size_t(h * c.head_dim + d)]);
        const Err e = compare(got, ref, c);
        ASSERT_LE(e.rel, std::ldexp(1.0, -10)) << "p " << p << " -> " << q << " " << isa_name(Isa(isa));
        worst = std::max(worst, e.rel);
        if (isa == 0) {
          for (size_t j = 0; j < moved.size(); ++j, ++n) same += moved[j] == fp32_to_fp16(ref[j]);
        }
        if (p == q) {
          EXPECT_EQ(moved, stored);
        }
      }
      set_isa(detected);
    }
  }
  std::printf("f16 move vs fp32 direct rotation: max rel (to the pair's norm) %.3g = %.2f x 2^-11; %.1f%% of values "
              "equal fp16(direct)\n",
              worst, worst / std::ldexp(1.0, -11), 100.0 * double(same) / double(n));
}

// (3) Repeated moves. The angles come from the exact positions every time, so no angle error accumulates;
// what adds up is the rounding of the stored values, at most one rounding unit u per move (u = 2^-24 for fp32,
// 2^-11 for fp16, relative to the pair's norm), so N moves are within N u of the direct rotation at the final
// position. Measured (printed) per scenario, max over the cases:
//   - 1,000 moves p -> p+1 -> ... (and p -> p-1 near 2^24): when a move changes a value by a nearly constant
//     fraction of an ulp (low frequencies, unit steps), the rounding error has the same sign every move and
//     grows linearly, up to ~0.3 N u (fp32) / 0.6 N u (fp16) here; fp16 low-frequency dims even stall (a change
//     below half an fp16 ulp rounds back to the stored value).
//   - 1,000 moves back and forth between p and p + 2^20: errors do not add up (a few u).
//   - 128 moves of -16 (a StreamingLLM window of 2,048 sliding by a block of 16): what a cached key sees;
//     fp16 reaches ~70 u (3.5%) in low-frequency dims, so policies should move keys rarely (or move the few
//     sinks from a pristine copy instead of the many window keys).
// Asserted: N u for every scenario and storage; back and forth within 16 u.
TEST(RopeReposition, RepeatedMovesDoNotDrift) {
  std::mt19937 rng(14);
  const char* names[] = {"1000 x (+1)", "1000 x back and forth 2^20", "1000 x (-1) near 2^24", "128 x (-16)"};
  double worst32[4] = {}, worst16[4] = {};
  for (const RopeCase& c : cases()) {
    if (c.head_dim < 64) continue;
    for (int mode = 0; mode < 4; ++mode) {
      const double p0 = mode == 2 ? 16777216.0 - 2000.0 : (mode == 3 ? 4096.0 : 1000.0);
      const int n_moves = mode == 3 ? 128 : 1000;
      const std::vector<float> k = random_keys(rng, c);
      std::vector<float> x32 = k;
      direct(x32, c, p0);
      std::vector<uint16_t> x16(x32.size());
      for (size_t j = 0; j < x32.size(); ++j) x16[j] = fp32_to_fp16(x32[j]);
      double pos = p0;
      for (int m = 0; m < n_moves; ++m) {
        const double next = mode == 0 ? pos + 1 : mode == 1 ? (m % 2 == 0 ? p0 + 1048576.0 : p0)
                            : mode == 2 ? pos - 1 : pos - 16;
        rope_reposition(x32.data(), KvElem::kF32, 1, 0, c.n_head_kv, c.head_dim, c.n_rot, &pos, &next, kBase, kScale,
                        c.style, c.factors ? kFactors : nullptr);
        rope_reposition(x16.data(), KvElem::kF16, 1, 0, c.n_head_kv, c.head_dim, c.n_rot, &pos, &next, kBase, kScale,
                        c.style, c.factors ? kFactors : nullptr);
        pos = next;
      }
      std::vector<float> want = k;
      direct(want, c, pos);
      const Err e32 = compare(x32, want, c);
      std::vector<float> got16(x16.size());
      for (size_t j = 0; j < x16.size(); ++j) got16[j] = fp16_to_fp32(x16[j]);
      for (int64_t h = 0; h < c.n_head_kv; ++h)  // unrotated dims: the stored fp16 values
        for (int64_t d = c.n_rot; d < c.head_dim; ++d) want[size_t(h * c.head_dim + d)] = got16[size_t(h * c.head_dim + d)];
      const Err e16 = compare(got16, want, c);
      const double u32 = std::ldexp(1.0, -24), u16 = std::ldexp(1.0, -11);
      EXPECT_LE(e32.rel, n_moves * u32) << names[mode] << " n_rot " << c.n_rot;
      EXPECT_LE(e16.rel, n_moves * u16) << names[mode] << " n_rot " << c.n_rot;
      if (mode == 1) {
        EXPECT_LE(e32.rel, 16 * u32) << names[mode];
        EXPECT_LE(e16.rel, 16 * u16) << names[mode];
      }
      worst32[mode] = std::max(worst32[mode], e32.rel / u32);
      worst16[mode] = std::max(worst16[mode], e16.rel / u16);
    }
  }
  for (int mode = 0; mode < 4; ++mode)
    std::printf("%-27s max error vs direct rotation: f32 %6.1f x 2^-24 (%.3g), f16 %6.1f x 2^-11 (%.3g)\n",
                names[mode], worst32[mode], std::ldexp(worst32[mode], -24), worst16[mode], std::ldexp(worst16[mode], -11));
}

// (4) Every ISA gives the reference's bits: many rows with a stride (the gap untouched), both storage types,
// every case, keys with zeros, subnormals, huge values, infinities and NaNs mixed in.
TEST(RopeReposition, EveryIsaEqualsReferenceBitForBit) {
  std::mt19937 rng(15);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_int_distribution<int64_t> pos(0, 1 << 24);
  const Isa detected = detected_isa();
  for (const RopeCase& c : cases()) {
    for (KvElem elem : {KvElem::kF32, KvElem::kF16}) {
      const int64_t n_rows = 37, stride = c.n_head_kv * c.head_dim + 5;
      std::vector<double> old_pos(n_rows), new_pos(n_rows);
      for (int64_t r = 0; r < n_rows; ++r) {
        old_pos[size_t(r)] = double(pos(rng));
        new_pos[size_t(r)] = r % 5 == 0 ? old_pos[size_t(r)] : double(pos(rng));
      }
      std::vector<float> f(size_t(n_rows * stride));
      for (auto& v : f) v = nd(rng) * (elem == KvElem::kF16 ? 8.0f : 1.0f);
      const float specials[] = {0.0f, -0.0f, 1e-40f, -3e-39f, 6e-8f, 3e38f, -3e38f, 60000.0f, INFINITY, NAN};
      for (size_t j = 0; j < std::size(specials); ++j) f[(j * 131 + 7) % f.size()] = specials[j];
      std::vector<uint8_t> bytes(f.size() * (elem == KvElem::kF16 ? 2 : 4));
      if (elem == KvElem::kF16) {
        for (size_t j = 0; j < f.size(); ++j) reinterpret_cast<uint16_t*>(bytes.data())[j] = fp32_to_fp16(f[j]);
      } else {
        std::memcpy(bytes.data(), f.data(), bytes.size());
      }
      std::vector<uint8_t> want = bytes;
      rope_reposition_ref(want.data(), elem, n_rows, stride, c.n_head_kv, c.head_dim, c.n_rot, old_pos.data(),
                          new_pos.data(), kBase, kScale, c.style, c.factors ? kFactors : nullptr);
      EXPECT_NE(want, bytes);
      for (int isa = 0; isa <= static_cast<int>(detected); ++isa) {
        set_isa(static_cast<Isa>(isa));
        std::vector<uint8_t> got = bytes;
        rope_reposition(got.data(), elem, n_rows, stride, c.n_head_kv, c.head_dim, c.n_rot, old_pos.data(),
                        new_pos.data(), kBase, kScale, c.style, c.factors ? kFactors : nullptr);
        EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size()), 0)
            << isa_name(Isa(isa)) << " n_rot " << c.n_rot << " f16 " << (elem == KvElem::kF16);
        // The gap after each row and the unrotated dims are not touched.
        const size_t esz = elem == KvElem::kF16 ? 2 : 4;
        for (int64_t r = 0; r < n_rows; ++r) {
          for (int64_t j = c.n_head_kv * c.head_dim; j < stride; ++j)
            ASSERT_EQ(std::memcmp(&got[size_t(r * stride + j) * esz], &bytes[size_t(r * stride + j) * esz], esz), 0);
          for (int64_t h = 0; h < c.n_head_kv; ++h)
            for (int64_t d = c.n_rot; d < c.head_dim; ++d) {
              const size_t o = size_t(r * stride + h * c.head_dim + d) * esz;
              ASSERT_EQ(std::memcmp(&got[o], &bytes[o], esz), 0);
            }
        }
      }
      set_isa(detected);
    }
  }
}

// (5) Edges: no rows (null pointer), coefficients computed once and applied to several rows (the layers of one
// slot) equal per-row rope_reposition, n_rot = 0 is a no-op, and identity moves leave every bit.
TEST(RopeReposition, Edges) {
  const Isa detected = detected_isa();
  for (int isa = 0; isa <= static_cast<int>(detected); ++isa) {
    set_isa(static_cast<Isa>(isa));
    rope_reposition(nullptr, KvElem::kF32, 0, 0, 3, 64, 64, nullptr, nullptr, kBase, kScale, RopeStyle::kNeox);
    rope_reposition_apply(nullptr, KvElem::kF16, 0, 0, 3, 64, 64, RopeStyle::kNormal, nullptr);
    rope_reposition_ref(nullptr, KvElem::kF32, 0, 0, 3, 64, 64, nullptr, nullptr, kBase, kScale, RopeStyle::kNeox);

    std::mt19937 rng(16);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const int64_t n_layer = 4, HKV = 3, D = 40, n_rot = 40, stride = 2 * HKV * D;
    std::vector<float> x(size_t(n_layer * stride));
    for (auto& v : x) v = nd(rng);
    const double p = 70000, q = 12;
    std::vector<float> cf(size_t(rope_reposition_coeff_floats(n_rot)));
    rope_reposition_coeffs(p, q, n_rot, kBase, kScale, nullptr, cf.data());
    // One coefficient set for every layer: the same row of coefficients at stride 0 is not allowed by the
    // layout (row r reads coeffs + r * 2 n_rot), so copy it per layer as a caller would.
    std::vector<float> cfs;
    for (int64_t l = 0; l < n_layer; ++l) cfs.insert(cfs.end(), cf.begin(), cf.end());
    std::vector<float> a = x, b = x;
    rope_reposition_apply(a.data(), KvElem::kF32, n_layer, stride, HKV, D, n_rot, RopeStyle::kNeox, cfs.data());
    for (int64_t l = 0; l < n_layer; ++l)
      rope_reposition(b.data() + l * stride, KvElem::kF32, 1, stride, HKV, D, n_rot, &p, &q, kBase, kScale,
                      RopeStyle::kNeox);
    EXPECT_EQ(a, b);

    std::vector<float> c = x;
    rope_reposition(c.data(), KvElem::kF32, 1, 0, 2 * HKV, D, 0, &p, &q, kBase, kScale, RopeStyle::kNormal);
    EXPECT_EQ(c, x) << "n_rot 0";
    std::vector<double> same = {0, 1, 16777216, 5e6};
    std::vector<float> d(size_t(4 * HKV * D));
    for (auto& v : d) v = nd(rng);
    std::vector<float> e = d;
    rope_reposition(e.data(), KvElem::kF32, 4, HKV * D, HKV, D, n_rot, same.data(), same.data(), kBase, kScale,
                    RopeStyle::kNormal);
    EXPECT_EQ(e, d) << "identity moves";
  }
  set_isa(detected);
}

}  // namespace
}  // namespace cw::kernels
