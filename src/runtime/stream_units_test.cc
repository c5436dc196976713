// Issue 15, the pieces under the public streaming API: TextStream (stop strings, UTF-8 holdback),
// compute_logprobs against a scalar log-softmax, Delivery (per-request order, bounded queues, parallel
// keys), and the runtime::Engine additions over the fake executor (logprobs, deadline, stop_after).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <future>
#include <mutex>
#include <numeric>
#include <thread>

#include "base/utf8.h"
#include "runtime/delivery.h"
#include "runtime/engine.h"
#include "runtime/fake_executor_test_util.h"
#include "runtime/logprobs.h"
#include "runtime/text_stream.h"

namespace cw::runtime {
namespace {

// Pushes `pieces`, returns what was released (piece by piece) and whether a stop string was hit.
struct Streamed {
  std::vector<std::string> released;
  bool stopped = false;
  size_t stopped_at_piece = 0;
  std::string all() const { return std::accumulate(released.begin(), released.end(), std::string()); }
};
Streamed stream(const std::vector<std::string>& pieces, std::vector<std::string> stop, TextStream* ts = nullptr) {
  TextStream local(std::move(stop));
  TextStream& t = ts != nullptr ? *ts : local;
  Streamed out;
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (t.push(pieces[i])) {
      out.stopped = true;
      out.stopped_at_piece = i;
      break;
    }
    out.released.push_back(t.take_ready());
  }
  out.released.push_back(t.finish());
  EXPECT_EQ(out.all(), t.text());
  return out;
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_valid_prefix_len(s.substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

TEST(TextStream, StopStringSplitAcrossPieces) {
  const Streamed s = stream({"Hello", " wor", "ld. ", "STO", "P here", " more"}, {"STOP"});
  EXPECT_TRUE(s.stopped);
  EXPECT_EQ(s.stopped_at_piece, 4u);
  EXPECT_EQ(s.all(), "Hello world. ");
  for (const std::string& p : s.released) EXPECT_EQ(p.find("ST"), std::string::npos) << p;
}

TEST(TextStream, StopStringAtTheVeryStart) {
  const Streamed s = stream({"\n", "\nrest"}, {"\n\n"});
  EXPECT_TRUE(s.stopped);
  EXPECT_EQ(s.all(), "");
  const Streamed one = stream({"END of it"}, {"END"});
  EXPECT_TRUE(one.stopped);
  EXPECT_EQ(one.all(), "");
}

TEST(TextStream, HeldBackPrefixIsReleasedWhenItCannotMatch) {
  TextStream t({"abc"});
  EXPECT_FALSE(t.push("xxab"));
  EXPECT_EQ(t.take_ready(), "xx");  // "ab" could start "abc"
  EXPECT_FALSE(t.push("d"));
  EXPECT_EQ(t.take_ready(), "abd");
  EXPECT_FALSE(t.push("a"));
  EXPECT_EQ(t.take_ready(), "");
  EXPECT_EQ(t.finish(), "a");  // the end: nothing can match any more
  EXPECT_EQ(t.text(), "xxabda");
}

TEST(TextStream, EarliestOfSeveralStopStrings) {
  const Streamed s = stream({"one two three"}, {"three", "two"});
  EXPECT_EQ(s.all(), "one ");
  const Streamed overlap = stream({"aaa", "b"}, {"aab", "ab"});
  EXPECT_EQ(overlap.all(), "a");
}

TEST(TextStream, NeverSplitsAUtf8Character) {
  // "é€😀" split after every byte, pushed one byte at a time and in pairs.
  const std::string text = "h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80!";
  for (size_t step : {1, 2, 3}) {
    std::vector<std::string> pieces;
    for (size_t i = 0; i < text.size(); i += step) pieces.push_back(text.substr(i, step));
    const Streamed s = stream(pieces, {});
    EXPECT_EQ(s.all(), text);
    for (const std::string& p : s.released) EXPECT_TRUE(valid_utf8(p)) << "step " << step;
  }
  // With a multi-byte stop string split inside its characters.
  const Streamed s = stream({"a\xE2\x82", "\xAC", "b\xF0\x9F", "\x98\x80", "c"}, {"\xF0\x9F\x98\x80"});
  EXPECT_TRUE(s.stopped);
  EXPECT_EQ(s.all(), "a\xE2\x82\xAC" "b");
  for (const std::string& p : s.released) EXPECT_TRUE(valid_utf8(p));
}

TEST(TextStream, InvalidBytesPassAsTheyAre) {
  const Streamed s = stream({"a\xFF", "\xC3", "(", "\xE2\x82"}, {});
  EXPECT_EQ(s.all(), "a\xFF\xC3(\xE2\x82");
  EXPECT_EQ(s.released[0], "a\xFF");
  EXPECT_EQ(s.released[1], "");        // \xC3 may still become a character
  EXPECT_EQ(s.released[2], "\xC3(");   // ... and now cannot
  EXPECT_EQ(s.released.back(), "\xE2\x82");  // the end releases what is left
}

TEST(TextStream, ValidatesStopStrings) {
  EXPECT_TRUE(validate_stop_strings({}).is_ok());
  EXPECT_TRUE(validate_stop_strings({"a", "b", "c", "d"}).is_ok());
  EXPECT_EQ(validate_stop_strings({"a", "b", "c", "d", "e"}).message(),
            "at most 4 stop strings are allowed, got 5");
  EXPECT_EQ(validate_stop_strings({"a", ""}).message(), "stop string 2 is empty");
  EXPECT_EQ(validate_stop_strings({std::string(257, 'x')}).message(),
            "stop string 1 has 257 bytes; at most 256 are allowed");
  EXPECT_TRUE(validate_stop_strings({std::string(256, 'x')}).is_ok());
  EXPECT_EQ(validate_stop_strings({"ok\xC3"}).code(), StatusCode::kInvalidArgument);
}

// ---- compute_logprobs

std::vector<double> log_softmax(std::span<const float> row) {
  double max = -INFINITY;
  for (float x : row) max = std::max(max, static_cast<double>(x));
  double sum = 0;
  for (float x : row) sum += std::exp(static_cast<double>(x) - max);
  std::vector<double> out;
  for (float x : row) out.push_back(static_cast<double>(x) - max - std::log(sum));
  return out;
}

void expect_matches_reference(std::span<const float> row, int32_t token, int k, const TokenLogprobs& got) {
  const std::vector<double> ref = log_softmax(row);
  EXPECT_EQ(got.token, token);
  EXPECT_NEAR(got.logprob, ref[static_cast<size_t>(token)], 1e-5);
  std::vector<int32_t> order(row.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
  ASSERT_EQ(got.top.size(), std::min<size_t>(static_cast<size_t>(k), row.size()));
  double p = 0;
  for (size_t i = 0; i < got.top.size(); ++i) {
    EXPECT_EQ(got.top[i].token, order[i]) << "rank " << i;
    EXPECT_NEAR(got.top[i].logprob, ref[static_cast<size_t>(order[i])], 1e-5);
    if (i > 0) {
      EXPECT_GE(got.top[i - 1].logprob, got.top[i].logprob);
    }
    p += std::exp(static_cast<double>(got.top[i].logprob));
  }
  EXPECT_LE(p, 1.0 + 1e-5);
}

TEST(Logprobs, MatchAScalarLogSoftmax) {
  std::vector<float> row = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f, 7.25f, -40.0f};
  for (int k : {0, 1, 3, 7, 20}) {
    TokenLogprobs lp;
    compute_logprobs(row, 4, k, &lp);
    expect_matches_reference(row, 4, k, lp);
  }
  std::vector<float> big(32000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>((i * 7919) % 1000) / 37.0f - 10.0f;
  TokenLogprobs lp;
  compute_logprobs(big, 123, 20, &lp);
  expect_matches_reference(big, 123, 20, lp);
}

// ---- Delivery

TEST(Delivery, RunsEachKeyInOrderAndKeysInParallel) {
  Delivery d(2, 1000);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::mutex mu;
  std::vector<int> slow_seen, fast_seen;
  std::promise<void> fast_done;
  ASSERT_TRUE(d.post(1, [&] { gate.wait(); }));  // key 1 blocks its worker
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(d.post(1, [&, i] {
      std::lock_guard<std::mutex> lock(mu);
      slow_seen.push_back(i);
    }));
    ASSERT_TRUE(d.post(2, [&, i] {
      std::lock_guard<std::mutex> lock(mu);
      fast_seen.push_back(i);
    }));
  }
  d.post_final(2, [&] { fast_done.set_value(); });
  // Key 2 completes while key 1's first task is still blocked.
  ASSERT_EQ(fast_done.get_future().wait_for(std::chrono::seconds(60)), std::future_status::ready);
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_TRUE(slow_seen.empty());
    ASSERT_EQ(fast_seen.size(), 50u);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(fast_seen[static_cast<size_t>(i)], i);
  }
  release.set_value();
  d.shutdown();  // drains
  ASSERT_EQ(slow_seen.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(slow_seen[static_cast<size_t>(i)], i);
}

TEST(Delivery, AFullQueueRefusesButTheFinalTaskAlwaysQueues) {
  Delivery d(1, 3);
  std::promise<void> release, started;
  std::shared_future<void> gate = release.get_future().share();
  ASSERT_TRUE(d.post(7, [&] {
    started.set_value();
    gate.wait();
  }));
  started.get_future().wait();  // the worker took it: the queue is empty again
  int ran = 0;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(d.post(7, [&] { ++ran; }));
  EXPECT_FALSE(d.post(7, [&] { ran += 100; }));
  EXPECT_TRUE(d.post(8, [&] { ++ran; }));  // other keys are not affected (and wait for the one worker)
  bool final_ran = false;
  d.post_final(7, [&] { final_ran = true; });
  release.set_value();
  d.shutdown();
  EXPECT_EQ(ran, 4);
  EXPECT_TRUE(final_ran);
}

// ---- runtime::Engine over the fake executor

std::unique_ptr<Engine> fake_engine(int sleep_ms = 0) {
  auto exec = std::make_unique<fake::FakeExecutor>(256, 4);
  exec->sleep_ms_ = sleep_ms;
  SchedulerOptions o{256, 4, 16, 4, Schedule::kChunked, fake::kVocab};
  auto e = Engine::create(std::move(exec), o, "full");
  EXPECT_TRUE(e.is_ok()) << e.status().to_string();
  return std::move(e).value();
}

SeqRequest request(int n_prompt, int n_predict, uint64_t seed, float temp) {
  SeqRequest r;
  for (int i = 0; i < n_prompt; ++i) r.prompt.push_back(static_cast<int32_t>((seed * 13 + i * 5) % fake::kVocab));
  r.n_predict = n_predict;
  r.sampling.temperature = temp;
  r.sampling.seed = seed;
  return r;
}

TEST(EngineLogprobs, TopKEqualsLogSoftmaxOfTheKeptRows) {
  auto engine = fake_engine();
  for (float temp : {0.0f, 0.9f}) {
    SeqRequest r = request(9, 12, 4, temp);
    r.keep_logits = true;
    r.top_logprobs = 5;
    std::mutex mu;
    std::vector<StepEvents::Token> streamed;
    RequestCallbacks cb;
    cb.on_token_event = [&](const StepEvents::Token& t) {
      std::lock_guard<std::mutex> lock(mu);
      streamed.push_back(t);
    };
    const SeqResult res = engine->wait(*engine->submit(r, cb));
    ASSERT_EQ(res.reason, FinishReason::kLength);
    ASSERT_EQ(res.tokens.size(), 12u);
    ASSERT_EQ(res.logprobs.size(), 12u);
    ASSERT_EQ(res.logits.size(), 12u * fake::kVocab);
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(streamed.size(), 12u);
    for (size_t i = 0; i < 12; ++i) {
      const std::span<const float> row(res.logits.data() + i * fake::kVocab, fake::kVocab);
      expect_matches_reference(row, res.tokens[i], 5, res.logprobs[i]);
      EXPECT_TRUE(streamed[i].has_logprobs);
      EXPECT_EQ(streamed[i].logprobs.top, res.logprobs[i].top);
    }
  }
  SeqRequest plain = request(5, 3, 1, 0.0f);
  EXPECT_TRUE(engine->wait(*engine->submit(plain)).logprobs.empty());
  plain.logprobs = true;
  const SeqResult only = engine->wait(*engine->submit(plain));
  ASSERT_EQ(only.logprobs.size(), 3u);
  EXPECT_TRUE(only.logprobs[0].top.empty());
  plain.top_logprobs = kMaxTopLogprobs + 1;
  EXPECT_EQ(engine->submit(plain).status().code(), StatusCode::kOutOfRange);
}

TEST(EngineDeadline, FinishesAtTheNextStepKeepingItsTokens) {
  auto engine = fake_engine(/*sleep_ms=*/2);
  SeqRequest past = request(4, 50, 2, 0.0f);
  past.deadline = std::chrono::steady_clock::now();
  const SeqResult a = engine->wait(*engine->submit(past));
  EXPECT_EQ(a.reason, FinishReason::kDeadline);
  EXPECT_TRUE(a.tokens.empty());

  SeqRequest soon = request(4, 1000, 3, 0.0f);
  soon.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(40);
  const SeqResult b = engine->wait(*engine->submit(soon));
  EXPECT_EQ(b.reason, FinishReason::kDeadline);
  EXPECT_LT(b.tokens.size(), 1000u);
  const std::vector<int32_t> want = fake::oracle(soon);
  EXPECT_TRUE(std::equal(b.tokens.begin(), b.tokens.end(), want.begin()));
  const EngineStats st = engine->stats();
  EXPECT_EQ(st.free_blocks + st.cached_blocks, 256);
}

TEST(EngineStop, StopAfterEndsTheRequestAtThatToken) {
  auto engine = fake_engine();
  SeqRequest r = request(6, 30, 8, 0.0f);
  const std::vector<int32_t> want = fake::oracle(r);
  int calls = 0;
  r.stop_after = [&](int32_t) { return ++calls == 4; };  // the step thread only: no lock needed
  const SeqResult res = engine->wait(*engine->submit(r));
  EXPECT_EQ(res.reason, FinishReason::kStop);
  EXPECT_EQ(res.tokens, std::vector<int32_t>(want.begin(), want.begin() + 4));
  EXPECT_EQ(calls, 4);
}

}  // namespace
}  // namespace cw::runtime
