// Chroma's chunking evaluation (Smith & Troynikov, "Evaluating Chunking Strategies for Retrieval", 2024),
// built into the product: questions with reference excerpts (code-point ranges of a corpus), a chunker, a
// retriever; recall, precision, Precision-Omega and IoU over character ranges, computed exactly as Chroma's
// evaluation code computes them. The definitions, with a worked example and the edge cases, are in
// docs/chunking-metrics.md; in short, per question q with references R (ranges of q's corpus), retrieved
// chunks T (the top k, from every corpus) and C = the union of those chunks of T that lie in q's corpus:
//   recall    = |U(R) ∩ C| / Σ_{r∈R} |r|
//   precision = |U(R) ∩ C| / Σ_{t∈T} |t|                       (retrieved lengths summed, overlaps twice)
//   IoU       = |U(R) ∩ C| / (Σ_{t∈T} |t| + Σ_{r∈R} |r \ C|)
//   Ω         = |U(R) ∩ A| / |H ∪ (U(R) \ H)|, A = all chunks of q's corpus, H = the union of those chunks of
//               A that overlap or touch a reference (retrieval plays no part: the best precision any
//               retrieval of whole chunks could reach)
// each 0 when its denominator is 0 (or, for Ω, when no chunk meets a reference); scores are averaged over
// questions (overall: over all questions; per corpus: over the corpus's questions) and reported in percent.
//
// Input format (Chroma's): a CSV file with a header naming the columns question, references, corpus_id (any
// order; other columns ignored); `references` is a JSON array of {"content", "start_index", "end_index"};
// indices are code-point offsets [start, end) into DIR/<corpus_id>.md (or DIR/<corpus_id> when the id already
// names a file), and `content` must equal that slice. All input errors are one-line invalid_argument /
// not_found Statuses naming the file and the line.
//
// Thread-safety: functions are reentrant; evaluate_chunking calls the ranker from the calling thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace cw::text {
class Chunker;
}

