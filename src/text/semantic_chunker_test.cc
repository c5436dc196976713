// Unit tests of the `semantic` chunker: breakpoint statistics, the hashing test embedder, chunks on a
// constructed text whose topic shifts the test embedder makes obvious, the size limit, spec errors.
#include "text/semantic_chunker.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "base/utf8.h"
#include "text/chunker.h"
#include "text/embedder.h"

namespace cw::text {
namespace {

const std::vector<double> kDistances = {0.1, 0.12, 0.9, 0.11, 0.1, 0.8, 0.09, 0.1};

TEST(SemanticBreakpoints, EachThresholdMode) {
  using T = SemanticThreshold;
  EXPECT_EQ(semantic_breakpoints(kDistances, T::kPercentile, 80), (std::vector<size_t>{2, 5}));
  EXPECT_EQ(semantic_breakpoints(kDistances, T::kPercentile, 95), (std::vector<size_t>{2}));
  EXPECT_EQ(semantic_breakpoints(kDistances, T::kPercentile, 100), (std::vector<size_t>{}));
  EXPECT_EQ(semantic_breakpoints(kDistances, T::kStdDev, 1.5), (std::vector<size_t>{2, 5}));
  EXPECT_EQ(semantic_breakpoints(kDistances, T::kStdDev, 3), (std::vector<size_t>{}));
  EXPECT_EQ(semantic_breakpoints(kDistances, T::kInterquartile, 1.0), (std::vector<size_t>{2, 5}));
  // Gradient: local rise d[i] - (d[i-1] + d[i+1]) / 2 = {-0.02, -0.38, 0.785, -0.74, -0.355, 0.705, -0.36, 0.01}.
  EXPECT_EQ(semantic_breakpoints(kDistances, T::kGradient, 75), (std::vector<size_t>{2, 5}));
  EXPECT_EQ(semantic_breakpoints(kDistances, T::kGradient, 90), (std::vector<size_t>{2}));
  // A level that drifts up to a plateau: the raw percentile finds nothing above the plateau, gradient finds
  // the isolated peak (2) and the rise onto the plateau (4).
  const std::vector<double> drift = {0.1, 0.1, 0.6, 0.1, 0.7, 0.7, 0.7, 0.7};
  EXPECT_EQ(semantic_breakpoints(drift, T::kPercentile, 85), (std::vector<size_t>{}));
  EXPECT_EQ(semantic_breakpoints(drift, T::kGradient, 85), (std::vector<size_t>{2, 4}));
}

TEST(SemanticBreakpoints, DegenerateSeries) {
  for (auto mode : {SemanticThreshold::kPercentile, SemanticThreshold::kStdDev, SemanticThreshold::kInterquartile,
                    SemanticThreshold::kGradient}) {
    EXPECT_TRUE(semantic_breakpoints({}, mode, 50).empty());
    const std::vector<double> one = {0.7};
    EXPECT_TRUE(semantic_breakpoints(one, mode, 0).empty());
    const std::vector<double> flat(10, 0.3);
    EXPECT_TRUE(semantic_breakpoints(flat, mode, 0).empty()) << static_cast<int>(mode);
  }
}

TEST(SemanticBreakpoints, PercentileInterpolates) {
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 0), 1);
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 100), 4);
  EXPECT_DOUBLE_EQ(percentile({5}, 37), 5);
}

TEST(HashEmbedder, DeterministicNormalisedAndLexical) {
  HashEmbedder e(128);
  const std::vector<std::string_view> texts = {"The cat sat on the mat.", "the CAT sat on the mat",
                                               "Quantum chromodynamics of gluons.", "", "?!"};
  std::vector<float> v, w;
  ASSERT_TRUE(e.embed(texts, &v).is_ok());
  ASSERT_TRUE(e.embed(texts, &w).is_ok());
  ASSERT_EQ(v.size(), texts.size() * 128);
  EXPECT_EQ(v, w);
  auto row = [&](size_t i) { return std::span<const float>(v.data() + i * 128, 128); };
  double n0 = 0;
  for (float x : row(0)) n0 += x * x;
  EXPECT_NEAR(n0, 1.0, 1e-5);
  EXPECT_NEAR(cosine_similarity(row(0), row(1)), 1.0, 1e-6);  // case and punctuation do not matter
  EXPECT_LT(cosine_similarity(row(0), row(2)), 0.5);
  for (float x : row(3)) EXPECT_EQ(x, 0.0f);  // no words: zero row
  for (float x : row(4)) EXPECT_EQ(x, 0.0f);
  EXPECT_EQ(cosine_similarity(row(0), row(3)), 0.0);
  std::vector<float> none;
  ASSERT_TRUE(e.embed({}, &none).is_ok());
  EXPECT_TRUE(none.empty());
}

