#include "tokenizer/tokenizer.h"

#include <string>

#include "tokenizer/bpe.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/special_tokens.h"
#include "tokenizer/spm.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"
#include "tokenizer/word_cache.h"
#include "tokenizer/wpm.h"

namespace cw::tok {

struct Tokenizer::Impl {
  Vocab vocab;  // not movable once built (the index points into it): Impl lives on the heap
  uint64_t cache_owner = WordCache::new_owner_id();
  std::unique_ptr<SpmEncoder> spm;
  std::unique_ptr<BpeEncoder> bpe;
  std::unique_ptr<WpmEncoder> wpm;
  std::unique_ptr<PreTokenizer> pre;
  SpecialMatcher special;
  std::vector<std::string> pieces;  // token_to_piece, precomputed
  std::string pre_name;

  void encode_raw(std::string_view text, bool space_prefix, std::vector<int32_t>& out) const;
};

namespace {

int parse_byte_token(std::string_view t) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  const int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

bool contains(std::string_view s, std::string_view sub) { return s.find(sub) != std::string_view::npos; }

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const gguf::File& f) {
  auto impl = std::make_unique<Impl>();
  Vocab& v = impl->vocab;
  CW_RETURN_IF_ERROR(load_vocab(f, v));
  const int32_t n = v.n_vocab();

  std::vector<uint8_t> lstrip, rstrip;
  if (v.kind == VocabKind::kSpm) {
    impl->pre_name = v.pre.empty() ? "default" : v.pre;
    impl->spm = std::make_unique<SpmEncoder>(v, impl->cache_owner);
    // llama.cpp: Phi-3 special tokens swallow the whitespace that follows them.
    if (contains(v.name, "phi-3") || contains(v.name, "phi3")) {
      rstrip.assign(n, 0);
      for (int32_t id = 0; id < n; ++id) {
        const TokenType t = v.types[id];
        const std::string& s = v.texts[id];
        bool on = t == TokenType::kControl || t == TokenType::kUnknown || t == TokenType::kUserDefined;
        if (s == "</s>") on = true;
        if (s == "<unk>" || s == "<s>" || s == "<|endoftext|>") on = false;
        rstrip[id] = on;
      }
    }
  } else if (v.kind == VocabKind::kWpm) {
    impl->pre_name = v.pre.empty() ? "default" : v.pre;
    impl->wpm = std::make_unique<WpmEncoder>(v);
  } else {
    CW_ASSIGN_OR_RETURN(impl->pre, PreTokenizer::create(v.pre));
    (void)cp_flags(0x100);  // build the code-point table now rather than in the first encode()
    impl->pre_name = v.pre.empty() ? "default" : v.pre;
    CW_ASSIGN_OR_RETURN(impl->bpe, BpeEncoder::create(v, f, impl->pre->ignore_merges(), impl->cache_owner));
  }
  impl->special.build(v, lstrip, rstrip);

  impl->pieces.resize(n);
  for (int32_t id = 0; id < n; ++id) {
    const std::string& t = v.texts[id];
    std::string& p = impl->pieces[id];
    switch (v.types[id]) {
      case TokenType::kNormal:
      case TokenType::kUndefined:  // NOLINT
        if (v.kind != VocabKind::kBpe) {  // SPM and WordPiece: U+2581 stands for a space
          size_t pos = 0;
          while (pos < t.size()) {
            size_t q = t.find("\xE2\x96\x81", pos);
            if (q == std::string::npos) q = t.size();
            p.append(t, pos, q - pos);
            if (q < t.size()) p.push_back(' ');
            pos = q + 3;
          }
        } else {
          p = byte_level_decode(t);
        }
        break;
      case TokenType::kByte: {
        const int b = parse_byte_token(t);
        if (b >= 0) {
          p.assign(1, static_cast<char>(b));
        } else {
          p = t;
        }
        break;
      }
      default:
        p = t;
        break;
    }
  }
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

void Tokenizer::Impl::encode_raw(std::string_view text, bool space_prefix, std::vector<int32_t>& out) const {
  if (spm) {
    thread_local std::string escaped;
    escaped.clear();
    if (space_prefix) escaped.append("\xE2\x96\x81");
    spm_escape(text, escaped);
    spm->encode_escaped(escaped, out);
    return;
  }
  if (wpm) {
    wpm->encode(text, out);
    return;
  }
  thread_local std::vector<std::string_view> words;
  words.clear();
  pre->split(text, words);
  bpe->encode_words(words, out);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const Impl& m = *impl_;
  const Vocab& v = m.vocab;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && v.add_bos && v.bos >= 0) out.push_back(v.bos);
  thread_local std::vector<Fragment> frags;
  m.special.partition(text, parse_special, frags);
  bool prev_special = true;  // SPM: a space prefix goes before the first text and after special tokens
  for (const Fragment& f : frags) {
    if (f.token >= 0) {
      out.push_back(f.token);
      prev_special = true;
      continue;
    }
    m.encode_raw(text.substr(f.begin, f.end - f.begin), v.add_space_prefix && prev_special, out);
    prev_special = false;
  }
  if (add_special && v.add_eos && v.eos >= 0) out.push_back(v.eos);
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id) const {
  if (id < 0 || id >= n_vocab()) return {};
  return impl_->pieces[id];
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  const Impl& m = *impl_;
  const Vocab& v = m.vocab;
  // The space that the SPM prefix or WordPiece's word marker adds to the first word is removed.
  const bool strip_rule = (v.kind == VocabKind::kSpm && v.add_space_prefix) || v.kind == VocabKind::kWpm;
  std::string out;
  bool strip_next = strip_rule;
  for (int32_t id : ids) {
    if (id < 0 || id >= v.n_vocab()) continue;
    const TokenType t = v.types[id];
    // Tokens that encode() emits as separate fragments; the text after them got a space prefix.
    const bool fragment = t == TokenType::kControl || t == TokenType::kUnknown || t == TokenType::kUserDefined;
    if (skip_special && (t == TokenType::kControl || t == TokenType::kUnknown || t == TokenType::kUnused)) {
      if (fragment) strip_next = strip_rule;
      continue;
    }
    std::string_view p = m.pieces[id];
    if (fragment) {
      out.append(p);
      strip_next = strip_rule;
      continue;
    }
    if (strip_next && !p.empty() && p[0] == ' ') p.remove_prefix(1);
    out.append(p);
    strip_next = false;
  }
  return out;
}

int32_t Tokenizer::n_vocab() const { return impl_->vocab.n_vocab(); }
int32_t Tokenizer::bos() const { return impl_->vocab.bos; }
int32_t Tokenizer::eos() const { return impl_->vocab.eos; }
bool Tokenizer::add_bos() const { return impl_->vocab.add_bos; }
bool Tokenizer::add_eos() const { return impl_->vocab.add_eos; }

bool Tokenizer::is_special(int32_t id) const {
  if (id < 0 || id >= n_vocab()) return false;
  const TokenType t = impl_->vocab.types[id];
  return t == TokenType::kControl || t == TokenType::kUnknown || t == TokenType::kUserDefined;
}

std::string_view Tokenizer::token_text(int32_t id) const {
  if (id < 0 || id >= n_vocab()) return {};
  return impl_->vocab.texts[id];
}

std::string_view Tokenizer::model_name() const { return impl_->vocab.model; }
std::string_view Tokenizer::pre_name() const { return impl_->pre_name; }

}  // namespace cw::tok
