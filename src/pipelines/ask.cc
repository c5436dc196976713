#include "pipelines/ask.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>
#include <set>
#include <tuple>

#include "base/utf8.h"
#include "kv/policy.h"
#include "pipelines/query.h"
#include "runtime/kv_executor.h"
#include "tokenizer/tokenizer.h"

namespace cw::pipelines {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

constexpr const char* kSeparator = "\n\n";

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


}  // namespace

std::string answer_text(std::string_view generated) {
  std::string_view s = generated.substr(0, generated.find('\n'));
  s.remove_suffix(utf8_incomplete_suffix_len(s));  // an answer cut at the token limit mid-character
  const size_t b = s.find_first_not_of(' ');
  if (b == std::string_view::npos) return "";
  return std::string(s.substr(b, s.find_last_not_of(' ') - b + 1));
}

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

std::pair<int64_t, int64_t> char_span(int64_t chunk_char_begin, std::string_view chunk_text, size_t b, size_t e) {
  const int64_t begin = chunk_char_begin + static_cast<int64_t>(utf8_count_codepoints(chunk_text.substr(0, b)));
  return {begin, begin + static_cast<int64_t>(utf8_count_codepoints(chunk_text.substr(b, e - b)))};
}

namespace {

// Copy-constrained decoding (GreedyOptions::copy_from): the runs of the source the answer so far matches,
// as the positions just after each; the next token must extend one of them.
class Quoter {
 public:
  explicit Quoter(std::span<const int32_t> src) : src_(src), runs_(src.size()) {
    for (size_t p = 0; p < runs_.size(); ++p) runs_[p] = p;
  }
  bool active() const { return !src_.empty(); }
  // The highest-logit token that extends a run (the lowest id on ties) and that `allowed` accepts; -1 when
  // there is none.
  template <typename Allowed>
  int32_t pick(const std::vector<float>& logits, Allowed allowed) const {
    int32_t best = -1;
    for (size_t p : runs_) {
      if (p >= src_.size()) continue;
      const int32_t t = src_[p];
      if (!allowed(t)) continue;
      const float l = logits[static_cast<size_t>(t)], lb = best < 0 ? 0.0f : logits[static_cast<size_t>(best)];
      if (best < 0 || l > lb || (l == lb && t < best)) best = t;
    }
    return best;
  }
  void accept(int32_t token) {
    size_t kept = 0;
    for (size_t p : runs_)
      if (p < src_.size() && src_[p] == token) runs_[kept++] = p + 1;
    runs_.resize(kept);
  }

 private:
  std::span<const int32_t> src_;
  std::vector<size_t> runs_;
};

}  // namespace

