// Property test of the code and semantic chunkers over random text (seeded): code-like tokens mixed with
// emoji, CJK, RTL, combining marks, CRLF and invalid bytes, for every unit (tokens with two GGUF vocabularies
// when ../shared/data is present), several sizes and overlaps. Checks: offsets reconstruct each chunk
// (bytes and code points), chunks in order covering the input (tiling without overlap), n_tokens equals the
// exact measure of the chunk's own text and never exceeds the limit, overlap within its budget.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "base/utf8.h"
#include "support/testing.h"
#include "text/chunker.h"
#include "text/treesitter/languages.h"

namespace cw::text {
namespace {

std::string random_source(std::mt19937& rng, size_t n_tokens) {
  static const std::vector<std::string> kTokens = {
      "def ", "class ", "return ", "if ", "for ", "fn ", "func ", "int ", "{", "}", "(", ")", "[", "]", ";", ":",
      ",", ".", " = ", " + ", " * ", "x", "total", "value_1", "\"str\"", "'c'", "// note ", "# note ", "/* c */",
      "\n", "\n", "\n    ", "\n\t", "\r\n", "  ", " ", "Ünïcödé", "日本語", "😀", "👩‍👩‍👧", "مرحبا", "e\u0301",
      "\xff", "\xc3", "\xe2\x82", ". ", "! ", "? ", "Cat mouse. ", "Stock bond. ", "\n\n"};
  std::string s;
  for (size_t i = 0; i < n_tokens; ++i) s += kTokens[rng() % kTokens.size()];
  return s;
}

int g_ok = 0, g_refused = 0;

void check(const std::string& spec, const std::string& text, int64_t size, int64_t overlap) {
  SCOPED_TRACE(spec);
  auto chunker = make_chunker(spec);
  ASSERT_TRUE(chunker.is_ok()) << chunker.status().to_string();
  auto got = (*chunker)->chunk("doc", text);
  if (!got.is_ok()) {
    ASSERT_EQ(got.status().code(), StatusCode::kOutOfRange) << got.status().to_string();
    ++g_refused;
    return;
  }
  ++g_ok;
  const SizeMeasure& m = *(*chunker)->config().measure;
  const std::vector<Chunk>& chunks = *got;
  if (text.empty()) {
    EXPECT_TRUE(chunks.empty());
    return;
  }
  ASSERT_FALSE(chunks.empty());
  EXPECT_EQ(chunks.front().byte_begin, 0);
  EXPECT_EQ(chunks.back().byte_end, static_cast<int64_t>(text.size()));
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Chunk& c = chunks[i];
    ASSERT_LT(c.byte_begin, c.byte_end) << "chunk " << i;
    ASSERT_LE(c.byte_end, static_cast<int64_t>(text.size()));
    EXPECT_EQ(c.index, static_cast<int64_t>(i));
    EXPECT_EQ(c.char_begin, static_cast<int64_t>(utf8_count_codepoints(std::string_view(text).substr(0, c.byte_begin))));
    EXPECT_EQ(c.char_end - c.char_begin, static_cast<int64_t>(utf8_count_codepoints(c.text_in(text))));
    EXPECT_EQ(c.n_tokens, m.measure(c.text_in(text))) << "chunk " << i;
    EXPECT_LE(c.n_tokens, size) << "chunk " << i;
    if (i == 0) continue;
    const Chunk& p = chunks[i - 1];
    EXPECT_GT(c.byte_begin, p.byte_begin);
    EXPECT_LE(c.byte_begin, p.byte_end) << "gap before chunk " << i;
    if (overlap == 0) {
      EXPECT_EQ(c.byte_begin, p.byte_end);
    } else if (c.byte_begin < p.byte_end) {
      EXPECT_LE(m.measure(std::string_view(text).substr(c.byte_begin, p.byte_end - c.byte_begin)), overlap);
    }
  }
}

TEST(CodeSemanticProperty, RandomTextEveryUnitSizeAndOverlap) {
  struct Unit {
    std::string suffix;
  };
  std::vector<Unit> units = {{",unit=chars"}, {",unit=bytes"}, {",unit=words"}};
  if (auto shared = testing::shared_data_dir()) {
    units.push_back({",tokenizer=" + *shared + "/vocab/ggml-vocab-llama-spm.gguf"});
    units.push_back({",tokenizer=" + *shared + "/vocab/ggml-vocab-gpt-2.gguf"});
  }
  std::vector<std::string> methods = {"semantic:window=0", "semantic:threshold=stddev,amount=1,window=2",
                                      "semantic:threshold=gradient,amount=80,dim=16"};
  for (const char* lang : {"python", "cpp", "javascript", "rust"}) {
    const std::vector<std::string> built = ts::built_languages();
    if (std::find(built.begin(), built.end(), lang) != built.end()) methods.push_back(std::string("code:lang=") + lang);
  }
  const std::pair<int64_t, int64_t> sizes[] = {{1, 0}, {9, 0}, {9, 4}, {64, 0}, {64, 20}, {400, 0}};
  std::mt19937 rng(6);
  for (int d = 0; d < 4; ++d) {
    const std::string text = d == 0 ? std::string() : random_source(rng, 60 + 120 * static_cast<size_t>(d));
    for (const std::string& method : methods) {
      for (const Unit& u : units) {
        for (auto [size, overlap] : sizes) {
          const std::string spec = method + ",size=" + std::to_string(size) + ",overlap=" + std::to_string(overlap) + u.suffix;
          check(spec, text, size, overlap);
          if (::testing::Test::HasFatalFailure()) return;
        }
      }
    }
  }
  std::printf("code/semantic property: %d chunked, %d refused (one unit over the limit)\n", g_ok, g_refused);
  EXPECT_GT(g_ok, 5 * g_refused);
}

}  // namespace
}  // namespace cw::text
