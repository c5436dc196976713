// Hostile input for the chunkers (issue 11): a window whose document-level token estimate undercounts
// (byte-fallback tokens snap to one code point) must still try a one-atom window, and a token atom that
// spans several code points is split at code points before "a single indivisible unit" is reported; the
// reported unit then really measures more than the size.
#include <string>

#include "support/testing.h"
#include "text/chunker.h"

namespace cw::text {
namespace {

TEST(HostileChunk, UndercountedAtomsFitOrReportATrueExcess) {
  CW_REQUIRE_SHARED_DATA(data);
  // stories260K has no token for the emoji: each code point costs 3-4 byte tokens (+ a space prefix alone).
  const std::string vocab = data + "/models/stories260K.gguf";
  const std::string text = "Once \xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA9 end";
  for (const char* method : {"token", "recursive", "sentence", "markdown"}) {
    for (int size = 4; size <= 12; ++size) {
      const std::string spec = std::string(method) + ":size=" + std::to_string(size) + ",tokenizer=" + vocab;
      SCOPED_TRACE(spec);
      auto ch = make_chunker(spec);
      ASSERT_TRUE(ch.is_ok()) << ch.status().to_string();
      auto r = (*ch)->chunk("doc", text);
      if (size < 5) {  // the first emoji alone is "▁" + 4 byte tokens = 5 > size
        ASSERT_FALSE(r.is_ok());
        EXPECT_NE(r.status().message().find("measures 5 > size=4"), std::string::npos) << r.status().message();
        continue;
      }
      ASSERT_TRUE(r.is_ok()) << r.status().to_string();
      int64_t end = 0;
      for (const Chunk& c : *r) {
        EXPECT_EQ(c.byte_begin, end);
        EXPECT_LE(c.n_tokens, size);
        EXPECT_EQ(c.n_tokens, (*ch)->config().measure->measure(c.text_in(text)));
        end = c.byte_end;
      }
      EXPECT_EQ(end, static_cast<int64_t>(text.size()));
    }
  }
}

// The code chunker does not hand invalid UTF-8 (not source code) to tree-sitter, whose error recovery
// costs ~17 us and ~270 bytes per input byte: 256 KiB of random bytes is chunked by the "code" preset.
TEST(HostileChunk, CodeChunkerSkipsTreeSitterOnInvalidUtf8) {
  std::string text;
  uint32_t x = 12345;
  for (size_t i = 0; i < (size_t{256} << 10); ++i) {
    x = x * 1103515245u + 12345u;
    text.push_back(static_cast<char>(x >> 23));
  }
  auto ch = make_chunker("code:lang=c,size=256,unit=chars");
  ASSERT_TRUE(ch.is_ok()) << ch.status().to_string();
  auto r = (*ch)->chunk("doc", text);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  int64_t end = 0;
  for (const Chunk& c : *r) {
    EXPECT_EQ(c.byte_begin, end);
    EXPECT_LE(c.n_tokens, 256);
    EXPECT_EQ(c.kind, "code");
    end = c.byte_end;
  }
  EXPECT_EQ(end, static_cast<int64_t>(text.size()));
}

}  // namespace
}  // namespace cw::text