// Three topics on disjoint vocabularies, six sentences each: every sentence of a topic uses most of the
// topic's words (and one word of its own), so neighbours inside a topic are close and across topics far.
struct TopicText {
  std::string text;
  std::vector<int64_t> topic_starts;  // byte offsets where topics 2 and 3 begin
};

TopicText topic_text(size_t per_topic = 6) {
  const std::vector<std::vector<std::string>> vocab = {
      {"cat", "mouse", "kitchen", "chased", "whiskers", "cheese", "hole"},
      {"stock", "bond", "yields", "market", "investors", "auction", "rally"},
      {"rocket", "orbit", "launch", "engine", "stage", "telemetry", "fuel"},
  };
  const std::vector<std::string> extra = {"today", "again", "quickly", "there", "often", "later"};
  TopicText t;
  for (size_t k = 0; k < vocab.size(); ++k) {
    if (k > 0) t.topic_starts.push_back(static_cast<int64_t>(t.text.size()));
    for (size_t jj = 0; jj < per_topic; ++jj) {
      const size_t j = jj % 6;
      std::string s;
      for (size_t w = 0; w < vocab[k].size(); ++w) {
        if (w == j) continue;  // each sentence leaves one topic word out
        const std::string& word = vocab[k][(w + j) % vocab[k].size()];
        if (!s.empty()) s += ' ';
        s += word;
      }
      s[0] = static_cast<char>(s[0] - 'a' + 'A');
      t.text += s + " " + extra[j] + ". ";
    }
  }
  t.text.pop_back();
  t.text += "\n";
  return t;
}

std::unique_ptr<Chunker> make(const std::string& spec) {
  auto c = make_chunker(spec);
  EXPECT_TRUE(c.is_ok()) << spec << ": " << c.status().to_string();
  return c.is_ok() ? std::move(c).value() : nullptr;
}

void expect_tiles(const std::vector<Chunk>& chunks, std::string_view text, int64_t size) {
  int64_t pos = 0;
  for (const Chunk& c : chunks) {
    EXPECT_EQ(c.byte_begin, pos);
    EXPECT_LT(c.byte_begin, c.byte_end);
    EXPECT_LE(c.n_tokens, size);
    EXPECT_EQ(c.char_begin, static_cast<int64_t>(utf8_count_codepoints(text.substr(0, c.byte_begin))));
    EXPECT_EQ(c.char_end, static_cast<int64_t>(utf8_count_codepoints(text.substr(0, c.byte_end))));
    pos = c.byte_end;
  }
  EXPECT_EQ(pos, static_cast<int64_t>(text.size()));
}

std::vector<int64_t> starts_after_first(const std::vector<Chunk>& chunks) {
  std::vector<int64_t> s;
  for (size_t i = 1; i < chunks.size(); ++i) s.push_back(chunks[i].byte_begin);
  return s;
}

TEST(SemanticChunker, BreaksExactlyAtTopicShiftsInEveryMode) {
  const TopicText t = topic_text();
  const std::vector<std::string> specs = {
      "semantic:threshold=percentile,amount=85,window=0,size=100000",
      "semantic:threshold=stddev,amount=1.5,window=0,size=100000",
      "semantic:threshold=interquartile,amount=1.5,window=0,size=100000",
      "semantic:threshold=percentile,amount=85,window=1,size=100000",
  };
  for (const std::string& spec : specs) {
    auto chunks = make(spec)->chunk("topics", t.text);
    ASSERT_TRUE(chunks.is_ok()) << spec << ": " << chunks.status().to_string();
    expect_tiles(*chunks, t.text, 100000);
    EXPECT_EQ(starts_after_first(*chunks), t.topic_starts) << spec;
    for (const Chunk& c : *chunks) EXPECT_EQ(c.kind, "text");
  }
  auto g = make("semantic:threshold=gradient,amount=85,window=0,size=100000")->chunk("topics", t.text);
  ASSERT_TRUE(g.is_ok());
  expect_tiles(*g, t.text, 100000);
  EXPECT_EQ(starts_after_first(*g), t.topic_starts);
}

TEST(SemanticChunker, ManySentencesAcrossEmbeddingBatches) {
  const TopicText t = topic_text(64);  // the shifts fall exactly between two 64-text embedding batches
  for (const char* spec : {"semantic:threshold=stddev,amount=2,window=0,size=100000",
                           "semantic:threshold=percentile,amount=97,window=0,size=100000"}) {
    auto chunks = make(spec)->chunk("topics", t.text);
    ASSERT_TRUE(chunks.is_ok()) << chunks.status().to_string();
    expect_tiles(*chunks, t.text, 100000);
    EXPECT_EQ(starts_after_first(*chunks), t.topic_starts) << spec;
  }
}

