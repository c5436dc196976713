// Property test: random multilingual text (ASCII words, CJK, emoji with ZWJ, Arabic, combining marks, CRLF,
// markdown syntax, invalid bytes), every method x unit x size x overlap: offsets reconstruct each chunk,
// chunks are ordered and cover the input, sizes never exceed the limit, overlap never exceeds its limit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "base/utf8.h"
#include "support/testing.h"
#include "text/chunker.h"

namespace cw::text {
namespace {

std::string random_text(std::mt19937& rng, size_t target, bool allow_invalid) {
  static const char* kPieces[] = {
      "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "Mr.", "e.g.", "don't", "x",
      "日本語", "中文字符", "テスト", "한국어",                         // CJK
      "\xF0\x9F\x98\x80", "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7",  // emoji, ZWJ family
      "مرحبا", "بالعالم", "שלום",                                       // RTL
      "e\xCC\x81", "n\xCC\x83o", "a\xCC\x8A\xCC\x81",                  // combining marks
      "\xC2\xA0", "\xE2\x80\x83",                                       // NBSP, em space
      "Ünïcödé", "naïve", "Ελληνικά", "Русский",
  };
  static const char* kSeps[] = {" ", " ", " ", "  ", "\n", "\r\n", "\n\n", "\r\n\r\n", ". ", "? ", "! ", ", ",
                                "。", "؟ ", "\t", "\n# ", "\n## ", "\n```\n", "\n| a | b |\n|---|---|\n| 1 | 2 |\n",
                                "\n- ", "<p>", "\\section{", "\n---\n"};
  std::string s;
  while (s.size() < target) {
    const uint32_t r = rng() % 100;
    if (allow_invalid && r < 2) {
      static const char* kBad[] = {"\xFF", "\xC3", "\xE6\x97", "\xF0\x9F\x98", "\x80", "\xED\xA0\x80"};
      s += kBad[rng() % 6];
    } else if (r < 60) {
      s += kPieces[rng() % (sizeof kPieces / sizeof *kPieces)];
    } else {
      s += kSeps[rng() % (sizeof kSeps / sizeof *kSeps)];
    }
  }
  return s;
}

bool is_boundary(std::string_view s, int64_t pos) {
  // A boundary of the decoder that base/utf8.h defines (each invalid byte its own unit).
  size_t i = 0;
  while (static_cast<int64_t>(i) < pos) utf8_decode(s, i);
  return static_cast<int64_t>(i) == pos;
}

struct Unitcfg {
  std::string spec_suffix;  // ",unit=..." or ",tokenizer=..."
  std::string name;
};

int g_ok = 0, g_too_large = 0;

void check(const std::string& spec, const std::string& text, int64_t size, int64_t overlap) {
  SCOPED_TRACE(spec);
  auto ch = make_chunker(spec);
  ASSERT_TRUE(ch.is_ok()) << ch.status().to_string();
  auto r = (*ch)->chunk("doc", text);
  if (!r.is_ok()) {
    // The only acceptable failure: one indivisible unit larger than the limit.
    ASSERT_EQ(r.status().code(), StatusCode::kOutOfRange) << r.status().to_string();
    ASSERT_NE(r.status().message().find("indivisible"), std::string::npos) << r.status().to_string();
    ++g_too_large;
    return;
  }
  ++g_ok;
  const std::vector<Chunk>& chunks = *r;
  const SizeMeasure& m = *(*ch)->config().measure;
  const auto n = static_cast<int64_t>(text.size());
  if (n == 0) {
    EXPECT_TRUE(chunks.empty());
    return;
  }
  ASSERT_FALSE(chunks.empty());
  EXPECT_EQ(chunks.front().byte_begin, 0);
  EXPECT_EQ(chunks.back().byte_end, n);
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Chunk& c = chunks[i];
    ASSERT_LT(c.byte_begin, c.byte_end);
    ASSERT_LE(c.byte_end, n);
    EXPECT_TRUE(is_boundary(text, c.byte_begin)) << c.byte_begin;
    EXPECT_TRUE(is_boundary(text, c.byte_end)) << c.byte_end;
    const std::string_view t = c.text_in(text);
    EXPECT_EQ(c.char_begin, static_cast<int64_t>(utf8_count_codepoints(std::string_view(text).substr(0, c.byte_begin))));
    EXPECT_EQ(c.char_end - c.char_begin, static_cast<int64_t>(utf8_count_codepoints(t)));
    EXPECT_EQ(c.n_tokens, m.measure(t)) << "chunk " << i;
    EXPECT_LE(c.n_tokens, size) << "chunk " << i;
    if (i > 0) {
      const Chunk& p = chunks[i - 1];
      EXPECT_GT(c.byte_begin, p.byte_begin);
      EXPECT_GT(c.byte_end, p.byte_end);
      EXPECT_LE(c.byte_begin, p.byte_end) << "gap before chunk " << i;
      if (overlap == 0) {
        EXPECT_EQ(c.byte_begin, p.byte_end);
      } else if (c.byte_begin < p.byte_end) {
        const std::string_view ov = std::string_view(text).substr(static_cast<size_t>(c.byte_begin),
                                                                  static_cast<size_t>(p.byte_end - c.byte_begin));
        EXPECT_LE(m.measure(ov), overlap) << "overlap of chunk " << i;
      }
    }
  }
}

TEST(ChunkerProperty, RandomUnicodeAllMethodsAndUnits) {
  std::vector<Unitcfg> units = {{",unit=chars", "chars"}, {",unit=bytes", "bytes"}, {",unit=words", "words"}};
  if (auto shared = testing::shared_data_dir()) {
    units.push_back({",tokenizer=" + *shared + "/vocab/ggml-vocab-llama-spm.gguf", "spm"});
    units.push_back({",tokenizer=" + *shared + "/vocab/ggml-vocab-gpt-2.gguf", "gpt-2"});
    // WordPiece normalizes text, so token offsets cannot be mapped: exercises the exact-measure fallbacks.
    units.push_back({",tokenizer=" + *shared + "/vocab/ggml-vocab-bert-bge.gguf", "bert"});
  } else {
    std::printf("../shared/data absent: token units skipped\n");
  }
  const std::vector<std::string> methods = {"token",
                                            "sentence",
                                            "recursive:preset=plain",
                                            "recursive:preset=markdown",
                                            "recursive:preset=latex",
                                            "recursive:preset=html",
                                            "recursive:preset=code",
                                            "markdown"};
  const std::pair<int64_t, int64_t> sizes[] = {{1, 0}, {7, 0}, {7, 3}, {64, 0}, {64, 16}, {300, 100}};
  // CW_TEXT_PROPERTY_DOCS=N runs more random documents (default 6, the first one empty).
  const char* env = std::getenv("CW_TEXT_PROPERTY_DOCS");
  const int n_docs = env != nullptr ? std::max(1, std::atoi(env)) : 6;
  std::mt19937 rng(20261128);
  int docs = 0;
  for (int d = 0; d < n_docs; ++d) {
    const std::string text =
        d == 0 ? std::string() : random_text(rng, 200 + 500 * static_cast<size_t>(d % 8), d % 2 == 0);
    ++docs;
    for (const std::string& method : methods) {
      for (const Unitcfg& u : units) {
        for (auto [size, overlap] : sizes) {
          const std::string sep = method.find(':') == std::string::npos ? ":" : ",";
          const std::string spec = method + sep + "size=" + std::to_string(size) +
                                   ",overlap=" + std::to_string(overlap) + u.spec_suffix;
          check(spec, text, size, overlap);
          if (::testing::Test::HasFatalFailure()) return;
        }
      }
    }
  }
  EXPECT_EQ(docs, n_docs);
  std::printf("chunked: %d, refused (one unit over the limit): %d\n", g_ok, g_too_large);
  EXPECT_GT(g_ok, 5 * g_too_large);
}

}  // namespace
}  // namespace cw::text
