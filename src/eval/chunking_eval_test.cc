// Chroma's chunking metrics on hand-computed cases, the questions CSV reader (edge cases and one-line
// errors with line numbers), sweeps, and the harness with fake rankers.
#include "eval/chunking_eval.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "text/chunker.h"

namespace cw::eval {
namespace {

Question question(std::string corpus, std::vector<CharRange> refs) {
  Question q;
  q.text = "q";
  q.corpus_id = std::move(corpus);
  for (const CharRange& r : refs) q.references.push_back({"", r});
  return q;
}

std::vector<ChunkSpan> spans(const std::string& corpus, std::vector<CharRange> ranges) {
  std::vector<ChunkSpan> out;
  for (const CharRange& r : ranges) out.push_back({corpus, r.begin, r.end});
  return out;
}

// ---- ranges ----

TEST(ChunkingMetrics, UnionMergesOverlappingAndTouchingRanges) {
  EXPECT_EQ(union_of({{5, 9}, {0, 3}, {3, 4}, {8, 12}, {20, 20}}), (std::vector<CharRange>{{0, 4}, {5, 12}}));
  EXPECT_TRUE(union_of({}).empty());
  const std::vector<CharRange> r = {{0, 10}, {5, 15}};
  EXPECT_EQ(summed_length(r), 20);  // no merging
}

// ---- recall / precision / IoU ----

TEST(ChunkingMetrics, OverlappingRetrievedChunksCountTwiceInPrecision) {
  // ref [10,20); chunks [0,15) and [12,30) cover it; retrieved lengths 15 + 18 = 33.
  const Question q = question("a", {{10, 20}});
  const RetrievalScores s = score_retrieval(q, spans("a", {{0, 15}, {12, 30}}));
  EXPECT_DOUBLE_EQ(s.recall, 1.0);
  EXPECT_DOUBLE_EQ(s.precision, 10.0 / 33.0);
  EXPECT_DOUBLE_EQ(s.iou, 10.0 / 33.0);
}

TEST(ChunkingMetrics, PartialCoverageAddsTheMissedPartToTheIouDenominator) {
  // ref [10,20); chunks [0,15), [5,14) → covered [0,15): 5 of the reference; missed [15,20) = 5.
  const Question q = question("a", {{10, 20}});
  const RetrievalScores s = score_retrieval(q, spans("a", {{0, 15}, {5, 14}}));
  EXPECT_DOUBLE_EQ(s.recall, 0.5);
  EXPECT_DOUBLE_EQ(s.precision, 5.0 / 24.0);
  EXPECT_DOUBLE_EQ(s.iou, 5.0 / 29.0);
}

TEST(ChunkingMetrics, SeveralReferences) {
  // refs [0,10), [20,30); one chunk [5,25): 5 + 5 found, 5 + 5 missed.
  const Question q = question("a", {{0, 10}, {20, 30}});
  const RetrievalScores s = score_retrieval(q, spans("a", {{5, 25}}));
  EXPECT_DOUBLE_EQ(s.recall, 0.5);
  EXPECT_DOUBLE_EQ(s.precision, 0.5);
  EXPECT_DOUBLE_EQ(s.iou, 10.0 / 30.0);
}

TEST(ChunkingMetrics, OneChunkCoveringTwoReferences) {
  const Question q = question("a", {{2, 4}, {6, 9}});
  const RetrievalScores s = score_retrieval(q, spans("a", {{0, 10}}));
  EXPECT_DOUBLE_EQ(s.recall, 1.0);
  EXPECT_DOUBLE_EQ(s.precision, 0.5);
  EXPECT_DOUBLE_EQ(s.iou, 0.5);
}

TEST(ChunkingMetrics, OverlappingReferencesCountTwiceInTheRecallDenominator) {
  // As in Chroma: the numerator is a union (15), the recall denominator a sum (10 + 10).
  const Question q = question("a", {{0, 10}, {5, 15}});
  const RetrievalScores s = score_retrieval(q, spans("a", {{0, 15}}));
  EXPECT_DOUBLE_EQ(s.recall, 0.75);
  EXPECT_DOUBLE_EQ(s.precision, 1.0);
  EXPECT_DOUBLE_EQ(s.iou, 1.0);
}

TEST(ChunkingMetrics, EmptyRetrievalScoresZero) {
  const Question q = question("a", {{0, 10}});
  const RetrievalScores s = score_retrieval(q, {});
  EXPECT_EQ(s.recall, 0.0);
  EXPECT_EQ(s.precision, 0.0);
  EXPECT_EQ(s.iou, 0.0);
}

TEST(ChunkingMetrics, ChunksOfOtherCorporaCountOnlyInDenominators) {
  // ref a:[0,10); retrieved b:[0,10) (same offsets, other corpus) and a:[0,5).
  const Question q = question("a", {{0, 10}});
  std::vector<ChunkSpan> got = spans("b", {{0, 10}});
  got.push_back({"a", 0, 5});
  const RetrievalScores s = score_retrieval(q, got);
  EXPECT_DOUBLE_EQ(s.recall, 0.5);
  EXPECT_DOUBLE_EQ(s.precision, 5.0 / 15.0);
  EXPECT_DOUBLE_EQ(s.iou, 5.0 / 20.0);
}

TEST(ChunkingMetrics, ATouchingChunkFindsNothing) {
  const Question q = question("a", {{10, 20}});
  const RetrievalScores s = score_retrieval(q, spans("a", {{0, 10}, {20, 25}}));
  EXPECT_EQ(s.recall, 0.0);
  EXPECT_EQ(s.precision, 0.0);
  EXPECT_EQ(s.iou, 0.0);
}

// ---- Precision-Omega ----

TEST(ChunkingMetrics, OmegaUsesEveryChunkThatMeetsAReference) {
  const std::vector<ChunkSpan> chunks = spans("a", {{0, 10}, {10, 20}, {20, 30}, {30, 40}});
  EXPECT_DOUBLE_EQ(precision_omega(question("a", {{12, 18}}), chunks), 0.6);
  // Two references in two chunks: (4 + 3) / 20.
  EXPECT_DOUBLE_EQ(precision_omega(question("a", {{2, 6}, {31, 34}}), chunks), 7.0 / 20.0);
  // Chroma counts chunks that only touch a reference: [0,10) and [20,30) join [10,20).
  EXPECT_DOUBLE_EQ(precision_omega(question("a", {{10, 20}}), chunks), 10.0 / 30.0);
  // Chunks of other corpora play no part.
  std::vector<ChunkSpan> mixed = chunks;
  for (const ChunkSpan& c : spans("b", {{0, 40}})) mixed.push_back(c);
  EXPECT_DOUBLE_EQ(precision_omega(question("a", {{12, 18}}), mixed), 0.6);
}

TEST(ChunkingMetrics, OmegaWithOverlappingChunksAndUncoveredReferenceParts) {
  // Overlapping chunks [0,12), [8,20): the union counts once: 6 / 20.
  EXPECT_DOUBLE_EQ(precision_omega(question("a", {{9, 15}}), spans("a", {{0, 12}, {8, 20}})), 6.0 / 20.0);
  // A gap [10,20) in the chunks: the uncovered reference part joins the denominator: 10 / 30.
  EXPECT_DOUBLE_EQ(precision_omega(question("a", {{5, 25}}), spans("a", {{0, 10}, {20, 30}})), 10.0 / 30.0);
  // No chunk meets the reference.
  EXPECT_EQ(precision_omega(question("a", {{50, 60}}), spans("a", {{0, 10}})), 0.0);
  EXPECT_EQ(precision_omega(question("a", {{0, 10}}), {}), 0.0);
}

TEST(ChunkingMetrics, WorkedExampleOfTheDocs) {
  // docs/chunking-metrics.md: corpus a tiled in chunks of 10; references [12,18) and [25,35); retrieved
  // a:[10,20), b:[0,10), a:[30,40).
  const Question q = question("a", {{12, 18}, {25, 35}});
  std::vector<ChunkSpan> got = spans("a", {{10, 20}});
  got.push_back({"b", 0, 10});
  got.push_back({"a", 30, 40});
  const RetrievalScores s = score_retrieval(q, got);
  EXPECT_DOUBLE_EQ(s.recall, 11.0 / 16.0);
  EXPECT_DOUBLE_EQ(s.precision, 11.0 / 30.0);
  EXPECT_DOUBLE_EQ(s.iou, 11.0 / 35.0);
  EXPECT_DOUBLE_EQ(precision_omega(q, spans("a", {{0, 10}, {10, 20}, {20, 30}, {30, 40}})), 16.0 / 30.0);
}

// ---- CSV ----

TEST(ChunkingCsv, QuotedFieldsCrLfBomAndBlankLines) {
  const std::string csv =
      "\xEF\xBB\xBF"
      "a,b,c\r\n"
      "\"x, \"\"y\"\"\",\"two\nlines\",\r\n"
      "\n"
      "plain,,\"\"\n";
  auto r = parse_csv(csv, "t.csv");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].fields, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ((*r)[1].fields, (std::vector<std::string>{"x, \"y\"", "two\nlines", ""}));
  EXPECT_EQ((*r)[1].line, 2);
  EXPECT_EQ((*r)[2].fields, (std::vector<std::string>{"plain", "", ""}));
  EXPECT_EQ((*r)[2].line, 5);
  // No final newline.
  auto last = parse_csv("a,b\n1,2", "t.csv");
  ASSERT_TRUE(last.is_ok());
  EXPECT_EQ(last->back().fields, (std::vector<std::string>{"1", "2"}));
}

TEST(ChunkingCsv, ErrorsNameTheLine) {
  auto unterminated = parse_csv("a,b\n1,\"open\nstill\n", "t.csv");
  ASSERT_FALSE(unterminated.is_ok());
  EXPECT_EQ(unterminated.status().message(), "t.csv: line 2: a quoted field is not closed before the end of the file");
  auto after = parse_csv("a,b\n\"x\"y,2\n", "t.csv");
  ASSERT_FALSE(after.is_ok());
  EXPECT_EQ(after.status().message(), "t.csv: line 2: text after the closing quote of a field");
  auto bare = parse_csv("a,b\n\"multi\nline\",x\"y\n", "t.csv");
  ASSERT_FALSE(bare.is_ok());
  EXPECT_NE(bare.status().message().find("t.csv: line 3: a quote inside an unquoted field"), std::string::npos);
}

constexpr const char* kHeader = "question,references,corpus_id\n";

std::string row(const std::string& q, const std::string& refs_json, const std::string& corpus) {
  std::string quoted = "\"";
  for (char c : refs_json) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "," + quoted + "\"," + corpus + "\n";
}

Status questions_error(const std::string& csv) {
  auto r = parse_questions(csv, "q.csv");
  return r.is_ok() ? Status::ok() : r.status();
}

TEST(ChunkingQuestions, ParsesChromasFormat) {
  const std::string csv = std::string(kHeader) +
                          row("What?", R"([{"content": "ab", "start_index": 0, "end_index": 2}, )"
                                       R"({"content": "d", "start_index": 3, "end_index": 4}])",
                              "c1") +
                          row("\"Why, then?\"", R"([{"content": "", "start_index": 5, "end_index": 5}])", "c2");
  auto r = parse_questions(csv, "q.csv");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].text, "What?");
  EXPECT_EQ((*r)[0].corpus_id, "c1");
  ASSERT_EQ((*r)[0].references.size(), 2u);
  EXPECT_EQ((*r)[0].references[1].range, (CharRange{3, 4}));
  EXPECT_EQ((*r)[0].references[1].content, "d");
  EXPECT_EQ((*r)[1].text, "Why, then?");
  EXPECT_EQ((*r)[1].line, 3);
  // Columns in another order, and an extra column.
  auto reordered = parse_questions(
      "corpus_id,extra,question,references\nc1,zz,Q,\"[{\"\"content\"\": \"\"a\"\", \"\"start_index\"\": 0, "
      "\"\"end_index\"\": 1}]\"\n",
      "q.csv");
  ASSERT_TRUE(reordered.is_ok()) << reordered.status().message();
  EXPECT_EQ((*reordered)[0].corpus_id, "c1");
  EXPECT_EQ((*reordered)[0].text, "Q");
}

