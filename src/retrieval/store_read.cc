// Store: the read side (BM25, dense, hybrid, chunk rows). The write side and the schema are in store.cc.
#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "retrieval/bm25_rank.h"
#include "retrieval/fts_query.h"
#include "retrieval/sqlite_util.h"
#include "retrieval/store.h"
#include "retrieval/vector_index.h"

namespace cw::retrieval {
namespace {

using sql::Stmt;

constexpr int kRrfK = 60;

bool hit_better(const Hit& a, const Hit& b) {
  return a.score != b.score ? a.score > b.score : a.chunk_id < b.chunk_id;
}

}  // namespace

Result<std::vector<Hit>> Store::bm25(std::string_view query, int64_t k) const {
  std::lock_guard<std::mutex> lock(mu_);
  return bm25_locked(query, k);
}

Result<std::vector<Hit>> Store::bm25_locked(std::string_view query, int64_t k) const {
  if (k < 0) return invalid_argument("k must be >= 0");
  std::vector<Hit> out;
  const std::string match = fts_match_expression(query);
  if (match.empty() || k == 0) return out;
  CW_ASSIGN_OR_RETURN(int64_t total_words, meta_int("total_words"));
  Stmt st;
  st.prepare(db_, "SELECT rowid, cw_bm25(chunk_text, ?) AS s FROM chunk_text WHERE chunk_text MATCH ? ORDER BY s DESC LIMIT ?");
  st.bind(1, total_words);
  st.bind(2, match);
  st.bind(3, k);
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) out.push_back({st.i64(0), st.f64(1)});
  if (rc != SQLITE_DONE) return sql_error("run a BM25 query");
  std::stable_sort(out.begin(), out.end(), hit_better);
  return out;
}

Status Store::load_vectors_locked() const {
  Stmt gen;
  gen.prepare(db_, "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'vectors_generation'");
  if (gen.step() != SQLITE_ROW) return sql_error("read the index settings");
  const int64_t generation = gen.i64(0);
  if (vectors_ != nullptr && generation == vectors_generation_) return Status::ok();
  Stmt st;
  st.prepare(db_, "SELECT chunk_id, vec FROM vectors ORDER BY chunk_id");
  std::vector<int64_t> ids;
  std::vector<float> data;
  int64_t dim = 0;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    const int bytes = st.bytes(1);
    if (dim == 0) dim = bytes / static_cast<int64_t>(sizeof(float));
    if (bytes <= 0 || bytes != dim * static_cast<int64_t>(sizeof(float)))
      return data_loss("index '" + path_ + "': chunk " + std::to_string(st.i64(0)) + " has a vector of " +
                       std::to_string(bytes) + " bytes");
    ids.push_back(st.i64(0));
    const size_t at = data.size();
    data.resize(at + static_cast<size_t>(dim));
    std::memcpy(data.data() + at, st.blob(1), static_cast<size_t>(bytes));
  }
  if (rc != SQLITE_DONE) return sql_error("read vectors");
  vectors_.reset();
  if (!ids.empty())
    vectors_ = std::make_unique<VectorIndex>(dim, std::move(ids), std::move(data), options_,
                                             /*build_graph=*/options_.graph_after_queries <= 1);
  dense_queries_ = 0;
  vectors_generation_ = vectors_ != nullptr ? generation : -1;
  return Status::ok();
}

Result<std::vector<Hit>> Store::dense(std::span<const float> query_vector, int64_t k) const {
  std::lock_guard<std::mutex> lock(mu_);
  return dense_locked(query_vector, k);
}

Result<std::vector<Hit>> Store::dense_locked(std::span<const float> query_vector, int64_t k) const {
  if (k < 0) return invalid_argument("k must be >= 0");
  CW_RETURN_IF_ERROR(load_vectors_locked());
  if (vectors_ == nullptr)
    return invalid_argument("index '" + path_ + "' holds no vectors (it was built without an embedding model): "
                            "dense and hybrid retrieval need one; BM25 works");
  if (static_cast<int64_t>(query_vector.size()) != vectors_->dim())
    return invalid_argument("the query vector has " + std::to_string(query_vector.size()) +
                            " values; index '" + path_ + "' holds vectors of dim " + std::to_string(vectors_->dim()));
  if (++dense_queries_ >= options_.graph_after_queries) vectors_->build_graph(options_);
  return vectors_->search(query_vector, k);
}

Result<std::vector<Hit>> Store::hybrid(std::string_view query, std::span<const float> query_vector, int64_t k) const {
  if (k < 0) return invalid_argument("k must be >= 0");
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t depth = std::max<int64_t>(50, 4 * k);
  CW_ASSIGN_OR_RETURN(std::vector<Hit> dense_hits, dense_locked(query_vector, depth));
  CW_ASSIGN_OR_RETURN(std::vector<Hit> bm25_hits, bm25_locked(query, depth));
  std::unordered_map<int64_t, double> fused;
  for (const auto* list : {&bm25_hits, &dense_hits})
    for (size_t r = 0; r < list->size(); ++r) fused[(*list)[r].chunk_id] += 1.0 / (kRrfK + static_cast<double>(r + 1));
  std::vector<Hit> out;
  out.reserve(fused.size());
  for (const auto& [id, s] : fused) out.push_back({id, s});
  std::sort(out.begin(), out.end(), hit_better);
  if (static_cast<int64_t>(out.size()) > k) out.resize(static_cast<size_t>(k));
  return out;
}

namespace {
constexpr const char* kChunkColumns =
    "SELECT c.chunk_id, d.path, c.idx, c.byte_begin, c.byte_end, c.char_begin, c.char_end, c.n_tokens, t.text "
    "FROM chunks c JOIN documents d ON d.doc_id = c.doc_id JOIN chunk_text t ON t.rowid = c.chunk_id ";
ChunkRow row_of(const Stmt& st) {
  return ChunkRow{st.i64(0), st.text(1), st.i64(2), st.i64(3), st.i64(4), st.i64(5), st.i64(6), st.i64(7), st.text(8)};
}
}  // namespace

Result<ChunkRow> Store::chunk(int64_t chunk_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st;
  st.prepare(db_, std::string(kChunkColumns) + "WHERE c.chunk_id = ?");
  st.bind(1, chunk_id);
  const int rc = st.step();
  if (rc == SQLITE_DONE) return not_found("index '" + path_ + "' has no chunk " + std::to_string(chunk_id));
  if (rc != SQLITE_ROW) return sql_error("read a chunk");
  return row_of(st);
}

Result<std::vector<ChunkRow>> Store::chunks_of(std::string_view path) const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st;
  st.prepare(db_, std::string(kChunkColumns) + "WHERE d.path = ? ORDER BY c.idx");
  st.bind(1, path);
  std::vector<ChunkRow> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) out.push_back(row_of(st));
  if (rc != SQLITE_DONE) return sql_error("read chunks");
  return out;
}

Result<std::vector<ChunkRow>> Store::chunk_range(std::string_view path, int64_t first_index,
                                                 int64_t last_index) const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st;
  st.prepare(db_, std::string(kChunkColumns) + "WHERE d.path = ? AND c.idx BETWEEN ? AND ? ORDER BY c.idx");
  st.bind(1, path);
  st.bind(2, first_index);
  st.bind(3, last_index);
  std::vector<ChunkRow> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) out.push_back(row_of(st));
  if (rc != SQLITE_DONE) return sql_error("read chunks");
  return out;
}

}  // namespace cw::retrieval
