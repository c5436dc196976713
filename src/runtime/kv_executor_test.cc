// The single-sequence executor of KV policy actions (issue 12): Session paged-mode primitives against a
// contiguous reference, and sink_window / window logits against a from-scratch reference.
#include "runtime/kv_executor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "gguf/writer.h"
#include "runtime/generate.h"
#include "support/ref_forward.h"
#include "support/testing.h"

namespace cw::runtime {
namespace {

std::vector<int32_t> stream(int64_t n, int64_t n_vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  t[0] = 1;  // BOS
  for (int64_t i = 1; i < n; ++i) t[static_cast<size_t>(i)] = static_cast<int32_t>(3 + (i * 7919 + 13) % (n_vocab - 3));
  return t;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

// Last-token logits of a fresh contiguous full-attention session over `tokens` at positions 0...
std::vector<float> reference(const model::Model& m, const std::vector<int32_t>& tokens, model::KvType kv) {
  model::Session s(m, static_cast<int64_t>(tokens.size()), kv);
  std::vector<float> logits;
  EXPECT_TRUE(s.eval(tokens, false, &logits).is_ok());
  return logits;
}

// stories260K cut to its first layer (testing::first_layers: with one layer, a kept cache equals a fresh
// session's over exactly the kept tokens, so the from-scratch reference is exact).
std::unique_ptr<model::Model> one_layer(const std::string& dir) {
  return testing::first_layers(dir + "/models/stories260K.gguf", 1);
}

std::vector<int32_t> slice(const std::vector<int32_t>& t, int64_t b, int64_t e) {
  return {t.begin() + b, t.begin() + e};
}

TEST(SessionPaged, DropSlotsMatchesContiguousReference) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = std::optional<std::unique_ptr<model::Model>>(one_layer(dir));
  const auto t = stream(49, (*m)->hparams().n_vocab);
  auto s = model::Session::create_paged(**m, 4, 16, model::KvType::kF32);
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  std::vector<float> logits;
  ASSERT_TRUE((*s)->eval(slice(t, 0, 48), false, &logits).is_ok());
  EXPECT_EQ((*s)->n_table_blocks(), 3);
  // Drop the first block: slots hold tokens 16..47 at their own positions 16..47.
  ASSERT_TRUE((*s)->drop_slots(0, 16).is_ok());
  EXPECT_EQ((*s)->n_past(), 32);
  EXPECT_EQ((*s)->n_table_blocks(), 2);
  (*s)->set_position_offset(16);
  ASSERT_TRUE((*s)->eval(slice(t, 48, 49), false, &logits).is_ok());
  EXPECT_LE(max_abs_diff(logits, reference(**m, slice(t, 16, 49), model::KvType::kF32)), 1e-4f);
  // Bad ranges.
  EXPECT_EQ((*s)->drop_slots(8, 16).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*s)->drop_slots(0, 64).code(), StatusCode::kInvalidArgument);
}

TEST(SessionPaged, CopySlotsThenDropMatchesContiguousReference) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = std::optional<std::unique_ptr<model::Model>>(one_layer(dir));
  const auto t = stream(49, (*m)->hparams().n_vocab);
  auto s = model::Session::create_paged(**m, 3, 16, model::KvType::kF32);
  ASSERT_TRUE(s.is_ok());
  std::vector<float> logits;
  ASSERT_TRUE((*s)->eval(slice(t, 0, 48), false, &logits).is_ok());
  // Copy block 1 over block 0 (crossing blocks through the table), drop block 1: tokens 16..47 remain.
  ASSERT_TRUE((*s)->copy_slots(16, 0, 16).is_ok());
  ASSERT_TRUE((*s)->drop_slots(16, 16).is_ok());
  (*s)->set_position_offset(16);
  ASSERT_TRUE((*s)->eval(slice(t, 48, 49), false, &logits).is_ok());
  EXPECT_LE(max_abs_diff(logits, reference(**m, slice(t, 16, 49), model::KvType::kF32)), 1e-4f);
  EXPECT_EQ((*s)->copy_slots(30, 0, 8).code(), StatusCode::kInvalidArgument);  // beyond n_past
  EXPECT_EQ((*s)->copy_slots(0, 4, 8).code(), StatusCode::kInvalidArgument);   // forward overlap
}

