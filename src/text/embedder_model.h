// ModelEmbedder: embeddings from a GGUF model. The text is tokenized with the model's own vocabulary
// (add_special as the vocabulary asks, no special-token parsing), then:
//   - an embedding model (general.architecture "bert": bge, all-MiniLM, e5, ...) runs through
//     model::Encoder with the pooling the file declares (mean / CLS / last), L2-normalised;
//   - a decoder the engine runs (llama / mistral / qwen2 families) runs through the forward pass
//     (model::Session::eval_hidden: final-normed hidden states), mean-pooled over all tokens and
//     L2-normalised.
//
// Long texts are never truncated: a text of more than `ctx` tokens is run in consecutive windows of `ctx`
// tokens (each from an empty cache); a decoder's mean is taken over all tokens of all windows, an
// encoder's window embeddings are averaged and normalised again. An empty text gives a zero row.
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
class Encoder;
struct EncoderScratch;
}  // namespace cw::model
namespace cw {
class ThreadPool;
}
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
  // The encoder's pooling ("mean", "cls", "last"), or "mean" for a decoder.
  std::string pooling() const;
  Status embed(std::span<const std::string_view> texts, std::vector<float>* out) const override;

 private:
  ModelEmbedder() = default;

  std::string path_;
  int64_t ctx_ = 0;
  std::unique_ptr<model::Model> model_;      // a decoder, or
  std::unique_ptr<model::Encoder> encoder_;  // an encoder
  std::unique_ptr<tok::Tokenizer> tokenizer_;
  mutable std::mutex mu_;
  std::unique_ptr<model::Session> session_;  // guarded by mu_ (decoder)
  std::unique_ptr<ThreadPool> pool_;         // guarded by mu_ (encoder)
  std::unique_ptr<model::EncoderScratch> scratch_;
  Status embed_encoder(const std::vector<int32_t>& tokens, float* row) const;
};

}  // namespace cw::text
