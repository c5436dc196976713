// VectorIndex: HNSW recall against exact search on random unit vectors; the Store switches to HNSW above
// exact_max.
#include "retrieval/vector_index.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

namespace cw::retrieval {
namespace {

std::vector<float> random_unit(std::mt19937& rng, int64_t n, int64_t dim) {
  std::normal_distribution<float> g;
  std::vector<float> v(static_cast<size_t>(n * dim));
  for (int64_t i = 0; i < n; ++i) {
    double norm = 0;
    for (int64_t j = 0; j < dim; ++j) norm += std::pow(v[i * dim + j] = g(rng), 2);
    for (int64_t j = 0; j < dim; ++j) v[i * dim + j] /= static_cast<float>(std::sqrt(norm));
  }
  return v;
}

TEST(VectorIndexTest, HnswRecallAgainstExact) {
  const int64_t n = 20000, dim = 32, k = 10, n_queries = 200;
  std::mt19937 rng(42);
  std::vector<int64_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = 1000 + 3 * i;
  StoreOptions o;
  o.exact_max = 0;  // force the graph
  VectorIndex index(dim, ids, random_unit(rng, n, dim), o);
  ASSERT_TRUE(index.approximate());
  const std::vector<float> queries = random_unit(rng, n_queries, dim);
  int64_t found = 0;
  for (int64_t q = 0; q < n_queries; ++q) {
    std::span<const float> query(queries.data() + q * dim, dim);
    const std::vector<Hit> exact = index.exact(query, k), approx = index.search(query, k);
    ASSERT_EQ(approx.size(), static_cast<size_t>(k));
    std::set<int64_t> truth;
    for (const Hit& h : exact) truth.insert(h.chunk_id);
    for (const Hit& h : approx) found += truth.count(h.chunk_id);
    for (size_t i = 1; i < approx.size(); ++i) EXPECT_GE(approx[i - 1].score, approx[i].score);
  }
  const double recall = static_cast<double>(found) / static_cast<double>(n_queries * k);
  std::printf("HNSW recall@%lld vs exact: %.4f (n=%lld, dim=%lld, M=%d, ef_construction=%d, ef=%d)\n",
              static_cast<long long>(k), recall, static_cast<long long>(n), static_cast<long long>(dim), o.hnsw_m,
              o.hnsw_ef_construction, o.hnsw_ef_search);
  EXPECT_GE(recall, 0.95);
}

TEST(VectorIndexTest, SmallIndexIsExact) {
  std::mt19937 rng(7);
  VectorIndex index(8, {1, 2, 3, 4, 5}, random_unit(rng, 5, 8), StoreOptions{});
  EXPECT_FALSE(index.approximate());
  std::vector<float> q(8, 0.0f);
  q[0] = 1;
  EXPECT_EQ(index.search(q, 10).size(), 5u);
  EXPECT_EQ(index.search(q, 0).size(), 0u);
}

}  // namespace
}  // namespace cw::retrieval
