// End-to-end tests of `chunkwise run`: greedy generation against llama.cpp's reference tokens for
// stories260K, seeded sampling, output shapes, and one-line errors with exit code 2.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/json_value.h"
#include "support/testing.h"

namespace cw {
namespace {

using testing::chunkwise_binary;
using testing::run_command;
using testing::shell_quote;

std::string run_cmd(const std::string& model, const std::string& args) {
  return chunkwise_binary() + " run -m " + shell_quote(model) + " " + args;
}

std::vector<int64_t> ints(const JsonValue* v) {
  std::vector<int64_t> out;
  if (v == nullptr || !v->is_array()) return out;
  for (const JsonValue& x : v->items()) out.push_back(static_cast<int64_t>(x.as_number()));
  return out;
}

JsonValue parse_one_object(const std::string& out) {
  EXPECT_FALSE(out.empty());
  EXPECT_EQ(out.find('\n'), out.size() - 1) << "expected exactly one line of JSON";
  auto v = JsonValue::parse(out);
  EXPECT_TRUE(v.is_ok()) << v.status().message() << "\n" << out;
  if (!v.is_ok()) return JsonValue();
  EXPECT_TRUE(v->is_object());
  return *v;
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

TEST(RunCli, GreedyMatchesLlamaCppReference) {
  CW_REQUIRE_SHARED_DATA(dir);
  const std::string model = dir + "/models/stories260K.gguf";
  std::ifstream in(dir + "/reference/stories260K-greedy.jsonl");
  ASSERT_TRUE(in) << "missing reference file";
  std::string line;
  int n_cases = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto ref = JsonValue::parse(line);
    ASSERT_TRUE(ref.is_ok()) << ref.status().message();
    const std::string prompt = ref->get("prompt")->as_string();
    SCOPED_TRACE("prompt: " + prompt);
    const auto& ref_steps = ref->get("steps")->items();

    auto r =
        run_command(run_cmd(model, "-p " + shell_quote(prompt) + " -n 128 --temp 0 --json --logits-top 5"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    JsonValue got = parse_one_object(r.out);
    EXPECT_EQ(ints(got.get("prompt_tokens")), ints(ref->get("prompt_tokens")));
    std::vector<int64_t> ref_tokens;
    for (const JsonValue& s : ref_steps) ref_tokens.push_back(static_cast<int64_t>(s.get("token")->as_number()));
    EXPECT_EQ(ints(got.get("tokens")), ref_tokens);
    if (const JsonValue* text = ref->get("text")) EXPECT_EQ(got.get("text")->as_string(), text->as_string());

    // The top-5 logits agree with llama.cpp's (values compared rank by rank: robust to near-tie swaps).
    const JsonValue* steps = got.get("steps");
    ASSERT_NE(steps, nullptr);
    ASSERT_EQ(steps->items().size(), ref_steps.size());
    double max_diff = 0;
    for (size_t i = 0; i < ref_steps.size(); ++i) {
      const auto& mine = steps->items()[i].get("top")->items();
      const auto& theirs = ref_steps[i].get("top")->items();
      ASSERT_EQ(mine.size(), 5u);
      ASSERT_EQ(theirs.size(), 5u);
      EXPECT_EQ(mine[0].items()[0].as_number(), theirs[0].items()[0].as_number()) << "step " << i;
      for (size_t j = 0; j < 5; ++j) {
        max_diff = std::max(max_diff, std::fabs(mine[j].items()[1].as_number() - theirs[j].items()[1].as_number()));
        if (j > 0) EXPECT_LE(mine[j].items()[1].as_number(), mine[j - 1].items()[1].as_number());
      }
    }
    EXPECT_LT(max_diff, 0.02);
    ++n_cases;
  }
  EXPECT_EQ(n_cases, 10);
}

TEST(RunCli, StreamedTextMatchesJsonAndTimingsGoToStderr) {
  CW_REQUIRE_SHARED_DATA(dir);
  const std::string model = dir + "/models/stories260K.gguf";
  auto text = run_command(run_cmd(model, "-p 'Once upon a time' -n 32 --temp 0"));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  auto json = run_command(run_cmd(model, "-p 'Once upon a time' -n 32 --temp 0 --json"));
  ASSERT_EQ(json.exit_code, 0) << json.err;
  JsonValue j = parse_one_object(json.out);
  EXPECT_EQ(text.out, j.get("text")->as_string() + "\n");
  EXPECT_EQ(j.get("steps"), nullptr);
  EXPECT_EQ(ints(j.get("tokens")).size(), 32u);
  const JsonValue* t = j.get("timings");
  ASSERT_NE(t, nullptr);
  for (const char* k : {"prompt_ms", "decode_ms", "prefill_tok_s", "decode_tok_s"}) {
    ASSERT_NE(t->get(k), nullptr) << k;
    EXPECT_GE(t->get(k)->as_number(), 0) << k;
  }
  EXPECT_EQ(count_lines(text.err), 1) << text.err;
  EXPECT_NE(text.err.find("tok/s"), std::string::npos) << text.err;
  EXPECT_NE(text.err.find("prompt: 5 tokens"), std::string::npos) << text.err;
  EXPECT_TRUE(json.err.empty()) << json.err;
}

TEST(RunCli, StreamingKeepsEveryByteOfByteTokens) {
  // Near-uniform sampling over the 512-token vocabulary: about half the tokens are byte tokens <0xNN>,
  // so UTF-8 sequences get split across tokens and invalid bytes appear. The streamed stdout must hold
  // exactly the bytes of the pieces (compared through the same JSON escaping, which maps invalid bytes
  // to U+FFFD).
  CW_REQUIRE_SHARED_DATA(dir);
  const std::string model = dir + "/models/stories260K.gguf";
  const std::string args = "-p 'Once upon a time' -n 300 --temp 50 --top-k 0 --top-p 1 --min-p 0 --seed 3";
  auto text = run_command(run_cmd(model, args));
  auto json = run_command(run_cmd(model, args + " --json"));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  ASSERT_EQ(json.exit_code, 0) << json.err;
  ASSERT_FALSE(text.out.empty());
  ASSERT_EQ(text.out.back(), '\n');
  JsonValue j = parse_one_object(json.out);
  JsonWriter w;
  w.value(std::string_view(text.out).substr(0, text.out.size() - 1));
  auto streamed = JsonValue::parse(w.str());
  ASSERT_TRUE(streamed.is_ok());
  EXPECT_EQ(streamed->as_string(), j.get("text")->as_string());
  EXPECT_GT(text.out.size(), 300u);
}

TEST(RunCli, SeedsReproduceAndDiffer) {
  CW_REQUIRE_SHARED_DATA(dir);
  const std::string model = dir + "/models/stories260K.gguf";
  auto tokens = [&](const std::string& extra) {
    auto r = run_command(run_cmd(model, "-p 'Tim and his friend' -n 64 --temp 1 --json " + extra));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return ints(parse_one_object(r.out).get("tokens"));
  };
  const auto a = tokens("--seed 7");
  EXPECT_EQ(a.size(), 64u);
  EXPECT_EQ(a, tokens("--seed 7"));
  EXPECT_NE(a, tokens("--seed 8"));
  // Sampling options change the result under the same seed, deterministically.
  const auto b = tokens("--seed 7 --top-k 5 --top-p 0.5 --min-p 0.1 --repeat-penalty 1.3 --presence-penalty 0.5 "
                        "--frequency-penalty 0.2");
  EXPECT_EQ(b, tokens("--seed 7 --top-k 5 --top-p 0.5 --min-p 0.1 --repeat-penalty 1.3 --presence-penalty 0.5 "
                      "--frequency-penalty 0.2"));
  // The seed in use is reported.
  auto r = run_command(run_cmd(model, "-p 'Tim' -n 4 --seed 123 --json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(parse_one_object(r.out).get("seed")->as_number(), 123);
}

TEST(RunCli, PromptFromFileSmallUbatchAndPromptOnly) {
  CW_REQUIRE_SHARED_DATA(dir);
  const std::string model = dir + "/models/stories260K.gguf";
  const std::string prompt = "Once upon a time, in a small house, there lived a girl named Sue.";
  const std::string path = testing::temp_dir() + "/prompt.txt";
  std::ofstream(path) << prompt;
  auto a = run_command(run_cmd(model, "-p " + shell_quote(prompt) + " -n 16 --temp 0 --json"));
  auto b = run_command(run_cmd(model, "-f " + shell_quote(path) + " -n 16 --temp 0 --json --ubatch 3"));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  JsonValue ja = parse_one_object(a.out), jb = parse_one_object(b.out);
  EXPECT_EQ(ints(ja.get("prompt_tokens")), ints(jb.get("prompt_tokens")));
  EXPECT_EQ(ints(ja.get("tokens")), ints(jb.get("tokens")));
  auto c = run_command(run_cmd(model, "-p " + shell_quote(prompt) + " -n 16 --temp 0 --json --threads 2"));
  ASSERT_EQ(c.exit_code, 0) << c.err;
  JsonValue jc = parse_one_object(c.out);
  EXPECT_EQ(ints(ja.get("tokens")), ints(jc.get("tokens")));
  EXPECT_EQ(jc.get("threads")->as_number(), 2);

  auto zero = run_command(run_cmd(model, "-p 'Hello' -n 0 --json"));
  ASSERT_EQ(zero.exit_code, 0) << zero.err;
  JsonValue jz = parse_one_object(zero.out);
  EXPECT_TRUE(ints(jz.get("tokens")).empty());
  EXPECT_FALSE(ints(jz.get("prompt_tokens")).empty());
  EXPECT_EQ(jz.get("text")->as_string(), "");
}

TEST(RunCli, ErrorsAreOneLineAndExitTwo) {
  CW_REQUIRE_SHARED_DATA(dir);
  const std::string model = dir + "/models/stories260K.gguf";
  const std::string tmp = testing::temp_dir();
  const std::string empty = tmp + "/empty.txt", not_gguf = tmp + "/not_a_model.gguf";
  std::ofstream(empty).flush();
  std::ofstream(not_gguf) << "this is not a GGUF file, just some text that is long enough to be read";

  struct Case {
    std::string args;
    std::string message;  // a substring of the error line
  };
  const std::string m = "-m " + shell_quote(model) + " ";
  const std::vector<Case> cases = {
      {"-p hi", "-m MODEL.gguf is required"},
      {"-m " + tmp + "/missing.gguf -p hi", "missing.gguf"},
      {"-m " + shell_quote(not_gguf) + " -p hi", ""},
      {m, "exactly one of -p"},
      {m + "-p hi -f " + shell_quote(empty), "exactly one of -p"},
      {m + "-f " + shell_quote(empty), "empty"},
      {m + "-f " + tmp + "/nope.txt", "nope.txt"},
      {m + "-f " + shell_quote(tmp), ""},
      {m + "-p ''", "empty"},
      {m + "-p hi --temp -1", "--temp"},
      {m + "-p hi --temp abc", "--temp"},
      {m + "-p hi -n x", "--n-predict"},
      {m + "-p hi -n -5", "--n-predict"},
      {m + "-p hi --top-p 1.5", "--top-p"},
      {m + "-p hi --min-p -0.1", "--min-p"},
      {m + "-p hi --top-k -3", "--top-k"},
      {m + "-p hi --repeat-penalty 0", "repeat_penalty"},
      {m + "-p hi --ctx 0", "--ctx"},
      {m + "-p hi --threads 0", "--threads"},
      {m + "-p hi --seed -1", "--seed"},
      {m + "-p hi --logits-top 5", "--logits-top needs --json"},
      {m + "-p hi --bogus", "unknown option"},
      {m + "-p 'Once upon a time' -n 10 --ctx 8",
       "the prompt (5 tokens) + 10 tokens to generate = 15 exceeds the context size of 8 tokens"},
      // The context rule (issue 11): the training context of stories260K is 2048 tokens.
      {m + "-p 'Once upon a time' -n 5000",
       "the prompt (5 tokens) + 5000 tokens to generate = 5005 exceeds the model's training context of 2048 tokens"},
      {m + "-p hi --ctx 16777216", "--ctx 16777216 exceeds the model's training context of 2048 tokens"},
  };
  for (const Case& c : cases) {
    auto r = run_command(chunkwise_binary() + " run " + c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << c.args << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("chunkwise run: ", 0), 0u) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << "\n" << r.err;
    EXPECT_TRUE(r.out.empty()) << c.args << "\n" << r.out;
  }
}

TEST(RunCli, HelpAndListing) {
  auto r = run_command(chunkwise_binary() + " run --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--logits-top"), std::string::npos);
  auto top = run_command(chunkwise_binary() + " --help");
  EXPECT_NE(top.out.find("run "), std::string::npos);
}

// Issue 12: sink_window keeps a bounded cache, so `run` generates past --ctx and the training context
// (2048 tokens for stories260K); bad specs are one-line errors.
TEST(RunCli, KvPolicySinkWindowRunsPastTheTrainingContext) {
  CW_REQUIRE_SHARED_DATA(dir);
  const std::string model = dir + "/models/stories260K.gguf";
  auto r = run_command(run_cmd(model, "-p 'Once upon a time' -n 3000 --temp 0 --json --kv-policy sink_window:sinks=4,window=240"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const JsonValue v = parse_one_object(r.out);
  const std::vector<int64_t> tokens = ints(v.get("tokens"));
  EXPECT_EQ(tokens.size(), 3000u);
  // Before the first slide attention is full: llama.cpp's greedy continuation.
  ASSERT_GE(tokens.size(), 4u);
  EXPECT_EQ(std::vector<int64_t>(tokens.begin(), tokens.begin() + 4), (std::vector<int64_t>{432, 383, 286, 261}));
  auto w = run_command(run_cmd(model, "-p 'Once upon a time' -n 2100 --temp 0 --kv-policy window:window=64"));
  EXPECT_EQ(w.exit_code, 0) << w.err;
  const std::string m = "-p hi -n 4 --kv-policy ";
  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {m + "bogus", "unknown kv policy 'bogus' (supported: full, sink_window, window, recompute_window, chunk_select, compress, retain)"},
           {m + "sink_window:sinks=4,window=8", "smaller than one KV block"},
           {m + "sink_window:sink=4", "unknown parameter 'sink'"},
           {m + "sink_window:window=x", "window must be an integer"},
           {m + "window:window=4000", "leaving no room for a new token within the model's training context of 2048"},
           {m + "sink_window:window=64 --ctx 100", "--ctx does not apply"},
       }) {
    auto e = run_command(run_cmd(model, args));
    EXPECT_EQ(e.exit_code, 2) << args << "\n" << e.err;
    EXPECT_EQ(count_lines(e.err), 1) << args << "\n" << e.err;
    EXPECT_NE(e.err.find(message), std::string::npos) << args << "\n" << e.err;
  }
}

}  // namespace
}  // namespace cw
