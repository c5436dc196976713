// Hostile input for the tokenizers (issue 11): the long-word merge path (merge_queue.h) gives exactly the
// ids of the reference heap path on llama.cpp's vectors and on random text, and huge single words / runs
// are encoded in memory linear in the input.
#include <sys/resource.h>

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "support/testing.h"
#include "tokenizer/merge_queue.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab_vectors_test_util.h"

namespace cw::tok {
namespace {

using testing::read_all;
constexpr auto& kVocabs = testing::kVocabVectorNames;

std::unique_ptr<Tokenizer> load(const std::string& data, const std::string& name) {
  auto file = gguf::File::open(data + "/vocab/ggml-vocab-" + name + ".gguf");
  if (!file.is_ok()) return nullptr;
  auto tok = Tokenizer::from_gguf(**file);
  if (!tok.is_ok()) return nullptr;
  return std::move(*tok);
}

// Sets the long-word threshold for the scope.
struct Threshold {
  size_t saved;
  explicit Threshold(size_t bytes) : saved(g_long_word_bytes.load()) { g_long_word_bytes = bytes; }
  ~Threshold() { g_long_word_bytes = saved; }
};

std::vector<int32_t> encode_with(const Tokenizer& t, std::string_view text, size_t threshold) {
  Threshold th(threshold);
  return t.encode(text, false, false);
}

// Random text that stresses merges: repeated characters, runs of spaces and newlines, multi-byte and
// emoji ZWJ sequences, digits, punctuation, invalid bytes, and long words without separators.
std::string random_text(std::mt19937& rng, size_t n) {
  static const char* const kParts[] = {"a",  "aa", "e",   "the", " ",  "  ", "\n", "\n\n", "\t", "é",
                                       "日", "本", "\xF0\x9F\x91\xA9\xE2\x80\x8D", ".", ",", "'s", "0",
                                       "123", "\xFF", "\xC3", "ab", "ing", "\xE2\x96\x81", "zz", "-"};
  std::string s;
  std::uniform_int_distribution<size_t> pick(0, std::size(kParts) - 1);
  std::uniform_int_distribution<int> rep(1, 12);
  while (s.size() < n) {
    const char* p = kParts[pick(rng)];
    for (int k = rep(rng); k > 0; --k) s += p;
  }
  return s;
}

// Every llama.cpp vector still matches when every word takes the long-word path.
TEST(LongWordPath, MatchesLlamaCppVectors) {
  CW_REQUIRE_SHARED_DATA(data);
  for (const char* name : kVocabs) {
    auto t = load(data, name);
    if (!t) continue;
    const std::string base = data + "/vocab/ggml-vocab-" + name + ".gguf";
    const std::vector<std::string> inputs = testing::split_inputs(read_all(base + ".inp"));
    const std::vector<std::vector<int32_t>> expected = testing::read_expected(base + ".out");
    ASSERT_LE(inputs.size(), expected.size()) << name;
    for (size_t i = 0; i < inputs.size(); ++i)
      EXPECT_EQ(encode_with(*t, inputs[i], 0), expected[i]) << name << " vector " << i;
  }
}

// The two paths agree on random text with long words, for every vocabulary family.
TEST(LongWordPath, MatchesHeapPathOnRandomText) {
  CW_REQUIRE_SHARED_DATA(data);
  std::mt19937 rng(11);
  for (const char* name : kVocabs) {
    auto t = load(data, name);
    if (!t) continue;
    for (int round = 0; round < 20; ++round) {
      const std::string text = random_text(rng, 200 + 400 * static_cast<size_t>(round));
      EXPECT_EQ(encode_with(*t, text, 0), encode_with(*t, text, size_t{1} << 40)) << name << " round " << round;
    }
  }
}

int64_t peak_rss_bytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;
}

// A 4 MB word without separators, 4 MB of spaces and 4 MB of newlines: the peak memory the encode adds
// stays under 40 bytes per input byte (the old heap path needed ~65 for a word of 'a'), and the ids
// decode back to the input.
TEST(LongWordPath, HugeRunsUseLinearMemory) {
  CW_REQUIRE_SHARED_DATA(data);
  constexpr size_t kN = size_t{4} << 20;
  for (const char* name : {"llama-spm", "gpt-2", "bert-bge"}) {
    auto t = load(data, name);
    if (!t) continue;
    for (char c : {'a', ' ', '\n'}) {
      const std::string text(kN, c);
      const int64_t before = peak_rss_bytes();
      const auto ids = t->encode(text, false, false);
      const int64_t grown = peak_rss_bytes() - before;
      EXPECT_LT(grown, static_cast<int64_t>(40 * kN)) << name << " char " << static_cast<int>(c);
      if (std::string_view(name) != "bert-bge") {
        EXPECT_EQ(t->decode(ids), text) << name << " char " << static_cast<int>(c);
      }
    }
  }
}

}  // namespace
}  // namespace cw::tok
