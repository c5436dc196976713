// A small SentencePiece-style (llama) vocabulary for tests that generate models in memory
// (model::make_model copies the tokenizer.* metadata of a vocabulary file into the model).
#pragma once

#include "gguf/reader.h"
#include "gguf/writer.h"

#include <cstdint>
#include <memory>
#include <string>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace cw::testing {

// Adds to `w`, in this order: tokenizer.ggml.model = "llama", tokenizer.ggml.tokens (512 tokens:
// <unk> <s> </s>, the 256 byte tokens <0x00>..<0xFF>, then "▁w0", "▁w1", ...), tokenizer.ggml.scores
// (0 for the first 259, then -i for "▁wi"), tokenizer.ggml.token_type (2, 3, 3, 256 x 6, then 1),
// tokenizer.ggml.bos_token_id = 1 and (with_eos) tokenizer.ggml.eos_token_id = 2.
void add_small_spm_vocab(gguf::Writer& w, bool with_eos = true);

// That vocabulary alone, parsed once per process (an in-memory GGUF that lives until exit): what
// model::make_model takes as its vocabulary in tests.
const gguf::File& small_spm_vocab_file();

// Writes (once per name and process) a random-weight `tiny`-shape llama in F32 with that vocabulary
// (model::make_model; training context 2048) to testing::temp_dir()/name and returns its path. Without
// eos (with_eos false) the model never ends a generation by itself: what tests of cancellation and
// deadlines need.
const std::string& tiny_llama_f32(const std::string& name, uint64_t seed, bool with_eos = true);

// A model and its GGUF's tokenizer, loaded or the test process aborts with the error.
struct LoadedModel {
  std::unique_ptr<model::Model> model;
  std::unique_ptr<tok::Tokenizer> tok;
};
LoadedModel load_model_and_tokenizer(const std::string& path);

}  // namespace cw::testing
