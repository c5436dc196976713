#include "base/json.h"

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "base/status.h"
#include "base/utf8.h"

namespace cw {

namespace {

// 0: copy as is, 1: escape, 2: non-ASCII (copied when it starts a valid UTF-8 sequence).
constexpr std::array<uint8_t, 256> make_classes() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[static_cast<size_t>(c)] = 1;
  t['"'] = 1;
  t['\\'] = 1;
  for (int c = 0x80; c < 0x100; ++c) t[static_cast<size_t>(c)] = 2;
  return t;
}
constexpr std::array<uint8_t, 256> kClass = make_classes();

}  // namespace

void json_append_string(std::string& out, std::string_view s) {
  out.push_back('"');
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    size_t j = i;
#if defined(__SSE2__)
    // 16 bytes at a time: stop at a control byte, '"', '\\' or a non-ASCII byte.
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
        const int mask = _mm_movemask_epi8(bad) | _mm_movemask_epi8(v);  // high bit set: non-ASCII
        if (mask != 0) {
          j += static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
          break;
        }
        j += 16;
      }
    }
#endif
    while (j < n && kClass[p[j]] == 0) ++j;
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
      out += "\xEF\xBF\xBD";  // U+FFFD for an invalid byte
      i = j + 1;
    } else {
      out.append(s.data() + j, len);
      i = j + len;
    }
  }
  out.push_back('"');
}

void JsonWriter::before_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back()) out_.push_back(',');
    first_.back() = false;
  }
}

JsonWriter& JsonWriter::begin_object() {
  before_value();
  out_.push_back('{');
  first_.push_back(true);
  return *this;
}
JsonWriter& JsonWriter::end_object() {
  CW_CHECK(!first_.empty());
  first_.pop_back();
  out_.push_back('}');
  return *this;
}
JsonWriter& JsonWriter::begin_array() {
  before_value();
  out_.push_back('[');
  first_.push_back(true);
  return *this;
}
JsonWriter& JsonWriter::end_array() {
  CW_CHECK(!first_.empty());
  first_.pop_back();
  out_.push_back(']');
  return *this;
}
JsonWriter& JsonWriter::key(std::string_view k) {
  CW_CHECK(!after_key_);
  before_value();
  json_append_string(out_, k);
  out_.push_back(':');
  after_key_ = true;
  return *this;
}
JsonWriter& JsonWriter::value(std::string_view s) {
  before_value();
  json_append_string(out_, s);
  return *this;
}
JsonWriter& JsonWriter::value(int64_t v) {
  before_value();
  out_ += std::to_string(v);
  return *this;
}
JsonWriter& JsonWriter::value(uint64_t v) {
  before_value();
  out_ += std::to_string(v);
  return *this;
}
JsonWriter& JsonWriter::value(double v) {
  before_value();
  if (!std::isfinite(v)) {
    out_ += "null";
    return *this;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  out_ += buf;
  return *this;
}
JsonWriter& JsonWriter::value(bool v) {
  before_value();
  out_ += v ? "true" : "false";
  return *this;
}
JsonWriter& JsonWriter::null() {
  before_value();
  out_ += "null";
  return *this;
}

}  // namespace cw
