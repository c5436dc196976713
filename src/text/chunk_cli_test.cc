// End-to-end tests of `chunkwise chunk`: output shape and offsets, input order with threads, errors.
#include <gtest/gtest.h>

#include <algorithm>
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

std::string write_file(const std::string& name, const std::string& content) {
  const std::string path = testing::temp_dir() + "/" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

std::vector<JsonValue> parse_lines(const std::string& out) {
  std::vector<JsonValue> rows;
  std::istringstream ss(out);
  std::string line;
  while (std::getline(ss, line)) {
    auto v = JsonValue::parse(line);
    EXPECT_TRUE(v.is_ok()) << line;
    if (v.is_ok()) rows.push_back(std::move(v).value());
  }
  return rows;
}

int64_t num(const JsonValue& v, const char* key) {
  const JsonValue* f = v.get(key);
  EXPECT_NE(f, nullptr) << key;
  return f ? static_cast<int64_t>(f->as_number()) : -1;
}

TEST(ChunkCli, HelpListsMethods) {
  auto r = run_command(chunkwise_binary() + " chunk --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* m : {"token", "sentence", "recursive", "markdown", "--overlap", "--tokenizer"}) {
    EXPECT_NE(r.out.find(m), std::string::npos) << m;
  }
}

TEST(ChunkCli, StdinOffsetsReconstructTheInput) {
  const std::string text = "Caf\xC3\xA9 \xF0\x9F\x98\x80 one. Two \"quoted\" words.\r\n\r\nNext \xE6\x97\xA5\xE6\x9C\xAC paragraph.\n";
  const std::string in = write_file("stdin.txt", text);
  auto r = run_command(chunkwise_binary() + " chunk --size 12 --unit chars < " + in);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_lines(r.out);
  ASSERT_GT(rows.size(), 2u);
  std::string joined;
  int64_t prev_end = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const JsonValue& v = rows[i];
    EXPECT_EQ(v.get("doc")->as_string(), "-");
    EXPECT_EQ(num(v, "index"), static_cast<int64_t>(i));
    const int64_t b = num(v, "byte_begin"), e = num(v, "byte_end");
    EXPECT_EQ(b, prev_end);
    EXPECT_EQ(v.get("text")->as_string(), text.substr(static_cast<size_t>(b), static_cast<size_t>(e - b)));
    EXPECT_LE(num(v, "n_tokens"), 12);
    EXPECT_EQ(num(v, "char_end") - num(v, "char_begin"), num(v, "n_tokens"));
    joined += v.get("text")->as_string();
    prev_end = e;
  }
  EXPECT_EQ(joined, text);
}

TEST(ChunkCli, FilesInInputOrderWithThreadsAndOutputFile) {
  std::vector<std::string> files;
  std::string args;
  for (int i = 0; i < 12; ++i) {
    std::string body = "# Doc " + std::to_string(i) + "\n\n";
    for (int k = 0; k < 50 * (i % 4 + 1); ++k) body += "Sentence " + std::to_string(k) + " of doc. ";
    files.push_back(write_file("doc" + std::to_string(i) + ".md", body));
    args += " " + files.back();
  }
  const std::string out = testing::temp_dir() + "/out.jsonl";
  auto r = run_command(chunkwise_binary() + " chunk --method markdown --size 200 --threads 3 -o " + out + args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.empty());
  std::ifstream f(out);
  std::stringstream ss;
  ss << f.rdbuf();
  const auto rows = parse_lines(ss.str());
  ASSERT_FALSE(rows.empty());
  size_t doc = 0;
  int64_t index = -1;
  for (const JsonValue& v : rows) {
    const std::string& d = v.get("doc")->as_string();
    if (d != files[doc]) {
      ++doc;
      ASSERT_LT(doc, files.size());
      ASSERT_EQ(d, files[doc]);
      index = -1;
    }
    EXPECT_EQ(num(v, "index"), index + 1);
    index = num(v, "index");
    const JsonValue* h = v.get("headings");
    ASSERT_NE(h, nullptr);
  }
  EXPECT_EQ(doc, files.size() - 1);
}

TEST(ChunkCli, SpecAndFlagsCombine) {
  const std::string in = write_file("spec.txt", "aaaa bbbb cccc dddd eeee");
  auto r = run_command(chunkwise_binary() + " chunk --spec token:size=3,unit=chars --size 10 " + in);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_lines(r.out);
  ASSERT_EQ(rows.size(), 3u);  // 24 chars in chunks of 10: the flag overrode size=3
  EXPECT_EQ(num(rows[0], "byte_end"), 10);
}

TEST(ChunkCli, NoTextKeepsOffsets) {
  const std::string in = write_file("notext.txt", "alpha beta gamma delta");
  auto with = run_command(chunkwise_binary() + " chunk --size 8 " + in);
  auto without = run_command(chunkwise_binary() + " chunk --size 8 --no-text " + in);
  ASSERT_EQ(with.exit_code, 0) << with.err;
  ASSERT_EQ(without.exit_code, 0) << without.err;
  const auto a = parse_lines(with.out), b = parse_lines(without.out);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i].get("text"), nullptr);
    for (const char* k : {"byte_begin", "byte_end", "char_begin", "char_end", "n_tokens"}) {
      EXPECT_EQ(num(a[i], k), num(b[i], k)) << k;
    }
  }
}

TEST(ChunkCli, ErrorsAreOneLineWithExitCode2) {
  const std::string in = write_file("err.txt", "a \xF0\x9F\x98\x80 b");
  struct Bad {
    std::string args;
    std::string needle;
  };
  const std::vector<Bad> cases = {
      {"/nonexistent/file.txt", "cannot open"},
      {"--size 0 " + in, "--size"},
      {"--size abc " + in, "--size"},
      {"--method nope " + in, "unknown chunking method"},
      {"--overlap 5 --size 5 " + in, "smaller than size"},
      {"--unit tokens " + in, "tokenizer"},
      {"--unit lines " + in, "unknown unit"},
      {"--tokenizer /nonexistent.gguf " + in, "cannot read"},
      {"--spec recursive:colour=red " + in, "valid keys"},
      {"--method token --unit bytes --size 3 " + in, "indivisible"},
      {"--bogus " + in, "unknown option"},
      {testing::temp_dir(), "is a directory"},
  };
  for (const Bad& b : cases) {
    auto r = run_command(chunkwise_binary() + " chunk " + b.args);
    EXPECT_EQ(r.exit_code, 2) << b.args << "\n" << r.err;
    EXPECT_NE(r.err.find(b.needle), std::string::npos) << b.args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(r.out.empty()) << b.args;
  }
}

TEST(ChunkCli, TokenizerUnit) {
  CW_REQUIRE_SHARED_DATA(dir);
  const std::string in = write_file("tok.txt", "The quick brown fox jumps over the lazy dog. It barked.");
  auto r = run_command(chunkwise_binary() + " chunk --method sentence --size 8 --tokenizer " + dir +
                       "/vocab/ggml-vocab-gpt-2.gguf " + in);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_lines(r.out);
  ASSERT_GE(rows.size(), 2u);
  for (const JsonValue& v : rows) EXPECT_LE(num(v, "n_tokens"), 8);
}

}  // namespace
}  // namespace cw
