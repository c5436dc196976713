#include "tokenizer/bpe.h"

#include <algorithm>
#include <string>

#include "tokenizer/merge_queue.h"
#include "tokenizer/unicode.h"
#include "tokenizer/word_cache.h"

namespace cw::tok {
namespace {

struct Symbol {
  int32_t prev, next;
  int32_t id;  // -1: a byte whose character is not a token (never merges)
};

struct Bigram {
  int32_t rank;
  int32_t left, right;
  int32_t lid, rid, result;
};

struct BigramGreater {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

struct Scratch {
  std::vector<Symbol> symbols;
  std::vector<Bigram> heap;
  std::string encoded;
};

}  // namespace

Result<std::unique_ptr<BpeEncoder>> BpeEncoder::create(const Vocab& v, const gguf::File& f, bool ignore_merges,
                                                        uint64_t cache_owner) {
  std::unique_ptr<BpeEncoder> enc(new BpeEncoder(v, ignore_merges, cache_owner));
  const ByteLevel& bl = byte_level();
  for (int b = 0; b < 256; ++b) enc->byte_ids_[b] = v.index.find(bl.byte_to_utf8[b]);

  const gguf::Value* merges = f.find("tokenizer.ggml.merges");
  if (merges == nullptr) return not_found("tokenizer.ggml.merges is missing (required for a gpt2 tokenizer)");
  if (!merges->is_array() || merges->array_type() != gguf::ValueType::kString) {
    return data_loss("tokenizer.ggml.merges must be an array of strings");
  }
  const auto list = merges->strings();
  enc->n_merges_ = list.size();
  size_t cap = 16;
  while (cap < list.size() * 2) cap <<= 1;
  enc->pairs_.assign(cap, PairEntry{});
  enc->mask_ = cap - 1;
  enc->shift_ = 64 - __builtin_ctzll(cap);
  std::string joined;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string_view m = list[i];
    const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string_view::npos;
    if (sp == std::string_view::npos) {
      return data_loss("tokenizer.ggml.merges[" + std::to_string(i) + "] = '" + std::string(m) +
                       "' is not of the form 'left right'");
    }
    const std::string_view left = m.substr(0, sp), right = m.substr(sp + 1);
    const int32_t l = v.index.find(left), r = v.index.find(right);
    if (l < 0 || r < 0) {
      return data_loss("tokenizer.ggml.merges[" + std::to_string(i) + "] = '" + std::string(m) +
                       "' references an unknown token '" + std::string(l < 0 ? left : right) + "'");
    }
    joined.assign(left);
    joined.append(right);
    const int32_t result = v.index.find(joined);
    if (result < 0) continue;  // see the header: ignored
    enc->pair_insert(l, r, static_cast<int32_t>(i), result);
  }
  return enc;
}

void BpeEncoder::pair_insert(int32_t l, int32_t r, int32_t rank, int32_t result) {
  const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  size_t i = (key * 0x9E3779B97F4A7C15ull) >> shift_;
  while (pairs_[i].key != ~0ull) {
    if (pairs_[i].key == key) return;  // first (lowest) rank wins
    i = (i + 1) & mask_;
  }
  pairs_[i] = PairEntry{key, rank, result};
}

void BpeEncoder::encode_words(const std::vector<std::string_view>& words, std::vector<int32_t>& out) const {
  WordCache& cache = WordCache::for_owner(cache_owner_);
  for (std::string_view word : words) {
    if (word.size() > WordCache::kMaxWordBytes) {
      merge_word(word, out);
      continue;
    }
    const uint64_t h = hash_bytes(word);
    if (cache.lookup(word, h, out)) continue;
    const size_t before = out.size();
    merge_word(word, out);
    cache.insert(word, h, out.data() + before, out.size() - before);
  }
}

void BpeEncoder::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  thread_local Scratch s;
  if (ignore_merges_) {
    s.encoded.clear();
    byte_level_encode(word, s.encoded);
    const int32_t id = v_.index.find(s.encoded);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  if (word.size() > g_long_word_bytes.load(std::memory_order_relaxed)) {
    merge_word_long(word, out);
    return;
  }
  auto& sym = s.symbols;
  sym.clear();
  const auto n = static_cast<int32_t>(word.size());
  for (int32_t i = 0; i < n; ++i) sym.push_back(Symbol{i - 1, i + 1, byte_ids_[static_cast<uint8_t>(word[i])]});
  sym.back().next = -1;

  auto& heap = s.heap;
  heap.clear();
  auto try_add = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const int32_t lid = sym[l].id, rid = sym[r].id;
    if (lid < 0 || rid < 0) return;
    const PairEntry* e = pair_find(lid, rid);
    if (e == nullptr) return;
    heap.push_back(Bigram{e->rank, l, r, lid, rid, e->result});
    std::push_heap(heap.begin(), heap.end(), BigramGreater{});
  };
  for (int32_t i = 1; i < n; ++i) try_add(i - 1, i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), BigramGreater{});
    const Bigram b = heap.back();
    heap.pop_back();
    Symbol& l = sym[b.left];
    if (l.next != b.right || l.id != b.lid || sym[b.right].id != b.rid) continue;  // outdated
    Symbol& r = sym[b.right];
    l.id = b.result;
    l.next = r.next;
    r.id = -2;  // merged away
    r.prev = r.next = -1;
    if (l.next >= 0) sym[l.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  for (int32_t i = 0; i != -1; i = sym[i].next) {
    const int32_t id = sym[i].id;
    if (id >= 0) {
      out.push_back(id);
    } else if (v_.unk >= 0) {
      out.push_back(v_.unk);
    }
  }
}