TEST(SemanticChunker, SizeLimitHoldsAndTopicsNeverShareAChunk) {
  const TopicText t = topic_text();
  for (const std::string unit : {"chars", "bytes", "words"}) {
    const int64_t size = unit == "words" ? 12 : 70;
    auto chunks = make("semantic:threshold=percentile,amount=85,window=0,unit=" + unit + ",size=" +
                       std::to_string(size))
                      ->chunk("topics", t.text);
    ASSERT_TRUE(chunks.is_ok()) << chunks.status().to_string();
    expect_tiles(*chunks, t.text, size);
    EXPECT_GT(chunks->size(), 3u);
    for (const Chunk& c : *chunks) {
      for (int64_t s : t.topic_starts) EXPECT_FALSE(c.byte_begin < s && s < c.byte_end) << "crosses a topic shift";
    }
  }
}

TEST(SemanticChunker, OversizedSentenceIsSplitAndOverlapIsAllowed) {
  std::string text = "Short one. ";
  for (int i = 0; i < 50; ++i) text += "word" + std::to_string(i) + " ";
  text += "end. Another short sentence here.";
  auto chunks = make("semantic:size=40,unit=chars")->chunk("x", text);
  ASSERT_TRUE(chunks.is_ok()) << chunks.status().to_string();
  expect_tiles(*chunks, text, 40);
  auto ov = make("semantic:size=40,overlap=10,unit=chars")->chunk("x", text);
  ASSERT_TRUE(ov.is_ok()) << ov.status().to_string();
  for (size_t i = 0; i + 1 < ov->size(); ++i) {
    EXPECT_LE((*ov)[i].n_tokens, 40);
    EXPECT_LE((*ov)[i + 1].byte_begin, (*ov)[i].byte_end);
  }
  EXPECT_EQ(ov->back().byte_end, static_cast<int64_t>(text.size()));
}

TEST(SemanticChunker, EmptyUnicodeAndInvalidInput) {
  auto c = make("semantic:size=20,unit=chars");
  EXPECT_TRUE(c->chunk("e", "")->empty());
  const std::string text = "Hello wörld 😀. 你好，世界。これは日本語です。 שלום עולם. \xFF\xFE broken.\r\nEnd!";
  auto chunks = c->chunk("u", text);
  ASSERT_TRUE(chunks.is_ok()) << chunks.status().to_string();
  expect_tiles(*chunks, text, 20);
  auto one = make("semantic:size=1,unit=chars")->chunk("u", text);
  ASSERT_TRUE(one.is_ok()) << one.status().to_string();
  expect_tiles(*one, text, 1);
}

TEST(SemanticChunker, ExplicitEmbedder) {
  auto cfg = make_config(*parse_spec("semantic:size=100000"));
  ASSERT_TRUE(cfg.is_ok()) << cfg.status().to_string();
  SemanticOptions o;
  o.threshold = SemanticThreshold::kStdDev;
  o.amount = 1.5;
  o.window = 0;
  auto c = create_semantic_chunker(*cfg, o, std::make_shared<HashEmbedder>(64, 3));
  ASSERT_TRUE(c.is_ok());
  const TopicText t = topic_text();
  auto chunks = (*c)->chunk("t", t.text);
  ASSERT_TRUE(chunks.is_ok());
  EXPECT_EQ(starts_after_first(*chunks), t.topic_starts);
  o.window = 65;
  EXPECT_FALSE(create_semantic_chunker(*cfg, o, std::make_shared<HashEmbedder>(64)).is_ok());
  o.window = 1;
  EXPECT_FALSE(create_semantic_chunker(*cfg, o, nullptr).is_ok());
}

TEST(SemanticChunker, SpecErrors) {
  for (const char* spec :
       {"semantic:threshold=median", "semantic:amount=101", "semantic:threshold=stddev,amount=-1",
        "semantic:amount=x", "semantic:window=65", "semantic:embedder=model", "semantic:embedder=hash,model=a.gguf",
        "semantic:model=/nonexistent/m.gguf", "semantic:dim=0", "semantic:ctx=5",
        "semantic:bogus=1"}) {
    auto c = make_chunker(spec);
    EXPECT_FALSE(c.is_ok()) << spec;
    if (!c.is_ok()) {
      EXPECT_FALSE(c.status().message().empty()) << spec;
    }
  }
  EXPECT_TRUE(make_chunker("semantic:threshold=gradient,amount=50,window=2,dim=32,locale=de").is_ok());
}

}  // namespace
}  // namespace cw::text
