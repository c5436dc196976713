// Scheduler tests without a model: a fake executor keeps a token id in every KV slot (instead of K/V
// vectors) and derives each output row's logits from the tokens it reads back through the block table.
// A wrong block table, a missing copy-on-write, a bad prefix match or a row fed at the wrong slot changes
// the logits, so every request's output must equal a plain single-sequence oracle over the same function.
#include "runtime/scheduler.h"
#include "runtime/fake_executor_test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <set>

namespace cw::runtime {
namespace {

using fake::FakeExecutor;
using fake::kVocab;
using fake::oracle;

SeqRequest make_request(std::mt19937& rng, int max_prompt, int max_predict, bool greedy, int32_t base = -1) {
  SeqRequest r;
  const int n = std::uniform_int_distribution<int>(1, max_prompt)(rng);
  for (int i = 0; i < n; ++i)
    r.prompt.push_back(base >= 0 && i < n / 2 ? (base + i) % kVocab
                                              : std::uniform_int_distribution<int32_t>(0, kVocab - 1)(rng));
  r.n_predict = std::uniform_int_distribution<int>(0, max_predict)(rng);
  r.sampling.temperature = greedy ? 0.0f : 0.9f;
  r.sampling.seed = rng();
  r.eos = std::uniform_int_distribution<int>(0, 3)(rng) == 0 ? 7 : -1;
  return r;
}

struct Harness {
  std::unique_ptr<kv::KvPolicy> policy;
  std::unique_ptr<Scheduler> sched;
  std::unique_ptr<FakeExecutor> exec;
  std::map<RequestId, SeqResult> results;
  std::map<RequestId, std::vector<int32_t>> streamed;
  StepPlan plan;
  StepEvents events;
  std::vector<float> logits;
  int64_t max_step_rows = 0;
  bool saw_mixed_prefill_first_step = false;

