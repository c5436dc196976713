#include "eval/chunking_ranker.h"

#include <algorithm>
#include <string_view>
#include <vector>

#include "retrieval/select.h"
#include "retrieval/store.h"
#include "text/embedder.h"

namespace cw::eval {
namespace {

constexpr size_t kEmbedBatch = 64;  // chunk texts per Embedder::embed call

enum class Kind { kBm25, kDense, kHybrid };

std::string selector_spec(const StoreRankerOptions& o) {
  return o.select.empty() ? "topk:k=" + std::to_string(o.k) : o.select;
}

}  // namespace

Result<RankerFactory> make_store_ranker(const StoreRankerOptions& options) {
  Kind kind;
  if (options.retriever == "bm25") {
    kind = Kind::kBm25;
  } else if (options.retriever == "dense") {
    kind = Kind::kDense;
  } else if (options.retriever == "hybrid") {
    kind = Kind::kHybrid;
  } else {
    return invalid_argument("unknown retriever '" + options.retriever + "' (retrievers: bm25, dense, hybrid)");
  }
  if (options.k < 1) return invalid_argument("k must be >= 1");
  if (kind != Kind::kBm25 && !options.embedder) {
    return invalid_argument(options.retriever + " retrieval needs an embedding model (--embed-model)");
  }
  {  // validate the selector spec now
    CW_ASSIGN_OR_RETURN(auto probe, retrieval::make_selector(selector_spec(options)));
    (void)probe;
  }
  return RankerFactory([options, kind](std::span<const ChunkedCorpus> corpora) -> Result<Ranker> {
    CW_ASSIGN_OR_RETURN(std::unique_ptr<retrieval::Store> owned, retrieval::Store::open(":memory:", true));
    std::shared_ptr<retrieval::Store> store(std::move(owned));
    const text::Embedder* emb = kind == Kind::kBm25 ? nullptr : options.embedder.get();
    for (const ChunkedCorpus& c : corpora) {
      retrieval::DocumentInput doc{.path = c.corpus->id, .text = c.corpus->text, .chunker = c.chunker_spec,
                                   .chunks = {}, .vectors = {}, .embedder = {}};
      for (const CorpusChunk& ch : c.chunks) {
        doc.chunks.push_back({ch.index, ch.byte_begin, ch.byte_end, ch.char_begin, ch.char_end, ch.n_tokens});
      }
      if (emb != nullptr && !c.chunks.empty()) {
        doc.embedder = emb->name();
        std::vector<std::string_view> texts;
        for (const CorpusChunk& ch : c.chunks) {
          texts.push_back(std::string_view(c.corpus->text)
                              .substr(static_cast<size_t>(ch.byte_begin), static_cast<size_t>(ch.byte_end - ch.byte_begin)));
        }
        std::vector<float> batch;
        for (size_t b = 0; b < texts.size(); b += kEmbedBatch) {
          const size_t m = std::min(kEmbedBatch, texts.size() - b);
          CW_RETURN_IF_ERROR(emb->embed(std::span<const std::string_view>(texts.data() + b, m), &batch));
          doc.vectors.insert(doc.vectors.end(), batch.begin(), batch.end());
        }
      }
      auto added = store->ingest(doc);
      if (!added.is_ok()) {
        return Status(added.status().code(), "indexing corpus '" + c.corpus->id + "': " + added.status().message());
      }
    }
    CW_ASSIGN_OR_RETURN(std::unique_ptr<retrieval::Selector> sel_owned, retrieval::make_selector(selector_spec(options)));
    std::shared_ptr<const retrieval::Selector> selector(std::move(sel_owned));
    const int64_t depth = std::max(options.k, selector->candidates());
    return Ranker([store, selector, depth, kind, emb](const Question& q) -> Result<std::vector<ChunkSpan>> {
      std::vector<float> qv;
      if (emb != nullptr) {
        const std::string_view one[] = {q.text};
        CW_RETURN_IF_ERROR(emb->embed(one, &qv));
      }
      std::vector<retrieval::Hit> hits;
      switch (kind) {
        case Kind::kBm25: {
          CW_ASSIGN_OR_RETURN(hits, store->bm25(q.text, depth));
          break;
        }
        case Kind::kDense: {
          CW_ASSIGN_OR_RETURN(hits, store->dense(qv, depth));
          break;
        }
        case Kind::kHybrid: {
          CW_ASSIGN_OR_RETURN(hits, store->hybrid(q.text, qv, depth));
          break;
        }
      }
      CW_ASSIGN_OR_RETURN(std::vector<retrieval::Hit> kept, selector->select(hits, *store));
      std::vector<ChunkSpan> out;
      out.reserve(kept.size());
      for (const retrieval::Hit& h : kept) {
        CW_ASSIGN_OR_RETURN(retrieval::ChunkRow row, store->chunk(h.chunk_id));
        out.push_back({row.path, row.char_begin, row.char_end});
      }
      return out;
    });
  });
}

}  // namespace cw::eval
