// Chunk-selective attention (kv policy `chunk_select`, model::ChunkSelect) through the single-sequence
// executor: a span that covers the sequence is full attention bit for bit; with one layer, what a row sees
// (sinks + local window, packed at consecutive positions) equals a fresh full-attention session over exactly
// those tokens. retain (InfiniRetri) through the same executor: a budget that holds everything is full
// attention; past it, the packed cache equals a fresh session over the kept tokens (one layer).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kv/policy.h"
#include "runtime/kv_executor.h"
#include "support/ref_forward.h"
#include "support/spm_vocab.h"
#include "support/testing.h"

namespace cw::runtime {
namespace {

std::vector<int32_t> stream(int64_t n, int64_t n_vocab, int64_t salt = 0) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  t[0] = 1;  // BOS
  for (int64_t i = 1; i < n; ++i)
    t[static_cast<size_t>(i)] = static_cast<int32_t>(3 + (i * 7919 + 13 + salt * 104729) % (n_vocab - 3));
  return t;
}

std::unique_ptr<kv::KvPolicy> policy(const std::string& spec) {
  auto p = kv::make_kv_policy(spec);
  EXPECT_TRUE(p.is_ok()) << p.status().message();
  return p.is_ok() ? std::move(p).value() : nullptr;
}

// Every row's logits of `tokens` fed in chunks of `ubatch`, through a PolicySession under `spec`.
std::vector<float> policy_logits(const model::Model& m, const std::string& spec, const std::vector<int32_t>& tokens,
                                 int64_t ubatch, model::KvType kv, int32_t block) {
  auto p = policy(spec);
  auto ps = PolicySession::create(m, *p, ubatch, kv, 2, block, static_cast<int64_t>(tokens.size()));
  EXPECT_TRUE(ps.is_ok()) << ps.status().message();
  std::vector<float> logits;
  if (ps.is_ok()) EXPECT_TRUE((*ps)->eval(tokens, true, &logits).is_ok());
  return logits;
}

// The same through a paged session without any policy (full attention).
std::vector<float> full_logits(const model::Model& m, const std::vector<int32_t>& tokens, int64_t ubatch,
                               model::KvType kv, int32_t block) {
  const auto n = static_cast<int64_t>(tokens.size());
  auto s = model::Session::create_paged(m, static_cast<int32_t>((n + block - 1) / block), block, kv, 2);
  EXPECT_TRUE(s.is_ok()) << s.status().message();
  std::vector<float> all, chunk;
  for (int64_t i = 0; i < n && s.is_ok(); i += ubatch) {
    const int64_t len = std::min(ubatch, n - i);
    EXPECT_TRUE((*s)->eval(std::span<const int32_t>(tokens).subspan(static_cast<size_t>(i), static_cast<size_t>(len)),
                           true, &chunk)
                    .is_ok());
    all.insert(all.end(), chunk.begin(), chunk.end());
  }
  return all;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float d = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

// A span that holds the whole sequence selects everything: the rows attend exactly as under full
// attention (the same kernels over the same slots), fp32 and fp16 caches, prompt chunks and single rows.
TEST(ChunkSelect, SpanHoldingTheSequenceIsFullAttentionBitForBit) {
  auto l = testing::load_model_and_tokenizer(testing::tiny_llama_f32("chunk_select_full", 7));
  const auto t = stream(300, l.model->hparams().n_vocab);
  for (model::KvType kv : {model::KvType::kF32, model::KvType::kF16})
    for (int64_t ubatch : {1, 37, 300}) {
      const auto got = policy_logits(*l.model, "chunk_select:span=512,local=64,top_k=4", t, ubatch, kv, 16);
      const auto want = full_logits(*l.model, t, ubatch, kv, 16);
      ASSERT_FALSE(want.empty());
      EXPECT_EQ(max_abs_diff(got, want), 0.0f) << "ubatch " << ubatch << (kv == model::KvType::kF32 ? " f32" : " f16");
    }
}

// Picking nothing (top_k = 0), a row sees the sink blocks and the local window of its row group, packed:
// with one layer (a key depends only on its token and position) that is a fresh session over exactly those
// tokens at positions 0.. — which the moved sink keys must reproduce (a wrong rotation moves them away).
// Checked for decode-like single rows (group 1) and for prompt chunks shared by row groups of 8.
TEST(ChunkSelect, SinksAndLocalWindowEqualAFreshSessionOverThoseTokens) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = testing::first_layers(dir + "/models/stories260K.gguf", 1);
  ASSERT_NE(m, nullptr);
  constexpr int32_t kBlock = 16;
  struct Case {
    int64_t sinks, local, group, ubatch, n;
  };
  for (const Case c : {Case{4, 40, 1, 1, 230}, Case{16, 40, 1, 1, 231}, Case{20, 48, 8, 24, 240}, Case{0, 64, 8, 40, 250}}) {
    const auto t = stream(c.n, m->hparams().n_vocab, c.sinks);
    const std::string spec = "chunk_select:span=128,sinks=" + std::to_string(c.sinks) + ",local=" +
                             std::to_string(c.local) + ",top_k=0,group=" + std::to_string(c.group);
    for (model::KvType kv : {model::KvType::kF32, model::KvType::kF16}) {
      const auto got = policy_logits(*m, spec, t, c.ubatch, kv, kBlock);
      const size_t n_vocab = static_cast<size_t>(m->hparams().n_vocab);
      ASSERT_EQ(got.size(), t.size() * n_vocab);
      // The last row is the last of its group; its group starts at row n - group (within its prompt chunk).
      const int64_t chunk_first = (c.n - 1) / c.ubatch * c.ubatch;
      const int64_t first_slot = std::max(chunk_first, c.n - c.group);
      const int64_t n_sink = (c.sinks + kBlock - 1) / kBlock;
      const int64_t local0 = std::max(n_sink, std::max<int64_t>(0, first_slot - c.local) / kBlock);
      std::vector<int32_t> seen(t.begin(), t.begin() + n_sink * kBlock);
      seen.insert(seen.end(), t.begin() + local0 * kBlock, t.end());
      ASSERT_LT(static_cast<int64_t>(seen.size()), c.n - kBlock) << "the case must drop something";
      model::Session ref(*m, static_cast<int64_t>(seen.size()), kv);
      std::vector<float> want;
      ASSERT_TRUE(ref.eval(seen, false, &want).is_ok());
      const std::vector<float> last(got.end() - static_cast<std::ptrdiff_t>(n_vocab), got.end());
      const float d = max_abs_diff(last, want);
      // Without the move, the same tokens at their own positions: the test must tell them apart.
      std::vector<float> unmoved = full_logits(*m, t, c.ubatch, kv, kBlock);
      const std::vector<float> full_last(unmoved.end() - static_cast<std::ptrdiff_t>(n_vocab), unmoved.end());
      std::printf("[ select   ] sinks %lld local %lld group %lld %s: max |diff| vs packed reference %.3g (full %.3g)\n",
                  static_cast<long long>(c.sinks), static_cast<long long>(c.local), static_cast<long long>(c.group),
                  kv == model::KvType::kF32 ? "f32" : "f16", d, max_abs_diff(last, full_last));
      EXPECT_LE(d, kv == model::KvType::kF32 ? 1e-4f : 0.05f);
      EXPECT_GT(max_abs_diff(last, full_last), 0.1f);
    }
  }
}

// compress: the observation window's attention mass sums to rows x heads x layers (every softmax sums to 1)
// and lands where the rows looked; keeping 100% is full attention bit for bit; keeping 12% drops tokens and
// decoding continues.
TEST(Compress, ObservationSumsToOneSoftmaxPerRowHeadAndLayerAndKeepAllIsFull) {
  auto l = testing::load_model_and_tokenizer(testing::tiny_llama_f32("chunk_select_full", 7));
  const model::HParams& hp = l.model->hparams();
  const auto t = stream(300, hp.n_vocab);
  auto s = model::Session::create_paged(*l.model, 32, 16, model::KvType::kF32, 2);
  ASSERT_TRUE(s.is_ok());
  std::vector<float> mass(32, 0.0f), logits;
  (*s)->set_observation(5, &mass);
  ASSERT_TRUE((*s)->eval(t, false, &logits).is_ok());
  double total = 0;
  for (float m : mass) total += m;
  EXPECT_NEAR(total, 5.0 * static_cast<double>(hp.n_head * hp.n_layer), 1e-3);
  EXPECT_EQ(mass[19], 0.0f) << "no slot there";
  // keep=100: nothing dropped, the same logits as full attention.
  std::vector<float> full_decode, kept_decode;
  for (const std::string spec : {"compress:keep=100", "compress:keep=12"}) {
    auto p = policy(spec);
    auto ps = PolicySession::create(*l.model, *p, 64, model::KvType::kF32, 2, 16, 310);
    ASSERT_TRUE(ps.is_ok()) << ps.status().message();
    std::vector<float> out;
    ASSERT_TRUE((*ps)->eval(t, false, &out, /*prompt_end=*/true).is_ok());
    const int32_t next[1] = {7};
    ASSERT_TRUE((*ps)->eval(next, false, &out).is_ok());
    if (spec == "compress:keep=100") {
      EXPECT_EQ((*ps)->state().layout().n_slots, 301);
      kept_decode = out;
    } else {
      EXPECT_EQ((*ps)->state().layout().n_slots, 36 + 1) << "12% of 300 tokens, and the decoded one";
      EXPECT_EQ((*ps)->state().layout().pos_offset + (*ps)->state().layout().n_slots, 301);
    }
  }
  auto plain = model::Session::create_paged(*l.model, 32, 16, model::KvType::kF32, 2);
  ASSERT_TRUE(plain.is_ok());
  for (size_t i = 0; i < t.size(); i += 64)
    ASSERT_TRUE((*plain)->eval(std::span<const int32_t>(t).subspan(i, std::min<size_t>(64, t.size() - i)), false, &logits).is_ok());
  const int32_t next[1] = {7};
  ASSERT_TRUE((*plain)->eval(next, false, &full_decode).is_ok());
  EXPECT_EQ(max_abs_diff(kept_decode, full_decode), 0.0f);
}

// retain: a budget that holds the whole sequence drops nothing, and the probe rows run after each chunk
// leave no trace — full attention bit for bit, prompt and decode.
TEST(Retain, BudgetHoldingTheSequenceIsFullAttentionBitForBit) {
  auto l = testing::load_model_and_tokenizer(testing::tiny_llama_f32("chunk_select_full", 7));
  const auto t = stream(300, l.model->hparams().n_vocab);
  for (model::KvType kv : {model::KvType::kF32, model::KvType::kF16}) {
    auto p = policy("retain:budget=320,probe=8,sinks=16,local=64");
    auto ps = PolicySession::create(*l.model, *p, 64, kv, 2, 16);
    ASSERT_TRUE(ps.is_ok()) << ps.status().message();
    std::vector<float> got, want;
    ASSERT_TRUE((*ps)->eval(t, false, &got, /*prompt_end=*/true).is_ok());
    const int32_t next[1] = {7};
    ASSERT_TRUE((*ps)->eval(next, false, &got).is_ok());
    EXPECT_EQ((*ps)->state().layout().n_slots, 301);
    std::vector<int32_t> all = t;
    all.push_back(7);
    const auto full = full_logits(*l.model, all, 64, kv, 16);
    want.assign(full.end() - static_cast<std::ptrdiff_t>(got.size()), full.end());
    EXPECT_EQ(max_abs_diff(got, want), 0.0f) << (kv == model::KvType::kF32 ? "f32" : "f16");
  }
}

// retain past its budget: with one layer (a key depends only on its token and position) the cache it keeps
// — sinks, probed blocks, local window, packed at positions 0.. by re-rotating the moved keys — equals a
// fresh session over exactly the kept tokens; a missing or wrong rotation would not.
TEST(Retain, KeptBlocksPackedEqualAFreshSessionOverThoseTokens) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = testing::first_layers(dir + "/models/stories260K.gguf", 1);
  ASSERT_NE(m, nullptr);
  const auto t = stream(600, m->hparams().n_vocab, 3);
  for (model::KvType kv : {model::KvType::kF32, model::KvType::kF16}) {
    auto p = policy("retain:budget=128,probe=6,sinks=16,local=40");
    auto ps = PolicySession::create(*m, *p, 48, kv, 2, 16);
    ASSERT_TRUE(ps.is_ok()) << ps.status().message();
    std::vector<float> out;
    ASSERT_TRUE((*ps)->eval(t, false, &out, /*prompt_end=*/true).is_ok());
    const kv::SeqLayout& l = (*ps)->state().layout();
    ASSERT_TRUE(l.check().is_ok());
    EXPECT_LE(l.n_slots, 128);
    ASSERT_GE(l.segments.size(), 3u) << "sinks, picked blocks and the local window, with holes between";
    std::vector<int32_t> kept;
    for (const kv::Segment& seg : l.segments)
      for (int64_t i = 0; i < seg.n; ++i) kept.push_back(t[static_cast<size_t>(seg.token_begin + i)]);
    const int32_t next[1] = {9};
    ASSERT_TRUE((*ps)->eval(next, false, &out).is_ok());
    kept.push_back(9);
    model::Session ref(*m, static_cast<int64_t>(kept.size()), kv);
    std::vector<float> want;
    ASSERT_TRUE(ref.eval(kept, false, &want).is_ok());
    // The same tokens at their own (unpacked) positions: what a missing rotation would compute.
    std::vector<int32_t> all = t;
    all.push_back(9);
    const auto unpacked = full_logits(*m, all, 48, kv, 16);
    const std::vector<float> full_last(unpacked.end() - static_cast<std::ptrdiff_t>(out.size()), unpacked.end());
    const float d = max_abs_diff(out, want);
    std::printf("[ retain   ] %s: %lld of 601 slots kept in %zu segments, max |diff| vs packed reference %.3g (full %.3g)\n",
                kv == model::KvType::kF32 ? "f32" : "f16", static_cast<long long>(l.n_slots + 1), l.segments.size(), d,
                max_abs_diff(out, full_last));
    EXPECT_LE(d, kv == model::KvType::kF32 ? 1e-4f : 0.05f);
    EXPECT_GT(max_abs_diff(out, full_last), 0.1f);
  }
}