TEST(ChunkingQuestions, OneLineErrors) {
  const std::string ok_refs = R"([{"content": "a", "start_index": 0, "end_index": 1}])";
  EXPECT_EQ(questions_error("").message(), "q.csv: empty file (expected a header: question,references,corpus_id)");
  EXPECT_EQ(questions_error("question,corpus_id\nq,c\n").message(),
            "q.csv: line 1: the header has no column 'references' (expected question,references,corpus_id)");
  EXPECT_EQ(questions_error(kHeader).message(), "q.csv: no questions after the header");
  EXPECT_EQ(questions_error(std::string(kHeader) + row("q", ok_refs, "c") + "q,c\n").message(),
            "q.csv: line 3: 2 fields, the header has 3");
  EXPECT_EQ(questions_error(std::string(kHeader) + row("", ok_refs, "c")).message(), "q.csv: line 2: empty question");
  EXPECT_NE(questions_error(std::string(kHeader) + row("q", ok_refs, "../etc")).message().find("line 2: corpus_id '../etc'"),
            std::string::npos);
  EXPECT_NE(questions_error(std::string(kHeader) + row("q", "[{", "c")).message().find(
                "q.csv: line 2: references is not valid JSON"),
            std::string::npos);
  EXPECT_EQ(questions_error(std::string(kHeader) + row("q", "{}", "c")).message(),
            "q.csv: line 2: references must be a JSON array of objects");
  EXPECT_EQ(questions_error(std::string(kHeader) + row("q", "[]", "c")).message(),
            "q.csv: line 2: references is empty (a question needs at least one)");
  EXPECT_EQ(questions_error(std::string(kHeader) + row("q", "[1]", "c")).message(),
            "q.csv: line 2: reference 1: not a JSON object");
  EXPECT_EQ(questions_error(std::string(kHeader) + row("q", R"([{"start_index": 0, "end_index": 1}])", "c")).message(),
            "q.csv: line 2: reference 1: needs a string \"content\"");
  EXPECT_EQ(questions_error(std::string(kHeader) +
                            row("q", R"([{"content": "a", "start_index": -1, "end_index": 1}])", "c"))
                .message(),
            "q.csv: line 2: reference 1: \"start_index\" must be a non-negative integer");
  EXPECT_EQ(questions_error(std::string(kHeader) +
                            row("q", R"([{"content": "a", "start_index": 0, "end_index": 1.5}])", "c"))
                .message(),
            "q.csv: line 2: reference 1: \"end_index\" must be a non-negative integer");
  EXPECT_EQ(questions_error(std::string(kHeader) +
                            row("q", R"([{"content": "a", "start_index": 3, "end_index": 1}])", "c"))
                .message(),
            "q.csv: line 2: reference 1: end_index < start_index");
}

