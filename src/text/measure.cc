#include "text/measure.h"

#include <unicode/uchar.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "base/utf8.h"
#include "gguf/reader.h"
#include "tokenizer/tokenizer.h"

namespace cw::text {

const char* unit_name(Unit unit) {
  switch (unit) {
    case Unit::kTokens: return "tokens";
    case Unit::kChars: return "chars";
    case Unit::kBytes: return "bytes";
    case Unit::kWords: return "words";
  }
  return "?";
}

Result<Unit> parse_unit(std::string_view name) {
  if (name == "tokens" || name == "token") return Unit::kTokens;
  if (name == "chars" || name == "char") return Unit::kChars;
  if (name == "bytes" || name == "byte") return Unit::kBytes;
  if (name == "words" || name == "word") return Unit::kWords;
  return invalid_argument("unknown unit '" + std::string(name) + "' (valid: tokens, chars, bytes, words)");
}

// ---------------------------------------------------------------------------------------------------------
// UTF-8 helpers

int64_t count_utf8_chars_fast(const char* p, int64_t n) {
  // A code point starts at every byte that is not a continuation byte (0x80..0xBF == -128..-65 signed).
  int64_t count = 0;
  int64_t i = 0;
#if defined(__SSE2__)
  const __m128i limit = _mm_set1_epi8(-65);
  while (i + 16 <= n) {
    // Up to 255 blocks per 8-bit accumulator, then a horizontal sum.
    __m128i acc = _mm_setzero_si128();
    const int64_t blocks = std::min<int64_t>((n - i) / 16, 255);
    for (int64_t k = 0; k < blocks; ++k, i += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
      acc = _mm_sub_epi8(acc, _mm_cmpgt_epi8(v, limit));  // +1 per start byte
    }
    const __m128i sums = _mm_sad_epu8(acc, _mm_setzero_si128());
    count += _mm_cvtsi128_si64(sums) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(sums, sums));
  }
#endif
  const auto* s = reinterpret_cast<const signed char*>(p);
  for (; i < n; ++i) count += s[i] > -65;
  return count;
}

namespace {

// True when all of `s` is well-formed UTF-8 (ASCII fast path, 8 bytes at a time).
bool is_valid_utf8(std::string_view s) {
  const char* p = s.data();
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
#if defined(__SSE2__)
    while (i + 16 <= n &&
           _mm_movemask_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i))) == 0) {
      i += 16;
    }
    if (i == n) break;  // the block loop may end exactly at the end: never read p[n]
