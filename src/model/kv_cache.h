// KvCache: the K and V tensors of a paged KV cache — n_blocks blocks of block_size token slots, for every
// layer. Which block belongs to which sequence is the business of kv::BlockManager (bookkeeping only);
// this class only owns the bytes and copies blocks when the block manager asks for copy-on-write.
//
// Layout: K and V each [n_layer, n_blocks, block_size, kv_dim] (kv_dim = n_head_kv * head_dim), so one
// block of one layer is contiguous. Keys are stored after RoPE at their position. Element type fp16 bits
// (KvType::kF16, the default) or fp32 (KvType::kF32).
//
// Memory follows use: K and V live in one anonymous private mapping reserved for the whole capacity
// without committing it (MAP_NORESERVE); a page costs physical memory only when a slot on it is first
// written, and reads of never-written slots see zeros. So a cache sized for a long context costs what its
// sequences actually hold (a 3-token prompt under a 16M-position cache touches a few pages per layer).
// The capacity is still validated against physical memory (check_fits), since the sequences may fill it.
//
// Thread-safety: none; the owner (a Session or the Engine's step loop) serializes access.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/status.h"
#include "model/hparams.h"

namespace cw::model {

// Precision of the KV cache. kF16 (default) stores K and V as fp16 and, like llama.cpp's CPU attention,
// rounds Q and the softmax probabilities to fp16 for the two attention products; kF32 keeps everything
// in fp32 (exact chunked-prefill invariance).
enum class KvType { kF16, kF32 };

struct KvShape {
  int64_t n_layer = 0;
  int64_t kv_dim = 0;  // n_head_kv * head_dim
  int32_t n_blocks = 0;
  int32_t block_size = 0;
  KvType type = KvType::kF16;

  static KvShape for_model(const HParams& hp, int32_t n_blocks, int32_t block_size, KvType type) {
    return {hp.n_layer, hp.n_head_kv * hp.head_dim, n_blocks, block_size, type};
  }
  int64_t element_bytes() const { return type == KvType::kF16 ? 2 : 4; }
  // Bytes of K + V of one block over all layers.
  uint64_t block_bytes() const {
    return 2ull * static_cast<uint64_t>(n_layer * block_size * kv_dim * element_bytes());
  }
  uint64_t total_bytes() const { return block_bytes() * static_cast<uint64_t>(n_blocks); }
};

class KvCache {
 public:
  // Precondition (CW_CHECK): every dimension > 0 and the address space can be reserved (use create() for
  // sizes a user controls). Memory reads as zeros until written.
  explicit KvCache(const KvShape& shape);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;
  // Validated: dimensions > 0 and the total fits in 90% of physical memory (kOutOfRange naming the sizes);
  // a reservation the system refuses -> kResourceExhausted. Never aborts.
  static Result<std::unique_ptr<KvCache>> create(const KvShape& shape);
  // The validation of create() without allocating.
  static Status check_fits(const KvShape& shape);
  // The largest number of blocks whose K+V fit in `bytes` (0 when not even one fits).
  static int32_t blocks_for_bytes(const KvShape& per_block_shape, uint64_t bytes);

  const KvShape& shape() const { return shape_; }
  // Start of block `block` of layer `layer`: block_size * kv_dim elements (uint16_t fp16 bits or float).
  void* k_block(int64_t layer, int32_t block);
  void* v_block(int64_t layer, int32_t block);
  const void* k_block(int64_t layer, int32_t block) const;
  const void* v_block(int64_t layer, int32_t block) const;
  // Copies every slot of block src into block dst, all layers, K and V (copy-on-write).
  void copy_block(int32_t src, int32_t dst);
  // Copies K and V of n slots starting at slot src_slot of block src to dst_slot of block dst, all layers
  // (slot + n within the block on both sides; memmove: overlapping rows of one block are fine).
  void copy_rows(int32_t src, int32_t src_slot, int32_t dst, int32_t dst_slot, int32_t n);

  // ---- Key summaries (chunk-selective attention, model::ChunkSelect) ----
  // Per layer and block, the element-wise minimum and maximum of the block's keys *before* RoPE
  // ([kv_dim] each), from which a query bounds the scores of every key of the block (Quest's bound,
  // position-free). Kept only once enabled (the forward pass enables them for a sequence that selects);
  // the forward pass resets a block's summary when it writes the block's first slot and widens it with
  // every later row. copy_block copies summaries; copy_rows widens the destination's with the source's
  // (still a bound). Memory: 2 * kv_dim floats per block and layer (an eighth of an fp16 block of 16).
  void enable_key_summaries();
  bool has_key_summaries() const { return !summaries_.empty(); }
  // [2, kv_dim] floats: min then max.
  float* key_summary(int64_t layer, int32_t block);
  const float* key_summary(int64_t layer, int32_t block) const;
  // Whether the block's summary covers its keys: its first slot was written after summaries were enabled
  // (a block filled before, e.g. a cached prefix, has none: a selection must treat it as unknown).
  bool summary_valid(int32_t block) const { return summary_valid_[static_cast<size_t>(block)] != 0; }
  void set_summary_valid(int32_t block, bool valid) { summary_valid_[static_cast<size_t>(block)] = valid ? 1 : 0; }

 private:
  struct Reserved {};
  KvCache(const KvShape& shape, Reserved, uint8_t* base);
  // Reserves total_bytes() of zero pages; nullptr when the system refuses.
  static uint8_t* reserve(const KvShape& shape);
  size_t offset(int64_t layer, int32_t block) const;
  KvShape shape_;
  uint8_t* base_ = nullptr;  // the mapping: K = [0, total / 2), V = [total / 2, total)
  uint8_t* k_ = nullptr;
  uint8_t* v_ = nullptr;
  std::vector<float> summaries_;  // [n_layer, n_blocks, 2, kv_dim] once enabled
  std::vector<uint8_t> summary_valid_;  // [n_blocks]
};

}  // namespace cw::model
