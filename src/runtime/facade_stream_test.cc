// Issue 15: the public Engine's streaming API on a generated tiny model (random weights, the small SPM
// vocabulary with byte tokens, so sampled text splits UTF-8 characters): stop strings, UTF-8-safe text
// pieces, on_done exactly once for every finish reason, top-k logprobs against a log-softmax of the kept
// logits, callbacks off the step thread (a blocked callback holds up only its own request; a client that
// falls behind is cancelled).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <future>
#include <iterator>
#include <limits>
#include <mutex>
#include <numeric>
#include <thread>

#include "base/utf8.h"
#include "chunkwise/engine.h"
#include "gguf/reader.h"
#include "support/spm_vocab.h"
#include "support/testing.h"

namespace cw {
namespace {

using Clock = std::chrono::steady_clock;

const std::string& tiny_path() { return testing::tiny_llama_f32("facade-stream-tiny.gguf", 21); }

// The tiny model with blk.1.ffn_down.weight[5] = NaN: every request fails with kDataLoss.
const std::string& nan_path() {
  static const std::string path = [] {
    std::ifstream in(tiny_path(), std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto f = gguf::File::parse(bytes, "tiny");
    CW_CHECK(f.is_ok());
    const gguf::TensorInfo* t = (*f)->find_tensor("blk.1.ffn_down.weight");
    CW_CHECK(t != nullptr && t->type == gguf::TensorType::kF32);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(bytes.data() + (t->data - bytes.data()) + 5 * 4, &nan, 4);
    const std::string p = testing::temp_dir() + "/facade-stream-nan.gguf";
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                             static_cast<std::streamsize>(bytes.size()));
    return p;
  }();
  return path;
}

std::unique_ptr<Engine> open(const std::string& path, int callback_threads = 2, int64_t callback_queue = 1024) {
  EngineConfig c;
  c.model_path = path;
  c.threads = 1;
  c.ctx = 8192;
  c.callback_threads = callback_threads;
  c.callback_queue = callback_queue;
  auto e = Engine::open(c);
  CW_CHECK_MSG(e.is_ok(), e.status().to_string());
  return std::move(e).value();
}

GenerationRequest greedy(int variant, int64_t n_predict) {
  GenerationRequest r;
  r.prompt_tokens = {1};
  for (int i = 0; i < 6; ++i) r.prompt_tokens.push_back(260 + (variant * 31 + i * 17) % 250);
  r.n_predict = n_predict;
  r.sampling.temperature = 0;
  r.stop_at_eos = false;
  return r;
}

// Records every callback of one request.
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int32_t> tokens;
  std::vector<std::string> pieces;
  std::vector<bool> had_logprobs;
  std::vector<GenerationResult> done;

  StreamCallbacks callbacks() {
    StreamCallbacks cb;
    cb.on_token = [this](int64_t, int32_t token, const TokenLogprobs* lp) {
      std::lock_guard<std::mutex> lock(mu);
      tokens.push_back(token);
      had_logprobs.push_back(lp != nullptr);
    };
    cb.on_text = [this](int64_t, std::string_view piece) {
      std::lock_guard<std::mutex> lock(mu);
      pieces.emplace_back(piece);
    };
    cb.on_done = [this](GenerationResult r) {
      std::lock_guard<std::mutex> lock(mu);
      done.push_back(std::move(r));
      cv.notify_all();
    };
    return cb;
  }
  // The result (after on_done), or an error result after 120 s.
  GenerationResult result() {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(120), [&] { return !done.empty(); })) {
      GenerationResult r;
      r.finish_reason = FinishReason::kError;
      r.error = internal_error("on_done never came");
      return r;
    }
    return done.front();
  }
  std::string streamed() {
    std::lock_guard<std::mutex> lock(mu);
    return std::accumulate(pieces.begin(), pieces.end(), std::string());
  }
};

std::vector<std::string> pieces_of(const Engine& e, const std::vector<int32_t>& tokens) {
  std::vector<std::string> out;
  for (int32_t t : tokens) out.push_back(t == e.eos() ? std::string() : e.token_piece(t));
  return out;
}

bool ascii(const std::string& s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80 || c == '\0') return false;
  return true;
}

