// End-to-end tests of `chunkwise index` and `chunkwise query` (issue 13): build / re-run no-op / replace /
// rm, stats, BM25 / dense / hybrid queries, selectors, skipped inputs (binary, invalid UTF-8, unreadable),
// bad databases (non-SQLite, newer schema, locked), and crash safety (SIGKILL mid-ingest).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "base/json_value.h"
#include "retrieval/store.h"
#include "support/testing.h"

namespace cw {
namespace {

using testing::chunkwise_binary;
using testing::run_command;
using testing::shell_quote;
namespace fs = std::filesystem;

std::string fresh_dir(const std::string& name) {
  const std::string d = testing::temp_dir() + "/" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write(const std::string& path, const std::string& data) { std::ofstream(path, std::ios::binary) << data; }

testing::CommandResult cw(const std::string& args) { return run_command(shell_quote(chunkwise_binary()) + " " + args); }

JsonValue parse(const std::string& s) {
  auto j = JsonValue::parse(s);
  EXPECT_TRUE(j.is_ok()) << s;
  return j.is_ok() ? std::move(j).value() : JsonValue();
}

int64_t num(const JsonValue& obj, const char* key) {
  const JsonValue* v = obj.get(key);
  return v == nullptr ? -1 : static_cast<int64_t>(v->as_number());
}

// A small corpus: three topical files in a tree, plus files that must be skipped.
std::string make_corpus(const std::string& name) {
  const std::string d = fresh_dir(name);
  fs::create_directories(d + "/sub/deeper");
  write(d + "/solar.txt", "Solar panels convert sunlight into electricity. Photovoltaic cells are made of silicon.\n");
  write(d + "/sub/baking.md", "# Baking\n\nTo bake bread you need flour, water, yeast and salt. Knead the dough.\n");
  write(d + "/sub/deeper/ships.txt", "Sailing ships crossed the ocean with the wind. The captain read the stars.\n");
  write(d + "/binary.bin", std::string("\x7f" "ELF\0\0\x01\x02 binary", 14));
  write(d + "/latin1.txt", "caf\xe9 au lait\n");
  return d;
}

TEST(IndexCliTest, BuildQueryRebuildRemove) {
  const std::string d = make_corpus("corpus1");
  const std::string db = d + "/../corpus1.db";
  fs::remove(db);
  auto r = cw("index build --db " + shell_quote(db) + " " + shell_quote(d));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("3 added"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 skipped"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("binary.bin': binary file"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("latin1.txt': invalid UTF-8 at byte 3"), std::string::npos) << r.err;

  auto st = cw("index stats --json --db " + shell_quote(db));
  ASSERT_EQ(st.exit_code, 0) << st.err;
  JsonValue s = parse(st.out);
  EXPECT_EQ(num(s, "documents"), 3);
  EXPECT_EQ(num(s, "vectors"), 0);
  EXPECT_EQ(s.get("chunker")->as_string(), "recursive:size=800,unit=chars");
  EXPECT_EQ(cw("index stats --db " + shell_quote(db)).exit_code, 0);

  auto q = cw("query --json -k 3 --db " + shell_quote(db) + " 'How is bread baked?'");
  ASSERT_EQ(q.exit_code, 0) << q.err;
  JsonValue hits = parse(q.out);
  ASSERT_TRUE(hits.is_array());
  ASSERT_GE(hits.items().size(), 1u);
  const JsonValue& top = hits.items()[0];
  EXPECT_EQ(top.get("path")->as_string(), d + "/sub/baking.md");
  EXPECT_EQ(num(top, "byte_begin"), 0);
  EXPECT_NE(top.get("text")->as_string().find("Knead the dough"), std::string::npos);
  EXPECT_GT(top.get("score")->as_number(), 0);
  auto text_q = cw("query --db " + shell_quote(db) + " sailing ocean wind");
  ASSERT_EQ(text_q.exit_code, 0) << text_q.err;
  EXPECT_NE(text_q.out.find("1. score"), std::string::npos);
  EXPECT_NE(text_q.out.find("ships.txt"), std::string::npos);

  // A re-run changes nothing; an edited file is replaced; rm removes.
  r = cw("index build --db " + shell_quote(db) + " " + shell_quote(d));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("0 added, 0 replaced, 3 unchanged"), std::string::npos) << r.out;
  write(d + "/solar.txt", "Wind turbines turn moving air into electricity.\n");
  r = cw("index build --db " + shell_quote(db) + " " + shell_quote(d));
  EXPECT_NE(r.out.find("0 added, 1 replaced, 2 unchanged"), std::string::npos) << r.out;
  q = cw("query --json --db " + shell_quote(db) + " photovoltaic silicon");
  EXPECT_EQ(parse(q.out).items().size(), 0u) << q.out;
  r = cw("index rm --db " + shell_quote(db) + " " + shell_quote(d + "/solar.txt") + " nope.txt");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("removed 1 of 2"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("'nope.txt' is not in the index"), std::string::npos) << r.err;
  EXPECT_EQ(num(parse(cw("index stats --json --db " + shell_quote(db)).out), "documents"), 2);

  // Selectors and retrievers through the CLI.
  q = cw("query --json --select neighbors:n=1,base=topk:k=1 --db " + shell_quote(db) + " bread");
  ASSERT_EQ(q.exit_code, 0) << q.err;
  q = cw("query --select nope --db " + shell_quote(db) + " bread");
  EXPECT_EQ(q.exit_code, 2);
  EXPECT_NE(q.err.find("unknown selector 'nope'"), std::string::npos) << q.err;
  q = cw("query --retriever dense --db " + shell_quote(db) + " bread");
  EXPECT_EQ(q.exit_code, 2);
  EXPECT_NE(q.err.find("holds no vectors"), std::string::npos) << q.err;
  q = cw("query --retriever sparse --db " + shell_quote(db) + " bread");
  EXPECT_NE(q.err.find("bm25, dense, hybrid"), std::string::npos) << q.err;
}

TEST(IndexCliTest, UnreadableInputsAreSkippedNotFatal) {
  const std::string d = fresh_dir("unreadable");
  write(d + "/ok.txt", "plain words here\n");
  write(d + "/locked.txt", "secret words\n");
  ::chmod((d + "/locked.txt").c_str(), 0);
  ASSERT_EQ(::mkfifo((d + "/fifo").c_str(), 0644), 0);
  const std::string db = d + "/x.db";
  auto r = cw("index build --db " + shell_quote(db) + " " + shell_quote(d + "/ok.txt") + " " +
              shell_quote(d + "/locked.txt") + " " + shell_quote(d + "/fifo") + " " + shell_quote(d + "/missing.txt"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("fifo': not a regular file"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("missing.txt': no such file"), std::string::npos) << r.err;
  if (::geteuid() != 0) {  // root reads a mode-000 file
    EXPECT_NE(r.err.find("locked.txt"), std::string::npos) << r.err;
    EXPECT_NE(r.out.find("1 added"), std::string::npos) << r.out;
  }
}

// The index inside the folder it indexes is not a document; a file named twice is indexed once.
TEST(IndexCliTest, IndexInsideItsFolderAndDuplicatePaths) {
  const std::string d = fresh_dir("selfdir");
  write(d + "/a.txt", "hello world\n");
  const std::string db = d + "/self.db";
  auto r = cw("index build --db " + shell_quote(db) + " " + shell_quote(d) + " " + shell_quote(d + "/a.txt") + " " +
              shell_quote(d + "/./a.txt"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("indexed 1 files"), std::string::npos) << r.out;
  r = cw("index build --db " + shell_quote(db) + " " + shell_quote(d));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("0 added, 0 replaced, 1 unchanged, 0 skipped"), std::string::npos) << r.out;
  EXPECT_EQ(r.err, "");
}

TEST(IndexCliTest, BadDatabases) {
  const std::string d = fresh_dir("baddb");
  write(d + "/doc.txt", "hello world\n");
  write(d + "/notdb.db", std::string(4096, 'x'));
  auto r = cw("index build --db " + shell_quote(d + "/notdb.db") + " " + shell_quote(d + "/doc.txt"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("is not a chunkwise index (not an SQLite database)"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
  r = cw("query --db " + shell_quote(d + "/missing.db") + " hello");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;

  const std::string db = d + "/newer.db";
  ASSERT_EQ(cw("index build --db " + shell_quote(db) + " " + shell_quote(d + "/doc.txt")).exit_code, 0);
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  for (const std::string& args : {"index stats --db " + shell_quote(db), "query --db " + shell_quote(db) + " hello",
                                  "index build --db " + shell_quote(db) + " " + shell_quote(d + "/doc.txt")}) {
    r = cw(args);
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_NE(r.err.find("schema version 99; this chunkwise reads version 1"), std::string::npos) << r.err;
  }

  // Locked: another connection holds a write transaction -> a clear error after the busy timeout.
  const std::string ldb = d + "/locked.db";
  ASSERT_EQ(cw("index build --db " + shell_quote(ldb) + " " + shell_quote(d + "/doc.txt")).exit_code, 0);
  write(d + "/doc2.txt", "another document\n");
  ASSERT_EQ(sqlite3_open(ldb.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "BEGIN IMMEDIATE; INSERT INTO meta VALUES('k', 'v');", nullptr, nullptr, nullptr), SQLITE_OK);
  const auto t0 = std::chrono::steady_clock::now();
  r = cw("index build --busy-timeout 300 --db " + shell_quote(ldb) + " " + shell_quote(d + "/doc2.txt"));
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("is locked by another writer (waited 300 ms)"), std::string::npos) << r.err;
  EXPECT_LT(waited, 10.0);
  // Readers are not blocked.
  r = cw("query --db " + shell_quote(ldb) + " hello");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  sqlite3_exec(raw, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(raw);
}

// SIGKILL mid-ingest: the db opens, passes integrity_check, holds exactly whole documents (a prefix of the
// input order), and a re-run completes it.
TEST(IndexCliTest, KilledBuildLeavesWholeDocuments) {
  const std::string d = fresh_dir("crash");
  const int n_files = 300;
  fs::create_directories(d + "/docs");
  std::mt19937 rng(13);
  static const char* kWords[] = {"river", "stone", "light", "market", "engine", "garden", "winter", "signal",
                                 "paper", "orbit", "harbor", "valley", "copper", "thread", "castle", "forest"};
  for (int i = 0; i < n_files; ++i) {
    std::string text;
    while (text.size() < 60000) {
      text += kWords[rng() % 16];
      text += (rng() % 12 == 0) ? ".\n" : " ";
    }
    char name[32];
    std::snprintf(name, sizeof name, "/f%04d.txt", i);
    write(d + "/docs" + name, text);
  }
  const std::string db = d + "/crash.db";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int null_fd = ::open("/dev/null", O_WRONLY);
    ::dup2(null_fd, 1);
    ::dup2(null_fd, 2);
    const std::string bin = chunkwise_binary(), docs = d + "/docs";
    ::execl(bin.c_str(), bin.c_str(), "index", "build", "--chunker", "recursive:size=500,unit=chars", "--db",
            db.c_str(), docs.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Read while the writer ingests, and kill it once some documents are in.
  int64_t seen = 0;
  for (int i = 0; i < 4000 && seen < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (!fs::exists(db)) continue;
    auto s = retrieval::Store::open(db, false);
    if (!s.is_ok()) continue;
    auto st = (*s)->stats();
    if (st.is_ok()) seen = st->documents;
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the build finished before it was killed (" << seen << " documents seen)";
  ASSERT_GE(seen, 20);

  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA integrity_check", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "ok");
  sqlite3_finalize(st);
  ASSERT_EQ(sqlite3_exec(raw, "INSERT INTO chunk_text(chunk_text) VALUES('integrity-check')", nullptr, nullptr, nullptr),
            SQLITE_OK);
  // Every document whole: chunks 0..n-1 tile [0, bytes) exactly (overlap 0), each with its text row.
  const char* kWhole =
      "SELECT d.path, d.bytes, count(c.chunk_id), coalesce(min(c.idx), 0), coalesce(max(c.idx), -1),"
      " coalesce(sum(c.byte_end - c.byte_begin), 0), coalesce(min(c.byte_begin), 0), coalesce(max(c.byte_end), 0),"
      " (SELECT count(*) FROM chunk_text t WHERE t.rowid IN (SELECT chunk_id FROM chunks c2 WHERE c2.doc_id = d.doc_id))"
      " FROM documents d LEFT JOIN chunks c ON c.doc_id = d.doc_id GROUP BY d.doc_id ORDER BY d.path";
  ASSERT_EQ(sqlite3_prepare_v2(raw, kWhole, -1, &st, nullptr), SQLITE_OK);
  int64_t n_docs = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    const std::string path = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    char name[32];
    std::snprintf(name, sizeof name, "/f%04d.txt", static_cast<int>(n_docs));
    EXPECT_EQ(path, d + "/docs" + name) << "documents are not a prefix of the input order";
    const int64_t bytes = sqlite3_column_int64(st, 1), n = sqlite3_column_int64(st, 2);
    EXPECT_EQ(bytes, static_cast<int64_t>(fs::file_size(path)));
    EXPECT_GT(n, 0);
    EXPECT_EQ(sqlite3_column_int64(st, 3), 0) << path;
    EXPECT_EQ(sqlite3_column_int64(st, 4), n - 1) << path;
    EXPECT_EQ(sqlite3_column_int64(st, 5), bytes) << path;
    EXPECT_EQ(sqlite3_column_int64(st, 6), 0) << path;
    EXPECT_EQ(sqlite3_column_int64(st, 7), bytes) << path;
    EXPECT_EQ(sqlite3_column_int64(st, 8), n) << path;
    ++n_docs;
  }
  sqlite3_finalize(st);
  sqlite3_close(raw);
  EXPECT_GE(n_docs, seen);
  EXPECT_LT(n_docs, n_files);

  auto r = cw("index build --chunker recursive:size=500,unit=chars --db " + shell_quote(db) + " " + shell_quote(d + "/docs"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(std::to_string(n_files - n_docs) + " added, 0 replaced, " + std::to_string(n_docs) + " unchanged"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(num(parse(cw("index stats --json --db " + shell_quote(db)).out), "documents"), n_files);
}

// Dense and hybrid retrieval with the mean-pooled decoder embedder (stories260K from ../shared).
TEST(IndexCliTest, DenseAndHybridWithAnEmbeddingModel) {
  CW_REQUIRE_SHARED_DATA(data);
  const std::string model = data + "/models/stories260K.gguf";
  const std::string d = make_corpus("corpus_dense");
  const std::string db = d + "/../dense.db";
  fs::remove(db);
  auto r = cw("index build --embed-model " + shell_quote(model) + " --db " + shell_quote(db) + " " + shell_quote(d));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  JsonValue s = parse(cw("index stats --json --db " + shell_quote(db)).out);
  EXPECT_EQ(num(s, "vectors"), num(s, "chunks"));
  EXPECT_GT(num(s, "dim"), 0);
  for (const char* retriever : {"dense", "hybrid"}) {
    auto q = cw(std::string("query --json -k 2 --retriever ") + retriever + " --embed-model " + shell_quote(model) +
                " --db " + shell_quote(db) + " 'bread and flour'");
    ASSERT_EQ(q.exit_code, 0) << q.err;
    EXPECT_EQ(parse(q.out).items().size(), 2u) << q.out;
  }
  auto q = cw("query --retriever hybrid --db " + shell_quote(db) + " bread");
  EXPECT_EQ(q.exit_code, 2);
  EXPECT_NE(q.err.find("needs the embedding model"), std::string::npos) << q.err;
  // Adding to an index with vectors needs the model.
  r = cw("index build --db " + shell_quote(db) + " " + shell_quote(d));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("pass --embed-model"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace cw
