// Writes a seed corpus of small valid GGUF files (every value type, nested arrays, tensors of several
// types, custom alignment) into the directory given as argv[1].
#include <cstdio>
#include <string>
#include <vector>

#include "gguf/writer.h"

using cw::gguf::TensorType;
using cw::gguf::Writer;

static int write(const Writer& w, const std::string& path) {
  if (cw::Status s = w.write(path); !s.is_ok()) {
    std::fprintf(stderr, "%s\n", s.to_string().c_str());
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds DIR\n");
    return 2;
  }
  std::string dir = argv[1];
  int rc = 0;
  {
    Writer w;
    w.add_string("general.architecture", "llama").add_u32("llama.block_count", 2).add_f32("llama.rope.freq_base", 10000.f);
    rc |= write(w, dir + "/meta_only.gguf");
  }
  {
    Writer w;
    w.add_u8("a", 1).add_i8("b", -1).add_u16("c", 2).add_i16("d", -2).add_u32("e", 3).add_i32("f", -3);
    w.add_u64("g", 4).add_i64("h", -4).add_f32("i", 0.5f).add_f64("j", 0.25).add_bool("k", true).add_string("l", "str");
    w.add_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xe2\x96\x81the", "a", "b"});
    w.add_f32_array("tokenizer.ggml.scores", {0, 0, 0, -1, -2, -3});
    w.add_i32_array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1});
    w.add_i32_array_array("nested", {{1, 2, 3}, {}, {4}});
    rc |= write(w, dir + "/all_types.gguf");
  }
  {
    Writer w;
    w.add_string("general.architecture", "llama");
    std::vector<uint8_t> f32(8 * 4, 0x3f), f16(32 * 2, 0x3c), q8(34, 1), q4k(144, 2);
    (void)w.add_tensor("f32", TensorType::kF32, {4, 2}, f32);
    (void)w.add_tensor("f16", TensorType::kF16, {32}, f16);
    (void)w.add_tensor("q8_0", TensorType::kQ8_0, {32}, q8);
    (void)w.add_tensor("q4_k", TensorType::kQ4_K, {256}, q4k);
    rc |= write(w, dir + "/tensors.gguf");
  }
  {
    Writer w;
    w.set_alignment(64);
    std::vector<uint8_t> f32(3 * 4, 0);
    (void)w.add_tensor("x", TensorType::kF32, {3}, f32);
    (void)w.add_tensor("y", TensorType::kF32, {3}, f32);
    rc |= write(w, dir + "/aligned64.gguf");
  }
  return rc;
}
