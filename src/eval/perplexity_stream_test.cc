// `perplexity --stream` (issue 12): eval::stream_perplexity — one sequence fed in micro-batches under a KV
// policy, every token after the first scored, results per segment — and the CLI on top of it. Model: a
// generated tiny llama (random f32 weights, training context 2048); nothing from ../shared.
#include "eval/perplexity_stream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "base/json_value.h"
#include "eval/perplexity.h"
#include "kv/policy.h"
#include "model/make_model.h"
#include "model/model.h"
#include "runtime/kv_executor.h"
#include "support/spm_vocab.h"
#include "support/testing.h"

namespace cw {
namespace {

using testing::chunkwise_binary;
using testing::run_command;
using testing::shell_quote;

const std::string& tiny_path() { return testing::tiny_llama_f32("stream-tiny-f32.gguf", 21); }

const model::Model& tiny() {
  static const std::unique_ptr<model::Model> m = [] {
    auto r = model::Model::load(tiny_path());
    CW_CHECK_MSG(r.is_ok(), r.status().to_string());
    return std::move(r).value();
  }();
  return *m;
}

// n deterministic token ids in [0, n_vocab).
std::vector<int32_t> tokens_of(int64_t n, uint64_t seed = 7) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  uint64_t x = seed;
  for (auto& v : t) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<int32_t>((x >> 33) % static_cast<uint64_t>(tiny().hparams().n_vocab));
  }
  return t;
}

eval::StreamOptions options(int64_t max_tokens, int64_t segment, int64_t ubatch, std::string policy = "") {
  eval::StreamOptions o;
  o.max_tokens = max_tokens;
  o.segment = segment;
  o.ubatch = ubatch;
  o.kv_type = model::KvType::kF32;
  o.kv_policy = std::move(policy);
  return o;
}

// Segments tile [0, n_positions) in order, each of `segment` positions but the last, and their
// token-weighted mean NLL is the total's.
void expect_tiling(const eval::StreamResult& r, int64_t segment) {
  ASSERT_FALSE(r.segments.empty());
  EXPECT_EQ(r.n_scored, r.n_positions);
  int64_t at = 0, scored = 0;
  double weighted = 0;
  for (size_t k = 0; k < r.segments.size(); ++k) {
    const eval::StreamSegment& s = r.segments[k];
    EXPECT_EQ(s.begin, at) << k;
    EXPECT_EQ(s.end, std::min(s.begin + segment, r.n_positions)) << k;
    EXPECT_EQ(s.n_scored, s.end - s.begin) << k;
    EXPECT_TRUE(std::isfinite(s.ppl) && s.ppl >= 1.0) << k << ": " << s.ppl;
    EXPECT_NEAR(s.ppl, std::exp(s.mean_nll), 1e-12 * s.ppl);
    EXPECT_GT(s.tok_s, 0) << k;
    EXPECT_GT(s.rss_bytes, 0u) << k;
    EXPECT_GE(s.peak_rss_bytes, s.rss_bytes) << k;
    weighted += s.mean_nll * static_cast<double>(s.n_scored);
    scored += s.n_scored;
    at = s.end;
  }
  EXPECT_EQ(at, r.n_positions);
  EXPECT_EQ(scored, r.n_scored);
  EXPECT_NEAR(weighted / static_cast<double>(scored), r.mean_nll, 1e-12 * std::abs(r.mean_nll));
  EXPECT_NEAR(r.ppl, std::exp(r.mean_nll), 1e-12 * r.ppl);
}

TEST(StreamPerplexity, FullEqualsOneShotSessionAndSegmentsTile) {
  const std::vector<int32_t> t = tokens_of(700);
  // ubatch 100 and segments of 128: chunks are cut at segment boundaries as well.
  auto r = eval::stream_perplexity(tiny(), t, options(700, 128, 100));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->policy, "full");
  EXPECT_EQ(r->n_positions, 699);
  EXPECT_TRUE(r->stopped.empty());
  EXPECT_EQ(r->stopped_at, -1);
  ASSERT_EQ(r->segments.size(), 6u);  // 5 x 128 + 59
  expect_tiling(*r, 128);

  // Independent: one forward over tokens [0, 699) on a plain Session, log-softmax computed here.
  model::Session s(tiny(), 700, model::KvType::kF32, 1);
  std::vector<float> logits;
  ASSERT_TRUE(s.eval(std::span<const int32_t>(t.data(), 699), true, &logits).is_ok());
  const int64_t n_vocab = tiny().hparams().n_vocab;
  long double sum = 0;
  for (int64_t p = 0; p < 699; ++p) {
    const float* row = &logits[static_cast<size_t>(p * n_vocab)];
    long double mx = row[0], z = 0;
    for (int64_t v = 1; v < n_vocab; ++v) mx = std::max<long double>(mx, row[v]);
    for (int64_t v = 0; v < n_vocab; ++v) z += std::exp(static_cast<long double>(row[v]) - mx);
    sum += std::log(z) + mx - row[t[static_cast<size_t>(p + 1)]];
  }
  const double expected = static_cast<double>(sum / 699);
  EXPECT_NEAR(r->mean_nll, expected, 1e-6 * expected);
}

