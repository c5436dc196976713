// BlockManager: the block accounting of the paged KV cache (bookkeeping only; no tensors).
//
// The KV pool is `n_blocks` blocks of `block_size` token slots. A sequence owns a block table: block j holds
// its tokens [j*block_size, (j+1)*block_size). Every block is in exactly one state:
//   free        ref == 0, no content, on the free list;
//   cached      ref == 0, full, registered in the prefix index, on the LRU list (reusable, evictable);
//   referenced  ref >= 1, in the block table of `ref` sequences.
//
// Prefix index. When a block becomes full its chain hash is computed, hash(parent block hash, token ids),
// and the block is registered under it unless that hash is already registered (first wins; the later block
// stays a private, unregistered duplicate and goes straight back to free when released). match_prefix()
// walks the chain over the full blocks of a prompt. A candidate is reused only after verification: its
// stored token ids must equal the prompt's, and its parent must be exactly the block matched one level
// up (each full block gets a never-reused content id; a block stores its parent's), so a hash collision
// can never give wrong reuse — by induction the whole prefix content is equal, not just its hash.
// The price: a cached block whose parent was evicted is unreachable (even if an identical parent is later
// re-registered) until LRU evicts it; tail-first release below makes that rare.
//
// Allocation takes a free block, else evicts the least-recently-used cached block (unregistering it). If
// neither exists, append_tokens() fails with kResourceExhausted and changes nothing (no partial append).
// Released blocks enter the LRU list last block of a sequence first, so a sequence's tail is evicted before
// its head (heads are the prefixes other requests share).
//
// Copy-on-write rule. Only full, registered blocks are ever shared, and a block is written only at slots
// past the writing sequence's own length. Writing into a block that is full (registered) or has ref > 1
// therefore first copies it to a fresh private block. This happens in exactly one situation:
// match_prefix() always leaves at least one prompt token to compute (the forward needs it for logits), so
// when a prompt is entirely cached (its length a multiple of block_size), the sequence attaches all the
// matched blocks but its length is prompt.size() - 1: it ends one slot short of the end of a shared full
// block. The next append_tokens() (the last prompt token) copies that block (src -> dst), replaces it in
// the table and writes into the copy. The cached original is never modified. Copies are queued as
// (src, dst) pairs; the runtime drains them with take_pending_copies() and must apply them to the KV
// tensors, in order, before the next forward that writes any block. A queued copy whose dst goes back to
// the free list (its sequence freed first) is dropped.
//
// Ownership: a BlockManager owns only ids and bookkeeping. Thread-safety: none; one owner (the scheduler)
// calls it, or callers synchronize externally. Failure: ids and tokens a caller passes are checked and
// reported as Status (unknown / non-empty sequence -> kInvalidArgument or kNotFound; pool full ->
// kResourceExhausted); free_sequence() / block_table() / n_tokens() on an unknown id are bugs (CW_CHECK).
#pragma once

#include <cstdint>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

#include "base/status.h"

namespace cw::kv {

using SeqId = int32_t;

// Chain hash of one full block: parent is the previous block's hash (kRootHash for the first block).
using BlockHashFn = uint64_t (*)(uint64_t parent, std::span<const int32_t> tokens);
inline constexpr uint64_t kRootHash = 0x6a09e667f3bcc908ull;
uint64_t default_block_hash(uint64_t parent, std::span<const int32_t> tokens);

// A pending KV copy: copy every slot of block `src` into block `dst`.
struct BlockCopy {
  int32_t src = -1;
  int32_t dst = -1;
  bool operator==(const BlockCopy&) const = default;
};

class BlockManager {
 public:
  // Validated construction: kInvalidArgument unless n_blocks > 0 and block_size > 0. `hash` may be
  // replaced (tests inject weak hashes to force collisions); it must be deterministic.
  static Result<BlockManager> create(int32_t n_blocks, int32_t block_size,
                                     BlockHashFn hash = &default_block_hash);
  // Precondition (CW_CHECK): n_blocks > 0, block_size > 0. Use create() for unvalidated config.
  BlockManager(int32_t n_blocks, int32_t block_size, BlockHashFn hash = &default_block_hash);

  // A new, empty sequence. Ids are never reused. kResourceExhausted when the id space is used up.
  Result<SeqId> add_sequence();

  // Appends `tokens` to the sequence, allocating (and evicting) blocks as needed, copying a shared
  // block first if it would be written (see the copy-on-write rule above). On any error nothing changes.
  // Errors: kNotFound (unknown seq), kResourceExhausted (not enough free + cached blocks).
  Status append_tokens(SeqId seq, std::span<const int32_t> tokens);

  // For a new, empty sequence: attaches every cached block of the verified hash chain over the full
  // blocks of `prompt` (ref++) and returns the number of cached tokens now in the sequence:
  // min(matched_blocks * block_size, prompt.size() - 1), or 0. With block_size 1 a fully cached prompt
  // keeps all but its last block (nothing to copy). The caller then appends prompt[result..]. Errors: kNotFound (unknown seq), kInvalidArgument (sequence not empty).
  Result<int32_t> match_prefix(SeqId seq, std::span<const int32_t> prompt);

  // Releases the sequence: ref-- on each block; blocks reaching 0 become cached if registered, else free.
  void free_sequence(SeqId seq);

