// Test helpers for llama.cpp's vocabulary test vectors in ../shared/data/vocab/ (shared by the
// vocab-vector and hostile-input tokenizer tests): ggml-vocab-<name>.gguf with .inp (strings separated by
// "\n__ggml_vocab_test__\n") and .out (one line of expected ids per string).
#pragma once

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace cw::tok::testing {

inline constexpr const char* kVocabVectorNames[] = {"llama-spm", "phi-3",        "gpt-2",          "falcon",  "mpt",
                                                    "starcoder", "deepseek-llm", "deepseek-coder", "bert-bge"};

inline std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The strings of an .inp file.
inline std::vector<std::string> split_inputs(const std::string& text) {
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    size_t next = text.find(sep, pos);
    if (next == std::string::npos) break;
    out.push_back(text.substr(pos, next - pos));
    pos = next + sep.size();
  }
  return out;
}

// The id lists of an .out file, one per line.
inline std::vector<std::vector<int32_t>> read_expected(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::vector<int32_t>> out;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ls(line);
    std::vector<int32_t> ids;
    int64_t id;
    while (ls >> id) ids.push_back(static_cast<int32_t>(id));
    out.push_back(std::move(ids));
  }
  return out;
}

}  // namespace cw::tok::testing
