// `chunkwise gen-data` end to end (issue 14): JSON lines shape, answers at their spans, byte-identical
// reruns, -o, --vocab token ids (../shared vocabulary; skipped without it), one-line errors for bad flags.
// Needs the wamerican word list; skips without it.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/json_value.h"
#include "support/testing.h"

namespace cw {
namespace {

using testing::chunkwise_binary;
using testing::run_command;
using testing::shell_quote;

bool have_words() { return std::ifstream("/usr/share/dict/american-english").good(); }

std::vector<JsonValue> parse_lines(const std::string& out) {
  std::vector<JsonValue> rows;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    auto j = JsonValue::parse(line);
    EXPECT_TRUE(j.is_ok()) << line;
    if (j.is_ok()) rows.push_back(std::move(j).value());
  }
  return rows;
}

TEST(GenDataCli, JsonLinesShapeAndReproducible) {
  if (!have_words()) GTEST_SKIP() << "word list absent (apt-get install wamerican)";
  const std::string cmd = chunkwise_binary() + " gen-data --recipe mix --n 12 --seed 5 --length 400,900 --needles 3";
  auto a = run_command(cmd);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto b = run_command(cmd);
  EXPECT_EQ(a.out, b.out);
  auto c = run_command(chunkwise_binary() + " gen-data --recipe mix --n 12 --seed 6 --length 400,900 --needles 3");
  EXPECT_NE(a.out, c.out);
  const std::vector<JsonValue> rows = parse_lines(a.out);
  ASSERT_EQ(rows.size(), 12u);
  for (size_t i = 0; i < rows.size(); ++i) {
    const JsonValue& r = rows[i];
    for (const char* k : {"recipe", "seed", "index", "text", "question", "answer", "answer_begin", "answer_end",
                          "needles", "words_fingerprint", "length", "depth"})
      ASSERT_NE(r.get(k), nullptr) << k;
    EXPECT_EQ(r.get("index")->as_number(), static_cast<double>(i));
    EXPECT_EQ(r.get("seed")->as_number(), 5);
    EXPECT_EQ(r.get("target_length")->as_number(), i % 2 ? 900 : 400);
    const std::string& text = r.get("text")->as_string();
    const auto b0 = static_cast<size_t>(r.get("answer_begin")->as_number());
    const auto e0 = static_cast<size_t>(r.get("answer_end")->as_number());
    EXPECT_EQ(text.substr(b0, e0 - b0), r.get("answer")->as_string());
    EXPECT_LE(text.size(), i % 2 ? 900u : 400u);
    const std::string recipe = r.get("recipe")->as_string();
    EXPECT_EQ(r.get("needles")->items().size(), recipe == "kv" || recipe == "multi" ? 3u : 1u) << recipe;
    EXPECT_EQ(r.get("words_fingerprint")->as_string().rfind("wl1:", 0), 0u);
    EXPECT_EQ(r.get("prompt_tokens"), nullptr);
  }
  // -o writes the same bytes to a file.
  const std::string out = testing::temp_dir() + "/gen-data.jsonl";
  auto f = run_command(cmd + " -o " + shell_quote(out));
  ASSERT_EQ(f.exit_code, 0) << f.err;
  std::ifstream in(out);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), a.out);
}

TEST(GenDataCli, VocabAddsTokenIdsAndCountsTokens) {
  if (!have_words()) GTEST_SKIP() << "word list absent (apt-get install wamerican)";
  CW_REQUIRE_SHARED_DATA(dir);
  auto r = run_command(chunkwise_binary() + " gen-data --recipe passkey --n 3 --length 300 --depth 0.5 --vocab " +
                       shell_quote(dir + "/vocab/ggml-vocab-gpt-2.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<JsonValue> rows = parse_lines(r.out);
  ASSERT_EQ(rows.size(), 3u);
  for (const JsonValue& row : rows) {
    EXPECT_EQ(row.get("unit")->as_string(), "tokens");
    EXPECT_LE(row.get("length")->as_number(), 300);
    EXPECT_GE(row.get("length")->as_number(), 270);
    EXPECT_EQ(row.get("depth")->as_number(), 0.5);
    ASSERT_NE(row.get("prompt_tokens"), nullptr);
    EXPECT_GT(row.get("prompt_tokens")->items().size(), row.get("length")->as_number());
    ASSERT_NE(row.get("answer_tokens"), nullptr);
    EXPECT_GE(row.get("answer_tokens")->items().size(), 2u);
  }
}

TEST(GenDataCli, BadFlagsAreOneLineErrors) {
  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {"--recipe needle", "unknown recipe 'needle'"},
           {"--length 0", "--length: '0'"},
           {"--length 100,,200", "--length: ''"},
           {"--depth 1.5", "--depth: '1.5'"},
           {"--depth deep", "--depth: 'deep'"},
           {"--unit words", "--unit: 'words'"},
           {"--unit tokens", "--unit tokens needs --vocab"},
           {"--needles 0", "--needles"},
           {"--n -1", "--n"},
           {"--words /nonexistent/words", "wamerican"},
           {"--vocab /nonexistent.gguf", "/nonexistent.gguf"},
           {"--bogus", "--bogus"},
       }) {
    auto e = run_command(chunkwise_binary() + " gen-data " + args);
    EXPECT_EQ(e.exit_code, 2) << args << "\n" << e.err;
    EXPECT_NE(e.err.find(message), std::string::npos) << args << "\n" << e.err;
    EXPECT_EQ(e.err.find('\n'), e.err.size() - 1) << args << "\n" << e.err;
    EXPECT_TRUE(e.out.empty()) << args;
  }
}

}  // namespace
}  // namespace cw
