// Answers on real documents (`chunkwise eval ask`, issue 14): every question of a Chroma-format dataset
// (chunking_eval.h) is put to pipelines::ask over one BM25 index of all its corpora, and an answer counts
// when it lies inside one of the question's reference passages — located by position, not by text: the
// answer must be a verbatim span of the chunks the model read (AskResult::answer_span), and that span
// [char_begin, char_end) must fall within a reference range of the question's corpus.
//
// Beside it, a no-model baseline: the best-matching sentence of the top BM25 chunk (the sentence holding
// the most distinct question words; the first on ties: pipelines::best_sentence), scored the same way. Answer lengths are reported
// too, since a whole sentence is more often inside a passage than not, and a short answer is more useful.
//
// Thread-safety: a pure function of its arguments.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "eval/chunking_eval.h"
#include "model/model.h"
#include "pipelines/ask.h"

namespace cw::tok {
class Tokenizer;
}

namespace cw::eval {

struct AnswerEvalOptions {
  std::string chunker;               // "" = pipelines::kDefaultChunker
  pipelines::AskOptions ask;
  int64_t limit = 0;                 // the first N questions (0 = all)
  std::function<void(int64_t, int64_t)> progress;  // (questions done, in all); may be empty
};

struct AnswerRecord {
  int64_t line = 0;  // the question's CSV line
  std::string question, corpus_id;
  std::string answer;            // the model's
  bool answer_in_sources = false;
  bool answer_inside = false;    // inside a reference passage
  std::string baseline;          // the baseline's sentence
  bool baseline_inside = false;
};

struct AnswerEvalResult {
  int64_t questions = 0;
  double model_inside = 0, baseline_inside = 0;        // shares in [0, 1]
  double model_in_sources = 0;                          // share of answers that are spans of the sources
  double model_mean_chars = 0, baseline_mean_chars = 0;  // answer lengths (code points)
  double seconds = 0;
  std::vector<AnswerRecord> records;
};

// Errors: ask's errors other than "nothing matches" (such a question counts as unanswered), Store errors.
Result<AnswerEvalResult> evaluate_answers(const model::Model& model, const tok::Tokenizer& tokenizer,
                                          const ChunkingDataset& data, const AnswerEvalOptions& options);

}  // namespace cw::eval
