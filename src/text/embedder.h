// Embedder: text -> fixed-size vectors, the seam between chunkers / retrieval and whatever computes
// embeddings (a GGUF model through the engine, or the deterministic hashing embedder for tests).
//
// Contract:
//   - embed(texts, out) resizes *out to texts.size() * dim() floats, row i = the embedding of texts[i]
//     ([n_texts, dim], row-major). Rows are L2-normalised unless the text yields no features (then the row
//     is all zeros); callers treat a zero row as "no information".
//   - Empty input spans are fine (out becomes empty). Errors are Status (e.g. a text longer than the
//     model's context), never aborts; on error *out is unspecified.
//   - Thread-safety: embed() may be called concurrently from several threads on one Embedder;
//     implementations that hold non-thread-safe state serialise internally.
//   - Deterministic: the same text gives the same vector within one build.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace cw::text {

class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual int64_t dim() const = 0;
  // Short description for logs and errors ("hash:dim=256", "model:stories260K.gguf").
  virtual std::string name() const = 0;
  virtual Status embed(std::span<const std::string_view> texts, std::vector<float>* out) const = 0;
};

// Deterministic bag-of-words embedder: each lower-cased word (a maximal run of letters/digits; any non-ASCII
// byte counts as a letter) is hashed (FNV-1a, seeded) into one of `dim` signed buckets, counts are
// accumulated and the vector L2-normalised. Texts sharing vocabulary are similar, texts on disjoint
// vocabularies are near-orthogonal: good enough to make topic shifts visible, and exact to reproduce.
// dim in [1, 65536] (CW_CHECK: validate user values before).
class HashEmbedder final : public Embedder {
 public:
  explicit HashEmbedder(int64_t dim = 256, uint64_t seed = 0);
  int64_t dim() const override { return dim_; }
  std::string name() const override;
  Status embed(std::span<const std::string_view> texts, std::vector<float>* out) const override;

 private:
  int64_t dim_;
  uint64_t seed_;
};

// Cosine similarity of two vectors of equal length; 0 when either has zero norm.
double cosine_similarity(std::span<const float> a, std::span<const float> b);

}  // namespace cw::text
