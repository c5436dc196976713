// The Engine executes KV policy actions (issue 12): requests under sink_window / window / recompute_window
// run through the scheduler, the block manager and the Forward pass, past the KV pool's size, side by side
// with other requests and with preemption, and each one's greedy tokens and logits equal the
// single-sequence executor's (runtime::PolicySession) fed in the same chunks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"
#include "runtime/engine.h"
#include "runtime/kv_executor.h"
#include "support/testing.h"

namespace cw::runtime {
namespace {

std::shared_ptr<const kv::KvPolicy> policy(const std::string& spec) {
  auto p = kv::make_kv_policy(spec);
  EXPECT_TRUE(p.is_ok()) << p.status().message();
  return std::shared_ptr<const kv::KvPolicy>(std::move(p).value());
}

struct Greedy {
  std::vector<int32_t> tokens;
  std::vector<float> logits;  // [n_predict, n_vocab]
};

// The single-sequence reference: the prompt in chunks of `ubatch`, then one token at a time.
Greedy reference(const model::Model& m, const std::string& spec, const std::vector<int32_t>& prompt, int64_t n_predict,
                 int64_t ubatch) {
  Greedy g;
  auto p = kv::make_kv_policy(spec);
  EXPECT_TRUE(p.is_ok());
  std::unique_ptr<PolicySession> ps;
  std::unique_ptr<model::Session> plain;
  auto acting = runtime::make_acting_policy(spec);
  if (*acting) {
    auto r = PolicySession::create(m, **acting, ubatch, model::KvType::kF32, 1, 16,
                                   static_cast<int64_t>(prompt.size()) + n_predict);
    EXPECT_TRUE(r.is_ok()) << r.status().message();
    ps = std::move(r).value();
    ps->session().set_batch_invariant(true);
  } else {
    plain = std::make_unique<model::Session>(m, 2048, model::KvType::kF32);
    plain->set_batch_invariant(true);
  }
  auto eval = [&](std::span<const int32_t> t, std::vector<float>* out, bool prompt = false) {
    if (ps) return ps->eval(t, false, out, prompt);
    Status s = Status::ok();
    for (size_t i = 0; i < t.size() && s.is_ok(); i += static_cast<size_t>(ubatch))
      s = plain->eval(t.subspan(i, std::min<size_t>(static_cast<size_t>(ubatch), t.size() - i)), false, out);
    return s;
  };
  std::vector<float> logits;
  EXPECT_TRUE(eval(prompt, &logits, /*prompt=*/true).is_ok());
  for (int64_t i = 0; i < n_predict; ++i) {
    g.logits.insert(g.logits.end(), logits.begin(), logits.end());
    const auto next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    g.tokens.push_back(next);
    if (i + 1 < n_predict) EXPECT_TRUE(eval(std::vector<int32_t>{next}, &logits).is_ok());
  }
  return g;
}

std::vector<int32_t> prompt_of(int n, int salt) {
  std::vector<int32_t> p{1};
  for (int i = 1; i < n; ++i) p.push_back(3 + (i * 7919 + salt * 104729) % 509);
  return p;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float d = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

EngineOptions options(int32_t n_blocks_kv, int64_t batch_tokens, const std::string& spec = "full") {
  EngineOptions o;
  o.block_size = 16;
  o.kv_type = model::KvType::kF32;
  o.batch_tokens = batch_tokens;
  o.batch_invariant = true;
  o.kv_policy = spec;
  o.ctx_tokens = int64_t{n_blocks_kv} * 16;
  return o;
}

TEST(EnginePolicy, OneRequestEqualsThePolicySessionAndRunsPastTheKvPool) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = model::Model::load(dir + "/models/stories260K.gguf");
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  for (const std::string spec : {"sink_window:sinks=4,window=64", "sink_window:sinks=20,window=48", "window:window=48",
                                 "recompute_window:window=40", "compress:keep=20,obs=8",
                                 "retain:budget=96,probe=6,sinks=16,local=32"}) {
    // compress keeps the prompt until it ends (the context rule holds): a shorter request. retain reads a
    // longer prompt in chunks of 16 - 6 rows (its probe rows count against the step's 16), pruning as it goes.
    const bool compress = spec.starts_with("compress"), retain = spec.starts_with("retain");
    SCOPED_TRACE(spec);
    // 16 blocks = 256 slots; the request holds 40 + 400 tokens.
    auto engine = Engine::create(**m, options(16, 16, spec));
    ASSERT_TRUE(engine.is_ok()) << engine.status().message();
    SeqRequest r;
    r.prompt = prompt_of(compress ? 180 : retain ? 300 : 40, 1);
    r.n_predict = compress ? 40 : 400;
    r.sampling.temperature = 0;
    r.keep_logits = true;
    auto id = (*engine)->submit(r);
    ASSERT_TRUE(id.is_ok()) << id.status().message();
    const SeqResult res = (*engine)->wait(*id);
    ASSERT_TRUE(res.error.is_ok()) << res.error.message();
    const Greedy want = reference(**m, spec, r.prompt, r.n_predict, retain ? 10 : 16);
    EXPECT_EQ(res.tokens, want.tokens);
    const float d = max_abs_diff(res.logits, want.logits);
    std::printf("[ engine   ] %s: %zu tokens past a 256-slot pool, max |logit diff| vs PolicySession %.3g\n",
                spec.c_str(), res.tokens.size(), d);
    EXPECT_LE(d, 1e-4f);
    const EngineStats st = (*engine)->stats();
    EXPECT_EQ(st.free_blocks + st.cached_blocks, st.kv_blocks) << "every block back after the request";
  }
}

// chunk_select (issue 16) runs in the engine's batches: a request under it, side by side with a full-attention
// request in the same steps, equals the single-sequence executor's greedy tokens and logits; its blocks past
// the span are never offered as a cached prefix (the second, identical request reuses at most the span).
TEST(EnginePolicy, ChunkSelectEqualsThePolicySessionBesideAFullRequest) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = model::Model::load(dir + "/models/stories260K.gguf");
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  const std::string spec = "chunk_select:span=128,sinks=4,local=32,top_k=2,expand=1,group=4";
  auto engine = Engine::create(**m, options(64, 48));
  ASSERT_TRUE(engine.is_ok()) << engine.status().message();
  std::vector<SeqRequest> reqs(3);
  for (size_t i = 0; i < reqs.size(); ++i) {
    reqs[i].prompt = prompt_of(i == 1 ? 60 : 150, i == 1 ? 2 : 1);
    reqs[i].n_predict = i == 1 ? 100 : 200;
    reqs[i].sampling.temperature = 0;
    reqs[i].keep_logits = true;
    if (i != 1) reqs[i].kv_policy = policy(spec);
  }
  std::vector<RequestId> ids;
  for (size_t i = 0; i < 2; ++i) {
    auto id = (*engine)->submit(reqs[i]);
    ASSERT_TRUE(id.is_ok()) << id.status().message();
    ids.push_back(*id);
  }
  for (size_t i = 0; i < 2; ++i) {
    const SeqResult res = (*engine)->wait(ids[i]);
    ASSERT_TRUE(res.error.is_ok()) << res.error.message();
    const std::string sp = i == 1 ? "full" : spec;
    const Greedy want = reference(**m, sp, reqs[i].prompt, reqs[i].n_predict, 48);
    EXPECT_EQ(res.tokens, want.tokens) << sp;
    const float d = max_abs_diff(res.logits, want.logits);
    std::printf("[ engine   ] %s: %zu tokens, max |logit diff| vs the single-sequence executor %.3g\n", sp.c_str(),
                res.tokens.size(), d);
    EXPECT_LE(d, 1e-4f) << sp;
  }
  // The same chunk_select request again: it may reuse its first 128 tokens' blocks, nothing past the span.
  auto id = (*engine)->submit(reqs[2]);
  ASSERT_TRUE(id.is_ok());
  const SeqResult again = (*engine)->wait(*id);
  ASSERT_TRUE(again.error.is_ok()) << again.error.message();
  EXPECT_LE(again.cached_tokens, 128);
  EXPECT_GT(again.cached_tokens, 0);
  const Greedy want = reference(**m, spec, reqs[2].prompt, reqs[2].n_predict, 48);
  EXPECT_EQ(again.tokens, want.tokens);
}

// Four requests at once, each under its own policy (one under the engine's `full`), in a pool too small
// for all of them: they share batches, get preempted and replay, and each still equals its reference.
TEST(EnginePolicy, PerRequestPoliciesSideBySideWithPreemption) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = model::Model::load(dir + "/models/stories260K.gguf");
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  const std::vector<std::string> specs = {"sink_window:sinks=4,window=64", "window:window=48", "recompute_window:window=24",
                                          "full"};
  auto engine = Engine::create(**m, options(14, 64));
  ASSERT_TRUE(engine.is_ok()) << engine.status().message();
  std::vector<SeqRequest> reqs;
  std::vector<RequestId> ids;
  for (size_t i = 0; i < specs.size(); ++i) {
    SeqRequest r;
    r.prompt = prompt_of(12 + 3 * static_cast<int>(i), static_cast<int>(i) + 2);
    r.n_predict = specs[i] == "full" ? 100 : 250;
    r.sampling.temperature = 0;
    r.keep_logits = true;
    if (specs[i] != "full") r.kv_policy = policy(specs[i]);
    auto id = (*engine)->submit(r);
    ASSERT_TRUE(id.is_ok()) << specs[i] << ": " << id.status().message();
    ids.push_back(*id);
    reqs.push_back(std::move(r));
  }
  int preemptions = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const SeqResult res = (*engine)->wait(ids[i]);
    ASSERT_TRUE(res.error.is_ok()) << specs[i] << ": " << res.error.message();
    preemptions += res.n_preemptions;
    const Greedy want = reference(**m, specs[i], reqs[i].prompt, reqs[i].n_predict, 64);
    EXPECT_EQ(res.tokens, want.tokens) << specs[i];
    EXPECT_LE(max_abs_diff(res.logits, want.logits), 1e-4f) << specs[i];
  }
  std::printf("[ engine   ] 4 policies side by side in 14 blocks: %d preemptions\n", preemptions);
  EXPECT_GE(preemptions, 1) << "the pool was meant to be too small for all four at once";
}

