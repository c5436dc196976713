#include "tokenizer/unicode.h"

#include <unicode/uchar.h>

#include <map>
#include <string>
#include <memory>
#include <vector>

#include "base/utf8.h"

namespace cw::tok {
namespace {

constexpr uint32_t kMaxCp = 0x110000;
constexpr uint32_t kBlockBits = 8;
constexpr uint32_t kBlockSize = 1u << kBlockBits;
constexpr uint32_t kNumBlocks = kMaxCp >> kBlockBits;  // 4352

bool is_white_space(uint32_t cp) {
  // Unicode White_Space (PropList.txt); the same set llama.cpp treats as `\s`.
  if (cp >= 0x09 && cp <= 0x0D) return true;
  if (cp >= 0x2000 && cp <= 0x200A) return true;
  switch (cp) {
    case 0x20: case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
      return true;
    default:
      return false;
  }
}

uint8_t compute_flags(uint32_t cp) {
  uint8_t f = 0;
  switch (u_charType(static_cast<UChar32>(cp))) {
    case U_UPPERCASE_LETTER: case U_LOWERCASE_LETTER: case U_TITLECASE_LETTER: case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
      f = kCpLetter;
      break;
    case U_DECIMAL_DIGIT_NUMBER: case U_LETTER_NUMBER: case U_OTHER_NUMBER:
      f = kCpNumber;
      break;
    case U_CONNECTOR_PUNCTUATION: case U_DASH_PUNCTUATION: case U_START_PUNCTUATION: case U_END_PUNCTUATION:
    case U_INITIAL_PUNCTUATION: case U_FINAL_PUNCTUATION: case U_OTHER_PUNCTUATION:
      f = kCpPunct;
      break;
    case U_MATH_SYMBOL: case U_CURRENCY_SYMBOL: case U_MODIFIER_SYMBOL: case U_OTHER_SYMBOL:
      f = kCpSymbol;
      break;
    case U_NON_SPACING_MARK: case U_ENCLOSING_MARK: case U_COMBINING_SPACING_MARK:
      f = kCpMark;
      break;
    case U_SPACE_SEPARATOR: case U_LINE_SEPARATOR: case U_PARAGRAPH_SEPARATOR:
      f = kCpSeparator;
      break;
    default:
      f = kCpOther;
      break;
  }
  if (is_white_space(cp)) f |= kCpWhitespace;
  return f;
}

struct CpTable {
  std::vector<uint16_t> stage1;  // [kNumBlocks] block index
  std::vector<uint8_t> stage2;   // [n_unique_blocks * kBlockSize]
};

const CpTable& cp_table() {
  static const CpTable* table = [] {
    auto* t = new CpTable;
    t->stage1.resize(kNumBlocks);
    std::map<std::string, uint16_t> unique;
    std::string block(kBlockSize, '\0');
    for (uint32_t b = 0; b < kNumBlocks; ++b) {
      for (uint32_t k = 0; k < kBlockSize; ++k) block[k] = static_cast<char>(compute_flags((b << kBlockBits) | k));
      auto [it, inserted] = unique.emplace(block, static_cast<uint16_t>(unique.size()));
      if (inserted) t->stage2.insert(t->stage2.end(), block.begin(), block.end());
      t->stage1[b] = it->second;
    }
    return t;
  }();
  return *table;
}

}  // namespace

uint8_t cp_flags_slow(uint32_t cp) {
  if (cp < 128) return detail::kAsciiFlags.v[cp];
  if (cp >= kMaxCp) return 0;
  const CpTable& t = cp_table();
  return t.stage2[(static_cast<size_t>(t.stage1[cp >> kBlockBits]) << kBlockBits) | (cp & (kBlockSize - 1))];
}

const ByteLevel& byte_level() {
  static const ByteLevel* bl = [] {
    auto* b = new ByteLevel;
    b->cp_to_byte.fill(-1);
    uint32_t next = 256;
    for (uint32_t byte = 0; byte < 256; ++byte) {
      const bool printable = (byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) || byte >= 0xAE;
      uint32_t cp = printable ? byte : next++;
      utf8_append(b->byte_to_utf8[byte], cp);
      b->cp_to_byte[cp] = static_cast<int16_t>(byte);
    }
    return b;
  }();
  return *bl;
}

void byte_level_encode(std::string_view bytes, std::string& out) {
  const ByteLevel& bl = byte_level();
  for (unsigned char c : bytes) out += bl.byte_to_utf8[c];
}

std::string byte_level_decode(std::string_view text) {
  const ByteLevel& bl = byte_level();
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    uint32_t cp;
    size_t n = decode_cp(text, i, &cp);
    const bool valid = !(n == 1 && cp == kReplacementCp);
    if (valid && cp < bl.cp_to_byte.size() && bl.cp_to_byte[cp] >= 0) {
      out.push_back(static_cast<char>(bl.cp_to_byte[cp]));
    } else {
      out.append(text.substr(i, n));
    }
    i += n;
  }
  return out;
}

}  // namespace cw::tok
