// Vocabulary loading: token texts, scores, types and special ids read from a GGUF file's
// tokenizer.ggml.* metadata and validated (every problem is a Status naming the key; nothing aborts).
//
// Thread-safety: a Vocab is immutable after load; concurrent readers are fine.
#pragma once

#include <cstdint>
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

uint64_t hash_bytes(std::string_view s);

enum class VocabKind : uint8_t { kSpm, kBpe };

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
// "gpt2" -> BPE; "bert" / "t5" / others -> kUnimplemented naming the model type.
Status load_vocab(const gguf::File& f, Vocab& vocab);

}  // namespace cw::tok
