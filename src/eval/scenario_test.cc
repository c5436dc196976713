// Engine scenarios on stories260K (skips without ../shared/data): the runs complete with sane figures;
// the warm prefix request computes only its suffix.
#include "eval/scenario.h"

#include <gtest/gtest.h>

#include "support/testing.h"

namespace cw::eval {
namespace {

TEST(ScenarioTest, Percentile) {
  EXPECT_EQ(percentile({}, 50), 0);
  EXPECT_EQ(percentile({3, 1, 2}, 50), 2);
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4}, 50), 2.5);
  EXPECT_EQ(percentile({5, 1, 9}, 100), 9);
  EXPECT_EQ(percentile({5, 1, 9}, 0), 1);
}

TEST(ScenarioTest, MixedAndPrefixRunOnStories260K) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = model::Model::load(dir + "/models/stories260K.gguf");
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  for (auto schedule : {runtime::Schedule::kChunked, runtime::Schedule::kPrefillFirst}) {
    MixedScenarioOptions o;
    o.n_streams = 3;
    o.stream_tokens = 12;
    o.n_long = 2;
    o.long_prompt = 200;
    o.engine.schedule = schedule;
    o.engine.batch_tokens = 32;
    auto r = run_mixed_scenario(**m, o);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ(r->total_tokens, 3 * (16 + 12) + 2 * (200 + 4));
    EXPECT_GT(r->itl_samples, 0);
    EXPECT_LE(r->itl_p50_ms, r->itl_p99_ms);
    EXPECT_LE(r->itl_p99_ms, r->itl_max_ms);
    EXPECT_GT(r->total_tok_s, 0);
    EXPECT_GT(r->long_ttft_ms, 0);
  }
  MixedScenarioOptions bad;
  bad.stream_tokens = 3;
  EXPECT_EQ(run_mixed_scenario(**m, bad).status().code(), StatusCode::kOutOfRange);

  PrefixScenarioOptions p;
  p.prefix = 256;
  p.suffix = 16;
  p.reps = 2;
  auto r = run_prefix_scenario(**m, p);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->warm_cached_tokens, 256);
  EXPECT_EQ(r->warm_computed_tokens, 16);
  EXPECT_EQ(r->warm_samples_ms.size(), 2u);
  EXPECT_GT(r->cold_ttft_ms, 0);
}

}  // namespace
}  // namespace cw::eval