void BpeEncoder::merge_word_long(std::string_view word, std::vector<int32_t>& out) const {
  // Symbol i (a byte index where a symbol starts) spans [i, next[i]); next[i] = -1 once merged away.
  thread_local std::vector<int32_t> prev, next, ids;
  thread_local MergeQueue q;
  const auto n = static_cast<int32_t>(word.size());
  prev.resize(static_cast<size_t>(n));
  next.resize(static_cast<size_t>(n));
  ids.resize(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    prev[static_cast<size_t>(i)] = i - 1;
    next[static_cast<size_t>(i)] = i + 1;
    ids[static_cast<size_t>(i)] = byte_ids_[static_cast<uint8_t>(word[static_cast<size_t>(i)])];
  }
  // The merge of symbol l with its right neighbour, or nullptr.
  auto pair_at = [&](int32_t l) -> const PairEntry* {
    const int32_t r = next[static_cast<size_t>(l)];
    if (r < 0 || r >= n) return nullptr;
    const int32_t lid = ids[static_cast<size_t>(l)], rid = ids[static_cast<size_t>(r)];
    if (lid < 0 || rid < 0) return nullptr;
    return pair_find(lid, rid);
  };
  q.reset(n_merges_);
  auto try_add = [&](int32_t l) {
    if (l < 0) return;
    if (const PairEntry* e = pair_at(l)) q.push(static_cast<uint32_t>(e->rank), l);
  };
  for (int32_t i = 0; i + 1 < n; ++i) try_add(i);
  uint32_t rank;
  int32_t l;
  while (q.pop(rank, l)) {
    const PairEntry* e = pair_at(l);
    if (e == nullptr || static_cast<uint32_t>(e->rank) != rank) continue;  // stale (see merge_queue.h)
    const int32_t r = next[static_cast<size_t>(l)];
    const int32_t rn = next[static_cast<size_t>(r)];
    ids[static_cast<size_t>(l)] = e->result;
    next[static_cast<size_t>(l)] = rn;
    if (rn < n) prev[static_cast<size_t>(rn)] = l;
    next[static_cast<size_t>(r)] = -1;
    try_add(prev[static_cast<size_t>(l)]);
    try_add(l);
  }
  for (int32_t i = 0; i < n; i = next[static_cast<size_t>(i)]) {
    const int32_t id = ids[static_cast<size_t>(i)];
    if (id >= 0) {
      out.push_back(id);
    } else if (v_.unk >= 0) {
      out.push_back(v_.unk);
    }
  }
  q.trim();
  if (prev.capacity() > (size_t{1} << 20)) {
    prev = {};
    next = {};
    ids = {};
  }
}

}  // namespace cw::tok
