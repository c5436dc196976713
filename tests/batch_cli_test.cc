// End-to-end tests of `chunkwise batch`: greedy outputs equal one-at-a-time `chunkwise run --temp 0` for
// 1..16 concurrent sequences of mixed lengths at several --batch-tokens / --parallel values (stories260K
// and a generated model), prefix reuse reported in cached_tokens, output order and ids, and one-line
// errors (with the input line number) and exit code 2 for bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
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

std::vector<int64_t> ints(const JsonValue* v) {
  std::vector<int64_t> out;
  if (v == nullptr || !v->is_array()) return out;
  for (const JsonValue& x : v->items()) out.push_back(static_cast<int64_t>(x.as_number()));
  return out;
}

std::vector<JsonValue> parse_lines(const std::string& out) {
  std::vector<JsonValue> v;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    auto j = JsonValue::parse(line);
    EXPECT_TRUE(j.is_ok()) << j.status().message() << "\n" << line;
    if (j.is_ok()) v.push_back(std::move(j).value());
  }
  return v;
}

struct Prompt {
  std::string text;
  int64_t n_predict;
};

std::string prompt_id(size_t i) {
  std::string id = "p";
  id += std::to_string(i);
  return id;
}

std::string write_jsonl(const std::string& name, const std::vector<Prompt>& prompts) {
  const std::string path = testing::temp_dir() + "/" + name;
  std::ofstream f(path);
  for (size_t i = 0; i < prompts.size(); ++i) {
    JsonWriter w;
    w.begin_object().key("id").value(prompt_id(i)).key("prompt").value(prompts[i].text);
    w.key("n_predict").value(prompts[i].n_predict).key("temperature").value(0.0).end_object();
    f << w.str() << "\n";
  }
  return path;
}

std::vector<Prompt> mixed_prompts(int n, int max_words) {
  static const char* kWords[] = {"Once", "upon", "a", "time", "there", "was", "a", "little", "dog", "named",
                                 "Tom.", "He", "liked", "to", "play", "in", "the", "park", "with", "his", "ball."};
  std::vector<Prompt> out;
  for (int i = 0; i < n; ++i) {
    std::string text;
    const int words = 1 + (i * 7) % max_words;
    for (int w = 0; w < words; ++w) {
      if (w > 0) text += ' ';
      text += kWords[(i + w * 3) % 21];
    }
    out.push_back({text, 1 + (i * 13) % 48});
  }
  return out;
}

// Greedy `run` of each prompt, then `batch` at several settings: the tokens must be identical.
void expect_batch_equals_run(const std::string& model, const std::vector<Prompt>& prompts, const std::string& name,
                             const std::vector<std::string>& settings, const std::string& run_flags = "") {
  std::vector<std::vector<int64_t>> want;
  for (const Prompt& p : prompts) {
    auto r = run_command(chunkwise_binary() + " run -m " + shell_quote(model) + " -p " + shell_quote(p.text) +
                         " -n " + std::to_string(p.n_predict) + " --temp 0 --json " + run_flags);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = JsonValue::parse(r.out);
    ASSERT_TRUE(j.is_ok());
    want.push_back(ints(j->get("tokens")));
  }
  const std::string input = write_jsonl(name, prompts);
  for (const std::string& setting : settings) {
    SCOPED_TRACE(setting);
    auto r = run_command(chunkwise_binary() + " batch -m " + shell_quote(model) + " -f " + shell_quote(input) + " " +
                         setting);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto lines = parse_lines(r.out);
    ASSERT_EQ(lines.size(), prompts.size());
    for (size_t i = 0; i < lines.size(); ++i) {
      EXPECT_EQ(lines[i].get("id")->as_string(), prompt_id(i));
      EXPECT_EQ(ints(lines[i].get("tokens")), want[i]) << "prompt " << i << ": " << prompts[i].text;
      EXPECT_GT(lines[i].get("prompt_tokens")->as_number(), 0);
    }
  }
}

TEST(BatchCli, GreedyEqualsRunStories260K) {
  CW_REQUIRE_SHARED_DATA(dir);
  const std::string model = dir + "/models/stories260K.gguf";
  for (int n : {1, 5, 16}) {
    SCOPED_TRACE("sequences: " + std::to_string(n));
    expect_batch_equals_run(model, mixed_prompts(n, 20), "stories-" + std::to_string(n) + ".jsonl",
                            {"--batch-tokens 512", "--batch-tokens 7 --parallel 4", "--batch-tokens 32 --parallel 16",
                             "--batch-tokens 1 --parallel 3 --block-size 32"});
  }
}