TEST(FacadeStream, StopStringSplitAcrossTokens) {
  auto e = open(tiny_path());
  const GenerationResult base = e->wait(*e->submit(greedy(0, 60)));
  ASSERT_EQ(base.finish_reason, FinishReason::kLength) << base.error.to_string();
  const std::vector<std::string> pieces = pieces_of(*e, base.tokens);
  ASSERT_EQ(std::accumulate(pieces.begin(), pieces.end(), std::string()), base.text);
  size_t i = 2;
  while (i + 1 < pieces.size() &&
         !(pieces[i].size() >= 2 && pieces[i + 1].size() >= 2 && ascii(pieces[i]) && ascii(pieces[i + 1])))
    ++i;
  ASSERT_LT(i + 1, pieces.size()) << "no two adjacent word pieces in " << base.text;
  const std::string stop = pieces[i].substr(pieces[i].size() - 2) + pieces[i + 1].substr(0, 2);
  const size_t at = base.text.find(stop);
  size_t n = 0, len = 0;
  while (len < at + stop.size()) len += pieces[n++].size();

  GenerationRequest r = greedy(0, 60);
  r.stop = {"never in this text \xE2\x82\xAC", stop};
  Collector c;
  ASSERT_TRUE(e->submit(r, c.callbacks()).is_ok());
  const GenerationResult got = c.result();
  EXPECT_EQ(got.finish_reason, FinishReason::kStop) << got.error.to_string();
  EXPECT_EQ(got.text, base.text.substr(0, at));
  EXPECT_EQ(got.tokens, std::vector<int32_t>(base.tokens.begin(), base.tokens.begin() + static_cast<int64_t>(n)));
  EXPECT_EQ(c.streamed(), got.text);
  EXPECT_EQ(c.tokens, got.tokens);
}

TEST(FacadeStream, StopStringAtTheVeryStart) {
  auto e = open(tiny_path());
  for (int variant = 0; variant < 20; ++variant) {
    const GenerationResult base = e->wait(*e->submit(greedy(variant, 8)));
    const size_t first = utf8_valid_prefix_len(base.text);
    if (first == 0) continue;  // starts with a stray byte: no valid stop string matches it alone
    GenerationRequest r = greedy(variant, 8);
    r.stop = {base.text.substr(0, first)};
    Collector c;
    ASSERT_TRUE(e->submit(r, c.callbacks()).is_ok());
    const GenerationResult got = c.result();
    EXPECT_EQ(got.finish_reason, FinishReason::kStop);
    EXPECT_EQ(got.text, "");
    EXPECT_EQ(got.tokens.size(), 1u);
    EXPECT_EQ(c.streamed(), "");
    return;
  }
  FAIL() << "no prompt variant starts with a whole character";
}

// Splits `text` into units: each well-formed UTF-8 character, or one invalid byte. True when `cut` is at
// the start of a unit.
bool at_unit_boundary(const std::string& text, size_t cut) {
  for (size_t i = 0; i < text.size();) {
    if (i == cut) return true;
    if (i > cut) return false;
    const size_t n = utf8_valid_prefix_len(std::string_view(text).substr(i));
    i += n == 0 ? 1 : n;
  }
  return cut == text.size();
}

TEST(FacadeStream, TextPiecesNeverSplitACharacterAndConcatenateToTheText) {
  auto e = open(tiny_path());
  int split_chars = 0;  // multi-byte characters whose bytes came from different tokens
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    GenerationRequest r = greedy(static_cast<int>(seed), 1500);
    r.sampling = {.temperature = 3.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = seed};
    Collector c;
    ASSERT_TRUE(e->submit(r, c.callbacks()).is_ok());
    const GenerationResult got = c.result();
    ASSERT_EQ(got.finish_reason, FinishReason::kLength) << got.error.to_string();
    ASSERT_EQ(c.streamed(), got.text);
    size_t cut = 0;
    for (size_t k = 0; k < c.pieces.size(); ++k) {
      EXPECT_FALSE(c.pieces[k].empty());
      cut += c.pieces[k].size();
      // (A piece may end in a lead byte that the next byte shows to be invalid: checked in context.)
      EXPECT_TRUE(at_unit_boundary(got.text, cut)) << "seed " << seed << " piece " << k;
    }
    // Count the characters the tokens split (what the holdback was for).
    const std::vector<std::string> pieces = pieces_of(*e, got.tokens);
    size_t end = 0;
    for (size_t k = 0; k + 1 < pieces.size(); ++k) {
      end += pieces[k].size();
      if (!at_unit_boundary(got.text, end)) ++split_chars;
    }
  }
  EXPECT_GT(split_chars, 0) << "the sampled text never split a character: the test proves nothing";
}

