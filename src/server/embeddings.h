// POST /v1/embeddings over a text::Embedder (issue 15). Internal to cw_server (includes httplib).
//
// Request: {"input": STRING or [STRING, ...] (1 .. 2048 non-empty strings; token-id inputs are refused),
//           "model": STRING (optional; another id -> 404), "encoding_format": "float" (default) | "base64",
//           "dimensions": INTEGER (optional; must equal the embedder's dimension)}; other fields ignored.
// Response: {"object":"list","data":[{"object":"embedding","index":I,"embedding":[FLOAT,...] or BASE64}],
//            "model":MODEL_ID,"usage":{"prompt_tokens":N,"total_tokens":N}}
// base64 is the little-endian float32 bytes of the vector (what OpenAI's clients decode; the openai npm
// package asks for it by default). prompt_tokens counts the inputs' tokens (tokenizer, BOS by its rule).
// The batch runs on the connection thread (the embedder serialises its forward passes) and holds one
// admission slot while it runs; without one: 503 with Retry-After.
#pragma once

#include <httplib.h>

#include <memory>
#include <string>

#include "server/admission.h"
#include "text/embedder.h"
#include "tokenizer/tokenizer.h"

namespace cw::server {

class Embeddings {
 public:
  Embeddings(const text::Embedder* embedder, const tok::Tokenizer* tokenizer, std::shared_ptr<Admission> admission,
             std::string model_id);
  void handle(const httplib::Request& req, httplib::Response& res);

 private:
  const text::Embedder* embedder_;
  const tok::Tokenizer* tokenizer_;
  std::shared_ptr<Admission> admission_;
  std::string model_id_;
};

// RFC 4648 base64 (with padding) of `bytes`.
std::string base64_encode(std::string_view bytes);

}  // namespace cw::server
