// Forward: the forward pass of a llama-family decoder over a batch that mixes several sequences, each
// with its own slots in a paged KvCache (DESIGN.md §3). Matmuls see all rows of the batch at once (the
// point of batching); attention is per sequence over that sequence's blocks, causal.
//
// A batch row is one token of one sequence. For sequence s with rows [first, first + count):
//   row first + i has cache slot n_past + i, stored in block block_table[slot / block_size] at
//   offset slot % block_size, RoPE position pos_offset + n_past + i, and attends to slots [0, n_past + i].
// The caller (Session, Engine) owns the block tables and must have copied shared blocks (copy-on-write)
// before calling. Results do not depend on how a prompt is split into batches beyond float rounding of
// the matmul paths (the chunked-prefill tests bound it).
//
// Batch invariance. A matmul over several rows (the prefill path) computes each row in an order that does
// not depend on the other rows (tested bit for bit in kernels/cpu/matmul_test.cc); a one-row matmul takes
// the GEMV path, whose fp32 order differs for quantized weight types (F32/F16/BF16: identical). So by
// default a decode step's logits can depend, in the last bits, on how many rows share its batch. With
// set_batch_invariant(true) every matmul takes the multi-row path, also for one row: a sequence's results
// are then bit-identical whatever shares its batch and however its prompt was chunked (Sessions and the
// Engine in this mode agree exactly). The price: one-row matmuls repack the weights they read (slower
// single-stream decoding).
//
// Thread-safety: a Forward is single-threaded (it owns a thread pool it fans work out to); the Model
// may be shared by many Forwards.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "kernels/cpu/matmul.h"
#include "model/kv_cache.h"

namespace cw::model {

class Model;

enum class OutputMode : uint8_t { kNone, kLast, kAll };

// Chunk-selective attention (LongHeads-style; kv::HeadSelection is the policy side, docs/design/kv_layout.md
// "Chunk-selective attention"). A row whose causal span [0, n_kv) is longer than `span` slots does not see
// all of it: per KV head, it sees
//   - the sinks: slots [0, sinks) rounded up to whole blocks,
//   - up to top_k blocks picked by score, each with `expand` neighbour blocks on either side,
//   - the local window: from `local` slots before the first row of its row group (rounded down to a block
//     boundary) to itself,
// at most `span` slots in all, packed: the visible runs are given consecutive positions in slot order, so
// the row sees no position difference above span (its trained length when span <= n_ctx_train). Keys are
// stored rotated at their own positions; a run moved closer by d positions is read through a copy of its
// keys rotated by -d (exact fp32 angles; fp16 caches round the copy once).
// Scores: the Quest bound of a block, max over the KV head's query heads of sum_j max(q'_j min_j, q'_j max_j),
// with the block's min / max of pre-RoPE keys (KvCache key summaries) and q' the query rotated as if the block
// sat just before the local window. `group` consecutive rows of a sequence share one selection, made from
// the group's last row (groups are counted back from the sequence's last row in the batch). A group whose
// last row's span fits attends exactly as without selection (bit for bit); a group that straddles the span
// selects for all its rows.
struct ChunkSelect {
  int64_t span = 0;   // >= sinks (rounded up) + local + group + one block (kv::HeadSelection validates)
  int64_t sinks = 0;
  int64_t local = 0;
  int64_t top_k = 0;
  int64_t expand = 0;
  int64_t group = 1;
};

struct BatchSeq {
  std::span<const int32_t> block_table;  // blocks of this sequence covering slots [0, n_past + count)
  int64_t n_past = 0;                    // slots already filled before this batch
  int64_t first = 0;                     // first row of this sequence in Batch::tokens
  int64_t count = 0;                     // rows (>= 1)
  double pos_offset = 0;                 // added to the slot index to get the RoPE position
  OutputMode output = OutputMode::kLast;
  const ChunkSelect* select = nullptr;   // chunk-selective attention, or nullptr: every row sees [0, n_kv)
  // Observation (kv::PolicyState::observe_rows): the softmax weights of the last `observe_rows` rows of this
  // sequence, summed over query heads and layers, are added to block_mass[slot / mass_unit] (mass_unit 0:
  // the block size; the caller sizes it to the table's slots / mass_unit, rounded up, and zeroes it). Full
  // attention over [0, n_kv) of each row.
  int64_t observe_rows = 0;
  float* block_mass = nullptr;
  int64_t mass_unit = 0;
};

struct Batch {
  std::vector<int32_t> tokens;  // [n_tokens]
  std::vector<BatchSeq> seqs;   // rows of different seqs must not overlap; together they cover tokens
};

class Forward {
 public:
  // n_threads >= 1 (CW_CHECK; the caller's thread counts as one).
  Forward(const Model& model, int n_threads);
  ~Forward();

