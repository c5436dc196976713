// Hand-written scanners equivalent to the pre-tokenizer regexes of llama.cpp-compatible vocabularies.
// Each stage works on one piece [b, e) of a decoded code-point array and emits the end indices of its
// sub-pieces (matches and the gaps between them), exactly as a leftmost-first regex search would.
#include "tokenizer/pretokenizer.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "tokenizer/unicode.h"

namespace cw::tok {
namespace {

constexpr uint32_t kEnd = 0xFFFFFFFFu;
constexpr uint8_t kWs = kCpWhitespace;
constexpr uint8_t kL = kCpLetter;
constexpr uint8_t kN = kCpNumber;

struct View {
  const uint32_t* cp;
  const uint8_t* fl;
};

// Collects piece ends; ignores empty pieces.
struct Cuts {
  std::vector<uint32_t>* out;
  size_t prev;
  inline __attribute__((always_inline)) void emit(size_t end) {
    if (end > prev) {
      out->push_back(static_cast<uint32_t>(end));
      prev = end;
    }
  }
  inline __attribute__((always_inline)) void match(size_t s, size_t e) {
    emit(s);  // the gap before the match, if any
    emit(e);
  }
};

inline uint32_t ascii_lower(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// 's|'t|'re|'ve|'m|'ll|'d (optionally case-insensitive); returns the match length or 0.
inline size_t contraction_len(const View& v, size_t pos, size_t e, bool icase) {
  if (v.cp[pos] != '\'' || pos + 1 >= e) return 0;
  uint32_t n1 = icase ? ascii_lower(v.cp[pos + 1]) : v.cp[pos + 1];
  if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') return 2;
  if (pos + 2 >= e) return 0;
  uint32_t n2 = icase ? ascii_lower(v.cp[pos + 2]) : v.cp[pos + 2];
  if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) return 3;
  return 0;
}

template <typename Sink>
void stage_gpt2(const View& v, size_t b, size_t e, Sink& c) {
  auto fl = [&](size_t p) -> uint8_t { return p < e ? v.fl[p] : 0; };
  size_t pos = b;
  while (pos < e) {
    const uint32_t cpt = v.cp[pos];
    const uint8_t f = v.fl[pos];
    if (size_t n = contraction_len(v, pos, e, false)) {
      pos += n;
      c.emit(pos);
      continue;
    }
    const bool sp = cpt == ' ';
    const uint8_t f2 = sp ? fl(pos + 1) : f;
    if (f2 & kL) {  // ' ?\p{L}+'
      pos += sp;
      while (fl(pos) & kL) ++pos;
      c.emit(pos);
      continue;
    }
    if (f2 & kN) {  // ' ?\p{N}+'
      pos += sp;
      while (fl(pos) & kN) ++pos;
      c.emit(pos);
      continue;
    }
    if (!(f2 & (kWs | kL | kN)) && f2) {  // ' ?[^\s\p{L}\p{N}]+'
      pos += sp;
      for (uint8_t g = fl(pos); !(g & (kWs | kL | kN)) && g; g = fl(pos)) ++pos;
      c.emit(pos);
      continue;
    }
    size_t nws = 0;
    while (fl(pos + nws) & kWs) ++nws;
    if (nws > 1 && pos + nws < e) {  // '\s+(?!\S)'
      pos += nws - 1;
      c.emit(pos);
      continue;
    }
    if (nws > 0) {  // '\s+'
      pos += nws;
      c.emit(pos);
      continue;
    }
    c.emit(++pos);
  }
}

template <typename Sink>
void stage_llama3(const View& v, size_t b, size_t e, Sink& c, size_t max_digits) {
  auto fl = [&](size_t p) -> uint8_t { return p < e ? v.fl[p] : 0; };
  auto cp = [&](size_t p) -> uint32_t { return p < e ? v.cp[p] : kEnd; };
  size_t pos = b;
  while (pos < e) {
    const uint32_t cpt = v.cp[pos];
    const uint8_t f = v.fl[pos];
    if (size_t n = contraction_len(v, pos, e, true)) {
      pos += n;
      c.emit(pos);
      continue;
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!(cpt == '\r' || cpt == '\n' || (f & kN))) {
      if ((f & kL) || (fl(pos + 1) & kL)) {
        ++pos;
        while (fl(pos) & kL) ++pos;
        c.emit(pos);
        continue;
      }
    }
    // \p{N}{1,max_digits}
    if (f & kN) {
      size_t ini = pos;
      while (fl(pos) & kN) {
        if (++pos - ini >= max_digits) {
          c.emit(pos);
          ini = pos;
        }
      }
      c.emit(pos);
      continue;
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    const bool sp = cpt == ' ';
    uint8_t f2 = sp ? fl(pos + 1) : f;
    if (!(f2 & (kWs | kL | kN)) && f) {
      pos += sp;
      while (!(f2 & (kWs | kL | kN)) && f2) f2 = fl(++pos);
      uint32_t c2 = cp(pos);
      while (c2 == '\r' || c2 == '\n') c2 = cp(++pos);
      c.emit(pos);
      continue;
    }
    size_t nws = 0;
    size_t last_crlf_end = 0;
    while (fl(pos + nws) & kWs) {
      uint32_t c2 = v.cp[pos + nws];
      if (c2 == '\r' || c2 == '\n') last_crlf_end = pos + nws + 1;
      ++nws;
    }
    if (last_crlf_end > 0) {  // '\s*[\r\n]+'
      pos = last_crlf_end;
      c.emit(pos);
      continue;
    }
    if (nws > 1 && pos + nws < e) {  // '\s+(?!\S)'
      pos += nws - 1;
      c.emit(pos);
      continue;
    }
    if (nws > 0) {  // '\s+'
      pos += nws;
      c.emit(pos);
      continue;
    }
    c.emit(++pos);
  }
}

// Runs of `pred` code points, optionally preceded by one whitespace: '\s?[class]+' or '[class]+'.
template <typename Pred>
void scan_runs(const View& v, size_t b, size_t e, Cuts& c, bool ws_prefix, Pred pred) {
  size_t i = b;
  while (i < e) {
    size_t s = i;
    if (pred(i)) {
      ++i;
    } else if (ws_prefix && (v.fl[i] & kWs) && i + 1 < e && pred(i + 1)) {
      i += 2;
    } else {
      ++i;
      continue;
    }
    while (i < e && pred(i)) ++i;
    c.match(s, i);
  }
  c.emit(e);
}

// Each `pred` code point is its own piece.
template <typename Pred>
void scan_each(size_t b, size_t e, Cuts& c, Pred pred) {
  for (size_t i = b; i < e; ++i)
    if (pred(i)) c.match(i, i + 1);
  c.emit(e);
}

struct Range {
  uint32_t lo, hi;
};

// deepseek-llm's letter class (cased letters, as published in its tokenizer.json).
constexpr Range kDsLetterRanges[] = {
    {0x41, 0x5A},       {0x61, 0x7A},       {0xB5, 0xB5},       {0xC0, 0xD6},       {0xD8, 0xF6},
    {0xF8, 0x1BA},      {0x1BC, 0x1BF},     {0x1C4, 0x293},     {0x295, 0x2AF},     {0x370, 0x373},
    {0x376, 0x377},     {0x37B, 0x37D},     {0x37F, 0x37F},     {0x386, 0x386},     {0x388, 0x38A},
    {0x38C, 0x38C},     {0x38E, 0x3A1},     {0x3A3, 0x3F5},     {0x3F7, 0x481},     {0x48A, 0x52F},
    {0x531, 0x556},     {0x10A0, 0x10C5},   {0x13A0, 0x13F5},   {0x13F8, 0x13FD},   {0x1C90, 0x1CBA},
    {0x1CBD, 0x1CBF},   {0x1D00, 0x1D2B},   {0x1D6B, 0x1D77},   {0x1D79, 0x1D9A},   {0x1E00, 0x1F15},
    {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},   {0x1F48, 0x1F4D},   {0x1F50, 0x1F57},   {0x1F59, 0x1F59},
    {0x1F5B, 0x1F5B},   {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},   {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},   {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},   {0x1FD6, 0x1FDB},
    {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},   {0x2102, 0x2102},   {0x2107, 0x2107},
    {0x210A, 0x2113},   {0x2115, 0x2115},   {0x2119, 0x211D},   {0x2124, 0x2124},   {0x2126, 0x2126},
    {0x2128, 0x2128},   {0x212A, 0x212D},   {0x212F, 0x2134},   {0x2139, 0x2139},   {0x213C, 0x213F},
    {0x2145, 0x2149},   {0x214E, 0x214E},   {0x2183, 0x2184},   {0x2C00, 0x2C7B},   {0x2C7E, 0x2CE4},
    {0x2CEB, 0x2CEE},   {0x2CF2, 0x2CF3},   {0xA640, 0xA66D},   {0xA680, 0xA69B},   {0xA722, 0xA76F},
    {0xA771, 0xA787},   {0xA78B, 0xA78E},   {0xAB70, 0xABBF},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},
    {0xFF21, 0xFF3A},   {0xFF41, 0xFF5A},   {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};

bool ds_letter(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z');
  const Range* end = std::end(kDsLetterRanges);
  const Range* it = std::upper_bound(std::begin(kDsLetterRanges), end, cp,
                                     [](uint32_t x, const Range& r) { return x < r.lo; });
  return it != std::begin(kDsLetterRanges) && cp <= (it - 1)->hi;
}

// [!-/:-~！-／：-～‘-‟　-。]; U+3000 is whitespace, which llama.cpp hides from non-\p regexes.
bool ds_punct(uint32_t cp) {
  return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x7E) || (cp >= 0xFF01 && cp <= 0xFF0F) ||
         (cp >= 0xFF1A && cp <= 0xFF5E) || (cp >= 0x2018 && cp <= 0x201F) || (cp >= 0x3001 && cp <= 0x3002);
}

// [一-龥ࠀ-一가-퟿] minus whitespace (see ds_punct).
bool cjk(uint32_t cp, uint8_t fl) {
  return ((cp >= 0x800 && cp <= 0x9FA5) || (cp >= 0xAC00 && cp <= 0xD7FF)) && !(fl & kWs);
}

bool punct_symbol(uint32_t cp, uint8_t fl, bool backtick) {
  if (fl & kCpPunct) return true;
  switch (cp) {
    case '$': case '+': case '<': case '=': case '>': case '^': case '~': case '|':
      return true;
    case '`':
      return backtick;
    default:
      return false;
  }
}

template <typename Fn>
inline __attribute__((always_inline)) void for_pieces(const std::vector<uint32_t>& in, Cuts& c, Fn fn) {
  size_t b = 0;
  for (uint32_t e : in) {
    c.prev = b;
    fn(b, static_cast<size_t>(e));
    b = e;
  }
}

inline __attribute__((always_inline)) void run_stage_piece(PreStage s, const View& v, size_t b, size_t e,
                                                           Cuts& c) {
  switch (s) {
    case PreStage::kGpt2:
      return stage_gpt2(v, b, e, c);
    case PreStage::kLlama3:
      return stage_llama3(v, b, e, c, 3);
    case PreStage::kQwen2:
      return stage_llama3(v, b, e, c, 1);
    case PreStage::kEachCrLf:
      return scan_each(b, e, c, [&](size_t i) { return v.cp[i] == '\r' || v.cp[i] == '\n'; });
    case PreStage::kDsLetters:
      return scan_runs(v, b, e, c, true, [&](size_t i) { return ds_letter(v.cp[i]); });
    case PreStage::kDsPunct:
      return scan_runs(v, b, e, c, true, [&](size_t i) { return ds_punct(v.cp[i]); });
    case PreStage::kTrailingSpace: {
      size_t t = e;
      while (t > b && (v.fl[t - 1] & kWs)) --t;
      c.match(t, e);
      return;
    }
    case PreStage::kCjk:
      return scan_runs(v, b, e, c, false, [&](size_t i) { return cjk(v.cp[i], v.fl[i]); });
    case PreStage::kNumberRun:
      return scan_runs(v, b, e, c, false, [&](size_t i) { return (v.fl[i] & kN) != 0; });
    case PreStage::kEachNumber:
      return scan_each(b, e, c, [&](size_t i) { return (v.fl[i] & kN) != 0; });
    case PreStage::kSpaceLetters:
      return scan_runs(v, b, e, c, true, [&](size_t i) { return (v.fl[i] & kL) != 0; });
    case PreStage::kSpacePunct:
      return scan_runs(v, b, e, c, true, [&](size_t i) { return (v.fl[i] & kCpPunct) != 0; });
    case PreStage::kPunctSymbols:
      return scan_runs(v, b, e, c, false, [&](size_t i) { return punct_symbol(v.cp[i], v.fl[i], true); });
    case PreStage::kPunctSymbolsNoBacktick:
      return scan_runs(v, b, e, c, false, [&](size_t i) { return punct_symbol(v.cp[i], v.fl[i], false); });
    case PreStage::kDigits3: {
      auto digit = [&](size_t i) { return v.cp[i] >= '0' && v.cp[i] <= '9'; };
      size_t i = b;
      while (i < e) {
        if (i + 2 < e && digit(i) && digit(i + 1) && digit(i + 2)) {
          c.match(i, i + 3);
          i += 3;
        } else {
          ++i;
        }
      }
      c.emit(e);
      return;
    }
  }
}

// Applies stage `s` to every piece of `in`; the switch is hoisted out of the loop over pieces.
void run_stage(PreStage s, const View& v, const std::vector<uint32_t>& in, Cuts& c) {
  switch (s) {
#define CW_STAGE_CASE(K) \
  case PreStage::K:      \
    return for_pieces(in, c, [&](size_t b, size_t e) { run_stage_piece(PreStage::K, v, b, e, c); });
    CW_STAGE_CASE(kGpt2)
    CW_STAGE_CASE(kLlama3)
    CW_STAGE_CASE(kQwen2)
    CW_STAGE_CASE(kEachCrLf)
    CW_STAGE_CASE(kDsLetters)
    CW_STAGE_CASE(kDsPunct)
    CW_STAGE_CASE(kTrailingSpace)
    CW_STAGE_CASE(kCjk)
    CW_STAGE_CASE(kNumberRun)
    CW_STAGE_CASE(kEachNumber)
    CW_STAGE_CASE(kSpaceLetters)
    CW_STAGE_CASE(kSpacePunct)
    CW_STAGE_CASE(kPunctSymbols)
    CW_STAGE_CASE(kPunctSymbolsNoBacktick)
    CW_STAGE_CASE(kDigits3)
#undef CW_STAGE_CASE
  }
}


// ---- Multi-stage pipelines in one buffer of cut flags ----
//
// The staged algorithm above materialises every stage's pieces and rescans all code points once per stage.
// Multi-stage families instead keep one flag per boundary (cut[i]: a piece starts at code point i) and
// apply each stage as a pass over small per-code-point class bytes: every stage only adds cuts (it
// refines the pieces of the previous one), and for the run-like stages whether a cut is added at i depends
// only on the classes around i and on the previous stages' cuts at i and i + 1, so those passes are
// branch-free loops over bytes. Only the stages that need the full regex logic (gpt2, llama3, qwen2) and
// the two piece-anchored ones (\s+$, [0-9]{3}) walk the pieces. The result is identical to the staged
// algorithm (split_staged(); the tests compare them on random and real text).

// Class byte: bit k = the predicate of stage k (k < kMaxFlagStages), bit 7 = \s.
constexpr size_t kMaxFlagStages = 7;
constexpr uint8_t kClsWs = 0x80;

bool stage_pred(PreStage st, uint32_t cp, uint8_t fl) {
  switch (st) {
    case PreStage::kEachCrLf:
      return cp == '\r' || cp == '\n';
    case PreStage::kDsLetters:
      return ds_letter(cp);
    case PreStage::kDsPunct:
      return ds_punct(cp);
    case PreStage::kCjk:
      return cjk(cp, fl);
    case PreStage::kNumberRun:
    case PreStage::kEachNumber:
      return (fl & kN) != 0;
    case PreStage::kSpaceLetters:
      return (fl & kL) != 0;
    case PreStage::kSpacePunct:
      return (fl & kCpPunct) != 0;
    case PreStage::kPunctSymbols:
      return punct_symbol(cp, fl, true);
    case PreStage::kPunctSymbolsNoBacktick:
      return punct_symbol(cp, fl, false);
    case PreStage::kDigits3:
      return cp >= '0' && cp <= '9';
    case PreStage::kGpt2:
    case PreStage::kLlama3:
    case PreStage::kQwen2:
    case PreStage::kTrailingSpace:
      return false;
  }
  return false;
}

uint8_t class_of(const PreStage* st, size_t n_st, uint32_t cp, uint8_t fl) {
  uint8_t c = (fl & kWs) ? kClsWs : 0;
  for (size_t k = 0; k < n_st; ++k) c |= static_cast<uint8_t>(stage_pred(st[k], cp, fl)) << k;
  return c;
}

struct FlagSink {
  uint8_t* cut;
  inline __attribute__((always_inline)) void emit(size_t end) { cut[end] = 1; }
  inline __attribute__((always_inline)) void match(size_t s, size_t e) {
    cut[s] = 1;
    cut[e] = 1;
  }
};

// cls[-1] and cls[n] are readable zeros; cut[0] = cut[n] = 1.
void flag_stage(PreStage st, uint8_t bit, const View& v, const uint8_t* cls, uint8_t* cut, size_t n) {
  switch (st) {
    case PreStage::kEachCrLf:
    case PreStage::kEachNumber:  // each match is one code point: cuts on both sides
      for (size_t i = 1; i < n; ++i) cut[i] |= ((cls[i - 1] | cls[i]) & bit) != 0;
      return;
    case PreStage::kCjk:
    case PreStage::kNumberRun:
    case PreStage::kPunctSymbols:
    case PreStage::kPunctSymbolsNoBacktick:  // maximal runs: cuts where the class changes
      for (size_t i = 1; i < n; ++i) cut[i] |= ((cls[i - 1] ^ cls[i]) & bit) != 0;
      return;
    case PreStage::kDsLetters:
    case PreStage::kDsPunct:
    case PreStage::kSpaceLetters:
    case PreStage::kSpacePunct:
      // '\s?[class]+' (no class member is \s): a run ends at i; a run starts at i and takes no \s
      // prefix; or i is a \s that prefixes a run starting at i + 1 in the same piece (no old cut there).
      for (size_t i = 1; i < n; ++i) {
        const uint8_t c0 = cls[i - 1], c1 = cls[i], c2 = cls[i + 1];
        const bool p0 = c0 & bit, p1 = c1 & bit, p2 = c2 & bit;
        const bool w0 = c0 & kClsWs, w1 = c1 & kClsWs;
        const bool end = p0 & !p1;
        const bool start = p1 & !p0 & !w0;
        const bool prefix = w1 & !p1 & p2 & !cut[i + 1];
        cut[i] |= end | start | prefix;
      }
      return;
    case PreStage::kTrailingSpace: {
      // '\s+$' per piece: walking backwards, `tail` is true while every code point since the piece end is
      // \s; the first other code point ends the trailing run.
      bool tail = true;
      for (size_t i = n; i-- > 0;) {
        const bool other = !(cls[i] & kClsWs);
        cut[i + 1] |= tail & other;
        tail = (tail & !other) | (cut[i] != 0);
      }
      return;
    }
    case PreStage::kDigits3: {
      // [0-9]{3}, leftmost, non-overlapping, within each piece.
      size_t run = 0;
      for (size_t i = 0; i < n; ++i) {
        if (cut[i]) run = 0;
        if (!(cls[i] & bit)) {
          run = 0;
          continue;
        }
        if (++run == 3) {
          cut[i - 2] = 1;
          cut[i + 1] = 1;
          run = 0;
        }
      }
      return;
    }
    case PreStage::kGpt2:
    case PreStage::kLlama3:
    case PreStage::kQwen2: {
      FlagSink sink{cut};
      size_t b = 0;
      while (b < n) {
        const auto* next = static_cast<const uint8_t*>(std::memchr(cut + b + 1, 1, n - b));
        const size_t e = static_cast<size_t>(next - cut);
        if (st == PreStage::kGpt2) {
          stage_gpt2(v, b, e, sink);
        } else {
          stage_llama3(v, b, e, sink, st == PreStage::kLlama3 ? 3 : 1);
        }
        b = e;
      }
      return;
    }
  }
}

struct Family {
  const char* names;  // '|'-separated aliases
  std::vector<PreStage> stages;
  bool ignore_merges;
};

const std::vector<Family>& families() {
  using S = PreStage;
  static const std::vector<Family> f = {
      {"default", {S::kPunctSymbolsNoBacktick, S::kGpt2, S::kNumberRun, S::kDigits3}, false},
      {"gpt-2|gpt2|mpt|gpt-neox|olmo|phi-2|jais|roberta-bpe|jina-es|jina-de|jina-v1-en|jina-v2-es|jina-v2-de|"
       "jina-v2-code|gigachat|trillion",
       {S::kGpt2},
       false},
      {"starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b", {S::kEachNumber, S::kGpt2}, false},
      {"llama-bpe|llama3|llama-v3|falcon3|pixtral", {S::kLlama3}, true},
      {"dbrx|smaug-bpe", {S::kLlama3}, false},
      {"qwen2|deepseek-r1-qwen|megrez", {S::kQwen2}, false},
      {"deepseek-llm",
       {S::kEachCrLf, S::kDsLetters, S::kDsPunct, S::kTrailingSpace, S::kCjk, S::kNumberRun},
       false},
      {"deepseek-coder", {S::kEachCrLf, S::kSpaceLetters, S::kSpacePunct, S::kCjk, S::kEachNumber}, false},
      {"falcon", {S::kPunctSymbols, S::kGpt2, S::kDigits3}, false},
  };
  return f;
}

bool has_alias(std::string_view names, std::string_view name) {
  size_t p = 0;
  while (p <= names.size()) {
    size_t q = names.find('|', p);
    if (q == std::string_view::npos) q = names.size();
    if (names.substr(p, q - p) == name) return true;
    p = q + 1;
  }
  return false;
}

struct Scratch {
  std::vector<uint32_t> cp;
  std::vector<uint8_t> fl;
  std::vector<uint32_t> off;
  std::vector<uint32_t> cuts, next;
  std::vector<uint8_t> cls;  // [n + 2]: cls[0] and cls[n + 1] are padding
  std::vector<uint8_t> cut;  // [n + 8]
};

}  // namespace

Result<std::unique_ptr<PreTokenizer>> PreTokenizer::create(std::string_view pre_name) {
  std::string_view name = pre_name.empty() ? std::string_view("default") : pre_name;
  for (const Family& f : families()) {
    if (has_alias(f.names, name)) return std::make_unique<PreTokenizer>(f.stages, f.ignore_merges);
  }
  return unimplemented("unsupported pre-tokenizer tokenizer.ggml.pre='" + std::string(pre_name) +
                       "'; supported: " + supported_names());
}

std::string PreTokenizer::supported_names() {
  std::string out;
  for (const Family& f : families()) {
    for (char ch : std::string_view(f.names)) {
      if (ch == '|') {
        out += ", ";
      } else {
        out.push_back(ch);
      }
    }
    if (&f != &families().back()) out += ", ";
  }
  return out;
}

PreTokenizer::PreTokenizer(std::vector<PreStage> stages, bool ignore_merges)
    : stages_(std::move(stages)), ignore_merges_(ignore_merges) {
  use_flags_ = stages_.size() > 1 && stages_.size() <= kMaxFlagStages;
  if (use_flags_) {
    for (uint32_t c = 0; c < 128; ++c)
      ascii_cls_[c] = class_of(stages_.data(), stages_.size(), c, detail::kAsciiFlags.v[c]);
  }
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& out) const {
  if (use_flags_) {
    split_flags(text, out);
  } else {
    split_staged(text, out);
  }
}

void PreTokenizer::split_flags(std::string_view text, std::vector<std::string_view>& out) const {
  if (text.empty()) return;
  thread_local Scratch s;
  const size_t n_bytes = text.size();
  if (s.cp.size() < n_bytes) {
    s.cp.resize(n_bytes);
    s.fl.resize(n_bytes);
    s.off.resize(n_bytes + 1);
    s.cls.resize(n_bytes + 2);
    s.cut.resize(n_bytes + 8);
  }
  uint32_t* cps = s.cp.data();
  uint8_t* fls = s.fl.data();
  uint32_t* offs = s.off.data();
  uint8_t* cls = s.cls.data() + 1;
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const PreStage* st = stages_.data();
  const size_t n_st = stages_.size();
  size_t n = 0;
  for (size_t i = 0; i < n_bytes;) {
    const unsigned c = bytes[i];
    offs[n] = static_cast<uint32_t>(i);
    if (c < 0x80) {
      cps[n] = c;
      fls[n] = detail::kAsciiFlags.v[c];
      cls[n] = ascii_cls_[c];
      ++i;
    } else {
      uint32_t cp;
      i += decode_cp(text, i, &cp);
      const uint8_t f = cp_flags_slow(cp);
      cps[n] = cp;
      fls[n] = f;
      cls[n] = class_of(st, n_st, cp, f);
    }
    ++n;
  }
  offs[n] = static_cast<uint32_t>(n_bytes);
  cls[-1] = 0;
  cls[n] = 0;
  uint8_t* cut = s.cut.data();
  std::memset(cut, 0, n + 8);
  cut[0] = 1;
  cut[n] = 1;
  const View v{cps, fls};
  for (size_t k = 0; k < n_st; ++k) flag_stage(st[k], static_cast<uint8_t>(1u << k), v, cls, cut, n);

  // Pieces from the flags, eight at a time (cut[n + 1 .. n + 7] are zero).
  size_t b = 0;
  for (size_t w = 1; w <= n; w += 8) {
    uint64_t m;
    std::memcpy(&m, cut + w, 8);
    while (m != 0) {
      const size_t e = w + (static_cast<size_t>(__builtin_ctzll(m)) >> 3);
      out.push_back(text.substr(offs[b], offs[e] - offs[b]));
      b = e;
      m &= m - 1;
    }
  }
}

void PreTokenizer::split_staged(std::string_view text, std::vector<std::string_view>& out) const {
  if (text.empty()) return;
  thread_local Scratch s;
  const size_t n_bytes = text.size();
  if (s.cp.size() < n_bytes) {
    s.cp.resize(n_bytes);
    s.fl.resize(n_bytes);
    s.off.resize(n_bytes + 1);
  }
  uint32_t* cps = s.cp.data();
  uint8_t* fls = s.fl.data();
  uint32_t* offs = s.off.data();
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = 0;
  for (size_t i = 0; i < n_bytes;) {
    const unsigned c = bytes[i];
    offs[n] = static_cast<uint32_t>(i);
    if (c < 0x80) {
      cps[n] = c;
      fls[n] = detail::kAsciiFlags.v[c];
      ++i;
    } else {
      uint32_t cp;
      i += decode_cp(text, i, &cp);
      cps[n] = cp;
      fls[n] = cp_flags_slow(cp);
    }
    ++n;
  }
  offs[n] = static_cast<uint32_t>(n_bytes);
  const View v{s.cp.data(), s.fl.data()};
  s.cuts.assign(1, static_cast<uint32_t>(n));
  for (PreStage st : stages_) {
    s.next.clear();
    Cuts c{&s.next, 0};
    run_stage(st, v, s.cuts, c);
    std::swap(s.cuts, s.next);
  }
  size_t b = 0;
  for (uint32_t e : s.cuts) {
    out.push_back(text.substr(offs[b], offs[e] - offs[b]));
    b = e;
  }
}

}  // namespace cw::tok