TEST(BatchCli, GreedyEqualsRunGeneratedModel) {
  CW_REQUIRE_SHARED_DATA(dir);
  const std::string model = testing::temp_dir() + "/batch-tiny-f16.gguf";
  auto made = run_command(chunkwise_binary() + " make-model --arch llama --shape tiny --type f16 --vocab " +
                          shell_quote(dir + "/vocab/ggml-vocab-llama-spm.gguf") + " -o " +
                          shell_quote(model));
  ASSERT_EQ(made.exit_code, 0) << made.err;
  expect_batch_equals_run(model, mixed_prompts(12, 40), "tiny.jsonl",
                          {"--batch-tokens 512 --threads 2", "--batch-tokens 16 --parallel 16",
                           "--batch-tokens 5 --parallel 2 --kv-mem 1M", "--batch-tokens 64 --parallel 16 --kv-mem 256K"});
}

// Quantized weights: `batch --batch-invariant` equals `run --batch-invariant` by construction (every matmul
// on the multi-row kernels), whatever the batching.
TEST(BatchCli, BatchInvariantGreedyEqualsRunQuantized) {
  CW_REQUIRE_SHARED_DATA(dir);
  const std::string model = testing::temp_dir() + "/batch-tiny-q4_0.gguf";
  auto made = run_command(chunkwise_binary() + " make-model --arch llama --shape tiny --type q4_0 --vocab " +
                          shell_quote(dir + "/vocab/ggml-vocab-llama-spm.gguf") + " -o " +
                          shell_quote(model));
  ASSERT_EQ(made.exit_code, 0) << made.err;
  expect_batch_equals_run(model, mixed_prompts(12, 40), "tiny-q4_0.jsonl",
                          {"--batch-invariant --batch-tokens 512 --threads 2",
                           "--batch-invariant --batch-tokens 9 --parallel 16",
                           "--batch-invariant --batch-tokens 5 --parallel 3 --kv-mem 1M"},
                          "--batch-invariant");
}

TEST(BatchCli, SharedPrefixIsReportedAndOrderKept) {
  CW_REQUIRE_SHARED_DATA(dir);
  const std::string model = dir + "/models/stories260K.gguf";
  std::string long_prompt;
  for (int i = 0; i < 12; ++i) long_prompt += "Once upon a time there was a dog. ";
  const std::string path = testing::temp_dir() + "/prefix.jsonl";
  {
    std::ofstream f(path);
    f << "{\"id\": 7, \"prompt\": " << "\"" << long_prompt << "\", \"n_predict\": 4, \"temperature\": 0}\n";
    f << "\n";
    f << "{\"prompt\": " << "\"" << long_prompt << "The end.\", \"n_predict\": 4, \"temperature\": 0, \"seed\": 3}\n";
  }
  auto r = run_command(chunkwise_binary() + " batch -m " + shell_quote(model) + " -f " + shell_quote(path) +
                       " --parallel 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = parse_lines(r.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].get("id")->as_number(), 7);
  EXPECT_EQ(lines[1].get("id")->as_number(), 3);  // no "id": the line number
  EXPECT_EQ(lines[0].get("cached_tokens")->as_number(), 0);
  const double p0 = lines[0].get("prompt_tokens")->as_number();
  const double cached = lines[1].get("cached_tokens")->as_number();
  EXPECT_GE(cached, p0 - 1 - 16);  // every full block of the shared prompt
  EXPECT_LT(cached, lines[1].get("prompt_tokens")->as_number());
  EXPECT_TRUE(r.err.empty()) << r.err;  // no progress bar when stderr is not a terminal

  // -o writes the same lines to a file.
  const std::string out_path = testing::temp_dir() + "/prefix-out.jsonl";
  auto r2 = run_command(chunkwise_binary() + " batch -m " + shell_quote(model) + " -f " + shell_quote(path) +
                        " --parallel 1 -o " + shell_quote(out_path));
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_TRUE(r2.out.empty());
  std::ifstream in(out_path);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), r.out);
}