// Reference: log-softmax of one row in double.
std::vector<double> log_softmax(const float* row, size_t n) {
  double max = -INFINITY;
  for (size_t i = 0; i < n; ++i) max = std::max(max, static_cast<double>(row[i]));
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(row[i]) - max);
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<double>(row[i]) - max - std::log(sum);
  return out;
}

TEST(FacadeStream, TopLogprobsEqualALogSoftmaxOfTheKeptLogits) {
  auto e = open(tiny_path());
  GenerationRequest r = greedy(3, 16);
  r.sampling = {.temperature = 0.9f, .top_k = 5, .repeat_penalty = 1.3f, .seed = 9};
  r.keep_logits = true;
  r.top_logprobs = 20;
  Collector c;
  ASSERT_TRUE(e->submit(r, c.callbacks()).is_ok());
  const GenerationResult got = c.result();
  ASSERT_EQ(got.logprobs.size(), 16u);
  const size_t V = static_cast<size_t>(e->info().n_vocab);
  ASSERT_EQ(got.logits.size(), 16 * V);
  for (size_t i = 0; i < 16; ++i) {
    const std::vector<double> ref = log_softmax(got.logits.data() + i * V, V);
    const TokenLogprobs& lp = got.logprobs[i];
    EXPECT_EQ(lp.token, got.tokens[i]);
    EXPECT_NEAR(lp.logprob, ref[static_cast<size_t>(got.tokens[i])], 1e-5);
    std::vector<size_t> order(V);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ref[a] > ref[b]; });
    ASSERT_EQ(lp.top.size(), 20u);
    double p = 0;
    for (size_t k = 0; k < 20; ++k) {
      EXPECT_EQ(static_cast<size_t>(lp.top[k].token), order[k]) << "token " << i << " rank " << k;
      EXPECT_NEAR(lp.top[k].logprob, ref[order[k]], 1e-5);
      if (k > 0) {
        EXPECT_GE(lp.top[k - 1].logprob, lp.top[k].logprob);
      }
      p += std::exp(static_cast<double>(lp.top[k].logprob));
    }
    EXPECT_LE(p, 1.0 + 1e-6);
  }
  std::lock_guard<std::mutex> lock(c.mu);
  ASSERT_EQ(c.had_logprobs.size(), 16u);
  for (bool b : c.had_logprobs) EXPECT_TRUE(b);
}

