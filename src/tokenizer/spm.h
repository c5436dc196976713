// SentencePiece-style BPE by scores (llama.cpp's "SPM" tokenizer): the text (spaces already replaced by
// U+2581) is split into UTF-8 characters, then the adjacent pair whose concatenation is the vocabulary
// token with the highest score is merged (ties: leftmost), until no pair forms a token. Characters that
// are not tokens fall back to byte tokens <0xNN> (then the single-byte token, then <unk>, else dropped).
//
// Invalid UTF-8: each invalid byte is its own symbol and, not being a token, goes through byte fallback.
//
// Speed: when no token contains a non-U+2581 character followed by U+2581 (true for Llama-family vocabs),
// merges cannot cross a word start, so words are encoded independently and cached per thread.
// Thread-safety: encode is const; concurrent calls are fine.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace cw::tok {

class SpmEncoder {
 public:
  SpmEncoder(const Vocab& v, uint64_t cache_owner);
  // Appends the ids of `escaped` (spaces already replaced by U+2581).
  void encode_escaped(std::string_view escaped, std::vector<int32_t>& out) const;
  bool splits_words() const { return split_words_; }
  int32_t byte_token(uint8_t b) const { return byte_ids_[b]; }

 private:
  void encode_word(std::string_view w, std::vector<int32_t>& out) const;
  // The same result for long words in O(n) memory (12 bytes per code point + the queue) and near-linear
  // time (merge_queue.h).
  void encode_word_long(std::string_view w, std::vector<int32_t>& out) const;
  void emit_symbol(std::string_view piece, std::vector<int32_t>& out) const;
  const Vocab& v_;
  uint64_t cache_owner_;
  std::array<int32_t, 256> byte_ids_{};
  bool split_words_ = false;
  std::vector<uint32_t> score_rank_;  // per token: rank of its score among distinct scores, 0 = highest
  size_t n_score_ranks_ = 0;
};

// Appends `text` to `out` with every ' ' replaced by U+2581.
void spm_escape(std::string_view text, std::string& out);

}  // namespace cw::tok
