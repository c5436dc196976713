// Byte-level BPE training (bpe_train.h): hand-checked merges, tie-breaking, determinism, vocab size, the
// written GGUF loading through Tokenizer::from_gguf with exact round trips, and the errors.
#include "tokenizer/bpe_train.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace cw::tok {
namespace {

std::vector<std::string> merge_strings(const TrainedBpe& b) {
  std::vector<std::string> out;
  for (const auto& [l, r] : b.merges) out.push_back(b.tokens[l] + "+" + b.tokens[r]);
  return out;
}

Result<TrainedBpe> train(const std::vector<std::string>& texts, int32_t vocab_size, int64_t min_count = 1) {
  std::vector<std::string_view> views(texts.begin(), texts.end());
  BpeTrainOptions o;
  o.vocab_size = vocab_size;
  o.min_pair_count = min_count;
  return train_bpe(views, o);
}

std::vector<uint8_t> image_of(const TrainedBpe& b) {
  gguf::Writer w;
  write_bpe_vocab(b, w);
  return w.bytes();
}

std::unique_ptr<Tokenizer> load(const std::vector<uint8_t>& image) {
  auto f = gguf::File::parse(std::span<const uint8_t>(image));
  EXPECT_TRUE(f.is_ok()) << f.status().to_string();
  if (!f.is_ok()) return nullptr;
  auto t = Tokenizer::from_gguf(**f);
  EXPECT_TRUE(t.is_ok()) << t.status().to_string();
  if (!t.is_ok()) return nullptr;
  return std::move(t).value();
}

// A small English-like corpus with repeated words.
std::vector<std::string> corpus() {
  std::vector<std::string> t;
  for (int i = 0; i < 40; ++i) {
    t.push_back("The quick brown fox jumped over the lazy dog. The dog slept in the sun, and the fox ran home.\n");
    t.push_back("Question: what is the pass key? Answer: " + std::to_string(10000 + i * 7919) + "\n");
  }
  return t;
}

TEST(BpeTrain, HandCheckedMergesOnClassicExample) {
  // "aaabdaaabac" is one pre-tokenized word. Pair counts (overlapping): aa 4, ab 2, bd 1, da 1, ba 1, ac 1.
  //  1. a+a (4)          -> "aa a b d aa a b a c"   (left to right, no overlap)
  //  2. counts: aa+a 2, a+b 2, ... tie at 2: ("a","b") < ("aa","a") -> a+b -> "aa ab d aa ab a c"
  //  3. aa+ab (2)        -> "aaab d aaab a c"
  //  4. all pairs count 1: aaab+d, d+aaab, aaab+a, a+c; smallest left bytes "a" -> a+c
  auto b = train({"aaabdaaabac"}, 256 + 1 + 4);
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_EQ(merge_strings(*b), (std::vector<std::string>{"a+a", "a+b", "aa+ab", "a+c"}));
  EXPECT_EQ(b->tokens.size(), 261u);
  EXPECT_EQ(b->tokens[256], "aa");
  EXPECT_EQ(b->tokens[258], "aaab");
  EXPECT_EQ(b->tokens[260], "<|endoftext|>");
  EXPECT_EQ(b->first_special, 260);
  EXPECT_EQ(b->n_words, 1u);
  // With the default min_pair_count (2) the fourth merge is not allowed.
  auto c = train({"aaabdaaabac"}, 256 + 1 + 4, 2);
  ASSERT_FALSE(c.is_ok());
  EXPECT_NE(c.status().message().find("allows 3 merges"), std::string::npos) << c.status().message();
}

TEST(BpeTrain, CountsWordFrequenciesAcrossTexts) {
  // "ab" three times vs "cd" twice as separate words (spaces split words: " ab" is a word of 3 bytes).
  auto b = train({"ab ab", "ab cd cd"}, 256 + 1 + 1);
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  // Pairs: a+b 3, " "+a 2, " "+c 2, c+d 2 -> a+b.
  EXPECT_EQ(merge_strings(*b), (std::vector<std::string>{"a+b"}));
  EXPECT_EQ(b->n_words, 5u);
  EXPECT_EQ(b->n_unique_words, 3u);  // "ab", " ab", " cd"
}

// The plain algorithm: recount every pair of every word before each merge.
std::vector<std::string> reference_merges(const std::vector<std::string>& texts, int n_merges, int64_t min_count) {
  auto pre = PreTokenizer::create("gpt2");
  std::map<std::string, int64_t> counts;
  std::vector<std::string_view> pieces;
  for (const std::string& t : texts) {
    pieces.clear();
    (*pre)->split(t, pieces);
    for (std::string_view p : pieces) ++counts[std::string(p)];
  }
  std::vector<std::pair<std::vector<std::string>, int64_t>> words;
  for (const auto& [w, c] : counts) {
    std::vector<std::string> syms;
    for (char ch : w) syms.emplace_back(1, ch);
    words.emplace_back(std::move(syms), c);
  }
  std::vector<std::string> out;
  for (int m = 0; m < n_merges; ++m) {
    std::map<std::pair<std::string, std::string>, int64_t> pc;
    for (const auto& [syms, c] : words)
      for (size_t i = 0; i + 1 < syms.size(); ++i) pc[{syms[i], syms[i + 1]}] += c;
    const std::pair<std::string, std::string>* best = nullptr;
    int64_t best_count = 0;
    for (const auto& [pair, c] : pc)  // map order = lexicographic: the first of the highest count wins
      if (c > best_count) {
        best = &pair;
        best_count = c;
      }
    if (best == nullptr || best_count < min_count) break;
    const auto [a, b] = *best;
    out.push_back(a + "+" + b);
    for (auto& [syms, c] : words) {
      std::vector<std::string> n;
      for (size_t i = 0; i < syms.size();) {
        if (i + 1 < syms.size() && syms[i] == a && syms[i + 1] == b) {
          n.push_back(a + b);
          i += 2;
        } else {
          n.push_back(syms[i++]);
        }
      }
      syms = std::move(n);
    }
  }
  return out;
}

TEST(BpeTrain, IncrementalCountsMatchFullRecount) {
  // Pseudo-random text over a small alphabet (many ties, repeated letters, overlapping pairs).
  std::vector<std::string> texts;
  uint64_t x = 12345;
  for (int t = 0; t < 30; ++t) {
    std::string s;
    for (int i = 0; i < 300; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      const char* alphabet = "aaabbcd  e.1";
      s.push_back(alphabet[(x >> 33) % 12]);
    }
    texts.push_back(s);
  }
  const auto ref = reference_merges(texts, 120, 2);
  ASSERT_GT(ref.size(), 60u);
  auto b = train(texts, 257 + static_cast<int32_t>(ref.size()), 2);
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_EQ(merge_strings(*b), ref);
  const auto ref2 = reference_merges(corpus(), 60, 2);
  auto c = train(corpus(), 257 + static_cast<int32_t>(ref2.size()), 2);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(merge_strings(*c), ref2);
}

TEST(BpeTrain, VocabSizeHonouredAndDeterministic) {
  const auto texts = corpus();
  for (int32_t n : {257, 300, 330}) {
    auto b = train(texts, n, 2);
    ASSERT_TRUE(b.is_ok()) << n << ": " << b.status().to_string();
    EXPECT_EQ(static_cast<int32_t>(b->tokens.size()), n);
    EXPECT_EQ(static_cast<int32_t>(b->merges.size()), n - 257);
    auto tok = load(image_of(*b));
    ASSERT_NE(tok, nullptr);
    EXPECT_EQ(tok->n_vocab(), n);
  }
  auto a = train(texts, 320, 2);
  auto b = train(texts, 320, 2);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_EQ(image_of(*a), image_of(*b));
  // Reordering the texts changes no count, so nothing at all.
  std::vector<std::string> rev(texts.rbegin(), texts.rend());
  auto c = train(rev, 320, 2);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(image_of(*a), image_of(*c));
}

TEST(BpeTrain, WrittenVocabLoadsAndRoundTrips) {
  const auto texts = corpus();
  auto b = train(texts, 330, 2);
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  auto tok = load(image_of(*b));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->model_name(), "gpt2");
  EXPECT_EQ(tok->pre_name(), "gpt2");
  EXPECT_EQ(tok->bos(), 329);
  EXPECT_EQ(tok->eos(), 329);
  EXPECT_TRUE(tok->add_bos());
  EXPECT_TRUE(tok->is_special(329));
  EXPECT_EQ(tok->token_text(329), "<|endoftext|>");
  EXPECT_EQ(tok->token_text(' '), "\xC4\xA0");  // GPT-2 byte-level character of the space

