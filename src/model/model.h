// A loaded model: hyper-parameters plus weights bound in place to the GGUF mapping (zero copy; only the
// small norm vectors and biases are converted to fp32 at load).
//
// Session runs the forward pass of one sequence over a contiguous fp32 KV cache of n_ctx positions; the
// paged, multi-sequence cache of DESIGN.md §3 replaces it in the KV layer. Prompts may be fed in
// micro-batches of any size: the result is the same as one shot.
//
// Thread-safety: a Model is immutable after load and may be shared; a Session is single-threaded.
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
#include "model/hparams.h"

namespace cw::model {

// A 2-D weight matrix [n_out, n_in] (GGUF shape {n_in, n_out}) of GGML type `type`, rows contiguous.
struct WeightRef {
  const uint8_t* data = nullptr;
  uint32_t type = 0;
  int64_t n_in = 0;
  int64_t n_out = 0;
};

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;
  WeightRef wq, wk, wv, wo, ffn_gate, ffn_up, ffn_down;
  std::vector<float> bq, bk, bv;  // empty unless the architecture has q/k/v biases
};

class Model {
 public:
  // Opens and validates a GGUF model. Errors: unknown architecture / tensor type (listing the supported
  // ones), missing tensors, wrong shapes, truncated file.
  static Result<std::unique_ptr<Model>> load(const std::string& path);
  static Result<std::unique_ptr<Model>> from_file(std::unique_ptr<gguf::File> file);

  const HParams& hparams() const { return hp_; }
  const gguf::File& file() const { return *file_; }
  const WeightRef& tok_embd() const { return tok_embd_; }
  const WeightRef& output() const { return output_; }  // == tok_embd when tied
  const std::vector<float>& output_norm() const { return output_norm_; }
  const std::vector<LayerWeights>& layers() const { return layers_; }
  const std::vector<float>& rope_freq_factors() const { return rope_freqs_; }  // empty when absent

 private:
  std::unique_ptr<gguf::File> file_;
  HParams hp_;
  WeightRef tok_embd_, output_;
  std::vector<float> output_norm_;
  std::vector<LayerWeights> layers_;
  std::vector<float> rope_freqs_;
};

// Precision of the KV cache. kF16 (default) stores K and V as fp16 and, like llama.cpp's CPU attention,
// rounds Q and the softmax probabilities to fp16 for the two attention products; kF32 keeps everything
// in fp32 (exact chunked-prefill invariance).
enum class KvType { kF16, kF32 };

class Session {
 public:
  // n_ctx: KV capacity in positions (1 .. 2^24); n_threads >= 1 (the caller's thread counts as one).
  // Out-of-range arguments are bugs (CW_CHECK): use create() for values a user controls.
  Session(const Model& model, int64_t n_ctx, KvType kv_type = KvType::kF16, int n_threads = 1);
  // Validates user-controlled sizes first: n_ctx in [1, 2^24], n_threads in [1, 1024], and a KV cache that
  // fits in 90% of this machine's physical memory (out_of_range, with the sizes in the message).
  static Result<std::unique_ptr<Session>> create(const Model& model, int64_t n_ctx, KvType kv_type = KvType::kF16,
                                                 int n_threads = 1);
  // Bytes of the KV cache for n_ctx positions.
  static uint64_t kv_bytes(const HParams& hp, int64_t n_ctx, KvType kv_type);

  // Appends `tokens` at positions n_past() .. and runs the forward pass. Writes logits to `logits`:
  // [n_tokens, n_vocab] when all_logits, else [n_vocab] for the last token. Errors: empty input, token id
  // out of range, context overflow (invalid_argument / out_of_range; the session is unchanged).
  Status eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>* logits);

  // The position of the first token of the next eval (default: n_past()). Lets tests run at a large
  // position offset without filling the cache; positions only affect RoPE.
  void set_position_offset(double offset) { pos_offset_ = offset; }

  int64_t n_past() const { return n_past_; }
  int64_t n_ctx() const { return n_ctx_; }
  void reset() { n_past_ = 0; }

 private:
  // Activations of one eval, sized for the largest batch seen (no allocation per token afterwards).
  struct Buffers {
    std::vector<float> x, h, q, k, v, attn, proj, gate, up, attn_scratch;
  };
  void ensure_buffers(int64_t n_tokens);
  void attention(int64_t layer, int64_t n_tokens);

  const Model& m_;
  int64_t n_ctx_;
  KvType kv_type_;
  int64_t n_past_ = 0;
  double pos_offset_ = 0;
  // [n_layer, n_ctx, n_head_kv * head_dim]; fp16 bit patterns or fp32 depending on kv_type_.
  std::vector<uint16_t> k16_, v16_;
  std::vector<float> k32_, v32_;
  ThreadPool pool_;
  kernels::MatmulScratch mm_scratch_;
  Buffers buf_;
  int64_t buf_tokens_ = 0;
};

}  // namespace cw::model
