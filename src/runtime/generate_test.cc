#include "runtime/generate.h"

#include <gtest/gtest.h>

#include <vector>

#include "support/testing.h"

namespace cw::runtime {
namespace {

// stories260K, "Once upon a time" (BOS + 4 tokens): llama.cpp's greedy continuation starts 432 383 286 261.
const std::vector<int32_t> kPrompt = {1, 403, 407, 261, 378};

SamplerParams greedy() {
  SamplerParams p;
  p.temperature = 0.0f;
  return p;
}

TEST(Generate, GreedyStopsAtEosAndReportsSteps) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = model::Model::load(dir + "/models/stories260K.gguf");
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  const auto n_vocab = static_cast<int32_t>((*m)->hparams().n_vocab);

  model::Session full(**m, 64);
  Sampler s1(greedy(), n_vocab);
  GenerateOptions o;
  o.n_predict = 8;
  o.logits_top = 3;
  auto r = generate(full, s1, kPrompt, o);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ASSERT_EQ(r->tokens.size(), 8u);
  EXPECT_EQ(std::vector<int32_t>(r->tokens.begin(), r->tokens.begin() + 4), (std::vector<int32_t>{432, 383, 286, 261}));
  ASSERT_EQ(r->steps.size(), 8u);
  EXPECT_EQ(r->steps[0].top.size(), 3u);
  EXPECT_EQ(r->steps[0].top[0].first, 432);
  EXPECT_FALSE(r->stopped_at_eos);
  EXPECT_EQ(full.n_past(), 5 + 7);  // the last generated token is not evaluated

  // Pretend 286 is the end-of-sequence token: generation stops right after it.
  model::Session s(**m, 64);
  Sampler s2(greedy(), n_vocab);
  o.eos = 286;
  o.ubatch = 2;
  std::vector<int32_t> seen;
  auto e = generate(s, s2, kPrompt, o, [&](int32_t t) {
    seen.push_back(t);
    return Status::ok();
  });
  ASSERT_TRUE(e.is_ok()) << e.status().message();
  EXPECT_EQ(e->tokens, (std::vector<int32_t>{432, 383, 286}));
  EXPECT_EQ(seen, e->tokens);
  EXPECT_TRUE(e->stopped_at_eos);
}

TEST(Generate, ErrorsBeforeWorkAndFromTheCallback) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = model::Model::load(dir + "/models/stories260K.gguf");
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  const auto n_vocab = static_cast<int32_t>((*m)->hparams().n_vocab);
  Sampler sampler(greedy(), n_vocab);
  GenerateOptions o;
  o.n_predict = 4;

  model::Session small(**m, 8);
  auto over = generate(small, sampler, kPrompt, o);
  ASSERT_FALSE(over.is_ok());
  EXPECT_EQ(over.status().message(),
            "the prompt (5 tokens) + 4 tokens to generate = 9 exceeds the context size of 8 tokens");
  EXPECT_EQ(small.n_past(), 0);

  // The context rule: the training context (2048) bounds prompt + n_predict whatever the session holds.
  model::Session big(**m, 4096);
  GenerateOptions far = o;
  far.n_predict = 2048;
  auto past = generate(big, sampler, kPrompt, far);
  ASSERT_FALSE(past.is_ok());
  EXPECT_EQ(past.status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(past.status().message(),
            "the prompt (5 tokens) + 2048 tokens to generate = 2053 exceeds the model's training context of 2048 "
            "tokens");
  EXPECT_EQ(big.n_past(), 0);

  model::Session s(**m, 64);
  EXPECT_FALSE(generate(s, sampler, std::vector<int32_t>{}, o).is_ok());
  EXPECT_FALSE(generate(s, sampler, std::vector<int32_t>{1, n_vocab}, o).is_ok());
  s.reset();
  int calls = 0;
  auto stopped = generate(s, sampler, kPrompt, o, [&](int32_t) {
    return ++calls == 2 ? io_error("sink closed") : Status::ok();
  });
  ASSERT_FALSE(stopped.is_ok());
  EXPECT_EQ(stopped.status().message(), "sink closed");
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace cw::runtime
