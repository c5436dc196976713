#include "tokenizer/spm.h"

#include <algorithm>
#include <cstdio>
#include <queue>

#include "tokenizer/unicode.h"
#include "tokenizer/word_cache.h"

namespace cw::tok {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581

struct Symbol {
  int32_t prev, next;
  uint32_t start, len;
  int32_t id;
};

struct Bigram {
  float score;
  int32_t left, right;
  uint32_t size;
  int32_t id;
};

struct BigramLess {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

struct Scratch {
  std::vector<Symbol> symbols;
  std::vector<Bigram> heap;
  std::vector<int32_t> ids;
};

}  // namespace

void spm_escape(std::string_view text, std::string& out) {
  size_t p = 0;
  while (p < text.size()) {
    size_t q = text.find(' ', p);
    if (q == std::string_view::npos) q = text.size();
    out.append(text.substr(p, q - p));
    if (q < text.size()) out.append(kSpace);
    p = q + 1;
  }
}

SpmEncoder::SpmEncoder(const Vocab& v, uint64_t cache_owner) : v_(v), cache_owner_(cache_owner) {
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    int32_t id = v.index.find(buf);
    if (id < 0) id = v.index.find(std::string_view(reinterpret_cast<const char*>(&b), 1));
    if (id < 0) id = v.unk;
    byte_ids_[b] = id;
  }
  // Words may be encoded independently iff no token has a U+2581 preceded by another character.
  split_words_ = true;
  for (const std::string& t : v.texts) {
    size_t p = t.find(kSpace, 1);
    while (p != std::string::npos) {
      if (p < kSpace.size() || std::string_view(t).substr(p - kSpace.size(), kSpace.size()) != kSpace) {
        split_words_ = false;
        return;
      }
      p = t.find(kSpace, p + 1);
    }
  }
}

void SpmEncoder::encode_escaped(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  if (!split_words_) {
    encode_word(text, out);
    return;
  }
  WordCache& cache = WordCache::for_owner(cache_owner_);
  size_t begin = 0;
  while (begin < text.size()) {
    // The next word starts at a U+2581 that follows a non-U+2581 character.
    size_t p = begin;
    while (p < text.size() && text.substr(p, kSpace.size()) == kSpace) p += kSpace.size();
    size_t end = text.find(kSpace, p);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view word = text.substr(begin, end - begin);
    if (word.size() > WordCache::kMaxWordBytes) {
      encode_word(word, out);
    } else {
      const uint64_t h = hash_bytes(word);
      if (!cache.lookup(word, h, out)) {
        const size_t before = out.size();
        encode_word(word, out);
        cache.insert(word, h, out.data() + before, out.size() - before);
      }
    }
    begin = end;
  }
}

void SpmEncoder::encode_word(std::string_view w, std::vector<int32_t>& out) const {
  thread_local Scratch s;
  auto& sym = s.symbols;
  sym.clear();
  for (size_t i = 0; i < w.size();) {
    uint32_t cp;
    const size_t n = decode_cp(w, i, &cp);
    const auto idx = static_cast<int32_t>(sym.size());
    sym.push_back(Symbol{idx - 1, idx + 1, static_cast<uint32_t>(i), static_cast<uint32_t>(n),
                         v_.index.find(w.substr(i, n))});
    i += n;
  }
  if (sym.empty()) return;
  sym.back().next = -1;

  auto& heap = s.heap;
  heap.clear();
  auto try_add = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const uint32_t size = sym[l].len + sym[r].len;
    const int32_t id = v_.index.find(w.substr(sym[l].start, size));
    if (id < 0) return;
    heap.push_back(Bigram{v_.scores[id], l, r, size, id});
    std::push_heap(heap.begin(), heap.end(), BigramLess{});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(sym.size()); ++i) try_add(i - 1, i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), BigramLess{});
    const Bigram b = heap.back();
    heap.pop_back();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.size) continue;
    l.len += r.len;
    l.id = b.id;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  for (int32_t i = 0; i != -1; i = sym[i].next) {
    const Symbol& x = sym[i];
    if (x.id >= 0) {
      out.push_back(x.id);
      continue;
    }
    for (uint32_t k = 0; k < x.len; ++k) {
      const int32_t id = byte_ids_[static_cast<uint8_t>(w[x.start + k])];
      if (id >= 0) out.push_back(id);
    }
  }
}

}  // namespace cw::tok
