#include "text/semantic_chunker.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "text/embedder_model.h"
#include "text/measure.h"
#include "text/pack.h"

namespace cw::text {
namespace {

constexpr size_t kEmbedBatch = 64;  // texts per Embedder::embed call

double mean_of(std::span<const double> v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

class SemanticChunker final : public Chunker {
 public:
  SemanticChunker(ChunkerConfig config, SemanticOptions options, std::shared_ptr<const Embedder> embedder)
      : Chunker(std::move(config)), options_(options), embedder_(std::move(embedder)) {}

  Result<std::vector<Chunk>> chunk(std::string_view doc_id, std::string_view text) const override {
    std::vector<Chunk> out;
    if (text.empty()) return out;
    const DocText doc(text);
    const std::unique_ptr<DocSizer> sizer = config().measure->bind(doc);
    std::vector<int64_t> cuts;
    CW_RETURN_IF_ERROR(sentence_cuts(doc, 0, doc.size(), options_.locale, cuts));
    std::vector<std::pair<int64_t, int64_t>> sentences;  // tiling [0, size)
    sentences.reserve(cuts.size() + 1);
    int64_t prev = 0;
    for (int64_t c : cuts) {
      if (c <= prev) continue;
      sentences.emplace_back(prev, c);
      prev = c;
    }
    sentences.emplace_back(prev, doc.size());
    const size_t n = sentences.size();

    // Embeddings of each sentence with its window of neighbours: [n, dim].
    const int64_t w = options_.window;
    std::vector<std::string_view> windows(n);
    for (size_t i = 0; i < n; ++i) {
      const size_t lo = i >= static_cast<size_t>(w) ? i - static_cast<size_t>(w) : 0;
      const size_t hi = std::min(n - 1, i + static_cast<size_t>(w));
      windows[i] = text.substr(sentences[lo].first, sentences[hi].second - sentences[lo].first);
    }
    // Cosine distances between neighbours, embedding in batches (memory: one batch of vectors); a zero
    // vector carries no information (distance 0).
    const size_t dim = static_cast<size_t>(embedder_->dim());
    auto is_zero = [](std::span<const float> v) {
      return std::all_of(v.begin(), v.end(), [](float x) { return x == 0.0f; });
    };
    auto distance = [&](std::span<const float> a, std::span<const float> c) {
      return is_zero(a) || is_zero(c) ? 0.0 : 1.0 - cosine_similarity(a, c);
    };
    std::vector<double> distances;
    distances.reserve(n > 0 ? n - 1 : 0);
    std::vector<float> batch, last(dim);
    for (size_t b = 0; b < n; b += kEmbedBatch) {
      const size_t m = std::min(kEmbedBatch, n - b);
      Status s = embedder_->embed(std::span<const std::string_view>(windows.data() + b, m), &batch);
      if (!s.is_ok()) return Status(s.code(), "semantic chunker: " + embedder_->name() + ": " + s.message());
      if (batch.size() != m * dim) return internal_error("semantic chunker: embedder returned a wrong size");
      auto row = [&](size_t i) { return std::span<const float>(batch.data() + i * dim, dim); };
      if (b > 0) distances.push_back(distance(last, row(0)));
      for (size_t i = 0; i + 1 < m; ++i) distances.push_back(distance(row(i), row(i + 1)));
      std::copy(batch.end() - static_cast<std::ptrdiff_t>(dim), batch.end(), last.begin());
    }
    const std::vector<size_t> breaks = semantic_breakpoints(distances, options_.threshold, options_.amount);

    // Pieces: sentences (oversized ones split by the plain preset); a hard break starts each group.
    const SeparatorPreset* plain = find_preset("plain");
    static const std::vector<SeparatorLevel> kNone;
    std::vector<Piece> pieces;
    pieces.reserve(n);
    size_t next_break = 0;
    for (size_t i = 0; i < n; ++i) {
      const auto [b, e] = sentences[i];
      const size_t first = pieces.size();
      const int64_t est = sizer->estimate(b, e);
      if (est <= config().size) {
        pieces.push_back(Piece{b, e, est, false, -1});
      } else {
        split_recursive(*sizer, b, e, plain != nullptr ? plain->levels : kNone, 0, config().size, pieces);
      }
      if (i > 0 && next_break < breaks.size() && breaks[next_break] == i - 1) {
        if (pieces.size() > first) pieces[first].hard_break = true;
        ++next_break;
      }
    }
    std::vector<PackedChunk> packed;
    CW_RETURN_IF_ERROR(pack_pieces(*sizer, pieces, PackOptions{config().size, config().overlap}, packed));
    to_chunks(doc, doc_id, packed, 0, out);
    for (Chunk& c : out) c.kind = "text";
    return out;
  }

 private:
  SemanticOptions options_;
  std::shared_ptr<const Embedder> embedder_;
};

Status validate(const SemanticOptions& o) {
  CW_RETURN_IF_ERROR(validate_sentence_locale(o.locale));
  if (o.window < 0 || o.window > 64) {
    return invalid_argument("semantic: window=" + std::to_string(o.window) + ": must be in [0, 64]");
  }
  const bool pct = o.threshold == SemanticThreshold::kPercentile || o.threshold == SemanticThreshold::kGradient;
  if (!std::isfinite(o.amount) || (pct && (o.amount < 0 || o.amount > 100)) || (!pct && (o.amount < 0 || o.amount > 1000))) {
    return invalid_argument("semantic: amount=" + std::to_string(o.amount) + ": must be in " +
                            (pct ? "[0, 100] (a percentile)" : "[0, 1000]"));
  }
  return Status::ok();
}

}  // namespace

double default_semantic_amount(SemanticThreshold mode) {
  switch (mode) {
    case SemanticThreshold::kPercentile: return 95;
    case SemanticThreshold::kStdDev: return 3;
    case SemanticThreshold::kInterquartile: return 1.5;
    case SemanticThreshold::kGradient: return 95;
  }
  return 95;
}

double percentile(std::vector<double> values, double p) {
  CW_CHECK(!values.empty());
  std::sort(values.begin(), values.end());
  const double pos = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return values[lo] + (values[hi] - values[lo]) * frac;
}

std::vector<size_t> semantic_breakpoints(std::span<const double> d, SemanticThreshold mode, double amount) {
  std::vector<size_t> out;
  const size_t n = d.size();
  if (n < 2) return out;
  std::vector<double> series(d.begin(), d.end());
  double threshold = 0;
  switch (mode) {
    case SemanticThreshold::kPercentile:
      threshold = percentile(series, amount);
      break;
    case SemanticThreshold::kStdDev: {
      const double mean = mean_of(series);
      double var = 0;
      for (double x : series) var += (x - mean) * (x - mean);
      threshold = mean + amount * std::sqrt(var / static_cast<double>(n));
      break;
    }
    case SemanticThreshold::kInterquartile:
      threshold = mean_of(series) + amount * (percentile(series, 75) - percentile(series, 25));
      break;
    case SemanticThreshold::kGradient: {
      // How sharply the distance rises into gap i and falls after it (one-sided at the ends). Central
      // differences (numpy.gradient, as LangChain uses) peak one gap before the shift; this peaks on it.
      for (size_t i = 0; i < n; ++i) {
        if (i == 0) series[i] = d[0] - d[1];
        else if (i == n - 1) series[i] = d[n - 1] - d[n - 2];
        else series[i] = d[i] - (d[i - 1] + d[i + 1]) / 2.0;
      }
      threshold = percentile(series, amount);
      break;
    }
  }
  // A tiny tolerance keeps equal values (a flat series) from breaking through rounding noise.
  const double eps = 1e-12 * std::max(1.0, std::fabs(threshold));
  for (size_t i = 0; i < n; ++i) {
    if (series[i] > threshold + eps) out.push_back(i);
  }
  return out;
}

Result<std::unique_ptr<Chunker>> create_semantic_chunker(const ChunkerConfig& config, const SemanticOptions& options,
                                                         std::shared_ptr<const Embedder> embedder) {
  CW_RETURN_IF_ERROR(validate(options));
  if (!embedder) return invalid_argument("semantic: no embedder");
  if (embedder->dim() < 1) return invalid_argument("semantic: embedder " + embedder->name() + " has no dimensions");
  return std::unique_ptr<Chunker>(new SemanticChunker(config, options, std::move(embedder)));
}

Result<std::unique_ptr<Chunker>> create_semantic_chunker(const ChunkerConfig& config) {
  const SpecParams& p = config.params;
  static constexpr std::string_view kModes[] = {"percentile", "stddev", "interquartile", "gradient"};
  CW_ASSIGN_OR_RETURN(const std::string mode, p.get_choice("threshold", "percentile", kModes));
  SemanticOptions options;
  options.threshold = mode == "percentile"  ? SemanticThreshold::kPercentile
                      : mode == "stddev"    ? SemanticThreshold::kStdDev
                      : mode == "gradient"  ? SemanticThreshold::kGradient
                                            : SemanticThreshold::kInterquartile;
  const bool pct = options.threshold == SemanticThreshold::kPercentile ||
                   options.threshold == SemanticThreshold::kGradient;
  CW_ASSIGN_OR_RETURN(options.amount,
                      p.get_double("amount", default_semantic_amount(options.threshold), 0, pct ? 100 : 1000));
  CW_ASSIGN_OR_RETURN(options.window, p.get_int("window", 1, 0, 64));
  options.locale = p.get("locale", kDefaultSentenceLocale);

  const std::string model = p.get("model", "");
  static constexpr std::string_view kEmbedders[] = {"hash", "model"};
  CW_ASSIGN_OR_RETURN(const std::string kind, p.get_choice("embedder", model.empty() ? "hash" : "model", kEmbedders));
  std::shared_ptr<const Embedder> embedder;
  if (kind == "hash") {
    if (!model.empty()) return invalid_argument("semantic: model= needs embedder=model (got embedder=hash)");
    if (p.has("ctx")) return invalid_argument("semantic: ctx= applies to embedder=model only");
    CW_ASSIGN_OR_RETURN(const int64_t dim, p.get_int("dim", 256, 1, 65536));
    embedder = std::make_shared<HashEmbedder>(dim);
  } else {
    if (model.empty()) return invalid_argument("semantic: embedder=model needs model=FILE.gguf");
    if (p.has("dim")) return invalid_argument("semantic: dim= applies to embedder=hash only (a model has its own)");
    ModelEmbedderOptions mo;
    CW_ASSIGN_OR_RETURN(mo.ctx, p.get_int("ctx", 512, 1, int64_t{1} << 20));
    Result<std::unique_ptr<ModelEmbedder>> e = ModelEmbedder::load(model, mo);
    if (!e.is_ok()) return Status(e.status().code(), "semantic: model=" + model + ": " + e.status().message());
    embedder = std::shared_ptr<const Embedder>(std::move(e).value());
  }
  return create_semantic_chunker(config, options, std::move(embedder));
}

const MethodInfo& semantic_method() {
  static const MethodInfo kInfo{
      "semantic",
      "sentences grouped where the embedding similarity of neighbours drops, packed to the size",
      {
          {"threshold", "percentile|stddev|interquartile|gradient (default percentile)"},
          {"amount", "threshold amount (default 95 for percentile/gradient, 3 for stddev, 1.5 for interquartile)"},
          {"window", "neighbour sentences embedded on each side, 0..64 (default 1)"},
          {"locale", "ICU locale of the sentence rules (default en@ss=standard)"},
          {"embedder", "hash|model (default: model when model= is given, else hash)"},
          {"model", "GGUF model whose mean-pooled hidden states embed the sentences"},
          {"dim", "dimensions of the hash embedder (default 256)"},
          {"ctx", "tokens per forward window of the model embedder (default 512)"},
      },
      &create_semantic_chunker,
  };
  return kInfo;
}

}  // namespace cw::text
