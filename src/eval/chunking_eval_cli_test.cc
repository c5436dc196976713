// End-to-end tests of `chunkwise eval chunking`: the --json shape (single run and sweep), the plot, the
// text table, and one-line errors with exit code 2 for bad flags and bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "base/json_value.h"
#include "support/testing.h"

namespace cw {
namespace {

using testing::chunkwise_binary;
using testing::run_command;
using testing::shell_quote;

struct Fixture {
  std::string dir, corpora, questions;
};

// Two small corpora (one with a non-ASCII character before the references) and three questions.
const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture x;
    x.dir = testing::temp_dir() + "/eval_chunking";
    x.corpora = x.dir + "/corpora";
    std::filesystem::create_directories(x.corpora);
    std::ofstream(x.corpora + "/fruit.md") << "Caf\xC3\xA9 notes. Apples are red and crunchy. Bananas are yellow "
                                              "and soft. Cherries are small and dark red. Grapes grow in bunches.\n";
    std::ofstream(x.corpora + "/space.md") << "The Moon orbits the Earth. Mars is the red planet. Jupiter is the "
                                              "largest planet. Saturn has bright rings.\n";
    x.questions = x.dir + "/questions.csv";
    std::ofstream(x.questions)
        << "question,references,corpus_id\n"
           "What colour are bananas?,\"[{\"\"content\"\": \"\"Bananas are yellow\"\", \"\"start_index\"\": 40, "
           "\"\"end_index\"\": 58}]\",fruit\n"
           "Which planet has rings?,\"[{\"\"content\"\": \"\"Saturn has bright rings.\"\", \"\"start_index\"\": 82, "
           "\"\"end_index\"\": 106}]\",space\n"
           "Which planet is the largest?,\"[{\"\"content\"\": \"\"Jupiter is the largest planet.\"\", "
           "\"\"start_index\"\": 51, \"\"end_index\"\": 81}]\",space\n";
    return x;
  }();
  return f;
}

std::string base_cmd() {
  const Fixture& f = fixture();
  return chunkwise_binary() + " eval chunking --corpora " + shell_quote(f.corpora) + " --questions " +
         shell_quote(f.questions);
}

void expect_scores(const JsonValue& v) {
  for (const char* key : {"recall", "precision", "precision_omega", "iou"}) {
    const JsonValue* x = v.get(key);
    ASSERT_NE(x, nullptr) << key;
    ASSERT_TRUE(x->is_number()) << key;
    EXPECT_GE(x->as_number(), 0.0) << key;
    EXPECT_LE(x->as_number(), 100.0) << key;
  }
}

TEST(EvalChunkingCli, JsonShape) {
  auto r = run_command(base_cmd() + " --chunker recursive:size=40,unit=chars -k 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto v = JsonValue::parse(r.out);
  ASSERT_TRUE(v.is_ok()) << r.out;
  expect_scores(*v);
  EXPECT_EQ(v->get("n_questions")->as_number(), 3);
  EXPECT_EQ(v->get("k")->as_number(), 2);
  EXPECT_EQ(v->get("retriever")->as_string(), "bm25");
  EXPECT_EQ(v->get("select")->as_string(), "topk:k=2");
  EXPECT_EQ(v->get("chunker")->as_string(), "recursive:size=40,unit=chars");
  const JsonValue* corpora = v->get("corpora");
  ASSERT_TRUE(corpora != nullptr && corpora->is_array());
  ASSERT_EQ(corpora->items().size(), 2u);
  EXPECT_EQ(corpora->items()[0].get("corpus_id")->as_string(), "fruit");
  EXPECT_EQ(corpora->items()[1].get("n_questions")->as_number(), 2);
  for (const JsonValue& c : corpora->items()) expect_scores(c);
  // BM25 finds these word-matching questions.
  EXPECT_GT(v->get("recall")->as_number(), 50.0);
}

TEST(EvalChunkingCli, SweepJsonTableAndPlot) {
  const std::string plot = testing::temp_dir() + "/eval_chunking_sweep.svg";
  auto r = run_command(base_cmd() + " --chunker recursive:unit=chars --sweep 'size=30,60;overlap=0,50%' --json --plot " +
                       shell_quote(plot));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto v = JsonValue::parse(r.out);
  ASSERT_TRUE(v.is_ok()) << r.out;
  const JsonValue* settings = v->get("settings");
  ASSERT_TRUE(settings != nullptr && settings->is_array());
  ASSERT_EQ(settings->items().size(), 4u);
  const JsonValue& last = settings->items()[3];
  expect_scores(last);
  EXPECT_EQ(last.get("setting")->get("size")->as_string(), "60");
  EXPECT_EQ(last.get("setting")->get("overlap")->as_string(), "50%");
  EXPECT_EQ(last.get("chunker")->as_string(), "recursive:overlap=30,size=60,unit=chars");
  std::ifstream in(plot);
  std::string svg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);

  auto table = run_command(base_cmd() + " --chunker recursive:unit=chars --sweep 'size=30,60'");
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("size=60"), std::string::npos) << table.out;
  auto single = run_command(base_cmd() + " --chunker token:size=40,unit=chars --select gradient:max=4");
  ASSERT_EQ(single.exit_code, 0) << single.err;
  EXPECT_NE(single.out.find("all"), std::string::npos) << single.out;
  EXPECT_NE(single.out.find("space"), std::string::npos) << single.out;
}

