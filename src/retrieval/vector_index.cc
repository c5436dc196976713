#include "retrieval/vector_index.h"

#include <algorithm>
#include <exception>
#include <queue>

#include <hnswlib/hnswlib.h>

namespace cw::retrieval {

struct VectorIndex::Hnsw {
  explicit Hnsw(int64_t dim) : space(static_cast<size_t>(dim)) {}
  hnswlib::InnerProductSpace space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;
};

namespace {

bool better(const Hit& a, const Hit& b) {
  return a.score != b.score ? a.score > b.score : a.chunk_id < b.chunk_id;
}

}  // namespace

VectorIndex::VectorIndex(int64_t dim, std::vector<int64_t> ids, std::vector<float> data,
                         const StoreOptions& options, bool build)
    : dim_(dim), ids_(std::move(ids)), data_(std::move(data)), ef_search_(options.hnsw_ef_search) {
  CW_CHECK(dim_ > 0);
  CW_CHECK(data_.size() == ids_.size() * static_cast<size_t>(dim_));
  if (build) build_graph(options);
}

void VectorIndex::build_graph(const StoreOptions& options) {
  if (hnsw_ != nullptr || size() <= options.exact_max) return;
  try {
    auto h = std::make_unique<Hnsw>(dim_);
    h->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(
        &h->space, ids_.size(), static_cast<size_t>(std::max(2, options.hnsw_m)),
        static_cast<size_t>(std::max(1, options.hnsw_ef_construction)));
    for (size_t i = 0; i < ids_.size(); ++i) h->graph->addPoint(data_.data() + i * dim_, i);
    hnsw_ = std::move(h);
  } catch (const std::exception&) {
    hnsw_.reset();  // exact search still answers
  }
}

VectorIndex::~VectorIndex() = default;

std::vector<Hit> VectorIndex::exact(std::span<const float> query, int64_t k) const {
  CW_CHECK(static_cast<int64_t>(query.size()) == dim_);
  std::vector<Hit> all(ids_.size());
  for (size_t i = 0; i < ids_.size(); ++i) {
    const float* v = data_.data() + i * dim_;
    double s = 0;
    for (int64_t j = 0; j < dim_; ++j) s += static_cast<double>(v[j]) * query[j];
    all[i] = {ids_[i], s};
  }
  const size_t n = std::min<size_t>(all.size(), static_cast<size_t>(std::max<int64_t>(0, k)));
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(), better);
  all.resize(n);
  return all;
}

std::vector<Hit> VectorIndex::search(std::span<const float> query, int64_t k) const {
  CW_CHECK(static_cast<int64_t>(query.size()) == dim_);
  if (hnsw_ == nullptr || k <= 0) return exact(query, k);
  k = std::min<int64_t>(k, size());
  std::vector<Hit> out;
  try {
    // searchKnn reads ef_ from the graph; setEf is not thread-safe, so searches are serialised by the Store.
    hnsw_->graph->setEf(static_cast<size_t>(std::max<int64_t>(k, ef_search_)));
    auto q = hnsw_->graph->searchKnn(query.data(), static_cast<size_t>(k));
    while (!q.empty()) {
      const size_t i = q.top().second;
      q.pop();
      const float* v = data_.data() + i * dim_;
      double s = 0;  // the exact inner product (hnswlib returns 1 - dot in float)
      for (int64_t j = 0; j < dim_; ++j) s += static_cast<double>(v[j]) * query[j];
      out.push_back({ids_[i], s});
    }
  } catch (const std::exception&) {
    return exact(query, k);
  }
  std::sort(out.begin(), out.end(), better);
  return out;
}

}  // namespace cw::retrieval
