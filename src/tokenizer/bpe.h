// Byte-level BPE (GPT-2 style, llama.cpp's "BPE" tokenizer) for one pre-tokenized word: the word's bytes
// are mapped to their byte-level characters (each a token), then the adjacent pair with the lowest merge
// rank (index in tokenizer.ggml.merges) is merged, leftmost first, until no pair has a rank.
//
// Differences from llama.cpp, on malformed vocabularies only: a merge whose result is not a token is
// ignored (llama.cpp merges, then drops the bytes); a byte whose character is not a token becomes <unk>
// when there is one, else is dropped.
//
// Invalid UTF-8 needs no special care: bytes map through the byte-level table as they are.
// Thread-safety: encode_word is const (thread-local scratch and cache); concurrent calls are fine.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gguf/reader.h"
#include "tokenizer/vocab.h"

namespace cw::tok {

class BpeEncoder {
 public:
  // Reads tokenizer.ggml.merges ("left right", rank = index). Errors: missing merges, a merge without a
  // separating space, a part that is not a token.
  static Result<std::unique_ptr<BpeEncoder>> create(const Vocab& v, const gguf::File& f, bool ignore_merges,
                                                    uint64_t cache_owner);

  // Appends the ids of pre-tokenized words (raw bytes), in order.
  void encode_words(const std::vector<std::string_view>& words, std::vector<int32_t>& out) const;
  size_t n_merges() const { return n_merges_; }

 private:
  BpeEncoder(const Vocab& v, bool ignore_merges, uint64_t cache_owner)
      : v_(v), ignore_merges_(ignore_merges), cache_owner_(cache_owner) {}
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  // The same result for long words in O(n) memory (12 bytes per byte + the queue) and near-linear time
  // (merge_queue.h).
  void merge_word_long(std::string_view word, std::vector<int32_t>& out) const;

  struct PairEntry {
    uint64_t key = ~0ull;
    int32_t rank = 0;
    int32_t result = 0;
  };
  void pair_insert(int32_t l, int32_t r, int32_t rank, int32_t result);
  const PairEntry* pair_find(int32_t l, int32_t r) const {
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
    size_t i = (key * 0x9E3779B97F4A7C15ull) >> shift_;
    while (true) {
      const PairEntry& e = pairs_[i];
      if (e.key == key) return &e;
      if (e.key == ~0ull) return nullptr;
      i = (i + 1) & mask_;
    }
  }

  const Vocab& v_;
  bool ignore_merges_;
  uint64_t cache_owner_;
  std::array<int32_t, 256> byte_ids_{};
  std::vector<PairEntry> pairs_;
  size_t mask_ = 0;
  int shift_ = 64;
  size_t n_merges_ = 0;
};

}  // namespace cw::tok