TEST(SessionPaged, MoveFirstKeysMatchesContiguousReference) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = std::optional<std::unique_ptr<model::Model>>(one_layer(dir));
  const auto t = stream(81, (*m)->hparams().n_vocab);
  auto s = model::Session::create_paged(**m, 5, 16, model::KvType::kF32);
  ASSERT_TRUE(s.is_ok());
  std::vector<float> logits;
  ASSERT_TRUE((*s)->eval(slice(t, 0, 48), false, &logits).is_ok());
  // Keep block 0 (tokens 0..15) as sinks, drop block 1, move the sinks next to the window; twice.
  ASSERT_TRUE((*s)->drop_slots(16, 16).is_ok());
  ASSERT_TRUE((*s)->move_first_keys(16, 16).is_ok());
  (*s)->set_position_offset(16);
  ASSERT_TRUE((*s)->eval(slice(t, 48, 64), false, &logits).is_ok());
  ASSERT_TRUE((*s)->drop_slots(16, 16).is_ok());
  ASSERT_TRUE((*s)->move_first_keys(16, 32).is_ok());
  (*s)->set_position_offset(32);
  ASSERT_TRUE((*s)->eval(slice(t, 64, 65), false, &logits).is_ok());
  std::vector<int32_t> ref = slice(t, 0, 16);
  for (int32_t x : slice(t, 48, 65)) ref.push_back(x);
  EXPECT_LE(max_abs_diff(logits, reference(**m, ref, model::KvType::kF32)), 1e-4f);
  EXPECT_EQ((*s)->move_first_keys(8, 48).code(), StatusCode::kInvalidArgument);  // not the kept count
  // Capacity: 5 blocks = 80 slots; 33 used.
  std::vector<int32_t> many(48, 5);
  EXPECT_EQ((*s)->eval(many, false, &logits).code(), StatusCode::kOutOfRange);
  EXPECT_EQ((*s)->n_past(), 33);
  model::Session plain(**m, 16);
  EXPECT_EQ(plain.drop_slots(0, 16).code(), StatusCode::kInvalidArgument);
}

// The acceptance: at every decode step, the logits under the policy equal those of a fresh session
// over exactly the sink tokens and the window tokens (positions 0..m), across several slides.
struct Case {
  int32_t block;
  int64_t sinks;
};

float run_equivalence(const model::Model& m, const Case& c, model::KvType kv, int* slides_out) {
  const int64_t window = 48;
  const std::string spec = c.sinks > 0 ? "sink_window:sinks=" + std::to_string(c.sinks) + ",window=" + std::to_string(window)
                                       : "window:window=" + std::to_string(window);
  auto policy = kv::make_kv_policy(spec);
  EXPECT_TRUE(policy.is_ok()) << policy.status().message();
  auto ps = PolicySession::create(m, **policy, 8, kv, 1, c.block);
  EXPECT_TRUE(ps.is_ok()) << ps.status().message();
  if (!ps.is_ok()) return 1e9f;
  const auto t = stream(c.sinks + window + 5 * c.block + 8, m.hparams().n_vocab);
  const int64_t n_prompt = 13;
  std::vector<float> logits;
  EXPECT_TRUE((*ps)->eval(slice(t, 0, n_prompt), false, &logits).is_ok());
  float worst = 0;
  int slides = 0;
  int64_t last_offset = 0;
  for (int64_t i = n_prompt; i < static_cast<int64_t>(t.size()); ++i) {
    const kv::SeqLayout& l = (*ps)->state().layout();
    std::vector<int32_t> ref;
    for (const kv::Segment& seg : l.segments)
      for (int64_t k = 0; k < seg.n; ++k) ref.push_back(t[static_cast<size_t>(seg.token_begin + k)]);
    EXPECT_EQ(static_cast<int64_t>(ref.size()), l.n_slots);
    ref.push_back(t[static_cast<size_t>(i)]);
    EXPECT_TRUE((*ps)->eval(slice(t, i, i + 1), false, &logits).is_ok());
    worst = std::max(worst, max_abs_diff(logits, reference(m, ref, kv)));
    if ((*ps)->state().layout().pos_offset != last_offset) ++slides;
    last_offset = (*ps)->state().layout().pos_offset;
  }
  *slides_out = slides;
  return worst;
}

TEST(PolicySession, SinkWindowEqualsFromScratchReference) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = std::optional<std::unique_ptr<model::Model>>(one_layer(dir));
  for (const Case& c : {Case{16, 4}, Case{16, 16}, Case{16, 0}, Case{32, 4}, Case{32, 16}, Case{32, 0}}) {
    int slides = 0;
    const float f32 = run_equivalence(**m, c, model::KvType::kF32, &slides);
    int slides16 = 0;
    const float f16 = run_equivalence(**m, c, model::KvType::kF16, &slides16);
    std::printf("[ equiv    ] block %d sinks %lld: %d slides, max |logit diff| f32 KV %.3g, f16 KV %.3g\n", c.block,
                static_cast<long long>(c.sinks), slides, f32, f16);
    EXPECT_GE(slides, 3) << "block " << c.block << " sinks " << c.sinks;
    EXPECT_LE(f32, 1e-4f) << "block " << c.block << " sinks " << c.sinks;
  }
}

