#include "text/jsonl.h"

#include <array>
#include <charconv>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "base/utf8.h"

namespace cw::text {
namespace {

// 0: copy as is, 1: escape, 2: non-ASCII (validate unless known valid).
constexpr std::array<uint8_t, 256> make_classes() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[static_cast<size_t>(c)] = 1;
  t['"'] = 1;
  t['\\'] = 1;
  for (int c = 0x80; c < 0x100; ++c) t[static_cast<size_t>(c)] = 2;
  return t;
}
constexpr std::array<uint8_t, 256> kClass = make_classes();

void append_int(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

}  // namespace

void append_json_string(std::string& out, std::string_view s, bool known_valid) {
  out.push_back('"');
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  const uint8_t ok_hi = known_valid ? 2 : 0;  // class accepted as-is besides 0
  size_t i = 0;
  while (i < n) {
    size_t j = i;
#if defined(__SSE2__)
    // 16 bytes at a time: stop at a control byte, '"', '\\' or (unless known valid) a non-ASCII byte.
    {
      const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), ctl = _mm_set1_epi8(0x1F);
      const __m128i bias = _mm_set1_epi8(static_cast<char>(0x80));
      while (j + 16 <= n) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + j));
        // Unsigned v <= 0x1F  <=>  signed (v ^ 0x80) <= (0x1F ^ 0x80).
        const __m128i is_ctl = _mm_cmpgt_epi8(_mm_xor_si128(ctl, bias), _mm_xor_si128(v, bias));
        const __m128i is_ctl_eq = _mm_cmpeq_epi8(v, ctl);
        __m128i bad = _mm_or_si128(_mm_or_si128(is_ctl, is_ctl_eq),
                                   _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)));
        int mask = _mm_movemask_epi8(bad);
        if (!known_valid) mask |= _mm_movemask_epi8(v);  // high bit set: non-ASCII
        if (mask != 0) {
          j += static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
          break;
        }
        j += 16;
      }
    }
#endif
    while (j < n && (kClass[p[j]] == 0 || kClass[p[j]] == ok_hi)) ++j;
    out.append(s.data() + i, j - i);
    if (j >= n) break;
    const unsigned char c = p[j];
    if (kClass[c] == 1) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default: {
          static const char kHex[] = "0123456789abcdef";
          const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
          out.append(esc, 6);
        }
      }
      i = j + 1;
      continue;
    }
    const size_t len = utf8_valid_prefix_len(s.substr(j));
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      i = j + 1;
    } else {
      out.append(s.data() + j, len);
      i = j + len;
    }
  }
  out.push_back('"');
}

void append_chunk_jsonl(std::string& out, const Chunk& c, std::string_view input, bool with_text) {
  out += "{\"doc\":";
  append_json_string(out, c.doc);
  out += ",\"index\":";
  append_int(out, c.index);
  out += ",\"byte_begin\":";
  append_int(out, c.byte_begin);
  out += ",\"byte_end\":";
  append_int(out, c.byte_end);
  out += ",\"char_begin\":";
  append_int(out, c.char_begin);
  out += ",\"char_end\":";
  append_int(out, c.char_end);
  out += ",\"n_tokens\":";
  append_int(out, c.n_tokens);
  if (with_text) {
    out += ",\"text\":";
    append_json_string(out, c.text_in(input));
  }
  if (!c.headings.empty()) {
    out += ",\"headings\":[";
    for (size_t i = 0; i < c.headings.size(); ++i) {
      if (i) out.push_back(',');
      append_json_string(out, c.headings[i]);
    }
    out.push_back(']');
  }
  if (!c.kind.empty()) {
    out += ",\"kind\":";
    append_json_string(out, c.kind);
  }
  out += "}\n";
}

}  // namespace cw::text
