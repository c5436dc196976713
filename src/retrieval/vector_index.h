// VectorIndex: nearest neighbours by inner product over the vectors of a Store, held in memory.
// Exact brute force up to StoreOptions::exact_max vectors; above, an HNSW graph (hnswlib, Debian
// libhnswlib-dev, header-only) built once from the stored vectors. Scores are inner products (higher =
// better); ties are broken by the smaller id. Immutable after construction; search() is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "retrieval/store.h"

namespace cw::retrieval {

class VectorIndex {
 public:
  // ids: [n]; data: [n, dim]. With `build_graph`, builds the HNSW graph when n > options.exact_max (falls
  // back to exact search when hnswlib fails, e.g. out of memory).
  VectorIndex(int64_t dim, std::vector<int64_t> ids, std::vector<float> data, const StoreOptions& options,
              bool build_graph = true);
  // Builds the graph now (when n > options.exact_max and it is not built yet).
  void build_graph(const StoreOptions& options);
  ~VectorIndex();

  int64_t dim() const { return dim_; }
  int64_t size() const { return static_cast<int64_t>(ids_.size()); }
  bool approximate() const { return hnsw_ != nullptr; }

  // The k best by inner product (HNSW when built, else exact). query.size() == dim() (CW_CHECK).
  std::vector<Hit> search(std::span<const float> query, int64_t k) const;
  // Always exact.
  std::vector<Hit> exact(std::span<const float> query, int64_t k) const;

 private:
  struct Hnsw;
  int64_t dim_;
  std::vector<int64_t> ids_;
  std::vector<float> data_;
  int ef_search_;
  std::unique_ptr<Hnsw> hnsw_;
};

}  // namespace cw::retrieval