  explicit Harness(SchedulerOptions o) {
    o.n_vocab = kVocab;
    policy = std::move(kv::make_kv_policy("full")).value();
    auto s = Scheduler::create(o, policy.get());
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    sched = std::move(s).value();
    exec = std::make_unique<FakeExecutor>(o.n_blocks, o.block_size);
  }
  void deliver() {
    for (const auto& t : events.tokens) streamed[t.id].push_back(t.token);
    for (auto& r : events.finished) {
      ASSERT_EQ(results.count(r.id), 0u);
      results.emplace(r.id, std::move(r));
    }
    events.clear();
  }
  // One step; false when idle.
  bool step() {
    if (!sched->plan(&plan, &events)) {
      deliver();
      return false;
    }
    max_step_rows = std::max<int64_t>(max_step_rows, static_cast<int64_t>(plan.batch.tokens.size()));
    if (sched->options().schedule == Schedule::kPrefillFirst && plan.n_prefill_rows > 0 && plan.n_decode_rows > 0)
      saw_mixed_prefill_first_step = true;
    (void)run_planned();  // a failing executor is some tests' subject: they check the events
    return true;
  }
  // Executes the plan built by sched->plan() (tests inspect it first), completes or fails it, delivers.
  Status run_planned() {
    Status st = exec->execute(plan, &logits);
    if (st.is_ok()) {
      sched->complete(plan, logits, &events);
    } else {
      sched->fail(plan, st, &events);
    }
    deliver();
    return st;
  }
  void run_to_idle() {
    int guard = 0;
    while (step()) ASSERT_LT(++guard, 1000000);
    EXPECT_TRUE(sched->idle()) << "plan() had nothing to run but requests remain";
  }
  void expect_blocks_released() {
    const kv::BlockManager& bm = sched->blocks();
    Status st = bm.check_invariants();
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    for (int32_t b = 0; b < bm.n_blocks(); ++b) EXPECT_EQ(bm.ref_count(b), 0) << "block " << b << " still referenced";
    EXPECT_EQ(bm.n_free_blocks() + bm.n_cached_blocks(), bm.n_blocks());
  }
};

TEST(SchedulerTest, OptionsAndRequestsAreValidated) {
  auto policy = std::move(kv::make_kv_policy("full")).value();
  SchedulerOptions o{8, 4, 16, 4, Schedule::kChunked, kVocab};
  auto bad = o;
  bad.n_blocks = 0;
  EXPECT_EQ(Scheduler::create(bad, policy.get()).status().code(), StatusCode::kInvalidArgument);
  bad = o;
  bad.batch_tokens = 0;
  EXPECT_EQ(Scheduler::create(bad, policy.get()).status().code(), StatusCode::kInvalidArgument);
  bad = o;
  bad.max_running = 0;
  EXPECT_EQ(Scheduler::create(bad, policy.get()).status().code(), StatusCode::kInvalidArgument);
  auto s = Scheduler::create(o, policy.get());
  ASSERT_TRUE(s.is_ok());
  SeqRequest r;
  EXPECT_EQ((*s)->validate(r).code(), StatusCode::kInvalidArgument);  // empty prompt
  r.prompt = {1, 2, kVocab};
  EXPECT_EQ((*s)->validate(r).code(), StatusCode::kInvalidArgument);  // id out of range
  r.prompt = {1, 2, -1};
  EXPECT_EQ((*s)->validate(r).code(), StatusCode::kInvalidArgument);
  r.prompt = {1, 2, 3};
  r.n_predict = -1;
  EXPECT_EQ((*s)->validate(r).code(), StatusCode::kInvalidArgument);
  r.n_predict = 26;  // 3 + 25 = 28 = (8 - 1) * 4: fits exactly
  EXPECT_TRUE((*s)->validate(r).is_ok());
  r.n_predict = 27;
  const Status too_big = (*s)->validate(r);
  EXPECT_EQ(too_big.code(), StatusCode::kOutOfRange);
  EXPECT_NE(too_big.message().find("at most 28"), std::string::npos) << too_big.message();
  // A context size (EngineOptions::ctx_tokens) holds prompt + n_predict to it, before the KV fit.
  auto sized = o;
  sized.n_ctx = 20;
  auto with_ctx = Scheduler::create(sized, policy.get());
  ASSERT_TRUE(with_ctx.is_ok());
  r.n_predict = 17;  // 3 + 17 = 20: at the limit
  EXPECT_TRUE((*with_ctx)->validate(r).is_ok());
  r.n_predict = 18;
  const Status over_ctx = (*with_ctx)->validate(r);
  EXPECT_EQ(over_ctx.code(), StatusCode::kOutOfRange);
  EXPECT_EQ(over_ctx.message(),
            "the prompt (3 tokens) + 18 tokens to generate = 21 exceeds the context size of 20 tokens");
  EXPECT_TRUE((*s)->validate(r).is_ok());  // the same request without a context size
  r.n_predict = 4;
  r.sampling.top_p = 2;
  EXPECT_FALSE((*s)->validate(r).is_ok());
  EXPECT_FALSE((*s)->add(1, r).is_ok());
  EXPECT_TRUE((*s)->idle());
  EXPECT_EQ(schedule_from_name("fifo").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*schedule_from_name("prefill-first"), Schedule::kPrefillFirst);
}

TEST(SchedulerTest, SingleRequestMatchesOracleAndKeepsLogits) {
  for (int64_t budget : {1, 3, 16, 512}) {
    Harness h({64, 4, budget, 4, Schedule::kChunked, 0});
    SeqRequest r;
    for (int i = 0; i < 23; ++i) r.prompt.push_back((i * 7) % kVocab);
    r.n_predict = 9;
    r.sampling.temperature = 0;
    r.keep_logits = true;
    std::vector<float> want_logits;
    const auto want = oracle(r, &want_logits);
    ASSERT_TRUE(h.sched->add(5, r).is_ok());
    h.run_to_idle();
    ASSERT_EQ(h.results.count(5), 1u);
    const SeqResult& got = h.results[5];
    EXPECT_EQ(got.tokens, want) << "budget " << budget;
    EXPECT_EQ(h.streamed[5], want);
    EXPECT_EQ(got.reason, FinishReason::kLength);
    EXPECT_EQ(got.prompt_tokens, 23);
    EXPECT_EQ(got.cached_tokens, 0);
    EXPECT_EQ(got.computed_tokens, 23 + 8);
    EXPECT_EQ(got.logits, want_logits);
    EXPECT_LE(h.max_step_rows, budget);
    h.expect_blocks_released();
  }
}

// Many concurrent requests of mixed lengths, every budget / parallelism: outputs equal one-at-a-time.
TEST(SchedulerTest, BatchInvariance) {
  std::mt19937 rng(42);
  for (Schedule sched : {Schedule::kChunked, Schedule::kPrefillFirst}) {
    for (int64_t budget : {1, 5, 16, 64, 512}) {
      for (int64_t parallel : {1, 3, 16}) {
        Harness h({256, 8, budget, parallel, sched, 0});
        std::map<RequestId, std::vector<int32_t>> want;
        for (RequestId id = 0; id < 16; ++id) {
          SeqRequest r = make_request(rng, 40, 12, /*greedy=*/id % 2 == 0);
          want[id] = oracle(r);
          ASSERT_TRUE(h.sched->add(id, r).is_ok());
        }
        h.run_to_idle();
        ASSERT_EQ(h.results.size(), 16u);
        for (const auto& [id, w] : want) {
          EXPECT_EQ(h.results[id].tokens, w) << schedule_name(sched) << " budget " << budget << " parallel "
                                             << parallel << " request " << id;
          EXPECT_EQ(h.streamed[id], w);
        }
        if (sched == Schedule::kChunked) {
          EXPECT_LE(h.max_step_rows, budget);
        }
        EXPECT_FALSE(h.saw_mixed_prefill_first_step);
        h.expect_blocks_released();
      }
    }
  }
}

TEST(SchedulerTest, ChunkedStepsPutDecodesFirstUnderTheBudget) {
  Harness h({256, 8, 16, 8, Schedule::kChunked, 0});
  SeqRequest a;
  a.prompt = {1, 2, 3};
  a.n_predict = 40;
  a.sampling.temperature = 0;
  ASSERT_TRUE(h.sched->add(0, a).is_ok());
  ASSERT_TRUE(h.step());  // prefill of a -> first token
  SeqRequest b;
  b.prompt.assign(100, 5);
  b.n_predict = 2;
  b.sampling.temperature = 0;
  ASSERT_TRUE(h.sched->add(1, b).is_ok());
  // While b's 100-token prompt is prefilled in chunks of 15, a decodes in every step.
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(h.sched->plan(&h.plan, &h.events));
    EXPECT_EQ(h.plan.n_decode_rows, 1) << "step " << i;
    EXPECT_EQ(h.plan.ids.front(), 0);
    EXPECT_EQ(static_cast<int64_t>(h.plan.batch.tokens.size()), std::min<int64_t>(16, 1 + 100 - 15 * i));
    ASSERT_TRUE(h.run_planned().is_ok());
  }
  h.run_to_idle();
  EXPECT_EQ(h.results[0].tokens, oracle(a));
  EXPECT_EQ(h.results[1].tokens, oracle(b));
}

TEST(SchedulerTest, PrefillFirstRunsWholePromptsAndPausesDecodes) {
  Harness h({256, 8, 16, 8, Schedule::kPrefillFirst, 0});
  SeqRequest a;
  a.prompt = {1, 2, 3};
  a.n_predict = 10;
  a.sampling.temperature = 0;
  ASSERT_TRUE(h.sched->add(0, a).is_ok());
  ASSERT_TRUE(h.step());  // a's prompt -> first token
  ASSERT_TRUE(h.step());  // a decodes
  SeqRequest b;
  b.prompt.assign(40, 6);  // longer than the budget: still one whole-prompt step
  b.n_predict = 2;
  b.sampling.temperature = 0;
  ASSERT_TRUE(h.sched->add(1, b).is_ok());
  ASSERT_TRUE(h.sched->plan(&h.plan, &h.events));
  EXPECT_EQ(h.plan.n_prefill_rows, 40);
  EXPECT_EQ(h.plan.n_decode_rows, 0);
  ASSERT_TRUE(h.run_planned().is_ok());
  ASSERT_TRUE(h.sched->plan(&h.plan, &h.events));  // no prompt left: both decode
  EXPECT_EQ(h.plan.n_decode_rows, 2);
  EXPECT_EQ(h.plan.n_prefill_rows, 0);
  ASSERT_TRUE(h.run_planned().is_ok());
  h.run_to_idle();
  EXPECT_EQ(h.results[0].tokens, oracle(a));
  EXPECT_EQ(h.results[1].tokens, oracle(b));
}

TEST(SchedulerTest, PrefixIsReusedAndFullyCachedPromptIsCopiedOnWrite) {
  Harness h({64, 4, 512, 4, Schedule::kChunked, 0});
  SeqRequest a;
  for (int i = 0; i < 24; ++i) a.prompt.push_back((i * 5 + 1) % kVocab);
  a.n_predict = 3;
  a.sampling.temperature = 0;
  ASSERT_TRUE(h.sched->add(0, a).is_ok());
  h.run_to_idle();
  // Shares 22 tokens: 5 full blocks (20 tokens) are reused.
  SeqRequest b = a;
  b.prompt.resize(22);
  b.prompt.push_back(9);
  b.prompt.push_back(9);
  ASSERT_TRUE(h.sched->add(1, b).is_ok());
  h.run_to_idle();
  EXPECT_EQ(h.results[1].cached_tokens, 20);
  EXPECT_EQ(h.results[1].computed_tokens, 24 - 20 + 2);
  EXPECT_EQ(h.results[1].tokens, oracle(b));
  // The same prompt again: all 6 blocks match; the last token is recomputed into a copy of block 6.
  ASSERT_TRUE(h.sched->add(2, a).is_ok());
  h.run_to_idle();
  EXPECT_EQ(h.results[2].cached_tokens, 23);
  EXPECT_EQ(h.results[2].tokens, oracle(a));
  EXPECT_EQ(h.sched->stats().cached_tokens, 43);
  h.expect_blocks_released();
}

TEST(SchedulerTest, SameStepAdmissionNeverReadsBlocksBeingWritten) {
  // Two identical prompts arrive together: the second must not match the first's blocks before they
  // are computed (the fake executor would read unwritten slots).
  Harness h({64, 4, 512, 4, Schedule::kChunked, 0});
  SeqRequest a;
  for (int i = 0; i < 17; ++i) a.prompt.push_back(i + 3);
  a.n_predict = 4;
  a.sampling.temperature = 0;
  ASSERT_TRUE(h.sched->add(0, a).is_ok());
  ASSERT_TRUE(h.sched->add(1, a).is_ok());
  h.run_to_idle();
  EXPECT_EQ(h.results[0].tokens, oracle(a));
  EXPECT_EQ(h.results[1].tokens, oracle(a));
  EXPECT_EQ(h.results[1].cached_tokens, 16);  // admitted one step later, reusing a's 4 full blocks
  h.expect_blocks_released();
}

TEST(SchedulerTest, PreemptsWhenTheCacheRunsOutAndRecomputes) {
  // 12 blocks of 4 tokens; 6 requests that each grow to ~30 tokens cannot all stay resident.
  Harness h({12, 4, 64, 6, Schedule::kChunked, 0});
  std::map<RequestId, std::vector<int32_t>> want;
  std::mt19937 rng(7);
  for (RequestId id = 0; id < 6; ++id) {
    SeqRequest r;
    for (int i = 0; i < 10; ++i) r.prompt.push_back(std::uniform_int_distribution<int32_t>(0, kVocab - 1)(rng));
    r.n_predict = 20;
    r.sampling.temperature = id % 2 ? 0.7f : 0.0f;
    r.sampling.seed = static_cast<uint64_t>(id);
    want[id] = oracle(r);
    ASSERT_TRUE(h.sched->add(id, r).is_ok());
  }
  h.run_to_idle();
  EXPECT_GT(h.sched->stats().preemptions, 0);
  int preempted = 0;
  for (const auto& [id, w] : want) {
    EXPECT_EQ(h.results[id].tokens, w) << "request " << id;
    EXPECT_EQ(h.streamed[id], w);
    preempted += h.results[id].n_preemptions > 0;
  }
  EXPECT_GT(preempted, 0);
  h.expect_blocks_released();
}

TEST(SchedulerTest, CancelWaitingAndRunning) {
  Harness h({64, 4, 8, 4, Schedule::kChunked, 0});
  SeqRequest r;
  r.prompt.assign(30, 4);
  r.n_predict = 10;
  r.sampling.temperature = 0;
  ASSERT_TRUE(h.sched->add(0, r).is_ok());
  ASSERT_TRUE(h.sched->add(1, r).is_ok());
  ASSERT_TRUE(h.step());
  EXPECT_TRUE(h.sched->cancel(0, &h.events));  // running (mid-prefill)
  EXPECT_TRUE(h.sched->cancel(1, &h.events));  // waiting
  EXPECT_FALSE(h.sched->cancel(1, &h.events));
  EXPECT_FALSE(h.sched->cancel(99, &h.events));
  h.deliver();
  EXPECT_EQ(h.results[0].reason, FinishReason::kCancelled);
  EXPECT_EQ(h.results[1].reason, FinishReason::kCancelled);
  EXPECT_TRUE(h.sched->idle());
  h.expect_blocks_released();
}

TEST(SchedulerTest, ExecutorFailureFailsTheBatchAndRecoversTheRest) {
  Harness h({64, 4, 4, 4, Schedule::kChunked, 0});
  SeqRequest a;
  a.prompt.assign(6, 2);
  a.n_predict = 5;
  a.sampling.temperature = 0;
  SeqRequest b = a;
  b.prompt.assign(9, 3);
  ASSERT_TRUE(h.sched->add(0, a).is_ok());
  ASSERT_TRUE(h.step());  // a: 4 prompt rows
  ASSERT_TRUE(h.step());  // a: 2 rows -> first token; b admitted with 2 rows
  ASSERT_TRUE(h.sched->add(1, b).is_ok());
  h.exec->fail_at_call_ = h.exec->calls_ + 1;
  ASSERT_TRUE(h.step());
  h.run_to_idle();
  ASSERT_EQ(h.results.size(), 2u);
  int failed = 0;
  for (auto& [id, res] : h.results) {
    if (res.reason == FinishReason::kError) {
      ++failed;
      EXPECT_NE(res.error.message().find("injected"), std::string::npos);
    } else {
      EXPECT_EQ(res.tokens, oracle(id == 0 ? a : b));
    }
  }
  EXPECT_GE(failed, 1);
  h.expect_blocks_released();
}

// Random arrivals, cancels, tiny KV budgets, both schedules: every request finishes exactly once with the
// oracle's output (or a prefix of it when cancelled), and no block stays referenced.
TEST(SchedulerTest, RandomizedBlockAccounting) {
  std::mt19937 rng(1234);
  for (int round = 0; round < 60; ++round) {
    const int32_t bs = std::uniform_int_distribution<int32_t>(1, 6)(rng);
    const int32_t n_blocks = std::uniform_int_distribution<int32_t>(3, 40)(rng);
    const int64_t budget = std::uniform_int_distribution<int64_t>(1, 40)(rng);
    const int64_t parallel = std::uniform_int_distribution<int64_t>(1, 8)(rng);
    const Schedule sched = round % 3 == 2 ? Schedule::kPrefillFirst : Schedule::kChunked;
    Harness h({n_blocks, bs, budget, parallel, sched, 0});
    const int64_t cap = h.sched->max_request_tokens();
    std::map<RequestId, SeqRequest> reqs;
    std::set<RequestId> cancelled, rejected;
    RequestId next = 0;
    const int32_t shared_base = std::uniform_int_distribution<int32_t>(0, kVocab - 1)(rng);
    for (int step = 0; step < 400; ++step) {
      const int arrivals = std::uniform_int_distribution<int>(0, 2)(rng) == 0 && next < 30 ? 1 : 0;
      for (int a = 0; a < arrivals; ++a) {
        SeqRequest r = make_request(rng, 24, 10, rng() % 2 == 0, rng() % 2 ? shared_base : -1);
        const RequestId id = next++;
        const int64_t need = static_cast<int64_t>(r.prompt.size()) + std::max<int64_t>(r.n_predict - 1, 0);
        Status st = h.sched->add(id, r);
        EXPECT_EQ(st.is_ok(), need <= cap) << st.to_string();
        if (st.is_ok()) {
          reqs[id] = r;
        } else {
          EXPECT_EQ(st.code(), StatusCode::kOutOfRange);
          rejected.insert(id);
        }
      }
      if (!reqs.empty() && std::uniform_int_distribution<int>(0, 9)(rng) == 0) {
        const RequestId victim = std::uniform_int_distribution<RequestId>(0, next - 1)(rng);
        if (h.sched->cancel(victim, &h.events)) cancelled.insert(victim);
        h.deliver();
      }
      if (!h.step() && next >= 30) break;
      Status inv = h.sched->blocks().check_invariants();
      ASSERT_TRUE(inv.is_ok()) << inv.to_string();
    }
    h.run_to_idle();
    ASSERT_EQ(h.results.size(), reqs.size()) << "round " << round;
    for (const auto& [id, r] : reqs) {
      const SeqResult& got = h.results[id];
      const auto want = oracle(r);
      if (cancelled.count(id)) {
        EXPECT_EQ(got.reason, FinishReason::kCancelled);
        ASSERT_LE(got.tokens.size(), want.size());
        EXPECT_TRUE(std::equal(got.tokens.begin(), got.tokens.end(), want.begin())) << "round " << round;
      } else {
        EXPECT_NE(got.reason, FinishReason::kError) << got.error.to_string();
        EXPECT_EQ(got.tokens, want) << "round " << round << " request " << id;
      }
      EXPECT_EQ(h.streamed[id], got.tokens);
    }
    h.expect_blocks_released();
  }
}

// Requests under acting KV policies (sink_window, window, recompute_window, retain, per request) mixed with `full`
// ones, random pool sizes and budgets: the block accounting stays consistent after every step (drops,
// private copies, held sink blocks, truncations), every request finishes without error, policy requests
// may be longer than the pool, and every block is released at the end. (The outputs themselves are
// compared with the single-sequence executor on a real model in engine_policy_test.cc.)
TEST(SchedulerTest, RandomizedBlockAccountingUnderKvPolicies) {
  std::mt19937 rng(777);
  for (int round = 0; round < 40; ++round) {
    const int32_t bs = std::uniform_int_distribution<int32_t>(1, 6)(rng);
    const int32_t n_blocks = std::uniform_int_distribution<int32_t>(12, 40)(rng);
    const int64_t budget = std::uniform_int_distribution<int64_t>(1, 40)(rng);
    Harness h({n_blocks, bs, budget, 6, Schedule::kChunked, 0});
    std::vector<std::shared_ptr<const kv::KvPolicy>> policies;
    for (const std::string spec : {"sink_window:sinks=" + std::to_string(rng() % 9) + ",window=" + std::to_string(bs + rng() % 12),
                                   "window:window=" + std::to_string(bs + rng() % 10),
                                   "recompute_window:window=" + std::to_string(1 + rng() % 8),
                                   "retain:budget=" + std::to_string(5 * bs + rng() % 12) + ",probe=" +
                                       std::to_string(1 + rng() % 5) + ",sinks=" + std::to_string(rng() % (bs + 1)) +
                                       ",local=" + std::to_string(rng() % (bs + 1))})
      policies.push_back(std::shared_ptr<const kv::KvPolicy>(std::move(kv::make_kv_policy(spec)).value()));
    std::set<RequestId> added;
    int longer_than_pool = 0;
    for (RequestId id = 0; id < 16; ++id) {
      SeqRequest r = make_request(rng, 30, 120, rng() % 2 == 0, rng() % 2 ? 5 : -1);
      if (rng() % 4 != 0) r.kv_policy = policies[rng() % policies.size()];
      const int64_t need = static_cast<int64_t>(r.prompt.size()) + r.n_predict;
      if (h.sched->add(id, r).is_ok()) {
        added.insert(id);
        longer_than_pool += need > int64_t{n_blocks} * bs;
      }
    }
    int guard = 0;
    while (h.step()) {
      ASSERT_LT(++guard, 100000);
      Status inv = h.sched->blocks().check_invariants();
      ASSERT_TRUE(inv.is_ok()) << "round " << round << ": " << inv.to_string();
    }
    ASSERT_EQ(h.results.size(), added.size()) << "round " << round;
    for (const auto& [id, res] : h.results) {
      EXPECT_EQ(res.reason == FinishReason::kError, false) << res.error.to_string();
      EXPECT_EQ(h.streamed[id], res.tokens);
    }
    h.expect_blocks_released();
    if (round == 0) EXPECT_GT(longer_than_pool, 0);
  }
}

}  // namespace
}  // namespace cw::runtime

