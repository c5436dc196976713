// The haystack generator's PRNG, hash and word list (haystack.h).
#include <algorithm>
#include <cstdio>

#include "base/file_io.h"
#include "eval/haystack.h"

namespace cw::eval {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t fnv1a64(std::string_view bytes, uint64_t h) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

Rng::Rng(uint64_t seed) {
  uint64_t st = seed;
  for (uint64_t& s : s_) s = splitmix64(st);
}

Rng Rng::for_sample(uint64_t seed, uint64_t index) {
  uint64_t a = seed;
  const uint64_t k1 = splitmix64(a);
  uint64_t b = index ^ 0x5851f42d4c957f2dull;
  const uint64_t k2 = splitmix64(b);
  return Rng(k1 ^ (k2 * 0xd1342543de82ef95ull) ^ 0x243f6a8885a308d3ull);
}

namespace {
inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

uint64_t Rng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

uint64_t Rng::below(uint64_t n) {
  CW_CHECK(n > 0);
  // Lemire: the high word of x * n, rejecting the low words that would bias it.
  unsigned __int128 m = static_cast<unsigned __int128>(next()) * n;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < n) {
    const uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = static_cast<unsigned __int128>(next()) * n;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

int64_t Rng::range(int64_t lo, int64_t hi) {
  CW_CHECK(lo <= hi);
  return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
}

double Rng::unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

namespace {

bool ends_with(std::string_view w, std::string_view s) {
  return w.size() >= s.size() && w.substr(w.size() - s.size()) == s;
}
bool ends_with_any(std::string_view w, std::initializer_list<std::string_view> ss) {
  for (std::string_view s : ss)
    if (ends_with(w, s)) return true;
  return false;
}

// Closed-class (function) words and number words: never an open-class slot, so that "the when" or
// "one and" cannot appear where a noun is expected. Sorted (binary search).
constexpr std::string_view kFunctionWords[] = {
    "about", "above", "across", "after", "again", "against", "all", "almost", "along", "already", "also",
    "although", "always", "among", "and", "another", "any", "anybody", "anyone", "anything", "anywhere", "are",
    "around", "because", "been", "before", "behind", "below", "beneath", "beside", "besides", "between",
    "beyond", "both", "but", "can", "cannot", "could", "did", "does", "done", "down", "during", "each", "eight",
    "eighteen", "eighty", "either", "eleven", "else", "enough", "even", "ever", "every", "everybody",
    "everyone", "everything", "everywhere", "except", "few", "fifteen", "fifty", "five", "for", "forty", "four",
    "fourteen", "from", "had", "has", "have", "having", "hence", "her", "here", "hers", "herself", "him",
    "himself", "his", "how", "however", "hundred", "into", "its", "itself", "just", "least", "less", "many",
    "may", "might", "mine", "more", "most", "much", "must", "myself", "near", "neither", "never", "nine",
    "nineteen", "ninety", "nobody", "none", "nor", "not", "nothing", "now", "nowhere", "off", "often", "once",
    "one", "only", "onto", "other", "others", "ought", "our", "ours", "ourselves", "out", "over", "own", "per",
    "quite", "rather", "same", "seven", "seventeen", "seventy", "several", "shall", "she", "should", "since",
    "six", "sixteen", "sixty", "some", "somebody", "someone", "something", "somewhere", "soon", "still",
    "such", "ten", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there",
    "therefore", "these", "they", "third", "thirteen", "thirty", "this", "those", "though", "thousand",
    "three", "through", "thus", "till", "too", "toward", "towards", "twelve", "twenty", "two", "under",
    "unless", "until", "upon", "very", "was", "were", "what", "whatever", "when", "whenever", "where",
    "whereas", "wherever", "whether", "which", "while", "who", "whoever", "whom", "whose", "why", "will",
    "with", "within", "without", "would", "yet", "you", "your", "yours", "yourself", "yourselves", "zero"};

bool is_function_word(std::string_view w) {
  return std::binary_search(std::begin(kFunctionWords), std::end(kFunctionWords), w);
}

// Minimum sizes of the open classes, so that documents of a few thousand words stay varied and every
// recipe can draw distinct words.
constexpr size_t kMinWords = 2000, kMinNouns = 500, kMinVerbs = 100, kMinAdjectives = 100, kMinAdverbs = 20;

}  // namespace

Result<WordList> WordList::from_words(std::vector<std::string> words) {
  WordList wl;
  for (std::string& w : words) {
    if (w.size() < 2 || w.size() > 12) continue;
    if (!std::all_of(w.begin(), w.end(), [](char c) { return c >= 'a' && c <= 'z'; })) continue;
    wl.words_.push_back(std::move(w));
  }
  std::sort(wl.words_.begin(), wl.words_.end());
  wl.words_.erase(std::unique(wl.words_.begin(), wl.words_.end()), wl.words_.end());
  if (wl.words_.size() < kMinWords)
    return invalid_argument("word list has " + std::to_string(wl.words_.size()) +
                            " usable words (lower-case ASCII, 2..12 letters); at least " + std::to_string(kMinWords) +
                            " are needed");
  uint64_t h = fnv1a64("");
  for (const std::string& w : wl.words_) {
    h = fnv1a64(w, h);
    h = fnv1a64("\n", h);
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  wl.fingerprint_ = "wl1:" + std::to_string(wl.words_.size()) + ":" + hex;

  for (uint32_t i = 0; i < wl.words_.size(); ++i) {
    const std::string_view w = wl.words_[i];
    if (is_function_word(w)) continue;
    if (w.size() >= 6 && ends_with_any(w, {"ously", "fully", "ively", "ably", "ingly", "edly", "ently", "antly",
                                            "ically", "ishly", "lessly"})) {
      wl.adverbs_.push_back(i);
    } else if (w.size() >= 6 && ends_with(w, "ed") && !ends_with(w, "eed")) {
      wl.verbs_.push_back(i);
    } else if (w.size() >= 6 &&
               ends_with_any(w, {"ous", "ful", "ive", "able", "ible", "ical", "less", "ish"})) {
      wl.adjectives_.push_back(i);
    } else if (w.size() >= 3 && w.size() <= 10 &&
               !ends_with_any(w, {"s", "ly", "ed", "ier", "ing", "ize", "ify", "ous", "ful", "ive", "able", "ible",
                                  "less", "ish", "est"})) {
      wl.nouns_.push_back(i);
    }
  }
  auto too_few = [](const char* what, size_t have, size_t need) {
    return invalid_argument(std::string("word list has ") + std::to_string(have) + " " + what + " (need " +
                            std::to_string(need) + "; see docs/design/haystack.md)");
  };
  if (wl.nouns_.size() < kMinNouns) return too_few("noun-like words", wl.nouns_.size(), kMinNouns);
  if (wl.verbs_.size() < kMinVerbs) return too_few("-ed verbs", wl.verbs_.size(), kMinVerbs);
  if (wl.adjectives_.size() < kMinAdjectives)
    return too_few("adjective-suffix words", wl.adjectives_.size(), kMinAdjectives);
  if (wl.adverbs_.size() < kMinAdverbs) return too_few("adverb-suffix words", wl.adverbs_.size(), kMinAdverbs);
  return wl;
}

Result<WordList> WordList::load(const std::string& path) {
  auto data = read_input(path);
  if (!data.is_ok()) {
    if (data.status().code() == StatusCode::kNotFound)
      return not_found("word list '" + path + "' not found (the default list comes from the Debian package " +
                       kWordsPackage + ": apt-get install " + kWordsPackage + ")");
    return Status(data.status().code(), "word list: " + data.status().message());
  }
  std::vector<std::string> words;
  std::string_view text = *data;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    words.emplace_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  auto wl = from_words(std::move(words));
  if (!wl.is_ok()) return Status(wl.status().code(), "'" + path + "': " + wl.status().message());
  return wl;
}

}  // namespace cw::eval