// The same acceptance on the full 5-layer stories260K, where a fresh session over the kept tokens is no
// longer the reference (deeper layers' kept keys carry the dropped tokens' influence): the oracle is
// testing::reference_streaming_f64, an fp64 forward pass that streams the tokens one at a time through
// exactly the sinks and the window at the re-indexed positions. Tokens are fed one at a time (ubatch 1)
// and every step's logits are compared.
struct StreamResult {
  double max_diff = 0;        // over every step
  double max_diff_slid = 0;   // over the steps after the first slide
  double control_diff = 0;    // the same steps against full attention (no slide): the oracle must tell them apart
  int slides = 0, ref_slides = 0;
};

StreamResult run_streaming(const model::Model& m, const Case& c, model::KvType kv) {
  const int64_t window = 48;
  const std::string spec = c.sinks > 0 ? "sink_window:sinks=" + std::to_string(c.sinks) + ",window=" + std::to_string(window)
                                       : "window:window=" + std::to_string(window);
  StreamResult r;
  r.max_diff = 1e9;
  auto policy = kv::make_kv_policy(spec);
  EXPECT_TRUE(policy.is_ok()) << policy.status().message();
  if (!policy.is_ok()) return r;
  auto ps = PolicySession::create(m, **policy, 1, kv, 1, c.block);
  EXPECT_TRUE(ps.is_ok()) << ps.status().message();
  if (!ps.is_ok()) return r;
  const auto t = stream(c.sinks + window + 4 * c.block + 4, m.hparams().n_vocab);
  const std::vector<double> ref = testing::reference_streaming_f64(m, t, c.sinks, window, c.block, &r.ref_slides);
  const std::vector<double> full = testing::reference_streaming_f64(m, t, 0, int64_t{1} << 30, c.block);
  const size_t n_vocab = static_cast<size_t>(m.hparams().n_vocab);
  EXPECT_EQ(ref.size(), t.size() * n_vocab);
  r.max_diff = 0;
  int64_t last_offset = 0;
  std::vector<float> logits;
  for (size_t i = 0; i < t.size(); ++i) {
    EXPECT_TRUE((*ps)->eval(slice(t, static_cast<int64_t>(i), static_cast<int64_t>(i) + 1), false, &logits).is_ok());
    EXPECT_EQ(logits.size(), n_vocab);
    for (size_t j = 0; j < logits.size() && j < n_vocab; ++j) {
      const double d = std::fabs(static_cast<double>(logits[j]) - ref[i * n_vocab + j]);
      r.max_diff = std::max(r.max_diff, d);
      if (r.slides > 0) {
        r.max_diff_slid = std::max(r.max_diff_slid, d);
        r.control_diff = std::max(r.control_diff, std::fabs(static_cast<double>(logits[j]) - full[i * n_vocab + j]));
      }
    }
    if ((*ps)->state().layout().pos_offset != last_offset) ++r.slides;
    last_offset = (*ps)->state().layout().pos_offset;
  }
  return r;
}

TEST(PolicySession, SinkWindowEqualsStreamingReferenceFiveLayers) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = model::Model::load(dir + "/models/stories260K.gguf");
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  ASSERT_EQ((*m)->layers().size(), 5u);
  for (const Case& c : {Case{16, 4}, Case{16, 16}, Case{16, 0}, Case{32, 4}, Case{32, 16}, Case{32, 0}}) {
    const StreamResult f32 = run_streaming(**m, c, model::KvType::kF32);
    const StreamResult f16 = run_streaming(**m, c, model::KvType::kF16);
    std::printf("[ stream   ] 5 layers, block %d sinks %lld window 48: %d slides, max |logit diff| vs fp64 streaming "
                "reference: f32 KV %.3g (after the first slide %.3g), f16 KV %.3g (%.3g); control vs full attention "
                "after the first slide %.3g\n",
                c.block, static_cast<long long>(c.sinks), f32.slides, f32.max_diff, f32.max_diff_slid, f16.max_diff,
                f16.max_diff_slid, f32.control_diff);
    EXPECT_GE(f32.slides, 3) << "block " << c.block << " sinks " << c.sinks;
    EXPECT_EQ(f32.slides, f32.ref_slides) << "block " << c.block << " sinks " << c.sinks;
    EXPECT_LE(f32.max_diff, 1e-4) << "block " << c.block << " sinks " << c.sinks;
    EXPECT_LE(f16.max_diff, 0.1) << "block " << c.block << " sinks " << c.sinks;
    EXPECT_GE(f32.control_diff, 1e-2) << "block " << c.block << " sinks " << c.sinks;
  }
}

