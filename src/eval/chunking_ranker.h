// The real ranker of the chunking evaluation: every corpus's chunks ingested into one in-memory
// retrieval::Store (one document per corpus, id = corpus id), queried with BM25, dense or hybrid retrieval,
// then a retrieval::Selector picks the chunks that are scored.
//
// Depth: the store returns max(k, selector.candidates()) ranked hits; the selector (default topk:k=<k>)
// decides which of them are kept. Dense and hybrid need an embedder (chunk texts and questions are embedded
// with it; vectors are L2-normalised by the Embedder contract).
// Thread-safety: the factory and the rankers it makes are used from one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "eval/chunking_eval.h"

namespace cw::text {
class Embedder;
}

namespace cw::eval {

struct StoreRankerOptions {
  std::string retriever = "bm25";                 // bm25 | dense | hybrid
  int64_t k = 5;                                  // >= 1
  std::string select;                             // selector spec (retrieval/select.h); "" = topk:k=<k>
  std::shared_ptr<const text::Embedder> embedder;  // required for dense / hybrid
};

// Validates the options (retriever name, k, selector spec, embedder presence) before anything is built.
Result<RankerFactory> make_store_ranker(const StoreRankerOptions& options);

}  // namespace cw::eval
