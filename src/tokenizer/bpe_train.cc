// Byte-level BPE training: see bpe_train.h for the algorithm and its contract.
#include "tokenizer/bpe_train.h"

#include <algorithm>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "gguf/writer.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace cw::tok {
namespace {

struct ViewHash {
  size_t operator()(std::string_view s) const { return static_cast<size_t>(hash_bytes(s)); }
};

struct KeyHash {
  size_t operator()(uint64_t k) const {
    k *= 0x9E3779B97F4A7C15ull;
    return static_cast<size_t>(k ^ (k >> 29));
  }
};

inline uint64_t pair_key(int32_t l, int32_t r) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
}
inline int32_t key_left(uint64_t k) { return static_cast<int32_t>(k >> 32); }
inline int32_t key_right(uint64_t k) { return static_cast<int32_t>(k & 0xFFFFFFFFu); }

struct HeapEntry {
  int64_t count;
  uint64_t key;
};

class Trainer {
 public:
  explicit Trainer(std::vector<std::string>& tokens) : tokens_(tokens) {}

  // Higher count first; ties: lexicographically smallest (left bytes, right bytes) first.
  bool better(const HeapEntry& a, const HeapEntry& b) const {
    if (a.count != b.count) return a.count > b.count;
    const std::string& al = tokens_[key_left(a.key)];
    const std::string& bl = tokens_[key_left(b.key)];
    if (const int c = al.compare(bl); c != 0) return c < 0;
    return tokens_[key_right(a.key)] < tokens_[key_right(b.key)];
  }

  void add_word(std::vector<int32_t> syms, int64_t freq) {
    const auto w = static_cast<uint32_t>(words_.size());
    for (size_t i = 0; i + 1 < syms.size(); ++i) {
      const uint64_t k = pair_key(syms[i], syms[i + 1]);
      counts_[k] += freq;
      index_word(k, w);
    }
    words_.push_back(std::move(syms));
    freqs_.push_back(freq);
    stamp_.push_back(-1);
  }

  void build_heap() {
    std::vector<uint64_t> keys;
    keys.reserve(counts_.size());
    for (const auto& [k, c] : counts_) keys.push_back(k);
    std::sort(keys.begin(), keys.end());  // the heap's content must not depend on hash order
    for (uint64_t k : keys) push(k);
  }

  // Pops the best live pair with count >= min_count; false when none is left.
  bool best(int64_t min_count, uint64_t* key) {
    while (!heap_.empty()) {
      const HeapEntry e = heap_.front();
      std::pop_heap(heap_.begin(), heap_.end(), cmp());
      heap_.pop_back();
      auto it = counts_.find(e.key);
      if (it == counts_.end() || it->second != e.count) continue;  // stale
      if (e.count < min_count) return false;
      *key = e.key;
      return true;
    }
    return false;
  }

  // Replaces every occurrence of the pair `key` by token `t` in the words that contain it.
  void merge(uint64_t key, int32_t t, int64_t merge_no) {
    const int32_t a = key_left(key), b = key_right(key);
    auto it = pair_words_.find(key);
    if (it == pair_words_.end()) return;
    const std::vector<uint32_t> ws = std::move(it->second);
    pair_words_.erase(it);
    before_.clear();
    for (uint32_t w : ws) {
      if (stamp_[w] == merge_no) continue;
      stamp_[w] = merge_no;
      std::vector<int32_t>& s = words_[w];
      bool found = false;
      for (size_t i = 0; i + 1 < s.size(); ++i)
        if (s[i] == a && s[i + 1] == b) {
          found = true;
          break;
        }
      if (!found) continue;
      const int64_t f = freqs_[w];
      for (size_t i = 0; i + 1 < s.size(); ++i) change(pair_key(s[i], s[i + 1]), -f);
      size_t o = 0;
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          s[o++] = t;
          i += 2;
        } else {
          s[o++] = s[i++];
        }
      }
      s.resize(o);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t k = pair_key(s[i], s[i + 1]);
        change(k, f);
        if (s[i] == t || s[i + 1] == t) index_word(k, w);
      }
    }
    // Re-queue the pairs whose count moved (in key order: deterministic).
    changed_.clear();
    for (const auto& [k, old] : before_)
      if (counts_[k] != old) changed_.push_back(k);
    std::sort(changed_.begin(), changed_.end());
    for (uint64_t k : changed_) {
      if (counts_[k] <= 0) {
        counts_.erase(k);
        pair_words_.erase(k);
      } else {
        push(k);
      }
    }
  }

 private:
  struct Cmp {
    const Trainer* t;
    bool operator()(const HeapEntry& x, const HeapEntry& y) const { return t->better(y, x); }
  };
  Cmp cmp() const { return Cmp{this}; }

  void push(uint64_t k) {
    heap_.push_back({counts_[k], k});
    std::push_heap(heap_.begin(), heap_.end(), cmp());
  }
  void change(uint64_t k, int64_t d) {
    int64_t& c = counts_[k];
    before_.try_emplace(k, c);
    c += d;
  }
  void index_word(uint64_t k, uint32_t w) {
    std::vector<uint32_t>& v = pair_words_[k];
    if (v.empty() || v.back() != w) v.push_back(w);
  }

  std::vector<std::string>& tokens_;
  std::vector<std::vector<int32_t>> words_;
  std::vector<int64_t> freqs_;
  std::vector<int64_t> stamp_;  // last merge that visited the word
  std::unordered_map<uint64_t, int64_t, KeyHash> counts_;
  std::unordered_map<uint64_t, std::vector<uint32_t>, KeyHash> pair_words_;
  std::unordered_map<uint64_t, int64_t, KeyHash> before_;
  std::vector<uint64_t> changed_;
  std::vector<HeapEntry> heap_;
};

}  // namespace

