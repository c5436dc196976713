// Pre-computed FTS5 tokens (fts_tokens.h): an index built from them is the index the store builds itself —
// the same FTS5 pages, the same BM25 results — and tokens that do not belong to the text fall back.
#include "retrieval/fts_tokens.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "retrieval/store.h"
#include "retrieval/store_testing.h"
#include "support/testing.h"

namespace cw::retrieval {
namespace {


// Texts that exercise the tokenizer: stems, punctuation, case, digits, non-ASCII letters and separators,
// diacritics (unicode61 folds them), CJK, long words (porter leaves those unstemmed), empty chunks.
const std::vector<std::string>& texts() {
  static const std::vector<std::string> kTexts = {
      "The cats were running; the dog RUNS. Running runners ran — quickly! Generalizations, generalization.",
      "Café naïve façade: Straße, ÉCOLE, Ångström and Ærøskøbing. Crème brûlée costs 4.50€ (or $5).",
      "東京は日本の首都です。 Москва — столица России. Αθήνα, ελληνικά! Tokyo tokyo TOKYO.",
      "hello-world foo_bar x=y+z; e-mail: someone@example.com; path/to/file.txt; C++ & C#; 3.14159 42nd",
      std::string(300, 'a') + " supercalifragilisticexpialidocious" + std::string(70, 'z') + " ends",
      "   \t\n  ... !!! ??? ---  ",
      "",
      "relational databases index documents; indexing indexed indexes. Connection connected connecting.",
  };
  return kTexts;
}

// One document per text, cut into chunks at every `step` bytes (on UTF-8 boundaries) plus one empty chunk.
std::vector<DocumentInput> make_docs(const std::vector<std::string>& ts, const std::string& prefix, size_t step) {
  std::vector<DocumentInput> docs;
  for (size_t i = 0; i < ts.size(); ++i) {
    DocumentInput d;
    d.path = prefix + std::to_string(i) + ".txt";
    d.text = ts[i];
    d.chunker = "test:step";
    int64_t begin = 0;
    while (begin < static_cast<int64_t>(ts[i].size())) {
      auto end = std::min<int64_t>(begin + static_cast<int64_t>(step), static_cast<int64_t>(ts[i].size()));
      while (end < static_cast<int64_t>(ts[i].size()) && (static_cast<unsigned char>(ts[i][end]) & 0xC0) == 0x80) ++end;
      ChunkInput c;
      c.index = static_cast<int64_t>(d.chunks.size());
      c.byte_begin = c.char_begin = begin;
      c.byte_end = c.char_end = end;
      d.chunks.push_back(std::move(c));
      begin = end;
    }
    ChunkInput empty;
    empty.index = static_cast<int64_t>(d.chunks.size());
    empty.byte_begin = empty.byte_end = empty.char_begin = empty.char_end = begin;
    d.chunks.push_back(std::move(empty));
    docs.push_back(std::move(d));
  }
  return docs;
}

void precompute(Store& store, std::vector<DocumentInput>& docs) {
  auto tok = store.make_fts_tokenizer();
  ASSERT_TRUE(tok.is_ok()) << tok.status().message();
  for (DocumentInput& d : docs)
    for (ChunkInput& c : d.chunks) {
      c.fts_tokens = (*tok)->tokenize(d.text.substr(static_cast<size_t>(c.byte_begin),
                                                    static_cast<size_t>(c.byte_end - c.byte_begin)));
      ASSERT_FALSE(c.fts_tokens.empty());
    }
}

int64_t n_chunks(const std::vector<DocumentInput>& docs) {
  int64_t n = 0;
  for (const DocumentInput& d : docs) n += static_cast<int64_t>(d.chunks.size());
  return n;
}

// Every row of the FTS5 shadow tables (the index itself, the row sizes, the stored texts), read through a
// plain connection (the real porter tokenizer).
std::string fts_dump(const std::string& db) {
  sqlite3* raw = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  std::string out;
  for (const char* q : {"SELECT id, block FROM chunk_text_data ORDER BY id",
                        "SELECT id, sz FROM chunk_text_docsize ORDER BY id",
                        "SELECT id, c0 FROM chunk_text_content ORDER BY id"}) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(raw, q, -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(raw);
    while (sqlite3_step(st) == SQLITE_ROW) {
      out += std::to_string(sqlite3_column_int64(st, 0)) + ":";
      out.append(static_cast<const char*>(sqlite3_column_blob(st, 1)) == nullptr ? "" :
                 static_cast<const char*>(sqlite3_column_blob(st, 1)),
                 static_cast<size_t>(sqlite3_column_bytes(st, 1)));
      out += "\n";
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(raw);
  return out;
}

// FTS5's own check that the index holds exactly the tokens of the stored texts (re-tokenized with the real
// porter tokenizer on a plain connection).
void expect_integrity(const std::string& db) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(raw, "INSERT INTO chunk_text(chunk_text) VALUES('integrity-check')", nullptr, nullptr, &err),
            SQLITE_OK)
      << (err != nullptr ? err : "");
  sqlite3_free(err);
  sqlite3_close(raw);
}

const std::vector<std::string>& queries() {
  static const std::vector<std::string> kQueries = {
      "running", "run", "cats dog", "generalization", "index", "indexing documents", "connected",
      "cafe", "café", "naive", "strasse", "straße", "école", "angstrom", "東京は日本の首都です", "москва",
      "αθηνα", "tokyo", "hello-world", "e-mail someone@example.com", "C++", "3.14159", "42nd",
      "supercalifragilisticexpialidocious", "\"relational databases\"", "what's the cost?", "...", "",
      "relat*", "ends"};
  return kQueries;
}

void expect_same_bm25(Store& a, Store& b) {
  for (const std::string& q : queries()) {
    auto ra = a.bm25(q, 50);
    auto rb = b.bm25(q, 50);
    ASSERT_EQ(ra.is_ok(), rb.is_ok()) << q;
    if (!ra.is_ok()) continue;
    ASSERT_EQ(ra->size(), rb->size()) << q;
    for (size_t i = 0; i < ra->size(); ++i) {
      EXPECT_EQ((*ra)[i].chunk_id, (*rb)[i].chunk_id) << q << " #" << i;
      EXPECT_EQ((*ra)[i].score, (*rb)[i].score) << q << " #" << i;
    }
  }
}

TEST(FtsTokensTest, PrecomputedTokensBuildTheSameIndex) {
  const std::string plain_db = temp_db("fts_plain.db"), pre_db = temp_db("fts_pre.db");
  auto plain = Store::open(plain_db, true);
  auto pre = Store::open(pre_db, true);
  ASSERT_TRUE(plain.is_ok() && pre.is_ok());
  for (size_t step : {7, 40, 1000}) {
    const std::string prefix = "s" + std::to_string(step) + "/";
    std::vector<DocumentInput> docs_plain = make_docs(texts(), prefix, step);
    std::vector<DocumentInput> docs_pre = make_docs(texts(), prefix, step);
    precompute(**pre, docs_pre);
    ASSERT_TRUE((*plain)->ingest_batch(docs_plain).is_ok());
    const int64_t before = (*pre)->fts_tokens_replayed();
    ASSERT_TRUE((*pre)->ingest_batch(docs_pre).is_ok());
    EXPECT_EQ((*pre)->fts_tokens_replayed() - before, n_chunks(docs_pre));
  }
  EXPECT_EQ((*plain)->fts_tokens_replayed(), 0);
  // Queries on the writing connections (through the wrapper) and on fresh ones.
  expect_same_bm25(**plain, **pre);
  auto pre_reader = Store::open(pre_db, false);
  ASSERT_TRUE(pre_reader.is_ok());
  expect_same_bm25(**plain, **pre_reader);
  plain->reset();
  pre->reset();
  pre_reader->reset();
  EXPECT_EQ(fts_dump(plain_db), fts_dump(pre_db));
  expect_integrity(pre_db);
}

TEST(FtsTokensTest, ReplacingADocumentRetokenizesTheOldTextAndStaysConsistent) {
  const std::string db = temp_db("fts_replace.db");
  auto store = Store::open(db, true);
  ASSERT_TRUE(store.is_ok());
  std::vector<DocumentInput> v1 = make_docs(texts(), "doc", 25);
  precompute(**store, v1);
  ASSERT_TRUE((*store)->ingest_batch(v1).is_ok());
  // Changed texts: each replace deletes the old rows, which FTS5 re-tokenizes from the stored text (the
  // wrapper's fallback: nothing pending matches them).
  std::vector<std::string> changed;
  for (const std::string& t : texts()) changed.push_back(t + " appended words: running cafés");
  std::vector<DocumentInput> v2 = make_docs(changed, "doc", 33);
  precompute(**store, v2);
  auto r = (*store)->ingest_batch(v2);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  for (IngestOutcome o : *r) EXPECT_EQ(o, IngestOutcome::kReplaced);
  EXPECT_EQ((*store)->fts_tokens_replayed(), n_chunks(v1) + n_chunks(v2));
  ASSERT_TRUE((*store)->remove("doc0.txt").is_ok());
  store->reset();
  expect_integrity(db);
  // The same as an index built from v2 (less doc0) without pre-computed tokens, query for query.
  auto plain = Store::open(":memory:", true);
  ASSERT_TRUE(plain.is_ok());
  std::vector<DocumentInput> v2_plain = make_docs(changed, "doc", 33);
  v2_plain.erase(v2_plain.begin());
  ASSERT_TRUE((*plain)->ingest_batch(v2_plain).is_ok());
  auto reopened = Store::open(db, false);
  ASSERT_TRUE(reopened.is_ok());
  std::vector<std::string> qs = queries();
  qs.push_back("appended words");
  for (const std::string& q : qs) {
    auto a = (*plain)->bm25(q, 50), b = (*reopened)->bm25(q, 50);
    ASSERT_EQ(a.is_ok(), b.is_ok()) << q;
    if (a.is_ok()) {
      EXPECT_EQ(a->size(), b->size()) << q;
    }
  }
}

TEST(FtsTokensTest, TokensOfAnotherTextFallBackToTheRealTokenizer) {
  const std::string plain_db = temp_db("fts_mis_plain.db"), pre_db = temp_db("fts_mis_pre.db");
  auto plain = Store::open(plain_db, true);
  auto pre = Store::open(pre_db, true);
  ASSERT_TRUE(plain.is_ok() && pre.is_ok());
  std::vector<DocumentInput> docs_plain = make_docs(texts(), "m", 30);
  std::vector<DocumentInput> docs_pre = make_docs(texts(), "m", 30);
  auto tok = (*pre)->make_fts_tokenizer();
  ASSERT_TRUE(tok.is_ok());
  // Wrong text: each chunk gets the tokens of a text one byte longer, or of the same length with one byte
  // changed (a file modified between chunking and writing), or of an unrelated sentence.
  int64_t k = 0;
  for (DocumentInput& d : docs_pre)
    for (ChunkInput& c : d.chunks) {
      std::string other(d.text.substr(static_cast<size_t>(c.byte_begin), static_cast<size_t>(c.byte_end - c.byte_begin)));
      switch (k++ % 3) {
        case 0: other += "x"; break;
        case 1:
          if (other.empty()) other = "q";
          else other[other.size() / 2] ^= 0x01;
          break;
        default: other = "completely different words here"; break;
      }
      c.fts_tokens = (*tok)->tokenize(other);
      ASSERT_FALSE(c.fts_tokens.empty());
    }
  ASSERT_TRUE((*plain)->ingest_batch(docs_plain).is_ok());
  ASSERT_TRUE((*pre)->ingest_batch(docs_pre).is_ok());
  EXPECT_EQ((*pre)->fts_tokens_replayed(), 0);
  expect_same_bm25(**plain, **pre);
  plain->reset();
  pre->reset();
  EXPECT_EQ(fts_dump(plain_db), fts_dump(pre_db));
  expect_integrity(pre_db);
}

TEST(FtsTokensTest, TokenizersRunInParallelThreads) {
  auto store = Store::open(":memory:", true);
  ASSERT_TRUE(store.is_ok());
  std::vector<std::string> big;
  for (int i = 0; i < 200; ++i) big.push_back(texts()[static_cast<size_t>(i) % texts().size()] + " " + std::to_string(i));
  std::vector<DocumentInput> docs = make_docs(big, "p", 50);
  std::vector<std::unique_ptr<FtsTokenizer>> toks;
  for (int t = 0; t < 4; ++t) {
    auto made = (*store)->make_fts_tokenizer();
    ASSERT_TRUE(made.is_ok());
    toks.push_back(std::move(made).value());
  }
  std::vector<std::thread> threads;
  for (size_t t = 0; t < toks.size(); ++t)
    threads.emplace_back([&, t] {
      for (size_t i = t; i < docs.size(); i += toks.size())
        for (ChunkInput& c : docs[i].chunks)
          c.fts_tokens = toks[t]->tokenize(docs[i].text.substr(static_cast<size_t>(c.byte_begin),
                                                               static_cast<size_t>(c.byte_end - c.byte_begin)));
    });
  for (std::thread& th : threads) th.join();
  ASSERT_TRUE((*store)->ingest_batch(docs).is_ok());
  EXPECT_EQ((*store)->fts_tokens_replayed(), n_chunks(docs));
  auto plain = Store::open(":memory:", true);
  ASSERT_TRUE(plain.is_ok());
  ASSERT_TRUE((*plain)->ingest_batch(make_docs(big, "p", 50)).is_ok());
  expect_same_bm25(**plain, **store);
}

}  // namespace
}  // namespace cw::retrieval
