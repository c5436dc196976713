#include "tokenizer/wpm.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/utf16.h>

#include <algorithm>

#include "base/utf8.h"
#include "tokenizer/unicode.h"

namespace cw::tok {
namespace {

constexpr std::string_view kWordPrefix = "\xE2\x96\x81";  // U+2581

// The first code point of the canonical decomposition of `cp` (cp itself when it has none).
uint32_t first_of_nfd(uint32_t cp) {
  if (cp < 0xC0) return cp;  // nothing below U+00C0 decomposes canonically
  static const UNormalizer2* nfd = [] {
    UErrorCode err = U_ZERO_ERROR;
    const UNormalizer2* n = unorm2_getNFDInstance(&err);
    return U_SUCCESS(err) ? n : nullptr;
  }();
  if (nfd == nullptr) return cp;
  UChar buf[32];
  UErrorCode err = U_ZERO_ERROR;
  const int32_t len = unorm2_getDecomposition(nfd, static_cast<UChar32>(cp), buf, 32, &err);
  if (U_FAILURE(err) || len <= 0) return cp;
  UChar32 first;
  int32_t i = 0;
  U16_NEXT(buf, i, len, first);
  return static_cast<uint32_t>(first);
}

// CJK ideograph blocks that BERT splits into single characters (the ranges of the original BERT
// tokenizer, with the Extension C/D boundary as Hugging Face's implementation has it).
bool is_cjk_ideograph(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// Calls word(std::string_view) for every word of `text`, in order.
template <typename Fn>
void for_words(std::string_view text, Fn word) {
  thread_local std::string cur;
  cur.clear();
  auto flush = [&] {
    if (!cur.empty()) word(std::string_view(cur));
    cur.clear();
  };
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    i += decode_cp(text, i, &cp);
    cp = first_of_nfd(cp);
    const uint8_t f = cp_flags(cp);
    if (f & kCpWhitespace) {
      flush();
      continue;
    }
    if (cp == 0 || cp == kReplacementCp || (f & kCpOther)) continue;
    const auto lower = static_cast<uint32_t>(u_tolower(static_cast<UChar32>(cp)));
    if ((f & kCpPunct) || (cp < 0x7F && (f & kCpSymbol)) || is_cjk_ideograph(cp)) {
      flush();
      utf8_append(cur, lower);
      flush();
    } else {
      utf8_append(cur, lower);
    }
  }
  flush();
}

}  // namespace

WpmEncoder::WpmEncoder(const Vocab& v) : v_(v) {
  for (const std::string& t : v.texts) max_token_bytes_ = std::max(max_token_bytes_, t.size());
}

std::vector<std::string> WpmEncoder::pre_tokenize(std::string_view text) {
  std::vector<std::string> out;
  for_words(text, [&](std::string_view w) { out.emplace_back(w); });
  return out;
}

void WpmEncoder::encode(std::string_view text, std::vector<int32_t>& out) const {
  thread_local std::string word;
  for_words(text, [&](std::string_view w) {
    word.assign(kWordPrefix);
    word.append(w);
    encode_word(word, out);
  });
}

void WpmEncoder::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  const size_t before = out.size();
  const size_t n = word.size();
  for (size_t i = 0; i < n;) {
    int32_t id = -1;
    size_t j = std::min(n, i + max_token_bytes_);
    for (; j > i; --j) {
      id = v_.index.find(word.substr(i, j - i));
      if (id >= 0) break;
    }
    if (id < 0) {  // an unmatched rest: the whole word is unknown
      out.resize(before);
      break;
    }
    out.push_back(id);
    i = j;
  }
  if (out.size() == before && v_.unk >= 0) out.push_back(v_.unk);
}

}  // namespace cw::tok
