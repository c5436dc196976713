// `semantic` chunker: cuts where the meaning shifts. The document is split into sentences (ICU sentence
// boundaries of segment.h; the ranges tile the input, a sentence keeps its trailing spaces), each sentence is embedded together with `window` neighbours on
// each side, and a breakpoint is placed between sentences i and i+1 when the cosine distance of their
// embeddings (1 - cosine similarity) is an outlier by the chosen threshold:
//
//   threshold=percentile    distance > the amount-th percentile of all distances (default amount 95)
//   threshold=stddev        distance > mean + amount * standard deviation       (default amount 3)
//   threshold=interquartile distance > mean + amount * (Q3 - Q1)                 (default amount 1.5)
//   threshold=gradient      the local rise of the distance series at each gap, d[i] - (d[i-1] + d[i+1]) / 2
//                           (one-sided at the ends: d[0] - d[1], d[n-1] - d[n-2]) > its amount-th
//                           percentile (default amount 95): finds sharp peaks even when the overall level
//                           of the distances drifts (unlike numpy.gradient's central differences, which
//                           LangChain uses and which peak one gap before the shift, this peaks on it)
// (percentiles interpolate linearly between order statistics; standard deviation is the population one.)
// Groups of sentences between breakpoints never share a chunk; inside a group the sentences are packed to
// the size limit (pack.h), a sentence larger than the limit is split with the recursive "plain" preset.
// A pair where either embedding is all zeros (no features: e.g. punctuation only) counts as distance 0.
//
// Spec: semantic[:threshold=T,amount=X,window=N,locale=L,embedder=hash|model,model=FILE.gguf,dim=N,ctx=N]
//   + the common keys size, overlap, unit, tokenizer.
//   embedder=hash  deterministic bag-of-words hashing (HashEmbedder, dim=N, default 256): lexical
//                  similarity, no model needed; the default when model= is absent
//   embedder=model mean-pooled final hidden states of the GGUF model given by model= (ModelEmbedder,
//                  ctx=N tokens per forward window, default 512); the default when model= is present
// Chunk::kind is "text"; headings are empty.
// Thread-safety: as every Chunker (the Embedder is thread-safe by contract).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "text/chunker.h"
#include "text/embedder.h"
#include "text/segment.h"

namespace cw::text {

enum class SemanticThreshold { kPercentile, kStdDev, kInterquartile, kGradient };

// Default `amount` for a threshold mode.
double default_semantic_amount(SemanticThreshold mode);

// Indices i (ascending) such that a breakpoint falls between sentence i and i+1, given the n-1 cosine
// distances between neighbouring sentences. Fewer than two distances never break (there is no
// distribution to be an outlier of).
std::vector<size_t> semantic_breakpoints(std::span<const double> distances, SemanticThreshold mode,
                                         double amount);

// Linear-interpolated percentile (p in [0, 100]) of a non-empty sample.
double percentile(std::vector<double> values, double p);

struct SemanticOptions {
  SemanticThreshold threshold = SemanticThreshold::kPercentile;
  double amount = 95;
  int64_t window = 1;  // neighbours on each side embedded with a sentence, 0 .. 64
  std::string locale = kDefaultSentenceLocale;  // ICU sentence rules (segment.h)
};

// A semantic chunker with an explicit embedder (tests, retrieval). options are validated (invalid_argument).
Result<std::unique_ptr<Chunker>> create_semantic_chunker(const ChunkerConfig& config, const SemanticOptions& options,
                                                         std::shared_ptr<const Embedder> embedder);

// The registry's factory: parses the keys above from config.params and builds the embedder.
Result<std::unique_ptr<Chunker>> create_semantic_chunker(const ChunkerConfig& config);

const MethodInfo& semantic_method();

}  // namespace cw::text