void expect_bad(const std::string& args, const std::string& needle) {
  auto r = run_command(base_cmd() + " " + args);
  EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
  EXPECT_TRUE(r.out.empty()) << args;
  EXPECT_NE(r.err.find(needle), std::string::npos) << args << "\n" << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
}

TEST(EvalChunkingCli, BadFlagsAndInputs) {
  expect_bad("", "--chunker is required");
  expect_bad("--chunker nosuch:size=3", "unknown chunking method 'nosuch'");
  expect_bad("--chunker token:size=10,unit=chars --retriever sparse", "unknown retriever 'sparse'");
  expect_bad("--chunker token:size=10,unit=chars --retriever dense", "needs an embedding model");
  expect_bad("--chunker token:size=10,unit=chars --embed-model hash", "--embed-model is used by");
  expect_bad("--chunker token:size=10,unit=chars --select topk:k=0", "topk");
  expect_bad("--chunker token:size=10,unit=chars -k 0", "-k must be in");
  expect_bad("--chunker token:size=10,unit=chars --sweep 'size=10;size=20'", "given twice");
  expect_bad("--chunker token:size=10,unit=chars --sweep 'size=50%'", "overlap only");
  expect_bad("--chunker token:size=10,unit=chars --plot x.svg", "--plot needs --sweep");
  expect_bad("--chunker token:size=10,unit=chars --sweep size=10 --plot x.txt", "must end in .svg or .png");

  const Fixture& f = fixture();
  const std::string bad_csv = f.dir + "/bad.csv";
  std::ofstream(bad_csv) << "question,references,corpus_id\nq,\"[]\",fruit\n";
  auto r = run_command(chunkwise_binary() + " eval chunking --corpora " + shell_quote(f.corpora) + " --questions " +
                       shell_quote(bad_csv) + " --chunker token:size=10,unit=chars");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad.csv: line 2: references is empty"), std::string::npos) << r.err;
  const std::string missing_corpus = f.dir + "/missing.csv";
  std::ofstream(missing_corpus) << "question,references,corpus_id\nq,\"[{\"\"content\"\": \"\"a\"\", \"\"start_index\"\": 0, "
                                   "\"\"end_index\"\": 1}]\",nothere\n";
  r = run_command(chunkwise_binary() + " eval chunking --corpora " + shell_quote(f.corpora) + " --questions " +
                  shell_quote(missing_corpus) + " --chunker token:size=10,unit=chars");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("corpus 'nothere'"), std::string::npos) << r.err;

  auto unknown = run_command(chunkwise_binary() + " eval nosuch");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("unknown evaluation 'nosuch' (evaluations: chunking"), std::string::npos) << unknown.err;
  auto help = run_command(chunkwise_binary() + " eval --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("chunking"), std::string::npos);
  auto chelp = run_command(chunkwise_binary() + " eval chunking --help");
  EXPECT_EQ(chelp.exit_code, 0);
  EXPECT_NE(chelp.out.find("--sweep"), std::string::npos);
}

}  // namespace
}  // namespace cw
