// End-to-end tests of `chunkwise tokenize` (argument handling and output shapes).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "gguf/writer.h"
#include "support/testing.h"
#include "tokenizer/unicode.h"

namespace cw {
namespace {

using testing::chunkwise_binary;
using testing::run_command;

// A byte-level BPE vocab: the 256 byte characters, "he", and <|endoftext|> (control).
std::string write_vocab() {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(tok::byte_level().byte_to_utf8[b]);
    types.push_back(1);
  }
  tokens.push_back("he");
  types.push_back(1);
  tokens.push_back("<|endoftext|>");
  types.push_back(3);
  gguf::Writer w;
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", "gpt-2");
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_i32_array("tokenizer.ggml.token_type", types);
  w.add_string_array("tokenizer.ggml.merges", {"h e"});
  const std::string path = testing::temp_dir() + "/tok_vocab.gguf";
  EXPECT_TRUE(w.write(path).is_ok());
  return path;
}

TEST(TokenizeCli, OutputsIdsJsonAndPieces) {
  const std::string vocab = write_vocab();
  const std::string bin = chunkwise_binary() + " tokenize -m " + vocab;
  auto r = run_command(bin + " -p 'hex' --ids");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "256 120\n");
  r = run_command(bin + " -p 'he<|endoftext|>' --parse-special --ids");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "256 257\n");
  r = run_command(bin + " -p 'he' --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"tokens\":[256],\"pieces\":[\"he\"]}\n");
  r = run_command(bin + " -p \"$(printf 'a\\tb')\"");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("'\\t'"), std::string::npos) << r.out;
  const std::string text = testing::temp_dir() + "/tok_input.txt";
  std::ofstream(text) << "he";
  r = run_command(bin + " -f " + text + " --ids");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "256\n");
}

TEST(TokenizeCli, UsageErrorsExitTwo) {
  const std::string vocab = write_vocab();
  const std::string bin = chunkwise_binary() + " tokenize";
  for (const std::string& args : {std::string(" -p x"), " -m " + vocab, " -m " + vocab + " -p x -f y",
                                  " -m " + vocab + " -p x --ids --json", std::string(" -m /nonexistent.gguf -p x"),
                                  " -m " + vocab + " -f /nonexistent.txt"}) {
    auto r = run_command(bin + args);
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
  }
}

}  // namespace
}  // namespace cw
