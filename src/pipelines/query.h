// cw::pipelines — querying an index: question -> (embedder) -> Store bm25 / dense / hybrid -> Selector ->
// chunk rows. Dense and hybrid retrieval need the embedding model the index was built with.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "retrieval/select.h"
#include "retrieval/store.h"

namespace cw::text {
class Embedder;
}

namespace cw::pipelines {

enum class Retriever { kBm25, kDense, kHybrid };
// "bm25" | "dense" | "hybrid"; invalid_argument listing them otherwise.
Result<Retriever> parse_retriever(std::string_view name);
const char* retriever_name(Retriever r);

struct QueryOptions {
  Retriever retriever = Retriever::kBm25;
  int64_t k = 10;          // ranked chunks retrieved (when select is empty: also the number returned)
  std::string select;      // selector spec (retrieval/select.h); "" = topk:k=<k>
  const text::Embedder* embedder = nullptr;  // required for dense / hybrid
};

struct QueryResult {
  retrieval::Hit hit;
  retrieval::ChunkRow row;
};

// Errors: an empty question, a bad selector spec, dense/hybrid without an embedder or on an index without
// vectors (or with vectors of another embedder), Store errors.
Result<std::vector<QueryResult>> query(const retrieval::Store& store, std::string_view question,
                                       const QueryOptions& options);

}  // namespace cw::pipelines
