// cw::retrieval — the embedded index: one SQLite file per index (WAL), documents with a content hash,
// chunks with exact offsets, an FTS5 table for BM25, vectors as blobs and an in-memory ANN index over them.
// This layer never sees a model or a chunker: callers (src/pipelines) chunk and embed, then hand the
// results over as DocumentInput. Design notes: docs/design/retrieval.md.
//
// Contract:
//   - Store::open creates the schema (create = true) or refuses a file that is not a chunkwise index, a
//     chunkwise index of a newer schema version, or a locked / unreadable file, with one-line errors that
//     name the path. ":memory:" gives a private in-memory index.
//   - Every write (ingest, ingest_batch, remove) is ONE transaction: a killed process leaves the index as it was before the
//     transaction or with the whole document. A document whose content hash, chunker and embedder are
//     unchanged is not rewritten (kUnchanged); a changed one has all its chunks replaced.
//   - Readers (other processes or other Stores on the same file) query while a writer ingests (WAL); a
//     second writer waits up to StoreOptions::busy_timeout_ms and then fails with a "locked" error.
//   - Scores: higher is better. bm25: FTS5's BM25 formula with the chunk's word count as its length
//     (bm25_rank.h); dense: the inner product of the
//     query vector and the chunk's vector (the cosine for the L2-normalised vectors embedders produce);
//     hybrid: reciprocal-rank fusion sum 1 / (60 + rank) over the bm25 and dense lists.
//   - Thread-safety: a Store may be shared by threads; calls are serialised on its one connection.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "retrieval/fts_tokens.h"

struct sqlite3;

