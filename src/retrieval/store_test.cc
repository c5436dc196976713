// Store: ingest / no-op / replace / remove, BM25 ranking sanity, exact dense search, hybrid fusion, schema
// and locking errors.
#include "retrieval/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <cmath>
#include <fstream>

#include "retrieval/bm25_rank.h"
#include "retrieval/store_testing.h"
#include "support/testing.h"

namespace cw::retrieval {
namespace {

// A document cut at the given byte offsets (ASCII text: chars = bytes), n_tokens = word count.
DocumentInput make_doc(const std::string& path, std::string_view text, std::vector<int64_t> cuts,
                       const std::string& chunker = "test:cuts") {
  DocumentInput d;
  d.path = path;
  d.text = text;
  d.chunker = chunker;
  int64_t begin = 0;
  cuts.push_back(static_cast<int64_t>(text.size()));
  for (int64_t end : cuts) {
    int64_t words = 0;
    for (int64_t i = begin; i < end; ++i)
      words += (text[i] != ' ' && (i == begin || text[i - 1] == ' ')) ? 1 : 0;
    d.chunks.push_back({static_cast<int64_t>(d.chunks.size()), begin, end, begin, end, words});
    begin = end;
  }
  return d;
}

std::unique_ptr<Store> memory_store() {
  auto s = Store::open(":memory:", true);
  EXPECT_TRUE(s.is_ok()) << s.status().message();
  return std::move(s).value();
}

TEST(StoreTest, IngestNoOpReplaceRemove) {
  auto store = memory_store();
  const std::string text = "the cat sat on the mat. dogs chase cats. ";
  auto r = store->ingest(make_doc("a.txt", text, {24}));
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(*r, IngestOutcome::kAdded);
  auto again = store->ingest(make_doc("a.txt", text, {24}));
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(*again, IngestOutcome::kUnchanged);
  // Another chunker for the same text is a change.
  auto rechunked = store->ingest(make_doc("a.txt", text, {10}, "test:other"));
  ASSERT_TRUE(rechunked.is_ok());
  EXPECT_EQ(*rechunked, IngestOutcome::kReplaced);
  const std::string text2 = "birds fly south in winter";
  auto replaced = store->ingest(make_doc("a.txt", text2, {6, 10}));
  ASSERT_TRUE(replaced.is_ok());
  EXPECT_EQ(*replaced, IngestOutcome::kReplaced);
  auto rows = store->chunks_of("a.txt");
  ASSERT_TRUE(rows.is_ok());
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].text, "birds ");
  EXPECT_EQ((*rows)[1].text, "fly ");
  EXPECT_EQ((*rows)[2].text, "south in winter");
  EXPECT_EQ((*rows)[2].byte_begin, 10);
  EXPECT_EQ((*rows)[2].n_tokens, 3);
  // The old chunks' text is gone from the FTS table.
  auto old = store->bm25("cat mat", 10);
  ASSERT_TRUE(old.is_ok());
  EXPECT_TRUE(old->empty());
  auto st = store->stats();
  ASSERT_TRUE(st.is_ok());
  EXPECT_EQ(st->documents, 1);
  EXPECT_EQ(st->chunks, 3);
  EXPECT_EQ(st->bytes, static_cast<int64_t>(text2.size()));
  EXPECT_EQ(st->chunker, "test:cuts");
  auto removed = store->remove("a.txt");
  ASSERT_TRUE(removed.is_ok());
  EXPECT_TRUE(*removed);
  auto unknown = store->remove("a.txt");
  ASSERT_TRUE(unknown.is_ok());
  EXPECT_FALSE(*unknown);
  st = store->stats();
  EXPECT_EQ(st->documents, 0);
  EXPECT_EQ(st->chunks, 0);
  auto none = store->bm25("birds", 10);
  ASSERT_TRUE(none.is_ok());
  EXPECT_TRUE(none->empty());
}