// ---- dataset ----

// Corpus "a": 'é' is two bytes and one code point, so code-point offsets differ from byte offsets.
std::vector<Corpus> corpora() {
  return {{"a", "", "Caf\xC3\xA9 one. Two three. Four five six.", 0}, {"b", "", "Other text here, seven eight.", 0}};
}

TEST(ChunkingDataset, ChecksReferencesAgainstTheCorpus) {
  const std::string good = std::string(kHeader) +
                           row("q1", R"([{"content": "é one", "start_index": 3, "end_index": 8}])", "a") +
                           row("q2", R"([{"content": "seven", "start_index": 17, "end_index": 22}])", "b");
  auto d = make_dataset(corpora(), good, "q.csv");
  ASSERT_TRUE(d.is_ok()) << d.status().message();
  ASSERT_EQ(d->corpora.size(), 2u);
  EXPECT_EQ(d->corpora[0].n_chars, 35);

  auto mismatch = make_dataset(corpora(), std::string(kHeader) +
                                              row("q", R"([{"content": "Caf", "start_index": 1, "end_index": 4}])", "a"),
                               "q.csv");
  ASSERT_FALSE(mismatch.is_ok());
  EXPECT_EQ(mismatch.status().message(),
            "q.csv: line 2: reference 1 [1, 4): its content differs from corpus 'a' at those code points");
  auto past = make_dataset(corpora(), std::string(kHeader) +
                                          row("q", R"([{"content": "x", "start_index": 35, "end_index": 36}])", "a"),
                           "q.csv");
  ASSERT_FALSE(past.is_ok());
  EXPECT_EQ(past.status().message(),
            "q.csv: line 2: reference 1 [35, 36) ends past the end of corpus 'a' (35 code points)");
  auto missing = make_dataset(corpora(), std::string(kHeader) +
                                             row("q", R"([{"content": "x", "start_index": 0, "end_index": 1}])", "zz"),
                              "q.csv");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "q.csv: line 2: no corpus 'zz'");
}

