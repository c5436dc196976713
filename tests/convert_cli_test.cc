// `chunkwise convert` end to end (issue 14 step 4): a tiny llama written as safetensors converts to a Q8_0
// GGUF that `chunkwise run` loads; bad flags are one-line errors.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <string>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "support/spm_vocab.h"
#include "support/testing.h"

namespace cw {
namespace {

using testing::chunkwise_binary;
using testing::run_command;
using testing::shell_quote;
using testing::temp_dir;

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Writes the F32 tensors of `f` as an F32 safetensors file (PyTorch's reversed shapes).
void write_safetensors(const gguf::File& f, const std::string& path) {
  std::string header = "{", data;
  for (const auto& t : f.tensors()) {
    std::string shape;
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) {
      if (!shape.empty()) shape += ',';
      shape += std::to_string(*it);
    }
    if (header.size() > 1) header += ',';
    header += '"';
    header += t.name;
    header += "\":{\"dtype\":\"F32\",\"shape\":[" + shape + "],\"data_offsets\":[";
    header += std::to_string(data.size()) + "," + std::to_string(data.size() + t.n_bytes) + "]}";
    data.append(reinterpret_cast<const char*>(t.data), t.n_bytes);
  }
  header += "}";
  std::string len(8, '\0');
  for (int i = 0; i < 8; ++i) len[static_cast<size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  write_bytes(path, len + header + data);
}

struct Inputs {
  std::string st, config, vocab;
};

const Inputs& inputs() {
  static const Inputs in = [] {
    Inputs r;
    r.st = temp_dir() + "/cli_convert.safetensors";
    r.config = temp_dir() + "/cli_convert.json";
    r.vocab = temp_dir() + "/cli_convert_vocab.gguf";
    gguf::Writer w;
    testing::add_small_spm_vocab(w);
    EXPECT_TRUE(w.write(r.vocab).is_ok());
    auto f = gguf::File::open(testing::tiny_llama_f32("cli_convert_src.gguf", 5));
    EXPECT_TRUE(f.is_ok());
    write_safetensors(**f, r.st);
    write_bytes(r.config,
                R"({"arch":"llama","n_embd":256,"n_layer":2,"n_head":4,"n_head_kv":2,"n_ff":512,"n_ctx":2048,)"
                R"("rope_freq_base":10000,"rms_eps":1e-5,"name":"cli-test"})");
    return r;
  }();
  return in;
}

std::string base_command() {
  const Inputs& in = inputs();
  return chunkwise_binary() + " convert --safetensors " + shell_quote(in.st) + " --config " + shell_quote(in.config) +
         " --vocab " + shell_quote(in.vocab);
}

TEST(ConvertCli, GoodRunLoads) {
  const std::string out = temp_dir() + "/cli_convert_q8.gguf";
  auto r = run_command(base_command() + " --type q8_0 -o " + shell_quote(out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Q8_0"), std::string::npos) << r.out;
  auto f = gguf::File::open(out);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ(*(*f)->get_string("general.name"), "cli-test");
  EXPECT_EQ((*f)->find_tensor("blk.0.attn_q.weight")->type, gguf::TensorType::kQ8_0);
  auto run = run_command(chunkwise_binary() + " run -m " + shell_quote(out) + " -n 4 -p hello");
  EXPECT_EQ(run.exit_code, 0) << run.err;
}

TEST(ConvertCli, BadFlags) {
  const std::string out = temp_dir() + "/cli_convert_bad.gguf";
  auto r = run_command(base_command() + " --type q4_k_m -o " + shell_quote(out));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("unsupported type 'q4_k_m'"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  auto r2 = run_command(base_command() + " --type f16");
  EXPECT_NE(r2.exit_code, 0);
  EXPECT_NE(r2.err.find("-o OUT.gguf is required"), std::string::npos) << r2.err;
  EXPECT_EQ(r2.err.find('\n'), r2.err.size() - 1) << r2.err;
  auto r3 = run_command(base_command() + " --typo f16 -o " + shell_quote(out));
  EXPECT_NE(r3.exit_code, 0);
  EXPECT_EQ(r3.err.find('\n'), r3.err.size() - 1) << r3.err;
  std::ifstream probe(out);
  EXPECT_FALSE(probe.good());
}

}  // namespace
}  // namespace cw
