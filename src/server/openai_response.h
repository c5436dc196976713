// The OpenAI response bodies of completions and chat completions, built from a cw::GenerationResult
// (pure functions; internal to cw_server):
//   completions       {"id":"cmpl-N","object":"text_completion","created":T,"model":M,
//                      "choices":[{"index":0,"text":S,"logprobs":null|L,"finish_reason":F}],"usage":U}
//   chat completions  {"id":"chatcmpl-N","object":"chat.completion","created":T,"model":M,
//                      "choices":[{"index":0,"message":{"role":"assistant","content":S},
//                                  "logprobs":null|{"content":[...]},"finish_reason":F}],"usage":U}
//   usage             {"prompt_tokens":P,"completion_tokens":C,"total_tokens":P+C,
//                      "prompt_tokens_details":{"cached_tokens":K}}
// Streaming chunks: "object" is "text_completion" with "text", or "chat.completion.chunk" with "delta"
// ({"role":"assistant","content":""} first, then {"content":S}, then {} with the finish_reason); with
// stream_options.include_usage a last chunk has "choices":[] and the usage.
// Logprobs: chat: {"content":[{"token","logprob","bytes","top_logprobs":[{"token","logprob","bytes"}]}]};
// completions: {"tokens":[...],"token_logprobs":[...],"top_logprobs":[{PIECE:LOGPROB,...}],
// "text_offset":[...]} (offsets in bytes of the generated text).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "chunkwise/engine.h"
#include "tokenizer/tokenizer.h"

namespace cw::server {

struct ResponseMeta {
  bool chat = false;
  std::string id;  // "cmpl-N" / "chatcmpl-N"
  int64_t created = 0;
  std::string model;
  bool logprobs = false;
};

// The whole (non-streaming) response.
std::string completion_json(const ResponseMeta& m, const GenerationResult& r, const tok::Tokenizer& tok);

// One streaming chunk's JSON. `text_offset` (completions' logprobs) advances by the pieces' bytes.
// finish_reason null: not the last chunk. role: chat's first chunk.
std::string chunk_json(const ResponseMeta& m, std::string_view text, std::span<const TokenLogprobs> logprobs,
                       const char* finish_reason, bool role, const tok::Tokenizer& tok, int64_t* text_offset);

// The usage chunk of stream_options.include_usage.
std::string usage_chunk_json(const ResponseMeta& m, const GenerationResult& r);

}  // namespace cw::server