Result<TrainedBpe> train_bpe(std::span<const std::string_view> texts, const BpeTrainOptions& options) {
  const auto n_special = static_cast<int32_t>(options.special_tokens.size());
  const int32_t min_vocab = 256 + n_special;
  if (options.vocab_size < min_vocab || options.vocab_size > kMaxTrainedVocab)
    return invalid_argument("vocab size " + std::to_string(options.vocab_size) + " is outside " +
                            std::to_string(min_vocab) + ".." + std::to_string(kMaxTrainedVocab) +
                            " (256 byte tokens + " + std::to_string(n_special) + " special + merges)");
  if (options.min_pair_count < 1) return invalid_argument("min_pair_count must be >= 1");
  {
    std::unordered_set<std::string> seen;
    for (const std::string& s : options.special_tokens) {
      if (s.empty()) return invalid_argument("empty special token");
      if (!seen.insert(s).second) return invalid_argument("duplicate special token '" + s + "'");
    }
  }
  CW_ASSIGN_OR_RETURN(auto pre, PreTokenizer::create(options.pre));

  TrainedBpe out;
  out.pre = options.pre;
  out.add_bos = options.add_bos;
  out.add_eos = options.add_eos;

  // Count words (views into the caller's texts).
  std::unordered_map<std::string_view, int64_t, ViewHash> word_counts;
  std::vector<std::string_view> pieces;
  for (std::string_view text : texts) {
    out.n_bytes += text.size();
    pieces.clear();
    pre->split(text, pieces);
    out.n_words += pieces.size();
    for (std::string_view p : pieces) ++word_counts[p];
  }
  if (out.n_bytes == 0) return invalid_argument("no text to train on (the input is empty)");
  out.n_unique_words = word_counts.size();

  std::vector<std::pair<std::string_view, int64_t>> words(word_counts.begin(), word_counts.end());
  word_counts = {};
  std::sort(words.begin(), words.end());

  out.tokens.reserve(static_cast<size_t>(options.vocab_size));
  for (int b = 0; b < 256; ++b) out.tokens.emplace_back(1, static_cast<char>(b));
  Trainer tr(out.tokens);
  for (const auto& [w, c] : words) {
    std::vector<int32_t> syms(w.size());
    for (size_t i = 0; i < w.size(); ++i) syms[i] = static_cast<uint8_t>(w[i]);
    tr.add_word(std::move(syms), c);
  }
  words = {};
  tr.build_heap();

  const int32_t n_merges = options.vocab_size - min_vocab;
  out.merges.reserve(static_cast<size_t>(n_merges));
  for (int32_t m = 0; m < n_merges; ++m) {
    uint64_t key = 0;
    if (!tr.best(options.min_pair_count, &key))
      return invalid_argument("vocab size " + std::to_string(options.vocab_size) + " is too large for this text: it allows " +
                              std::to_string(m) + " merges (pairs seen >= " + std::to_string(options.min_pair_count) +
                              " times), " + std::to_string(n_merges) + " needed");
    const int32_t l = static_cast<int32_t>(key >> 32), r = static_cast<int32_t>(key & 0xFFFFFFFFu);
    const auto t = static_cast<int32_t>(out.tokens.size());
    out.tokens.push_back(out.tokens[l] + out.tokens[r]);
    out.merges.emplace_back(l, r);
    tr.merge(key, t, m);
  }
  out.first_special = static_cast<int32_t>(out.tokens.size());
  out.n_special = n_special;
  for (const std::string& s : options.special_tokens) out.tokens.push_back(s);
  return out;
}

void write_bpe_vocab(const TrainedBpe& bpe, gguf::Writer& w) {
  std::vector<std::string> texts;
  std::vector<int32_t> types;
  texts.reserve(bpe.tokens.size());
  types.reserve(bpe.tokens.size());
  for (size_t i = 0; i < bpe.tokens.size(); ++i) {
    const bool special = static_cast<int32_t>(i) >= bpe.first_special && bpe.n_special > 0;
    std::string t;
    if (special) {
      t = bpe.tokens[i];
    } else {
      byte_level_encode(bpe.tokens[i], t);
    }
    texts.push_back(std::move(t));
    types.push_back(special ? static_cast<int32_t>(TokenType::kControl) : static_cast<int32_t>(TokenType::kNormal));
  }
  std::vector<std::string> merges;
  merges.reserve(bpe.merges.size());
  for (const auto& [l, r] : bpe.merges) merges.push_back(texts[l] + " " + texts[r]);

  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", bpe.pre);
  w.add_string_array("tokenizer.ggml.tokens", texts);
  w.add_i32_array("tokenizer.ggml.token_type", types);
  w.add_string_array("tokenizer.ggml.merges", merges);
  if (bpe.n_special > 0) {
    w.add_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(bpe.first_special));
    w.add_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(bpe.first_special));
  }
  w.add_bool("tokenizer.ggml.add_bos_token", bpe.add_bos && bpe.n_special > 0);
  w.add_bool("tokenizer.ggml.add_eos_token", bpe.add_eos && bpe.n_special > 0);
}

}  // namespace cw::tok