namespace cw::retrieval {

// Schema version written to PRAGMA user_version; a file with a larger version is refused.
inline constexpr int kSchemaVersion = 1;

struct ChunkInput {
  int64_t index = 0;
  int64_t byte_begin = 0, byte_end = 0, char_begin = 0, char_end = 0;
  int64_t n_tokens = 0;
  // The chunk text's FTS5 tokens, pre-computed by a Store::make_fts_tokenizer() tokenizer off the writer's
  // thread (fts_tokens.h); empty: the store tokenizes it while writing. Used only when computed from exactly
  // this chunk's text, so wrong ones cost time, never correctness.
  FtsTokens fts_tokens{};
};

struct DocumentInput {
  std::string path;              // document id (a file path in the CLI)
  std::string_view text;         // whole document, UTF-8
  std::string chunker;           // chunker spec used
  std::vector<ChunkInput> chunks;
  std::vector<float> vectors;    // [chunks.size(), dim] or empty
  std::string embedder;          // embedder name when vectors are given
};

enum class IngestOutcome { kAdded, kReplaced, kUnchanged };
const char* ingest_outcome_name(IngestOutcome outcome);

struct Hit {
  int64_t chunk_id = 0;
  double score = 0;  // higher = better
};

struct ChunkRow {
  int64_t chunk_id = 0;
  std::string path;
  int64_t index = 0, byte_begin = 0, byte_end = 0, char_begin = 0, char_end = 0, n_tokens = 0;
  std::string text;
};

struct StoreStats {
  int64_t documents = 0, chunks = 0, vectors = 0, bytes = 0;
  int64_t dim = 0;        // 0 when the index holds no vectors
  std::string embedder;   // "" when none
  std::string chunker;    // the chunker spec of the documents; specs joined by " | " when they differ
};

// What the index knows about one document (for skipping unchanged files before chunking them).
struct DocumentInfo {
  std::string path, content_hash, chunker, embedder;
  int64_t bytes = 0, chunks = 0;
};

struct StoreOptions {
  int busy_timeout_ms = 5000;   // how long a write waits for another writer before "locked"
  int64_t exact_max = 20000;    // dense search is exact brute force up to this many vectors, HNSW above
  // The graph is built on the Store's graph_after_queries-th dense query, not before: building it costs far
  // more than one exact search (a CLI process answers one question), and pays off over many.
  int graph_after_queries = 4;
  int hnsw_m = 16;              // HNSW graph degree
  int hnsw_ef_construction = 200;
  int hnsw_ef_search = 128;     // at least k is used
};

// The content hash stored per document (128 bits as hex, two independent 64-bit hashes; not cryptographic).
std::string content_hash(std::string_view text);

class VectorIndex;  // vector_index.h
class TokenReplay;  // fts_replay.h

class Store {
 public:
  static Result<std::unique_ptr<Store>> open(const std::string& path, bool create);  // ":memory:" allowed
  static Result<std::unique_ptr<Store>> open(const std::string& path, bool create, const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // One transaction. Errors: offsets outside the text or out of order, vectors of the wrong size, an
  // embedder or dimension that differs from the index's, a locked database, I/O errors.
  Result<IngestOutcome> ingest(const DocumentInput& doc);
  // Several documents in ONE transaction (all or none; outcomes in input order): bulk loads commit less often,
  // which FTS5 turns into fewer, larger segments to merge.
  Result<std::vector<IngestOutcome>> ingest_batch(std::span<const DocumentInput> docs);
  Result<bool> remove(std::string_view path);  // false: unknown path
  // Bulk loading (`index build`). begin_bulk(): FTS5 merges its segments less often while many documents are
  // written (automerge 16 and crisismerge 64 instead of FTS5's 4 and 16: each posting is rewritten fewer
  // times). end_bulk(): restores FTS5's defaults and, with `optimize`, merges the full-text index into one
  // segment, so a query reads one doclist per term. Both are FTS5 settings stored in the index: a build
  // killed in between leaves the bulk ones, which cost queries some speed (never correctness) until the
  // next build ends.
  Status begin_bulk();
  Status end_bulk(bool optimize);
  // A tokenizer that pre-computes ChunkInput::fts_tokens, for one other thread (see fts_tokens.h). Errors:
  // FTS5 without its porter tokenizer (then leave the tokens empty).
  Result<std::unique_ptr<FtsTokenizer>> make_fts_tokenizer();
  // How many chunk texts this Store's connection indexed from pre-computed tokens (tests, profiling).
  int64_t fts_tokens_replayed() const;
  Result<StoreStats> stats() const;
  Result<std::optional<DocumentInfo>> document(std::string_view path) const;
  Result<std::vector<DocumentInfo>> documents() const;  // every document, sorted by path

  Result<std::vector<Hit>> bm25(std::string_view query, int64_t k) const;
  Result<std::vector<Hit>> dense(std::span<const float> query_vector, int64_t k) const;
  Result<std::vector<Hit>> hybrid(std::string_view query, std::span<const float> query_vector, int64_t k) const;
  Result<ChunkRow> chunk(int64_t chunk_id) const;
  Result<std::vector<ChunkRow>> chunks_of(std::string_view path) const;  // in index order
  // The chunks of `path` with first_index <= index <= last_index, in index order (neighbours of a hit).
  Result<std::vector<ChunkRow>> chunk_range(std::string_view path, int64_t first_index, int64_t last_index) const;

  const std::string& path() const { return path_; }

 private:
  Store();
  Status exec(const char* sql) const;
  Status init_schema(bool create);
  Result<IngestOutcome> ingest_locked(const DocumentInput& doc, bool* vectors_changed);
  Result<std::vector<Hit>> bm25_locked(std::string_view query, int64_t k) const;
  Result<std::vector<Hit>> dense_locked(std::span<const float> query_vector, int64_t k) const;
  Status load_vectors_locked() const;
  Status sql_error(const std::string& what) const;
  Result<int64_t> meta_int(const char* key) const;
  Status set_meta_int(const char* key, int64_t value);
  Status forget_words_locked(int64_t doc_id);  // subtracts a document's chunk lengths from total_words

  std::string path_;
  StoreOptions options_;
  sqlite3* db_ = nullptr;
  // The "porter" wrapper's context on db_ (replays ChunkInput::fts_tokens); outlives db_ (~Store closes it).
  std::unique_ptr<TokenReplay> replay_;
  mutable std::mutex mu_;
  // In-memory vector index, rebuilt when the stored vectors' generation changes (another writer).
  mutable std::unique_ptr<VectorIndex> vectors_;
  mutable int64_t vectors_generation_ = -1;
  mutable int64_t dense_queries_ = 0;  // since the vectors were loaded
};

}  // namespace cw::retrieval
