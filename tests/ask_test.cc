// `chunkwise ask` (issue 14): pipelines::ask on a generated tiny llama (random weights: what it answers is
// not checked, where its sources and the answer's span come from is), its errors, the CLI's one-line
// errors, and the shipped model answering the demo document (skipped when the model is absent).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/json_value.h"
#include "eval/answer_eval.h"
#include "eval/haystack.h"
#include "model/make_model.h"
#include "model/model.h"
#include "pipelines/ask.h"
#include "retrieval/store.h"
#include "support/spm_vocab.h"
#include "support/testing.h"
#include "text/chunker.h"
#include "tokenizer/tokenizer.h"

#ifndef CW_SOURCE_DIR
#define CW_SOURCE_DIR "."
#endif

namespace cw {
namespace {

using testing::chunkwise_binary;
using testing::run_command;
using testing::shell_quote;
namespace fs = std::filesystem;

const std::string kShipped = std::string(CW_SOURCE_DIR) + "/models/chunkwise-tiny-q8_0.gguf";

using Loaded = testing::LoadedModel;
Loaded load(const std::string& path) { return testing::load_model_and_tokenizer(path); }

const std::string& tiny() { return testing::tiny_llama_f32("ask-tiny-f32.gguf", 5); }

// Two documents chunked by sentences into an in-memory store.
std::unique_ptr<retrieval::Store> store_of(const std::vector<std::pair<std::string, std::string>>& docs) {
  auto s = retrieval::Store::open(":memory:", true);
  CW_CHECK_MSG(s.is_ok(), s.status().to_string());
  auto chunker = text::make_chunker("recursive:size=120,unit=chars");
  CW_CHECK_MSG(chunker.is_ok(), chunker.status().to_string());
  for (const auto& [path, text] : docs) {
    auto chunks = (*chunker)->chunk(path, text);
    CW_CHECK_MSG(chunks.is_ok(), chunks.status().to_string());
    retrieval::DocumentInput d;
    d.path = path;
    d.text = text;
    d.chunker = "recursive:size=120,unit=chars";
    for (const text::Chunk& c : *chunks) d.chunks.push_back({c.index, c.byte_begin, c.byte_end, c.char_begin, c.char_end, c.n_tokens});
    CW_CHECK_MSG((*s)->ingest(d).is_ok(), "ingest");
  }
  return std::move(s).value();
}

const std::string kDocA =
    "The harbour is quiet in winter. The code for the radio room is 7394. Boats stay in the shed.\n\n"
    "The lamp turns every night. The keeper winds the clockwork every four hours until dawn.";
const std::string kDocB =
    "The village has a bakery and a school. The number for the harbour master is 4620.\n\n"
    "Children walk along the causeway at low tide and count the birds on the cliffs.";

TEST(QaPrompt, IsTheFormatTheModelWasTrainedOn) {
  eval::Sample s;
  s.text = "Some text. The pass key is 123.";
  s.question = "What is the pass key?";
  s.answer = "123";
  EXPECT_EQ(pipelines::qa_prompt(s.text, s.question), eval::format_prompt(s));
}

TEST(Ask, CitesItsSourcesInDocumentOrderWithinTheWindow) {
  Loaded l = load(tiny());
  auto store = store_of({{"b.txt", kDocB}, {"a.txt", kDocA}});
  pipelines::AskOptions o;
  o.n_ctx = 400;  // a small window
  o.max_answer_tokens = 6;
  auto r = pipelines::ask(*l.model, *l.tok, *store, "What is the code for the radio room?", o);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_FALSE(r->sources.empty());
  EXPECT_LE(r->prompt_tokens + o.max_answer_tokens, 400);
  EXPECT_GT(r->candidates, 0);
  EXPECT_LE(static_cast<int64_t>(r->sources.size()), r->candidates);
  // The best hit (rank 1) is the radio room's chunk, and it made it into the prompt.
  bool rank1 = false;
  for (const auto& s : r->sources) {
    if (s.rank == 1) {
      rank1 = true;
      EXPECT_EQ(s.doc, "a.txt");
      EXPECT_NE(kDocA.substr(s.byte_begin, s.byte_end - s.byte_begin).find("radio room"), std::string::npos);
    }
    EXPECT_GT(s.tokens, 0);
    EXPECT_GT(s.score, 0.0);
  }
  EXPECT_TRUE(rank1);
  for (size_t i = 1; i < r->sources.size(); ++i) {
    const auto &p = r->sources[i - 1], &q = r->sources[i];
    EXPECT_TRUE(p.doc < q.doc || (p.doc == q.doc && p.byte_begin < q.byte_begin)) << i;
  }
  EXPECT_TRUE(r->stop == "newline" || r->stop == "eos" || r->stop == "limit") << r->stop;
  // The evidence: the best sentence of the top chunk, at its exact offsets.
  EXPECT_EQ(r->evidence_text, "The code for the radio room is 7394.");
  EXPECT_EQ(r->evidence.doc, "a.txt");
  EXPECT_EQ(kDocA.substr(r->evidence.byte_begin, r->evidence.byte_end - r->evidence.byte_begin), r->evidence_text);
  EXPECT_EQ(r->evidence.char_begin, r->evidence.byte_begin);  // ASCII
  EXPECT_LE(r->answer_tokens, o.max_answer_tokens);
  if (r->answer_found) {
    const std::string& doc = r->answer_span.doc == "a.txt" ? kDocA : kDocB;
    EXPECT_EQ(doc.substr(r->answer_span.byte_begin, r->answer_span.byte_end - r->answer_span.byte_begin), r->answer);
    EXPECT_EQ(r->answer_span.char_end - r->answer_span.char_begin, static_cast<int64_t>(r->answer.size()));  // ASCII
  }
}

// A random-weight tiny llama with the shipped model's byte-level BPE vocabulary (its tokens decode to exactly
// the text they were encoded from, which the test vocabulary's byte fallback for U+2581 does not).
const std::string& tiny_bpe() {
  static const std::string path = [] {
    const std::string out = testing::temp_dir() + "/ask-tiny-bpe-f32.gguf";
    model::MakeModelOptions o;
    o.type = "f32";
    o.seed = 7;
    o.n_threads = 1;
    auto r = model::make_model(o, kShipped, out);
    CW_CHECK_MSG(r.is_ok(), r.status().to_string());
    return out;
  }();
  return path;
}

// Quoting (the default): whatever a random-weight model prefers, its answer is a verbatim span of the
// chunks it read; free generation (quote = false) gives no such guarantee.
TEST(Ask, QuotedAnswersAreSpansOfTheSources) {
  if (!std::ifstream(kShipped).good()) GTEST_SKIP() << kShipped << " absent (its vocabulary is used)";
  Loaded l = load(tiny_bpe());
  auto store = store_of({{"b.txt", kDocB}, {"a.txt", kDocA}});
  for (const char* q : {"What is the code for the radio room?", "Who counts the birds on the cliffs?",
                        "When does the keeper wind the clockwork?"}) {
    pipelines::AskOptions o;
    o.n_ctx = 400;
    o.max_answer_tokens = 8;
    ASSERT_TRUE(o.quote);
    auto r = pipelines::ask(*l.model, *l.tok, *store, q, o);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    ASSERT_FALSE(r->answer.empty()) << q;
    EXPECT_TRUE(r->answer_found) << q << " -> " << r->answer;
    const std::string& doc = r->answer_span.doc == "a.txt" ? kDocA : kDocB;
    EXPECT_EQ(doc.substr(r->answer_span.byte_begin, r->answer_span.byte_end - r->answer_span.byte_begin), r->answer);
    EXPECT_TRUE(r->stop == "newline" || r->stop == "eos" || r->stop == "limit" || r->stop == "end of source") << r->stop;
  }
}

// greedy_answer's quoting on its own: every token continues a run of copy_from.
TEST(GreedyAnswer, CopiesOnlyRunsOfItsSource) {
  if (!std::ifstream(kShipped).good()) GTEST_SKIP() << kShipped << " absent (its vocabulary is used)";
  Loaded l = load(tiny_bpe());
  const std::string source = "The keeper winds the clockwork every four hours until dawn.";
  const std::vector<int32_t> src = l.tok->encode(source, false, false);
  const std::vector<int32_t> prompt = l.tok->encode(pipelines::qa_prompt(source, "What does the keeper wind?"), true, false);
  pipelines::GreedyOptions o;
  o.max_tokens = 12;
  o.copy_from = src;
  auto g = pipelines::greedy_answer(*l.model, *l.tok, nullptr, prompt, o);
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  ASSERT_GT(g->tokens, 0);
  const std::string generated = g->generated.substr(0, g->generated.find('\n'));
  EXPECT_NE(source.find(generated), std::string::npos) << "'" << generated << "'";
  // Free generation from the same prompt: the model's own argmax path (a random model rarely quotes).
  o.copy_from = {};
  auto free = pipelines::greedy_answer(*l.model, *l.tok, nullptr, prompt, o);
  ASSERT_TRUE(free.is_ok());
  EXPECT_GT(free->tokens, 0);
}

TEST(Ask, RefusesWithOneLineErrors) {
  Loaded l = load(tiny());
  auto store = store_of({{"a.txt", kDocA}});
  pipelines::AskOptions o;
  auto expect = [&](std::string_view q, const pipelines::AskOptions& opt, const retrieval::Store& st, StatusCode code,
                    const std::string& needle) {
    auto r = pipelines::ask(*l.model, *l.tok, st, q, opt);
    ASSERT_FALSE(r.is_ok()) << q;
    EXPECT_EQ(r.status().code(), code) << r.status().to_string();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
  };
  expect("   ", o, *store, StatusCode::kInvalidArgument, "empty");
  expect("two\nlines", o, *store, StatusCode::kInvalidArgument, "one line");
  expect("zebra quokka", o, *store, StatusCode::kNotFound, "no chunk");
  pipelines::AskOptions small = o;
  small.n_ctx = 64;
  expect(std::string(400, 'x') + " radio", small, *store, StatusCode::kInvalidArgument, "window");
  auto empty = store_of({});
  expect("radio", o, *empty, StatusCode::kInvalidArgument, "no chunks");
  pipelines::AskOptions bad = o;
  bad.kv_policy = "nonsense_policy";
  expect("radio", bad, *store, StatusCode::kInvalidArgument, "nonsense_policy");
}

TEST(BestSentence, PicksTheSentenceWithMostQuestionWords) {
  const std::string t = "The lamp turns. The code for the radio room is 7394. The radio is old.";
  auto [b, e] = pipelines::best_sentence(t, "What is the code for the radio room?");
  EXPECT_EQ(t.substr(b, e - b), "The code for the radio room is 7394.");
  auto [b2, e2] = pipelines::best_sentence("no boundary here", "boundary");
  EXPECT_EQ(b2, 0u);
  EXPECT_EQ(e2, 16u);
  const std::string para = "First part\n\nSecond part about cats";
  auto [b3, e3] = pipelines::best_sentence(para, "cats?");
  EXPECT_EQ(para.substr(b3, e3 - b3), "Second part about cats");
}

TEST(AnswerEval, ScoresTheBaselineByPosition) {
  Loaded l = load(tiny());
  const std::string csv =
      "question,references,corpus_id\n"
      "What is the code for the radio room?,\"[{\"\"content\"\": \"\"The code for the radio room is 7394.\"\", "
      "\"\"start_index\"\": 32, \"\"end_index\"\": 68}]\",a\n"
      "Who walks along the causeway?,\"[{\"\"content\"\": \"\"The harbour is quiet in winter.\"\", "
      "\"\"start_index\"\": 0, \"\"end_index\"\": 31}]\",a\n";
  ASSERT_EQ(kDocA.substr(32, 36), "The code for the radio room is 7394.");
  auto data = eval::make_dataset({{"a", "a", kDocA, static_cast<int64_t>(kDocA.size())},
                                  {"b", "b", kDocB, static_cast<int64_t>(kDocB.size())}},
                                 csv, "q.csv");
  ASSERT_TRUE(data.is_ok()) << data.status().to_string();
  eval::AnswerEvalOptions o;
  o.chunker = "recursive:size=120,unit=chars";
  o.ask.max_answer_tokens = 4;
  auto r = eval::evaluate_answers(*l.model, *l.tok, *data, o);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_EQ(r->questions, 2);
  ASSERT_EQ(r->records.size(), 2u);
  EXPECT_EQ(r->records[0].baseline, "The code for the radio room is 7394.");
  EXPECT_TRUE(r->records[0].baseline_inside);
  EXPECT_FALSE(r->records[1].baseline_inside);  // its best sentence is in b, not in the reference
  EXPECT_DOUBLE_EQ(r->baseline_inside, 0.5);
  EXPECT_NEAR(r->baseline_mean_chars, (36.0 + static_cast<double>(r->records[1].baseline.size())) / 2.0, 1e-9);
}

std::string fresh_dir(const std::string& name) {
  const std::string d = testing::temp_dir() + "/" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void expect_one_line_error(const testing::CommandResult& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find("chunkwise ask: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
}

TEST(AskCli, OneLineErrors) {
  const std::string d = fresh_dir("ask_cli");
  const std::string bin = shell_quote(chunkwise_binary());
  const std::string m = shell_quote(tiny());
  std::ofstream(d + "/empty.txt").flush();
  std::ofstream(d + "/bin.dat", std::ios::binary) << std::string("\x7f" "ELF\0\0\0binary", 13);
  std::ofstream(d + "/a.txt") << kDocA;
  expect_one_line_error(run_command(bin + " ask -m /nonexistent/model.gguf --doc " + shell_quote(d + "/a.txt") + " radio"),
                        "/nonexistent/model.gguf");
  expect_one_line_error(run_command(bin + " ask -q -m " + m + " --doc " + shell_quote(d + "/empty.txt") + " radio"),
                        "no readable text");
  expect_one_line_error(run_command(bin + " ask -q -m " + m + " --doc " + shell_quote(d + "/bin.dat") + " radio"),
                        "no readable text");
  expect_one_line_error(run_command(bin + " ask -m " + m + " --doc " + shell_quote(d + "/a.txt")), "no question");
  expect_one_line_error(run_command(bin + " ask -m " + m + " --doc " + shell_quote(d + "/a.txt") + " --ctx 64 " +
                                    shell_quote(std::string(300, 'y') + " radio")),
                        "window");
  expect_one_line_error(run_command(bin + " ask -m " + m + " --doc " + shell_quote(d + "/a.txt") + " --kv-policy bogus radio"),
                        "bogus");
  const auto help = run_command(bin + " ask --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--doc"), std::string::npos);
}

TEST(AskCli, JsonHasAnswerAndSources) {
  const std::string d = fresh_dir("ask_cli_json");
  std::ofstream(d + "/a.txt") << kDocA;
  std::ofstream(d + "/b.txt") << kDocB;
  const auto r = run_command(shell_quote(chunkwise_binary()) + " ask --json -m " + shell_quote(tiny()) + " --doc " +
                             shell_quote(d) + " --max-answer-tokens 4 'What is the number for the harbour master?'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto free = run_command(shell_quote(chunkwise_binary()) + " ask --json --free-answer -m " + shell_quote(tiny()) +
                                " --doc " + shell_quote(d) + " --max-answer-tokens 4 'What is the number for the harbour master?'");
  EXPECT_EQ(free.exit_code, 0) << free.err;
  auto j = JsonValue::parse(r.out);
  ASSERT_TRUE(j.is_ok()) << r.out;
  ASSERT_TRUE(j->is_object());
  EXPECT_TRUE(j->get("answer") != nullptr && j->get("answer")->is_string());
  const JsonValue* src = j->get("sources");
  ASSERT_TRUE(src != nullptr && src->is_array());
  ASSERT_FALSE(src->items().empty());
  for (const JsonValue& s : src->items()) {
    for (const char* k : {"doc", "char_begin", "char_end", "score", "rank"}) EXPECT_NE(s.get(k), nullptr) << k;
  }
  const JsonValue* ev = j->get("evidence");
  ASSERT_TRUE(ev != nullptr && ev->is_object());
  EXPECT_EQ(ev->get("text")->as_string(), "The number for the harbour master is 4620.");
}

// The README's first command ends with this: the shipped model answers the demo document's question.
TEST(AskCli, ShippedModelAnswersTheDemoQuestion) {
  if (!std::ifstream(kShipped).good()) GTEST_SKIP() << kShipped << " absent";
  const auto r = run_command(shell_quote(chunkwise_binary()) + " ask --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = JsonValue::parse(r.out);
  ASSERT_TRUE(j.is_ok()) << r.out;
  ASSERT_NE(j->get("answer"), nullptr);
  EXPECT_EQ(j->get("answer")->as_string(), "7394") << r.out;  // the pass key of the radio room
  ASSERT_NE(j->get("answer_found"), nullptr);
  EXPECT_TRUE(j->get("answer_found")->as_bool());
}

}  // namespace
}  // namespace cw