TEST(ChunkingDataset, LoadDatasetNamesMissingFiles) {
  auto r = load_dataset("/nonexistent-dir", "/nonexistent-dir/q.csv");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("/nonexistent-dir/q.csv"), std::string::npos);
}

// ---- harness ----

ChunkingDataset two_corpus_dataset() {
  const std::string csv = std::string(kHeader) +
                          row("q1", R"([{"content": "é one", "start_index": 3, "end_index": 8}])", "a") +
                          row("q2", R"([{"content": "Four", "start_index": 21, "end_index": 25}])", "a") +
                          row("q3", R"([{"content": "seven", "start_index": 17, "end_index": 22}])", "b");
  auto d = make_dataset(corpora(), csv, "q.csv");
  CW_CHECK_MSG(d.is_ok(), d.status().message());
  return std::move(d).value();
}

// Returns, for each question, the chunks of its corpus that overlap a reference (an oracle) and records
// what the factory saw.
RankerFactory oracle(int64_t* n_chunks_seen) {
  return [n_chunks_seen](std::span<const ChunkedCorpus> cs) -> Result<Ranker> {
    std::vector<ChunkSpan> all;
    for (const ChunkedCorpus& c : cs) {
      for (const CorpusChunk& ch : c.chunks) all.push_back({c.corpus->id, ch.char_begin, ch.char_end});
    }
    *n_chunks_seen = static_cast<int64_t>(all.size());
    return Ranker([all](const Question& q) -> Result<std::vector<ChunkSpan>> {
      std::vector<ChunkSpan> out;
      for (const ChunkSpan& s : all) {
        if (s.corpus_id != q.corpus_id) continue;
        for (const Reference& r : q.references) {
          if (s.begin < r.range.end && r.range.begin < s.end) {
            out.push_back(s);
            break;
          }
        }
      }
      return out;
    });
  };
}

