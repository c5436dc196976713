// Pre-computed FTS5 tokens: the porter + unicode61 tokenizing of chunk texts, done on the caller's threads
// (the index pipeline's chunking workers) instead of on the one thread that writes the index.
//
// Why: a bulk `index build` is bound by the SQLite writer thread, and FTS5's tokenizer is ~15% of its work
// (~0.7 s of CPU per 100 MB). The store's connection registers a wrapper under FTS5's tokenizer name
// "porter" (fts_replay.h) that, when FTS5 tokenizes a chunk text being inserted, replays the tokens computed
// here instead of tokenizing again. The index file is unchanged: the same tokens, flags and offsets reach
// FTS5 in the same order; other connections (readers, the sqlite3 shell) use the real porter tokenizer.
//
// Safety: an FtsTokens holds a copy of the text it was computed from and is replayed only for text that is
// byte-for-byte equal to it, so tokens attached to the wrong chunk, or a file changed between tokenizing
// and inserting, only cost the fallback (FTS5 tokenizes as usual), never a wrong index.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cw::retrieval {

// The tokens of one text (opaque; filled by FtsTokenizer). Packed into one buffer: the source text, then
// per token varint((start - previous start) << 1 | has_flags), [varint(flags)], varint(end - start),
// varint(size), the token bytes — ~1.3x the text for English prose, plus the copy of the text.
class FtsTokens {
 public:
  bool empty() const { return !ready_; }          // true: the store tokenizes the text itself
  size_t memory_bytes() const { return buf_.capacity(); }
  int64_t size() const { return n_tokens_; }      // number of tokens (colocated ones included)

  // Whether these tokens were computed from exactly `text`.
  bool matches(const char* text, int n_text) const {
    return ready_ && static_cast<size_t>(n_text) == source_size_ &&
           (n_text == 0 || std::char_traits<char>::compare(buf_.data(), text, source_size_) == 0);
  }
  // Hands every token to `x_token` in order (FTS5's xToken contract); stops at and returns its first error.
  int replay(void* ctx, int (*x_token)(void*, int, const char*, int, int, int)) const;

 private:
  friend class FtsTokenizer;
  std::string buf_;
  size_t source_size_ = 0;
  int64_t n_tokens_ = 0;
  bool ready_ = false;
};

// Tokenizes texts exactly as the index's FTS5 table does (the real porter tokenizer over unicode61). Made by
// Store::make_fts_tokenizer; one instance is used by one thread at a time (it holds the tokenizer's
// scratch buffers), any number of instances may run in parallel. It does not use the Store's connection
// after it is made.
class FtsTokenizer {
 public:
  struct Impl;
  explicit FtsTokenizer(Impl* impl) : impl_(impl) {}
  ~FtsTokenizer();
  FtsTokenizer(const FtsTokenizer&) = delete;
  FtsTokenizer& operator=(const FtsTokenizer&) = delete;

  // The tokens of `text`; empty (the store then tokenizes) if the tokenizer failed or the text is over
  // 2 GiB. Never an error: pre-computing is only an optimisation.
  FtsTokens tokenize(std::string_view text);

 private:
  Impl* impl_;
};

}  // namespace cw::retrieval
