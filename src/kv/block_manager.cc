#include "kv/block_manager.h"

#include <algorithm>
#include <limits>
#include <string>
#include <unordered_set>

namespace cw::kv {
namespace {

uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

Status violation(const std::string& m) { return internal_error("block manager invariant: " + m); }

}  // namespace

uint64_t default_block_hash(uint64_t parent, std::span<const int32_t> tokens) {
  uint64_t h = mix64(parent ^ 0x9e3779b97f4a7c15ull);
  for (int32_t t : tokens) h = mix64(h + static_cast<uint32_t>(t) + 0x9e3779b97f4a7c15ull);
  return mix64(h ^ tokens.size());
}

Result<BlockManager> BlockManager::create(int32_t n_blocks, int32_t block_size, BlockHashFn hash) {
  if (n_blocks <= 0) return invalid_argument("kv: n_blocks must be > 0, got " + std::to_string(n_blocks));
  if (block_size <= 0) {
    return invalid_argument("kv: block_size must be > 0, got " + std::to_string(block_size));
  }
  if (hash == nullptr) return invalid_argument("kv: block hash function is null");
  return BlockManager(n_blocks, block_size, hash);
}

BlockManager::BlockManager(int32_t n_blocks, int32_t block_size, BlockHashFn hash)
    : block_size_(block_size), hash_(hash) {
  CW_CHECK(n_blocks > 0);
  CW_CHECK(block_size > 0);
  CW_CHECK(hash != nullptr);
  blocks_.resize(static_cast<size_t>(n_blocks));
  free_.reserve(static_cast<size_t>(n_blocks));
  for (int32_t i = n_blocks - 1; i >= 0; --i) free_.push_back(i);  // block 0 is handed out first
}

Result<SeqId> BlockManager::add_sequence() {
  if (next_seq_ == std::numeric_limits<SeqId>::max()) return resource_exhausted("kv: sequence ids used up");
  const SeqId id = next_seq_++;
  seqs_.emplace(id, Sequence{});
  return id;
}

void BlockManager::clear_block(Block& b) {
  b.tokens.clear();
  b.full = false;
  b.registered = false;
  b.hash = 0;
  b.uid = 0;
  b.parent_uid = 0;
}

int32_t BlockManager::allocate() {
  int32_t id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else {
    CW_CHECK(!lru_.empty());
    id = lru_.front();
    lru_.pop_front();
    Block& b = blocks_[static_cast<size_t>(id)];
    b.in_lru = false;
    CW_CHECK(b.registered);
    auto it = index_.find(b.hash);
    CW_CHECK(it != index_.end() && it->second == id);
    index_.erase(it);
    clear_block(b);
  }
  Block& b = blocks_[static_cast<size_t>(id)];
  CW_CHECK(b.ref == 0 && b.tokens.empty());
  b.ref = 1;
  return id;
}

void BlockManager::release(int32_t id) {
  Block& b = blocks_[static_cast<size_t>(id)];
  CW_CHECK(b.ref == 0 && !b.in_lru);
  if (b.registered) {
    b.lru_pos = lru_.insert(lru_.end(), id);
    b.in_lru = true;
  } else {
    clear_block(b);
    free_.push_back(id);
    std::erase_if(pending_copies_, [id](const BlockCopy& c) { return c.dst == id; });
  }
}

void BlockManager::seal(int32_t id, const Block* parent, bool detached) {
  Block& b = blocks_[static_cast<size_t>(id)];
  CW_CHECK(static_cast<int32_t>(b.tokens.size()) == block_size_ && !b.full);
  b.full = true;
  b.uid = next_uid_++;
  if (detached) return;  // not a prefix of one token stream: never matched
  b.hash = hash_(parent ? parent->hash : kRootHash, b.tokens);
  b.parent_uid = parent ? parent->uid : 0;
  if (index_.emplace(b.hash, id).second) b.registered = true;
}

Status BlockManager::append_tokens(SeqId seq_id, std::span<const int32_t> tokens) {
  auto sit = seqs_.find(seq_id);
  if (sit == seqs_.end()) return not_found("kv: unknown sequence " + std::to_string(seq_id));
  Sequence& seq = sit->second;
  if (tokens.empty()) return Status::ok();

  // Plan first, so that a failure changes nothing.
  const int64_t used_in_last = seq.n_tokens % block_size_;  // slots of the last block this seq uses
  int64_t room = 0;
  bool cow = false;
  if (used_in_last != 0) {
    const Block& last = blocks_[static_cast<size_t>(seq.table.back())];
    cow = last.ref > 1 || last.full;
    room = block_size_ - used_in_last;
  }
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t new_blocks = n > room ? (n - room + block_size_ - 1) / block_size_ : 0;
  const int64_t needed = new_blocks + (cow ? 1 : 0);
  if (needed > n_available_blocks()) {
    return resource_exhausted("kv: appending " + std::to_string(n) + " tokens needs " + std::to_string(needed) +
                              " blocks, " + std::to_string(n_available_blocks()) + " available");
  }

  int32_t cow_src = -1;
  if (cow) {
    cow_src = seq.table.back();
    const int32_t dst = allocate();
    const Block& src = blocks_[static_cast<size_t>(cow_src)];
    blocks_[static_cast<size_t>(dst)].tokens.assign(src.tokens.begin(), src.tokens.begin() + used_in_last);
    seq.table.back() = dst;
    pending_copies_.push_back({cow_src, dst});
  }
  for (int32_t t : tokens) {
    if (seq.n_tokens % block_size_ == 0) seq.table.push_back(allocate());
    const int32_t id = seq.table.back();
    Block& b = blocks_[static_cast<size_t>(id)];
    CW_CHECK(b.ref == 1 && !b.full && static_cast<int64_t>(b.tokens.size()) == seq.n_tokens % block_size_);
    b.tokens.push_back(t);
    ++seq.n_tokens;
    if (static_cast<int32_t>(b.tokens.size()) == block_size_) {
      const Block* parent =
          seq.table.size() >= 2 ? &blocks_[static_cast<size_t>(seq.table[seq.table.size() - 2])] : nullptr;
      seal(id, parent, seq.detached);
    }
  }
  // The copy source leaves this table only now, so the allocations above could not evict it.
  if (cow_src >= 0) {
    Block& src = blocks_[static_cast<size_t>(cow_src)];
    if (--src.ref == 0) release(cow_src);
  }
  return Status::ok();
}

Result<int32_t> BlockManager::match_prefix(SeqId seq_id, std::span<const int32_t> prompt) {
  auto sit = seqs_.find(seq_id);
  if (sit == seqs_.end()) return not_found("kv: unknown sequence " + std::to_string(seq_id));
  Sequence& seq = sit->second;
  if (seq.n_tokens != 0 || !seq.table.empty()) {
    return invalid_argument("kv: match_prefix needs an empty sequence; " + std::to_string(seq_id) + " has " +
                            std::to_string(seq.n_tokens) + " tokens");
  }
  const size_t bs = static_cast<size_t>(block_size_);
  const size_t n_full = prompt.size() / bs;
  uint64_t parent_hash = kRootHash;
  uint64_t parent_uid = 0;
  std::vector<int32_t> matched;
  for (size_t k = 0; k < n_full; ++k) {
    const std::span<const int32_t> chunk = prompt.subspan(k * bs, bs);
    const uint64_t h = hash_(parent_hash, chunk);
    auto it = index_.find(h);
    if (it == index_.end()) break;
    const Block& c = blocks_[static_cast<size_t>(it->second)];
    // Verify: a hash hit is only a candidate.
    if (c.parent_uid != parent_uid || !std::equal(c.tokens.begin(), c.tokens.end(), chunk.begin(), chunk.end())) {
      break;
    }
    matched.push_back(it->second);
    parent_hash = h;
    parent_uid = c.uid;
  }
  // Leave at least one prompt token to compute; keep only the blocks that the remaining length uses
  // (with block_size 1 that drops the last matched block; otherwise it ends inside the last one).
  int64_t cached = static_cast<int64_t>(matched.size()) * block_size_;
  if (cached > 0 && cached == static_cast<int64_t>(prompt.size())) --cached;
  matched.resize(static_cast<size_t>((cached + block_size_ - 1) / block_size_));
  for (int32_t id : matched) {
    Block& b = blocks_[static_cast<size_t>(id)];
    if (b.ref == 0) {
      CW_CHECK(b.in_lru);
      lru_.erase(b.lru_pos);
      b.in_lru = false;
    }
    ++b.ref;
  }
  seq.table = std::move(matched);
  seq.n_tokens = cached;
  return static_cast<int32_t>(cached);
}

void BlockManager::free_sequence(SeqId seq_id) {
  auto sit = seqs_.find(seq_id);
  CW_CHECK_MSG(sit != seqs_.end(), "kv: free_sequence of unknown sequence " + std::to_string(seq_id));
  for (int32_t id : sit->second.held) {
    Block& b = blocks_[static_cast<size_t>(id)];
    CW_CHECK(b.ref > 0);
    if (--b.ref == 0) release(id);
  }
  const std::vector<int32_t>& table = sit->second.table;
  for (auto it = table.rbegin(); it != table.rend(); ++it) {  // tail first: evicted before the head
    Block& b = blocks_[static_cast<size_t>(*it)];
    CW_CHECK(b.ref > 0);
    if (--b.ref == 0) release(*it);
  }
  seqs_.erase(sit);
}

std::span<const int32_t> BlockManager::block_table(SeqId seq_id) const {
  auto sit = seqs_.find(seq_id);
  CW_CHECK_MSG(sit != seqs_.end(), "kv: block_table of unknown sequence " + std::to_string(seq_id));
  return sit->second.table;
}

int64_t BlockManager::n_tokens(SeqId seq_id) const {
  auto sit = seqs_.find(seq_id);
  CW_CHECK_MSG(sit != seqs_.end(), "kv: n_tokens of unknown sequence " + std::to_string(seq_id));
  return sit->second.n_tokens;
}

BlockManager::Sequence* BlockManager::find(SeqId seq) {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? nullptr : &it->second;
}

int32_t BlockManager::copy_of(int32_t src) {
  const int32_t dst = allocate();
  const Block& from = blocks_[static_cast<size_t>(src)];
  Block& to = blocks_[static_cast<size_t>(dst)];
  to.tokens = from.tokens;
  to.full = from.full;
  if (to.full) to.uid = next_uid_++;
  pending_copies_.push_back({src, dst});
  return dst;
}

Status BlockManager::detach(SeqId seq_id) {
  Sequence* seq = find(seq_id);
  if (seq == nullptr) return not_found("kv: unknown sequence " + std::to_string(seq_id));
  seq->detached = true;
  return Status::ok();
}

Status BlockManager::drop_blocks(SeqId seq_id, int64_t first, int64_t n) {
  Sequence* seq = find(seq_id);
  if (seq == nullptr) return not_found("kv: unknown sequence " + std::to_string(seq_id));
  const auto size = static_cast<int64_t>(seq->table.size());
  if (first < 0 || n < 0 || first + n > size)
    return invalid_argument("kv: dropping blocks [" + std::to_string(first) + ", " + std::to_string(first + n) +
                            ") of a table of " + std::to_string(size));
  if (n == 0) return Status::ok();
  const auto b0 = seq->table.begin() + first, b1 = b0 + n;
  const std::vector<int32_t> gone(b0, b1);
  seq->table.erase(b0, b1);
  seq->n_tokens = std::max<int64_t>(first * block_size_, seq->n_tokens - n * block_size_);
  for (auto it = gone.rbegin(); it != gone.rend(); ++it) {
    Block& b = blocks_[static_cast<size_t>(*it)];
    CW_CHECK(b.ref > 0);
    if (--b.ref == 0) release(*it);
  }
  return Status::ok();
}

Status BlockManager::make_writable(SeqId seq_id, int64_t j) {
  Sequence* seq = find(seq_id);
  if (seq == nullptr) return not_found("kv: unknown sequence " + std::to_string(seq_id));
  if (j < 0 || j >= static_cast<int64_t>(seq->table.size()))
    return invalid_argument("kv: block " + std::to_string(j) + " is outside the table");
  const int32_t src = seq->table[static_cast<size_t>(j)];
  Block& b = blocks_[static_cast<size_t>(src)];
  if (b.ref == 1 && !b.registered) return Status::ok();
  if (n_available_blocks() == 0) return resource_exhausted("kv: no block for a private copy");
  // src stays referenced by this table while allocating, so the allocation cannot evict it.
  const int32_t dst = copy_of(src);
  seq->table[static_cast<size_t>(j)] = dst;
  if (--blocks_[static_cast<size_t>(src)].ref == 0) release(src);
  return Status::ok();
}

Status BlockManager::truncate(SeqId seq_id, int64_t n_tokens) {
  Sequence* seq = find(seq_id);
  if (seq == nullptr) return not_found("kv: unknown sequence " + std::to_string(seq_id));
  if (n_tokens < 0 || n_tokens > seq->n_tokens)
    return invalid_argument("kv: truncating to " + std::to_string(n_tokens) + " of " + std::to_string(seq->n_tokens) +
                            " slots");
  const int64_t keep = (n_tokens + block_size_ - 1) / block_size_;
  const int64_t used_last = n_tokens - (keep - 1) * block_size_;
  if (keep > 0 && used_last < block_size_) CW_RETURN_IF_ERROR(make_writable(seq_id, keep - 1));
  CW_RETURN_IF_ERROR(drop_blocks(seq_id, keep, static_cast<int64_t>(seq->table.size()) - keep));
  seq->n_tokens = n_tokens;
  if (keep > 0 && used_last < block_size_) {
    Block& b = blocks_[static_cast<size_t>(seq->table.back())];
    b.tokens.resize(static_cast<size_t>(used_last));
    b.full = false;
    b.uid = 0;
  }
  return Status::ok();
}

Status BlockManager::copy_slots(SeqId seq_id, int64_t src, int64_t dst, int64_t n) {
  Sequence* seq = find(seq_id);
  if (seq == nullptr) return not_found("kv: unknown sequence " + std::to_string(seq_id));
  if (n < 0 || src < 0 || dst < 0 || src + n > seq->n_tokens || dst + n > seq->n_tokens)
    return invalid_argument("kv: copying slots [" + std::to_string(src) + ", " + std::to_string(src + n) + ") to [" +
                            std::to_string(dst) + ", " + std::to_string(dst + n) + ") of " +
                            std::to_string(seq->n_tokens));
  if (n == 0) return Status::ok();
  for (int64_t j = dst / block_size_; j <= (dst + n - 1) / block_size_; ++j) CW_RETURN_IF_ERROR(make_writable(seq_id, j));
  for (int64_t i = 0; i < n; ++i) {  // ascending: safe for dst < src
    const int64_t s = src + i, d = dst + i;
    const int32_t t = blocks_[static_cast<size_t>(seq->table[static_cast<size_t>(s / block_size_)])].tokens[static_cast<size_t>(s % block_size_)];
    blocks_[static_cast<size_t>(seq->table[static_cast<size_t>(d / block_size_)])].tokens[static_cast<size_t>(d % block_size_)] = t;
  }
  return Status::ok();
}

Status BlockManager::hold_copies(SeqId seq_id, int64_t n) {
  Sequence* seq = find(seq_id);
  if (seq == nullptr) return not_found("kv: unknown sequence " + std::to_string(seq_id));
  if (!seq->held.empty()) return invalid_argument("kv: the sequence already holds copies");
  if (n < 0 || n > static_cast<int64_t>(seq->table.size()))
    return invalid_argument("kv: holding copies of " + std::to_string(n) + " blocks of a table of " +
                            std::to_string(seq->table.size()));
  if (n > n_available_blocks()) return resource_exhausted("kv: no blocks for " + std::to_string(n) + " held copies");
  for (int64_t j = 0; j < n; ++j) seq->held.push_back(copy_of(seq->table[static_cast<size_t>(j)]));
  return Status::ok();
}

std::span<const int32_t> BlockManager::held_blocks(SeqId seq_id) const {
  auto sit = seqs_.find(seq_id);
  CW_CHECK_MSG(sit != seqs_.end(), "kv: held_blocks of unknown sequence " + std::to_string(seq_id));
  return sit->second.held;
}

std::vector<BlockCopy> BlockManager::take_pending_copies() {
  std::vector<BlockCopy> out;
  out.swap(pending_copies_);
  return out;
}

std::span<const int32_t> BlockManager::block_tokens(int32_t block) const {
  CW_CHECK(block >= 0 && block < n_blocks());
  return blocks_[static_cast<size_t>(block)].tokens;
}

int32_t BlockManager::ref_count(int32_t block) const {
  CW_CHECK(block >= 0 && block < n_blocks());
  return blocks_[static_cast<size_t>(block)].ref;
}

Status BlockManager::check_invariants() const {
  const size_t nb = blocks_.size();
  std::vector<int32_t> refs(nb, 0);
  for (const auto& [sid, seq] : seqs_) {
    const std::string s = "seq " + std::to_string(sid) + ": ";
    const int64_t want_blocks = (seq.n_tokens + block_size_ - 1) / block_size_;
    if (static_cast<int64_t>(seq.table.size()) != want_blocks) return violation(s + "table size != ceil(n_tokens/bs)");
    std::unordered_set<int32_t> seen;
    for (size_t j = 0; j < seq.table.size(); ++j) {
      const int32_t id = seq.table[j];
      if (id < 0 || static_cast<size_t>(id) >= nb) return violation(s + "block id out of range");
      if (!seen.insert(id).second) return violation(s + "block " + std::to_string(id) + " twice in one table");
      ++refs[static_cast<size_t>(id)];
      const Block& b = blocks_[static_cast<size_t>(id)];
      const int64_t used = std::min<int64_t>(block_size_, seq.n_tokens - static_cast<int64_t>(j) * block_size_);
      const int64_t filled = static_cast<int64_t>(b.tokens.size());
      if (filled < used) return violation(s + "block " + std::to_string(id) + " has fewer tokens than used");
      if (filled > used && !b.full) return violation(s + "block " + std::to_string(id) + " written past seq end");
      if (j + 1 < seq.table.size() && !b.full) return violation(s + "non-last block not full");
      if (!seq.detached && j > 0 && b.full && b.parent_uid != blocks_[static_cast<size_t>(seq.table[j - 1])].uid) {
        return violation(s + "block " + std::to_string(id) + " parent uid mismatch");
      }
    }
    for (int32_t id : seq.held) {
      if (id < 0 || static_cast<size_t>(id) >= nb || !seen.insert(id).second)
        return violation(s + "held block " + std::to_string(id) + " out of range or also in the table");
      ++refs[static_cast<size_t>(id)];
    }
  }
  std::vector<uint8_t> on_free(nb, 0), on_lru(nb, 0);
  for (int32_t id : free_) {
    if (id < 0 || static_cast<size_t>(id) >= nb || on_free[static_cast<size_t>(id)]++) {
      return violation("free list corrupt at " + std::to_string(id));
    }
  }
  for (int32_t id : lru_) {
    if (id < 0 || static_cast<size_t>(id) >= nb || on_lru[static_cast<size_t>(id)]++) {
      return violation("lru list corrupt at " + std::to_string(id));
    }
  }
  size_t n_registered = 0;
  for (size_t i = 0; i < nb; ++i) {
    const Block& b = blocks_[i];
    const std::string s = "block " + std::to_string(i) + ": ";
    if (b.ref != refs[i]) return violation(s + "ref " + std::to_string(b.ref) + " != table occurrences " + std::to_string(refs[i]));
    if (b.in_lru != static_cast<bool>(on_lru[i])) return violation(s + "in_lru flag disagrees with the list");
    if (b.in_lru && *b.lru_pos != static_cast<int32_t>(i)) return violation(s + "stale lru position");
    const int states = (on_free[i] ? 1 : 0) + (on_lru[i] ? 1 : 0) + (b.ref > 0 ? 1 : 0);
    if (states != 1) return violation(s + "in " + std::to_string(states) + " states (free/cached/referenced)");
    if (on_free[i] && (!b.tokens.empty() || b.full || b.registered)) return violation(s + "free but has content");
    if (on_lru[i] && !b.registered) return violation(s + "cached but not registered");
    if (b.full != (static_cast<int32_t>(b.tokens.size()) == block_size_)) return violation(s + "full flag wrong");
    if (b.full && b.uid == 0) return violation(s + "full without uid");
    if (b.registered) {
      ++n_registered;
      auto it = index_.find(b.hash);
      if (!b.full || it == index_.end() || it->second != static_cast<int32_t>(i)) {
        return violation(s + "registered but not indexed");
      }
    }
  }
  if (n_registered != index_.size()) return violation("index has entries for unregistered blocks");
  for (const BlockCopy& c : pending_copies_) {
    if (c.src < 0 || static_cast<size_t>(c.src) >= nb || c.dst < 0 || static_cast<size_t>(c.dst) >= nb ||
        on_free[static_cast<size_t>(c.dst)]) {
      return violation("pending copy with a bad or freed dst");
    }
  }
  return Status::ok();
}

}  // namespace cw::kv