TEST(FacadeStream, OnDoneExactlyOnceForEveryFinishReason) {
  constexpr int kSeeds = 24;
  Collector length, stop, cancel, deadline, error;
  std::vector<Collector> eos(kSeeds);
  {
    auto e = open(tiny_path());
    ASSERT_TRUE(e->submit(greedy(0, 5), length.callbacks()).is_ok());

    const GenerationResult base = e->wait(*e->submit(greedy(1, 12)));
    std::string stop_string;
    for (int32_t t : base.tokens)
      if (std::string p = e->token_piece(t); stop_string.empty() && p.size() >= 2 && ascii(p)) stop_string = p;
    ASSERT_FALSE(stop_string.empty()) << base.text;
    GenerationRequest s = greedy(1, 12);
    s.stop = {stop_string};
    ASSERT_TRUE(e->submit(s, stop.callbacks()).is_ok());

    // Cancel once the first token has been delivered.
    StreamCallbacks cc = cancel.callbacks();
    std::promise<void> first;
    std::once_flag once;
    auto on_token = cc.on_token;
    cc.on_token = [&, on_token](int64_t id, int32_t t, const TokenLogprobs* lp) {
      on_token(id, t, lp);
      std::call_once(once, [&] { first.set_value(); });
    };
    const auto cid = e->submit(greedy(2, 1900), cc);
    ASSERT_TRUE(cid.is_ok());
    first.get_future().wait();
    EXPECT_TRUE(e->cancel(*cid));

    GenerationRequest d = greedy(3, 1900);
    d.deadline = Clock::now() + std::chrono::milliseconds(30);
    ASSERT_TRUE(e->submit(d, deadline.callbacks()).is_ok());

    for (int k = 0; k < kSeeds; ++k) {
      GenerationRequest q = greedy(k, 1500);
      q.stop_at_eos = true;
      q.sampling = {.temperature = 5.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = uint64_t(k + 1)};
      ASSERT_TRUE(e->submit(q, eos[static_cast<size_t>(k)].callbacks()).is_ok());
    }
    auto bad = open(nan_path());
    ASSERT_TRUE(bad->submit(greedy(0, 5), error.callbacks()).is_ok());
    EXPECT_EQ(error.result().finish_reason, FinishReason::kError);
    // Wait for everything, then destroy the engines: no second on_done may come.
    for (Collector* c : {&length, &stop, &cancel, &deadline}) c->result();
    for (Collector& c : eos) c.result();
  }
  auto once_with = [](Collector& c, FinishReason want, const char* what) {
    std::lock_guard<std::mutex> lock(c.mu);
    ASSERT_EQ(c.done.size(), 1u) << what;
    EXPECT_EQ(c.done[0].finish_reason, want) << what << ": " << finish_reason_name(c.done[0].finish_reason) << " "
                                             << c.done[0].error.to_string();
    EXPECT_EQ(c.tokens, c.done[0].tokens) << what;
    EXPECT_EQ(std::accumulate(c.pieces.begin(), c.pieces.end(), std::string()), c.done[0].text) << what;
  };
  once_with(length, FinishReason::kLength, "length");
  once_with(stop, FinishReason::kStop, "stop");
  once_with(cancel, FinishReason::kCancelled, "cancel");
  once_with(deadline, FinishReason::kDeadline, "deadline");
  once_with(error, FinishReason::kError, "error");
  EXPECT_EQ(error.done[0].error.code(), StatusCode::kDataLoss);
  EXPECT_LT(cancel.done[0].tokens.size(), 1900u);
  EXPECT_LT(deadline.done[0].tokens.size(), 1900u);
  int n_eos = 0;
  for (Collector& c : eos) {
    std::lock_guard<std::mutex> lock(c.mu);
    ASSERT_EQ(c.done.size(), 1u);
    if (c.done[0].finish_reason == FinishReason::kEos) {
      ++n_eos;
      EXPECT_EQ(c.done[0].tokens.back(), 2);  // the small vocabulary's </s>
    } else {
      EXPECT_EQ(c.done[0].finish_reason, FinishReason::kLength);
    }
  }
  EXPECT_GT(n_eos, 0) << "no seed sampled eos";
}

// A callback blocked on a latch holds up its own request only: another request is generated and
// delivered meanwhile.
TEST(FacadeStream, ABlockedCallbackDoesNotHoldUpAnotherRequest) {
  auto e = open(tiny_path(), /*callback_threads=*/2);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::atomic<bool> blocked{false}, released{false};
  Collector slow, fast;
  StreamCallbacks sc = slow.callbacks();
  sc.on_token = [&](int64_t, int32_t, const TokenLogprobs*) {
    blocked = true;
    gate.wait();
  };
  ASSERT_TRUE(e->submit(greedy(4, 20), sc).is_ok());
  ASSERT_TRUE(e->submit(greedy(5, 20), fast.callbacks()).is_ok());
  const GenerationResult f = fast.result();
  EXPECT_EQ(f.finish_reason, FinishReason::kLength);
  EXPECT_EQ(f.tokens.size(), 20u);
  {
    std::lock_guard<std::mutex> lock(slow.mu);
    EXPECT_TRUE(slow.done.empty());  // still held by its own callback
  }
  EXPECT_TRUE(blocked.load());
  released = true;
  release.set_value();
  const GenerationResult s = slow.result();
  EXPECT_EQ(s.finish_reason, FinishReason::kLength);
  EXPECT_EQ(s.tokens.size(), 20u);
  EXPECT_EQ(slow.streamed(), s.text);
}

