// The deterministic haystack generator (issue 14): synthetic long documents with needles and a question
// whose exact answer is a span of the document. One generator serves training data (`chunkwise gen-data`,
// tools/train_tiny) and `chunkwise eval needle`, so the harness measures the recipe the model was trained
// on. docs/design/haystack.md describes the recipes, the grammar, the PRNG and the word list.
//
// Reproducibility: a sample is a pure function of (word list, options, seed, index) — byte for byte, on
// every platform and standard library. The PRNG is our own (xoshiro256** seeded by splitmix64); no
// std::*_distribution, no global state, no clock, no locale. Each (seed, index) gets its own stream, so
// sample i can be regenerated alone and samples can be made in parallel.
//
// Thread-safety: WordList and HaystackGenerator are immutable after construction; generate() is const and
// may run concurrently from several threads (the tokenizer, when given, must then be thread-safe too: our
// tok::Tokenizer's encode() is const).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace cw::tok {
class Tokenizer;
}

namespace cw::eval {

// ---------------------------------------------------------------------------------------------------------
// The PRNG: xoshiro256** (Blackman & Vigna) with its state filled by splitmix64. Every draw is defined by
// integer arithmetic only, so streams are identical everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  // The stream of sample `index` under `seed` (independent of every other index).
  static Rng for_sample(uint64_t seed, uint64_t index);

  uint64_t next();
  // Uniform in [0, n); n > 0 (Lemire's multiply-and-reject, unbiased).
  uint64_t below(uint64_t n);
  // Uniform in [lo, hi] (inclusive); lo <= hi.
  int64_t range(int64_t lo, int64_t hi);
  // Uniform in [0, 1) with 53 random bits.
  double unit();
  // True with probability num/den.
  bool chance(uint64_t num, uint64_t den) { return below(den) < num; }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }

 private:
  uint64_t s_[4];
};

uint64_t splitmix64(uint64_t& state);
// FNV-1a, 64 bits (fingerprints and golden test hashes).
uint64_t fnv1a64(std::string_view bytes, uint64_t h = 0xcbf29ce484222325ull);

// ---------------------------------------------------------------------------------------------------------
// The word list: lower-case ASCII words of 2..12 letters, sorted and deduplicated, with a fingerprint.
// The list carries no parts of speech; open-class slots of the grammar are filled from suffix classes
// (see docs/design/haystack.md): past-tense verbs (-ed), adjectives (-ous, -ful, -ive, ...), adverbs
// (-ously, -fully, ...) and nouns (the rest, singular-looking).
constexpr const char* kDefaultWordsPath = "/usr/share/dict/american-english";
constexpr const char* kWordsPackage = "wamerican";

class WordList {
 public:
  // Reads a word list (one word per line). Errors: a missing file is kNotFound naming the path and the
  // Debian package that provides the default list; too few usable words (< 2,000, or a suffix class below
  // its minimum) is kInvalidArgument.
  static Result<WordList> load(const std::string& path = kDefaultWordsPath);
  // Builds from words in memory (same filter, sort and checks; for tests).
  static Result<WordList> from_words(std::vector<std::string> words);

  const std::vector<std::string>& words() const { return words_; }
  size_t size() const { return words_.size(); }
  // "wl1:<count>:<16 hex digits of FNV-1a over the sorted words, each followed by \n>".
  const std::string& fingerprint() const { return fingerprint_; }

  // Indices into words() by open class.
  const std::vector<uint32_t>& nouns() const { return nouns_; }
  const std::vector<uint32_t>& verbs() const { return verbs_; }  // past tense / past participle (-ed)
  const std::vector<uint32_t>& adjectives() const { return adjectives_; }
  const std::vector<uint32_t>& adverbs() const { return adverbs_; }

 private:
  std::vector<std::string> words_;
  std::string fingerprint_;
  std::vector<uint32_t> nouns_, verbs_, adjectives_, adverbs_;
};

// ---------------------------------------------------------------------------------------------------------
// Recipes and samples.
// kMix draws one of the first four per sample (quote came later and stays out of mix, so that mix streams
// keep their bytes).
enum class Recipe { kPasskey, kKv, kMulti, kExtract, kMix, kQuote };
const char* recipe_name(Recipe r);
// "passkey" | "kv" | "multi" | "extract" | "quote" | "mix"; anything else is kInvalidArgument listing them.
Result<Recipe> parse_recipe(std::string_view name);

enum class LengthUnit { kChars, kTokens };

struct GenOptions {
  Recipe recipe = Recipe::kPasskey;
  // Target document lengths; sample i uses lengths[i % lengths.size()]. The document (not the question)
  // is at most this long and, unless the needles alone exceed it, longer than the target less one filler
  // sentence. Characters are bytes: the text is ASCII.
  std::vector<int64_t> lengths = {2000};
  LengthUnit unit = LengthUnit::kChars;
  // Requested depth (0..1) of the asked needle: the share of filler that precedes it. < 0: random per
  // sample (uniform in [0, 1]).
  double depth = -1;
  // Facts per document for kv and multi (one of them is asked); >= 1. passkey and extract have one.
  int needles = 4;
  // Required for LengthUnit::kTokens (lengths count tokens of encode(text, false, false)); not owned.
  const tok::Tokenizer* tokenizer = nullptr;
};

// Checks options without generating (lengths >= 1, depth <= 1, needles in 1..64, a tokenizer for tokens).
Status validate(const GenOptions& options);

struct Span {
  int64_t begin = 0;  // byte offsets into Sample::text, [begin, end)
  int64_t end = 0;
};

struct Sample {
  Recipe recipe = Recipe::kPasskey;  // the recipe actually used (mix resolves to one of the four)
  uint64_t seed = 0;
  int64_t index = 0;
  int64_t target_length = 0;  // in GenOptions::unit
  double depth = 0;           // requested depth of the asked needle
  std::string text;           // the document
  std::string question;
  std::string answer;   // text.substr(answer_span.begin, answer_span.end - answer_span.begin) == answer
  Span answer_span;     // inside needles[asked]
  std::vector<Span> needles;  // every inserted needle (facts, distractors), in document order
  int asked = 0;              // index into needles of the one the question is about
  int64_t length = 0;         // the document's length in GenOptions::unit
};

class HaystackGenerator {
 public:
  // `words` must outlive the generator.
  explicit HaystackGenerator(const WordList& words) : words_(words) {}

  // Sample `index` of the stream `seed`. Errors: invalid options (validate()).
  Result<Sample> generate(const GenOptions& options, uint64_t seed, int64_t index) const;

  const WordList& words() const { return words_; }

 private:
  const WordList& words_;
};

// The prompt format shared by training and `eval needle` (docs/design/haystack.md):
//   format_prompt(s) = s.text + "\nQuestion: " + s.question + "\nAnswer:"
//   format_answer(s) = " " + s.answer + "\n"
// A model is trained on format_prompt + format_answer (loss on the answer) and scored by exact match of
// its greedy continuation of format_prompt up to the first "\n", with leading/trailing spaces trimmed.
std::string format_prompt(const Sample& s);
std::string format_answer(const Sample& s);

// Appends one JSON line (with "\n") for `s`: recipe, seed, index, length, unit, depth, text, question,
// answer, answer_begin, answer_end, needles [{begin,end}], asked, words_fingerprint; with a tokenizer,
// also prompt_tokens (encode(format_prompt, add_special=true)) and answer_tokens (encode(format_answer,
// add_special=false)).
void append_sample_jsonl(std::string& out, const Sample& s, LengthUnit unit, const std::string& fingerprint,
                         const tok::Tokenizer* tokenizer);

}  // namespace cw::eval