TEST(StoreTest, RejectsBadOffsetsAndVectors) {
  auto store = memory_store();
  DocumentInput d = make_doc("x", "hello world", {5});
  d.chunks[1].byte_end = 99;
  EXPECT_EQ(store->ingest(d).status().code(), StatusCode::kInvalidArgument);
  DocumentInput v = make_doc("y", "hello world", {5});
  v.vectors = {1, 0, 0};  // 3 values for 2 chunks
  v.embedder = "e";
  EXPECT_EQ(store->ingest(v).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->stats()->documents, 0);
}

TEST(StoreTest, Bm25RanksTheRelevantChunkFirst) {
  auto store = memory_store();
  const std::string a = "Solar panels convert sunlight into electricity. ";
  const std::string b = "The recipe needs flour, eggs and sugar. Bake the cake for an hour. ";
  const std::string c = "Electricity prices rose; sunlight is free, and solar power keeps getting cheaper. ";
  ASSERT_TRUE(store->ingest(make_doc("a", a + b, {static_cast<int64_t>(a.size())})).is_ok());
  ASSERT_TRUE(store->ingest(make_doc("c", c, {})).is_ok());
  auto hits = store->bm25("How do solar panels make electricity from sunlight?", 10);
  ASSERT_TRUE(hits.is_ok()) << hits.status().message();
  ASSERT_EQ(hits->size(), 2u);  // the cake chunk matches none of the words
  EXPECT_EQ(store->chunk((*hits)[0].chunk_id)->text, a);
  EXPECT_GT((*hits)[0].score, (*hits)[1].score);
  EXPECT_GT((*hits)[1].score, 0);
  // Porter stemming: "baking cakes" matches "Bake the cake".
  auto stem = store->bm25("baking cakes", 1);
  ASSERT_TRUE(stem.is_ok());
  ASSERT_EQ(stem->size(), 1u);
  EXPECT_EQ(store->chunk((*stem)[0].chunk_id)->text, b);
  // FTS5 syntax in a question is literal text, never an operator; punctuation-only words are harmless.
  for (const char* q : {"\"unbalanced", "NEAR(solar", "text:solar", "a AND OR NOT b", "— … “”", "*", ""}) {
    auto r = store->bm25(q, 5);
    EXPECT_TRUE(r.is_ok()) << q << ": " << r.status().message();
  }
  EXPECT_EQ(store->bm25("cake", 0)->size(), 0u);
}

DocumentInput with_vectors(DocumentInput d, std::vector<float> v, const std::string& embedder = "test:emb") {
  d.vectors = std::move(v);
  d.embedder = embedder;
  return d;
}