// A client that does not keep up: its queue (4 events) fills, the request is cancelled; the step thread
// neither blocks nor buffers more.
TEST(FacadeStream, AClientThatFallsBehindIsCancelled) {
  auto e = open(tiny_path(), /*callback_threads=*/2, /*callback_queue=*/4);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  Collector slow;
  std::atomic<int> calls{0};
  StreamCallbacks sc = slow.callbacks();
  sc.on_token = [&](int64_t, int32_t, const TokenLogprobs*) {
    if (calls++ == 0) gate.wait();
  };
  ASSERT_TRUE(e->submit(greedy(6, 1000), sc).is_ok());
  // Another request runs to completion while the slow client's callback is still blocked ...
  const GenerationResult other = e->wait(*e->submit(greedy(7, 30)));
  EXPECT_EQ(other.finish_reason, FinishReason::kLength);
  // ... and the slow request leaves the engine without its callbacks having run.
  const auto t0 = Clock::now();
  while (true) {
    const EngineCounters c = e->counters();
    if (c.running == 0 && c.waiting == 0) break;
    ASSERT_LT(Clock::now() - t0, std::chrono::seconds(120)) << "the slow request is still running";
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(calls.load(), 1);
  release.set_value();
  const GenerationResult s = slow.result();
  EXPECT_EQ(s.finish_reason, FinishReason::kCancelled);
  EXPECT_EQ(s.error.code(), StatusCode::kResourceExhausted) << s.error.to_string();
  EXPECT_LT(s.tokens.size(), 1000u);
  EXPECT_LE(calls.load(), 1 + 4);
}

TEST(FacadeStream, ValidatesTheNewFields) {
  auto e = open(tiny_path());
  GenerationRequest r = greedy(0, 4);
  r.stop = {"a", "b", "c", "d", "e"};
  EXPECT_EQ(e->submit(r).status().code(), StatusCode::kInvalidArgument);
  r.stop = {""};
  EXPECT_EQ(e->validate(r).message(), "stop string 1 is empty");
  r.stop = {};
  r.top_logprobs = 21;
  EXPECT_EQ(e->submit(r).status().code(), StatusCode::kOutOfRange);
  r.top_logprobs = -1;
  EXPECT_EQ(e->submit(r).status().code(), StatusCode::kOutOfRange);
  EngineConfig c;
  c.model_path = tiny_path();
  c.callback_threads = 0;
  EXPECT_EQ(Engine::open(c).status().code(), StatusCode::kOutOfRange);
  c.callback_threads = 1;
  c.callback_queue = 0;
  EXPECT_EQ(Engine::open(c).status().code(), StatusCode::kOutOfRange);
  // wait() does not apply to a request whose result goes to on_done.
  Collector col;
  const auto id = e->submit(greedy(0, 2), col.callbacks());
  ASSERT_TRUE(id.is_ok());
  EXPECT_EQ(e->wait(*id).error.code(), StatusCode::kNotFound);
  EXPECT_EQ(col.result().finish_reason, FinishReason::kLength);
}

TEST(FacadeStream, FinishReasonNames) {
  EXPECT_STREQ(finish_reason_name(FinishReason::kLength), "length");
  EXPECT_STREQ(finish_reason_name(FinishReason::kEos), "eos");
  EXPECT_STREQ(finish_reason_name(FinishReason::kStop), "stop");
  EXPECT_STREQ(finish_reason_name(FinishReason::kCancelled), "cancelled");
  EXPECT_STREQ(finish_reason_name(FinishReason::kError), "error");
  EXPECT_STREQ(finish_reason_name(FinishReason::kDeadline), "deadline");
  EXPECT_STREQ(openai_finish_reason(FinishReason::kEos), "stop");
  EXPECT_STREQ(openai_finish_reason(FinishReason::kStop), "stop");
  EXPECT_STREQ(openai_finish_reason(FinishReason::kLength), "length");
  EXPECT_STREQ(openai_finish_reason(FinishReason::kDeadline), "length");
}

}  // namespace
}  // namespace cw
