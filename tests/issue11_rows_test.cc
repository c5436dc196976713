// Regression tests for issue 11 ("hostile input"): one test per row of the probe's table, run against the
// built binary. Each would fail on the code the probe found (a crash, an emptied file, a hang, a silent
// wrong answer, a contradictory or unclear message). Models and vocabularies are generated here (no
// ../shared needed); the generated-model tests take a few seconds.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "support/spm_vocab.h"
#include "support/testing.h"

namespace cw {
namespace {

using testing::chunkwise_binary;
using testing::run_command;
using testing::shell_quote;

std::string tmp(const std::string& name) { return testing::temp_dir() + "/" + name; }

void put(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

std::string get(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// Exit 2 with exactly one line on stderr that contains `what`.
void expect_one_line_error(const testing::CommandResult& r, const std::string& what) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
}

const std::string& vocab() {
  static const std::string path = [] {
    const std::string p = tmp("issue11_vocab.gguf");
    gguf::Writer w;
    testing::add_small_spm_vocab(w);
    EXPECT_TRUE(w.write(p).is_ok());
    return p;
  }();
  return path;
}

// A tiny random-weight llama (F32) over the small vocabulary, made by the CLI.
const std::string& model() {
  static const std::string path = [] {
    const std::string p = tmp("issue11_model.gguf");
    auto r = run_command(chunkwise_binary() + " make-model -q --arch llama --shape tiny --type f32 --vocab " +
                         shell_quote(vocab()) + " -o " + shell_quote(p));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return p;
  }();
  return path;
}

std::string cw(const std::string& args) { return chunkwise_binary() + " " + args; }

// --- crash -------------------------------------------------------------------------------------------

TEST(Issue11, ChunkWithTokenizerOnPageMultipleFileDoesNotCrashAndStaysLinear) {
  // 8 MiB exactly (a multiple of 4096): the mapping ends at a page boundary, and reading one byte past it
  // faulted. The small vocabulary encodes these words as byte tokens, which once made every measure an
  // encode of the whole rest of the document (quadratic: ~100 s for 2 MiB); `timeout` turns that into a
  // failure (exit 124) instead of a stuck test.
  std::string text;
  const char* words[] = {"alpha ", "beta ", "gamma. ", "delta\n", "w1 ", "w2 "};
  for (size_t i = 0; text.size() < (size_t{8} << 20); ++i) text += words[i % 6];
  text.resize(size_t{8} << 20);
  const std::string in = tmp("page_multiple.txt");
  put(in, text);
  for (const char* method : {"token", "sentence", "recursive", "markdown"}) {
    auto r = run_command("timeout 120 " + cw("chunk --no-text --size 256 --method ") + method + " --tokenizer " +
                         shell_quote(vocab()) + " " + shell_quote(in) + " -o " + shell_quote(tmp("page.jsonl")));
    EXPECT_EQ(r.exit_code, 0) << method << ": " << r.err;
    EXPECT_GT(lines(get(tmp("page.jsonl"))), 1000) << method;
  }
}

// --- data loss -----------------------------------------------------------------------------------------

TEST(Issue11, ChunkRefusesToOverwriteItsInput) {
  const std::string a = tmp("a.md");
  put(a, "# Title\n\nSome text.\n");
  expect_one_line_error(run_command(cw("chunk " + shell_quote(a) + " -o " + shell_quote(a))), "is the input");
  EXPECT_EQ(get(a), "# Title\n\nSome text.\n");
}

TEST(Issue11, FailedChunkRunKeepsThePreviousOutput) {
  const std::string good = tmp("good.txt"), out = tmp("prev.jsonl");
  put(good, "plain words here");
  put(out, "previous content\n");
  // The second input does not exist by the time it is read? No: inputs are checked up front, so make the
  // second one fail in the chunker: a code point larger than --size 1 in unit bytes.
  const std::string bad = tmp("bad.txt");
  put(bad, "\xF0\x9F\x98\x80");
  auto r = run_command(cw("chunk --unit bytes --size 1 " + shell_quote(good) + " " + shell_quote(bad) + " -o " +
                          shell_quote(out)));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(get(out), "previous content\n");
  // And a successful run replaces it.
  auto ok = run_command(cw("chunk --unit bytes --size 64 " + shell_quote(good) + " -o " + shell_quote(out)));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(get(out).find("\"doc\""), std::string::npos);
}

// --- hang + memory ---------------------------------------------------------------------------------------

TEST(Issue11, SpecialFilesAreRefusedNotReadForever) {
  const std::string fifo = tmp("fifo");
  ::unlink(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // `timeout` turns a hang into exit 124, which the checks below then reject.
  const std::string t = "timeout 20 ";
  expect_one_line_error(run_command(t + cw("inspect " + fifo)), "FIFO");
  expect_one_line_error(run_command(t + cw("tokenize -m " + shell_quote(vocab()) + " -f /dev/zero")), "character device");
  expect_one_line_error(run_command(t + cw("run -m " + shell_quote(model()) + " -f /dev/zero")), "character device");
  expect_one_line_error(run_command(t + cw("batch -m " + shell_quote(model()) + " -f /dev/zero")), "character device");
  expect_one_line_error(run_command(t + cw("chunk /dev/zero")), "character device");
  expect_one_line_error(run_command(t + cw("tokenize -m " + fifo + " -p x")), "FIFO");
  // Standard input is the one stream accepted; it is capped, not read forever.
  expect_one_line_error(run_command(t + cw("tokenize -m " + shell_quote(vocab()) + " -f - < /dev/zero")),
                        "standard input holds more than");
}

// --- silent wrong ---------------------------------------------------------------------------------------

TEST(Issue11, DirectoryAsTextFileIsAnError) {
  expect_one_line_error(run_command(cw("tokenize -m " + shell_quote(vocab()) + " -f " + testing::temp_dir())),
                        "is a directory");
}

TEST(Issue11, MakeModelRefusesAVocabularyTheTokenizerRefuses) {
  // A vocabulary whose scores array is shorter than its tokens: parses as GGUF, fails as a tokenizer.
  gguf::Writer w;
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a", "b"});
  w.add_f32_array("tokenizer.ggml.scores", {0.f, 0.f});
  const std::string bad = tmp("bad_vocab.gguf"), out = tmp("from_bad_vocab.gguf");
  ASSERT_TRUE(w.write(bad).is_ok());
  ::unlink(out.c_str());
  auto r = run_command(cw("make-model -q --arch llama --shape tiny --type f32 --vocab " + shell_quote(bad) + " -o " +
                          shell_quote(out)));
  expect_one_line_error(r, "is not usable");
  struct stat st {};
  EXPECT_NE(::stat(out.c_str(), &st), 0) << "no model may be written from an unusable vocabulary";
}

TEST(Issue11, Utf16TextIsRefused) {
  std::string u16 = "\xFF\xFE";
  for (char c : std::string("Once upon a time")) u16 += std::string{c, '\0'};
  const std::string in = tmp("utf16.txt");
  put(in, u16);
  expect_one_line_error(run_command(cw("tokenize -m " + shell_quote(vocab()) + " -f " + shell_quote(in))), "UTF-16");
  expect_one_line_error(run_command(cw("chunk " + shell_quote(in))), "UTF-16");
  expect_one_line_error(run_command(cw("run -m " + shell_quote(model()) + " -f " + shell_quote(in))), "UTF-16");
}

// --- unclear --------------------------------------------------------------------------------------------

TEST(Issue11, HugeJsonNumberIsReportedAsGiven) {
  const std::string in = tmp("big_n.jsonl");
  put(in, "{\"prompt\":\"w1 w2\",\"n_predict\":1e20}\n");
  auto r = run_command(cw("batch -m " + shell_quote(model()) + " -f " + shell_quote(in)));
  expect_one_line_error(r, "got 1e+20");
  EXPECT_EQ(r.err.find("-9223372036854775808"), std::string::npos) << r.err;
}

TEST(Issue11, FullRangeSeedIsAccepted) {
  auto r = run_command(cw("run -m " + shell_quote(model()) + " -p 'w1 w2' -n 2 --temp 1 --seed 18446744073709551615"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("seed 18446744073709551615"), std::string::npos) << r.err;
  expect_one_line_error(run_command(cw("run -m " + shell_quote(model()) + " -p x --seed 18446744073709551616")),
                        "must be in [0, 18446744073709551615]");
  expect_one_line_error(run_command(cw("run -m " + shell_quote(model()) + " -p x --ctx 99999999999999999999")),
                        "must be in [");
}

TEST(Issue11, Utf8BomInJsonlIsAccepted) {
  const std::string in = tmp("bom.jsonl");
  put(in, "\xEF\xBB\xBF{\"prompt\":\"w1 w2\",\"n_predict\":2}\n");
  auto r = run_command(cw("batch -m " + shell_quote(model()) + " -f " + shell_quote(in) + " --temp 0"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"tokens\""), std::string::npos) << r.out;
}

TEST(Issue11, NulInAStringIsShownNotCut) {
  gguf::Writer w;
  w.add_string("general.architecture", std::string("lla\0ma-evil", 11));
  std::vector<uint8_t> data(16 * 4, 0);
  ASSERT_TRUE(w.add_tensor("token_embd.weight", gguf::TensorType::kF32, {16}, data).is_ok());
  const std::string p = tmp("nul_arch.gguf");
  ASSERT_TRUE(w.write(p).is_ok());
  auto r = run_command(cw("run -m " + shell_quote(p) + " -p x"));
  expect_one_line_error(r, "lla\\x00ma-evil");
}

TEST(Issue11, TruncatedTensorDataNamesTheFile) {
  const std::string& m = model();
  const std::string bytes = get(m);
  const std::string cut = tmp("truncated_model.gguf");
  put(cut, bytes.substr(0, bytes.size() - 100));
  auto r = run_command(cw("run -m " + shell_quote(cut) + " -p x"));
  expect_one_line_error(r, "runs past the end of the file");
  EXPECT_NE(r.err.find(cut), std::string::npos) << r.err;
}

TEST(Issue11, MissingAndUnreadableFilesBothExitTwo) {
  expect_one_line_error(run_command(cw("tokenize -m " + shell_quote(tmp("does_not_exist.gguf")) + " -p x")),
                        "No such file");
  // Any other reason a named input cannot be opened is the user's input too (it exited 1 before).
  const std::string loop = tmp("loop.gguf");
  ::unlink(loop.c_str());
  ASSERT_EQ(::symlink(loop.c_str(), loop.c_str()), 0);
  expect_one_line_error(run_command(cw("tokenize -m " + shell_quote(loop) + " -p x")), "symbolic links");
  // Permission: root ignores mode bits, so run the command as nobody when the tests run as root.
  const std::string locked = tmp("locked.gguf");
  put(locked, get(vocab()));
  ASSERT_EQ(::chmod(locked.c_str(), 0), 0);
  std::string as_user;
  if (::geteuid() == 0) {
    if (::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "running as root without setpriv";
    ASSERT_EQ(::chmod(testing::temp_dir().c_str(), 0755), 0);  // nobody must reach the file to be refused
    as_user = "/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups ";
  }
  expect_one_line_error(run_command(as_user + cw("tokenize -m " + shell_quote(locked) + " -p x")), "Permission denied");
}

}  // namespace
}  // namespace cw