Result<GreedyAnswer> greedy_answer(const model::Model& m, const tok::Tokenizer& tok, const kv::KvPolicy* acting,
                                   std::span<const int32_t> prompt, const GreedyOptions& o) {
  if (o.max_tokens < 1) return invalid_argument("max answer tokens must be >= 1");
  if (o.ubatch < 1 || o.n_threads < 1) return invalid_argument("ubatch and threads must be >= 1");
  constexpr int32_t kBlock = 16;
  std::unique_ptr<runtime::PolicySession> ps;
  std::unique_ptr<model::Session> session;
  int64_t ubatch = o.ubatch;
  const int64_t n_total = static_cast<int64_t>(prompt.size()) + o.max_tokens;
  const int64_t n_ctx_train = m.hparams().n_ctx_train;
  if (acting != nullptr) {
    CW_ASSIGN_OR_RETURN(ubatch, runtime::PolicySession::fit_ubatch(m, *acting, o.ubatch, kBlock));
    CW_ASSIGN_OR_RETURN(ps, runtime::PolicySession::create(m, *acting, ubatch, o.kv_type, o.n_threads, kBlock, n_total));
  } else if (n_ctx_train <= 0 || n_total <= n_ctx_train) {
    CW_ASSIGN_OR_RETURN(session, model::Session::create(m, n_total, o.kv_type, o.n_threads));
  } else {  // full attention past the training context: a paged session has no context rule
    CW_ASSIGN_OR_RETURN(session, model::Session::create_paged(m, static_cast<int32_t>((n_total + kBlock - 1) / kBlock),
                                                              kBlock, o.kv_type, o.n_threads));
  }
  auto feed = [&](std::span<const int32_t> toks, std::vector<float>* logits, bool prompt = false) -> Status {
    if (ps) return ps->eval(toks, false, logits, /*prompt_end=*/prompt);
    for (size_t i = 0; i < toks.size(); i += static_cast<size_t>(ubatch))
      CW_RETURN_IF_ERROR(session->eval(toks.subspan(i, std::min(toks.size() - i, static_cast<size_t>(ubatch))), false, logits));
    return Status::ok();
  };
  GreedyAnswer g;
  std::vector<float> logits;
  const auto t_pre = Clock::now();
  CW_RETURN_IF_ERROR(feed(prompt, &logits, /*prompt=*/true));
  g.prefill_ms = ms_since(t_pre);
  const auto t_dec = Clock::now();
  g.stop = "limit";
  Quoter quote(o.copy_from);
  for (int64_t i = 0; i < o.max_tokens; ++i) {
    auto next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (next == tok.eos() && (!quote.active() || i > 0)) {
      g.stop = "eos";
      break;
    }
    if (quote.active()) {
      if (i > 0 && tok.token_to_piece(next).find('\n') != std::string::npos) {
        g.generated += '\n';
        g.stop = "newline";
        break;
      }
      // The quote starts at a token with text: not blank, no line break (that would be an empty answer).
      next = quote.pick(logits, [&](int32_t t) {
        if (i > 0) return true;
        const std::string piece = tok.token_to_piece(t);
        return piece.find('\n') == std::string::npos && piece.find_first_not_of(" \t\r") != std::string::npos;
      });
      if (next < 0) {
        g.stop = "end of source";
        break;
      }
      quote.accept(next);
    }
    ++g.tokens;
    g.generated += tok.token_to_piece(next);
    if (g.generated.find('\n') != std::string::npos) {
      g.stop = "newline";
      break;
    }
    if (i + 1 == o.max_tokens) break;
    const int32_t one[1] = {next};
    CW_RETURN_IF_ERROR(feed(one, &logits));
  }
  g.decode_ms = ms_since(t_dec);
  return g;
}

std::string qa_prompt(std::string_view context, std::string_view question) {
  std::string p;
  p.reserve(context.size() + question.size() + 20);
  p.append(context).append("\nQuestion: ").append(question).append("\nAnswer:");
  return p;
}

namespace {

// Attention mode: every chunk of the index, the BM25 hits first (rank order: the evidence sentence and the
// sources' ranks), then the chunks no word of the question matched (score 0), in document order. At most
// 2^24 tokens' worth of text (about 64 MiB) is read, the KV cache's limit.
Result<std::vector<QueryResult>> every_chunk(const retrieval::Store& store, std::vector<QueryResult> hits) {
  std::set<int64_t> seen;
  for (const QueryResult& h : hits) seen.insert(h.row.chunk_id);
  CW_ASSIGN_OR_RETURN(const std::vector<retrieval::DocumentInfo> docs, store.documents());
  uint64_t bytes = 0;
  for (const retrieval::DocumentInfo& d : docs) {
    CW_ASSIGN_OR_RETURN(std::vector<retrieval::ChunkRow> rows, store.chunks_of(d.path));
    for (retrieval::ChunkRow& row : rows) {
      bytes += row.text.size();
      if (bytes > (uint64_t{64} << 20))
        return out_of_range("attention mode reads at most 64 MiB of text; the index holds more: use retrieval");
      if (seen.count(row.chunk_id) != 0) continue;
      QueryResult q;
      q.hit.chunk_id = row.chunk_id;
      q.hit.score = 0;
      q.row = std::move(row);
      hits.push_back(std::move(q));
    }
  }
  return hits;
}

}  // namespace

