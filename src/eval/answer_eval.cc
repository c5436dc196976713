#include "eval/answer_eval.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <set>

#include "base/utf8.h"
#include "pipelines/index.h"
#include "pipelines/query.h"
#include "retrieval/store.h"
#include "text/chunker.h"

namespace cw::eval {
namespace {

const std::set<std::string>& stop_words() {
  static const std::set<std::string> s = {"the", "and", "for", "are", "was", "were", "what", "which", "who", "whom",
                                          "how", "why", "when", "where", "did", "does", "has", "have", "had", "with",
                                          "that", "this", "these", "those", "from", "into", "about", "its", "their",
                                          "his", "her", "they", "them", "there", "been", "being", "can", "could",
                                          "would", "should", "will", "any", "some", "according", "mentioned"};
  return s;
}

std::set<std::string> words_of(std::string_view text) {
  std::set<std::string> out;
  std::string w;
  auto flush = [&] {
    if (w.size() >= 3 && stop_words().count(w) == 0) out.insert(w);
    w.clear();
  };
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 && u < 128) {
      w += static_cast<char>(std::tolower(u));
    } else {
      flush();
    }
  }
  flush();
  return out;
}

bool inside(const Question& q, int64_t begin, int64_t end) {
  if (end <= begin) return false;
  for (const Reference& r : q.references)
    if (begin >= r.range.begin && end <= r.range.end) return true;
  return false;
}

}  // namespace

std::pair<size_t, size_t> best_sentence(std::string_view text, std::string_view question) {
  const std::set<std::string> qw = words_of(question);
  size_t best_b = 0, best_e = text.size();
  int best = -1;
  size_t b = 0;
  while (b < text.size()) {
    while (b < text.size() && std::isspace(static_cast<unsigned char>(text[b])) != 0) ++b;
    if (b >= text.size()) break;
    size_t e = b;
    // A sentence ends after . ! ? followed by white space, or at a blank line, or at the end.
    while (e < text.size()) {
      const char c = text[e];
      if ((c == '.' || c == '!' || c == '?') && (e + 1 == text.size() || std::isspace(static_cast<unsigned char>(text[e + 1])) != 0)) {
        ++e;
        break;
      }
      if (c == '\n' && e + 1 < text.size() && text[e + 1] == '\n') break;
      ++e;
    }
    size_t end = e;
    while (end > b && std::isspace(static_cast<unsigned char>(text[end - 1])) != 0) --end;
    int score = 0;
    for (const std::string& w : words_of(text.substr(b, end - b))) score += static_cast<int>(qw.count(w));
    if (score > best) {
      best = score;
      best_b = b;
      best_e = end;
    }
    b = e;
  }
  return {best_b, best_e};
}

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
      const auto [b, e] = best_sentence(row.text, q.text);
      rec.baseline = row.text.substr(b, e - b);
      const int64_t cb = row.char_begin + static_cast<int64_t>(utf8_count_codepoints(std::string_view(row.text).substr(0, b)));
      const int64_t ce = cb + static_cast<int64_t>(utf8_count_codepoints(rec.baseline));
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
