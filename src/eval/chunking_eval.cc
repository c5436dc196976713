// Chroma's chunking metrics over code-point ranges, the questions CSV reader and the evaluation harness.
// The formulas are derived from what Chroma's evaluation code computes (docs/chunking-metrics.md shows the
// derivation and the edge cases); this is our own implementation of them.
#include "eval/chunking_eval.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>

#include "base/file_io.h"
#include "base/json_value.h"
#include "base/utf8.h"
#include "text/chunker.h"

namespace cw::eval {
namespace {

// Length of the intersection of two sorted, merged range lists.
int64_t intersection_length(std::span<const CharRange> a, std::span<const CharRange> b) {
  int64_t total = 0;
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const int64_t lo = std::max(a[i].begin, b[j].begin);
    const int64_t hi = std::min(a[i].end, b[j].end);
    if (hi > lo) total += hi - lo;
    if (a[i].end < b[j].end) {
      ++i;
    } else {
      ++j;
    }
  }
  return total;
}

double ratio(int64_t num, int64_t den) {
  return den > 0 ? static_cast<double>(num) / static_cast<double>(den) : 0.0;
}

std::vector<CharRange> reference_ranges(const Question& q) {
  std::vector<CharRange> out;
  out.reserve(q.references.size());
  for (const Reference& r : q.references) out.push_back(r.range);
  return out;
}

std::string at_line(const std::string& name, int64_t line) { return name + ": line " + std::to_string(line) + ": "; }

// A JSON number that is a non-negative integer below 2^53.
bool as_index(const JsonValue* v, int64_t* out) {
  if (v == nullptr || !v->is_number()) return false;
  const double x = v->as_number();
  if (!std::isfinite(x) || x < 0 || x > 9007199254740992.0 || std::floor(x) != x) return false;
  *out = static_cast<int64_t>(x);
  return true;
}

Status check_corpus_id(const std::string& id, const std::string& where) {
  if (id.empty()) return invalid_argument(where + "empty corpus_id");
  if (id.find('/') != std::string::npos || id.find('\\') != std::string::npos || id.front() == '.' ||
      id.find('\0') != std::string::npos) {
    return invalid_argument(where + "corpus_id '" + id + "' must be a plain file name (no '/', '\\', leading '.')");
  }
  return Status::ok();
}

// Byte offset of every code point of `text` (and of its end): [n_chars + 1].
std::vector<int64_t> codepoint_offsets(std::string_view text) {
  std::vector<int64_t> offs;
  offs.reserve(text.size() + 1);
  size_t i = 0;
  while (i < text.size()) {
    offs.push_back(static_cast<int64_t>(i));
    (void)utf8_decode(text, i);
  }
  offs.push_back(static_cast<int64_t>(text.size()));
  return offs;
}

// Checks the questions' references against the corpora (inside, content equal to the slice).
Status check_references(const std::vector<Corpus>& corpora, const std::vector<Question>& questions,
                        const std::string& name) {
  std::map<std::string, size_t> by_id;
  for (size_t i = 0; i < corpora.size(); ++i) by_id.emplace(corpora[i].id, i);
  std::vector<std::vector<int64_t>> offsets(corpora.size());
  for (const Question& q : questions) {
    auto it = by_id.find(q.corpus_id);
    if (it == by_id.end()) {
      return not_found(at_line(name, q.line) + "no corpus '" + q.corpus_id + "'");
    }
    const Corpus& c = corpora[it->second];
    std::vector<int64_t>& offs = offsets[it->second];
    if (offs.empty()) offs = codepoint_offsets(c.text);
    for (size_t k = 0; k < q.references.size(); ++k) {
      const Reference& r = q.references[k];
      const std::string which = "reference " + std::to_string(k + 1) + " [" + std::to_string(r.range.begin) + ", " +
                                std::to_string(r.range.end) + ")";
      if (r.range.end > c.n_chars) {
        return invalid_argument(at_line(name, q.line) + which + " ends past the end of corpus '" + c.id + "' (" +
                                std::to_string(c.n_chars) + " code points)");
      }
      const int64_t b = offs[static_cast<size_t>(r.range.begin)], e = offs[static_cast<size_t>(r.range.end)];
      if (std::string_view(c.text).substr(static_cast<size_t>(b), static_cast<size_t>(e - b)) != r.content) {
        return invalid_argument(at_line(name, q.line) + which + ": its content differs from corpus '" + c.id +
                                "' at those code points");
      }
    }
  }
  return Status::ok();
}

}  // namespace

