// Encoder: the BERT family of embedding models (GGUF general.architecture = "bert": bge-small/base/large,
// all-MiniLM, e5, ...), a bidirectional transformer that turns one token sequence into one vector.
//
// The recipe (what llama.cpp's bert graph and the Hugging Face BertModel compute):
//   x_t  = tok_embd[token_t] + token_types[0] + position_embd[t]          (every token is "sentence A")
//   x    = LayerNorm(x; token_embd_norm)
//   per layer:  a = Wo · Attention(Wq x + bq, Wk x + bk, Wv x + bv) + bo   (all tokens see all tokens)
//               x = LayerNorm(x + a; attn_output_norm)
//               f = W_down · GELU(W_up x + b_up) + b_down                   (GELU: the tanh approximation)
//               x = LayerNorm(x + f; layer_output_norm)
//   pooled = mean over tokens | the first token (CLS) | the last token    (bert.pooling_type 1 | 2 | 3)
//   out    = pooled / ||pooled||                                          (L2, as embedding users expect)
// Weights may be any type the matmul kernels support; norms and biases are read into fp32 at load.
//
// The caller tokenizes (the GGUF's WordPiece vocabulary adds [CLS] ... [SEP]). A sequence may hold at most
// n_ctx_train tokens (the position table's length).
//
// Thread-safety: an Encoder is immutable after load; embed() uses the caller's EncoderScratch, so one
// encoder may serve several threads, each with its own scratch.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "gguf/reader.h"
#include "kernels/cpu/matmul.h"
#include "model/model.h"

namespace cw::model {

enum class Pooling : uint8_t { kMean = 1, kCls = 2, kLast = 3 };
const char* pooling_name(Pooling p);

struct EncoderHParams {
  int64_t n_vocab = 0, n_ctx_train = 0, n_embd = 0, n_layer = 0, n_head = 0, head_dim = 0, n_ff = 0;
  int64_t n_token_types = 0;
  float norm_eps = 1e-12f;
  Pooling pooling = Pooling::kMean;
};

struct EncoderScratch {
  std::vector<float> x, q, k, v, attn, proj, ff, scores;
  kernels::MatmulScratch mm;
};

class Encoder {
 public:
  // Whether a GGUF holds an encoder this class runs (general.architecture "bert").
  static bool is_encoder(const gguf::File& f);
  // Opens and validates a bert GGUF. Errors: another architecture (kInvalidArgument), a missing or
  // malformed key or tensor (kDataLoss naming it), a pooling type other than mean / cls / last
  // (kUnimplemented), a weight type without kernels.
  static Result<std::unique_ptr<Encoder>> load(const std::string& path);
  static Result<std::unique_ptr<Encoder>> from_file(std::unique_ptr<gguf::File> file);

  const EncoderHParams& hparams() const { return hp_; }
  const gguf::File& file() const { return *file_; }

  // The pooled, L2-normalised embedding [n_embd] of `tokens` (1 .. n_ctx_train ids in [0, n_vocab)).
  // Errors: empty input, too many tokens (kOutOfRange naming both counts), an id out of range, non-finite
  // output (kDataLoss).
  Status embed(std::span<const int32_t> tokens, std::vector<float>* out, ThreadPool& pool, EncoderScratch& s) const;

 private:
  struct Layer {
    WeightRef wq, wk, wv, wo, up, down;
    std::vector<float> bq, bk, bv, bo, b_up, b_down;
    std::vector<float> attn_norm_w, attn_norm_b, out_norm_w, out_norm_b;
  };
  std::unique_ptr<gguf::File> file_;
  EncoderHParams hp_;
  WeightRef tok_embd_, pos_embd_, type_embd_;
  std::vector<float> embd_norm_w_, embd_norm_b_;
  std::vector<Layer> layers_;
};

}  // namespace cw::model