  // The sequence's block ids, in token order. Valid until the next mutating call.
  std::span<const int32_t> block_table(SeqId seq) const;
  int64_t n_tokens(SeqId seq) const;
  bool has_sequence(SeqId seq) const { return seqs_.count(seq) != 0; }

  // --- Sequences under an acting KV policy (docs/design/kv_layout.md). Slots are the sequence's KV rows;
  // after a policy's first action they no longer hold a prefix of one token stream at its own positions.
  // Marks the sequence detached: blocks it fills from now on are never registered for prefix reuse (the
  // blocks it already holds keep their registration: their content does not change unless written, and
  // writes go through make_writable). kNotFound for an unknown sequence.
  Status detach(SeqId seq);
  // Removes table blocks [first, first + n) (their slots; later slots move down) and releases them.
  // kInvalidArgument when the range leaves the table.
  Status drop_blocks(SeqId seq, int64_t first, int64_t n);
  // Keeps slots [0, n_tokens), releasing the blocks past them (a kept partial block is made writable
  // first). kInvalidArgument when n_tokens is outside [0, n_tokens(seq)].
  Status truncate(SeqId seq, int64_t n_tokens);
  // Makes table block j safe to write in place: a shared (ref > 1) or registered block is replaced by a
  // private copy (a queued BlockCopy); the original keeps its other references or stays cached.
  // kResourceExhausted (nothing changed) when no block can be allocated.
  Status make_writable(SeqId seq, int64_t j);
  // Slots [dst, dst + n) take the token ids of [src, src + n) (the caller copies the K/V rows); the
  // destination blocks are made writable first. kInvalidArgument for ranges outside the sequence.
  Status copy_slots(SeqId seq, int64_t src, int64_t dst, int64_t n);
  // Allocates one private block per table block [0, n) holding a copy of it (queued BlockCopy), kept by
  // the sequence outside its table until it is freed: the keys as first written of slots a policy
  // re-rotates (attention sinks). Once per sequence (kInvalidArgument when it already holds some).
  Status hold_copies(SeqId seq, int64_t n);
  // The blocks hold_copies() took, in table order (empty if none).
  std::span<const int32_t> held_blocks(SeqId seq) const;

  // Drains the queued (src, dst) copies, in the order they arose.
  std::vector<BlockCopy> take_pending_copies();

  // The token ids written into a block so far (full blocks: block_size of them; free blocks: none).
  std::span<const int32_t> block_tokens(int32_t block) const;
  int32_t ref_count(int32_t block) const;

  int32_t n_blocks() const { return static_cast<int32_t>(blocks_.size()); }
  int32_t block_size() const { return block_size_; }
  int32_t n_free_blocks() const { return static_cast<int32_t>(free_.size()); }
  int32_t n_cached_blocks() const { return static_cast<int32_t>(lru_.size()); }
  // Blocks an allocation can obtain now: free + cached (evictable).
  int32_t n_available_blocks() const { return n_free_blocks() + n_cached_blocks(); }
  // Cached blocks in eviction order (least recently used first).
  std::vector<int32_t> lru_order() const { return {lru_.begin(), lru_.end()}; }

  // Verifies every accounting invariant (states partition the pool, ref counts equal table occurrences,
  // index <-> registered blocks, table shapes). kInternal naming the first violation. O(pool + tokens).
  Status check_invariants() const;

 private:
  struct Block {
    int32_t ref = 0;
    std::vector<int32_t> tokens;  // written slots, in order
    bool full = false;            // tokens.size() == block_size and hash/uid set
    bool registered = false;      // the prefix index maps `hash` to this block
    uint64_t hash = 0;
    uint64_t uid = 0;             // content id of a full block (unique, never reused); 0 = none
    uint64_t parent_uid = 0;      // uid of the previous block of the sequence that filled it; 0 = first
    bool in_lru = false;
    std::list<int32_t>::iterator lru_pos;
  };
  struct Sequence {
    std::vector<int32_t> table;
    int64_t n_tokens = 0;
    bool detached = false;       // see detach()
    std::vector<int32_t> held;   // see hold_copies()
  };
  Sequence* find(SeqId seq);
  // A private copy of block `src` (tokens and flags, never registered), with its BlockCopy queued.
  int32_t copy_of(int32_t src);

  // Takes a free block, else evicts the LRU cached block. Precondition: n_available_blocks() > 0.
  int32_t allocate();
  // ref reached 0: to the LRU list if registered, else cleared and freed.
  void release(int32_t id);
  void clear_block(Block& b);
  // Marks a just-filled block full: computes its hash and uid, registers it if the hash is unclaimed.
  void seal(int32_t id, const Block* parent, bool detached);

  int32_t block_size_;
  BlockHashFn hash_;
  std::vector<Block> blocks_;
  std::vector<int32_t> free_;  // stack; back() is allocated next
  std::list<int32_t> lru_;     // front = least recently used
  std::unordered_map<uint64_t, int32_t> index_;
  std::unordered_map<SeqId, Sequence> seqs_;
  std::vector<BlockCopy> pending_copies_;
  SeqId next_seq_ = 0;
  uint64_t next_uid_ = 1;
};

}  // namespace cw::kv
