#include "tokenizer/pretokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tokenizer/unicode.h"

#include <unicode/uchar.h>

namespace cw::tok {
namespace {

std::vector<std::string> split(std::string_view pre, std::string_view text) {
  auto p = PreTokenizer::create(pre);
  EXPECT_TRUE(p.is_ok()) << p.status().to_string();
  if (!p.is_ok()) return {};
  std::vector<std::string_view> pieces;
  (*p)->split(text, pieces);
  std::string joined;
  std::vector<std::string> out;
  for (auto v : pieces) {
    EXPECT_FALSE(v.empty());
    joined.append(v);
    out.emplace_back(v);
  }
  EXPECT_EQ(joined, text) << "pieces must concatenate to the input";
  return out;
}

using V = std::vector<std::string>;

TEST(CpFlags, Categories) {
  EXPECT_EQ(cp_flags('a'), kCpLetter);
  EXPECT_EQ(cp_flags('7'), kCpNumber);
  EXPECT_EQ(cp_flags('!'), kCpPunct);
  EXPECT_EQ(cp_flags('+'), kCpSymbol);
  EXPECT_EQ(cp_flags(' '), kCpSeparator | kCpWhitespace);
  EXPECT_EQ(cp_flags('\n'), kCpOther | kCpWhitespace);
  EXPECT_EQ(cp_flags(0x4E2D), kCpLetter);             // 中
  EXPECT_EQ(cp_flags(0x0664), kCpNumber);             // Arabic-Indic 4
  EXPECT_EQ(cp_flags(0x00A0), kCpSeparator | kCpWhitespace);
  EXPECT_EQ(cp_flags(0x3000), kCpSeparator | kCpWhitespace);
  EXPECT_EQ(cp_flags(0x0301), kCpMark);
  EXPECT_EQ(cp_flags(0x1F600), kCpSymbol);            // emoji
  EXPECT_EQ(cp_flags(0x10FFFF), kCpOther);
  EXPECT_EQ(cp_flags(0x110000), 0);
}

// The inline ASCII table must agree with the ICU-built table.
TEST(CpFlags, AsciiTableMatchesIcu) {
  for (uint32_t c = 0; c < 128; ++c) EXPECT_EQ(cp_flags(c), cp_flags_slow(c)) << c;
  for (uint32_t c = 0; c < 128; ++c) {
    uint8_t cat = 0;
    if (u_isalpha(static_cast<UChar32>(c))) cat = kCpLetter;
    else if (u_isdigit(static_cast<UChar32>(c))) cat = kCpNumber;
    else if (u_ispunct(static_cast<UChar32>(c))) cat = kCpPunct;
    else if (u_charType(static_cast<UChar32>(c)) == U_MATH_SYMBOL || u_charType(static_cast<UChar32>(c)) == U_CURRENCY_SYMBOL ||
             u_charType(static_cast<UChar32>(c)) == U_MODIFIER_SYMBOL) cat = kCpSymbol;
    else if (u_charType(static_cast<UChar32>(c)) == U_SPACE_SEPARATOR) cat = kCpSeparator;
    else cat = kCpOther;
    EXPECT_EQ(cp_flags(c) & ~kCpWhitespace, cat) << "code point " << c;
  }
}

TEST(ByteLevel, RoundTrip) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::string enc;
  byte_level_encode(all, enc);
  EXPECT_EQ(byte_level_decode(enc), all);
  EXPECT_EQ(byte_level().byte_to_utf8[' '], "\xC4\xA0");   // Ġ
  EXPECT_EQ(byte_level().byte_to_utf8['\n'], "\xC4\x8A");  // Ċ
  EXPECT_EQ(byte_level().byte_to_utf8['a'], "a");
}

TEST(PreTokenizer, Gpt2) {
  EXPECT_EQ(split("gpt-2", "Hello world's  test 123!!  \n"),
            (V{"Hello", " world", "'s", " ", " test", " 123", "!!", "  \n"}));
  EXPECT_EQ(split("gpt-2", "   x"), (V{"  ", " x"}));
  EXPECT_EQ(split("gpt-2", "I'M"), (V{"I", "'", "M"}));  // case-sensitive contractions
}

TEST(PreTokenizer, Llama3) {
  EXPECT_EQ(split("llama-bpe", "Hello123456 world\n\n  x"),
            (V{"Hello", "123", "456", " world", "\n\n", " ", " x"}));
  EXPECT_EQ(split("llama-bpe", "I'M fine...\n\nok"), (V{"I", "'M", " fine", "...\n\n", "ok"}));
  EXPECT_EQ(split("llama-bpe", "$x 12345"), (V{"$x", " ", "123", "45"}));
}

TEST(PreTokenizer, Qwen2SplitsDigits) {
  EXPECT_EQ(split("qwen2", "ab 2024!"), (V{"ab", " ", "2", "0", "2", "4", "!"}));
}

TEST(PreTokenizer, Starcoder) { EXPECT_EQ(split("starcoder", "x 123"), (V{"x", " ", "1", "2", "3"})); }

TEST(PreTokenizer, Falcon) {
  EXPECT_EQ(split("falcon", "a 12345 b"), (V{"a", " ", "123", "45", " b"}));
  EXPECT_EQ(split("falcon", "x+=y"), (V{"x", "+=", "y"}));
}

TEST(PreTokenizer, DeepseekLlm) {
  EXPECT_EQ(split("deepseek-llm", "Hello, 世界 42\n"), (V{"Hello", ",", " ", "世界", " ", "42", "\n"}));
}

TEST(PreTokenizer, DeepseekCoder) {
  EXPECT_EQ(split("deepseek-coder", "int x = 42;"), (V{"int", " x", " = ", "4", "2", ";"}));
}

TEST(PreTokenizer, InvalidUtf8KeepsBytes) {
  for (const char* pre : {"gpt-2", "llama-bpe", "deepseek-llm", "deepseek-coder", "falcon", "default"}) {
    split(pre, "ab\xFF\xFE cd \xC3");
    split(pre, std::string_view("\0\0 x", 4));
  }
}

TEST(PreTokenizer, UnknownNameListsSupported) {
  auto p = PreTokenizer::create("nope");
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), StatusCode::kUnimplemented);
  for (const char* n : {"gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder", "falcon", "starcoder",
                        "mpt", "gpt-neox", "default"}) {
    EXPECT_NE(p.status().message().find(n), std::string::npos) << n;
    EXPECT_TRUE(PreTokenizer::create(n).is_ok()) << n;
  }
}

}  // namespace
}  // namespace cw::tok

