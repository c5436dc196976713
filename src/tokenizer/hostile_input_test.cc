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

namespace cw::tok {
namespace {

const char* const kVocabs[] = {"llama-spm", "phi-3",        "gpt-2",          "falcon",  "mpt",
                               "starcoder", "deepseek-llm", "deepseek-coder", "bert-bge"};

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

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
    const std::string inp = read_all(base + ".inp");
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::ifstream out(base + ".out");
    size_t pos = 0, i = 0;
    while (true) {
      const size_t next = inp.find(sep, pos);
      if (next == std::string::npos) break;
      std::string line;
      std::getline(out, line);
      std::istringstream ls(line);
      std::vector<int32_t> expected;
      int64_t id;
      while (ls >> id) expected.push_back(static_cast<int32_t>(id));
      EXPECT_EQ(encode_with(*t, inp.substr(pos, next - pos), 0), expected) << name << " vector " << i;
      pos = next + sep.size();
      ++i;
    }
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
