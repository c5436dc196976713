// cw_bm25: BM25 as an FTS5 auxiliary function that never touches FTS5's %_docsize table.
//
// FTS5's built-in bm25() reads each matched row's length with one B-tree lookup in %_docsize; on a 100 MB
// index a question matches tens of thousands of chunks and those lookups are ~75% of the query time. The
// store instead encodes each chunk's length — its word count, quantised to 64 log-spaced levels (ratio
// 1.15: within 7.5% or one word, up to ~6,700 words) — in the low kLengthBits of its chunk_id (= the FTS rowid), so the
// length comes free with the rowid. Six bits keep consecutive rowids < 128 apart, so FTS5's delta-encoded
// doclists stay one byte per rowid (16 bits made the index 17% larger and ingest 1.4x slower). Otherwise
// the formula is FTS5's:
//   score = sum over query terms t of idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avgdl)),
//   idf(t) = ln((N - n_t + 0.5) / (n_t + 0.5)) (1e-6 when <= 0), k1 = 1.2, b = 0.75,
// with tf from the row's position lists, n_t from the phrase's doclist, N the FTS row count and
// avgdl = total_words / N, total_words (the sum of the quantised lengths) passed by the caller (the store
// keeps it in meta). Higher is better (FTS5's bm25() is the negation).
// Usage: SELECT rowid, cw_bm25(chunk_text, TOTAL_WORDS) AS s FROM chunk_text WHERE chunk_text MATCH ? ORDER BY s DESC
#pragma once

#include <cstdint>
#include <string_view>

#include "base/status.h"

struct sqlite3;

namespace cw::retrieval {

inline constexpr int kLengthBits = 6;
inline constexpr int64_t kLengthMask = (int64_t{1} << kLengthBits) - 1;

// Words as the FTS5 unicode61 tokenizer sees them in ASCII text: maximal runs of letters / digits (any
// non-ASCII byte counts as a letter).
int64_t count_words(std::string_view text);
// The length level of a word count (0 .. kLengthMask) and the length a level stands for.
int64_t length_level(int64_t words);
int64_t level_length(int64_t level);

// Registers cw_bm25 on the connection (through the fts5_api pointer). Errors: FTS5 missing.
Status register_bm25(sqlite3* db);

}  // namespace cw::retrieval