// A cached prefix is reused under a policy (up to max_slots tokens): the second request computes less and
// generates the same.
TEST(EnginePolicy, CachedPrefixReusedUnderSinkWindow) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = model::Model::load(dir + "/models/stories260K.gguf");
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  auto engine = Engine::create(**m, options(64, 512, "sink_window:sinks=4,window=64"));
  ASSERT_TRUE(engine.is_ok());
  SeqRequest r;
  r.prompt = prompt_of(70, 9);
  r.n_predict = 200;
  r.sampling.temperature = 0;
  const SeqResult first = (*engine)->wait(*(*engine)->submit(r));
  const SeqResult second = (*engine)->wait(*(*engine)->submit(r));
  ASSERT_TRUE(first.error.is_ok() && second.error.is_ok());
  EXPECT_EQ(first.cached_tokens, 0);
  EXPECT_EQ(second.cached_tokens, 64);  // 4 whole blocks of the 70-token prompt
  EXPECT_EQ(second.tokens, first.tokens);
}

TEST(EnginePolicy, BadPoliciesAreRefusedWithOneLine) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = model::Model::load(dir + "/models/stories260K.gguf");
  ASSERT_TRUE(m.is_ok());
  EngineOptions o = options(64, 64, "sink_window:sinks=4,window=8");  // window below one block
  auto e = Engine::create(**m, o);
  ASSERT_FALSE(e.is_ok());
  EXPECT_NE(e.status().message().find("smaller than one KV block"), std::string::npos) << e.status().message();
  auto ok = Engine::create(**m, options(64, 64));
  ASSERT_TRUE(ok.is_ok());
  SeqRequest r;
  r.prompt = prompt_of(10, 1);
  r.kv_policy = policy("window:window=2040");  // 2040 + 15 slots: no room within the 2048 training context
  auto id = (*ok)->submit(r);
  ASSERT_FALSE(id.is_ok());
  EXPECT_NE(id.status().message().find("training context"), std::string::npos) << id.status().message();
}

}  // namespace
}  // namespace cw::runtime