TEST(StoreTest, DenseExactAndHybrid) {
  auto store = memory_store();
  EXPECT_EQ(store->dense(std::vector<float>{1, 0}, 3).status().code(), StatusCode::kInvalidArgument);
  const std::string t = "alpha beta gamma delta";  // chunks "alpha ", "beta ", "gamma ", "delta"
  const float s = 1.0f / std::sqrt(2.0f);
  ASSERT_TRUE(store->ingest(with_vectors(make_doc("d", t, {6, 11, 17}), {1, 0, 0, 1, s, s, -1, 0})).is_ok());
  auto hits = store->dense(std::vector<float>{1, 0}, 3);
  ASSERT_TRUE(hits.is_ok()) << hits.status().message();
  ASSERT_EQ(hits->size(), 3u);
  auto text_of = [&](int64_t id) { return store->chunk(id)->text; };
  EXPECT_EQ(text_of((*hits)[0].chunk_id), "alpha ");
  EXPECT_NEAR((*hits)[0].score, 1.0, 1e-6);
  EXPECT_EQ(text_of((*hits)[1].chunk_id), "gamma ");
  EXPECT_NEAR((*hits)[1].score, s, 1e-6);
  EXPECT_NEAR((*hits)[2].score, 0.0, 1e-6);  // "beta " (0) before "delta" (-1)
  EXPECT_EQ(text_of((*hits)[2].chunk_id), "beta ");
  // Wrong query dimension; another embedder or dimension for new vectors.
  EXPECT_EQ(store->dense(std::vector<float>{1, 0, 0}, 3).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->ingest(with_vectors(make_doc("e", "x y", {}), {1, 0}, "other")).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store->ingest(with_vectors(make_doc("e", "x y", {}), {1, 0, 0})).status().code(),
            StatusCode::kInvalidArgument);
  auto st = store->stats();
  EXPECT_EQ(st->vectors, 4);
  EXPECT_EQ(st->dim, 2);
  EXPECT_EQ(st->embedder, "test:emb");
  // Hybrid, hand-computed RRF: bm25("delta") = [delta]; dense([0,1]) = [beta, gamma, alpha, delta] (ranks 1..4).
  auto h = store->hybrid("delta", std::vector<float>{0, 1}, 2);
  ASSERT_TRUE(h.is_ok()) << h.status().message();
  ASSERT_EQ(h->size(), 2u);
  // delta: 1/61 + 1/64 = 0.032018; beta: 1/61 = 0.016393.
  EXPECT_EQ(text_of((*h)[0].chunk_id), "delta");
  EXPECT_NEAR((*h)[0].score, 1.0 / 61 + 1.0 / 64, 1e-12);
  EXPECT_EQ(text_of((*h)[1].chunk_id), "beta ");
  EXPECT_NEAR((*h)[1].score, 1.0 / 61, 1e-12);
  // Replacing the document drops its vectors (the in-memory index follows).
  ASSERT_TRUE(store->ingest(with_vectors(make_doc("d", "omega", {}), {0, 1})).is_ok());
  auto after = store->dense(std::vector<float>{1, 0}, 5);
  ASSERT_TRUE(after.is_ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ(text_of((*after)[0].chunk_id), "omega");
}

// Above exact_max the Store switches to the HNSW graph at its graph_after_queries-th dense query; the
// answers stay those of exact search on an easy case.
TEST(StoreTest, DenseSwitchesToTheGraphAfterSomeQueries) {
  StoreOptions o;
  o.exact_max = 10;
  o.graph_after_queries = 2;
  auto store = std::move(Store::open(":memory:", true, o)).value();
  const int n = 200, dim = 8;
  std::string text;
  std::vector<int64_t> cuts;
  std::vector<float> v;
  for (int i = 0; i < n; ++i) {
    if (i > 0) cuts.push_back(static_cast<int64_t>(text.size()));
    text += 'c';
    text += std::to_string(i);
    text += ' ';
    for (int j = 0; j < dim; ++j) v.push_back(j == i % dim ? 1.0f + 0.001f * static_cast<float>(i) : 0.0f);
  }
  ASSERT_TRUE(store->ingest(with_vectors(make_doc("v", text, cuts), v)).is_ok());
  std::vector<float> q(dim, 0.0f);
  q[3] = 1;
  for (int round = 0; round < 3; ++round) {
    auto hits = store->dense(q, 3);
    ASSERT_TRUE(hits.is_ok()) << hits.status().message();
    ASSERT_EQ(hits->size(), 3u);
    EXPECT_EQ(store->chunk((*hits)[0].chunk_id)->text, "c195 ") << round;  // the longest vector on axis 3
    EXPECT_GE((*hits)[0].score, (*hits)[1].score);
  }
}


TEST(StoreTest, FileOpenErrors) {
  EXPECT_EQ(Store::open(testing::temp_dir() + "/missing.db", false).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Store::open(testing::temp_dir(), true).status().code(), StatusCode::kInvalidArgument);
  const std::string junk = testing::temp_dir() + "/junk.db";
  std::ofstream(junk) << "this is not an SQLite database, just some text that is long enough to have a header......"
                         "................................................................................";
  auto r = Store::open(junk, true);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("not a chunkwise index"), std::string::npos) << r.status().message();
  // A newer schema is refused with both versions named.
  const std::string db = temp_db("newer.db");
  ASSERT_TRUE(Store::open(db, true).is_ok());
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "PRAGMA user_version = 7", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  auto newer = Store::open(db, false);
  ASSERT_FALSE(newer.is_ok());
  EXPECT_NE(newer.status().message().find("schema version 7"), std::string::npos) << newer.status().message();
  // Another application's SQLite file.
  const std::string other = temp_db("other.db");
  ASSERT_EQ(sqlite3_open(other.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "CREATE TABLE t(x)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  auto foreign = Store::open(other, true);
  ASSERT_FALSE(foreign.is_ok());
  EXPECT_NE(foreign.status().message().find("not a chunkwise index"), std::string::npos);
}

TEST(StoreTest, LockedWriterFailsAfterTimeoutAndReadersStillRead) {
  const std::string db = temp_db("locked.db");
  {
    auto s = Store::open(db, true);
    ASSERT_TRUE(s.is_ok());
    ASSERT_TRUE((*s)->ingest(make_doc("a", "solar power", {})).is_ok());
  }
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "BEGIN IMMEDIATE; INSERT INTO meta VALUES('x', 'y');", nullptr, nullptr, nullptr), SQLITE_OK);
  StoreOptions o;
  o.busy_timeout_ms = 200;
  auto s = Store::open(db, false, o);
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  // Reads work while the other connection holds the write lock (WAL).
  auto hits = (*s)->bm25("solar", 5);
  ASSERT_TRUE(hits.is_ok()) << hits.status().message();
  EXPECT_EQ(hits->size(), 1u);
  const auto t0 = std::chrono::steady_clock::now();
  auto w = (*s)->ingest(make_doc("b", "wind power", {}));
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(w.is_ok());
  EXPECT_NE(w.status().message().find("locked"), std::string::npos) << w.status().message();
  EXPECT_GE(waited, 0.15);
  EXPECT_LT(waited, 5.0);
  sqlite3_exec(raw, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(raw);
  ASSERT_TRUE((*s)->ingest(make_doc("b", "wind power", {})).is_ok());
  EXPECT_EQ((*s)->stats()->documents, 2);
}

TEST(StoreTest, LengthLevels) {
  EXPECT_EQ(count_words("Hello, world! It's 2024."), 5);
  EXPECT_EQ(count_words(""), 0);
  for (int64_t words : {1, 2, 10, 150, 400, 1000, 5000}) {
    const double back = static_cast<double>(level_length(length_level(words)));
    EXPECT_NEAR(back, static_cast<double>(words), std::max(1.0, 0.075 * static_cast<double>(words))) << words;
  }
  EXPECT_EQ(length_level(1000000), kLengthMask);
}

// cw_bm25 agrees with FTS5's bm25() where lengths are exact: every chunk the same length, so the ranking
// must match FTS5's own.
TEST(StoreTest, Bm25MatchesFts5OnEqualLengths) {
  auto store = memory_store();
  const char* texts[] = {"apple apple pear plum", "apple kiwi kiwi kiwi", "pear pear pear pear", "plum kiwi fig date",
                         "fig fig apple date"};
  std::string all;
  std::vector<int64_t> cuts;
  for (const char* t : texts) {
    if (!all.empty()) cuts.push_back(static_cast<int64_t>(all.size()));
    all += std::string(t) + " ";
  }
  ASSERT_TRUE(store->ingest(make_doc("fruit", all, cuts)).is_ok());
  auto hits = store->bm25("apple kiwi fig", 5);
  ASSERT_TRUE(hits.is_ok()) << hits.status().message();
  std::vector<std::string> got;
  for (const Hit& h : *hits) got.push_back(store->chunk(h.chunk_id)->text);
  // FTS5 bm25 by hand (N = 5, avgdl = len = 4): idf(apple) = ln(2.5/3.5) < 0 -> 1e-6, idf(kiwi) = idf(fig) =
  // ln(3.5/2.5) = 0.336; tf 3 kiwi: 0.336*3*2.2/(3+1.2) = 0.529; "fig fig apple": 0.336*2*2.2/3.2 = 0.463;
  // "plum kiwi fig": 2 * 0.336*2.2/2.2 = 0.673.
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0], "plum kiwi fig date ");
  EXPECT_EQ(got[1], "apple kiwi kiwi kiwi ");
  EXPECT_EQ(got[2], "fig fig apple date ");
  EXPECT_EQ(got[3], "apple apple pear plum ");
  EXPECT_NEAR((*hits)[0].score, 2 * std::log(3.5 / 2.5), 1e-6);
}

