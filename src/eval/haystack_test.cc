// The haystack generator (issue 14): byte reproducibility (two runs and a committed golden hash), answers
// at their spans, needle depth, lengths in characters and tokens, distractors, extract uniqueness, errors.
// Needs the wamerican word list (/usr/share/dict/american-english); skips without it.
#include "eval/haystack.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "gguf/reader.h"
#include "support/testing.h"
#include "tokenizer/tokenizer.h"

namespace cw::eval {
namespace {

// The filtered wamerican list of Debian 12 (wamerican 2020.12.07-2). The golden hash below depends on it.
constexpr const char* kFingerprint = "wl1:60652:a5fcfe905d432dc0";
constexpr uint64_t kGoldenMix200 = 0x978762bb38ce813full;

const WordList* words() {
  static const Result<WordList>* wl = new Result<WordList>(WordList::load());
  return wl->is_ok() ? &wl->value() : nullptr;
}

#define REQUIRE_WORDS()                                                                               \
  if (words() == nullptr) GTEST_SKIP() << "word list " << kDefaultWordsPath << " absent (apt-get install " \
                                       << kWordsPackage << ")";                                            \
  const WordList& wl = *words();                                                                      \
  const HaystackGenerator gen(wl)

uint64_t hash_run(const HaystackGenerator& gen, const GenOptions& o, uint64_t seed, int n) {
  std::string all;
  for (int i = 0; i < n; ++i) {
    auto s = gen.generate(o, seed, i);
    EXPECT_TRUE(s.is_ok()) << s.status().message();
    append_sample_jsonl(all, *s, o.unit, gen.words().fingerprint(), nullptr);
  }
  return fnv1a64(all);
}

TEST(Haystack, SameSeedSameBytesAndGolden) {
  REQUIRE_WORDS();
  ASSERT_EQ(wl.fingerprint(), kFingerprint) << "the word list changed: the golden hash below is for another list";
  GenOptions o;
  o.recipe = Recipe::kMix;
  o.lengths = {600, 1500};
  const uint64_t a = hash_run(gen, o, 1234, 200), b = hash_run(gen, o, 1234, 200);
  EXPECT_EQ(a, b);
  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%016llxull", static_cast<unsigned long long>(a));
  EXPECT_EQ(a, kGoldenMix200) << "generator output changed: golden now " << hex
                              << " (update it only for an intended change, and say so in haystack.md)";
  EXPECT_NE(a, hash_run(gen, o, 1235, 200));
  // Sample i alone equals sample i of a run.
  auto s7 = gen.generate(o, 1234, 7);
  std::string one;
  append_sample_jsonl(one, *s7, o.unit, wl.fingerprint(), nullptr);
  auto again = gen.generate(o, 1234, 7);
  EXPECT_EQ(again->text, s7->text);
}

TEST(Haystack, AnswersSitAtTheirSpans) {
  REQUIRE_WORDS();
  for (Recipe r : {Recipe::kPasskey, Recipe::kKv, Recipe::kMulti, Recipe::kExtract, Recipe::kMix}) {
    GenOptions o;
    o.recipe = r;
    o.lengths = {300, 2000, 5000};
    for (int i = 0; i < 60; ++i) {
      auto s = gen.generate(o, 99, i);
      ASSERT_TRUE(s.is_ok());
      ASSERT_FALSE(s->answer.empty());
      EXPECT_EQ(s->text.substr(s->answer_span.begin, s->answer_span.end - s->answer_span.begin), s->answer)
          << recipe_name(r) << " " << i;
      const Span& n = s->needles.at(s->asked);
      EXPECT_LE(n.begin, s->answer_span.begin);
      EXPECT_GE(n.end, s->answer_span.end);
      for (size_t k = 1; k < s->needles.size(); ++k) EXPECT_LE(s->needles[k - 1].end, s->needles[k].begin);
      for (char c : s->text) ASSERT_TRUE(c == '\n' || (c >= 32 && c < 127)) << int(c);
      const size_t want = s->recipe == Recipe::kKv || s->recipe == Recipe::kMulti ? 4 : 1;
      EXPECT_EQ(s->needles.size(), want) << recipe_name(s->recipe);
      if (s->recipe == Recipe::kPasskey) {
        EXPECT_EQ(s->question, "What is the pass key?");
      }
    }
  }
}

// The filler-only offset of the asked needle: its begin less every needle (and its separator) before it.
double filler_depth(const Sample& s) {
  int64_t needles_before = 0, needles_all = 0;
  for (size_t k = 0; k < s.needles.size(); ++k) {
    const int64_t len = s.needles[k].end - s.needles[k].begin + 1;
    if (static_cast<int>(k) < s.asked) needles_before += len;
    needles_all += len;
  }
  const double filler = static_cast<double>(static_cast<int64_t>(s.text.size()) - needles_all + 1);
  return static_cast<double>(s.needles[s.asked].begin - needles_before) / filler;
}

TEST(Haystack, DepthHonouredWithinASentence) {
  REQUIRE_WORDS();
  for (Recipe r : {Recipe::kPasskey, Recipe::kKv, Recipe::kMulti, Recipe::kExtract}) {
    for (double d : {0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0}) {
      GenOptions o;
      o.recipe = r;
      o.depth = d;
      o.lengths = {8000};
      for (int i = 0; i < 10; ++i) {
        auto s = gen.generate(o, 5, i);
        ASSERT_TRUE(s.is_ok());
        EXPECT_EQ(s->depth, d);
        const double tol = 402.0 / static_cast<double>(s->text.size());
        EXPECT_NEAR(filler_depth(*s), d, tol) << recipe_name(r) << " depth " << d << " sample " << i;
        if (d == 0.0 && r == Recipe::kPasskey) {
          EXPECT_EQ(s->needles[0].begin, 0);
        }
        if (d == 1.0 && r == Recipe::kPasskey) {
          EXPECT_EQ(s->needles[0].end, static_cast<int64_t>(s->text.size()));
        }
      }
    }
  }
  // Random depths cover the range.
  GenOptions o;
  double lo = 1, hi = 0;
  for (int i = 0; i < 50; ++i) {
    const double d = gen.generate(o, 8, i)->depth;
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_LT(lo, 0.1);
  EXPECT_GT(hi, 0.9);
}

TEST(Haystack, LengthsInCharacters) {
  REQUIRE_WORDS();
  for (int64_t target : {200, 1000, 4000, 32000}) {
    GenOptions o;
    o.recipe = Recipe::kMix;
    o.lengths = {target};
    for (int i = 0; i < 20; ++i) {
      auto s = gen.generate(o, 3, i);
      ASSERT_TRUE(s.is_ok());
      EXPECT_EQ(s->length, static_cast<int64_t>(s->text.size()));
      if (s->length > target) {  // only when the needles alone exceed it: then the document is just them
        int64_t needles = 0;
        for (const Span& n : s->needles) needles += n.end - n.begin + 1;
        EXPECT_EQ(s->length, needles - 1) << target << " " << i;
        continue;
      }
      EXPECT_GE(s->length, target - 120) << target << " " << i;  // a short sentence usually fills the end
    }
  }
  // Needles longer than the target: the document is the needles alone.
  GenOptions o;
  o.recipe = Recipe::kKv;
  o.lengths = {10};
  auto s = gen.generate(o, 1, 0);
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(s->needles.size(), 4u);
}

TEST(Haystack, LengthsInTokens) {
  REQUIRE_WORDS();
  CW_REQUIRE_SHARED_DATA(dir);
  auto f = gguf::File::open(dir + "/vocab/ggml-vocab-gpt-2.gguf");
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  auto tok = tok::Tokenizer::from_gguf(**f);
  ASSERT_TRUE(tok.is_ok());
  GenOptions o;
  o.recipe = Recipe::kMix;
  o.unit = LengthUnit::kTokens;
  o.tokenizer = tok->get();
  o.lengths = {256, 2048};
  for (int i = 0; i < 16; ++i) {
    auto s = gen.generate(o, 11, i);
    ASSERT_TRUE(s.is_ok());
    const int64_t n = static_cast<int64_t>((*tok)->encode(s->text, false, false).size());
    EXPECT_EQ(n, s->length);
    EXPECT_LE(n, s->target_length);
    EXPECT_GE(n, s->target_length - 30) << i;
    std::string line;
    append_sample_jsonl(line, *s, o.unit, wl.fingerprint(), tok->get());
    EXPECT_NE(line.find("\"prompt_tokens\":["), std::string::npos);
  }
  o.tokenizer = nullptr;
  EXPECT_FALSE(gen.generate(o, 1, 0).is_ok());
}

std::string key_of(const std::string& fact) {
  // "The code for KEY-12 is V." or "For KEY-12, the code is V."
  size_t b = fact.rfind(" for ", fact.find(" is "));
  if (fact.rfind("For ", 0) == 0) return fact.substr(4, fact.find(',') - 4);
  b += 5;
  return fact.substr(b, fact.find(" is ", b) - b);
}

TEST(Haystack, KvDistractorsNeverTheAskedKey) {
  REQUIRE_WORDS();
  GenOptions o;
  o.recipe = Recipe::kKv;
  o.lengths = {1500};
  int near_misses = 0;
  for (int needles : {1, 2, 4, 8}) {
    o.needles = needles;
    for (int i = 0; i < 50; ++i) {
      auto s = gen.generate(o, 21, i);
      ASSERT_TRUE(s.is_ok());
      ASSERT_EQ(s->needles.size(), static_cast<size_t>(needles));
      const Span& a = s->needles[s->asked];
      const std::string asked_key = key_of(s->text.substr(a.begin, a.end - a.begin));
      EXPECT_NE(s->question.find(" " + asked_key + "?"), std::string::npos) << s->question << " / " << asked_key;
      for (int k = 0; k < needles; ++k) {
        if (k == s->asked) continue;
        const std::string fact = s->text.substr(s->needles[k].begin, s->needles[k].end - s->needles[k].begin);
        const std::string key = key_of(fact);
        EXPECT_NE(key, asked_key) << fact;
        EXPECT_EQ(fact.find(s->answer), std::string::npos) << fact << " holds the answer " << s->answer;
        near_misses += key.substr(0, key.find('-')) == asked_key.substr(0, asked_key.find('-')) ||
                       key.substr(key.find('-')) == asked_key.substr(asked_key.find('-'));
      }
    }
  }
  EXPECT_GT(near_misses, 100);
}

TEST(Haystack, ExtractAnswersOccurOnce) {
  REQUIRE_WORDS();
  GenOptions o;
  o.recipe = Recipe::kExtract;
  o.lengths = {6000};
  int kinds[3] = {0, 0, 0};
  for (int i = 0; i < 60; ++i) {
    auto s = gen.generate(o, 77, i);
    ASSERT_TRUE(s.is_ok());
    size_t count = 0;
    for (size_t at = s->text.find(s->answer); at != std::string::npos; at = s->text.find(s->answer, at + 1)) ++count;
    EXPECT_EQ(count, 1u) << s->question << " -> " << s->answer;
    kinds[s->question.rfind("Who", 0) == 0 ? 0 : s->question.rfind("What", 0) == 0 ? 1 : 2]++;
  }
  for (int k : kinds) EXPECT_GT(k, 5);
}

// Lower-cased words of 3+ letters, less the question's framing and the facts' function words.
std::set<std::string> content_words(const std::string& text) {
  static const std::set<std::string> kSkip = {"the", "was", "were", "who", "what", "where", "year", "how",
                                              "many", "according", "text", "document", "based", "passage",
                                              "record", "states", "in", "by", "near", "under", "behind",
                                              "beside", "beyond", "inside", "across"};
  std::set<std::string> out;
  std::string w;
  for (size_t i = 0; i <= text.size(); ++i) {
    const char c = i < text.size() ? text[i] : ' ';
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      w += static_cast<char>(c | 0x20);
    } else {
      if (w.size() >= 3 && !kSkip.count(w)) out.insert(w);
      w.clear();
    }
  }
  return out;
}

TEST(Haystack, QuoteFactOutscoresEveryDistractorAndAnswersOnce) {
  REQUIRE_WORDS();
  GenOptions o;
  o.recipe = Recipe::kQuote;
  o.lengths = {3000};
  std::map<std::string, int> kinds;
  for (int i = 0; i < 80; ++i) {
    auto s = gen.generate(o, 91, i);
    ASSERT_TRUE(s.is_ok());
    EXPECT_EQ(s->recipe, Recipe::kQuote);
    size_t count = 0;
    for (size_t at = s->text.find(s->answer); at != std::string::npos; at = s->text.find(s->answer, at + 1)) ++count;
    EXPECT_EQ(count, 1u) << s->question << " -> " << s->answer;
    ASSERT_GE(s->needles.size(), 4u);  // the fact and 3..8 distractors
    const std::set<std::string> q = content_words(s->question);
    auto overlap = [&](const Span& n) {
      int k = 0;
      for (const std::string& w : content_words(s->text.substr(n.begin, n.end - n.begin))) k += q.count(w) ? 1 : 0;
      return k;
    };
    const int asked = overlap(s->needles[static_cast<size_t>(s->asked)]);
    EXPECT_GE(asked, 2) << s->question;
    for (size_t j = 0; j < s->needles.size(); ++j)
      if (static_cast<int>(j) != s->asked) EXPECT_LT(overlap(s->needles[j]), asked) << s->question;
    for (const char* k : {"Who", "who", "what was", "What was", "where", "Where", "year", "how many", "How many"})
      if (s->question.find(k) != std::string::npos) kinds[k]++;
  }
  EXPECT_GT(kinds["Who"] + kinds["who"], 5);
  EXPECT_GT(kinds["what was"] + kinds["What was"], 3);
  EXPECT_GT(kinds["where"] + kinds["Where"], 5);
  EXPECT_GT(kinds["year"], 5);
  EXPECT_GT(kinds["how many"] + kinds["How many"], 2);
}

TEST(Haystack, PromptFormat) {
  REQUIRE_WORDS();
  auto s = gen.generate(GenOptions{}, 1, 0);
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(format_prompt(*s), s->text + "\nQuestion: What is the pass key?\nAnswer:");
  EXPECT_EQ(format_answer(*s), " " + s->answer + "\n");
}

TEST(Haystack, Errors) {
  auto missing = WordList::load("/nonexistent/words");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("wamerican"), std::string::npos) << missing.status().message();
  auto tiny = WordList::from_words({"cat", "dog", "Bird", "x", "toolongforthelist"});
  ASSERT_FALSE(tiny.is_ok());
  EXPECT_NE(tiny.status().message().find("usable words"), std::string::npos);
  EXPECT_FALSE(parse_recipe("needle").is_ok());
  EXPECT_EQ(*parse_recipe("extract"), Recipe::kExtract);
  GenOptions o;
  o.lengths = {};
  EXPECT_FALSE(validate(o).is_ok());
  o.lengths = {100};
  o.depth = 1.5;
  EXPECT_FALSE(validate(o).is_ok());
  o.depth = 0.5;
  o.needles = 0;
  EXPECT_FALSE(validate(o).is_ok());
}

TEST(Haystack, OpenClassesLeaveOutFunctionWords) {
  REQUIRE_WORDS();
  for (const std::vector<uint32_t>* cls : {&wl.nouns(), &wl.verbs(), &wl.adjectives(), &wl.adverbs()}) {
    EXPECT_GT(cls->size(), 900u);
    for (uint32_t id : *cls)
      for (const char* f : {"the", "and", "when", "one", "fifty", "which", "their"}) ASSERT_NE(wl.words()[id], f);
  }
}

TEST(Haystack, BlockedWordsStayInTheListButInNoOpenClass) {
  REQUIRE_WORDS();
  // FNV-1a hashes of two words wamerican carries that the grammar must never draw (haystack_words.cc).
  for (uint64_t blocked : {0xe0f0c58862cd1066ull, 0x90a51c87d079bf3bull}) {
    bool listed = false;
    for (const std::string& w : wl.words()) listed = listed || fnv1a64(w) == blocked;
    EXPECT_TRUE(listed);
    for (const std::vector<uint32_t>* cls : {&wl.nouns(), &wl.verbs(), &wl.adjectives(), &wl.adverbs()})
      for (uint32_t id : *cls) ASSERT_NE(fnv1a64(wl.words()[id]), blocked);
  }
}

TEST(Haystack, RngIsUniformEnough) {
  Rng r(42);
  int counts[10] = {};
  for (int i = 0; i < 100000; ++i) counts[r.below(10)]++;
  for (int c : counts) EXPECT_NEAR(c, 10000, 500);
  Rng a = Rng::for_sample(1, 2), b = Rng::for_sample(1, 2), c = Rng::for_sample(2, 1);
  EXPECT_EQ(a.next(), b.next());
  EXPECT_NE(Rng::for_sample(1, 2).next(), c.next());
}

}  // namespace
}  // namespace cw::eval
