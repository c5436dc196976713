// cw::tok::Tokenizer: text <-> token ids for the vocabulary stored in a GGUF file (tokenizer.ggml.*),
// compatible with llama.cpp's tokenizers:
//   - model "llama": SentencePiece-style BPE by scores with byte fallback (spm.h);
//   - model "gpt2":  byte-level BPE with merges and a per-family pre-tokenizer chosen by
//                    tokenizer.ggml.pre (pretokenizer.h lists the supported names);
//   - model "bert":  WordPiece (wpm.h): BERT pre-tokenization, greedy longest match;
//   - other models ("t5", ...): from_gguf returns kUnimplemented naming the model type.
//
// Special tokens (special_tokens.h): control and unknown tokens are recognised in the text only when
// parse_special is true; user-defined tokens are always recognised (llama.cpp / Hugging Face behaviour:
// they are added tokens that the test vectors rely on, e.g. runs of spaces in MPT / GPT-NeoX vocabs).
//
// Invalid UTF-8 never fails: SPM encodes each invalid byte through byte fallback (<0xNN>); byte-level BPE
// maps every byte through the byte-level table (the pre-tokenizer classifies an invalid byte as U+FFFD);
// WordPiece drops invalid bytes, as llama.cpp does.
// Inputs are limited to < 4 GiB per call.
//
// Ownership: a Tokenizer copies everything it needs; the gguf::File may be closed after from_gguf.
// Thread-safety: all const methods may be called concurrently from many threads (scratch space and the
// word cache are thread-local).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gguf/reader.h"

namespace cw::tok {

class Tokenizer {
 public:
  // Reads and validates tokenizer.ggml.* metadata. Errors: kNotFound (no tokenizer / tokens / merges),
  // kDataLoss (arrays of the wrong type or length, bad merges, bad token types), kOutOfRange (special ids
  // outside the vocabulary), kUnimplemented (unsupported model type or pre-tokenizer).
  static Result<std::unique_ptr<Tokenizer>> from_gguf(const gguf::File& f);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // add_special: prepend BOS / append EOS as the vocabulary asks (add_bos() / add_eos()).
  // parse_special: recognise control tokens written in the text (e.g. "<|endoftext|>").
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // The bytes a token stands for: normal tokens decoded (SPM: U+2581 -> ' '; BPE: byte-level -> bytes),
  // byte tokens <0xNN> -> that byte, control / unknown / user-defined / unused tokens -> their text.
  // Out-of-range ids give "".
  std::string token_to_piece(int32_t id) const;

  // Concatenated pieces. SPM (with add_space_prefix) and WordPiece: one leading space is removed from the
  // first piece of the text and from the first piece after a control / unknown / user-defined token,
  // inverting the space prefix encode() adds there. WordPiece decodes to the normalised text (lower case,
  // accents dropped, a space before each punctuation mark), not to the input.
  // skip_special: leave out control, unknown and unused tokens. Out-of-range ids are skipped.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  int32_t n_vocab() const;
  int32_t bos() const;  // -1 when absent
  int32_t eos() const;  // -1 when absent
  bool add_bos() const;
  bool add_eos() const;
  // Control, unknown or user-defined token.
  bool is_special(int32_t id) const;
  // The text of token `id` as stored in the vocabulary ("" when out of range).
  std::string_view token_text(int32_t id) const;
  std::string_view model_name() const;  // tokenizer.ggml.model: "llama", "gpt2" or "bert"
  std::string_view pre_name() const;    // tokenizer.ggml.pre, "default" when absent

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cw::tok
