// ModelEmbedder on the tiny stories260K model (skips without ../shared/data) and the semantic chunker on top.
#include "text/embedder_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "support/testing.h"
#include "text/chunker.h"
#include "text/semantic_chunker.h"

namespace cw::text {
namespace {

TEST(ModelEmbedder, MeanPooledNormalisedDeterministic) {
  CW_REQUIRE_SHARED_DATA(dir);
  const std::string path = dir + "/models/stories260K.gguf";
  auto e = ModelEmbedder::load(path);
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  const int64_t dim = (*e)->dim();
  ASSERT_GT(dim, 0);
  EXPECT_NE((*e)->name().find("stories260K"), std::string::npos);
  const std::vector<std::string_view> texts = {"Once upon a time there was a little dog.",
                                               "Once upon a time there was a little dog.",
                                               "The girl played with her red ball in the park.", ""};
  std::vector<float> v;
  ASSERT_TRUE((*e)->embed(texts, &v).is_ok());
  ASSERT_EQ(v.size(), texts.size() * static_cast<size_t>(dim));
  auto row = [&](size_t i) { return std::span<const float>(v.data() + i * dim, static_cast<size_t>(dim)); };
  for (size_t i = 0; i < 3; ++i) {
    double n = 0;
    for (float x : row(i)) {
      ASSERT_TRUE(std::isfinite(x));
      n += static_cast<double>(x) * x;
    }
    EXPECT_NEAR(n, 1.0, 1e-4) << i;
  }
  for (int64_t d = 0; d < dim; ++d) EXPECT_EQ(v[d], v[dim + d]);  // same text, same vector
  EXPECT_LT(cosine_similarity(row(0), row(2)), 0.9999);
  // A text without tokens: this vocabulary adds BOS, so the row is BOS's state (finite, normalised) or zero.
  for (float x : row(3)) EXPECT_TRUE(std::isfinite(x));
  // Repeated calls give the same result (the session is reset between texts).
  std::vector<float> again;
  ASSERT_TRUE((*e)->embed(std::span<const std::string_view>(texts.data() + 2, 1), &again).is_ok());
  for (int64_t d = 0; d < dim; ++d) EXPECT_NEAR(again[d], v[2 * dim + d], 1e-6);
}

TEST(ModelEmbedder, TextsLongerThanTheContextAreWindowedNotTruncated) {
  CW_REQUIRE_SHARED_DATA(dir);
  ModelEmbedderOptions o;
  o.ctx = 8;
  auto small = ModelEmbedder::load(dir + "/models/stories260K.gguf", o);
  ASSERT_TRUE(small.is_ok()) << small.status().to_string();
  std::string long_text;
  for (int i = 0; i < 20; ++i) long_text += "The cat sat on the mat and looked at the moon. ";
  const std::string_view a = long_text, b = std::string_view(long_text).substr(0, 48);
  std::vector<float> v;
  ASSERT_TRUE((*small)->embed(std::vector<std::string_view>{a, b}, &v).is_ok());
  const size_t dim = static_cast<size_t>((*small)->dim());
  double n = 0;
  for (size_t d = 0; d < dim; ++d) n += static_cast<double>(v[d]) * v[d];
  EXPECT_NEAR(n, 1.0, 1e-4);
  // The tail of the long text changes its embedding: nothing was cut off at ctx tokens.
  double diff = 0;
  for (size_t d = 0; d < dim; ++d) diff += std::fabs(v[d] - v[dim + d]);
  EXPECT_GT(diff, 1e-4);
}

TEST(ModelEmbedder, Errors) {
  EXPECT_FALSE(ModelEmbedder::load("/nonexistent/model.gguf").is_ok());
  ModelEmbedderOptions o;
  o.ctx = 0;
  EXPECT_FALSE(ModelEmbedder::load("/nonexistent/model.gguf", o).is_ok());
  o.ctx = 16;
  o.threads = 0;
  auto r = ModelEmbedder::load("/nonexistent/model.gguf", o);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("threads"), std::string::npos);
}

TEST(ModelEmbedder, SemanticChunkerWithAModel) {
  CW_REQUIRE_SHARED_DATA(dir);
  const std::string spec = "semantic:model=" + dir + "/models/stories260K.gguf,threshold=percentile,amount=70,size=120";
  auto c = make_chunker(spec);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  const std::string text =
      "Lily had a big red ball. She liked to play with it in the park. One day the ball rolled away. "
      "Tom was a small boy who loved to eat cake. His mom made a cake for his birthday. He ate it all. "
      "The sun was hot and the sky was blue. Birds sang in the trees. The day was happy.";
  auto chunks = (*c)->chunk("story", text);
  ASSERT_TRUE(chunks.is_ok()) << chunks.status().to_string();
  ASSERT_FALSE(chunks->empty());
  int64_t pos = 0;
  for (const Chunk& ch : *chunks) {
    EXPECT_EQ(ch.byte_begin, pos);
    EXPECT_LE(ch.n_tokens, 120);
    pos = ch.byte_end;
  }
  EXPECT_EQ(pos, static_cast<int64_t>(text.size()));
}

}  // namespace
}  // namespace cw::text
