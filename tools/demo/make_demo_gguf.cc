// Writes the embedded demo GGUF used by the README quick start until the project ships its own model:
// a small SentencePiece-style vocabulary (byte fallback + English pieces) and a few tiny tensors of
// several types, all generated here with the GGUF writer.
//   usage: make_demo_gguf OUT.gguf
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "gguf/writer.h"

namespace {

const char* const kWords[] = {
    "the", "and", "to", "of", "a", "in", "is", "it", "that", "was", "for", "on", "with", "as", "at", "by",
    "chunk", "chunks", "long", "input", "inputs", "model", "models", "local", "cheap", "accurate", "token",
    "tokens", "text", "work", "works", "engine", "cache", "prefill", "once", "upon", "time", "there", "little",
    "girl", "named", "lily", "she", "he", "they", "day", "story", "read", "write", "fast", "small", "large"};

void put_f32(std::vector<uint8_t>& out, float v) {
  uint8_t b[4];
  std::memcpy(b, &v, 4);
  out.insert(out.end(), b, b + 4);
}

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

  // Tiny tensors: an F32 embedding table over the vocabulary and a Q8_0 matrix (all-zero quants, scale 1).
  const uint64_t n_embd = 32;
  std::vector<uint8_t> emb;
  for (size_t t = 0; t < tokens.size(); ++t)
    for (uint64_t e = 0; e < n_embd; ++e) put_f32(emb, std::sin(0.01f * static_cast<float>(t * n_embd + e)));
  std::vector<uint8_t> q8(n_embd / 32 * 34 * n_embd, 0);
  for (size_t blk = 0; blk < q8.size() / 34; ++blk) {
    q8[blk * 34] = 0x00;
    q8[blk * 34 + 1] = 0x3c;  // f16 1.0
  }
  if (auto s = w.add_tensor("token_embd.weight", cw::gguf::TensorType::kF32, {n_embd, tokens.size()}, emb); !s.is_ok() ||
      !(s = w.add_tensor("blk.0.attn_q.weight", cw::gguf::TensorType::kQ8_0, {n_embd, n_embd}, q8)).is_ok()) {
    std::fprintf(stderr, "make_demo_gguf: %s\n", s.to_string().c_str());
    return 1;
  }
  if (auto s = w.write(argv[1]); !s.is_ok()) {
    std::fprintf(stderr, "make_demo_gguf: %s\n", s.to_string().c_str());
    return 1;
  }
  return 0;
}