TEST(ChunkingHarness, OracleRankerFindsEverything) {
  const ChunkingDataset d = two_corpus_dataset();
  auto chunker = text::make_chunker("token:size=10,unit=chars");
  ASSERT_TRUE(chunker.is_ok()) << chunker.status().message();
  int64_t seen = 0;
  auto r = evaluate_chunking(d, **chunker, "token:size=10,unit=chars", oracle(&seen));
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->n_questions, 3);
  EXPECT_EQ(r->n_chunks, 4 + 3);  // 35 and 29 code points in chunks of at most 10
  EXPECT_EQ(seen, r->n_chunks);
  EXPECT_DOUBLE_EQ(r->overall.recall, 100.0);
  ASSERT_EQ(r->per_corpus.size(), 2u);
  EXPECT_EQ(r->per_corpus[0].corpus_id, "a");
  EXPECT_EQ(r->per_corpus[0].n_questions, 2);
  EXPECT_EQ(r->per_corpus[1].n_questions, 1);
  // The oracle retrieves exactly the highlighted chunks, so precision equals Precision-Omega here (no
  // reference touches a chunk edge), and IoU equals precision (recall is complete).
  EXPECT_NEAR(r->overall.precision, r->overall.precision_omega, 1e-9);
  EXPECT_NEAR(r->overall.iou, r->overall.precision, 1e-9);
  // Per question, by hand: chunks are [0,10) [10,20) [20,30) [30,35) and [0,10) [10,20) [20,29).
  // q1 [3,8) in [0,10): 5/10; q2 [21,25) in [20,30): 4/10; q3 [17,22) in [10,20)+[20,29): 5/19.
  EXPECT_NEAR(r->per_corpus[0].scores.precision, 100.0 * (0.5 + 0.4) / 2, 1e-9);
  EXPECT_NEAR(r->per_corpus[1].scores.precision, 100.0 * 5.0 / 19.0, 1e-9);
  EXPECT_NEAR(r->overall.precision, 100.0 * (0.5 + 0.4 + 5.0 / 19.0) / 3, 1e-9);  // mean over questions
  EXPECT_NEAR(r->mean_retrieved, 4.0 / 3.0, 1e-12);
}

