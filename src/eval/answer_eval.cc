#include "eval/answer_eval.h"

#include <algorithm>
#include <chrono>

#include "base/utf8.h"
#include "pipelines/index.h"
#include "pipelines/query.h"
#include "retrieval/store.h"
#include "text/chunker.h"

namespace cw::eval {
namespace {

bool inside(const Question& q, int64_t begin, int64_t end) {
  if (end <= begin) return false;
  for (const Reference& r : q.references)
    if (begin >= r.range.begin && end <= r.range.end) return true;
  return false;
}

}  // namespace

Result<AnswerEvalResult> evaluate_answers(const model::Model& m, const tok::Tokenizer& tok, const ChunkingDataset& data,
                                          const AnswerEvalOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string spec = o.chunker.empty() ? pipelines::kDefaultChunker : o.chunker;
  CW_ASSIGN_OR_RETURN(std::unique_ptr<text::Chunker> chunker, text::make_chunker(spec));
  CW_ASSIGN_OR_RETURN(std::unique_ptr<retrieval::Store> store, retrieval::Store::open(":memory:", true));
  for (const Corpus& c : data.corpora) {
    CW_ASSIGN_OR_RETURN(std::vector<text::Chunk> chunks, chunker->chunk(c.id, c.text));
    retrieval::DocumentInput doc;
    doc.path = c.id;
    doc.text = c.text;
    doc.chunker = spec;
    for (const text::Chunk& ch : chunks)
      doc.chunks.push_back({ch.index, ch.byte_begin, ch.byte_end, ch.char_begin, ch.char_end, ch.n_tokens});
    auto added = store->ingest(doc);
    if (!added.is_ok()) return Status(added.status().code(), "indexing corpus '" + c.id + "': " + added.status().message());
  }

  AnswerEvalResult r;
  const int64_t n = o.limit > 0 ? std::min<int64_t>(o.limit, static_cast<int64_t>(data.questions.size()))
                                : static_cast<int64_t>(data.questions.size());
  double model_chars = 0, base_chars = 0;
  int64_t model_in = 0, base_in = 0, in_sources = 0;
  for (int64_t i = 0; i < n; ++i) {
    const Question& q = data.questions[static_cast<size_t>(i)];
    AnswerRecord rec;
    rec.line = q.line;
    rec.question = q.text;
    rec.corpus_id = q.corpus_id;
    // The model.
    auto a = pipelines::ask(m, tok, *store, q.text, o.ask);
    if (a.is_ok()) {
      rec.answer = a->answer;
      rec.answer_in_sources = a->answer_found;
      rec.answer_inside = a->answer_found && a->answer_span.doc == q.corpus_id &&
                          inside(q, a->answer_span.char_begin, a->answer_span.char_end);
      model_chars += static_cast<double>(utf8_count_codepoints(a->answer));
    } else if (a.status().code() != StatusCode::kNotFound) {
      return Status(a.status().code(), "question at line " + std::to_string(q.line) + ": " + a.status().message());
    }
    // The baseline: the best sentence of the top BM25 chunk.
    pipelines::QueryOptions qo;
    qo.k = 1;
    auto hits = pipelines::query(*store, q.text, qo);
    if (!hits.is_ok()) return hits.status();
    if (!hits->empty()) {
      const retrieval::ChunkRow& row = hits->front().row;
      const auto [b, e] = pipelines::best_sentence(row.text, q.text);
      rec.baseline = row.text.substr(b, e - b);
      const auto [cb, ce] = pipelines::char_span(row.char_begin, row.text, b, e);
      rec.baseline_inside = row.path == q.corpus_id && inside(q, cb, ce);
      base_chars += static_cast<double>(ce - cb);
    }
    model_in += rec.answer_inside ? 1 : 0;
    base_in += rec.baseline_inside ? 1 : 0;
    in_sources += rec.answer_in_sources ? 1 : 0;
    r.records.push_back(std::move(rec));
    if (o.progress) o.progress(i + 1, n);
  }
  r.questions = n;
  if (n > 0) {
    const auto dn = static_cast<double>(n);
    r.model_inside = static_cast<double>(model_in) / dn;
    r.baseline_inside = static_cast<double>(base_in) / dn;
    r.model_in_sources = static_cast<double>(in_sources) / dn;
    r.model_mean_chars = model_chars / dn;
    r.baseline_mean_chars = base_chars / dn;
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace cw::eval
