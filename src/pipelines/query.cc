#include "pipelines/query.h"

#include <filesystem>

#include "text/embedder.h"

namespace cw::pipelines {

Result<Retriever> parse_retriever(std::string_view name) {
  if (name == "bm25") return Retriever::kBm25;
  if (name == "dense") return Retriever::kDense;
  if (name == "hybrid") return Retriever::kHybrid;
  return invalid_argument("unknown retriever '" + std::string(name) + "' (retrievers: bm25, dense, hybrid)");
}

const char* retriever_name(Retriever r) {
  switch (r) {
    case Retriever::kBm25: return "bm25";
    case Retriever::kDense: return "dense";
    case Retriever::kHybrid: return "hybrid";
  }
  return "?";
}

namespace {

// "model:dir/x.gguf" -> "model:x.gguf": the same model named through another relative path is the same.
std::string embedder_key(const std::string& name) {
  const size_t colon = name.find(':');
  if (colon == std::string::npos) return name;
  return name.substr(0, colon + 1) + std::filesystem::path(name.substr(colon + 1)).filename().string();
}

}  // namespace

Result<std::vector<QueryResult>> query(const retrieval::Store& store, std::string_view question,
                                       const QueryOptions& options) {
  if (question.find_first_not_of(" \t\r\n") == std::string_view::npos) return invalid_argument("the question is empty");
  if (options.k < 1) return invalid_argument("k must be >= 1");
  CW_ASSIGN_OR_RETURN(std::unique_ptr<retrieval::Selector> selector,
                      retrieval::make_selector(options.select.empty() ? "topk:k=" + std::to_string(options.k)
                                                                      : options.select));
  const int64_t depth = std::max(options.k, selector->candidates());
  std::vector<float> qv;
  if (options.retriever != Retriever::kBm25) {
    CW_ASSIGN_OR_RETURN(retrieval::StoreStats st, store.stats());
    if (st.vectors == 0)
      return invalid_argument("index '" + store.path() + "' holds no vectors (it was built without an embedding "
                              "model): " + retriever_name(options.retriever) + " retrieval needs one; bm25 works");
    if (options.embedder == nullptr)
      return invalid_argument(std::string(retriever_name(options.retriever)) + " retrieval needs the embedding model "
                              "the index was built with (" + st.embedder + ")");
    if (embedder_key(options.embedder->name()) != embedder_key(st.embedder))
      return invalid_argument("index '" + store.path() + "' was embedded with " + st.embedder +
                              "; the query uses " + options.embedder->name());
    const std::string_view one[] = {question};
    CW_RETURN_IF_ERROR(options.embedder->embed(one, &qv));
  }
  std::vector<retrieval::Hit> hits;
  switch (options.retriever) {
    case Retriever::kBm25: {
      CW_ASSIGN_OR_RETURN(hits, store.bm25(question, depth));
      break;
    }
    case Retriever::kDense: {
      CW_ASSIGN_OR_RETURN(hits, store.dense(qv, depth));
      break;
    }
    case Retriever::kHybrid: {
      CW_ASSIGN_OR_RETURN(hits, store.hybrid(question, qv, depth));
      break;
    }
  }
  CW_ASSIGN_OR_RETURN(std::vector<retrieval::Hit> selected, selector->select(hits, store));
  std::vector<QueryResult> out;
  out.reserve(selected.size());
  for (const retrieval::Hit& h : selected) {
    CW_ASSIGN_OR_RETURN(retrieval::ChunkRow row, store.chunk(h.chunk_id));
    out.push_back({h, std::move(row)});
  }
  return out;
}

}  // namespace cw::pipelines
