#include "retrieval/bm25_rank.h"

#include <sqlite3.h>

#include <cmath>
#include <algorithm>
#include <array>
#include <cstdlib>
#include <vector>

namespace cw::retrieval {
namespace {

constexpr double kK1 = 1.2, kB = 0.75;

struct QueryData {
  std::vector<double> idf;  // per phrase
  double avgdl = 1;
};

int count_row(const Fts5ExtensionApi*, Fts5Context*, void* user) {
  ++*static_cast<sqlite3_int64*>(user);
  return SQLITE_OK;
}

void free_query_data(void* p) { delete static_cast<QueryData*>(p); }

void cw_bm25(const Fts5ExtensionApi* api, Fts5Context* fts, sqlite3_context* ctx, int n_args, sqlite3_value** args) {
  if (n_args != 1) {
    sqlite3_result_error(ctx, "cw_bm25(table, total_words): wrong number of arguments", -1);
    return;
  }
  auto* q = static_cast<QueryData*>(api->xGetAuxdata(fts, 0));
  if (q == nullptr) {
    q = new QueryData();
    sqlite3_int64 n_rows = 0;
    int rc = api->xRowCount(fts, &n_rows);
    const int n_phrases = api->xPhraseCount(fts);
    q->idf.resize(static_cast<size_t>(n_phrases));
    q->avgdl = std::max(1e-9, sqlite3_value_double(args[0]) / static_cast<double>(std::max<sqlite3_int64>(1, n_rows)));
    for (int i = 0; rc == SQLITE_OK && i < n_phrases; ++i) {
      sqlite3_int64 hits = 0;
      rc = api->xQueryPhrase(fts, i, &hits, count_row);
      const double idf = std::log((static_cast<double>(n_rows - hits) + 0.5) / (static_cast<double>(hits) + 0.5));
      q->idf[static_cast<size_t>(i)] = idf <= 0 ? 1e-6 : idf;
    }
    if (rc == SQLITE_OK) rc = api->xSetAuxdata(fts, q, free_query_data);
    else delete q;
    if (rc != SQLITE_OK) {
      sqlite3_result_error_code(ctx, rc);
      return;
    }
  }
  const double len = static_cast<double>(level_length(api->xRowid(fts) & kLengthMask));
  const double norm = kK1 * (1 - kB + kB * len / q->avgdl);
  double score = 0;
  for (size_t i = 0; i < q->idf.size(); ++i) {
    Fts5PhraseIter it;
    int col = 0, off = 0, tf = 0;
    for (api->xPhraseFirst(fts, static_cast<int>(i), &it, &col, &off); col >= 0; api->xPhraseNext(fts, &it, &col, &off))
      ++tf;
    if (tf > 0) score += q->idf[i] * tf * (kK1 + 1) / (tf + norm);
  }
  sqlite3_result_double(ctx, score);
}

}  // namespace

int64_t count_words(std::string_view text) {
  // Branch-free over a byte class table (the writer thread runs this over every chunk of a bulk load).
  static const auto kWord = [] {
    std::array<uint8_t, 256> t{};
    for (int c = 0; c < 256; ++c)
      t[static_cast<size_t>(c)] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80) ? 1 : 0;
    return t;
  }();
  int64_t n = 0;
  uint8_t prev = 0;
  for (char ch : text) {
    const uint8_t w = kWord[static_cast<uint8_t>(ch)];
    n += w & (prev ^ 1);
    prev = w;
  }
  return n;
}

namespace {
constexpr double kLevelRatio = 1.15;
}

int64_t length_level(int64_t words) {
  if (words <= 1) return 0;
  const auto level = static_cast<int64_t>(std::lround(std::log(static_cast<double>(words)) / std::log(kLevelRatio)));
  return std::clamp<int64_t>(level, 0, kLengthMask);
}

int64_t level_length(int64_t level) {
  static const auto kLengths = [] {  // a table: cw_bm25 calls this once per matched row
    std::array<int64_t, kLengthMask + 1> t{};
    for (int64_t l = 0; l <= kLengthMask; ++l)
      t[static_cast<size_t>(l)] = std::max<int64_t>(1, std::lround(std::pow(kLevelRatio, static_cast<double>(l))));
    return t;
  }();
  return kLengths[static_cast<size_t>(std::clamp<int64_t>(level, 0, kLengthMask))];
}

Status register_bm25(sqlite3* db) {
  fts5_api* api = nullptr;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, nullptr) != SQLITE_OK)
    return unimplemented(std::string("this SQLite has no FTS5: ") + sqlite3_errmsg(db));
  sqlite3_bind_pointer(st, 1, static_cast<void*>(&api), "fts5_api_ptr", nullptr);
  sqlite3_step(st);
  sqlite3_finalize(st);
  if (api == nullptr || api->iVersion < 2) return unimplemented("this SQLite's FTS5 API is too old");
  if (api->xCreateFunction(api, "cw_bm25", nullptr, cw_bm25, nullptr) != SQLITE_OK)
    return internal_error("cannot register cw_bm25");
  return Status::ok();
}

}  // namespace cw::retrieval