#endif
    if (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if ((w & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    if (static_cast<unsigned char>(p[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t len = utf8_valid_prefix_len(std::string_view(p + i, n - i));
    if (len == 0) return false;
    i += len;
  }
  return true;
}

// ASCII whitespace per Unicode White_Space: \t \n \v \f \r and space (plus U+0085 / U+00A0 etc. non-ASCII).
constexpr bool ascii_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

}  // namespace

int64_t count_words(std::string_view text) {
  int64_t words = 0;
  bool in_word = false;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    bool space;
    if (c < 0x80) {
      space = ascii_space(c);
      ++i;
    } else {
      const uint32_t cp = utf8_decode(text, i);
      space = cp != kInvalidCodepoint && u_isUWhiteSpace(static_cast<UChar32>(cp));
    }
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

// ---------------------------------------------------------------------------------------------------------
// DocText

DocText::DocText(std::string_view text) : text_(text) {
  valid_ = is_valid_utf8(text);
  if (!valid_) {
    starts_.assign(text.size() + 1, 0);
    size_t i = 0;
    while (i < text.size()) {
      starts_[i] = 1;
      utf8_decode(text, i);
    }
    starts_[text.size()] = 1;
  }
}

bool DocText::is_boundary(int64_t pos) const {
  if (pos <= 0 || pos >= size()) return true;
  if (valid_) return (static_cast<unsigned char>(text_[static_cast<size_t>(pos)]) & 0xC0) != 0x80;
  return starts_[static_cast<size_t>(pos)] != 0;
}

int64_t DocText::floor_boundary(int64_t pos) const {
  pos = std::clamp<int64_t>(pos, 0, size());
  while (!is_boundary(pos)) --pos;
  return pos;
}

int64_t DocText::ceil_boundary(int64_t pos) const {
  pos = std::clamp<int64_t>(pos, 0, size());
  while (!is_boundary(pos)) ++pos;
  return pos;
}

int64_t DocText::next_boundary(int64_t pos) const {
  if (pos >= size()) return size();
  ++pos;
  while (!is_boundary(pos)) ++pos;
  return pos;
}

int64_t DocText::count_chars(int64_t b, int64_t e) const {
  if (e <= b) return 0;
  if (valid_) return count_utf8_chars_fast(text_.data() + b, e - b);
  int64_t n = 0;
  for (int64_t i = b; i < e; ++i) n += starts_[static_cast<size_t>(i)];
  return n;
}

// ---------------------------------------------------------------------------------------------------------
// Sizers

namespace {

void boundary_cuts(const DocText& doc, int64_t b, int64_t e, std::vector<int64_t>& cuts) {
  for (int64_t p = doc.next_boundary(b); p < e; p = doc.next_boundary(p)) cuts.push_back(p);
}

// Galloping then bisection over code point boundaries, measuring with estimate() (exact for the default
// users: unmapped token vocabularies).
int64_t default_advance(const DocSizer& z, int64_t b, int64_t k) {
  const DocText& d = z.doc();
  const int64_t n = d.size();
  if (b >= n) return n;
  // Gallop from b; the rest of the document is measured only when the gallop reaches it, so one call
  // costs O(length of the answer), not O(rest of the document) (that made chunking quadratic).
  int64_t good = b, len = 16;
  int64_t bad = n;
  while (true) {
    if (b + len >= n) {
      if (z.estimate(b, n) <= k) return n;
      break;
    }
    const int64_t w = d.floor_boundary(b + len);
    if (w > good && z.estimate(b, w) > k) {
      bad = w;
      break;
    }
    good = std::max(good, w);
    len *= 2;
  }
  while (true) {  // good fits (or is b), bad does not; bisect on boundaries
    const int64_t mid = d.floor_boundary(good + (bad - good) / 2);
    if (mid <= good) {
      const int64_t nb = d.next_boundary(good);
      if (nb < bad && z.estimate(b, nb) <= k) {
        good = nb;
        continue;
      }
      return good;
    }
    if (z.estimate(b, mid) <= k) good = mid; else bad = mid;
  }
}

int64_t default_retreat(const DocSizer& z, int64_t e, int64_t k) {
  const DocText& d = z.doc();
  if (e <= 0) return 0;
  int64_t good = e, bad = 0, len = 16;  // gallop back from e (see default_advance)
  while (true) {
    if (e - len <= 0) {
      if (z.estimate(0, e) <= k) return 0;
      break;
    }
    const int64_t p = d.ceil_boundary(e - len);
    if (p < good && z.estimate(p, e) > k) {
      bad = p;
      break;
    }
    good = std::min(good, p);
    len *= 2;
  }
  while (true) {  // [good, e) fits, [bad, e) does not
    const int64_t mid = d.ceil_boundary(bad + (good - bad + 1) / 2);
    if (mid >= good) {
      const int64_t pb = d.floor_boundary(good - 1);
      if (good > 0 && pb > bad && z.estimate(pb, e) <= k) {
        good = pb;
        continue;
      }
      return good;
    }
    if (z.estimate(mid, e) <= k) good = mid; else bad = mid;
  }
}

bool is_space_at(std::string_view t, size_t i, size_t& next) {
  const auto c = static_cast<unsigned char>(t[i]);
  if (c < 0x80) {
    next = i + 1;
    return ascii_space(c);
  }
  next = i;
  const uint32_t cp = utf8_decode(t, next);
  return cp != kInvalidCodepoint && u_isUWhiteSpace(static_cast<UChar32>(cp));
}

class CharSizer final : public DocSizer {
 public:
  using DocSizer::DocSizer;
  int64_t min_units(int64_t n_bytes) const override { return (n_bytes + 3) / 4; }
  int64_t advance(int64_t b, int64_t k) const override {
    const DocText& d = doc();
    const int64_t n = d.size();
    if (!d.valid_utf8()) {
      int64_t w = b;
      for (int64_t i = 0; i < k && w < n; ++i) w = d.next_boundary(w);
      return w;
    }
    // Skip whole 16-byte blocks while they hold fewer code point starts than remain, then byte by byte.
    const char* p = d.text().data();
    int64_t w = b, left = k;
    while (w + 16 <= n) {
      const int64_t c = count_utf8_chars_fast(p + w, 16);
      if (c > left) break;
      // The block ends on a boundary only if the next byte starts a code point; the count still holds.
      left -= c;
      w += 16;
    }
    // w may sit inside a code point: continuation bytes there were counted with their start.
    while (w < n) {
      const bool start = (static_cast<unsigned char>(p[w]) & 0xC0) != 0x80;
      if (start) {
        if (left == 0) break;
        --left;
      }
      ++w;
    }
    return w;
  }
  int64_t retreat(int64_t e, int64_t k) const override {
    const DocText& d = doc();
    int64_t p = e;
    for (int64_t i = 0; i < k && p > 0; ++i) p = d.floor_boundary(p - 1);
    return p;
  }
  bool additive() const override { return true; }
  int64_t estimate(int64_t b, int64_t e) const override { return doc().count_chars(b, e); }
  int64_t exact(int64_t b, int64_t e) const override { return doc().count_chars(b, e); }
  bool estimate_is_exact() const override { return true; }
  void atom_cuts(int64_t b, int64_t e, std::vector<int64_t>& cuts) const override { boundary_cuts(doc(), b, e, cuts); }
};

class ByteSizer final : public DocSizer {
 public:
  using DocSizer::DocSizer;
  int64_t min_units(int64_t n_bytes) const override { return n_bytes; }
  int64_t advance(int64_t b, int64_t k) const override {
    return b + k >= doc().size() ? doc().size() : doc().floor_boundary(b + k);
  }
  int64_t retreat(int64_t e, int64_t k) const override { return e - k <= 0 ? 0 : doc().ceil_boundary(e - k); }
  bool additive() const override { return true; }
  int64_t estimate(int64_t b, int64_t e) const override { return e - b; }
  int64_t exact(int64_t b, int64_t e) const override { return e - b; }
  bool estimate_is_exact() const override { return true; }
  void atom_cuts(int64_t b, int64_t e, std::vector<int64_t>& cuts) const override { boundary_cuts(doc(), b, e, cuts); }
};

class WordSizer final : public DocSizer {
 public:
  using DocSizer::DocSizer;
  bool additive() const override { return false; }
  // The start of the (k+1)-th word of [b, ...) (a word cut by b counts), or the end.
  int64_t advance(int64_t b, int64_t k) const override {
    const std::string_view t = doc().text();
    int64_t words = 0;
    bool in_word = false;
    size_t i = static_cast<size_t>(b), next;
    while (i < t.size()) {
      const bool space = is_space_at(t, i, next);
      if (!space && !in_word) {
        if (words == k) return static_cast<int64_t>(i);
        ++words;
      }
      in_word = !space;
      i = next;
    }
    return doc().size();
  }
  // The start of the k-th word before e (a word cut by e counts).
  int64_t retreat(int64_t e, int64_t k) const override {
    if (k <= 0) return e;
    const DocText& d = doc();
    const std::string_view t = d.text();
    int64_t words = 0, p = e, start = e;
    bool in_word = false;
    while (p > 0) {
      const int64_t q = d.floor_boundary(p - 1);
      size_t next;
      const bool space = is_space_at(t, static_cast<size_t>(q), next);
      if (!space && !in_word) {
        if (words == k) break;
        ++words;
      }
      if (!space) start = q;
      in_word = !space;
      p = q;
    }
    return words == 0 ? e : start;
  }
  int64_t estimate(int64_t b, int64_t e) const override { return exact(b, e); }
  int64_t exact(int64_t b, int64_t e) const override {
    return count_words(doc().text().substr(static_cast<size_t>(b), static_cast<size_t>(e - b)));
  }
  bool estimate_is_exact() const override { return true; }
  // Word starts: a non-space code point after a space code point.
  void atom_cuts(int64_t b, int64_t e, std::vector<int64_t>& cuts) const override {
    const std::string_view t = doc().text();
    bool prev_space = false;
    size_t i = static_cast<size_t>(b);
    while (i < static_cast<size_t>(e)) {
      const size_t at = i;
      const auto c = static_cast<unsigned char>(t[i]);
      bool space;
      if (c < 0x80) {
        space = ascii_space(c);
        ++i;
      } else {
        const uint32_t cp = utf8_decode(t, i);
        space = cp != kInvalidCodepoint && u_isUWhiteSpace(static_cast<UChar32>(cp));
      }
      if (!space && prev_space && static_cast<int64_t>(at) > b) cuts.push_back(static_cast<int64_t>(at));
      prev_space = space;
    }
  }
};

class TokenMeasure;

// Token sizes. With a piece table whose concatenation reproduces the document, estimates count the
// document-level tokens starting in a range (binary search); otherwise (normalizing vocabularies such as
// WordPiece) every estimate is an exact encode and atoms are code points.
class TokenSizer final : public DocSizer {
 public:
  TokenSizer(const DocText& doc, const tok::Tokenizer& tok, const std::string& blob, const std::vector<uint32_t>& off,
             bool space_prefix, int64_t max_token_bytes)
      : DocSizer(doc), tok_(tok), max_token_bytes_(max_token_bytes) {
    const std::string_view t = doc.text();
    if (t.empty()) {
      mapped_ = true;
      return;
    }
    const std::vector<int32_t> ids = tok.encode(t, false, false);
    // Walk the pieces against the text. SPM may add one leading space to the first piece.
    int64_t pos = 0;
    int skip = space_prefix ? 1 : 0;
    starts_.reserve(ids.size());
    bool ok = true;
    for (size_t k = 0; k < ids.size() && ok; ++k) {
      const int32_t id = ids[k];
      if (id < 0 || static_cast<size_t>(id) + 1 >= off.size()) {
        ok = false;
        break;
      }
      std::string_view piece(blob.data() + off[static_cast<size_t>(id)],
                             off[static_cast<size_t>(id) + 1] - off[static_cast<size_t>(id)]);
      if (skip > 0 && !piece.empty()) {  // the space SPM prefixes to the text
        if (piece[0] != ' ') {
          ok = false;
          break;
        }
        piece.remove_prefix(1);
        skip = 0;
      }
      if (piece.empty()) continue;
      if (static_cast<size_t>(pos) + piece.size() > t.size()) {
        ok = false;
        break;
      }
      const char* a = t.data() + pos;  // pieces are short: an inline compare beats a memcmp call
      for (size_t q = 0; q < piece.size(); ++q) ok &= a[q] == piece[q];
      if (!ok) break;
      const int64_t s = doc.is_boundary(pos) ? pos : doc.ceil_boundary(pos);
      if (s < doc.size() && (starts_.empty() || starts_.back() != s)) starts_.push_back(s);
      pos += static_cast<int64_t>(piece.size());
    }
    mapped_ = ok && pos == doc.size();
    if (!mapped_) starts_.clear();
  }

  // A token stands for at most max_token_bytes_ bytes of the text (0: no such bound, e.g. WordPiece, whose
  // [UNK] may stand for a whole word).
  int64_t min_units(int64_t n_bytes) const override {
    // floor, not ceil: the estimate counts the tokens that START in the range, and the first token that
    // covers its start may begin before it.
    return max_token_bytes_ > 0 ? n_bytes / max_token_bytes_ : 0;
  }
  int64_t estimate(int64_t b, int64_t e) const override {
    if (!mapped_) return exact(b, e);
    if (e <= b) return 0;
    auto lo = std::lower_bound(starts_.begin(), starts_.end(), b);
    auto hi = std::lower_bound(lo, starts_.end(), e);
    // Tokens starting in the range: estimates of adjacent ranges add up to the document's token count, so
    // packing by estimates fills chunks; the exact count of a chunk's own text differs at its edges only.
    return hi - lo;
  }
  int64_t exact(int64_t b, int64_t e) const override {
    if (e <= b) return 0;
    return static_cast<int64_t>(
        tok_.encode(doc().text().substr(static_cast<size_t>(b), static_cast<size_t>(e - b)), false, false).size());
  }
  bool estimate_is_exact() const override { return false; }
  bool additive() const override { return false; }
  int64_t advance(int64_t b, int64_t k) const override {
    if (!mapped_) return default_advance(*this, b, k);
    const size_t idx = static_cast<size_t>(std::lower_bound(starts_.begin(), starts_.end(), b) - starts_.begin());
    return idx + static_cast<size_t>(k) >= starts_.size() ? doc().size() : starts_[idx + static_cast<size_t>(k)];
  }
  int64_t retreat(int64_t e, int64_t k) const override {
    if (!mapped_) return default_retreat(*this, e, k);
    const auto idx = std::lower_bound(starts_.begin(), starts_.end(), e) - starts_.begin();
    return idx - k <= 0 ? 0 : starts_[static_cast<size_t>(idx - k)];
  }
  void atom_cuts(int64_t b, int64_t e, std::vector<int64_t>& cuts) const override {
    if (!mapped_) {
      boundary_cuts(doc(), b, e, cuts);
      return;
    }
    auto it = std::upper_bound(starts_.begin(), starts_.end(), b);
    for (; it != starts_.end() && *it < e; ++it) cuts.push_back(*it);
  }

 private:
  const tok::Tokenizer& tok_;
  const int64_t max_token_bytes_;
  bool mapped_ = false;
  std::vector<int64_t> starts_;  // ascending code point boundaries where a document token starts
};

class SimpleMeasure final : public SizeMeasure {
 public:
  explicit SimpleMeasure(Unit unit) : SizeMeasure(unit, nullptr) {}
  int64_t measure(std::string_view text) const override {
    switch (unit()) {
      case Unit::kBytes: return static_cast<int64_t>(text.size());
      case Unit::kWords: return count_words(text);
      default: {
        DocText d(text);
        return d.count_chars(0, d.size());
      }
    }
  }
  std::unique_ptr<DocSizer> bind(const DocText& doc) const override {
    switch (unit()) {
      case Unit::kBytes: return std::make_unique<ByteSizer>(doc);
      case Unit::kWords: return std::make_unique<WordSizer>(doc);
      default: return std::make_unique<CharSizer>(doc);
    }
  }
};

class TokenMeasure final : public SizeMeasure {
 public:
  explicit TokenMeasure(std::shared_ptr<const tok::Tokenizer> t) : SizeMeasure(Unit::kTokens, std::move(t)) {
    const int32_t n = tokenizer()->n_vocab();
    off_.reserve(static_cast<size_t>(std::max(n, 0)) + 1);
    for (int32_t id = 0; id < n; ++id) {
      off_.push_back(static_cast<uint32_t>(blob_.size()));
      blob_ += tokenizer()->token_to_piece(id);
    }
    off_.push_back(static_cast<uint32_t>(blob_.size()));
    // SPM and byte-level BPE encode text bytes exactly: a token stands for its piece's bytes, or for one
    // code point (<= 4 bytes) as an unknown token. WordPiece normalizes, so it has no such bound.
    const std::string_view model = tokenizer()->model_name();
    if (model == "llama" || model == "gpt2") {
      max_token_bytes_ = 4;
      for (size_t i = 0; i + 1 < off_.size(); ++i)
        max_token_bytes_ = std::max<int64_t>(max_token_bytes_, off_[i + 1] - off_[i]);
    }
    // Does encode() prefix a space (SentencePiece add_space_prefix)? Probe with a plain letter.
    std::string probe;
    for (int32_t id : tokenizer()->encode("a", false, false)) probe += tokenizer()->token_to_piece(id);
    space_prefix_ = probe == " a";
  }
  int64_t measure(std::string_view text) const override {
    if (text.empty()) return 0;
    return static_cast<int64_t>(tokenizer()->encode(text, false, false).size());
  }
  std::unique_ptr<DocSizer> bind(const DocText& doc) const override {
    return std::make_unique<TokenSizer>(doc, *tokenizer(), blob_, off_, space_prefix_, max_token_bytes_);
  }

 private:
  std::string blob_;           // token_to_piece of every id, concatenated
  std::vector<uint32_t> off_;  // piece of id i: blob_[off_[i], off_[i + 1])
  bool space_prefix_ = false;
  int64_t max_token_bytes_ = 0;  // see TokenSizer::min_units
};

}  // namespace

std::shared_ptr<const SizeMeasure> SizeMeasure::make(Unit unit, std::shared_ptr<const tok::Tokenizer> tokenizer) {
  if (unit == Unit::kTokens) {
    CW_CHECK_MSG(tokenizer != nullptr, "unit=tokens needs a tokenizer");
    return std::make_shared<TokenMeasure>(std::move(tokenizer));
  }
  return std::make_shared<SimpleMeasure>(unit);
}

Result<std::shared_ptr<const SizeMeasure>> SizeMeasure::create(Unit unit, const std::string& tokenizer_path) {
  if (unit != Unit::kTokens) return make(unit);
  if (tokenizer_path.empty()) {
    return invalid_argument("unit=tokens needs tokenizer=FILE.gguf (a GGUF file with a vocabulary)");
  }
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const SizeMeasure>> cache;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(tokenizer_path);
    if (it != cache.end()) return it->second;
  }
  auto file = gguf::File::open(tokenizer_path);
  if (!file.is_ok()) {
    return Status(file.status().code(), "tokenizer '" + tokenizer_path + "': " + file.status().message());
  }
  auto tok = tok::Tokenizer::from_gguf(**file);
  if (!tok.is_ok()) {
    return Status(tok.status().code(), "tokenizer '" + tokenizer_path + "': " + tok.status().message());
  }
  std::shared_ptr<const tok::Tokenizer> shared(std::move(*tok).release());
  auto measure = make(Unit::kTokens, std::move(shared));
  std::lock_guard<std::mutex> lock(mu);
  cache.emplace(tokenizer_path, measure);
  return measure;
}

int64_t DocSizer::advance(int64_t b, int64_t k) const { return default_advance(*this, b, k); }
int64_t DocSizer::retreat(int64_t e, int64_t k) const { return default_retreat(*this, e, k); }

}  // namespace cw::text