TEST(ChunkingHarness, EmptyRetrievalAndRankerErrors) {
  const ChunkingDataset d = two_corpus_dataset();
  auto chunker = text::make_chunker("token:size=10,unit=chars");
  ASSERT_TRUE(chunker.is_ok());
  RankerFactory nothing = [](std::span<const ChunkedCorpus>) -> Result<Ranker> {
    return Ranker([](const Question&) -> Result<std::vector<ChunkSpan>> { return std::vector<ChunkSpan>{}; });
  };
  auto r = evaluate_chunking(d, **chunker, "s", nothing);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->overall.recall, 0.0);
  EXPECT_EQ(r->overall.iou, 0.0);
  EXPECT_GT(r->overall.precision_omega, 0.0);  // independent of retrieval

  RankerFactory outside = [](std::span<const ChunkedCorpus>) -> Result<Ranker> {
    return Ranker([](const Question&) -> Result<std::vector<ChunkSpan>> { return std::vector<ChunkSpan>{{"a", 0, 99}}; });
  };
  auto bad = evaluate_chunking(d, **chunker, "s", outside);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInternal);

  RankerFactory failing = [](std::span<const ChunkedCorpus>) -> Result<Ranker> {
    return Ranker([](const Question&) -> Result<std::vector<ChunkSpan>> { return io_error("disk gone"); });
  };
  auto err = evaluate_chunking(d, **chunker, "s", failing);
  ASSERT_FALSE(err.is_ok());
  EXPECT_EQ(err.status().message(), "question on line 2: disk gone");
}

// ---- sweeps ----

TEST(ChunkingSweep, CartesianProductWithPercentOverlap) {
  auto s = expand_sweep("recursive:size=100,tokenizer=v.gguf", "size=200,400;overlap=0,50%");
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  ASSERT_EQ(s->size(), 4u);
  EXPECT_EQ((*s)[0].spec, "recursive:overlap=0,size=200,tokenizer=v.gguf");
  EXPECT_EQ((*s)[1].spec, "recursive:overlap=100,size=200,tokenizer=v.gguf");
  EXPECT_EQ((*s)[3].spec, "recursive:overlap=200,size=400,tokenizer=v.gguf");
  EXPECT_EQ((*s)[3].values, (std::vector<std::pair<std::string, std::string>>{{"size", "400"}, {"overlap", "50%"}}));
  auto m = expand_sweep("token:size=50", "method=token,sentence");
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ((*m)[1].spec, "sentence:size=50");
  auto dflt = expand_sweep("token", "overlap=25%");  // the default size 512
  ASSERT_TRUE(dflt.is_ok());
  EXPECT_EQ((*dflt)[0].spec, "token:overlap=128");
}

TEST(ChunkingSweep, Errors) {
  for (const char* bad : {"", "size", "size=", "size=1,,2", "size=1;size=2", "size=50%", "overlap=100%",
                          "overlap=x%"}) {
    auto s = expand_sweep("token", bad);
    EXPECT_FALSE(s.is_ok()) << bad;
    if (!s.is_ok()) EXPECT_EQ(s.status().message().find('\n'), std::string::npos);
  }
}

}  // namespace
}  // namespace cw::eval
