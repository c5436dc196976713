// A per-thread cache of word -> token ids, used by the SPM and BPE encoders (English text repeats a
// small set of words, so most words are tokenized once). Each thread keeps one cache per tokenizer
// instance (identified by a never-reused owner id); the cache is bounded and simply cleared when full. Its
// table starts small and doubles as it fills, so a thread that tokenizes one short prompt (a server's
// connection threads: hundreds of them) holds a few KiB, not the full table's 1.5 MiB.
//
// Thread-safety: for_owner() returns the calling thread's cache; it must not be shared across threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <cstring>
#include <vector>

#include "tokenizer/vocab.h"

namespace cw::tok {

class WordCache {
 public:
  static constexpr size_t kMaxWordBytes = 48;
  static constexpr size_t kMaxEntries = 1 << 15;
  static constexpr size_t kInitialSlots = 256;
  static constexpr size_t kSlots = kMaxEntries * 2;  // the most: load factor <= 1/2 at kMaxEntries

  // A fresh, never reused owner id (one per tokenizer instance).
  static uint64_t new_owner_id();
  // The calling thread's cache for `owner`.
  static WordCache& for_owner(uint64_t owner);

  WordCache();

  // Appends the cached ids of `word` to `out`; false when absent.
  bool lookup(std::string_view word, uint64_t hash, std::vector<int32_t>& out) const {
    size_t i = hash & mask_;
    while (true) {
      const Slot& sl = slots_[i];
      if (sl.len == 0) return false;
      if (sl.hash == hash && sl.len == word.size() && equal_bytes(keys_.data() + sl.key_off, word)) {
        const int32_t* ids = ids_.data() + sl.ids_off;
        if (sl.n_ids == 1) {
          out.push_back(ids[0]);
        } else {
          out.insert(out.end(), ids, ids + sl.n_ids);
        }
        return true;
      }
      i = (i + 1) & mask_;
    }
  }
  // `word` must be 1..kMaxWordBytes bytes (longer words are not cached).
  void insert(std::string_view word, uint64_t hash, const int32_t* ids, size_t n);

  size_t entries() const { return n_entries_; }
  size_t slot_capacity() const { return slots_.size(); }  // kInitialSlots .. kSlots

 private:
  // a[0, w.size()) == w, for the short words of the cache, without a call to memcmp.
  static bool equal_bytes(const char* a, std::string_view w) {
    const char* b = w.data();
    size_t n = w.size();
    while (n > 8) {
      uint64_t x, y;
      std::memcpy(&x, a, 8);
      std::memcpy(&y, b, 8);
      if (x != y) return false;
      a += 8;
      b += 8;
      n -= 8;
    }
    return n == 0 || detail::load_1_to_8(a, n) == detail::load_1_to_8(b, n);
  }

  void grow();
  struct Slot {
    uint64_t hash = 0;
    uint32_t key_off = 0;
    uint32_t ids_off = 0;
    uint16_t len = 0;  // 0: empty
    uint16_t n_ids = 0;
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  std::string keys_;
  std::vector<int32_t> ids_;
  size_t n_entries_ = 0;
};

}  // namespace cw::tok
