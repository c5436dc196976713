// Special-token splitting: cuts raw text into runs of plain text and special tokens before the model's
// own tokenization, with llama.cpp's semantics:
//   - candidates are the tokens of type control, unknown and user-defined (non-empty text);
//   - control and unknown tokens are matched only when parse_special is true; user-defined tokens are
//     always matched (as llama.cpp and Hugging Face do: they are "added tokens" pre-tokenized first);
//   - candidates are applied longest text first (ties: lower id first); each one is found left to right,
//     non-overlapping, inside the text fragments that are still plain text;
//   - tokens with the rstrip / lstrip attribute swallow adjacent ASCII whitespace.
//
// Cost: one pass over the text with a two-byte prefix filter finds the candidates that occur at all; only
// those are then applied. Thread-safety: partition() is const; concurrent calls are fine.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace cw::tok {

struct Fragment {
  int32_t token = -1;  // >= 0: a special token; -1: plain text [begin, end) of the input
  size_t begin = 0, end = 0;
};

class SpecialMatcher {
 public:
  // `rstrip` / `lstrip`: per-token attributes (may be empty = none).
  void build(const Vocab& v, const std::vector<uint8_t>& lstrip, const std::vector<uint8_t>& rstrip);
  void partition(std::string_view text, bool parse_special, std::vector<Fragment>& out) const;

 private:
  struct Cand {
    int32_t id;
    std::string_view text;
    bool always;  // user-defined: matched even when parse_special is false
    bool lstrip, rstrip;
  };
  std::vector<Cand> cands_;                // sorted by length desc, id asc
  std::vector<uint32_t> bucket_begin_;     // [65537] CSR over the first two bytes (length >= 2)
  std::vector<uint32_t> bucket_items_;
  std::vector<std::vector<uint32_t>> single_;  // [256] candidates of length 1, by byte
  std::vector<uint8_t> first_byte_;            // [256] 1 when some candidate starts with the byte
  bool any_always_ = false;
};

}  // namespace cw::tok
