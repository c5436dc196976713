// A loaded model: hyper-parameters plus weights bound in place to the GGUF mapping (zero copy; only the
// small norm vectors and biases are converted to fp32 at load).
//
// Session runs the forward pass (model/forward.h) of one sequence over a private KV cache of n_ctx
// positions (one block); the Engine runs the same Forward over a shared paged cache for many sequences.
// Prompts may be fed in micro-batches of any size: the result is the same as one shot.
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
#include "model/forward.h"
#include "model/kv_cache.h"
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

// Non-finite output. Forward::run checks every logits row it returns (one pass over n_vocab floats); on
// the first NaN/Inf it scans the weights once for the cause.
//
// The name of the first tensor (in file order) holding a NaN or an Inf, every row dequantized as the
// kernels read it; empty when every weight is finite (or of a type with no reference dequantizer). Reads
// the whole model: for the error path only.
std::string find_non_finite_tensor(const Model& m);
// kDataLoss: "the model's weights are corrupt: tensor 'NAME' holds NaN/Inf values" when
// find_non_finite_tensor() names one (pass its result), else "the logits became non-finite (NaN/Inf) at
// token position P" (`what` = "logits" or "hidden states").
Status non_finite_output_error(const std::string& bad_tensor, const char* what, int64_t position);

// Session: one sequence over a private contiguous KV cache of n_ctx positions (a KvCache of one block),
// the single-sequence path behind `run`, `perplexity` and `bench`. The Engine (runtime/) drives
// Forward directly over a shared paged cache for many sequences.
// Rewrites the keys of a paged sequence's slots [0, n) (block table `blocks`) at RoPE positions
// to_offset + s, re-rotated from the keys of the same slots in the blocks `origin` (written at positions
// from_offset + s): one exact rotation from the originals however often they move
// (kernels::rope_reposition_*: coefficients once per slot, applied to every layer). Values are untouched.
// Preconditions (CW_CHECK): both tables cover n slots of kv's blocks. `coeffs` is scratch.
void move_keys(const Model& m, KvCache& kv, std::span<const int32_t> origin, std::span<const int32_t> blocks, int64_t n,
               double from_offset, double to_offset, std::vector<float>* coeffs);
// Re-rotates the keys of slots [slot, slot + n) of block `block` by `delta` positions, every layer (a key at
// position p goes to p + delta; RoPE rotations compose, so the coefficients do not depend on p). Values are
// untouched. Preconditions (CW_CHECK): the rows lie within the block. `coeffs` is scratch.
void rotate_keys(const Model& m, KvCache& kv, int32_t block, int64_t slot, int64_t n, double delta,
                 std::vector<float>* coeffs);

class Session {
 public:
  // n_ctx: KV capacity in positions (1 .. 2^24); n_threads >= 1 (the caller's thread counts as one).
  // Out-of-range arguments are bugs (CW_CHECK): use create() for values a user controls. (Tests use this
  // constructor to run past the training context on purpose; create() applies the context rule.)
  Session(const Model& model, int64_t n_ctx, KvType kv_type = KvType::kF16, int n_threads = 1);
  // Validates user-controlled sizes first: n_ctx in [1, 2^24] and within the model's training context
  // (check_context_size, hparams.h), n_threads >= 1 (capped at the hardware's concurrency, cap_threads),
  // and a KV cache that fits in 90% of this machine's physical memory (out_of_range, with the sizes in
  // the message). The KV memory is committed as positions are used (kv_cache.h).
  static Result<std::unique_ptr<Session>> create(const Model& model, int64_t n_ctx, KvType kv_type = KvType::kF16,
                                                 int n_threads = 1);
  // Bytes of the KV cache for n_ctx positions.
  static uint64_t kv_bytes(const HParams& hp, int64_t n_ctx, KvType kv_type);

  // ---- Paged mode: the mechanisms a KV policy executor drives (runtime/kv_executor.h) ----
  // A session over a KvCache of n_blocks blocks of block_size slots, with its own block table (slot s in
  // table[s / block_size]) and free list: blocks are taken as slots are appended and released by
  // drop_slots. n_ctx() = n_blocks * block_size is the slot capacity. The training context is NOT checked
  // here (a policy keeps positions bounded; the executor applies its own rule). Errors (kOutOfRange):
  // n_blocks or block_size outside [1, 2^24], their product beyond 2^24, a cache larger than memory.
  static Result<std::unique_ptr<Session>> create_paged(const Model& model, int32_t n_blocks, int32_t block_size,
                                                       KvType kv_type = KvType::kF16, int n_threads = 1);
  bool paged() const { return paged_; }
  int32_t block_size() const { return kv_->shape().block_size; }
  // Blocks in the table now (paged mode).
  int64_t n_table_blocks() const { return static_cast<int64_t>(table_.size()); }
  // Slots [begin, begin + n) are removed: their blocks leave the table and return to the free list, later
  // slots move down by n; n_past() shrinks by n. Paged mode only; kInvalidArgument unless begin and n are
  // multiples of the block size and [begin, begin + n) lies within the table's blocks.
  Status drop_slots(int64_t begin, int64_t n);
  // Copies K and V of slots [src, src + n) to [dst, dst + n), every layer, through the block table
  // (dst < src or the ranges disjoint). Paged mode only; kInvalidArgument when a range leaves [0, n_past()).
  Status copy_slots(int64_t src, int64_t dst, int64_t n);
  // Rewrites the keys of slots [0, n) at RoPE positions [offset, offset + n), re-rotated from the keys as
  // they were when this was first called after a reset (that copy, n rows per layer, is kept in the
  // session, with their positions then: position_offset() + s), so a key is one rotation from its
  // original however often it moves (kernels::rope_reposition_*: coefficients once per slot, applied to
  // every layer). Values are untouched. Paged mode only; kInvalidArgument when n > n_past() or n differs
  // from the first call's n.
  Status move_first_keys(int64_t n, double offset);
  // Re-rotates the keys of slots [begin, begin + n) by `delta` positions, every layer (a key at position p
  // goes to p + delta; one rounding per call for f16 keys). Values are untouched. Paged mode only;
  // kInvalidArgument when the range leaves [0, n_past()).
  Status rotate_keys(int64_t begin, int64_t n, double delta);
  // Keeps slots [0, n) and discards the rest (paged mode: blocks past ceil(n / block_size) return to the
  // free list; kept sink keys are forgotten when n is below their count). kInvalidArgument when n is
  // outside [0, n_past()].
  Status truncate(int64_t n);
  double position_offset() const { return pos_offset_; }

