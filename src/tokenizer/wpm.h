// WordPiece (BERT, tokenizer.ggml.model = "bert"), compatible with llama.cpp's WPM tokenizer:
//   1. pre-tokenization: every code point is replaced by the first code point of its canonical (NFD)
//      decomposition (which drops accents: é -> e), then lower-cased; whitespace separates words;
//      control / format / unassigned code points, U+0000 and invalid bytes are dropped; punctuation,
//      ASCII symbols and CJK ideographs become one-code-point words;
//   2. each word, prefixed with U+2581 (the GGUF conversion stores word-initial pieces as "▁x" and
//      continuation pieces without BERT's "##"), is split greedily, longest vocabulary match first from
//      the left; a word with any unmatched rest becomes the unknown token alone.
//
// Thread-safety: encode is const with thread-local scratch; concurrent calls are fine.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace cw::tok {

class WpmEncoder {
 public:
  // `v` must outlive the encoder.
  explicit WpmEncoder(const Vocab& v);

  // Appends the ids of `text` (no special tokens are recognised here).
  void encode(std::string_view text, std::vector<int32_t>& out) const;

  // Step 1 alone: the words of `text` (tests).
  static std::vector<std::string> pre_tokenize(std::string_view text);

 private:
  void encode_word(std::string_view word_with_prefix, std::vector<int32_t>& out) const;

  const Vocab& v_;
  size_t max_token_bytes_ = 0;
};

}  // namespace cw::tok
