// Byte-level BPE training (issue 14): learns a GPT-2 style vocabulary (256 byte tokens + merges + special
// tokens) from text, to be written as a GGUF `gpt2` vocabulary that tok::Tokenizer loads.
//
// Algorithm: the texts are split into words by the engine's own pre-tokenizer for `pre` (pretokenizer.h),
// so training and encoding cut words at the same places; equal words are counted once with their
// frequency. Every word starts as its bytes (token id = byte value). Repeatedly, the adjacent pair with the
// highest count (summed over word frequencies, overlapping occurrences counted, as in GPT-2 / Hugging Face)
// is merged into a new token; ties go to the pair whose (left bytes, right bytes) is lexicographically
// smallest. Occurrences in a word are replaced left to right without overlap (the order the encoder
// applies merges of equal rank). Pair counts are updated incrementally: a merge only revisits the words
// that contain its pair (an inverted index pair -> words) and a max-heap with lazy deletion finds the next
// pair, so a merge costs time proportional to the words it touches, not to the corpus.
//
// Reproducibility: the result is a pure function of (texts, options) — no hash-order dependence.
// Thread-safety: train_bpe is reentrant; it runs on the calling thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace cw::gguf {
class Writer;
}

namespace cw::tok {

struct BpeTrainOptions {
  // Total vocabulary: 256 byte tokens + merges + special_tokens.size(). Must lie in
  // [256 + special_tokens.size(), kMaxTrainedVocab] (257 .. 131072 with the default special token).
  int32_t vocab_size = 2048;
  // tokenizer.ggml.pre; must be a name PreTokenizer::create accepts.
  std::string pre = "gpt2";
  // Pairs seen fewer times than this are never merged (training fails when the corpus runs out of pairs
  // before vocab_size).
  int64_t min_pair_count = 2;
  // Control tokens appended after the merges, in order. The first one is BOS and EOS.
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
  bool add_bos = true;   // tokenizer.ggml.add_bos_token
  bool add_eos = false;  // tokenizer.ggml.add_eos_token
};

constexpr int32_t kMaxTrainedVocab = 1 << 17;

struct TrainedBpe {
  std::string pre;
  // Raw bytes of every token, by id: [0, 256) the bytes, then one per merge, then the special tokens.
  std::vector<std::string> tokens;
  // Merges in rank order: (left id, right id); merge i made token 256 + i.
  std::vector<std::pair<int32_t, int32_t>> merges;
  int32_t first_special = 0;  // id of special_tokens[0]
  int32_t n_special = 0;
  bool add_bos = true, add_eos = false;
  // Statistics of the corpus.
  uint64_t n_bytes = 0;         // bytes of text
  uint64_t n_words = 0;         // pre-tokenized words
  uint64_t n_unique_words = 0;  // distinct words
};

// Errors (kInvalidArgument): vocab_size out of range, an unknown `pre` (kUnimplemented from the
// pre-tokenizer), no text (all texts empty), an empty or duplicate special token, a corpus with too few
// pairs of count >= min_pair_count to reach vocab_size (the message says how many merges it allowed).
Result<TrainedBpe> train_bpe(std::span<const std::string_view> texts, const BpeTrainOptions& options);

// Adds the tokenizer.* keys of a GGUF `gpt2` vocabulary: model, pre, tokens (GPT-2 byte-level
// characters; special tokens as their text), token_type (1 normal, 3 control), merges ("left right" in
// byte-level characters), bos/eos ids (the first special token; absent when there is none),
// add_bos_token / add_eos_token. Adds nothing else (no general.* keys).
void write_bpe_vocab(const TrainedBpe& bpe, gguf::Writer& w);

}  // namespace cw::tok