namespace cw::tok {
namespace {

// Code points that sit on the edges of the stage classes: \s of several kinds, CR/LF, ASCII and
// non-ASCII letters (inside and outside deepseek-llm's cased-letter class), digits and other \p{N},
// punctuation vs symbols (backtick), CJK / Hangul, fullwidth forms (letters and punctuation at once),
// marks, emoji, an invalid byte and a truncated sequence.
const char* const kEdgeCodePoints[] = {
    " ", " ", " ", "\t", "\n", "\r", "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\x89", "\xC2\x85",
    "a", "Z", "s", "t", "e", "l", "\xC3\xA9", "\xC3\x9F", "\xC2\xB5", "\xE2\x84\xA6", "\xC6\xBB", "\xD7\x90",
    "0", "7", "9", "\xC2\xB2", "\xE0\xA5\xA6", "\xE2\x85\xA0", "\xEF\xBC\x91",
    "'", ",", ".", "!", "-", "_", "$", "`", "+", "~", "|", "^", "\xE2\x80\x98", "\xC2\xA9",
    "\xE4\xB8\xAD", "\xED\x95\x9C", "\xE3\x80\x81", "\xEF\xBC\xA1", "\xEF\xBC\x81", "\xCC\x81",
    "\xF0\x9F\x98\x80", "\xFF", "\xE4\xB8"};

std::vector<std::string> pieces_of(const PreTokenizer& p, std::string_view text, bool staged) {
  std::vector<std::string_view> v;
  if (staged) {
    p.split_staged(text, v);
  } else {
    p.split(text, v);
  }
  return {v.begin(), v.end()};
}

std::vector<std::string> family_names() {
  std::vector<std::string> out;
  const std::string all = PreTokenizer::supported_names();
  size_t pos = 0;
  while (pos < all.size()) {
    size_t q = all.find(", ", pos);
    if (q == std::string::npos) q = all.size();
    out.push_back(all.substr(pos, q - pos));
    pos = q + 2;
  }
  return out;
}

std::string random_text(uint64_t& state, size_t max_len) {
  auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33);
  };
  std::string s;
  const size_t len = next() % (max_len + 1);
  for (size_t i = 0; i < len; ++i) s += kEdgeCodePoints[next() % std::size(kEdgeCodePoints)];
  return s;
}

// The single-buffer multi-stage path equals the plain staged algorithm, for every family.
TEST(PreTokenizer, FlagPathMatchesStagedForEveryFamily) {
  uint64_t state = 12345;
  for (const std::string& name : family_names()) {
    auto p = PreTokenizer::create(name);
    ASSERT_TRUE(p.is_ok()) << name;
    for (int i = 0; i < 1000; ++i) {
      const std::string text = random_text(state, 24);
      ASSERT_EQ(::testing::PrintToString(pieces_of(**p, text, false)), ::testing::PrintToString(pieces_of(**p, text, true))) << name << ": '" << text << "'";
    }
  }
}

// ... and for arbitrary pipelines of up to 7 stages (any stage may follow any other).
TEST(PreTokenizer, FlagPathMatchesStagedForRandomPipelines) {
  uint64_t state = 777;
  auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33);
  };
  constexpr int kNumStages = static_cast<int>(PreStage::kDigits3) + 1;
  for (int pipe = 0; pipe < 400; ++pipe) {
    std::vector<PreStage> stages(2 + next() % 6);
    for (PreStage& s : stages) s = static_cast<PreStage>(next() % kNumStages);
    const PreTokenizer p(stages);
    for (int i = 0; i < 200; ++i) {
      const std::string text = random_text(state, 16);
      ASSERT_EQ(::testing::PrintToString(pieces_of(p, text, false)), ::testing::PrintToString(pieces_of(p, text, true))) << "pipeline " << pipe << " " << ::testing::PrintToString(std::vector<int>(reinterpret_cast<const uint8_t*>(stages.data()), reinterpret_cast<const uint8_t*>(stages.data()) + stages.size())) << ": '" << text << "'";
    }
  }
}

}  // namespace
}  // namespace cw::tok
