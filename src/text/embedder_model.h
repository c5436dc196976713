// ModelEmbedder: embeddings from any GGUF model the engine runs (llama / mistral / qwen2 families): the
// text is tokenized with the model's own vocabulary (add_special as the vocabulary asks, no special-token
// parsing), run through the forward pass (cw::model::Session::eval_hidden: final-normed hidden states), and
// the hidden states of all its tokens are mean-pooled and L2-normalised.
//
// Long texts are never truncated: a text of more than `ctx` tokens is run in consecutive windows of `ctx`
// tokens (each from an empty cache) and the mean is taken over all tokens of all windows. An empty text (no
// tokens at all) gives a zero row.
// Thread-safety: embed() may be called from several threads; calls are serialised on one Session (a model
// forward pass already uses `threads` threads).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "text/embedder.h"

namespace cw::model {
class Model;
class Session;
}  // namespace cw::model
namespace cw::tok {
class Tokenizer;
}

namespace cw::text {

struct ModelEmbedderOptions {
  int64_t ctx = 512;  // tokens per forward window; clamped to the model's training context; 1 .. 2^20
  int threads = 1;    // forward-pass threads, 1 .. 1024
};

class ModelEmbedder final : public Embedder {
 public:
  // Errors: unreadable / invalid GGUF, unsupported architecture, no tokenizer in the file, options out of
  // range (invalid_argument naming the option).
  static Result<std::unique_ptr<ModelEmbedder>> load(const std::string& gguf_path,
                                                     const ModelEmbedderOptions& options = {});
  ~ModelEmbedder() override;

  int64_t dim() const override;
  std::string name() const override { return "model:" + path_; }
  Status embed(std::span<const std::string_view> texts, std::vector<float>* out) const override;

 private:
  ModelEmbedder() = default;

  std::string path_;
  int64_t ctx_ = 0;
  std::unique_ptr<model::Model> model_;
  std::unique_ptr<tok::Tokenizer> tokenizer_;
  mutable std::mutex mu_;
  std::unique_ptr<model::Session> session_;  // guarded by mu_
};

}  // namespace cw::text
