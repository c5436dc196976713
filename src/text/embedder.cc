#include "text/embedder.h"

#include <cmath>

namespace cw::text {
namespace {

bool is_word_byte(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

}  // namespace

HashEmbedder::HashEmbedder(int64_t dim, uint64_t seed) : dim_(dim), seed_(seed) {
  CW_CHECK_MSG(dim >= 1 && dim <= 65536, "HashEmbedder dim out of range");
}

std::string HashEmbedder::name() const { return "hash:dim=" + std::to_string(dim_); }

Status HashEmbedder::embed(std::span<const std::string_view> texts, std::vector<float>* out) const {
  out->assign(texts.size() * static_cast<size_t>(dim_), 0.0f);
  for (size_t t = 0; t < texts.size(); ++t) {
    const std::string_view s = texts[t];
    float* row = out->data() + t * static_cast<size_t>(dim_);
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && !is_word_byte(static_cast<unsigned char>(s[i]))) ++i;
      if (i >= s.size()) break;
      uint64_t h = 1469598103934665603ull ^ seed_;  // FNV-1a over the lower-cased word
      while (i < s.size() && is_word_byte(static_cast<unsigned char>(s[i]))) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c - 'A' + 'a');
        h = (h ^ c) * 1099511628211ull;
        ++i;
      }
      h ^= h >> 29;  // mix the high bits into the bucket and sign choice
      h *= 0xbf58476d1ce4e5b9ull;
      h ^= h >> 32;
      const size_t bucket = static_cast<size_t>(h % static_cast<uint64_t>(dim_));
      row[bucket] += (h >> 63) != 0 ? -1.0f : 1.0f;
    }
    double norm = 0;
    for (int64_t d = 0; d < dim_; ++d) norm += static_cast<double>(row[d]) * row[d];
    if (norm > 0) {
      const float inv = static_cast<float>(1.0 / std::sqrt(norm));
      for (int64_t d = 0; d < dim_; ++d) row[d] *= inv;
    }
  }
  return Status::ok();
}

double cosine_similarity(std::span<const float> a, std::span<const float> b) {
  CW_CHECK(a.size() == b.size());
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  if (na <= 0 || nb <= 0) return 0.0;
  return dot / (std::sqrt(na) * std::sqrt(nb));
}

}  // namespace cw::text
