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

// Words the grammar never draws (slurs, obscenities and sexual terms that wamerican carries), by FNV-1a
// hash so the source does not spell them; they stay in the list (its fingerprint is unchanged) but in no
// open class. Sorted (binary search).
constexpr uint64_t kBlockedWordHashes[] = {
    0x00ef32288a1656c5ull, 0x0142b774cac266ddull, 0x0142c074cac27628ull, 0x0373582ff2356f89ull, 0x062fbbbfe27253afull,
    0x071b2017235153f4ull, 0x086d725086b74b7cull, 0x08966b5086da44abull, 0x08fe83ff03be6670ull, 0x09444dd4e9748a7dull,
    0x0a6909749cccb32full, 0x0a6cf2749cd074f1ull, 0x0bb8f591194ef325ull, 0x0bc610911959ab62ull, 0x0bec570063d181bcull,
    0x0cc46c132589986aull, 0x10af691c391dfb17ull, 0x124653908c83bb79ull, 0x126ed37890cd45ceull, 0x1403a8c177212846ull,
    0x144ccdfbc7ed66adull, 0x16cd27d2d2c3d845ull, 0x1a1bd29fe49297feull, 0x1c4f755a403ee056ull, 0x1ce4f7117af7cf57ull,
    0x1d9a5e99c4415bbcull, 0x1e359bef2e850857ull, 0x1f56cc1195dd1620ull, 0x1f56e31195dd3d35ull, 0x2252e772f61db552ull,
    0x22b4528aa04b7724ull, 0x235ff5bd6d57520full, 0x244757c5c9fcc16aull, 0x24ea66ada23583f9ull, 0x2523417632096b1cull,
    0x257d947b27505bfeull, 0x257da77b27507c47ull, 0x28637b22319f7326ull, 0x2900d1cf99b9e003ull, 0x293d444913d6fa20ull,
    0x2a7fd9039b07376aull, 0x2b438a1de89d176bull, 0x2b85850c38803e48ull, 0x2bb3660c97de3ddcull, 0x2c71046623e62b5cull,
    0x2d5df218d441759aull, 0x2d6501ec0d775cf9ull, 0x2e529a049b956336ull, 0x2f5b8cc28e477857ull, 0x3059a47b3d25a29bull,
    0x3470189fce86bb8aull, 0x3565c6ced4072262ull, 0x3a3c9b8e01277b22ull, 0x3afe1415d7ed871aull, 0x3c0d5eefab7785e6ull,
    0x3da81967075841beull, 0x422ccac73ec32e8aull, 0x42abd8f6442ee166ull, 0x46a9c75c1e7e493bull, 0x46f05e18e29ecd13ull,
    0x474ca7930d633e30ull, 0x48a48eef89ed4c9cull, 0x4bf2121dfa9106dfull, 0x4c6d7290acc036bfull, 0x4d77eb3ed8b1cd34ull,
    0x4de6eab296c5c207ull, 0x4f88a5414b3add1dull, 0x506562a2db2d86e1ull, 0x545edf5b7ca40d5cull, 0x5527796bdf72405cull,
    0x55fec1e413be8764ull, 0x56f2cc19445fa4beull, 0x5751722a950ff1d6ull, 0x582afab29d0a0d80ull, 0x5937637278a5075cull,
    0x59d9e9d63faa7a18ull, 0x5b39378e135dade3ull, 0x5c6874a91ee0d808ull, 0x5c6b5da91ee2e6caull, 0x5dbf0258d0a15d66ull,
    0x5e7d9bf62c23f27eull, 0x600024f2d4f9dd79ull, 0x600e34f2d5063605ull, 0x600e3bf2d50641eaull, 0x6062f782fec7f901ull,
    0x60d4929e19b5d8bdull, 0x60d7ab9e19b8390full, 0x612a58d23a490ea8ull, 0x622a45762504d12eull, 0x62c2148d80941e97ull,
    0x63e7d0717bb07d6cull, 0x64b593009bc73af6ull, 0x67ea3cbd93f2f225ull, 0x680c48bd940fecefull, 0x68bf31ab106473f4ull,
    0x6acf1218f748a0dbull, 0x6b7f30a3e354f41eull, 0x6be8e0d4b865cb3aull, 0x6d97c944092ff7c8ull, 0x6d9bb2440933b98aull,
    0x6d9ef21fd1da4113ull, 0x6ed150bbb3b1e78cull, 0x6ed15fbbb3b20109ull, 0x6f0b9ec3c2bac013ull, 0x6f59918485a380d8ull,
    0x71fcbec1d36bd721ull, 0x72103918fafe67c4ull, 0x741f4ec401e9be41ull, 0x766636e6882e5e61ull, 0x780afef50df22aecull,
    0x7874119b0c27ff41ull, 0x794d550d52c072f0ull, 0x7970140c615b3ec0ull, 0x7cbde1a78c51e1e7ull, 0x7d4207943b72da81ull,
    0x823b93195ce22287ull, 0x82f811e1df6207a8ull, 0x833f24e1df9e2a94ull, 0x841114b2ba768c5bull, 0x85f78c2265d1c822ull,
    0x86585b78dafe862aull, 0x86d8b4c248b5e6e7ull, 0x87f007c16ad4d3beull, 0x883442217fbc98d0ull, 0x8a0e3acd6594519dull,
    0x8a6e618cb14b8decull, 0x8a7f01dfbfa2cbd9ull, 0x8b1169c19dba67a3ull, 0x8b1e8b72046ac5c5ull, 0x8be7113b3996c368ull,
    0x8c2cf10da8936508ull, 0x8efc2aec6becd824ull, 0x8f78592eca34fdbeull, 0x8f786b2eca351c54ull, 0x8fc7b5e8e955a6d0ull,
    0x9017c03ddd79b8d0ull, 0x90240596edccdcb6ull, 0x90a51287d079ae3dull, 0x90a51c87d079bf3bull, 0x96b9a783b558336bull,
    0x96e1bc83b579a92eull, 0x972744f21c03f82eull, 0x972b1df21c079ec0ull, 0x9983c19cddaf8c17ull, 0x9ce4d5720e9c8f65ull,
    0x9e1e24c6c603c4f6ull, 0x9e3077d58a9d1ca4ull, 0x9fad3a90563e0eb2ull, 0x9fc92d9056567353ull, 0xa040d930428d9d0bull,
    0xa060da7df34834e5ull, 0xa086e77df3691a39ull, 0xa1fb3e16387c1d7bull, 0xa33b8bfd0330cd2dull, 0xa600bdc47c8a26f9ull,
    0xacc8e3e2a3f5412bull, 0xace725b12f0531bcull, 0xad57c77677aa55f7ull, 0xad615bab371474a4ull, 0xad7bd3c94e12fe3aull,
    0xadbdebb3a7afd2aaull, 0xadccba8c9810426bull, 0xaf28baafc3515a3eull, 0xaf28cdafc3517a87ull, 0xb008c7568aadc52full,
    0xb0e39aee97c28955ull, 0xb0e7a2146c2b067dull, 0xb4b0c4096e0b8a29ull, 0xb5047cfc5b926002ull, 0xb5e10f9978f625e5ull,
    0xb7c7d695940ebfa1ull, 0xb8210ef9b628a07aull, 0xb87a8e2282041022ull, 0xb8c1d375c591328dull, 0xb9e23d7612f1f318ull,
    0xbcade26125b68c6dull, 0xbcdc5e7ab13b0979ull, 0xbed4cc0dc4e48700ull, 0xbf3ae30dc53b6147ull, 0xbfdc150cec0b359full,
    0xc229487554ade637ull, 0xc3c3013572754e05ull, 0xc3dcbaef54596d99ull, 0xc49e76b3cd1b49caull, 0xc67c686c3068fd78ull,
    0xc9d6ad0f337627c1ull, 0xca0dc36757607e74ull, 0xccb0140da5465b54ull, 0xcd2fc69bc6affcf3ull, 0xcebf773f7411d2cbull,
    0xceee3322c6685a4full, 0xd1b0faa887a3e557ull, 0xd2a564c0e72fc107ull, 0xd4f05e18fab6aed4ull, 0xd5416718fafb1547ull,
    0xd5c2c895d63e7948ull, 0xd8e5f12f14feff90ull, 0xd989dac7034c5516ull, 0xd9c580106b6bcde8ull, 0xda318f8183047bb3ull,
    0xdc67280faa46160bull, 0xdc673d0faa4639baull, 0xdcb97d18fee001bdull, 0xdeda08a39d029499ull, 0xe0f0c58862cd1066ull,
    0xe41d01d8d5a51affull, 0xe60e2eb4589b6360ull, 0xe656b65f780fd901ull, 0xe7c34f08b3886fffull, 0xea2d692cb66004b4ull,
    0xecee11ea82312aafull, 0xed5ac26e8b08a1fbull, 0xed8e3dce93935921ull, 0xef315f7916a3110aull, 0xef90312d12e24840ull,
    0xf49dc49716c6bc37ull, 0xf77c6648b6ad222bull, 0xf9d157104b3071b9ull, 0xfe3cf07b497e1ed2ull, 0xfe3cfb7b497e3183ull,
    0xfe7d5781980b4357ull,
};

bool is_blocked_word(std::string_view w) {
  return std::binary_search(std::begin(kBlockedWordHashes), std::end(kBlockedWordHashes), fnv1a64(w));
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
    if (is_function_word(w) || is_blocked_word(w)) continue;
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
