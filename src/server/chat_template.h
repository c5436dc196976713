// Chat templates: turn an OpenAI-style message list into the prompt text a chat model was trained on.
//
// We do not run Jinja. A GGUF's `tokenizer.chat_template` is only inspected for distinctive markers
// (detect_chat_family) and the conversation is rendered by a fixed C++ formatter per family
// (render_chat). Each formatter reproduces the text its family's reference template (the model card's
// / tokenizer_config.json Jinja, rendered with add_generation_prompt) produces, under the three rules
// below. S, U1, A1, U2 stand for message contents; "\n" is a newline.
//
//   chatml   (Qwen, OpenHermes, most fine-tunes; the fallback)   content verbatim
//     <|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n
//     <|im_start|>user\nU2<|im_end|>\n  + generation prompt  <|im_start|>assistant\n
//   llama-3  (Meta-Llama-3 / 3.x Instruct, basic template)        content trimmed
//     <|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU1
//     <|eot_id|>...  + generation prompt  <|start_header_id|>assistant<|end_header_id|>\n\n
//     (no "Cutting Knowledge Date" preamble, no tools)
//   llama-2  (Llama-2-chat)                                      each turn's text trimmed
//     [INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]
//   mistral  (Mistral-7B-Instruct v0.1/v0.2 style, no system role) content verbatim
//     [INST] S\n\nU1 [/INST]A1</s>[INST] U2 [/INST]
//   phi-3    (Phi-3 / Phi-3.5 with system role)                  content verbatim; empty system skipped
//     <|system|>\nS<|end|>\n<|user|>\nU1<|end|>\n<|assistant|>\nA1<|end|>\n<|user|>\nU2<|end|>\n
//     + generation prompt  <|assistant|>\n
//   gemma    (Gemma 1/2/3 instruct, no system role)              user/assistant content trimmed
//     <start_of_turn>user\nS\n\nU1<end_of_turn>\n<start_of_turn>model\nA1<end_of_turn>\n
//     <start_of_turn>user\nU2<end_of_turn>\n  + generation prompt  <start_of_turn>model\n
//   zephyr   (HuggingFaceH4/zephyr-7b)                           content verbatim
//     <|system|>\nS</s>\n<|user|>\nU1</s>\n<|assistant|>\nA1</s>\n<|user|>\nU2</s>\n
//     + generation prompt  <|assistant|>\n
//
// BOS rule: the beginning-of-sequence token that opens the prompt is NEVER written as text; it is left
// to the tokenizer's add_bos (GGUF tokenizer.ggml.add_bos_token), so it can neither be doubled nor
// forgotten. Everything else that belongs to the turn structure is written as its token text and the
// prompt must be tokenized with special-token parsing on: end-of-turn markers (<|im_end|>, <|eot_id|>,
// <|end|>, <end_of_turn>, and "</s>" for llama-2/mistral/zephyr) and llama-2's "<s>" that opens every
// [INST] turn after the first one (part of Meta's turn format, not a prompt-level BOS).
// For llama-2 and mistral the prompt ends with "[/INST]", which already asks for the answer, so
// add_generation_prompt adds nothing there. With add_generation_prompt false nothing is appended (no
// trailing EOS, unlike some training templates).
//
// System-message rule: chatml, llama-3, phi-3 and zephyr have a system role and render every system
// message in place. Families without one (gemma, mistral) hold the system text and prepend it to the
// next user message followed by "\n\n"; llama-2 prepends it to the next user message inside its
// "<<SYS>>\n...\n<</SYS>>\n\n" block. Several system messages before one user message are joined with
// "\n\n". A system message that no user message follows is rendered as a user message of its own.
//
// Trimming (where noted above) removes ASCII whitespace (space, \t, \n, \v, \f, \r) at both ends, as
// the reference templates' `| trim` / `.strip()` do for ASCII text. Contents are otherwise passed
// through byte for byte: no escaping, so a client can write special-token text into its messages.
//
// Validation: roles are exactly "system", "user" or "assistant"; anything else, and an empty message
// list, is invalid_argument with a one-line message naming the message index. Any order of roles is
// accepted (the reference templates' alternation checks are not enforced); a final assistant message
// is allowed and rendered as a closed turn (continuing it is not supported).
//
// Thread-safety: all functions are pure and may run concurrently.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "base/status.h"

namespace cw::server {

enum class ChatFamily { kLlama2, kLlama3, kChatml, kMistral, kPhi3, kGemma, kZephyr };

// "llama-2", "llama-3", "chatml", "mistral", "phi-3", "gemma", "zephyr".
const char* chat_family_name(ChatFamily family);

// Accepts the names above and "qwen" (an alias of chatml). Otherwise invalid_argument, one line, listing
// the valid names.
Result<ChatFamily> parse_chat_family(std::string_view name);

// The family of a GGUF tokenizer.chat_template, by markers (first match wins):
//   "<|im_start|>" -> chatml; "<|start_header_id|>" -> llama-3; "<start_of_turn>" -> gemma;
//   "[INST]" with "<<SYS>>" -> llama-2, "[INST]" without -> mistral;
//   "<|end|>" with "<|user|>" or "<|assistant|>" -> phi-3;
//   "<|user|>" with "</s>" or "eos_token" (and no "<|end|>") -> zephyr.
// An empty or unrecognised template gives chatml; *recognised (when not null) says whether a marker
// matched, so the caller can log the fallback.
ChatFamily detect_chat_family(std::string_view jinja_template, bool* recognised = nullptr);

// The text that closes an assistant turn in `family`: "<|im_end|>" (chatml), "<|eot_id|>" (llama-3),
// "<|end|>" (phi-3), "<end_of_turn>" (gemma), "</s>" (llama-2, mistral, zephyr). A server stops a chat
// reply there (the model's eos may be another token, e.g. a chatml fine-tune of a base model).
const char* chat_end_of_turn(ChatFamily family);

struct ChatMessage {
  std::string role;     // "system", "user" or "assistant"
  std::string content;
};

// The prompt text for `messages` (see the family formats above). add_generation_prompt appends the
// header that opens the assistant's reply, where the family has one.
Result<std::string> render_chat(ChatFamily family, std::span<const ChatMessage> messages,
                                bool add_generation_prompt);

}  // namespace cw::server