namespace cw::eval {

// ---- ranges and metrics (code points, half-open [begin, end)) ----

struct CharRange {
  int64_t begin = 0, end = 0;
  int64_t length() const { return end - begin; }
  friend bool operator==(const CharRange&, const CharRange&) = default;
};

// A chunk located in a corpus.
struct ChunkSpan {
  std::string corpus_id;
  int64_t begin = 0, end = 0;  // code points
};

// Sorted, merged union (ranges that overlap or touch become one; empty ranges vanish unless they lie
// inside another).
std::vector<CharRange> union_of(std::vector<CharRange> ranges);
// Total length of a list of ranges (no merging: overlaps count twice).
int64_t summed_length(std::span<const CharRange> ranges);

struct Reference {
  std::string content;
  CharRange range;
};

struct Question {
  std::string text;
  std::string corpus_id;
  std::vector<Reference> references;
  int64_t line = 0;  // 1-based line of the CSV where the question's record starts
};

// One question's retrieval scores, fractions in [0, 1].
struct RetrievalScores {
  double recall = 0, precision = 0, iou = 0;
};

// Scores of the retrieved chunks (in rank order; chunks of other corpora count in the precision and IoU
// denominators only).
RetrievalScores score_retrieval(const Question& q, std::span<const ChunkSpan> retrieved);
// Precision-Omega of a chunking: `all_chunks` are every chunk of the chunking (any corpus).
double precision_omega(const Question& q, std::span<const ChunkSpan> all_chunks);

// ---- input ----

// RFC 4180 CSV: records of comma-separated fields ending in LF or CRLF; a field in double quotes may hold
// commas, line breaks and "" (one quote). A leading UTF-8 BOM is skipped. Errors name `name` and the line:
// an unterminated quoted field, text after a closing quote, a bare quote inside an unquoted field.
struct CsvRecord {
  std::vector<std::string> fields;
  int64_t line = 0;  // 1-based line where the record starts
};
Result<std::vector<CsvRecord>> parse_csv(std::string_view text, const std::string& name);

// The questions of a CSV text (see the header comment). Checks: the header has the three columns, every
// record has the header's field count, question and corpus_id are non-empty (corpus_id without '/', '\',
// or a leading '.'), references is a JSON array of objects with a string content and integer indices
// 0 <= start_index <= end_index. Offsets are checked against the corpora by load_dataset.
Result<std::vector<Question>> parse_questions(std::string_view csv, const std::string& name);

struct Corpus {
  std::string id;
  std::string path;
  std::string text;             // UTF-8
  int64_t n_chars = 0;          // code points
};

struct ChunkingDataset {
  std::vector<Corpus> corpora;       // the corpora the questions name, in order of first mention
  std::vector<Question> questions;   // in file order
};

// Reads the questions CSV and the corpora it names from `corpora_dir`; checks every reference lies inside
// its corpus and that its content equals the corpus's code points [start_index, end_index).
Result<ChunkingDataset> load_dataset(const std::string& corpora_dir, const std::string& questions_csv);
// The same from texts already in memory (tests): corpora are matched by id.
Result<ChunkingDataset> make_dataset(std::vector<Corpus> corpora, std::string_view questions_csv,
                                     const std::string& name);

// ---- harness ----

// A chunk of a chunked corpus, as the ranker sees it.
struct CorpusChunk {
  int64_t index = 0;
  int64_t byte_begin = 0, byte_end = 0;
  int64_t char_begin = 0, char_end = 0;
  int64_t n_tokens = 0;
};
struct ChunkedCorpus {
  const Corpus* corpus = nullptr;
  std::string chunker_spec;
  std::vector<CorpusChunk> chunks;
};

// Answers one question with the chunks it retrieves (after any selection), best first.
using Ranker = std::function<Result<std::vector<ChunkSpan>>(const Question& q)>;
// Builds a ranker over the chunks of every corpus (one index over all of them, as Chroma's one collection).
using RankerFactory = std::function<Result<Ranker>(std::span<const ChunkedCorpus> corpora)>;

// Scores in percent.
struct ChunkingScores {
  double recall = 0, precision = 0, precision_omega = 0, iou = 0;
};

struct CorpusResult {
  std::string corpus_id;
  int64_t n_questions = 0;
  int64_t n_chunks = 0;
  ChunkingScores scores;
};

struct ChunkingResult {
  std::string chunker_spec;
  int64_t n_questions = 0;
  int64_t n_chunks = 0;
  double mean_chunk_chars = 0;       // over all chunks
  double mean_chunk_tokens = 0;      // in the chunker's unit
  double mean_retrieved = 0;         // chunks per question after selection
  ChunkingScores overall;            // averaged over all questions
  std::vector<CorpusResult> per_corpus;  // in dataset order
};

// Chunks every corpus with `chunker`, builds a ranker with `make_ranker`, answers every question and
// scores it. `spec` is recorded in the result. Errors: the chunker's, the ranker's, or a retrieved chunk
// outside its corpus (internal_error).
Result<ChunkingResult> evaluate_chunking(const ChunkingDataset& data, const text::Chunker& chunker,
                                         const std::string& spec, const RankerFactory& make_ranker);

// ---- sweeps ----

// "key=v1,v2,...;key2=..." → the cartesian product of settings (the first key varies slowest), each applied
// to `base_spec` (a chunker spec: keys replaced or added). A value ending in '%' is allowed for overlap only
// and means that percentage of the setting's size (rounded down). Keys are chunker spec keys (size, overlap,
// or a method's own), plus "method" which replaces the method. Errors: malformed text, a key given twice,
// an empty value list, '%' elsewhere than overlap, more than 1000 settings.
struct SweepSetting {
  std::string spec;                                        // the full chunker spec of this setting
  std::vector<std::pair<std::string, std::string>> values;  // key → value as written (e.g. overlap → 50%)
};
Result<std::vector<SweepSetting>> expand_sweep(std::string_view base_spec, std::string_view sweep);

}  // namespace cw::eval