  // Runs the batch, writing K/V of every row into `kv` and, per sequence in order, the requested output
  // rows: logits [rows, n_vocab] into *logits and, when `hidden` is non-null, the final-normed hidden
  // states [rows, n_embd] into *hidden (logits may be null to skip the output matmul).
  // Errors (nothing is computed): empty batch, token id out of range, bad row ranges, a block table too
  // short for n_past + count or naming a block outside the cache, kv shape not matching the model.
  // After computing: a returned logits (or hidden) row holding a NaN/Inf -> kDataLoss naming the first
  // weight tensor with a NaN/Inf (model::find_non_finite_tensor, scanned once per Forward) or else the
  // token position of the first bad row; the K/V of the batch were written. The check costs one pass
  // over the returned rows.
  Status run(const Batch& batch, KvCache& kv, std::vector<float>* logits, std::vector<float>* hidden = nullptr);

  void set_batch_invariant(bool on) { batch_invariant_ = on; }
  bool batch_invariant() const { return batch_invariant_; }
  const Model& model() const { return m_; }
  int n_threads() const { return pool_.size(); }

 private:
  struct Buffers {
    std::vector<float> x, h, q, k, v, attn, proj, gate, up, attn_scratch;
    std::vector<float> k_raw;  // [n_tokens, kv_dim]: keys before RoPE (only when a sequence selects)
    std::vector<float> rope;  // [n_tokens, n_rot]: each row's rope angles (kernels::rope_angles)
  };
  void ensure_buffers(int64_t n_tokens, int64_t max_kv);
  void plan_attention_tiles(const Batch& batch, bool f16);
  // k_ptrs_ / v_ptrs_: every sequence's blocks of `layer` in slot order (seq_ptr_off_: each one's first).
  void gather_block_pointers(const Batch& batch, KvCache& kv, int64_t layer);
  void attention(const Batch& batch, KvCache& kv, int64_t layer);
  // Chunk-selective attention for a batch where some sequence selects (model/chunk_select.cc).
  void attention_selective(const Batch& batch, KvCache& kv, int64_t layer);
  // Adds the observed rows' attention per block (BatchSeq::observe_rows; model/observe.cc).
  void observe_attention(const Batch& batch, const KvCache& kv, int64_t layer);
  std::vector<float> observe_scores_, observe_key_;
  // Widens the key summaries of the blocks the batch wrote (raw keys in buf_.k_raw).
  void update_key_summaries(const Batch& batch, KvCache& kv, int64_t layer);
  // fn(t) for every row t: on the pool when there are enough rows to pay for a dispatch, else inline.
  template <typename Fn>
  void for_rows(int64_t n, Fn&& fn);

  const Model& m_;
  ThreadPool pool_;
  kernels::MatmulScratch mm_scratch_;
  Buffers buf_;
  int64_t buf_tokens_ = 0, buf_kv_ = 0;
  std::vector<int64_t> row_seq_;                // [n_tokens] -> index into batch.seqs
  std::vector<uint8_t> row_covered_;            // validation scratch
  bool batch_invariant_ = false;
  bool selecting_ = false;                      // some sequence of the current batch has a ChunkSelect
  bool summarizing_ = false;                    // the cache keeps key summaries: every row updates them
  std::vector<const void*> k_ptrs_, v_ptrs_;     // per (seq, block) pointers of the current layer
  std::vector<int64_t> seq_ptr_off_;            // per seq: first index into k_ptrs_/v_ptrs_
  std::vector<std::pair<int64_t, int64_t>> tiles_;  // attention work: (first row, rows) of one sequence
  // Chunk-selective attention: work units (rows [first, end) of one sequence, one KV head) and per-thread
  // scratch (model/chunk_select.cc).
  struct SelectUnit {
    int64_t first = 0, end = 0, kvh = 0, cost = 0;
  };
  struct SelectScratch {
    std::vector<float> scores, q, cs;
    std::vector<uint8_t> keys;  // rotated key copies: [visible blocks, block_size, kv_dim] elements
    std::vector<const void*> k, v;
    std::vector<int64_t> order, blocks;
    std::vector<uint8_t> mark;
  };
  std::vector<SelectUnit> select_units_;
  std::vector<SelectScratch> select_scratch_;  // one per thread
  // The first non-finite output row: its error (the weights are scanned on the first occurrence only).
  Status non_finite_error(const Batch& batch, const float* rows, int64_t n_rows, int64_t width, const char* what);
  bool weights_scanned_ = false;
  std::string bad_tensor_;  // find_non_finite_tensor's answer once scanned
};

}  // namespace cw::model