  // Appends `tokens` at positions n_past() .. and runs the forward pass. Writes logits to `logits`:
  // [n_tokens, n_vocab] when all_logits, else [n_vocab] for the last token. Errors: empty input, token id
  // out of range, context overflow (invalid_argument / out_of_range; the session is unchanged), and
  // non-finite logits (kDataLoss naming the corrupt weight tensor, see Forward::run; n_past() unchanged).
  Status eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>* logits);
  // Appends `tokens` and writes their KV without computing any logits (recomputing a range of the cache).
  Status fill(std::span<const int32_t> tokens);
  // Like eval, but returns the final-normed hidden states [n_tokens, n_embd] of every token (the input of
  // the output projection; what an embedder pools) and skips the output matmul.
  Status eval_hidden(std::span<const int32_t> tokens, std::vector<float>* hidden);

  // Added to every cache slot to get its RoPE position (default 0: position = slot). Lets tests run at a
  // large position offset without filling the cache; positions only affect RoPE.
  void set_position_offset(double offset) { pos_offset_ = offset; }

  // Chunk-selective attention for the rows this session runs from now on (paged mode; forward.h
  // ChunkSelect; span 0 = off, the default). The caller validates the parameters (kv::HeadSelection).
  void set_chunk_select(const ChunkSelect& select) { select_ = select; }
  // Observation (paged mode; BatchSeq::observe_rows): the next evals add the attention of their last `rows`
  // rows into *mass, one entry per `unit` slots (0: per block; at least one entry per unit of the table's
  // slots, else nothing is observed; the caller zeroes it). rows 0: off.
  void set_observation(int64_t rows, std::vector<float>* mass, int64_t unit = 0) {
    observe_rows_ = rows;
    observe_unit_ = unit;
    observe_mass_ = mass;
  }

  // See Forward::set_batch_invariant: every matmul on the multi-row path, so results match the Engine's
  // batch-invariant mode bit for bit whatever the chunking.
  void set_batch_invariant(bool on) { fwd_.set_batch_invariant(on); }

  int64_t n_past() const { return n_past_; }
  int64_t n_ctx() const { return n_ctx_; }
  const Model& model() const { return m_; }
  // Empties the sequence (paged mode: every block returns to the free list, the kept sink keys are
  // forgotten; the position offset is kept: set it as needed).
  void reset();

 private:
  Status run(std::span<const int32_t> tokens, OutputMode mode, std::vector<float>* logits, std::vector<float>* hidden);

  const Model& m_;
  int64_t n_ctx_;
  int64_t n_past_ = 0;
  double pos_offset_ = 0;  // RoPE position = pos_offset_ + slot
  ChunkSelect select_;     // span 0: off
  int64_t observe_rows_ = 0, observe_unit_ = 0;
  std::vector<float>* observe_mass_ = nullptr;
  std::unique_ptr<KvCache> kv_;
  Forward fwd_;
  Batch batch_;
  static constexpr int32_t kBlockTable[1] = {0};
  // Paged mode.
  bool paged_ = false;
  std::vector<int32_t> table_;       // the sequence's blocks, in slot order
  std::vector<int32_t> free_;        // free blocks (taken from the back)
  std::vector<uint8_t> first_keys_;  // move_first_keys: [n_layer, n, kv_dim] keys as first moved
  int64_t first_keys_n_ = 0;
  double first_keys_offset_ = 0;     // their position offset then
  std::vector<float> coeffs_;
  // Row of slot `slot` of layer `layer` (paged mode; the slot's block is in the table).
  uint8_t* k_row(int64_t layer, int64_t slot);
  uint8_t* v_row(int64_t layer, int64_t slot);

  struct Created {};
  Session(const Model& model, int64_t n_ctx, std::unique_ptr<KvCache> kv, int n_threads, Created);
};

}  // namespace cw::model
