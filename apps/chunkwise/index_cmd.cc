// chunkwise index build --db FILE.db [--chunker SPEC] [--embed-model GGUF] [--threads N] FILES|DIRS...
// chunkwise index stats --db FILE.db [--json]
// chunkwise index rm --db FILE.db PATH...
// Argument parsing only: the work is pipelines::index_files and retrieval::Store.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "base/json.h"
#include "commands.h"
#include "pipelines/index.h"
#include "retrieval/store.h"
#include "text/embedder_model.h"
#include "threads_flag.h"

namespace cw::app {
namespace {

const char* kUsage =
    "usage: chunkwise index build --db FILE.db [--chunker SPEC] [--embed-model GGUF] [--threads N] FILES|DIRS...\n"
    "       chunkwise index stats --db FILE.db [--json]\n"
    "       chunkwise index rm --db FILE.db PATH...\n";

double mb(int64_t bytes) { return static_cast<double>(bytes) / 1e6; }

int build_main(int argc, char** argv) {
  const std::string cmd = "index build";
  std::string db, chunker, embed_model;
  int64_t threads = 1, busy_ms = 5000;
  std::vector<std::string> inputs;
  ArgParser p(cmd, "--db FILE.db [--chunker SPEC] [--embed-model GGUF] [--threads N] FILES|DIRS...",
              "Adds documents to an index (created when missing): each file is chunked, embedded when an embedding\n"
              "model is given, and written in one transaction. Directories are walked recursively. Unchanged files\n"
              "are skipped; changed ones replaced. Binary, invalid UTF-8 and unreadable files are skipped with a\n"
              "warning each. Default chunker: the index's own, else " +
                  std::string(pipelines::kDefaultChunker) + " (about 200 tokens).");
  p.option("--db", &db, "FILE.db", "the index (an SQLite file)");
  p.option("--chunker", &chunker, "SPEC", "chunker spec (see chunkwise chunk --help)");
  p.option("--embed-model", &embed_model, "GGUF", "embedding model for dense / hybrid retrieval (mean-pooled)");
  p.option("-t,--threads", &threads, "N", "chunking / embedding threads (default 1)", 1, 1024);
  p.option("--busy-timeout", &busy_ms, "MS", "wait this long for another writer (default 5000)", 0, 3600000);
  p.positionals(&inputs, "FILES|DIRS...", "documents to index");
  if (Status s = p.parse(argc, argv, 3); !s.is_ok()) return report_error(cmd, s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }
  if (db.empty()) return report_error(cmd, invalid_argument("--db FILE.db is required"));
  if (inputs.empty()) return report_error(cmd, invalid_argument("no FILES or DIRS to index"));
  const int n_threads = capped_threads_flag(cmd.c_str(), "--threads", threads);

  retrieval::StoreOptions so;
  so.busy_timeout_ms = static_cast<int>(busy_ms);
  auto store = retrieval::Store::open(db, /*create=*/true, so);
  if (!store.is_ok()) return report_error(cmd, store.status());
  auto stats = (*store)->stats();
  if (!stats.is_ok()) return report_error(cmd, stats.status());

  pipelines::IndexOptions opt;
  opt.threads = n_threads;
  if (p.given("--chunker")) {
    opt.chunker = chunker;
  } else if (!stats->chunker.empty() && stats->chunker.find(" | ") == std::string::npos) {
    opt.chunker = stats->chunker;  // keep the index's chunker, so that a re-run is a no-op
  }
  std::unique_ptr<text::ModelEmbedder> embedder;
  if (!embed_model.empty()) {
    text::ModelEmbedderOptions mo;
    mo.threads = n_threads;
    auto e = text::ModelEmbedder::load(embed_model, mo);
    if (!e.is_ok()) return report_error(cmd, e.status());
    embedder = std::move(e).value();
    opt.embedder = embedder.get();
  } else if (stats->vectors > 0) {
    return report_error(cmd, invalid_argument("index '" + db + "' holds vectors of " + stats->embedder +
                                              "; pass --embed-model to add documents to it"));
  }

  const bool tty = ::isatty(STDERR_FILENO) == 1;
  bool progress_shown = false;
  auto warn = [&](const std::string& line) {
    if (progress_shown) std::fputc('\n', stderr);
    progress_shown = false;
    std::fprintf(stderr, "chunkwise %s: warning: skipped %s\n", cmd.c_str(), line.c_str());
  };
  int64_t skipped_paths = 0;
  std::vector<std::string> files = pipelines::collect_files(inputs, warn, &skipped_paths);
  // The index itself (and its -wal / -shm files) may sit inside a folder being indexed: never a document.
  {
    std::error_code ec;
    const std::filesystem::path self = std::filesystem::weakly_canonical(db, ec);
    std::erase_if(files, [&](const std::string& f) {
      std::error_code e2;
      const std::string c = std::filesystem::weakly_canonical(f, e2).string();
      for (const char* suffix : {"", "-wal", "-shm", "-journal"})
        if (!ec && !e2 && c == self.string() + suffix) return true;
      return false;
    });
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  opt.warn = warn;
  if (tty) {
    opt.progress = [&](const pipelines::IndexProgress& pr) {
      const int width = 30;
      const int fill = pr.files_total > 0 ? static_cast<int>(width * pr.files_done / pr.files_total) : width;
      std::fprintf(stderr, "\rindex: [%.*s%*s] %lld/%lld files, %.1f MB, %.1f MB/s", fill,
                   "##############################", width - fill, "", static_cast<long long>(pr.files_done),
                   static_cast<long long>(pr.files_total), mb(pr.bytes_done), mb(pr.bytes_done) / std::max(1e-9, seconds()));
      progress_shown = true;
    };
  }
  auto report = pipelines::index_files(**store, files, opt);
  if (progress_shown) std::fputc('\n', stderr);
  if (!report.is_ok()) return report_error(cmd, report.status());
  const double s = seconds();
  std::printf("indexed %lld files into %s: %lld added, %lld replaced, %lld unchanged, %lld skipped; %lld chunks, "
              "%.2f MB in %.2f s (%.1f MB/s)\n",
              static_cast<long long>(report->files), db.c_str(), static_cast<long long>(report->added),
              static_cast<long long>(report->replaced), static_cast<long long>(report->unchanged),
              static_cast<long long>(report->skipped + skipped_paths), static_cast<long long>(report->chunks),
              mb(report->bytes), s, mb(report->bytes) / std::max(1e-9, s));
  return kExitOk;
}

int stats_main(int argc, char** argv) {
  const std::string cmd = "index stats";
  std::string db;
  bool json = false;
  ArgParser p(cmd, "--db FILE.db [--json]", "Shows what an index holds.");
  p.option("--db", &db, "FILE.db", "the index");
  p.flag("--json", &json, "print one JSON object");
  if (Status s = p.parse(argc, argv, 3); !s.is_ok()) return report_error(cmd, s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }
  if (db.empty()) return report_error(cmd, invalid_argument("--db FILE.db is required"));
  auto store = retrieval::Store::open(db, /*create=*/false);
  if (!store.is_ok()) return report_error(cmd, store.status());
  auto st = (*store)->stats();
  if (!st.is_ok()) return report_error(cmd, st.status());
  if (json) {
    JsonWriter w;
    w.begin_object().key("db").value(db).key("schema_version").value(retrieval::kSchemaVersion);
    w.key("documents").value(st->documents).key("chunks").value(st->chunks).key("vectors").value(st->vectors);
    w.key("bytes").value(st->bytes).key("dim").value(st->dim).key("embedder").value(st->embedder);
    w.key("chunker").value(st->chunker).end_object();
    std::printf("%s\n", w.str().c_str());
  } else {
    std::printf("index      %s (schema %d)\ndocuments  %lld\nchunks     %lld\nbytes      %lld (%.2f MB)\n", db.c_str(),
                retrieval::kSchemaVersion, static_cast<long long>(st->documents), static_cast<long long>(st->chunks),
                static_cast<long long>(st->bytes), mb(st->bytes));
    std::printf("chunker    %s\n", st->chunker.empty() ? "-" : st->chunker.c_str());
    if (st->vectors > 0)
      std::printf("vectors    %lld (dim %lld, %s)\n", static_cast<long long>(st->vectors),
                  static_cast<long long>(st->dim), st->embedder.c_str());
    else
      std::printf("vectors    0 (BM25 only)\n");
  }
  return kExitOk;
}

int rm_main(int argc, char** argv) {
  const std::string cmd = "index rm";
  std::string db;
  int64_t busy_ms = 5000;
  std::vector<std::string> paths;
  ArgParser p(cmd, "--db FILE.db PATH...", "Removes documents (by the path they were indexed under) from an index.");
  p.option("--db", &db, "FILE.db", "the index");
  p.option("--busy-timeout", &busy_ms, "MS", "wait this long for another writer (default 5000)", 0, 3600000);
  p.positionals(&paths, "PATH...", "document paths as `index build` recorded them");
  if (Status s = p.parse(argc, argv, 3); !s.is_ok()) return report_error(cmd, s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }
  if (db.empty()) return report_error(cmd, invalid_argument("--db FILE.db is required"));
  if (paths.empty()) return report_error(cmd, invalid_argument("no PATH to remove"));
  retrieval::StoreOptions so;
  so.busy_timeout_ms = static_cast<int>(busy_ms);
  auto store = retrieval::Store::open(db, /*create=*/false, so);
  if (!store.is_ok()) return report_error(cmd, store.status());
  int64_t removed = 0, unknown = 0;
  for (const std::string& path : paths) {
    auto r = (*store)->remove(path);
    if (!r.is_ok()) return report_error(cmd, r.status());
    if (*r) {
      ++removed;
    } else {
      ++unknown;
      std::fprintf(stderr, "chunkwise %s: '%s' is not in the index\n", cmd.c_str(), path.c_str());
    }
  }
  std::printf("removed %lld of %zu documents from %s\n", static_cast<long long>(removed), paths.size(), db.c_str());
  return unknown > 0 ? kExitBadInput : kExitOk;
}

}  // namespace

int index_main(int argc, char** argv) {
  const std::string action = argc >= 3 ? argv[2] : "";
  if (action == "build") return build_main(argc, argv);
  if (action == "stats") return stats_main(argc, argv);
  if (action == "rm") return rm_main(argc, argv);
  if (action == "-h" || action == "--help") {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  std::fprintf(stderr, "chunkwise index: %s\n%s",
               action.empty() ? "missing action (build, stats, rm)" : ("unknown action '" + action + "' (build, stats, rm)").c_str(),
               kUsage);
  return kExitBadInput;
}

}  // namespace cw::app
