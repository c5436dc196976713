// Units of size for chunkers, and fast per-document measuring.
//
//   SizeMeasure  what a "unit" is (tokens of a GGUF vocabulary, chars = code points, bytes, words) and the
//                exact size of a standalone text. Immutable, thread-safe, shared by chunkers.
//   DocText      one document with its UTF-8 structure: code point boundaries and fast code point counts.
//   DocSizer     a SizeMeasure bound to one DocText: cheap estimates of byte ranges, exact sizes, and the
//                finest cut positions ("atoms") where an oversized piece may be split.
//
// Words are maximal runs of non-White_Space code points (Unicode White_Space); a text's word count is the
// number of runs it contains, so a range cut inside a word counts that word's tail as one word.
// Tokens are counted with encode(text, add_special=false, parse_special=false).
//
// Estimates vs exact sizes: for chars, bytes and words the estimate of a range IS its exact size. For
// tokens the estimate counts the document-level tokens that start inside the range (one encode of the whole
// document); the exact size re-encodes the range alone and may differ at the edges (a space prefix, a merge
// across the cut). Packing (pack.h) fills chunks by estimates and verifies every chunk exactly.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace cw::tok {
class Tokenizer;
}

namespace cw::text {

enum class Unit { kTokens, kChars, kBytes, kWords };
const char* unit_name(Unit unit);
// "tokens" | "chars" | "bytes" | "words" (also "token", "char", "byte", "word").
Result<Unit> parse_unit(std::string_view name);

// A document and its UTF-8 structure. Construction makes one validation pass; a valid document needs no
// extra memory, an invalid one stores one flag byte per input byte. The text must outlive the DocText.
// A "boundary" is a position where a code point starts (or the end); each invalid byte is its own code point.
class DocText {
 public:
  explicit DocText(std::string_view text);
  std::string_view text() const { return text_; }
  int64_t size() const { return static_cast<int64_t>(text_.size()); }
  bool valid_utf8() const { return valid_; }
  bool is_boundary(int64_t pos) const;
  int64_t floor_boundary(int64_t pos) const;  // largest boundary <= pos
  int64_t ceil_boundary(int64_t pos) const;   // smallest boundary >= pos
  int64_t next_boundary(int64_t pos) const;   // smallest boundary > pos (pos < size())
  // Code points in [b, e); b and e must be boundaries.
  int64_t count_chars(int64_t b, int64_t e) const;

 private:
  std::string_view text_;
  bool valid_ = true;
  std::vector<uint8_t> starts_;  // only when !valid_: 1 where a code point starts
};

class DocSizer;

class SizeMeasure {
 public:
  // unit=tokens needs a tokenizer; other units ignore it.
  static std::shared_ptr<const SizeMeasure> make(Unit unit, std::shared_ptr<const tok::Tokenizer> tokenizer = {});
  // Loads (and caches process-wide by path) the tokenizer of a GGUF file for unit=tokens. Errors: file
  // missing / unreadable / not a GGUF vocabulary, or no path given for tokens.
  static Result<std::shared_ptr<const SizeMeasure>> create(Unit unit, const std::string& tokenizer_path);

  virtual ~SizeMeasure() = default;
  Unit unit() const { return unit_; }
  const tok::Tokenizer* tokenizer() const { return tokenizer_.get(); }
  // Exact size of `text` on its own.
  virtual int64_t measure(std::string_view text) const = 0;
  // A sizer bound to `doc` (which must outlive it). Cost: one pass for tokens (encodes the document).
  virtual std::unique_ptr<DocSizer> bind(const DocText& doc) const = 0;

 protected:
  SizeMeasure(Unit unit, std::shared_ptr<const tok::Tokenizer> tokenizer)
      : unit_(unit), tokenizer_(std::move(tokenizer)) {}

 private:
  Unit unit_;
  std::shared_ptr<const tok::Tokenizer> tokenizer_;
};

// A measure bound to one document. Not thread-safe (one per chunk() call). Positions are byte offsets into
// doc().text(); ranges [b, e) must start and end on boundaries.
class DocSizer {
 public:
  explicit DocSizer(const DocText& doc) : doc_(doc) {}
  virtual ~DocSizer() = default;
  const DocText& doc() const { return doc_; }
  // Cheap size of [b, e); equals exact() when estimate_is_exact().
  virtual int64_t estimate(int64_t b, int64_t e) const = 0;
  // Size of the text of [b, e) measured alone.
  virtual int64_t exact(int64_t b, int64_t e) const = 0;
  virtual bool estimate_is_exact() const = 0;
  // Window search for greedy chunkers. advance: the largest atom boundary w >= b (or the document end) with
  // estimate(b, w) <= k; b itself when the first atom alone is over k. retreat: the smallest atom boundary
  // p <= e with estimate(p, e) <= k; e itself when the last atom alone is over k. The defaults search with
  // exact() (correct for every unit, slow); chars, bytes, words and mapped tokens override them.
  virtual int64_t advance(int64_t b, int64_t k) const;
  virtual int64_t retreat(int64_t e, int64_t k) const;
  // A lower bound of the estimate of any range of n_bytes bytes (lets splitters skip measuring ranges that
  // cannot fit): n/4 rounded up for chars, n for bytes, n / (the longest token's bytes) for SPM and BPE
  // tokens, 0 for WordPiece tokens and words.
  virtual int64_t min_units(int64_t n_bytes) const { return 0; }
  // size(a + b) == size(a) + size(b) for adjacent ranges (chars, bytes): sums of piece sizes are exact.
  virtual bool additive() const = 0;
  // Appends, ascending, every position p in (b, e) where [b, e) may be cut at the finest level of the unit:
  // code point boundaries (chars, bytes), starts of document tokens snapped forward to a code point boundary
  // (tokens), starts of words (words: a single word is one unit, so it never needs cutting).
  virtual void atom_cuts(int64_t b, int64_t e, std::vector<int64_t>& cuts) const = 0;

 private:
  const DocText& doc_;
};

// Fast helpers used by measures and chunkers.
// Code points in a valid UTF-8 range (counts non-continuation bytes).
int64_t count_utf8_chars_fast(const char* p, int64_t n);
// Words (runs of non-White_Space) in `text`; invalid bytes count as non-space.
int64_t count_words(std::string_view text);

}  // namespace cw::text