// recompute_window on the full 5-layer stories260K, one token at a time: every step's logits equal a fresh
// session over exactly the last W tokens (a recomputation is what the policy promises), however far the
// stream has gone; sink_window's differ (its kept keys carry the dropped tokens' influence).
TEST(PolicySession, RecomputeWindowEqualsAFreshSessionOverTheLastWTokens) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = model::Model::load(dir + "/models/stories260K.gguf");
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  for (const int64_t window : {int64_t{1}, int64_t{24}}) {
    auto policy = kv::make_kv_policy("recompute_window:window=" + std::to_string(window));
    ASSERT_TRUE(policy.is_ok());
    auto ps = PolicySession::create(**m, **policy, 1, model::KvType::kF32, 1, 16);
    ASSERT_TRUE(ps.is_ok()) << ps.status().message();
    const auto t = stream(3 * window + 40, (*m)->hparams().n_vocab);
    std::vector<float> logits;
    float worst = 0;
    for (int64_t i = 0; i < static_cast<int64_t>(t.size()); ++i) {
      ASSERT_TRUE((*ps)->eval(slice(t, i, i + 1), false, &logits).is_ok());
      const std::vector<float> ref = reference(**m, slice(t, std::max<int64_t>(0, i + 1 - window), i + 1), model::KvType::kF32);
      worst = std::max(worst, max_abs_diff(logits, ref));
      ASSERT_LE((*ps)->session().n_past(), window - 1);
    }
    std::printf("[ recompute] window %lld, %zu tokens: max |logit diff| vs a fresh session over the window %.3g\n",
                static_cast<long long>(window), t.size(), worst);
    EXPECT_LE(worst, 1e-4f) << "window " << window;
  }
  // Chunked appends (a prompt) keep the tokens the window needs: the decode after a 100-token prompt sees
  // exactly its last W tokens too.
  auto policy = kv::make_kv_policy("recompute_window:window=24");
  auto ps = PolicySession::create(**m, **policy, 7, model::KvType::kF32, 1, 16);
  ASSERT_TRUE(ps.is_ok());
  const auto t = stream(101, (*m)->hparams().n_vocab);
  std::vector<float> logits;
  ASSERT_TRUE((*ps)->eval(slice(t, 0, 100), false, &logits).is_ok());
  ASSERT_TRUE((*ps)->eval(slice(t, 100, 101), false, &logits).is_ok());
  EXPECT_LE(max_abs_diff(logits, reference(**m, slice(t, 101 - 24, 101), model::KvType::kF32)), 1e-4f);
}

TEST(PolicySession, FullRunsOnThePlainSessionAndRefusesTooLargeWindows) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = model::Model::load(dir + "/models/stories260K.gguf");
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  auto full = kv::make_kv_policy("full");
  ASSERT_TRUE(full.is_ok());
  EXPECT_FALSE(*policy_acts(**full, 16));
  EXPECT_EQ(PolicySession::create(**m, **full, 8).status().code(), StatusCode::kInvalidArgument);
  const int64_t n_train = (*m)->hparams().n_ctx_train;
  auto big = kv::make_kv_policy("window:window=" + std::to_string(n_train));
  ASSERT_TRUE(big.is_ok());
  auto r = PolicySession::create(**m, **big, 8);
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(r.status().message().find("training context"), std::string::npos) << r.status().message();
}

TEST(PolicySession, GenerateRunsPastTheTrainingContext) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = model::Model::load(dir + "/models/stories260K.gguf");
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  auto policy = kv::make_kv_policy("sink_window:sinks=4,window=64");
  ASSERT_TRUE(policy.is_ok());
  auto ps = PolicySession::create(**m, **policy, 16);
  ASSERT_TRUE(ps.is_ok()) << ps.status().message();
  SamplerParams sp;
  sp.temperature = 0.0f;
  Sampler sampler(sp, static_cast<int32_t>((*m)->hparams().n_vocab));
  GenerateOptions o;
  o.n_predict = (*m)->hparams().n_ctx_train + 200;
  auto r = generate(**ps, sampler, std::vector<int32_t>{1, 403, 407, 261, 378}, o);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(static_cast<int64_t>(r->tokens.size()), o.n_predict);
  // Before the first slide the attention is full: llama.cpp's greedy continuation.
  EXPECT_EQ(std::vector<int32_t>(r->tokens.begin(), r->tokens.begin() + 4), (std::vector<int32_t>{432, 383, 286, 261}));
  EXPECT_LE((*ps)->session().n_past(), (*ps)->state().max_slots());
  EXPECT_LE((*ps)->session().n_ctx(), 4 + 64 + 15 + 16 + 15);
}

}  // namespace
}  // namespace cw::runtime
