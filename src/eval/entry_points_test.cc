// Rules every generation entry point applies the same way (issue 11): the library functions behind
// `run` (runtime::generate), `batch` (runtime::Engine), `perplexity` and `bench` (eval), and the CLI on
// top of them.
//   - Non-finite logits stop the work with kDataLoss naming the first weight tensor holding a NaN/Inf
//     (or, with finite weights, the token position where the logits became non-finite).
//   - The context rule: prompt + tokens to generate within the model's training context, one message.
//   - Thread counts are capped at the hardware's concurrency, with one warning line from the CLI.
// Models: a generated tiny llama (random f32 weights, training context 2048) and copies of it with one
// weight patched; the CLI cases need nothing from ../shared.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "eval/bench.h"
#include "eval/perplexity.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "kv/policy.h"
#include "model/make_model.h"
#include "model/model.h"
#include "runtime/engine.h"
#include "runtime/generate.h"
#include "support/spm_vocab.h"
#include "support/testing.h"

namespace cw {
namespace {

using testing::chunkwise_binary;
using testing::run_command;
using testing::shell_quote;

const gguf::File& small_vocab() { return testing::small_spm_vocab_file(); }

const std::string& tiny_path() { return testing::tiny_llama_f32("entry-tiny-f32.gguf", 11); }

// A copy of the tiny model with elements [first, first + count) of f32 tensor `tensor` set to `value`.
std::string patched_copy(const std::string& name, const std::string& tensor, float value, int64_t first = 5,
                         int64_t count = 1) {
  std::ifstream in(tiny_path(), std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t offset = 0;
  {
    auto f = gguf::File::parse(bytes, "tiny");
    CW_CHECK(f.is_ok());
    const gguf::TensorInfo* t = (*f)->find_tensor(tensor);
    CW_CHECK(t != nullptr && t->type == gguf::TensorType::kF32);
    CW_CHECK(static_cast<uint64_t>(first + count) <= t->n_elements);
    offset = static_cast<size_t>(t->data - bytes.data());
  }
  for (int64_t i = first; i < first + count; ++i)
    std::memcpy(bytes.data() + offset + static_cast<size_t>(i) * 4, &value, 4);
  const std::string path = testing::temp_dir() + "/" + name + ".gguf";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                              static_cast<std::streamsize>(bytes.size()));
  return path;
}

const std::string& nan_path() {
  static const std::string p =
      patched_copy("entry-nan", "blk.1.ffn_down.weight", std::numeric_limits<float>::quiet_NaN());
  return p;
}

std::unique_ptr<model::Model> load(const std::string& path) {
  auto m = model::Model::load(path);
  CW_CHECK_MSG(m.is_ok(), m.status().to_string());
  return std::move(m).value();
}

std::vector<int32_t> prompt_of(int n) {
  std::vector<int32_t> p = {1};
  for (int i = 1; i < n; ++i) p.push_back(259 + (i * 37) % 250);
  return p;
}

constexpr const char* kCorrupt = "the model's weights are corrupt: tensor 'blk.1.ffn_down.weight' holds NaN/Inf values";

// ---- Non-finite logits ----------------------------------------------------------------------------------

TEST(NonFinite, TheScanNamesTheFirstBadTensor) {
  EXPECT_EQ(model::find_non_finite_tensor(*load(tiny_path())), "");
  EXPECT_EQ(model::find_non_finite_tensor(*load(nan_path())), "blk.1.ffn_down.weight");
  const std::string inf = patched_copy("entry-inf", "blk.0.attn_k.weight", std::numeric_limits<float>::infinity(), 40);
  EXPECT_EQ(model::find_non_finite_tensor(*load(inf)), "blk.0.attn_k.weight");
}

TEST(NonFinite, SessionGenerateAndPerplexityStopWithTheTensor) {
  auto m = load(nan_path());
  auto s = model::Session::create(*m, 64);
  ASSERT_TRUE(s.is_ok());
  std::vector<float> logits;
  const Status st = (*s)->eval(prompt_of(4), false, &logits);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_EQ(st.message(), kCorrupt);
  EXPECT_EQ((*s)->n_past(), 0);

  (*s)->reset();
  runtime::SamplerParams sp;
  sp.temperature = 0;
  runtime::Sampler sampler(sp, static_cast<int32_t>(m->hparams().n_vocab));
  runtime::GenerateOptions o;
  o.n_predict = 4;
  int tokens = 0;
  auto g = runtime::generate(**s, sampler, prompt_of(4), o, [&](int32_t) {
    ++tokens;
    return Status::ok();
  });
  ASSERT_FALSE(g.is_ok());
  EXPECT_EQ(g.status().message(), kCorrupt);
  EXPECT_EQ(tokens, 0);  // stopped before sampling from bad logits

  eval::PerplexityOptions po;
  po.n_ctx = 16;
  auto ppl = eval::perplexity(*m, prompt_of(40), po);
  ASSERT_FALSE(ppl.is_ok());
  EXPECT_EQ(ppl.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(ppl.status().message(), kCorrupt);

  eval::BenchOptions bo;
  bo.n_prompt = 8;
  bo.n_gen = 2;
  bo.reps = 1;
  bo.n_threads = 1;
  auto b = eval::bench(*m, bo);
  ASSERT_FALSE(b.is_ok());
  EXPECT_EQ(b.status().message(), kCorrupt);
}

TEST(NonFinite, EngineRequestsFinishWithTheError) {
  auto m = load(nan_path());
  runtime::EngineOptions eo;
  eo.ctx_tokens = 256;
  auto e = runtime::Engine::create(*m, eo);
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  std::vector<runtime::RequestId> ids;
  for (int i = 0; i < 3; ++i) {
    runtime::SeqRequest r;
    r.prompt = prompt_of(3 + i);
    r.n_predict = 4;
    auto id = (*e)->submit(std::move(r));
    ASSERT_TRUE(id.is_ok());
    ids.push_back(*id);
  }
  for (runtime::RequestId id : ids) {
    const runtime::SeqResult r = (*e)->wait(id);
    EXPECT_EQ(r.reason, runtime::FinishReason::kError);
    EXPECT_EQ(r.error.code(), StatusCode::kDataLoss);
    EXPECT_EQ(r.error.message(), kCorrupt);
    EXPECT_TRUE(r.tokens.empty());
  }
}

// Finite weights whose logits overflow: no tensor to blame, so the position is named (row 0 of three).
TEST(NonFinite, FiniteWeightsNameThePosition) {
  const std::string huge = patched_copy("entry-huge-norm", "output_norm.weight", 3e38f, 0, 256);
  auto m = load(huge);
  EXPECT_EQ(model::find_non_finite_tensor(*m), "");
  model::Session s(*m, 64);
  std::vector<float> logits;
  const Status st = s.eval(prompt_of(3), /*all_logits=*/true, &logits);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_EQ(st.message(), "the logits became non-finite (NaN/Inf) at token position 0");
  model::Session last(*m, 64);
  EXPECT_EQ(last.eval(prompt_of(3), /*all_logits=*/false, &logits).message(),
            "the logits became non-finite (NaN/Inf) at token position 2");
}

// ---- The context rule -----------------------------------------------------------------------------------

TEST(ContextRule, EveryEntryPointAppliesTheTrainingContext) {
  auto m = load(tiny_path());
  ASSERT_EQ(m->hparams().n_ctx_train, 2048);
  const std::vector<int32_t> prompt = prompt_of(2000);
  const std::string want = "the prompt (2000 tokens) + 100 tokens to generate = 2100 exceeds the model's training "
                           "context of 2048 tokens";
  EXPECT_EQ(model::check_context(m->hparams(), 2000, 100).message(), want);
  EXPECT_TRUE(model::check_context(m->hparams(), 2000, 48).is_ok());
  auto full = kv::make_kv_policy("full");
  ASSERT_TRUE(full.is_ok());
  EXPECT_FALSE((*full)->lifts_context_limit());  // full keeps every slot: the rule holds

  // generate (run), on a session larger than the training context (possible only through the raw
  // constructor: Session::create refuses it).
  model::Session big(*m, 4096);
  runtime::Sampler sampler(runtime::SamplerParams{}, static_cast<int32_t>(m->hparams().n_vocab));
  runtime::GenerateOptions o;
  o.n_predict = 100;
  auto g = runtime::generate(big, sampler, prompt, o);
  ASSERT_FALSE(g.is_ok());
  EXPECT_EQ(g.status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(g.status().message(), want);

  // The Engine (batch), with a KV pool larger than the training context: the pool is shared, the rule is
  // per request.
  runtime::EngineOptions eo;
  eo.ctx_tokens = 8192;
  auto e = runtime::Engine::create(*m, eo);
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  runtime::SeqRequest r;
  r.prompt = prompt;
  r.n_predict = 100;
  EXPECT_EQ((*e)->validate(r).message(), want);
  EXPECT_EQ((*e)->submit(r).status().message(), want);
  r.n_predict = 48;
  EXPECT_TRUE((*e)->validate(r).is_ok());

  // Context sizes: Session::create, perplexity windows and bench lengths.
  const std::string size_msg = "a context of 4096 tokens exceeds the model's training context of 2048 tokens";
  EXPECT_EQ(model::Session::create(*m, 4096).status().message(), size_msg);
  EXPECT_TRUE(model::Session::create(*m, 2048).is_ok());
  eval::PerplexityOptions po;
  po.n_ctx = 4096;
  EXPECT_EQ(eval::perplexity(*m, prompt_of(4096), po).status().message(), size_msg);
  eval::BenchOptions bo;
  bo.n_prompt = 4096;
  bo.n_gen = 0;
  bo.n_threads = 1;
  EXPECT_EQ(eval::bench(*m, bo).status().message(), size_msg);
}

// ---- The CLI on top ---------------------------------------------------------------------------------------

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

TEST(EntryPointsCli, CorruptWeightsStopEveryCommandWithExit2) {
  const std::string m = " -m " + shell_quote(nan_path());
  const std::string text = testing::temp_dir() + "/entry-text.txt";
  {
    std::ofstream f(text);
    for (int i = 0; i < 200; ++i) f << "w" << (i % 50) << " w" << (i * 7 % 50) << " ";
  }
  const std::string jsonl = testing::temp_dir() + "/entry-prompts.jsonl";
  std::ofstream(jsonl) << "{\"prompt\": \"w1 w2\", \"n_predict\": 3}\n{\"prompt\": \"w3\", \"n_predict\": 2}\n";
  const std::vector<std::string> commands = {
      "run" + m + " -p 'w1 w2 w3' -n 4",
      "perplexity" + m + " -f " + shell_quote(text) + " --ctx 32 -q",
      "bench" + m + " -p 8 -n 2 -r 1 -t 1",
  };
  for (const std::string& c : commands) {
    auto r = run_command(chunkwise_binary() + " " + c);
    EXPECT_EQ(r.exit_code, 2) << c << "\n" << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << c << "\n" << r.err;
    EXPECT_NE(r.err.find(kCorrupt), std::string::npos) << c << "\n" << r.err;
    EXPECT_EQ(r.out.find("PPL"), std::string::npos) << c << "\n" << r.out;
  }
  // batch: each request reports the error in its line; the exit code follows the error's class.
  auto r = run_command(chunkwise_binary() + " batch" + m + " -f " + shell_quote(jsonl) + " --no-progress");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(count_lines(r.out), 2) << r.out;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(std::string("the first, line 1: ") + kCorrupt), std::string::npos) << r.err;
  size_t n_errors = 0;
  for (size_t at = r.out.find(kCorrupt); at != std::string::npos; at = r.out.find(kCorrupt, at + 1)) ++n_errors;
  EXPECT_EQ(n_errors, 2u) << r.out;
}

TEST(EntryPointsCli, RunAndBatchRefuseTheSameContext) {
  const std::string m = " -m " + shell_quote(tiny_path());
  auto run = run_command(chunkwise_binary() + " run" + m + " -p 'w1 w2' -n 2047 --temp 0");
  EXPECT_EQ(run.exit_code, 2) << run.err;
  const std::string want = "exceeds the model's training context of 2048 tokens";
  ASSERT_NE(run.err.find(want), std::string::npos) << run.err;
  const std::string jsonl = testing::temp_dir() + "/entry-long.jsonl";
  std::ofstream(jsonl) << "{\"prompt\": \"w1 w2\", \"n_predict\": 2047}\n";
  auto batch = run_command(chunkwise_binary() + " batch" + m + " -f " + shell_quote(jsonl) + " --no-progress");
  EXPECT_EQ(batch.exit_code, 2) << batch.err;
  // "chunkwise run: MSG" and "chunkwise batch: line 1: MSG": the same library message.
  const std::string run_msg = run.err.substr(std::string("chunkwise run: ").size());
  EXPECT_EQ(batch.err, "chunkwise batch: line 1: " + run_msg);
  // Within the rule both run (the KV cache is sized to what the request needs).
  auto ok = run_command(chunkwise_binary() + " run" + m + " -p 'w1 w2' -n 8 --temp 0");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST(EntryPointsCli, ThreadCountsAreCappedWithOneWarning) {
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  if (hw >= 1024) GTEST_SKIP() << "this machine has 1024 hardware threads or more";
  const std::string m = " -m " + shell_quote(tiny_path());
  const std::string jsonl = testing::temp_dir() + "/entry-threads.jsonl";
  std::ofstream(jsonl) << "{\"prompt\": \"w1 w2\", \"n_predict\": 2}\n";
  const std::string cap = " 1024 capped at " + std::to_string(hw) + ", the hardware's concurrency\n";
  struct Case {
    std::string args, warning;
  };
  const std::vector<Case> cases = {
      {"run" + m + " -p 'w1 w2' -n 2 --threads 1024 --json", "chunkwise run: --threads" + cap},
      {"batch" + m + " -f " + shell_quote(jsonl) + " --threads 1024 --no-progress", "chunkwise batch: --threads" + cap},
      {"bench" + m + " -p 4 -n 2 -r 1 -t 1024 --json", "chunkwise bench: --threads" + cap},
  };
  for (const Case& c : cases) {
    auto r = run_command(chunkwise_binary() + " " + c.args);
    EXPECT_EQ(r.exit_code, 0) << c.args << "\n" << r.err;
    EXPECT_EQ(r.err.rfind(c.warning, 0), 0u) << c.args << "\n" << r.err;
  }
}

}  // namespace
}  // namespace cw