TEST(StreamPerplexity, RepeatsTheTokensCyclically) {
  const std::vector<int32_t> t = tokens_of(50, 3);
  auto r = eval::stream_perplexity(tiny(), t, options(173, 40, 16));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->n_positions, 172);
  ASSERT_EQ(r->segments.size(), 5u);  // 4 x 40 + 12
  expect_tiling(*r, 40);
  // The same stream spelled out: identical figures.
  std::vector<int32_t> spelled;
  for (int64_t i = 0; i < 173; ++i) spelled.push_back(t[static_cast<size_t>(i % 50)]);
  auto e = eval::stream_perplexity(tiny(), spelled, options(173, 40, 16));
  ASSERT_TRUE(e.is_ok());
  EXPECT_EQ(r->mean_nll, e->mean_nll);
  for (size_t k = 0; k < 5; ++k) EXPECT_EQ(r->segments[k].mean_nll, e->segments[k].mean_nll);
  // Shorter than the vector: its beginning.
  auto p = eval::stream_perplexity(tiny(), spelled, options(50, 40, 16));
  ASSERT_TRUE(p.is_ok());
  EXPECT_EQ(p->n_positions, 49);
  EXPECT_EQ(p->segments[0].mean_nll, r->segments[0].mean_nll);
}

TEST(StreamPerplexity, FullStopsAtTheTrainingContext) {
  ASSERT_EQ(tiny().hparams().n_ctx_train, 2048);
  auto r = eval::stream_perplexity(tiny(), tokens_of(300), options(2500, 1000, 512, "full"));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->policy, "full");
  EXPECT_EQ(r->stopped, "training context 2048 reached");
  EXPECT_EQ(r->stopped_at, 2048);
  EXPECT_EQ(r->n_positions, 2048);  // positions 0..2047 scored tokens 1..2048
  ASSERT_EQ(r->segments.size(), 3u);
  expect_tiling(*r, 1000);
  // Exactly the training context: no stop (2049 tokens feed 2048 positions).
  auto exact = eval::stream_perplexity(tiny(), tokens_of(300), options(2049, 1000, 512, "full"));
  ASSERT_TRUE(exact.is_ok());
  EXPECT_TRUE(exact->stopped.empty());
  EXPECT_EQ(exact->n_positions, 2048);
  EXPECT_EQ(exact->mean_nll, r->mean_nll);
}

TEST(StreamPerplexity, SinkWindowAndWindowStreamPastThreeTrainingContexts) {
  const int64_t n = 3 * 2048 + 500;
  auto sw = eval::stream_perplexity(tiny(), tokens_of(900), options(n, 1024, 64, "sink_window:sinks=4,window=60"));
  ASSERT_TRUE(sw.is_ok()) << sw.status().to_string();
  EXPECT_EQ(sw->policy, "sink_window:sinks=4,window=60");
  EXPECT_TRUE(sw->stopped.empty());
  EXPECT_EQ(sw->n_positions, n - 1);
  ASSERT_EQ(sw->segments.size(), 7u);
  expect_tiling(*sw, 1024);
  auto w = eval::stream_perplexity(tiny(), tokens_of(900), options(n, 2048, 64, "window:window=64"));
  ASSERT_TRUE(w.is_ok()) << w.status().to_string();
  EXPECT_EQ(w->n_positions, n - 1);
  expect_tiling(*w, 2048);
  // Within the window + one micro-batch, the policy has dropped nothing: the same figures as full.
  auto f = eval::stream_perplexity(tiny(), tokens_of(900), options(60, 64, 64, "full"));
  auto s = eval::stream_perplexity(tiny(), tokens_of(900), options(60, 64, 64, "sink_window:sinks=4,window=60"));
  ASSERT_TRUE(f.is_ok() && s.is_ok());
  EXPECT_NEAR(s->mean_nll, f->mean_nll, 1e-6 * f->mean_nll);
}

