// Unit tests on small vocabularies built in memory with the GGUF writer (no ../shared needed).
#include "tokenizer/tokenizer.h"
#include "tokenizer/word_cache.h"
#include "tokenizer/wpm.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "tokenizer/unicode.h"

namespace cw::tok {
namespace {

// ---- SPM ----

struct SpmSpec {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
};

// <unk> <s> </s> <0x00>..<0xFF> then the pieces below; ids: unk 0, bos 1, eos 2, bytes 3..258.
SpmSpec small_spm() {
  SpmSpec s;
  s.tokens = {"<unk>", "<s>", "</s>"};
  s.types = {2, 3, 3};
  s.scores = {0, 0, 0};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    s.tokens.push_back(buf);
    s.types.push_back(6);
    s.scores.push_back(0);
  }
  const std::pair<const char*, float> pieces[] = {
      {"\xE2\x96\x81", -1.0f}, {"a", -2.0f},  {"b", -2.0f},           {"c", -2.0f},
      {"ab", -3.0f},           {"bc", -1.5f}, {"\xE2\x96\x81" "a", -1.2f}, {"\xE2\x96\x81" "ab", -0.5f},
      {"\xE2\x96\x81" "bc", -0.4f},
  };
  for (auto [t, sc] : pieces) {
    s.tokens.push_back(t);
    s.types.push_back(1);
    s.scores.push_back(sc);
  }
  return s;
}

int32_t id_of(const SpmSpec& s, const std::string& t) {
  for (size_t i = 0; i < s.tokens.size(); ++i)
    if (s.tokens[i] == t) return static_cast<int32_t>(i);
  return -1;
}

std::vector<uint8_t> spm_image(const SpmSpec& s, const std::function<void(gguf::Writer&)>& extra = {}) {
  gguf::Writer w;
  w.add_string("general.architecture", "llama");
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string_array("tokenizer.ggml.tokens", s.tokens);
  w.add_f32_array("tokenizer.ggml.scores", s.scores);
  w.add_i32_array("tokenizer.ggml.token_type", s.types);
  w.add_u32("tokenizer.ggml.bos_token_id", 1);
  w.add_u32("tokenizer.ggml.eos_token_id", 2);
  w.add_u32("tokenizer.ggml.unknown_token_id", 0);
  if (extra) extra(w);
  return w.bytes();
}

Result<std::unique_ptr<Tokenizer>> load(const std::vector<uint8_t>& image) {
  CW_ASSIGN_OR_RETURN(auto file, gguf::File::parse(std::span<const uint8_t>(image)));
  return Tokenizer::from_gguf(*file);
}

TEST(SpmTokenizer, MergesByScoreWithSpacePrefix) {
  const SpmSpec s = small_spm();
  auto tok = load(spm_image(s));
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  const Tokenizer& t = **tok;
  EXPECT_EQ(t.model_name(), "llama");
  EXPECT_EQ(t.n_vocab(), static_cast<int32_t>(s.tokens.size()));
  EXPECT_EQ(t.bos(), 1);
  EXPECT_EQ(t.eos(), 2);
  EXPECT_TRUE(t.add_bos());
  EXPECT_FALSE(t.add_eos());
  // "▁abc": best pairs by score: "bc" (-1.5) beats "ab" (-3) and "▁a" (-1.2 wins first) ...
  // step 1: candidates ▁a(-1.2), ab(-3), bc(-1.5) -> ▁a; step 2: ▁a+b = "▁ab"(-0.5) vs bc(-1.5) -> ▁ab.
  EXPECT_EQ(t.encode("abc", false, false), (std::vector<int32_t>{id_of(s, "\xE2\x96\x81" "ab"), id_of(s, "c")}));
  EXPECT_EQ(t.encode("abc", true, false),
            (std::vector<int32_t>{1, id_of(s, "\xE2\x96\x81" "ab"), id_of(s, "c")}));
  EXPECT_EQ(t.encode("a bc", false, false),
            (std::vector<int32_t>{id_of(s, "\xE2\x96\x81" "a"), id_of(s, "\xE2\x96\x81" "bc")}));
  EXPECT_EQ(t.decode(t.encode("a bc", false, false)), "a bc");
  EXPECT_EQ(t.decode(t.encode(" a  bc ", false, false)), " a  bc ");
}

TEST(SpmTokenizer, ByteFallbackAndInvalidUtf8) {
  const SpmSpec s = small_spm();
  auto tok = load(spm_image(s));
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  const Tokenizer& t = **tok;
  const int32_t sp = id_of(s, "\xE2\x96\x81");
  // é = C3 A9 is not a token: byte fallback.
  EXPECT_EQ(t.encode("\xC3\xA9", false, false), (std::vector<int32_t>{sp, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(t.decode(t.encode("\xC3\xA9", false, false)), "\xC3\xA9");
  // Invalid UTF-8: each bad byte goes through byte fallback; never crashes.
  const std::string bad = "a\xFF\xC3(\xE2\x82";
  const auto ids = t.encode(bad, false, false);
  EXPECT_EQ(ids, (std::vector<int32_t>{id_of(s, "\xE2\x96\x81" "a"), 3 + 0xFF, 3 + 0xC3, 3 + '(', 3 + 0xE2, 3 + 0x82}));
  EXPECT_EQ(t.decode(ids), bad);
  EXPECT_EQ(t.token_to_piece(3 + 0x41), "A");
  EXPECT_EQ(t.token_to_piece(id_of(s, "\xE2\x96\x81" "ab")), " ab");
  EXPECT_EQ(t.token_to_piece(1), "<s>");
  EXPECT_EQ(t.token_to_piece(-5), "");
  EXPECT_EQ(t.token_to_piece(1 << 30), "");
}

TEST(SpmTokenizer, EmptyInput) {
  auto tok = load(spm_image(small_spm()));
  ASSERT_TRUE(tok.is_ok());
  EXPECT_TRUE((*tok)->encode("", false, false).empty());
  EXPECT_EQ((*tok)->encode("", true, false), (std::vector<int32_t>{1}));
  EXPECT_EQ((*tok)->decode({}), "");
}

TEST(SpmTokenizer, SpecialTokensOnlyWhenParsing) {
  const SpmSpec s = small_spm();
  auto tok = load(spm_image(s));
  ASSERT_TRUE(tok.is_ok());
  const Tokenizer& t = **tok;
  const int32_t a = id_of(s, "\xE2\x96\x81" "a");
  // Parsed: <s> is one token and the text after it gets its own space prefix.
  EXPECT_EQ(t.encode("<s>a</s>", false, true), (std::vector<int32_t>{1, a, 2}));
  EXPECT_EQ(t.decode(std::vector<int32_t>{1, a, 2}), "<s>a</s>");
  EXPECT_EQ(t.decode(std::vector<int32_t>{1, a, 2}, /*skip_special=*/true), "a");
  // Not parsed: plain text through byte fallback.
  const auto plain = t.encode("<s>", false, false);
  EXPECT_EQ(plain, (std::vector<int32_t>{id_of(s, "\xE2\x96\x81"), 3 + '<', 3 + 's', 3 + '>'}));
  EXPECT_TRUE(t.is_special(1));
  EXPECT_FALSE(t.is_special(a));
}

TEST(SpmTokenizer, AddSpacePrefixFalse) {
  const SpmSpec s = small_spm();
  auto tok = load(spm_image(s, [](gguf::Writer& w) {
    w.add_bool("tokenizer.ggml.add_space_prefix", false);
    w.add_bool("tokenizer.ggml.add_bos_token", false);
    w.add_bool("tokenizer.ggml.add_eos_token", true);
  }));
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  EXPECT_EQ((*tok)->encode("ab", true, false), (std::vector<int32_t>{id_of(s, "ab"), 2}));
  EXPECT_EQ((*tok)->decode((*tok)->encode(" ab", false, false)), " ab");
}

// ---- malformed metadata ----

TEST(TokenizerErrors, MissingOrMalformedMetadata) {
  SpmSpec s = small_spm();
  {
    gguf::Writer w;
    w.add_string("general.architecture", "llama");
    auto r = load(w.bytes());
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  }
  {
    gguf::Writer w;
    w.add_string("tokenizer.ggml.model", "llama");
    auto r = load(w.bytes());
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
    EXPECT_NE(r.status().message().find("tokenizer.ggml.tokens"), std::string::npos);
  }
  {
    SpmSpec bad = s;
    bad.scores.pop_back();
    auto r = load(spm_image(bad));
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(r.status().message().find("scores"), std::string::npos) << r.status().message();
  }
  {
    SpmSpec bad = s;
    bad.types.push_back(1);
    auto r = load(spm_image(bad));
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find("token_type"), std::string::npos) << r.status().message();
  }
  {
    SpmSpec bad = s;
    bad.types[5] = 42;
    auto r = load(spm_image(bad));
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  }
  {
    gguf::Writer w;
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_string_array("tokenizer.ggml.tokens", s.tokens);
    w.add_u32("tokenizer.ggml.bos_token_id", 1000000);
    auto r = load(w.bytes());
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
    EXPECT_NE(r.status().message().find("bos_token_id"), std::string::npos);
  }
  {
    gguf::Writer w;
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_i32_array("tokenizer.ggml.tokens", {1, 2, 3});
    auto r = load(w.bytes());
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  }
  {
    gguf::Writer w;
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_string_array("tokenizer.ggml.tokens", {});
    auto r = load(w.bytes());
    ASSERT_FALSE(r.is_ok());
  }
  {
    gguf::Writer w;
    w.add_string("tokenizer.ggml.model", "t5");
    w.add_string_array("tokenizer.ggml.tokens", s.tokens);
    auto r = load(w.bytes());
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
    EXPECT_NE(r.status().message().find("t5"), std::string::npos);
  }
  {
    gguf::Writer w;
    w.add_u32("tokenizer.ggml.model", 7);
    auto r = load(w.bytes());
    ASSERT_FALSE(r.is_ok());
  }
}

// ---- byte-level BPE ----

struct BpeSpec {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<std::string> merges;
};

// The 256 byte-level characters (ids 0..255 in byte order), merged tokens, then specials.
BpeSpec small_bpe() {
  BpeSpec s;
  const ByteLevel& bl = byte_level();
  for (int b = 0; b < 256; ++b) {
    s.tokens.push_back(bl.byte_to_utf8[b]);
    s.types.push_back(1);
  }
  const char* merges[][2] = {{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"\xC4\xA0", "w"},
                             {"o", "r"}, {"\xC4\xA0w", "or"}, {"1", "2"}};
  for (auto& m : merges) {
    s.merges.push_back(std::string(m[0]) + " " + m[1]);
    s.tokens.push_back(std::string(m[0]) + m[1]);
    s.types.push_back(1);
  }
  s.tokens.push_back("<|endoftext|>");
  s.types.push_back(3);
  s.tokens.push_back("<user>");
  s.types.push_back(4);
  return s;
}

int32_t bpe_id(const BpeSpec& s, const std::string& t) {
  for (size_t i = 0; i < s.tokens.size(); ++i)
    if (s.tokens[i] == t) return static_cast<int32_t>(i);
  return -1;
}

std::vector<uint8_t> bpe_image(const BpeSpec& s, const char* pre = "gpt-2") {
  gguf::Writer w;
  w.add_string("tokenizer.ggml.model", "gpt2");
  if (pre != nullptr) w.add_string("tokenizer.ggml.pre", pre);
  w.add_string_array("tokenizer.ggml.tokens", s.tokens);
  w.add_i32_array("tokenizer.ggml.token_type", s.types);
  w.add_string_array("tokenizer.ggml.merges", s.merges);
  w.add_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(s.tokens.size() - 2));
  w.add_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(s.tokens.size() - 2));
  return w.bytes();
}

TEST(BpeTokenizer, MergesByRank) {
  const BpeSpec s = small_bpe();
  auto tok = load(bpe_image(s));
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  const Tokenizer& t = **tok;
  EXPECT_EQ(t.model_name(), "gpt2");
  EXPECT_EQ(t.pre_name(), "gpt-2");
  EXPECT_FALSE(t.add_bos());
  EXPECT_EQ(t.encode("hello", false, false), (std::vector<int32_t>{bpe_id(s, "hello")}));
  EXPECT_EQ(t.encode("hello world", false, false),
            (std::vector<int32_t>{bpe_id(s, "hello"), bpe_id(s, "\xC4\xA0wor"), 'l', 'd'}));
  EXPECT_EQ(t.encode("x12", false, false), (std::vector<int32_t>{'x', bpe_id(s, "12")}));
  EXPECT_EQ(t.decode(t.encode("hello world", false, false)), "hello world");
  EXPECT_EQ(t.token_to_piece(bpe_id(s, "\xC4\xA0wor")), " wor");
  // add_special without add_bos: nothing added.
  EXPECT_EQ(t.encode("hello", true, false), (std::vector<int32_t>{bpe_id(s, "hello")}));
}

TEST(BpeTokenizer, InvalidUtf8AndEmpty) {
  const BpeSpec s = small_bpe();
  auto tok = load(bpe_image(s));
  ASSERT_TRUE(tok.is_ok());
  const Tokenizer& t = **tok;
  EXPECT_TRUE(t.encode("", false, false).empty());
  const std::string bad = "he\xFF\xC3 \x80llo\xF4";
  const auto ids = t.encode(bad, false, false);
  EXPECT_EQ(t.decode(ids), bad);
  for (const std::string& junk : {std::string("\xC0\xAF"), std::string(1, '\0'), std::string("\xED\xA0\x80")}) {
    EXPECT_EQ(t.decode(t.encode(junk, false, false)), junk);
  }
}

TEST(BpeTokenizer, SpecialTokens) {
  const BpeSpec s = small_bpe();
  auto tok = load(bpe_image(s));
  ASSERT_TRUE(tok.is_ok());
  const Tokenizer& t = **tok;
  const int32_t eot = bpe_id(s, "<|endoftext|>");
  const int32_t user = bpe_id(s, "<user>");
  EXPECT_EQ(t.encode("hello<|endoftext|>", false, true), (std::vector<int32_t>{bpe_id(s, "hello"), eot}));
  const auto plain = t.encode("<|endoftext|>", false, false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(t.decode(plain), "<|endoftext|>");
  // User-defined tokens are always matched (llama.cpp behaviour).
  EXPECT_EQ(t.encode("<user>hello", false, false), (std::vector<int32_t>{user, bpe_id(s, "hello")}));
  EXPECT_EQ(t.decode(std::vector<int32_t>{bpe_id(s, "hello"), eot}, true), "hello");
  EXPECT_EQ(t.decode(std::vector<int32_t>{bpe_id(s, "hello"), eot}, false), "hello<|endoftext|>");
}

TEST(BpeTokenizer, MetadataErrors) {
  {
    auto r = load(bpe_image(small_bpe(), "no-such-pre"));
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
    EXPECT_NE(r.status().message().find("llama-bpe"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("no-such-pre"), std::string::npos);
  }
  {
    BpeSpec s = small_bpe();
    s.merges.push_back("zz qq");
    auto r = load(bpe_image(s));
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(r.status().message().find("unknown token"), std::string::npos) << r.status().message();
  }
  {
    BpeSpec s = small_bpe();
    s.merges.push_back("nospace");
    auto r = load(bpe_image(s));
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  }
  {
    gguf::Writer w;
    w.add_string("tokenizer.ggml.model", "gpt2");
    w.add_string_array("tokenizer.ggml.tokens", small_bpe().tokens);
    auto r = load(w.bytes());
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
    EXPECT_NE(r.status().message().find("merges"), std::string::npos);
  }
  // Missing pre: "default".
  auto r = load(bpe_image(small_bpe(), nullptr));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ((*r)->pre_name(), "default");
}

TEST(BpeTokenizer, ConcurrentEncodeMatchesSerial) {
  const BpeSpec s = small_bpe();
  auto tok = load(bpe_image(s));
  ASSERT_TRUE(tok.is_ok());
  const Tokenizer& t = **tok;
  std::string text;
  for (int i = 0; i < 200; ++i) text += "hello world 12 " + std::to_string(i) + " wor\xC3\xA9ld\n";
  const auto expected = t.encode(text, false, false);
  std::vector<std::thread> threads;
  std::vector<int> ok(8, 0);
  for (int k = 0; k < 8; ++k) {
    threads.emplace_back([&, k] {
      bool all = true;
      for (int rep = 0; rep < 20; ++rep) all &= t.encode(text, false, false) == expected;
      ok[k] = all;
    });
  }
  for (auto& th : threads) th.join();
  for (int k = 0; k < 8; ++k) EXPECT_TRUE(ok[k]) << "thread " << k;
}

}  // namespace
}  // namespace cw::tok

namespace cw::tok {
namespace {

// A tiny WordPiece vocabulary in llama.cpp's GGUF form: word-initial pieces start with U+2581.
std::vector<uint8_t> wpm_image() {
  const std::vector<std::string> tokens = {
      "[PAD]",   "[UNK]", "[CLS]",   "[SEP]",   "\xE2\x96\x81hello", "\xE2\x96\x81world", "\xE2\x96\x81un",
      "aff",     "able",  "af",      "\xE2\x96\x81,",      "\xE2\x96\x81!",     "\xE2\x96\x81\xE4\xB8\xAD",
      "\xE2\x96\x81" "a", "b",
  };
  std::vector<int32_t> types(tokens.size(), 1);
  for (int i = 0; i < 4; ++i) types[i] = 3;
  gguf::Writer w;
  w.add_string("tokenizer.ggml.model", "bert");
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_i32_array("tokenizer.ggml.token_type", types);
  w.add_u32("tokenizer.ggml.unknown_token_id", 1);
  w.add_u32("tokenizer.ggml.cls_token_id", 2);
  w.add_u32("tokenizer.ggml.seperator_token_id", 3);
  return w.bytes();
}

using Ids = std::vector<int32_t>;

TEST(WpmTokenizer, GreedyLongestMatchAndUnknownWords) {
  auto r = load(wpm_image());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const Tokenizer& t = **r;
  EXPECT_EQ(t.model_name(), "bert");
  EXPECT_EQ(t.encode("Hello, WORLD!", false, false), (Ids{4, 10, 5, 11}));
  EXPECT_EQ(t.encode("unaffable", false, false), (Ids{6, 7, 8}));     // "aff" before "af"
  EXPECT_EQ(t.encode("h\xC3\xA9llo", false, false), (Ids{4}));        // é -> e
  EXPECT_EQ(t.encode("hellox world", false, false), (Ids{1, 5}));     // unmatched rest: the word is [UNK]
  EXPECT_EQ(t.encode("\xE4\xB8\xAD\xE6\x96\x87", false, false), (Ids{12, 1}));  // CJK: one word per character
  EXPECT_EQ(t.encode("a\tb  ab\n", false, false), (Ids{13, 1, 13, 14}));  // "b" alone has no word-initial piece
  EXPECT_EQ(t.encode("he\x01llo\xFF", false, false), (Ids{4}));      // control bytes and invalid UTF-8 dropped
  EXPECT_EQ(t.encode("", false, false), (Ids{}));
  EXPECT_EQ(t.encode(" \n ", false, false), (Ids{}));
  EXPECT_EQ(t.encode("hello", true, false), (Ids{2, 4, 3}));  // [CLS] ... [SEP]
  EXPECT_EQ(t.encode("[CLS]hello", false, true), (Ids{2, 4}));
}

TEST(WpmTokenizer, PreTokenize) {
  EXPECT_EQ(WpmEncoder::pre_tokenize("Don't  stop, \xC3\x89T\xC3\x89!"),
            (std::vector<std::string>{"don", "'", "t", "stop", ",", "ete", "!"}));
  // ASCII symbols split; other symbols (here €) stay in their word.
  EXPECT_EQ(WpmEncoder::pre_tokenize("a+b$\xE2\x82\xAC" "c"),
            (std::vector<std::string>{"a", "+", "b", "$", "\xE2\x82\xAC" "c"}));
}

TEST(WpmTokenizer, DecodeJoinsPieces) {
  auto r = load(wpm_image());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const Tokenizer& t = **r;
  EXPECT_EQ(t.token_to_piece(4), " hello");
  EXPECT_EQ(t.token_to_piece(7), "aff");
  EXPECT_EQ(t.decode(Ids{4, 10, 5, 11}), "hello , world !");
  EXPECT_EQ(t.decode(Ids{6, 7, 8, 5}), "unaffable world");
  EXPECT_EQ(t.decode(Ids{2, 4, 3}, /*skip_special=*/true), "hello");
  EXPECT_EQ(t.encode(t.decode(Ids{6, 7, 8, 10, 12}), false, false), (Ids{6, 7, 8, 10, 12}));
}


// The word cache starts small and grows by doubling (a thread that tokenizes one short prompt holds a few
// KiB), keeps every entry through the growth, and is cleared (not grown further) at kMaxEntries.
TEST(WordCache, GrowsFromASmallTableAndKeepsItsEntries) {
  WordCache c;
  EXPECT_EQ(c.slot_capacity(), WordCache::kInitialSlots);
  auto key = [](size_t i) { return "w" + std::to_string(i); };
  auto hash = [](size_t i) { return (i + 1) * 0x9e3779b97f4a7c15ull; };
  for (size_t i = 0; i < 1000; ++i) {
    const int32_t ids[2] = {static_cast<int32_t>(i), static_cast<int32_t>(i + 1)};
    c.insert(key(i), hash(i), ids, 1 + i % 2);
  }
  EXPECT_EQ(c.entries(), 1000u);
  EXPECT_GE(c.slot_capacity(), 2000u);
  EXPECT_LE(c.slot_capacity(), 4096u);
  for (size_t i = 0; i < 1000; ++i) {
    std::vector<int32_t> out;
    ASSERT_TRUE(c.lookup(key(i), hash(i), out)) << i;
    std::vector<int32_t> want = {static_cast<int32_t>(i)};
    if (i % 2 == 1) want.push_back(static_cast<int32_t>(i + 1));
    EXPECT_EQ(out, want) << i;
  }
  std::vector<int32_t> none;
  EXPECT_FALSE(c.lookup("absent", 12345, none));
  for (size_t i = 1000; i < WordCache::kMaxEntries + 10; ++i) {
    const int32_t id = static_cast<int32_t>(i);
    c.insert(key(i), hash(i), &id, 1);
  }
  EXPECT_EQ(c.slot_capacity(), WordCache::kSlots);
  EXPECT_EQ(c.entries(), 10u);  // cleared once at kMaxEntries, then 10 more
}

}  // namespace
}  // namespace cw::tok
