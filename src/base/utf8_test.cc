#include "base/utf8.h"

#include <gtest/gtest.h>

namespace cw {
namespace {

TEST(Utf8, ValidPrefix) {
  EXPECT_EQ(utf8_valid_prefix_len("a"), 1u);
  EXPECT_EQ(utf8_valid_prefix_len("\xC3\xA9"), 2u);          // é
  EXPECT_EQ(utf8_valid_prefix_len("\xE2\x82\xAC"), 3u);      // €
  EXPECT_EQ(utf8_valid_prefix_len("\xF0\x9F\x98\x80"), 4u);  // 😀
  EXPECT_EQ(utf8_valid_prefix_len("\xC0\x80"), 0u);          // overlong
  EXPECT_EQ(utf8_valid_prefix_len("\xED\xA0\x80"), 0u);      // surrogate
  EXPECT_EQ(utf8_valid_prefix_len("\xF4\x90\x80\x80"), 0u);  // > U+10FFFF
  EXPECT_EQ(utf8_valid_prefix_len("\xE2\x82"), 0u);          // truncated
  EXPECT_EQ(utf8_valid_prefix_len(""), 0u);
}

TEST(Utf8, RoundTripAllScalarValues) {
  for (uint32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x1000 ? 1 : 37)) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::string s;
    utf8_append(s, cp);
    size_t i = 0;
    ASSERT_EQ(utf8_decode(s, i), cp);
    ASSERT_EQ(i, s.size());
  }
}

TEST(Utf8, CountsInvalidBytesAsOne) {
  EXPECT_EQ(utf8_count_codepoints("h\xC3\xA9llo\xff"), 6u);
}

TEST(Utf8, IncompleteSuffix) {
  EXPECT_EQ(utf8_incomplete_suffix_len(""), 0u);
  EXPECT_EQ(utf8_incomplete_suffix_len("abc"), 0u);
  EXPECT_EQ(utf8_incomplete_suffix_len("a\xC3"), 1u);              // é cut after its lead byte
  EXPECT_EQ(utf8_incomplete_suffix_len("a\xC3\xA9"), 0u);
  EXPECT_EQ(utf8_incomplete_suffix_len("\xE2"), 1u);               // €
  EXPECT_EQ(utf8_incomplete_suffix_len("x\xE2\x82"), 2u);
  EXPECT_EQ(utf8_incomplete_suffix_len("x\xE2\x82\xAC"), 0u);
  EXPECT_EQ(utf8_incomplete_suffix_len("\xF0\x9F\x98"), 3u);       // 😀
  EXPECT_EQ(utf8_incomplete_suffix_len("\xF0\x9F\x98\x80"), 0u);
  EXPECT_EQ(utf8_incomplete_suffix_len("a\x82"), 0u);              // a stray continuation byte
  EXPECT_EQ(utf8_incomplete_suffix_len("a\xFF"), 0u);              // never valid
  EXPECT_EQ(utf8_incomplete_suffix_len("a\xC0"), 0u);              // overlong lead
  EXPECT_EQ(utf8_incomplete_suffix_len("\xE0\x80"), 0u);           // overlong
  EXPECT_EQ(utf8_incomplete_suffix_len("\xED\xA0"), 0u);           // surrogate
  EXPECT_EQ(utf8_incomplete_suffix_len("\xF4\x90"), 0u);           // > U+10FFFF
  EXPECT_EQ(utf8_incomplete_suffix_len("\x80\x80\x80"), 0u);
  // Every split of a valid string: the complete prefix is valid and the rest completes it.
  const std::string s = "h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80!";
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    const std::string head = s.substr(0, cut);
    const size_t keep = head.size() - utf8_incomplete_suffix_len(head);
    for (size_t i = 0; i < keep;) {
      const size_t n = utf8_valid_prefix_len(std::string_view(head).substr(i));
      ASSERT_GT(n, 0u) << "cut " << cut;
      i += n;
    }
  }
}

}  // namespace
}  // namespace cw
