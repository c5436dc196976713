// Code-point classification and byte-level helpers for the tokenizers.
//
// What and why: the pre-tokenizers of llama.cpp-compatible vocabularies are specified as regexes over
// Unicode properties (\p{L}, \p{N}, \p{P}, \s). We implement them as hand-written scanners over a compact
// two-level table of per-code-point flags, built once (lazily, thread-safe) from ICU's u_charType. A
// lookup is two loads; ASCII is served from a 128-entry array.
//
// Thread-safety: all functions are safe to call concurrently.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cw::tok {

// Per-code-point flags. Exactly one category bit is set for every code point <= U+10FFFF; kWhitespace is
// the Unicode White_Space property (the set llama.cpp uses for `\s`), independent of the category.
enum CpFlags : uint8_t {
  kCpLetter = 1,       // \p{L}
  kCpNumber = 2,       // \p{N}
  kCpPunct = 4,        // \p{P}
  kCpSymbol = 8,       // \p{S}
  kCpMark = 16,        // \p{M}
  kCpSeparator = 32,   // \p{Z}
  kCpOther = 64,       // \p{C}: control, format, private use, surrogate, unassigned
  kCpWhitespace = 128, // White_Space
};

// Flags of `cp`; 0 for values above U+10FFFF. ASCII is answered inline from a constant table.
uint8_t cp_flags_slow(uint32_t cp);
inline uint8_t cp_flags(uint32_t cp);

// The replacement code point used to classify an invalid UTF-8 byte (its bytes are kept as they are).
constexpr uint32_t kReplacementCp = 0xFFFD;

// Decodes the code point at s[i] (i < s.size()) and returns its byte length (1..4). An invalid or truncated
// sequence yields kReplacementCp with length 1.
inline size_t decode_cp(std::string_view s, size_t i, uint32_t* cp);

// GPT-2 byte-level mapping: each byte 0..255 <-> one printable code point, as UTF-8 (1 or 2 bytes).
struct ByteLevel {
  std::array<std::string, 256> byte_to_utf8;  // byte -> encoded char
  // Inverse: encoded code point (< 0x200 covers all) -> byte, or -1.
  std::array<int16_t, 0x200> cp_to_byte;
};
const ByteLevel& byte_level();

// Appends the byte-level encoding of `bytes` to `out`.
void byte_level_encode(std::string_view bytes, std::string& out);
// Decodes a byte-level encoded token text back to bytes. Code points outside the mapping are copied
// through as their UTF-8 bytes.
std::string byte_level_decode(std::string_view text);

// ---- inline implementation ----

namespace detail {
constexpr uint8_t ascii_flags_of(uint32_t c) {
  if (c == ' ') return kCpSeparator | kCpWhitespace;
  if (c >= 0x09 && c <= 0x0D) return kCpOther | kCpWhitespace;
  if (c < 0x20 || c == 0x7F) return kCpOther;
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) return kCpLetter;
  if (c >= '0' && c <= '9') return kCpNumber;
  switch (c) {
    case '$': case '+': case '<': case '=': case '>': case '^': case '`': case '|': case '~':
      return kCpSymbol;
    default:
      return kCpPunct;
  }
}
struct AsciiFlags {
  uint8_t v[128];
  constexpr AsciiFlags() : v() {
    for (uint32_t c = 0; c < 128; ++c) v[c] = ascii_flags_of(c);
  }
};
inline constexpr AsciiFlags kAsciiFlags{};
}  // namespace detail

inline uint8_t cp_flags(uint32_t cp) { return cp < 128 ? detail::kAsciiFlags.v[cp] : cp_flags_slow(cp); }

inline size_t decode_cp(std::string_view s, size_t i, uint32_t* cp) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + i;
  const size_t avail = s.size() - i;
  const unsigned c = p[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if (c >= 0xC2 && c <= 0xDF) {
    if (avail >= 2 && (p[1] & 0xC0) == 0x80) {
      *cp = ((c & 0x1Fu) << 6) | (p[1] & 0x3Fu);
      return 2;
    }
  } else if (c >= 0xE0 && c <= 0xEF) {
    if (avail >= 3 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80) {
      uint32_t v = ((c & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
      if (v >= 0x800 && (v < 0xD800 || v > 0xDFFF)) {
        *cp = v;
        return 3;
      }
    }
  } else if (c >= 0xF0 && c <= 0xF4) {
    if (avail >= 4 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80) {
      uint32_t v = ((c & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
      if (v >= 0x10000 && v <= 0x10FFFF) {
        *cp = v;
        return 4;
      }
    }
  }
  *cp = kReplacementCp;
  return 1;
}

}  // namespace cw::tok