TEST(StreamPerplexity, ProgressReportsEveryChunk) {
  std::vector<int64_t> done;
  auto o = options(101, 30, 16);
  o.progress = [&](int64_t d, int64_t total, double ppl) {
    EXPECT_EQ(total, 100);
    EXPECT_TRUE(std::isfinite(ppl));
    done.push_back(d);
  };
  ASSERT_TRUE(eval::stream_perplexity(tiny(), tokens_of(101), o).is_ok());
  // Segments of 30 cut into chunks of at most 16.
  EXPECT_EQ(done, (std::vector<int64_t>{16, 30, 46, 60, 76, 90, 100}));
}

TEST(StreamPerplexity, BadOptionsAreRefused) {
  const std::vector<int32_t> t = tokens_of(64);
  auto status = [&](const eval::StreamOptions& o, std::span<const int32_t> tok) {
    return eval::stream_perplexity(tiny(), tok, o).status();
  };
  Status s = status(options(64, 0, 16), t);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "the segment length must be >= 1, got 0");
  s = status(options(1, 16, 16), t);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "the stream must have at least 2 tokens to score one, got 1");
  s = status(options(64, 16, 16), {});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "no tokens to stream");
  EXPECT_EQ(status(options(64, 16, 0), t).message(), "the micro-batch size must be >= 1");
  std::vector<int32_t> bad = t;
  bad[5] = static_cast<int32_t>(tiny().hparams().n_vocab);
  EXPECT_EQ(status(options(64, 16, 16), bad).code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status(options(64, 16, 16), bad).message().find("at index 5"), std::string::npos);
  // Bad specs: make_acting_policy's errors.
  for (const char* spec : {"sink_window:sinks=4,window=bad", "no_such_policy", "sink_window:sinks=4,window=60,x=1"}) {
    s = status(options(64, 16, 16, spec), t);
    EXPECT_FALSE(s.is_ok()) << spec;
    EXPECT_EQ(s.message(), runtime::make_acting_policy(spec).status().message()) << spec;
  }
  // A window + micro-batch beyond the training context: PolicySession::create's error.
  const std::string wide = "sink_window:sinks=4,window=2000";
  s = status(options(64, 16, 256, wide), t);
  ASSERT_FALSE(s.is_ok());
  auto pol = runtime::make_acting_policy(wide);
  ASSERT_TRUE(pol.is_ok() && *pol != nullptr);
  const Status create = runtime::PolicySession::create(tiny(), **pol, 256, model::KvType::kF32).status();
  EXPECT_EQ(s.code(), create.code());
  EXPECT_EQ(s.message(), create.message());
}

TEST(DefaultUbatch, ShrinksUnderAPolicyThatActs) {
  EXPECT_EQ(*eval::default_ubatch(tiny(), "", 512), 512);
  EXPECT_EQ(*eval::default_ubatch(tiny(), "full", 512), 512);
  const std::string spec = "sink_window:sinks=4,window=1020";
  auto st = (*runtime::make_acting_policy(spec))->make_state(16);
  ASSERT_TRUE(st.is_ok());
  const int64_t room = 2048 - (*st)->max_slots();
  EXPECT_EQ(*eval::default_ubatch(tiny(), spec, 2000), room);
  EXPECT_EQ(*eval::default_ubatch(tiny(), spec, 100), 100);
  // The default makes PolicySession::create accept the policy.
  auto r = eval::stream_perplexity(tiny(), tokens_of(40), options(40, 16, *eval::default_ubatch(tiny(), spec, 4096), spec));
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_FALSE(eval::default_ubatch(tiny(), "sink_window:window=bad", 512).is_ok());
}

// CLI: --json shape, --plot, one-line errors.
std::string text_file() {
  const std::string path = testing::temp_dir() + "/stream-text.txt";
  std::ofstream f(path);
  for (int i = 0; i < 300; ++i) f << "w" << (i % 50) << " w" << (i * 7 % 50) << " ";
  return path;
}

