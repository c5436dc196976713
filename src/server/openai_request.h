// The OpenAI request bodies of POST /v1/completions and POST /v1/chat/completions, read and validated
// (no HTTP, no engine: pure functions, unit-testable). Every field a client controls is checked for its
// type and range; an error is invalid_argument with one line naming the field.
//
// Fields (absent or null = the default):
//   model              string; the handler compares it with the served id (unknown -> 404)
//   prompt             completions: a string, an array of one string, or an array of token ids (required)
//   messages           chat: a non-empty array of {"role": "system"|"user"|"assistant", "content": STRING
//                      or an array of {"type":"text","text":STRING} parts (joined); null only for assistant}
//   max_tokens         integer in [0, 2^31 - 1] (chat also takes max_completion_tokens); default: what fits
//   temperature        number in [0, 2] (default 1; 0 = greedy)
//   top_p              number in [0, 1] (default 1 = off)
//   top_k, min_p       llama.cpp's extensions: integer in [0, 2^31 - 1] (default 0 = off), number in [0, 1]
//   repeat_penalty     llama.cpp's extension: number in (0, 10] (default 1 = off)
//   presence_penalty, frequency_penalty   numbers in [-2, 2] (default 0)
//   seed               integer in [-2^63, 2^64) (default: random)
//   stop               a string or an array of at most 4 strings (the engine checks each: non-empty,
//                      at most 256 bytes)
//   logprobs           chat: boolean, with top_logprobs an integer in [0, 20] (top_logprobs needs
//                      logprobs: true); completions: integer in [0, 20], the alternatives per token
//   n                  1 (anything else: 400; one choice per request)
//   stream             boolean; stream_options: {"include_usage": boolean}
// Other fields are ignored (clients send e.g. "user").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/json_value.h"
#include "base/status.h"
#include "chunkwise/engine.h"
#include "server/chat_template.h"

namespace cw::server {

struct OpenAiRequest {
  bool chat = false;
  std::string model;                  // empty: not given
  std::string prompt;                 // completions: the prompt text (when prompt_ids is empty)
  std::vector<int32_t> prompt_ids;    // completions: token ids given as the prompt
  std::vector<ChatMessage> messages;  // chat
  std::optional<int64_t> max_tokens;
  SamplingConfig sampling;  // temperature, top_p, top_k, min_p, penalties (penalty_last_n: engine's)
  bool seed_given = false;
  std::vector<std::string> stop;
  bool logprobs = false;
  int top_logprobs = 0;
  bool stream = false;
  bool include_usage = false;
};

// Reads a completions (chat == false) or chat completions body. `n_vocab` bounds token-id prompts.
Result<OpenAiRequest> parse_openai_request(const JsonValue& body, bool chat, int64_t n_vocab);

}  // namespace cw::server
