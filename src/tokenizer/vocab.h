// Vocabulary loading: token texts, scores, types and special ids read from a GGUF file's
// tokenizer.ggml.* metadata and validated (every problem is a Status naming the key; nothing aborts).
//
// Thread-safety: a Vocab is immutable after load; concurrent readers are fine.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gguf/reader.h"

namespace cw::tok {

// tokenizer.ggml.token_type values.
enum class TokenType : uint8_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// Fast exact string -> id lookup over a set of strings (open addressing). Ids refer to `texts` passed to
// build(), which must outlive the index. Duplicate strings map to the last id, as in llama.cpp.
class TokenIndex {
 public:
  void build(const std::vector<std::string>& texts);
  // -1 when absent.
  int32_t find(std::string_view s) const;

 private:
  struct Slot {
    uint32_t tag = 0;
    int32_t id = -1;
  };
  const std::vector<std::string>* texts_ = nullptr;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

namespace detail {
// The n (1..8) bytes at p as an integer, without a call to memcpy: two overlapping loads (the length is
// hashed separately, so the overlap loses nothing that matters).
inline uint64_t load_1_to_8(const char* p, size_t n) {
  if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + n - 4, 4);
    return a | (static_cast<uint64_t>(b) << 32);
  }
  return static_cast<uint64_t>(static_cast<uint8_t>(p[0])) |
         (static_cast<uint64_t>(static_cast<uint8_t>(p[n >> 1])) << 8) |
         (static_cast<uint64_t>(static_cast<uint8_t>(p[n - 1])) << 16);
}
}  // namespace detail

// A small multiply-xorshift hash over 8-byte words (inline: the encoders hash every word); good enough for
// token texts and words. Not stable across versions: never persist it.
inline uint64_t hash_bytes(std::string_view s) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = 0xCBF29CE484222325ull ^ (s.size() * kMul);
  const char* p = s.data();
  size_t n = s.size();
  while (n > 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    h = (h ^ detail::load_1_to_8(p, n)) * kMul;
    h ^= h >> 29;
  }
  h *= kMul;
  return h ^ (h >> 32);
}

enum class VocabKind : uint8_t { kSpm, kBpe, kWpm };

struct Vocab {
  VocabKind kind = VocabKind::kSpm;
  std::string model;  // tokenizer.ggml.model
  std::string pre;    // tokenizer.ggml.pre ("" when absent)
  std::string name;   // general.name, lower-cased
  std::vector<std::string> texts;
  std::vector<float> scores;  // all 0 when absent
  std::vector<TokenType> types;
  TokenIndex index;
  int32_t bos = -1, eos = -1, unk = -1;
  bool add_bos = false, add_eos = false, add_space_prefix = false;

  int32_t n_vocab() const { return static_cast<int32_t>(texts.size()); }
};

// Reads and validates the common metadata. `vocab.kind` is decided from tokenizer.ggml.model: "llama" -> SPM,
// "gpt2" -> BPE, "bert" -> WordPiece (BOS / EOS default to [CLS] / [SEP], both added); "t5" / others ->
// kUnimplemented naming the model type.
Status load_vocab(const gguf::File& f, Vocab& vocab);

}  // namespace cw::tok