namespace cw::runtime {
namespace {

// The 20 requests of EngineTest.ConcurrentSubmitsStreamAndMatchTheOracle (4 threads x 5), arriving in
// every kind of order and timing the threads could produce: a random interleaving of the threads, and
// 0..3 steps run between two arrivals (the step thread running while the submitters are descheduled).
// The engine test's pool (64 blocks: no preemption happens) and a small one (16 blocks: preemptions and
// re-admission over the sequence's own cached blocks).
TEST(SchedulerTest, EveryArrivalTimingOfTheConcurrentSubmitsRequestsMatchesTheOracle) {
  std::vector<SeqRequest> reqs;
  for (int t = 0; t < 4; ++t) {
    for (int i = 0; i < 5; ++i) {
      SeqRequest r;
      const uint64_t seed = static_cast<uint64_t>(t * 10 + i);
      for (int k = 0; k < 3 + 7 * i + t; ++k) r.prompt.push_back(static_cast<int32_t>((seed * 31 + k * 7) % kVocab));
      r.n_predict = 2 + i;
      r.sampling.temperature = i % 2 ? 0.8f : 0.0f;
      r.sampling.seed = seed;
      reqs.push_back(r);
    }
  }
  for (int32_t n_blocks : {64, 16}) {
    SCOPED_TRACE("blocks " + std::to_string(n_blocks));
    int64_t preemptions = 0;
    for (uint32_t trial = 0; trial < 1500; ++trial) {
      std::mt19937 rng(trial);
      Harness h({n_blocks, 4, 16, 6, Schedule::kChunked, kVocab});
      std::vector<int> next(4, 0);
      std::map<RequestId, size_t> which;
      RequestId id = 0;
      for (int left = 20; left > 0; --left) {
        int t = std::uniform_int_distribution<int>(0, 3)(rng);
        while (next[static_cast<size_t>(t)] == 5) t = (t + 1) % 4;
        const size_t k = static_cast<size_t>(t * 5 + next[static_cast<size_t>(t)]++);
        ASSERT_TRUE(h.sched->add(id, reqs[k]).is_ok());
        which[id++] = k;
        for (int s = std::uniform_int_distribution<int>(0, 3)(rng); s > 0; --s) h.step();
      }
      h.run_to_idle();
      ASSERT_EQ(h.results.size(), 20u);
      for (const auto& [rid, k] : which) {
        const SeqResult& res = h.results.at(rid);
        ASSERT_EQ(res.reason, FinishReason::kLength) << "trial " << trial;
        ASSERT_EQ(res.tokens, oracle(reqs[k])) << "trial " << trial << " request " << rid;
        ASSERT_EQ(h.streamed[rid], res.tokens) << "trial " << trial;
        preemptions += res.n_preemptions;
      }
      h.expect_blocks_released();
    }
    if (n_blocks == 16) EXPECT_GT(preemptions, 100);
  }
}

}  // namespace
}  // namespace cw::runtime
