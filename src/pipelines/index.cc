#include "pipelines/index.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "base/mapped_file.h"
#include "base/utf8.h"
#include "text/chunker.h"
#include "text/embedder.h"

namespace cw::pipelines {
namespace fs = std::filesystem;

std::vector<std::string> collect_files(const std::vector<std::string>& paths,
                                       const std::function<void(const std::string&)>& warn, int64_t* n_skipped) {
  std::vector<std::string> out;
  auto skip = [&](const std::string& msg) {
    if (warn) warn(msg);
    if (n_skipped != nullptr) ++*n_skipped;
  };
  for (const std::string& p : paths) {
    std::error_code ec;
    const fs::file_status st = fs::status(p, ec);
    if (ec || !fs::exists(st)) {
      skip("'" + p + "': no such file or directory");
    } else if (fs::is_regular_file(st)) {
      out.push_back(p);
    } else if (fs::is_directory(st)) {
      std::vector<std::string> found;
      fs::recursive_directory_iterator it(p, fs::directory_options::skip_permission_denied, ec), end;
      if (ec) {
        skip("'" + p + "': cannot read the directory: " + ec.message());
        continue;
      }
      for (; it != end; it.increment(ec)) {
        if (ec) {
          skip("'" + p + "': cannot walk the directory: " + ec.message());
          break;
        }
        std::error_code e2;
        if (it->is_regular_file(e2)) found.push_back(it->path().string());
      }
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else {
      skip("'" + p + "': not a regular file or directory");
    }
  }
  // A file named twice (or inside two named folders) is one document, indexed once.
  std::vector<std::string> unique;
  std::unordered_set<std::string> seen;
  for (std::string& f : out)
    if (seen.insert(fs::path(f).lexically_normal().string()).second) unique.push_back(std::move(f));
  return unique;
}

namespace {

struct Slot {
  MappedFile mapped;
  retrieval::DocumentInput doc;
  std::string warning;  // non-empty: skipped
  bool unchanged = false;
  bool ready = false;
  int64_t bytes = 0;
};

// Why `text` is not indexable ("" when it is).
std::string not_text_reason(std::string_view text) {
  const size_t head = std::min<size_t>(text.size(), 8192);
  if (std::memchr(text.data(), 0, head) != nullptr) return "binary file (NUL bytes)";
  size_t i = 0;
  while (i < text.size()) {
    if (i + 8 <= text.size()) {  // ASCII fast path, 8 bytes at a time
      uint64_t w;
      std::memcpy(&w, text.data() + i, 8);
      if ((w & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = utf8_valid_prefix_len(text.substr(i));
    if (n == 0) return "invalid UTF-8 at byte " + std::to_string(i);
    i += n;
  }
  return "";
}

}  // namespace

Result<IndexReport> index_files(retrieval::Store& store, const std::vector<std::string>& files,
                                const IndexOptions& options) {
  CW_ASSIGN_OR_RETURN(std::unique_ptr<text::Chunker> chunker, text::make_chunker(options.chunker));
  const std::string embedder_name = options.embedder != nullptr ? options.embedder->name() : "";
  std::unordered_map<std::string, retrieval::DocumentInfo> known;
  {
    CW_ASSIGN_OR_RETURN(std::vector<retrieval::DocumentInfo> docs, store.documents());
    for (auto& d : docs) known.emplace(d.path, std::move(d));
  }

  // Fewer FTS5 merges while writing, one full merge at the end (Store::begin_bulk / end_bulk).
  CW_RETURN_IF_ERROR(store.begin_bulk());

  const size_t n = files.size();
  const int n_workers = std::max(1, std::min<int>(options.threads, static_cast<int>(std::max<size_t>(1, n))));
  const size_t window = static_cast<size_t>(4 * n_workers);
  std::vector<Slot> slots(n);
  std::mutex mu;
  std::condition_variable cv;
  size_t next_write = 0;  // guarded by mu
  bool stop = false;      // guarded by mu
  std::atomic<size_t> next{0};
  // One FTS5 tokenizer per worker: the workers pre-compute each chunk's index tokens, which takes that work
  // off this (the writing) thread, the one a bulk build waits on. Without one the store tokenizes as before.
  std::vector<std::unique_ptr<retrieval::FtsTokenizer>> tokenizers(static_cast<size_t>(n_workers));
  for (auto& t : tokenizers) {
    auto made = store.make_fts_tokenizer();
    if (made.is_ok()) t = std::move(made).value();
  }

  auto prepare = [&](size_t k, Slot& s, retrieval::FtsTokenizer* tokenizer) {
    const std::string& path = files[k];
    auto m = MappedFile::open(path);
    if (!m.is_ok()) {
      s.warning = m.status().message();
      return;
    }
    s.mapped = std::move(m).value();
    s.bytes = static_cast<int64_t>(s.mapped.size());
    const std::string_view text(reinterpret_cast<const char*>(s.mapped.data()), s.mapped.size());
    if (std::string why = not_text_reason(text); !why.empty()) {
      s.warning = "'" + path + "': " + why;
      return;
    }
    auto it = known.find(path);
    if (it != known.end() && it->second.chunker == options.chunker && it->second.embedder == embedder_name &&
        it->second.content_hash == retrieval::content_hash(text)) {
      s.unchanged = true;
      return;
    }
    auto chunks = chunker->chunk(path, text);
    if (!chunks.is_ok()) {
      s.warning = "'" + path + "': " + chunks.status().message();
      return;
    }
    s.doc.path = path;
    s.doc.text = text;
    s.doc.chunker = options.chunker;
    s.doc.chunks.reserve(chunks->size());
    for (const text::Chunk& c : *chunks) {
      s.doc.chunks.push_back({c.index, c.byte_begin, c.byte_end, c.char_begin, c.char_end, c.n_tokens});
      if (tokenizer != nullptr) s.doc.chunks.back().fts_tokens = tokenizer->tokenize(c.text_in(text));
    }
    if (options.embedder != nullptr && !chunks->empty()) {
      std::vector<std::string_view> texts;
      texts.reserve(chunks->size());
      for (const text::Chunk& c : *chunks) texts.push_back(c.text_in(text));
      if (Status st = options.embedder->embed(texts, &s.doc.vectors); !st.is_ok()) {
        s.warning = "'" + path + "': cannot embed: " + st.message();
        return;
      }
      s.doc.embedder = embedder_name;
    }
  };

  std::vector<std::thread> workers;
  for (int t = 0; t < n_workers; ++t) {
    workers.emplace_back([&, t] {
      for (;;) {
        const size_t k = next.fetch_add(1);
        if (k >= n) return;
        {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return stop || k < next_write + window; });
          if (stop) return;
        }
        Slot local;
        prepare(k, local, tokenizers[static_cast<size_t>(t)].get());
        std::lock_guard<std::mutex> lock(mu);
        slots[k] = std::move(local);
        slots[k].ready = true;
        cv.notify_all();
      }
    });
  }

  IndexReport report;
  report.files = static_cast<int64_t>(n);
  Status failure;
  IndexProgress progress;
  progress.files_total = static_cast<int64_t>(n);
  // Documents to write are committed in batches (one transaction each, whole documents only): up to
  // kBatchBytes of text or kBatchDocs documents, fewer when the workers fall behind.
  constexpr int64_t kBatchBytes = int64_t{8} << 20;
  constexpr size_t kBatchDocs = 64;
  std::vector<Slot> pending;
  int64_t pending_bytes = 0;
  auto flush = [&]() -> Status {
    if (pending.empty()) return Status::ok();
    std::vector<retrieval::DocumentInput> docs;
    docs.reserve(pending.size());
    for (Slot& p : pending) docs.push_back(std::move(p.doc));  // texts stay mapped by the slots
    auto r = store.ingest_batch(docs);
    if (!r.is_ok()) return r.status();
    for (size_t i = 0; i < docs.size(); ++i) {
      switch ((*r)[i]) {
        case retrieval::IngestOutcome::kAdded: ++report.added; break;
        case retrieval::IngestOutcome::kReplaced: ++report.replaced; break;
        case retrieval::IngestOutcome::kUnchanged: ++report.unchanged; break;
      }
      if ((*r)[i] != retrieval::IngestOutcome::kUnchanged) {
        report.chunks += static_cast<int64_t>(docs[i].chunks.size());
        report.bytes += pending[i].bytes;
      }
    }
    pending.clear();
    pending_bytes = 0;
    return Status::ok();
  };
  for (size_t k = 0; k < n; ++k) {
    Slot s;
    bool next_ready = false;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return slots[k].ready; });
      s = std::move(slots[k]);
      next_ready = k + 1 < n && slots[k + 1].ready;
    }
    const int64_t bytes = s.bytes;
    if (!s.warning.empty()) {
      ++report.skipped;
      if (options.warn) options.warn(s.warning);
    } else if (s.unchanged) {
      ++report.unchanged;
    } else {
      pending_bytes += s.bytes;
      pending.push_back(std::move(s));
    }
    if (pending_bytes >= kBatchBytes || pending.size() >= kBatchDocs || !next_ready || k + 1 == n)
      failure = flush();
    {
      std::lock_guard<std::mutex> lock(mu);
      next_write = k + 1;
      if (!failure.is_ok()) stop = true;
      cv.notify_all();
    }
    if (!failure.is_ok()) break;
    progress.files_done = static_cast<int64_t>(k + 1);
    progress.bytes_done += bytes;
    if (options.progress) options.progress(progress);
  }
  for (std::thread& t : workers) t.join();
  if (!failure.is_ok()) {
    (void)store.end_bulk(/*optimize=*/false);  // the failure is what the caller needs to hear about
    return failure;
  }
  // Merge the whole full-text index when this build wrote a good part of it (a quarter of the text or
  // more); a small update leaves its few new segments to FTS5's incremental merging.
  CW_ASSIGN_OR_RETURN(const retrieval::StoreStats st, store.stats());
  CW_RETURN_IF_ERROR(store.end_bulk(/*optimize=*/report.bytes > 0 && report.bytes * 4 >= st.bytes));
  return report;
}

}  // namespace cw::pipelines
