// `bench --depth` (issue 12): eval::bench_depths — decode rate after N tokens of context, per KV policy —
// and the CLI's refusal line. Model: a generated tiny llama (random f32 weights, training context 2048);
// nothing from ../shared.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "eval/bench.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "model/make_model.h"
#include "model/model.h"
#include "support/spm_vocab.h"
#include "support/testing.h"

namespace cw {
namespace {

using testing::chunkwise_binary;
using testing::run_command;
using testing::shell_quote;

const std::string& tiny_path() { return testing::tiny_llama_f32("bench-depth-tiny-f32.gguf", 12); }

std::unique_ptr<model::Model> load() {
  auto m = model::Model::load(tiny_path());
  CW_CHECK_MSG(m.is_ok(), m.status().to_string());
  return std::move(m).value();
}

eval::BenchOptions options(std::vector<int64_t> depths, std::string policy = "") {
  eval::BenchOptions o;
  o.depths = std::move(depths);
  o.n_gen = 4;
  o.reps = 2;
  o.n_threads = 1;
  o.kv_policy = std::move(policy);
  return o;
}

void expect_rows(const std::vector<eval::DepthResult>& rows, const std::vector<int64_t>& depths, int reps) {
  ASSERT_EQ(rows.size(), depths.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].depth, depths[i]);  // in the order given
    EXPECT_TRUE(std::isfinite(rows[i].decode_tok_s) && rows[i].decode_tok_s > 0) << rows[i].decode_tok_s;
    EXPECT_TRUE(std::isfinite(rows[i].ms_per_token) && rows[i].ms_per_token > 0);
    EXPECT_NEAR(rows[i].ms_per_token * rows[i].decode_tok_s, 1000.0, 1e-6);
    ASSERT_EQ(rows[i].decode_samples.size(), static_cast<size_t>(reps));
    for (double v : rows[i].decode_samples) EXPECT_TRUE(std::isfinite(v) && v > 0);
    EXPECT_GT(rows[i].kv_bytes, 0u);
    EXPECT_GT(rows[i].peak_rss_bytes, 0u);
  }
}

TEST(BenchDepths, FullReturnsOneRowPerDepthInOrder) {
  auto m = load();
  const std::vector<int64_t> depths = {300, 1, 40};
  auto r = eval::bench_depths(*m, options(depths));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  expect_rows(*r, depths, 2);
  // full: the cache holds depth + n_gen positions.
  EXPECT_GT((*r)[0].kv_bytes, (*r)[2].kv_bytes);
}

TEST(BenchDepths, FullRefusesPastTheTrainingContextSinkWindowStreams) {
  auto m = load();
  ASSERT_EQ(m->hparams().n_ctx_train, 2048);
  // 2048 + 4 > 2048: refused with the context rule's message before any work.
  auto full = eval::bench_depths(*m, options({100, 2048}));
  ASSERT_FALSE(full.is_ok());
  EXPECT_EQ(full.status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(full.status().message(), "a context of 2052 tokens exceeds the model's training context of 2048 tokens");
  EXPECT_TRUE(eval::bench_depths(*m, options({2044})).is_ok());  // exactly the training context

  // sink_window: the same depths and one past twice the training context stream through the window, in
  // constant memory (the same KV bytes at every depth).
  const std::vector<int64_t> depths = {100, 2048, 4500};
  auto sw = eval::bench_depths(*m, options(depths, "sink_window:sinks=4,window=60"));
  ASSERT_TRUE(sw.is_ok()) << sw.status().to_string();
  expect_rows(*sw, depths, 2);
  EXPECT_EQ((*sw)[0].kv_bytes, (*sw)[2].kv_bytes);
  EXPECT_TRUE(eval::bench_depths(*m, options({3000}, "window:window=64")).is_ok());
}

TEST(BenchDepths, BadOptionsAreRefused) {
  auto m = load();
  auto msg = [&](const eval::BenchOptions& o) { return eval::bench_depths(*m, o).status().message(); };
  EXPECT_EQ(msg(options({})), "no depths to measure");
  EXPECT_EQ(msg(options(std::vector<int64_t>(17, 8))), "at most 16 depths, got 17");
  EXPECT_EQ(msg(options({8, 0})), "a depth must be >= 1, got 0");
  auto o = options({8});
  o.n_gen = 0;
  EXPECT_EQ(msg(o), "the decode length must be >= 1 to measure a depth");
  EXPECT_FALSE(eval::bench_depths(*m, options({8}, "sink_window:sinks=4,window=bad")).is_ok());
}

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

TEST(BenchDepthsCli, ErrorsAreOneLineWithExit2) {
  const std::string cmd = chunkwise_binary() + " bench -m " + shell_quote(tiny_path()) + " -t 1 -r 1 -n 4 ";
  struct Case {
    std::string args, err;
  };
  const std::vector<Case> cases = {
      {"--depth 100,2048",
       "chunkwise bench: a context of 2052 tokens exceeds the model's training context of 2048 tokens\n"},
      {"--depth 100,0", "chunkwise bench: --depth takes a comma-separated list of token counts in [1, 1073741824], "
                        "got '100,0'\n"},
      {"--depth 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", "chunkwise bench: --depth takes at most 16 depths, got 17\n"},
      {"--depth 8 -p 16", "chunkwise bench: -p does not apply to --depth\n"},
      {"--depth 8 --scenario mixed", "chunkwise bench: --depth does not apply to --scenario\n"},
  };
  for (const Case& c : cases) {
    auto r = run_command(cmd + c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.err;
    EXPECT_EQ(r.err, c.err) << c.args;
    EXPECT_EQ(r.out, "") << c.args;
  }
  // Accepted: sink_window past the training context, one JSON object per depth.
  auto ok = run_command(cmd + "--depth 4000,16 --kv-policy sink_window:sinks=4,window=60 --json");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(count_lines(ok.out), 1) << ok.out;
  EXPECT_EQ(ok.out.rfind("[{", 0), 0u) << ok.out;
  EXPECT_NE(ok.out.find("\"depth\":4000"), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("\"depth\":16"), std::string::npos) << ok.out;
}

}  // namespace
}  // namespace cw