// ---- ranges and metrics ----

std::vector<CharRange> union_of(std::vector<CharRange> ranges) {
  std::sort(ranges.begin(), ranges.end(), [](const CharRange& a, const CharRange& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::vector<CharRange> out;
  for (const CharRange& r : ranges) {
    if (r.end <= r.begin) continue;
    if (!out.empty() && r.begin <= out.back().end) {
      out.back().end = std::max(out.back().end, r.end);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

int64_t summed_length(std::span<const CharRange> ranges) {
  int64_t total = 0;
  for (const CharRange& r : ranges) total += std::max<int64_t>(0, r.length());
  return total;
}

RetrievalScores score_retrieval(const Question& q, std::span<const ChunkSpan> retrieved) {
  const std::vector<CharRange> refs = reference_ranges(q);
  const std::vector<CharRange> refs_union = union_of(refs);
  std::vector<CharRange> all, same;
  for (const ChunkSpan& c : retrieved) {
    all.push_back({c.begin, c.end});
    if (c.corpus_id == q.corpus_id) same.push_back({c.begin, c.end});
  }
  const std::vector<CharRange> covered = union_of(std::move(same));
  const int64_t hit = intersection_length(refs_union, covered);
  const int64_t retrieved_len = summed_length(all);
  int64_t missed = 0;  // Σ |r \ C|: each reference on its own (overlapping references count twice, as in Chroma)
  for (const CharRange& r : refs) {
    if (r.length() <= 0) continue;
    const CharRange one[] = {r};
    missed += r.length() - intersection_length(one, covered);
  }
  RetrievalScores s;
  s.recall = ratio(hit, summed_length(refs));
  s.precision = ratio(hit, retrieved_len);
  s.iou = ratio(hit, retrieved_len + missed);
  return s;
}

double precision_omega(const Question& q, std::span<const ChunkSpan> all_chunks) {
  const std::vector<CharRange> refs = reference_ranges(q);
  std::vector<CharRange> highlighted;
  for (const ChunkSpan& c : all_chunks) {
    if (c.corpus_id != q.corpus_id) continue;
    for (const CharRange& r : refs) {
      // Chroma's intersection test: max(begins) <= min(ends), so a chunk that only touches a reference (or
      // contains an empty one) counts as highlighted.
      if (std::max(c.begin, r.begin) <= std::min(c.end, r.end)) {
        highlighted.push_back({c.begin, c.end});
        break;
      }
    }
  }
  if (highlighted.empty()) return 0.0;
  const std::vector<CharRange> h = union_of(std::move(highlighted));
  const std::vector<CharRange> refs_union = union_of(refs);
  const int64_t hit = intersection_length(refs_union, h);
  // |H ∪ (U(R) \ H)| = |H| + |U(R)| - |U(R) ∩ H|
  const int64_t den = summed_length(h) + summed_length(refs_union) - hit;
  return ratio(hit, den);
}

// ---- CSV ----

Result<std::vector<CsvRecord>> parse_csv(std::string_view text, const std::string& name) {
  text = strip_utf8_bom(text);
  std::vector<CsvRecord> out;
  size_t i = 0;
  int64_t line = 1;
  const size_t n = text.size();
  auto at_eol = [&](size_t p) { return p < n && (text[p] == '\n' || (text[p] == '\r' && p + 1 < n && text[p + 1] == '\n')); };
  auto skip_eol = [&](size_t& p) {
    p += text[p] == '\r' ? 2 : 1;
    ++line;
  };
  while (i < n) {
    if (at_eol(i)) {  // a blank line: no record
      skip_eol(i);
      continue;
    }
    CsvRecord rec;
    rec.line = line;
    while (true) {
      std::string field;
      if (i < n && text[i] == '"') {
        const int64_t open_line = line;
        ++i;
        bool closed = false;
        while (i < n) {
          const char c = text[i];
          if (c == '"') {
            if (i + 1 < n && text[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            closed = true;
            break;
          }
          if (c == '\n') ++line;
          field += c;
          ++i;
        }
        if (!closed) {
          return invalid_argument(at_line(name, open_line) + "a quoted field is not closed before the end of the file");
        }
        if (i < n && text[i] != ',' && !at_eol(i)) {
          return invalid_argument(at_line(name, line) + "text after the closing quote of a field");
        }
      } else {
        while (i < n && text[i] != ',' && !at_eol(i)) {
          if (text[i] == '"') {
            return invalid_argument(at_line(name, line) + "a quote inside an unquoted field (quote the field and double the quote)");
          }
          field += text[i++];
        }
      }
      rec.fields.push_back(std::move(field));
      if (i < n && text[i] == ',') {
        ++i;
        continue;
      }
      if (i < n) skip_eol(i);
      break;
    }
    out.push_back(std::move(rec));
  }
  return out;
}

// ---- questions ----

Result<std::vector<Question>> parse_questions(std::string_view csv, const std::string& name) {
  CW_ASSIGN_OR_RETURN(std::vector<CsvRecord> records, parse_csv(csv, name));
  if (records.empty()) return invalid_argument(name + ": empty file (expected a header: question,references,corpus_id)");
  const CsvRecord& header = records.front();
  int col_q = -1, col_r = -1, col_c = -1;
  for (size_t k = 0; k < header.fields.size(); ++k) {
    int* slot = header.fields[k] == "question"     ? &col_q
                : header.fields[k] == "references" ? &col_r
                : header.fields[k] == "corpus_id"  ? &col_c
                                                   : nullptr;
    if (slot == nullptr) continue;
    if (*slot >= 0) return invalid_argument(at_line(name, header.line) + "column '" + header.fields[k] + "' appears twice");
    *slot = static_cast<int>(k);
  }
  for (auto [col, label] : {std::pair{col_q, "question"}, std::pair{col_r, "references"}, std::pair{col_c, "corpus_id"}}) {
    if (col < 0) {
      return invalid_argument(at_line(name, header.line) + "the header has no column '" + label +
                              "' (expected question,references,corpus_id)");
    }
  }
  std::vector<Question> out;
  for (size_t ri = 1; ri < records.size(); ++ri) {
    const CsvRecord& rec = records[ri];
    const std::string where = at_line(name, rec.line);
    if (rec.fields.size() != header.fields.size()) {
      return invalid_argument(where + std::to_string(rec.fields.size()) + " fields, the header has " +
                              std::to_string(header.fields.size()));
    }
    Question q;
    q.line = rec.line;
    q.text = rec.fields[static_cast<size_t>(col_q)];
    q.corpus_id = rec.fields[static_cast<size_t>(col_c)];
    if (q.text.empty()) return invalid_argument(where + "empty question");
    CW_RETURN_IF_ERROR(check_corpus_id(q.corpus_id, where));
    auto json = JsonValue::parse(rec.fields[static_cast<size_t>(col_r)]);
    if (!json.is_ok()) return invalid_argument(where + "references is not valid JSON: " + json.status().message());
    if (!json->is_array()) return invalid_argument(where + "references must be a JSON array of objects");
    if (json->items().empty()) return invalid_argument(where + "references is empty (a question needs at least one)");
    for (size_t k = 0; k < json->items().size(); ++k) {
      const JsonValue& o = json->items()[k];
      const std::string which = where + "reference " + std::to_string(k + 1) + ": ";
      if (!o.is_object()) return invalid_argument(which + "not a JSON object");
      const JsonValue* content = o.get("content");
      if (content == nullptr || !content->is_string()) return invalid_argument(which + "needs a string \"content\"");
      Reference r;
      r.content = content->as_string();
      if (!as_index(o.get("start_index"), &r.range.begin)) {
        return invalid_argument(which + "\"start_index\" must be a non-negative integer");
      }
      if (!as_index(o.get("end_index"), &r.range.end)) {
        return invalid_argument(which + "\"end_index\" must be a non-negative integer");
      }
      if (r.range.end < r.range.begin) return invalid_argument(which + "end_index < start_index");
      q.references.push_back(std::move(r));
    }
    out.push_back(std::move(q));
  }
  if (out.empty()) return invalid_argument(name + ": no questions after the header");
  return out;
}

Result<ChunkingDataset> make_dataset(std::vector<Corpus> corpora, std::string_view questions_csv,
                                     const std::string& name) {
  ChunkingDataset d;
  CW_ASSIGN_OR_RETURN(d.questions, parse_questions(questions_csv, name));
  std::set<std::string> named;
  for (const Question& q : d.questions) named.insert(q.corpus_id);
  for (Corpus& c : corpora) {
    c.n_chars = static_cast<int64_t>(utf8_count_codepoints(c.text));
    if (named.count(c.id) != 0) d.corpora.push_back(std::move(c));
  }
  // Dataset order: first mention.
  std::vector<Corpus> ordered;
  std::set<std::string> seen;
  for (const Question& q : d.questions) {
    if (!seen.insert(q.corpus_id).second) continue;
    for (Corpus& c : d.corpora) {
      if (c.id == q.corpus_id) ordered.push_back(std::move(c));
    }
  }
  d.corpora = std::move(ordered);
  CW_RETURN_IF_ERROR(check_references(d.corpora, d.questions, name));
  return d;
}

Result<ChunkingDataset> load_dataset(const std::string& corpora_dir, const std::string& questions_csv) {
  CW_ASSIGN_OR_RETURN(std::string csv, read_input(questions_csv));
  CW_RETURN_IF_ERROR(check_utf8_encoding(csv, questions_csv));
  CW_ASSIGN_OR_RETURN(std::vector<Question> questions, parse_questions(csv, questions_csv));
  std::vector<Corpus> corpora;
  std::set<std::string> seen;
  for (const Question& q : questions) {
    if (!seen.insert(q.corpus_id).second) continue;
    Corpus c;
    c.id = q.corpus_id;
    const std::string with_md = corpora_dir + "/" + q.corpus_id + ".md", plain = corpora_dir + "/" + q.corpus_id;
    if (::access(with_md.c_str(), F_OK) == 0) {
      c.path = with_md;
    } else if (::access(plain.c_str(), F_OK) == 0) {
      c.path = plain;
    } else {
      return not_found(at_line(questions_csv, q.line) + "corpus '" + q.corpus_id + "': neither " + with_md + " nor " +
                       plain + " exists");
    }
    CW_ASSIGN_OR_RETURN(c.text, read_input(c.path));
    CW_RETURN_IF_ERROR(check_utf8_encoding(c.text, c.path));
    corpora.push_back(std::move(c));
  }
  return make_dataset(std::move(corpora), csv, questions_csv);
}

// ---- harness ----

Result<ChunkingResult> evaluate_chunking(const ChunkingDataset& data, const text::Chunker& chunker,
                                         const std::string& spec, const RankerFactory& make_ranker) {
  ChunkingResult res;
  res.chunker_spec = spec;
  std::vector<ChunkedCorpus> chunked;
  std::map<std::string, std::vector<ChunkSpan>> spans;  // corpus id → all its chunks
  std::map<std::string, int64_t> n_chars;
  double sum_chars = 0, sum_tokens = 0;
  for (const Corpus& c : data.corpora) {
    auto chunks = chunker.chunk(c.id, c.text);
    if (!chunks.is_ok()) {
      return Status(chunks.status().code(), "chunking corpus '" + c.id + "' (" + spec + "): " + chunks.status().message());
    }
    ChunkedCorpus cc;
    cc.corpus = &c;
    cc.chunker_spec = spec;
    std::vector<ChunkSpan>& s = spans[c.id];
    for (const text::Chunk& ch : *chunks) {
      cc.chunks.push_back({ch.index, ch.byte_begin, ch.byte_end, ch.char_begin, ch.char_end, ch.n_tokens});
      s.push_back({c.id, ch.char_begin, ch.char_end});
      sum_chars += static_cast<double>(ch.char_end - ch.char_begin);
      sum_tokens += static_cast<double>(ch.n_tokens);
    }
    res.n_chunks += static_cast<int64_t>(cc.chunks.size());
    n_chars[c.id] = c.n_chars;
    chunked.push_back(std::move(cc));
  }
  if (res.n_chunks > 0) {
    res.mean_chunk_chars = sum_chars / static_cast<double>(res.n_chunks);
    res.mean_chunk_tokens = sum_tokens / static_cast<double>(res.n_chunks);
  }
  CW_ASSIGN_OR_RETURN(Ranker rank, make_ranker(chunked));

  struct Sums {
    double recall = 0, precision = 0, omega = 0, iou = 0;
    int64_t n = 0;
  };
  std::map<std::string, Sums> per;
  Sums all;
  double retrieved = 0;
  for (const Question& q : data.questions) {
    auto got = rank(q);
    if (!got.is_ok()) return Status(got.status().code(), "question on line " + std::to_string(q.line) + ": " + got.status().message());
    for (const ChunkSpan& s : *got) {
      auto it = n_chars.find(s.corpus_id);
      if (it == n_chars.end() || s.begin < 0 || s.end < s.begin || s.end > it->second) {
        return internal_error("the ranker returned a chunk outside the corpora: '" + s.corpus_id + "' [" +
                              std::to_string(s.begin) + ", " + std::to_string(s.end) + ")");
      }
    }
    retrieved += static_cast<double>(got->size());
    const RetrievalScores r = score_retrieval(q, *got);
    const double omega = precision_omega(q, spans[q.corpus_id]);
    for (Sums* s : {&all, &per[q.corpus_id]}) {
      s->recall += r.recall;
      s->precision += r.precision;
      s->iou += r.iou;
      s->omega += omega;
      ++s->n;
    }
  }
  auto percent = [](const Sums& s) {
    ChunkingScores out;
    if (s.n == 0) return out;
    const double k = 100.0 / static_cast<double>(s.n);
    out.recall = s.recall * k;
    out.precision = s.precision * k;
    out.precision_omega = s.omega * k;
    out.iou = s.iou * k;
    return out;
  };
  res.n_questions = all.n;
  res.overall = percent(all);
  if (all.n > 0) res.mean_retrieved = retrieved / static_cast<double>(all.n);
  for (const ChunkedCorpus& cc : chunked) {
    CorpusResult cr;
    cr.corpus_id = cc.corpus->id;
    cr.n_chunks = static_cast<int64_t>(cc.chunks.size());
    cr.n_questions = per[cr.corpus_id].n;
    cr.scores = percent(per[cr.corpus_id]);
    res.per_corpus.push_back(std::move(cr));
  }
  return res;
}

// ---- sweeps ----

Result<std::vector<SweepSetting>> expand_sweep(std::string_view base_spec, std::string_view sweep) {
  CW_ASSIGN_OR_RETURN(text::ParsedSpec base, text::parse_spec(base_spec));
  struct Axis {
    std::string key;
    std::vector<std::string> values;
  };
  std::vector<Axis> axes;
  std::string_view rest = sweep;
  const std::string what = "sweep '" + std::string(sweep) + "': ";
  while (!rest.empty()) {
    const size_t semi = rest.find(';');
    std::string_view item = rest.substr(0, semi);
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) return invalid_argument(what + "'" + std::string(item) + "' is not key=v1,v2,...");
    Axis a;
    a.key = std::string(item.substr(0, eq));
    for (const Axis& o : axes) {
      if (o.key == a.key) return invalid_argument(what + "key '" + a.key + "' given twice");
    }
    std::string_view vals = item.substr(eq + 1);
    while (true) {
      const size_t comma = vals.find(',');
      std::string v(vals.substr(0, comma));
      while (!v.empty() && v.front() == ' ') v.erase(v.begin());
      while (!v.empty() && v.back() == ' ') v.pop_back();
      if (v.empty()) return invalid_argument(what + "an empty value for '" + a.key + "'");
      if (v.back() == '%' && a.key != "overlap") {
        return invalid_argument(what + "'" + a.key + "=" + v + "': a percentage is allowed for overlap only");
      }
      a.values.push_back(std::move(v));
      if (comma == std::string_view::npos) break;
      vals = vals.substr(comma + 1);
    }
    axes.push_back(std::move(a));
  }
  if (axes.empty()) return invalid_argument(what + "no key=values");
  size_t total = 1;
  for (const Axis& a : axes) {
    total *= a.values.size();
    if (total > 1000) return invalid_argument(what + "more than 1000 settings");
  }
  std::vector<SweepSetting> out;
  for (size_t n = 0; n < total; ++n) {
    text::ParsedSpec s = base;
    SweepSetting st;
    size_t rem = n;
    std::vector<size_t> pick(axes.size());
    for (size_t k = axes.size(); k-- > 0;) {  // the last axis varies fastest
      pick[k] = rem % axes[k].values.size();
      rem /= axes[k].values.size();
    }
    std::string overlap_percent;
    for (size_t k = 0; k < axes.size(); ++k) {
      const std::string& v = axes[k].values[pick[k]];
      st.values.emplace_back(axes[k].key, v);
      if (axes[k].key == "method") {
        s.method = v;
      } else if (axes[k].key == "overlap" && v.back() == '%') {
        overlap_percent = v.substr(0, v.size() - 1);
      } else {
        s.kv[axes[k].key] = v;
      }
    }
    if (!overlap_percent.empty()) {
      char* end = nullptr;
      const double pct = std::strtod(overlap_percent.c_str(), &end);
      if (end != overlap_percent.c_str() + overlap_percent.size() || !(pct >= 0 && pct < 100)) {
        return invalid_argument(what + "overlap=" + overlap_percent + "%: the percentage must be in [0, 100)");
      }
      int64_t size = 512;  // the chunkers' default size
      if (auto it = s.kv.find("size"); it != s.kv.end()) {
        char* e2 = nullptr;
        const long long v = std::strtoll(it->second.c_str(), &e2, 10);
        if (it->second.empty() || e2 != it->second.c_str() + it->second.size() || v < 1) {
          return invalid_argument(what + "overlap=" + overlap_percent + "% needs an integer size (size=" + it->second + ")");
        }
        size = v;
      }
      s.kv["overlap"] = std::to_string(static_cast<int64_t>(std::floor(static_cast<double>(size) * pct / 100.0)));
    }
    st.spec = s.method;
    bool first = true;
    for (const auto& [k, v] : s.kv) {
      st.spec += (first ? ":" : ",") + k + "=" + v;
      first = false;
    }
    out.push_back(std::move(st));
  }
  return out;
}

}  // namespace cw::eval
