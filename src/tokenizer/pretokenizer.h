// Pre-tokenizers for byte-level BPE vocabularies: split raw text into the "words" that BPE merges never
// cross. Each family (tokenizer.ggml.pre) is a short pipeline of stages; every stage is a hand-written
// scanner equivalent to one of the regexes llama.cpp applies (no regex engine at run time). As in
// llama.cpp, each stage is applied to every piece produced by the previous stage, and both the matches
// and the unmatched gaps between them become pieces.
//
// Invalid UTF-8: an invalid byte is classified as U+FFFD (a symbol) and kept as the original byte in its
// piece, so pieces always concatenate back to the input exactly.
//
// Thread-safety: split() is const and uses thread-local scratch buffers; concurrent calls are fine.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace cw::tok {

enum class PreStage : uint8_t {
  kGpt2,            // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kLlama3,          // (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kQwen2,           // the same with \p{N} (one digit per piece)
  kEachCrLf,        // [\r\n]
  kDsLetters,       // \s?[A-Za-zµÀ-ÖØ-öø-ƺ...]+   (deepseek-llm's cased-letter class)
  kDsPunct,         // \s?[!-/:-~！-／：-～‘-‟　-。]+
  kTrailingSpace,   // \s+$
  kCjk,             // [一-龥ࠀ-一가-퟿]+
  kNumberRun,       // \p{N}+
  kEachNumber,      // \p{N}
  kSpaceLetters,    // \s?\p{L}+
  kSpacePunct,      // \s?\p{P}+
  kPunctSymbols,    // [\p{P}\$\+<=>\^~\|`]+
  kPunctSymbolsNoBacktick,  // [\p{P}\$\+<=>\^~\|]+
  kDigits3,         // [0-9][0-9][0-9]
};

class PreTokenizer {
 public:
  // The pipeline for a `tokenizer.ggml.pre` value ("" means "default"). kUnimplemented listing the
  // supported names for an unknown value.
  static Result<std::unique_ptr<PreTokenizer>> create(std::string_view pre_name);
  // Comma-separated supported names.
  static std::string supported_names();
  // A pipeline from explicit stages (tests).
  explicit PreTokenizer(std::vector<PreStage> stages, bool ignore_merges = false);

  // Appends the pieces of `text` (views into it, in order, non-empty, concatenating to `text`) to `out`.
  // Pipelines of several stages run as passes over one array of cut flags (see pretokenizer.cc).
  void split(std::string_view text, std::vector<std::string_view>& out) const;
  // The same result computed the plain way, one stage after the other over materialised pieces; the
  // reference that the tests compare split() with.
  void split_staged(std::string_view text, std::vector<std::string_view>& out) const;

  // Llama-3 style vocabularies look a whole piece up before merging (llama.cpp's ignore_merges).
  bool ignore_merges() const { return ignore_merges_; }

 private:
  void split_flags(std::string_view text, std::vector<std::string_view>& out) const;

  std::vector<PreStage> stages_;
  bool ignore_merges_ = false;
  bool use_flags_ = false;                // several stages (and at most 7)
  std::array<uint8_t, 128> ascii_cls_{};  // class byte of each ASCII code point (split_flags)
};

}  // namespace cw::tok
