// The store connection's side of pre-computed FTS5 tokens (internal to cw_retrieval; see fts_tokens.h).
//
// install() looks up FTS5's built-in "porter" tokenizer on the connection and registers a wrapper under the
// same name (FTS5 finds the most recently registered tokenizer of a name first), so it must run before the
// chunk_text table is first used on that connection: FTS5 creates a table's tokenizer instance when it
// connects the table. The wrapper's instances replay set_pending()'s tokens when FTS5 tokenizes, for a
// document insert, the text those tokens were computed from (FtsTokens::matches), and hand every other call
// (queries, deletes of old rows, integrity checks, a mismatch) to the real porter tokenizer.
#pragma once

#include <atomic>
#include <memory>

#include "base/status.h"
#include "retrieval/fts_tokens.h"

struct sqlite3;
struct fts5_tokenizer;

namespace cw::retrieval {

// The tokenizer arguments of the chunk_text table (`tokenize = 'porter unicode61'`: porter's arguments).
// Tokens are replayed only into wrapper instances created with exactly these arguments.
inline constexpr const char* kPorterBase = "unicode61";

class TokenReplay {
 public:
  // Registers the wrapper on `db`. The returned object is its context: it must outlive the connection.
  static Result<std::unique_ptr<TokenReplay>> install(sqlite3* db);
  ~TokenReplay();
  TokenReplay(const TokenReplay&) = delete;
  TokenReplay& operator=(const TokenReplay&) = delete;

  // The tokens of the text about to be inserted (null: none); the writer sets them right before its
  // INSERT INTO chunk_text and clears them after. Single writer: called under the Store's mutex.
  void set_pending(const FtsTokens* tokens) { pending_ = tokens; }
  // A tokenizer for another thread (the real porter instance is created here, on the calling thread).
  Result<std::unique_ptr<FtsTokenizer>> make_tokenizer();
  int64_t replayed() const { return replayed_.load(std::memory_order_relaxed); }

 private:
  TokenReplay();
  struct Wrapper;
  friend struct Wrapper;

  void* real_context_ = nullptr;          // porter's context (the connection's fts5_api)
  std::unique_ptr<fts5_tokenizer> real_;  // porter's methods
  const FtsTokens* pending_ = nullptr;
  std::atomic<int64_t> replayed_{0};      // chunk texts indexed from pre-computed tokens
};

}  // namespace cw::retrieval