TEST(StreamPerplexityCli, JsonHasSegmentsPerPolicy) {
  const std::string svg = testing::temp_dir() + "/stream.svg";
  auto r = run_command(chunkwise_binary() + " perplexity --stream -m " + shell_quote(tiny_path()) + " -f " +
                       shell_quote(text_file()) +
                       " --kv-policy sink_window:sinks=4,window=60 --kv-policy full --max-tokens 2500 --segment 1000"
                       " --json -q --plot " + shell_quote(svg));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  auto j = JsonValue::parse(r.out);
  ASSERT_TRUE(j.is_ok()) << j.status().to_string() << "\n" << r.out;
  ASSERT_TRUE(j->is_object());
  EXPECT_EQ(j->get("n_tokens")->as_number(), 2500);
  EXPECT_EQ(j->get("text")->as_string(), text_file());
  const JsonValue* pols = j->get("policies");
  ASSERT_TRUE(pols != nullptr && pols->is_array());
  ASSERT_EQ(pols->items().size(), 2u);
  const JsonValue& sw = pols->items()[0];
  EXPECT_EQ(sw.get("policy")->as_string(), "sink_window:sinks=4,window=60");
  EXPECT_TRUE(sw.get("stopped")->is_null());
  const auto& segs = sw.get("segments")->items();
  ASSERT_EQ(segs.size(), 3u);
  EXPECT_EQ(segs[0].get("begin")->as_number(), 0);
  EXPECT_EQ(segs[0].get("end")->as_number(), 1000);
  EXPECT_EQ(segs[2].get("end")->as_number(), 2499);
  for (const JsonValue& s : segs)
    for (const char* k : {"ppl", "tok_s", "rss_mb", "peak_rss_mb"})
      EXPECT_TRUE(s.get(k) != nullptr && s.get(k)->is_number() && s.get(k)->as_number() > 0) << k;
  for (const char* k : {"ppl", "n_scored", "seconds", "tok_s", "peak_rss_mb"})
    EXPECT_TRUE(sw.get(k) != nullptr && sw.get(k)->is_number()) << k;
  EXPECT_EQ(sw.get("n_scored")->as_number(), 2499);
  const JsonValue& full = pols->items()[1];
  EXPECT_EQ(full.get("policy")->as_string(), "full");
  EXPECT_EQ(full.get("stopped")->as_string(), "training context 2048 reached");
  EXPECT_EQ(full.get("stopped_at")->as_number(), 2048);
  EXPECT_EQ(full.get("n_scored")->as_number(), 2048);
  std::ifstream in(svg);
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(doc.rfind("<svg", 0), 0u) << doc.substr(0, 100);
  EXPECT_NE(doc.find("sink_window:sinks=4"), std::string::npos);  // legend (long labels are cut)
  EXPECT_NE(doc.find("full (stopped at 2048)"), std::string::npos);

  // Text output: a table per policy, then totals.
  auto t = run_command("cat " + shell_quote(text_file()) + " | " + chunkwise_binary() + " perplexity --stream -m " +
                       shell_quote(tiny_path()) + " -f - --kv-policy window:window=64 --max-tokens 3000 -q");
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_EQ(t.out.rfind("window:window=64 (ubatch 512)\n", 0), 0u) << t.out;
  EXPECT_NE(t.out.find("[0, 1024)"), std::string::npos) << t.out;  // default segment: at least 1024
  EXPECT_NE(t.out.find("total: PPL "), std::string::npos) << t.out;
}

TEST(StreamPerplexityCli, ErrorsAreOneLineWithExit2) {
  const std::string cmd =
      chunkwise_binary() + " perplexity -m " + shell_quote(tiny_path()) + " -f " + shell_quote(text_file()) + " -q ";
  struct Case {
    std::string args, err;
  };
  const std::vector<Case> cases = {
      {"--kv-policy full --kv-policy window:window=64",
       "chunkwise perplexity: --kv-policy may be repeated only with --stream\n"},
      {"--segment 100", "chunkwise perplexity: --segment applies only to --stream\n"},
      {"--max-tokens 100", "chunkwise perplexity: --max-tokens applies only to --stream\n"},
      {"--stream --ctx 64", "chunkwise perplexity: --ctx does not apply to --stream\n"},
      {"--stream --segment 0", "chunkwise perplexity: --segment must be in [1, 1099511627776], got 0\n"},
      {"--stream --bogus", "chunkwise perplexity: unknown option '--bogus' (see chunkwise perplexity --help)\n"},
      {"--stream --kv-policy sink_window:sinks=4,window=60 --kv-policy nope",
       "chunkwise perplexity: " + runtime::make_acting_policy("nope").status().message() + "\n"},
  };
  for (const Case& c : cases) {
    auto r = run_command(cmd + c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.err;
    EXPECT_EQ(r.err, c.err) << c.args;
    EXPECT_EQ(r.out, "") << c.args;
  }
}

}  // namespace
}  // namespace cw