TEST(ChunkSelect, SpecValidationAndState) {
  auto p = policy("chunk_select");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->spec(), "chunk_select:span=0,sinks=16,local=512,top_k=8,expand=1,group=16");
  EXPECT_TRUE(p->lifts_context_limit());
  auto st = p->make_state(16);
  ASSERT_TRUE(st.is_ok());
  EXPECT_TRUE((*st)->layout().select.on);
  EXPECT_EQ((*st)->max_slots(), -1);
  EXPECT_TRUE((*st)->after_append(100).empty());  // keeps everything: no action, ever
  EXPECT_EQ((*st)->layout().n_slots, 100);
  // A span too small for its own parts, unknown keys, bad values: one-line errors.
  auto small = kv::make_kv_policy("chunk_select:span=100,local=512");
  ASSERT_TRUE(small.is_ok());
  auto bad = (*small)->make_state(16);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("span 100"), std::string::npos) << bad.status().message();
  EXPECT_FALSE(kv::make_kv_policy("chunk_select:topk=3").is_ok());
  EXPECT_FALSE(kv::make_kv_policy("chunk_select:group=0").is_ok());
  // A span beyond the model's training context, and a sequence without a capacity.
  auto l = testing::load_model_and_tokenizer(testing::tiny_llama_f32("chunk_select_full", 7));
  auto wide = policy("chunk_select:span=4096");
  auto ps = PolicySession::create(*l.model, *wide, 64, model::KvType::kF16, 1, 16, 1000);
  ASSERT_FALSE(ps.is_ok());
  EXPECT_NE(ps.status().message().find("training context"), std::string::npos) << ps.status().message();
  auto no_cap = PolicySession::create(*l.model, *p, 64, model::KvType::kF16, 1, 16);
  ASSERT_FALSE(no_cap.is_ok());
  EXPECT_TRUE(policy_acts(*p, 16).value());
}

}  // namespace
}  // namespace cw::runtime
