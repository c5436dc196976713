// Writes the embedded demo GGUF used by the README quick start until the project ships its own model:
// a small SentencePiece-style vocabulary (byte fallback + English pieces) built here with the GGUF writer,
// and a random-weight tiny llama over it (make-model's "tiny" shape, Q8_0). Its text is gibberish by
// design; it exists so that inspect, tokenize and run work on a fresh machine with no download.
//   usage: make_demo_gguf OUT.gguf
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "model/make_model.h"

namespace {

const char* const kWords[] = {
    "the", "and", "to", "of", "a", "in", "is", "it", "that", "was", "for", "on", "with", "as", "at", "by",
    "chunk", "chunks", "long", "input", "inputs", "model", "models", "local", "cheap", "accurate", "token",
    "tokens", "text", "work", "works", "engine", "cache", "prefill", "once", "upon", "time", "there", "little",
    "girl", "named", "lily", "she", "he", "they", "day", "story", "read", "write", "fast", "small", "large",
    "Once", "The", "It", "She", "He", "They", "Lily"};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_demo_gguf OUT.gguf\n");
    return 2;
  }
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  std::vector<float> scores = {0, 0, 0};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    tokens.push_back(buf);
    types.push_back(6);
    scores.push_back(0);
  }
  // Pieces: every printable ASCII character, then every prefix of "▁word" (so SPM merges can reach the
  // whole word); longer pieces score higher.
  std::set<std::string> seen(tokens.begin(), tokens.end());
  auto add = [&](const std::string& piece) {
    if (!seen.insert(piece).second) return;
    tokens.push_back(piece);
    types.push_back(1);
    scores.push_back(-1000.0f + 10.0f * static_cast<float>(piece.size()) - static_cast<float>(tokens.size()) * 1e-3f);
  };
  const std::string space = "\xe2\x96\x81";  // U+2581
  add(space);
  for (char c = 33; c < 127; ++c) add(std::string(1, c));
  for (const char* w : kWords) {
    std::string full = space + w;
    for (size_t n = space.size() + 1; n <= full.size(); ++n) add(full.substr(0, n));
  }

  cw::gguf::Writer w;
  w.add_string("general.architecture", "llama")
      .add_string("general.name", "chunkwise demo vocabulary")
      .add_u32("llama.context_length", 256)
      .add_string("tokenizer.ggml.model", "llama")
      .add_string_array("tokenizer.ggml.tokens", tokens)
      .add_f32_array("tokenizer.ggml.scores", scores)
      .add_i32_array("tokenizer.ggml.token_type", types)
      .add_u32("tokenizer.ggml.unknown_token_id", 0)
      .add_u32("tokenizer.ggml.bos_token_id", 1)
      .add_u32("tokenizer.ggml.eos_token_id", 2)
      .add_bool("tokenizer.ggml.add_bos_token", true)
      .add_bool("tokenizer.ggml.add_eos_token", false);

  // The demo model: a random-weight tiny llama (make-model's "tiny" shape, Q8_0) over this vocabulary.
  const std::vector<uint8_t> vocab_image = w.bytes();
  auto vocab = cw::gguf::File::parse(vocab_image, "demo-vocab");
  if (!vocab.is_ok()) {
    std::fprintf(stderr, "make_demo_gguf: %s\n", vocab.status().to_string().c_str());
    return 1;
  }
  cw::model::MakeModelOptions opts;
  opts.arch = "llama";
  opts.shape = "tiny";
  opts.type = "q8_0";
  opts.seed = 1;
  opts.n_threads = 1;
  auto made = cw::model::make_model(opts, **vocab, argv[1]);
  if (!made.is_ok()) {
    std::fprintf(stderr, "make_demo_gguf: %s\n", made.status().to_string().c_str());
    return 1;
  }
  return 0;
}