  // A training sentence uses multi-byte merges.
  const std::string sentence = "The quick brown fox jumped over the lazy dog.";
  const auto ids = tok->encode(sentence, false, false);
  EXPECT_LT(ids.size() * 3, sentence.size()) << ids.size();
  EXPECT_EQ(tok->decode(ids), sentence);

  // Arbitrary UTF-8 and bytes never seen in training (invalid UTF-8, NUL, controls) round-trip exactly.
  const std::vector<std::string> samples = {
      "",
      "Zebras \xC3\xA9t\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x98\x80!",
      std::string("nul\0byte\x01\x7F\xFF\xFE\x80 tail", 22),
      "  many   spaces\t\ttabs\r\nlines\n\n",
      "<|endoftext|> written as text",
      "what is the pass key? 1234567890",
  };
  for (const std::string& s : samples) {
    const auto e = tok->encode(s, false, false);
    EXPECT_EQ(tok->decode(e), s);
  }
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  EXPECT_EQ(tok->decode(tok->encode(all, false, false)), all);
  // With parse_special the control token is recognised as one id.
  const auto sp = tok->encode("a<|endoftext|>b", false, true);
  ASSERT_EQ(sp.size(), 3u);
  EXPECT_EQ(sp[1], 329);
  // add_special prepends BOS.
  const auto wb = tok->encode("the", true, false);
  ASSERT_FALSE(wb.empty());
  EXPECT_EQ(wb[0], 329);
}

TEST(BpeTrain, Errors) {
  const auto texts = corpus();
  EXPECT_FALSE(train(texts, 256).is_ok());
  EXPECT_FALSE(train(texts, 0).is_ok());
  EXPECT_FALSE(train(texts, kMaxTrainedVocab + 1).is_ok());
  auto big = train(texts, 20000, 2);
  ASSERT_FALSE(big.is_ok());
  EXPECT_NE(big.status().message().find("too large"), std::string::npos) << big.status().message();
  EXPECT_FALSE(train({}, 300).is_ok());
  EXPECT_FALSE(train({"", ""}, 300).is_ok());
  std::vector<std::string_view> views = {"some text here"};
  BpeTrainOptions o;
  o.vocab_size = 260;
  o.min_pair_count = 1;
  o.pre = "no-such-pre";
  EXPECT_FALSE(train_bpe(views, o).is_ok());
  o.pre = "gpt2";
  o.special_tokens = {"<s>", "<s>"};
  EXPECT_FALSE(train_bpe(views, o).is_ok());
  o.special_tokens = {""};
  EXPECT_FALSE(train_bpe(views, o).is_ok());
}

}  // namespace
}  // namespace cw::tok
