// See openai_response.h.
#include "server/openai_response.h"

#include <ctime>

#include "base/json.h"

namespace cw::server {
namespace {

std::string piece_of(const tok::Tokenizer& tok, int32_t token) {
  return token >= 0 && token < tok.n_vocab() ? tok.token_to_piece(token) : std::string();
}

void head(JsonWriter& w, const ResponseMeta& m, bool chunk) {
  w.begin_object().key("id").value(m.id);
  w.key("object").value(m.chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion");
  w.key("created").value(m.created).key("model").value(m.model);
}

void usage(JsonWriter& w, const GenerationResult& r) {
  const int64_t completion = static_cast<int64_t>(r.tokens.size());
  w.key("usage").begin_object();
  w.key("prompt_tokens").value(r.prompt_tokens).key("completion_tokens").value(completion);
  w.key("total_tokens").value(r.prompt_tokens + completion);
  w.key("prompt_tokens_details").begin_object().key("cached_tokens").value(r.cached_tokens).end_object();
  w.end_object();
}

void bytes_of(JsonWriter& w, const std::string& piece) {
  w.key("bytes").begin_array();
  for (unsigned char c : piece) w.value(int64_t{c});
  w.end_array();
}

// The "logprobs" member (null when not asked for).
void logprobs(JsonWriter& w, const ResponseMeta& m, std::span<const TokenLogprobs> lps, const tok::Tokenizer& tok,
              int64_t* text_offset) {
  w.key("logprobs");
  if (!m.logprobs) {
    w.null();
    return;
  }
  if (m.chat) {
    w.begin_object().key("content").begin_array();
    for (const TokenLogprobs& t : lps) {
      const std::string piece = piece_of(tok, t.token);
      w.begin_object().key("token").value(piece).key("logprob").value(double{t.logprob});
      bytes_of(w, piece);
      w.key("top_logprobs").begin_array();
      for (const TokenLogprob& alt : t.top) {
        const std::string p = piece_of(tok, alt.token);
        w.begin_object().key("token").value(p).key("logprob").value(double{alt.logprob});
        bytes_of(w, p);
        w.end_object();
      }
      w.end_array().end_object();
    }
    w.end_array().end_object();
    return;
  }
  w.begin_object().key("tokens").begin_array();
  for (const TokenLogprobs& t : lps) w.value(piece_of(tok, t.token));
  w.end_array().key("token_logprobs").begin_array();
  for (const TokenLogprobs& t : lps) w.value(double{t.logprob});
  w.end_array().key("top_logprobs").begin_array();
  for (const TokenLogprobs& t : lps) {
    w.begin_object();
    for (const TokenLogprob& alt : t.top) w.key(piece_of(tok, alt.token)).value(double{alt.logprob});
    w.end_object();
  }
  w.end_array().key("text_offset").begin_array();
  for (const TokenLogprobs& t : lps) {
    w.value(*text_offset);
    if (t.token != tok.eos()) *text_offset += static_cast<int64_t>(piece_of(tok, t.token).size());
  }
  w.end_array().end_object();
}

}  // namespace

std::string completion_json(const ResponseMeta& m, const GenerationResult& r, const tok::Tokenizer& tok) {
  JsonWriter w;
  head(w, m, false);
  w.key("choices").begin_array().begin_object().key("index").value(0);
  if (m.chat) {
    w.key("message").begin_object().key("role").value("assistant").key("content").value(r.text).end_object();
  } else {
    w.key("text").value(r.text);
  }
  int64_t offset = 0;
  logprobs(w, m, r.logprobs, tok, &offset);
  w.key("finish_reason").value(openai_finish_reason(r.finish_reason));
  w.end_object().end_array();
  usage(w, r);
  w.end_object();
  return w.str();
}

std::string chunk_json(const ResponseMeta& m, std::string_view text, std::span<const TokenLogprobs> lps,
                       const char* finish_reason, bool role, const tok::Tokenizer& tok, int64_t* text_offset) {
  JsonWriter w;
  head(w, m, true);
  w.key("choices").begin_array().begin_object().key("index").value(0);
  if (m.chat) {
    w.key("delta").begin_object();
    if (role) w.key("role").value("assistant");
    if (role || finish_reason == nullptr) w.key("content").value(text);
    w.end_object();
  } else {
    w.key("text").value(text);
  }
  if (lps.empty() || role) {
    w.key("logprobs").null();
  } else {
    logprobs(w, m, lps, tok, text_offset);
  }
  w.key("finish_reason");
  if (finish_reason == nullptr) {
    w.null();
  } else {
    w.value(finish_reason);
  }
  w.end_object().end_array().end_object();
  return w.str();
}

std::string usage_chunk_json(const ResponseMeta& m, const GenerationResult& r) {
  JsonWriter w;
  head(w, m, true);
  w.key("choices").begin_array().end_array();
  usage(w, r);
  w.end_object();
  return w.str();
}

}  // namespace cw::server