TEST(StoreTest, ContentHash) {
  EXPECT_EQ(content_hash("abc"), content_hash("abc"));
  EXPECT_NE(content_hash("abc"), content_hash("abd"));
  EXPECT_NE(content_hash(""), content_hash(std::string(1, '\0')));
  EXPECT_NE(content_hash("12345678"), content_hash("123456789"));
  EXPECT_EQ(content_hash("x").size(), 32u);
}

}  // namespace
}  // namespace cw::retrieval

namespace cw::retrieval {
namespace {

int64_t fts_config(sqlite3* db, const char* key) {
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT v FROM chunk_text_config WHERE k = ?", -1, &st, nullptr), SQLITE_OK);
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  const int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
  sqlite3_finalize(st);
  return v;
}

// Bulk loading changes how FTS5 merges, never what a query returns: the settings are in place during the
// bulk, FTS5's defaults after it, the merged index passes FTS5's integrity check and ranks as before.
TEST(StoreTest, BulkLoadMergesOnceAndRestoresTheDefaults) {
  const std::string path = temp_db("bulk.db");
  auto store = Store::open(path, true);
  ASSERT_TRUE(store.is_ok()) << store.status().message();
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  ASSERT_TRUE((*store)->begin_bulk().is_ok());
  EXPECT_EQ(fts_config(raw, "automerge"), 16);
  EXPECT_EQ(fts_config(raw, "crisismerge"), 64);
  std::vector<std::string> texts;
  for (int d = 0; d < 40; ++d) {  // one transaction each: many small segments
    std::string t;
    for (int w = 0; w < 60; ++w) {
      t += 'w';
      t += std::to_string((d * 7 + w * 13) % 97);
      t += ' ';
    }
    texts.push_back(t);
  }
  for (int d = 0; d < 40; ++d)
    ASSERT_TRUE((*store)->ingest(make_doc(std::to_string(d), texts[static_cast<size_t>(d)], {100})).is_ok());
  auto before = (*store)->bm25("w3 w14 w50 w96", 20);
  ASSERT_TRUE(before.is_ok());
  ASSERT_FALSE(before->empty());
  ASSERT_TRUE((*store)->end_bulk(/*optimize=*/true).is_ok());
  EXPECT_EQ(fts_config(raw, "automerge"), 4);
  EXPECT_EQ(fts_config(raw, "crisismerge"), 16);
  EXPECT_EQ(sqlite3_exec(raw, "INSERT INTO chunk_text(chunk_text) VALUES('integrity-check')", nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(raw);
  auto after = (*store)->bm25("w3 w14 w50 w96", 20);
  ASSERT_TRUE(after.is_ok());
  ASSERT_EQ(after->size(), before->size());
  for (size_t i = 0; i < after->size(); ++i) {
    EXPECT_EQ((*after)[i].chunk_id, (*before)[i].chunk_id) << i;
    EXPECT_DOUBLE_EQ((*after)[i].score, (*before)[i].score) << i;
  }
  ASSERT_TRUE((*store)->end_bulk(/*optimize=*/false).is_ok());  // idempotent; no merge
  sqlite3_close(raw);
}

}  // namespace
}  // namespace cw::retrieval
