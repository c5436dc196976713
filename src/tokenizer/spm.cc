#include "tokenizer/spm.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <limits>
#include <queue>

#include "tokenizer/merge_queue.h"
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

// Long-word path: symbols indexed by code point; symbol i spans bytes [off[i], off[next[i]]).
struct LongScratch {
  std::vector<uint32_t> off;  // [n + 1]
  std::vector<int32_t> prev;  // -1: none
  std::vector<int32_t> next;  // n: the end; -1: merged away
  MergeQueue queue;
  void trim() {
    queue.trim();
    if (off.capacity() > (size_t{1} << 20)) {
      off = {};
      prev = {};
      next = {};
    }
  }
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
  // Score ranks for the long-word path: equal scores share a rank, so ties fall back to the leftmost pair.
  {
    std::vector<float> distinct(v.scores.begin(), v.scores.end());
    for (float& x : distinct) {
      if (x != x) x = -std::numeric_limits<float>::infinity();  // NaN: a total order for sorting
    }
    std::vector<float> sorted = distinct;
    std::sort(sorted.begin(), sorted.end(), std::greater<>{});
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    n_score_ranks_ = std::max<size_t>(sorted.size(), 1);
    score_rank_.resize(distinct.size());
    for (size_t id = 0; id < distinct.size(); ++id) {
      score_rank_[id] = static_cast<uint32_t>(
          std::lower_bound(sorted.begin(), sorted.end(), distinct[id], std::greater<>{}) - sorted.begin());
    }
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

void SpmEncoder::emit_symbol(std::string_view piece, std::vector<int32_t>& out) const {
  const int32_t id = v_.index.find(piece);
  if (id >= 0) {
    out.push_back(id);
    return;
  }
  for (char c : piece) {
    const int32_t b = byte_ids_[static_cast<uint8_t>(c)];
    if (b >= 0) out.push_back(b);
  }
}

void SpmEncoder::encode_word_long(std::string_view w, std::vector<int32_t>& out) const {
  thread_local LongScratch s;
  auto& off = s.off;
  off.clear();
  for (size_t i = 0; i < w.size();) {
    off.push_back(static_cast<uint32_t>(i));
    uint32_t cp;
    i += decode_cp(w, i, &cp);
  }
  const auto n = static_cast<int32_t>(off.size());
  off.push_back(static_cast<uint32_t>(w.size()));
  auto& prev = s.prev;
  auto& next = s.next;
  prev.resize(static_cast<size_t>(n));
  next.resize(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    prev[static_cast<size_t>(i)] = i - 1;
    next[static_cast<size_t>(i)] = i + 1;
  }
  // The rank of the token formed by symbol l and its right neighbour, or -1.
  auto pair_rank = [&](int32_t l) -> int64_t {
    const int32_t r = next[static_cast<size_t>(l)];
    if (r < 0 || r >= n) return -1;
    const uint32_t b = off[static_cast<size_t>(l)], e = off[static_cast<size_t>(next[static_cast<size_t>(r)])];
    const int32_t id = v_.index.find(w.substr(b, e - b));
    return id < 0 ? -1 : static_cast<int64_t>(score_rank_[static_cast<size_t>(id)]);
  };
  MergeQueue& q = s.queue;
  q.reset(n_score_ranks_);
  auto try_add = [&](int32_t l) {
    if (l < 0) return;
    const int64_t rank = pair_rank(l);
    if (rank >= 0) q.push(static_cast<uint32_t>(rank), l);
  };
  for (int32_t i = 0; i + 1 < n; ++i) try_add(i);
  uint32_t rank;
  int32_t l;
  while (q.pop(rank, l)) {
    if (pair_rank(l) != static_cast<int64_t>(rank)) continue;  // stale (see merge_queue.h)
    const int32_t r = next[static_cast<size_t>(l)];
    const int32_t rn = next[static_cast<size_t>(r)];
    next[static_cast<size_t>(l)] = rn;
    if (rn < n) prev[static_cast<size_t>(rn)] = l;
    next[static_cast<size_t>(r)] = -1;
    try_add(prev[static_cast<size_t>(l)]);
    try_add(l);
  }
  for (int32_t i = 0; i < n; i = next[static_cast<size_t>(i)]) {
    const uint32_t b = off[static_cast<size_t>(i)], e = off[static_cast<size_t>(next[static_cast<size_t>(i)])];
    emit_symbol(w.substr(b, e - b), out);
  }
  s.trim();
}

void SpmEncoder::encode_word(std::string_view w, std::vector<int32_t>& out) const {
  if (w.size() > g_long_word_bytes.load(std::memory_order_relaxed)) {
    encode_word_long(w, out);
    return;
  }
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
