#include "tokenizer/word_cache.h"

#include <algorithm>
#include <atomic>
#include <memory>

namespace cw::tok {

uint64_t WordCache::new_owner_id() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

WordCache& WordCache::for_owner(uint64_t owner) {
  constexpr size_t kMaxOwners = 4;
  thread_local std::vector<std::pair<uint64_t, std::unique_ptr<WordCache>>> caches;
  for (auto& [id, cache] : caches) {
    if (id == owner) return *cache;
  }
  if (caches.size() >= kMaxOwners) caches.erase(caches.begin());
  caches.emplace_back(owner, std::make_unique<WordCache>());
  return *caches.back().second;
}

WordCache::WordCache() : slots_(kInitialSlots), mask_(kInitialSlots - 1) {}

void WordCache::grow() {
  std::vector<Slot> old(slots_.size() * 2);
  old.swap(slots_);
  mask_ = slots_.size() - 1;
  for (const Slot& sl : old) {
    if (sl.len == 0) continue;
    size_t i = sl.hash & mask_;
    while (slots_[i].len != 0) i = (i + 1) & mask_;
    slots_[i] = sl;
  }
}

void WordCache::insert(std::string_view word, uint64_t hash, const int32_t* ids, size_t n) {
  if (word.empty() || word.size() > kMaxWordBytes || n > 0xFFFF) return;
  if (n_entries_ >= kMaxEntries) {
    std::fill(slots_.begin(), slots_.end(), Slot{});
    keys_.clear();
    ids_.clear();
    n_entries_ = 0;
  }
  if ((n_entries_ + 1) * 2 > slots_.size() && slots_.size() < kSlots) grow();
  size_t i = hash & mask_;
  while (slots_[i].len != 0) i = (i + 1) & mask_;
  Slot& sl = slots_[i];
  sl.hash = hash;
  sl.key_off = static_cast<uint32_t>(keys_.size());
  sl.ids_off = static_cast<uint32_t>(ids_.size());
  sl.len = static_cast<uint16_t>(word.size());
  sl.n_ids = static_cast<uint16_t>(n);
  keys_.append(word);
  ids_.insert(ids_.end(), ids, ids + n);
  ++n_entries_;
}

}  // namespace cw::tok
