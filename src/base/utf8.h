// UTF-8 helpers. Invalid input is never an error here: decoders report how many bytes they consumed
// and callers decide (tokenizers fall back to bytes; JSON output substitutes U+FFFD).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cw {

// Length (1..4) of the well-formed UTF-8 sequence at the start of `s` (no overlongs, no surrogates,
// <= U+10FFFF), or 0 if `s` is empty or starts with an invalid / truncated sequence.
size_t utf8_valid_prefix_len(std::string_view s);

// Decodes one code point at s[i]; advances i. Invalid bytes decode as themselves (0x80..0xFF mapped to
// U+FFFD is *not* done): returns `kInvalidCodepoint` and advances by one byte.
constexpr uint32_t kInvalidCodepoint = 0xFFFFFFFFu;
uint32_t utf8_decode(std::string_view s, size_t& i);

// Appends the UTF-8 encoding of `cp` (must be <= 0x10FFFF).
void utf8_append(std::string& out, uint32_t cp);

// Number of code points, counting each invalid byte as one.
size_t utf8_count_codepoints(std::string_view s);

// Length (0..3) of the trailing bytes of `s` that start a well-formed UTF-8 sequence more bytes could
// still complete (e.g. 1 for "ab\xE2", 2 for "ab\xE2\x82"); 0 when `s` ends on a complete character or on
// bytes that no continuation can make valid. Streaming writers hold these bytes back until the next piece:
// byte-level tokens can carry a part of a character.
size_t utf8_incomplete_suffix_len(std::string_view s);

}  // namespace cw