TEST(BatchCli, BadInputIsOneLineErrorWithLineNumber) {
  CW_REQUIRE_SHARED_DATA(dir);
  const std::string model = dir + "/models/stories260K.gguf";
  struct Case {
    std::string content;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"{\"prompt\": \"hi\"}\n{\"prompt\": \"x\",}\n", "line 2: invalid JSON"},
      {"{\"prompt\": \"hi\"}\n\n[1,2]\n", "line 3: expected a JSON object"},
      {"{\"id\": 1}\n", "line 1: missing \"prompt\""},
      {"{\"prompt\": 5}\n", "line 1: \"prompt\" must be a string"},
      {"{\"prompt\": \"\"}\n", "line 1: \"prompt\" is empty"},
      {"{\"prompt\": \"a\", \"n_predict\": -1}\n", "line 1: \"n_predict\" must be in"},
      {"{\"prompt\": \"a\", \"n_predict\": 2.5}\n", "line 1: \"n_predict\" must be an integer"},
      {"{\"prompt\": \"a\", \"temperature\": -1}\n", "line 1: \"temperature\" must be a number >= 0"},
      {"{\"prompt\": \"a\", \"seed\": \"x\"}\n", "line 1: \"seed\" must be an integer"},
      {"{\"prompt\": \"a\", \"n_prdict\": 3}\n", "line 1: unknown key \"n_prdict\""},
      {"{\"prompt\": \"a\", \"id\": [1]}\n", "line 1: \"id\" must be a string or a number"},
      {"{\"prompt\": \"a\", \"n_predict\": 1000}\n",
       "line 1: the prompt (2 tokens) + 1000 tokens to generate = 1002 exceeds the context size of 256 tokens"},
      // The context rule (issue 11): the same message as `run` (run_cli_test).
      {"{\"prompt\": \"Once upon a time\", \"n_predict\": 5000}\n",
       "line 1: the prompt (5 tokens) + 5000 tokens to generate = 5005 exceeds the model's training context of 2048 "
       "tokens"},
      {"\n\n", "has no prompts"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string path = testing::temp_dir() + "/bad" + std::to_string(i) + ".jsonl";
    std::ofstream(path) << cases[i].content;
    auto r = run_command(chunkwise_binary() + " batch -m " + shell_quote(model) + " -f " + shell_quote(path) +
                         " --ctx 256");
    EXPECT_EQ(r.exit_code, 2) << cases[i].content;
    EXPECT_TRUE(r.out.empty());
    EXPECT_NE(r.err.find(cases[i].expect), std::string::npos) << "got: " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  const std::string ok = testing::temp_dir() + "/ok.jsonl";
  std::ofstream(ok) << "{\"prompt\": \"a\"}\n";
  for (const std::string& args : {std::string(" -f ") + ok, " -m " + shell_quote(model), " -m " + shell_quote(model) + " -f /nonexistent.jsonl",
                                  " -m " + shell_quote(model) + " -f " + ok + " --kv-mem 1M --ctx 5",
                                  " -m " + shell_quote(model) + " -f " + ok + " --kv-mem 12Q",
                                  " -m " + shell_quote(model) + " -f " + ok + " --kv-mem 100",
                                  " -m " + shell_quote(model) + " -f " + ok + " --schedule fifo",
                                  " -m " + shell_quote(model) + " -f " + ok + " --kv-policy nope",
                                  " -m " + shell_quote(model) + " -f " + ok + " --kv-type q8",
                                  " -m " + shell_quote(model) + " -f " + ok + " --parallel 0"}) {
    auto r = run_command(chunkwise_binary() + " batch" + args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << "\n" << r.err;
  }
}

// Issue 12: the Engine executes KV policy actions. Requests past the training context (2,100 tokens on a
// 2,048-token model), in a KV cache smaller than one of them, under the engine's policy and under a
// per-request one: greedy tokens equal `run --kv-policy`'s.
TEST(BatchCli, KvPoliciesRunPastTheTrainingContextAndEqualRun) {
  CW_REQUIRE_SHARED_DATA(dir);
  const std::string model = dir + "/models/stories260K.gguf";
  const std::string engine_policy = "sink_window:sinks=4,window=64", own = "window:window=96";
  std::vector<std::vector<int64_t>> want;
  for (const std::string& spec : {engine_policy, own}) {
    auto r = run_command(chunkwise_binary() + " run -m " + shell_quote(model) +
                         " -p 'Once upon a time' -n 2100 --temp 0 --json --kv-policy " + spec);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = JsonValue::parse(r.out);
    ASSERT_TRUE(j.is_ok());
    want.push_back(ints(j->get("tokens")));
    ASSERT_EQ(want.back().size(), 2100u);
  }
  const std::string path = testing::temp_dir() + "/policy_prompts.jsonl";
  std::ofstream(path) << "{\"prompt\": \"Once upon a time\"}\n"
                      << "{\"prompt\": \"Once upon a time\", \"kv_policy\": \"" << own << "\"}\n";
  auto r = run_command(chunkwise_binary() + " batch -m " + shell_quote(model) + " -f " + shell_quote(path) +
                       " -n 2100 --temp 0 --ctx 512 --no-progress --kv-policy " + engine_policy);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = parse_lines(r.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(ints(lines[0].get("tokens")), want[0]);
  EXPECT_EQ(ints(lines[1].get("tokens")), want[1]);
  // A bad per-request policy is that line's one-line error, before anything runs.
  std::ofstream(path) << "{\"prompt\": \"x\", \"kv_policy\": \"window:window=3\"}\n";
  auto bad = run_command(chunkwise_binary() + " batch -m " + shell_quote(model) + " -f " + shell_quote(path) +
                         " --no-progress");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err, "chunkwise batch: line 1: kv policy 'window:window=3': the window (3) is smaller than one KV "
                     "block (16 slots): make it at least 16\n");
}

}  // namespace
}  // namespace cw
