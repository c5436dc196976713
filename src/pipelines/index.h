// cw::pipelines — indexing: files -> chunker (text::make_chunker) -> embedder (optional) -> retrieval::Store.
//
// index_files() reads each file (mmap), skips what is not indexable text — unreadable, binary (a NUL byte in
// its first 8 KiB, which also catches UTF-16/32), invalid UTF-8 — with one warning line each, skips files
// whose content hash, chunker and embedder match the index (before chunking them), chunks, tokenizes for
// FTS5 (retrieval::FtsTokenizer: work the writing thread, which a bulk build waits on, then skips) and embeds
// the rest on `threads` worker threads, and ingests them in input order on the calling thread, whole documents
// per transaction (batches of up to 8 MiB / 64 documents while the workers keep ahead). A per-file problem never stops the run; a Store error (locked, disk full) does, keeping every
// document committed before it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "retrieval/store.h"

namespace cw::text {
class Embedder;
}

namespace cw::pipelines {

// ~200 tokens of English prose (about 4 characters per token) without needing a tokenizer file: the chunk
// size of the best results in Chroma's chunking study (Recursive-200 / Cluster-200).
inline constexpr const char* kDefaultChunker = "recursive:size=800,unit=chars";

struct IndexProgress {
  int64_t files_done = 0, files_total = 0;
  int64_t bytes_done = 0;  // bytes of the files handled so far (indexed, unchanged or skipped)
};

struct IndexOptions {
  std::string chunker = kDefaultChunker;       // chunker spec
  const text::Embedder* embedder = nullptr;    // null: BM25 only
  int threads = 1;                             // chunking / embedding threads (>= 1)
  std::function<void(const std::string&)> warn;                  // one line per skipped file (may be empty)
  std::function<void(const IndexProgress&)> progress;            // after each file (may be empty)
};

struct IndexReport {
  int64_t files = 0, added = 0, replaced = 0, unchanged = 0, skipped = 0;
  int64_t chunks = 0;  // chunks written
  int64_t bytes = 0;   // bytes of the files added or replaced
};

// FILES|DIRS -> files: a directory is walked recursively (regular files, sorted by path; symbolic links to
// directories are not followed); a path that is neither a file nor a directory is warned about and counted
// in *n_skipped. Paths are kept as given (joined with the directory's entries), so they are the documents' ids.
std::vector<std::string> collect_files(const std::vector<std::string>& paths,
                                       const std::function<void(const std::string&)>& warn, int64_t* n_skipped);

// Errors: a bad chunker spec (before anything is written), a Store error.
Result<IndexReport> index_files(retrieval::Store& store, const std::vector<std::string>& files,
                                const IndexOptions& options);

}  // namespace cw::pipelines
