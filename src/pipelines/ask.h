// cw::pipelines — question answering over documents (`chunkwise ask`, issue 14): question -> BM25 over an
// index -> the best chunks that fit the model's window -> one prompt -> greedy answer, with the chunks it
// used (their offsets) as sources.
//
// The prompt is the format the project's model was trained on (docs/design/haystack.md):
//   qa_prompt(context, question) = context + "\nQuestion: " + question + "\nAnswer:"
// with the chosen chunks in document order (by path, then offset), separated by a blank line. The answer
// is the greedy continuation up to the first newline (or EOS, or max_answer_tokens), spaces trimmed; by
// default (AskOptions::quote) each answer token must continue a verbatim run of the chunks' tokens, so the
// answer is a quote of the sources with exact offsets — the model chooses where and how long, never words
// the documents do not have.
//
// Window fit: hits are taken in rank order while the prompt, counted in the model's own tokens, plus
// max_answer_tokens stays within the model's training context (or n_ctx when set smaller). A chunk that
// does not fit is skipped (a smaller one further down may). Under a KV policy that acts (sink_window, ...),
// the window is the policy's business: every candidate is used and the sequence runs on a PolicySession.
//
// Thread-safety: a pure function of its arguments; the Store serialises its own calls.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "model/model.h"
#include "retrieval/store.h"

namespace cw::tok {
class Tokenizer;
}
namespace cw::kv {
class KvPolicy;
}

namespace cw::pipelines {

// How `ask` reads the documents: retrieval (the best-ranked chunks that fit the window) or attention (every
// chunk of the index, in document order, through a chunk-selective KV policy: the model's attention picks).
enum class AskMode { kRetrieval, kAttention };
// The KV policy of attention mode when none is given.
inline constexpr const char* kAttentionPolicy = "chunk_select";

struct AskOptions {
  AskMode mode = AskMode::kRetrieval;
  int64_t candidates = 20;       // ranked chunks considered (>= 1; retrieval)
  std::string select;            // selector spec applied to the candidates first ("" = rank order)
  std::string kv_policy;         // "" or full: the window bounds the context; attention mode: "" = chunk_select
  int64_t max_answer_tokens = 48;
  bool quote = true;             // the answer is a verbatim span of the chunks (GreedyOptions::copy_from)
  int64_t n_ctx = 0;             // 0: the model's training context
  int64_t ubatch = 256;
  int n_threads = 1;
};

struct AskSource {
  std::string doc;  // the document's path in the index
  int64_t chunk_index = 0;
  int64_t char_begin = 0, char_end = 0;  // code points, as the index stores them
  int64_t byte_begin = 0, byte_end = 0;
  double score = 0;  // BM25 (higher = better)
  int rank = 0;      // 1 = best hit
  int64_t tokens = 0;  // model tokens of the chunk's text
};

struct AskResult {
  std::string answer;
  std::vector<AskSource> sources;  // the chunks in the prompt, in prompt (document) order
  // Where the answer text occurs verbatim in a source (the first occurrence in prompt order); found = false
  // when the model wrote something that is not a span of its sources.
  bool answer_found = false;
  AskSource answer_span;  // doc + exact offsets of the answer (score / rank / tokens of its chunk)
  // Evidence that needs no model: the best sentence (best_sentence) of the top-ranked chunk in the prompt,
  // with its exact offsets (score / rank / tokens of its chunk) — shown beside the answer, so a reader can
  // check it, and useful when the model's answer is not.
  AskSource evidence;
  std::string evidence_text;
  int64_t prompt_tokens = 0, answer_tokens = 0, candidates = 0;
  std::string stop;  // "newline", "eos" or "limit"
  double retrieve_ms = 0, prefill_ms = 0, decode_ms = 0;
};

std::string qa_prompt(std::string_view context, std::string_view question);
// The answer in a greedy continuation: the text before the first "\n", spaces trimmed, less an incomplete
// UTF-8 character at the end (what `ask` prints and `eval needle` scores).
std::string answer_text(std::string_view generated);
// The sentence of `text` with the most distinct words of `question` (lower-cased ASCII letters and digits,
// 3+ characters, a few function words left out), as a byte range [first, second) of `text`; the first
// sentence on ties, the whole text when it has no sentence boundary. A sentence ends after . ! ? followed
// by white space, or at a blank line.
std::pair<size_t, size_t> best_sentence(std::string_view text, std::string_view question);
// The code-point range [first, second) in the document of bytes [b, e) of a chunk's text that starts at code
// point `chunk_char_begin`.
std::pair<int64_t, int64_t> char_span(int64_t chunk_char_begin, std::string_view chunk_text, size_t b, size_t e);

// One greedy answer (what `ask` and `eval needle` run): the prompt, then argmax tokens until one whose text
// completes a "\n" (stop "newline"), EOS (not counted, stop "eos") or max_tokens (stop "limit"). The sequence
// runs on a runtime::PolicySession when `acting` is given (its micro-batch fitted to the policy); else on a
// plain Session within the training context, or past it on a paged Session with no context rule (full
// attention at positions beyond those trained, as a user of full attention gets).
//
// Quoting (copy_from non-empty): every answer token must continue a verbatim run of copy_from (the
// context's tokens), so the answer is a quote of the sources by construction. At each step the argmax is
// taken over the tokens that extend some run matched so far (at the first step: any token of copy_from);
// the answer ends where the model's own argmax is EOS or a token with a newline (after at least one
// token), or when no run can be extended.
struct GreedyOptions {
  int64_t max_tokens = 48;  // >= 1
  std::span<const int32_t> copy_from;  // empty: free generation
  int64_t ubatch = 256;     // prompt tokens per forward pass
  model::KvType kv_type = model::KvType::kF16;
  int n_threads = 1;
};
struct GreedyAnswer {
  std::string generated;  // the pieces as generated (answer_text() gives the answer)
  int64_t tokens = 0;
  std::string stop;  // "newline", "eos", "limit" or (quoting) "end of source"
  double prefill_ms = 0, decode_ms = 0;
};
Result<GreedyAnswer> greedy_answer(const model::Model& model, const tok::Tokenizer& tokenizer, const kv::KvPolicy* acting,
                                   std::span<const int32_t> prompt, const GreedyOptions& options);

// Errors: an empty question or one with no searchable word, a question too long for the window (with the
// token counts), no chunk in the index, no chunk that fits, bad selector / policy specs, Store and forward
// errors.
Result<AskResult> ask(const model::Model& model, const tok::Tokenizer& tokenizer, const retrieval::Store& store,
                      std::string_view question, const AskOptions& options);

}  // namespace cw::pipelines