Result<AskResult> ask(const model::Model& m, const tok::Tokenizer& tok, const retrieval::Store& store,
                      std::string_view question, const AskOptions& o) {
  if (question.find_first_not_of(" \t\r\n") == std::string_view::npos) return invalid_argument("the question is empty");
  if (question.find('\n') != std::string_view::npos)
    return invalid_argument("the question must be one line (the prompt format ends it at a newline)");
  if (o.candidates < 1) return invalid_argument("candidates must be >= 1");
  if (o.max_answer_tokens < 1) return invalid_argument("max answer tokens must be >= 1");
  if (o.ubatch < 1 || o.n_threads < 1) return invalid_argument("ubatch and threads must be >= 1");
  const bool attention = o.mode == AskMode::kAttention;
  const std::string policy_spec = attention && o.kv_policy.empty() ? std::string(kAttentionPolicy) : o.kv_policy;
  CW_ASSIGN_OR_RETURN(std::unique_ptr<kv::KvPolicy> acting, runtime::make_acting_policy(policy_spec));
  if (attention && (acting == nullptr || !acting->lifts_context_limit()))
    return invalid_argument("attention mode reads every chunk, so it needs a KV policy that reads past the window "
                            "(chunk_select, sink_window, ...), not '" + policy_spec + "'");
  const int64_t n_ctx_train = m.hparams().n_ctx_train;
  const int64_t window = o.n_ctx > 0 ? (n_ctx_train > 0 ? std::min(o.n_ctx, n_ctx_train) : o.n_ctx) : n_ctx_train;
  if (acting == nullptr && window <= 0)
    return invalid_argument("the model declares no training context: pass a context size");

  AskResult r;
  const size_t q_tokens = tok.encode(qa_prompt("", question), /*add_special=*/true, /*parse_special=*/false).size();
  if (acting == nullptr && static_cast<int64_t>(q_tokens) + o.max_answer_tokens >= window)
    return invalid_argument("the question is " + std::to_string(q_tokens) + " tokens with the prompt format; with " +
                            std::to_string(o.max_answer_tokens) + " answer tokens that leaves no room for any text in the " +
                            std::to_string(window) + "-token window");
  CW_ASSIGN_OR_RETURN(const retrieval::StoreStats stats, store.stats());
  if (stats.chunks == 0) return invalid_argument("the index holds no chunks: nothing to answer from");

  const auto t_ret = Clock::now();
  QueryOptions qo;
  qo.k = attention ? stats.chunks : o.candidates;
  qo.select = attention ? std::string() : o.select;
  CW_ASSIGN_OR_RETURN(std::vector<QueryResult> hits, query(store, question, qo));
  if (attention) {
    CW_ASSIGN_OR_RETURN(hits, every_chunk(store, std::move(hits)));
  }
  r.candidates = static_cast<int64_t>(hits.size());
  if (hits.empty()) return not_found("no chunk of the index matches a word of the question");

  // Greedy fit in rank order: a chunk costs its tokens plus the separator's.
  const int64_t sep_tokens = static_cast<int64_t>(tok.encode(kSeparator, false, false).size());
  int64_t used = static_cast<int64_t>(q_tokens) + o.max_answer_tokens;
  std::vector<size_t> chosen;
  std::vector<int64_t> chunk_tokens(hits.size(), 0);
  for (size_t i = 0; i < hits.size(); ++i) {
    chunk_tokens[i] = static_cast<int64_t>(tok.encode(hits[i].row.text, false, false).size());
    const int64_t cost = chunk_tokens[i] + (chosen.empty() ? 0 : sep_tokens);
    if (acting == nullptr && used + cost > window) continue;
    used += cost;
    chosen.push_back(i);
  }
  if (chosen.empty())
    return invalid_argument("no retrieved chunk fits the " + std::to_string(window) +
                            "-token window with the question: use a smaller chunk size");
  // The prompt in document order. Token counts of the parts need not add up exactly (BPE merges across a
  // boundary), so the assembled prompt is checked and the lowest-ranked chunk dropped until it fits.
  std::vector<int32_t> prompt;
  std::vector<size_t> in_prompt;  // indices into hits, document order
  std::string context;
  for (;;) {
    in_prompt = chosen;
    std::sort(in_prompt.begin(), in_prompt.end(), [&](size_t a, size_t b) {
      const retrieval::ChunkRow &x = hits[a].row, &y = hits[b].row;
      return x.path != y.path ? x.path < y.path : x.byte_begin < y.byte_begin;
    });
    context.clear();
    for (size_t i : in_prompt) {
      if (!context.empty()) context += kSeparator;
      context += hits[i].row.text;
    }
    prompt = tok.encode(qa_prompt(context, question), true, false);
    if (acting != nullptr || static_cast<int64_t>(prompt.size()) + o.max_answer_tokens <= window) break;
    if (chosen.size() == 1)
      return invalid_argument("no retrieved chunk fits the " + std::to_string(window) +
                              "-token window with the question: use a smaller chunk size");
    chosen.pop_back();  // chosen is in rank order: the last is the lowest-ranked
  }
  for (size_t i : in_prompt) {
    AskSource s;
    const retrieval::ChunkRow& row = hits[i].row;
    s.doc = row.path;
    s.chunk_index = row.index;
    s.char_begin = row.char_begin;
    s.char_end = row.char_end;
    s.byte_begin = row.byte_begin;
    s.byte_end = row.byte_end;
    s.score = hits[i].hit.score;
    s.rank = static_cast<int>(i) + 1;
    s.tokens = chunk_tokens[i];
    r.sources.push_back(std::move(s));
  }
  {
    size_t top = 0;  // the top-ranked chunk in the prompt
    for (size_t k = 1; k < in_prompt.size(); ++k)
      if (in_prompt[k] < in_prompt[top]) top = k;
    const std::string& text = hits[in_prompt[top]].row.text;
    const auto [b, e] = best_sentence(text, question);
    r.evidence = r.sources[top];
    r.evidence_text = text.substr(b, e - b);
    r.evidence.byte_begin += static_cast<int64_t>(b);
    r.evidence.byte_end = r.evidence.byte_begin + static_cast<int64_t>(e - b);
    std::tie(r.evidence.char_begin, r.evidence.char_end) = char_span(r.evidence.char_begin, text, b, e);
  }
  r.retrieve_ms = ms_since(t_ret);
  r.prompt_tokens = static_cast<int64_t>(prompt.size());
  GreedyOptions go;
  go.max_tokens = o.max_answer_tokens;
  go.ubatch = o.ubatch;
  go.n_threads = o.n_threads;
  std::vector<int32_t> context_tokens;
  if (o.quote) {
    context_tokens = tok.encode(context, false, false);
    go.copy_from = context_tokens;
  }
  CW_ASSIGN_OR_RETURN(GreedyAnswer g, greedy_answer(m, tok, acting.get(), prompt, go));
  r.prefill_ms = g.prefill_ms;
  r.decode_ms = g.decode_ms;
  r.answer_tokens = g.tokens;
  r.stop = g.stop;
  r.answer = answer_text(g.generated);

  // The answer's place in the sources: its first verbatim occurrence, in prompt order.
  if (!r.answer.empty()) {
    for (size_t k = 0; k < in_prompt.size() && !r.answer_found; ++k) {
      const std::string& text = hits[in_prompt[k]].row.text;
      const size_t at = text.find(r.answer);
      if (at == std::string::npos) continue;
      r.answer_found = true;
      r.answer_span = r.sources[k];
      r.answer_span.byte_begin += static_cast<int64_t>(at);
      r.answer_span.byte_end = r.answer_span.byte_begin + static_cast<int64_t>(r.answer.size());
      std::tie(r.answer_span.char_begin, r.answer_span.char_end) =
          char_span(r.answer_span.char_begin, text, at, at + r.answer.size());
    }
  }
  return r;
}

}  // namespace cw::pipelines
