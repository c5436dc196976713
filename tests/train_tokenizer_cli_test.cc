// `chunkwise train-tokenizer` end to end (issue 14): --gen and -f train a vocabulary that loads and
// tokenizes (through `chunkwise tokenize`), identical bytes on a rerun, one-line errors for bad flags.
// The --gen case needs the wamerican word list; it skips without it.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "support/testing.h"

namespace cw {
namespace {

using testing::chunkwise_binary;
using testing::run_command;
using testing::shell_quote;
using testing::temp_dir;

bool have_words() { return std::ifstream("/usr/share/dict/american-english").good(); }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t count_lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

TEST(TrainTokenizerCli, GenIsReproducibleAndLoads) {
  if (!have_words()) GTEST_SKIP() << "word list absent (apt-get install wamerican)";
  const std::string a = temp_dir() + "/gen_a.gguf", b = temp_dir() + "/gen_b.gguf";
  const std::string base = chunkwise_binary() + " train-tokenizer --vocab-size 600 --gen " +
                           shell_quote("recipe=mix,n=60,length=1500,seed=1") + " -o ";
  auto r = run_command(base + shell_quote(a));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("600 tokens"), std::string::npos) << r.err;
  auto r2 = run_command(base + shell_quote(b) + " -q");
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_EQ(r2.err, "");
  EXPECT_EQ(slurp(a), slurp(b));
  EXPECT_GT(slurp(a).size(), 1000u);
  // The vocabulary loads in the engine; a generated sentence takes far fewer tokens than bytes.
  const std::string text = "Question: What is the pass key?\nAnswer:";
  auto t = run_command(chunkwise_binary() + " tokenize -m " + shell_quote(a) + " --ids -p " + shell_quote(text));
  ASSERT_EQ(t.exit_code, 0) << t.err;
  std::istringstream ids(t.out);
  size_t n_ids = 0;
  for (long id; ids >> id;) ++n_ids;
  EXPECT_GT(n_ids, 0u);
  EXPECT_LT(n_ids * 3, text.size()) << t.out;
}

TEST(TrainTokenizerCli, FilesInput) {
  const std::string in = temp_dir() + "/tt_input.txt", out = temp_dir() + "/tt_files.gguf";
  {
    std::ofstream f(in, std::ios::binary);
    for (int i = 0; i < 50; ++i) f << "the cat sat on the mat and the dog sat on the log " << i << "\n";
  }
  auto r = run_command(chunkwise_binary() + " train-tokenizer --vocab-size 280 -f " + shell_quote(in) + " -o " +
                       shell_quote(out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(slurp(out).empty());
}

TEST(TrainTokenizerCli, BadFlagsAreOneLineErrors) {
  const std::string out = temp_dir() + "/tt_bad.gguf";
  const std::string in = temp_dir() + "/tt_small.txt";
  {
    std::ofstream f(in, std::ios::binary);
    f << "tiny text";
  }
  const std::string cmds[] = {
      " train-tokenizer --vocab-size 100 --gen recipe=mix -o " + shell_quote(out),         // too small
      " train-tokenizer --vocab-size 500 -o " + shell_quote(out),                           // no input
      " train-tokenizer --vocab-size 500 --gen bogus=1 -o " + shell_quote(out),             // bad spec
      " train-tokenizer --vocab-size 500 --gen recipe=nope -o " + shell_quote(out),         // bad recipe
      " train-tokenizer --vocab-size 500 -f " + shell_quote(in) + " -o " + shell_quote(out),  // too little text
      " train-tokenizer --vocab-size 500 -f /no/such/file.txt -o " + shell_quote(out),
      " train-tokenizer --vocab-size 500 --pre no-such-pre -f " + shell_quote(in) + " -o " + shell_quote(out),
      " train-tokenizer --vocab-size 500 -f " + shell_quote(in),                            // no -o
      " train-tokenizer --vocab-size 500 --bogus-flag -f " + shell_quote(in) + " -o " + shell_quote(out),
  };
  for (const std::string& c : cmds) {
    auto r = run_command(chunkwise_binary() + c);
    EXPECT_EQ(r.exit_code, 2) << c << "\n" << r.err;
    EXPECT_EQ(count_lines(r.err), 1u) << c << "\n" << r.err;
    EXPECT_NE(r.err.find("train-tokenizer"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(std::ifstream(out).good());
}

}  // namespace
}  // namespace cw
