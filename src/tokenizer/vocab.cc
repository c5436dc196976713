#include "tokenizer/vocab.h"

#include <cctype>
#include <cstring>
#include <limits>

namespace cw::tok {

void TokenIndex::build(const std::vector<std::string>& texts) {
  texts_ = &texts;
  size_t cap = 16;
  while (cap < texts.size() * 2) cap <<= 1;
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  for (size_t id = 0; id < texts.size(); ++id) {
    const uint64_t h = hash_bytes(texts[id]);
    size_t i = h & mask_;
    const uint32_t tag = static_cast<uint32_t>(h >> 32);
    while (slots_[i].id >= 0) {
      if (slots_[i].tag == tag && texts[slots_[i].id] == texts[id]) break;
      i = (i + 1) & mask_;
    }
    slots_[i].tag = tag;
    slots_[i].id = static_cast<int32_t>(id);
  }
}

int32_t TokenIndex::find(std::string_view s) const {
  if (slots_.empty()) return -1;
  const uint64_t h = hash_bytes(s);
  const uint32_t tag = static_cast<uint32_t>(h >> 32);
  size_t i = h & mask_;
  while (true) {
    const Slot& slot = slots_[i];
    if (slot.id < 0) return -1;
    if (slot.tag == tag && (*texts_)[slot.id] == s) return slot.id;
    i = (i + 1) & mask_;
  }
}

namespace {

Status read_optional_id(const gguf::File& f, const char* key, int32_t n_vocab, int32_t& out) {
  const gguf::Value* v = f.find(key);
  if (v == nullptr) return Status::ok();
  auto r = v->as_int();
  if (!r.is_ok()) return data_loss(std::string(key) + ": " + r.status().message());
  if (*r < 0 || *r >= n_vocab) {
    return out_of_range(std::string(key) + " = " + std::to_string(*r) + " is outside the vocabulary [0, " +
                        std::to_string(n_vocab) + ")");
  }
  out = static_cast<int32_t>(*r);
  return Status::ok();
}

Status read_optional_bool(const gguf::File& f, const char* key, bool& out) {
  const gguf::Value* v = f.find(key);
  if (v == nullptr) return Status::ok();
  auto r = v->as_bool();
  if (!r.is_ok()) return data_loss(std::string(key) + ": " + r.status().message());
  out = *r;
  return Status::ok();
}

}  // namespace

Status load_vocab(const gguf::File& f, Vocab& vocab) {
  const gguf::Value* model = f.find("tokenizer.ggml.model");
  if (model == nullptr) return not_found("tokenizer.ggml.model is missing: the file has no tokenizer");
  auto model_name = model->as_string();
  if (!model_name.is_ok()) return data_loss("tokenizer.ggml.model: " + model_name.status().message());
  vocab.model = std::string(*model_name);
  if (vocab.model == "llama") {
    vocab.kind = VocabKind::kSpm;
  } else if (vocab.model == "gpt2") {
    vocab.kind = VocabKind::kBpe;
  } else if (vocab.model == "bert") {
    vocab.kind = VocabKind::kWpm;
  } else {
    return unimplemented("tokenizer model '" + vocab.model + "' is not supported (supported: llama, gpt2, bert)");
  }

  if (const gguf::Value* pre = f.find("tokenizer.ggml.pre")) {
    auto s = pre->as_string();
    if (!s.is_ok()) return data_loss("tokenizer.ggml.pre: " + s.status().message());
    vocab.pre = std::string(*s);
  }
  if (const gguf::Value* name = f.find("general.name")) {
    auto s = name->as_string();
    if (s.is_ok()) {
      vocab.name = std::string(*s);
      for (char& c : vocab.name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }

  const gguf::Value* tokens = f.find("tokenizer.ggml.tokens");
  if (tokens == nullptr) return not_found("tokenizer.ggml.tokens is missing");
  if (!tokens->is_array() || tokens->array_type() != gguf::ValueType::kString) {
    return data_loss("tokenizer.ggml.tokens must be an array of strings");
  }
  const size_t n = tokens->strings().size();
  if (n == 0) return data_loss("tokenizer.ggml.tokens is empty");
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max() / 2)) {
    return out_of_range("tokenizer.ggml.tokens has too many entries (" + std::to_string(n) + ")");
  }
  vocab.texts.clear();
  vocab.texts.reserve(n);
  for (std::string_view s : tokens->strings()) vocab.texts.emplace_back(s);

  vocab.scores.assign(n, 0.0f);
  if (const gguf::Value* scores = f.find("tokenizer.ggml.scores")) {
    if (!scores->is_array()) return data_loss("tokenizer.ggml.scores must be an array");
    auto v = scores->to_f32_vector();
    if (!v.is_ok()) return data_loss("tokenizer.ggml.scores: " + v.status().message());
    if (v->size() != n) {
      return data_loss("tokenizer.ggml.scores has " + std::to_string(v->size()) + " entries, expected " +
                       std::to_string(n) + " (one per token)");
    }
    vocab.scores = std::move(v).value();
  }

  vocab.types.assign(n, TokenType::kNormal);
  if (const gguf::Value* types = f.find("tokenizer.ggml.token_type")) {
    if (!types->is_array()) return data_loss("tokenizer.ggml.token_type must be an array");
    auto v = types->to_i64_vector();
    if (!v.is_ok()) return data_loss("tokenizer.ggml.token_type: " + v.status().message());
    if (v->size() != n) {
      return data_loss("tokenizer.ggml.token_type has " + std::to_string(v->size()) + " entries, expected " +
                       std::to_string(n) + " (one per token)");
    }
    for (size_t i = 0; i < n; ++i) {
      int64_t t = (*v)[i];
      if (t < 0 || t > 6) {
        return data_loss("tokenizer.ggml.token_type[" + std::to_string(i) + "] = " + std::to_string(t) +
                         " is not a token type (0..6)");
      }
      vocab.types[i] = t == 0 ? TokenType::kNormal : static_cast<TokenType>(t);
    }
  }

  const int32_t n_vocab = static_cast<int32_t>(n);
  CW_RETURN_IF_ERROR(read_optional_id(f, "tokenizer.ggml.bos_token_id", n_vocab, vocab.bos));
  CW_RETURN_IF_ERROR(read_optional_id(f, "tokenizer.ggml.eos_token_id", n_vocab, vocab.eos));
  CW_RETURN_IF_ERROR(read_optional_id(f, "tokenizer.ggml.unknown_token_id", n_vocab, vocab.unk));

  // BERT vocabularies name their sequence markers [CLS] / [SEP] (llama.cpp uses them as BOS / EOS).
  if (vocab.kind == VocabKind::kWpm) {
    if (vocab.bos < 0) CW_RETURN_IF_ERROR(read_optional_id(f, "tokenizer.ggml.cls_token_id", n_vocab, vocab.bos));
    if (vocab.eos < 0) {
      CW_RETURN_IF_ERROR(read_optional_id(f, "tokenizer.ggml.seperator_token_id", n_vocab, vocab.eos));
    }
  }

  const bool spm = vocab.kind == VocabKind::kSpm;
  const bool wpm = vocab.kind == VocabKind::kWpm;
  vocab.add_bos = spm || wpm;
  vocab.add_eos = wpm;
  vocab.add_space_prefix = spm;
  CW_RETURN_IF_ERROR(read_optional_bool(f, "tokenizer.ggml.add_bos_token", vocab.add_bos));
  CW_RETURN_IF_ERROR(read_optional_bool(f, "tokenizer.ggml.add_eos_token", vocab.add_eos));
  CW_RETURN_IF_ERROR(read_optional_bool(f, "tokenizer.ggml.add_space_prefix", vocab.add_space_prefix));

  vocab.index.build(vocab.texts);
  return Status::ok();
}

}  // namespace cw::tok
