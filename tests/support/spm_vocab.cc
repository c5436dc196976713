#include "support/spm_vocab.h"

#include "base/status.h"
#include "model/make_model.h"
#include "support/testing.h"

#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace cw::testing {

void add_small_spm_vocab(gguf::Writer& w, bool with_eos) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    tokens.emplace_back(buf);
    scores.push_back(0);
    types.push_back(6);
  }
  for (int i = 0; tokens.size() < 512; ++i) {
    tokens.push_back("\xE2\x96\x81w" + std::to_string(i));
    scores.push_back(-static_cast<float>(i));
    types.push_back(1);
  }
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_f32_array("tokenizer.ggml.scores", scores);
  w.add_i32_array("tokenizer.ggml.token_type", types);
  w.add_u32("tokenizer.ggml.bos_token_id", 1);
  if (with_eos) w.add_u32("tokenizer.ggml.eos_token_id", 2);
}

namespace {

const gguf::File* parse_small_spm_vocab(bool with_eos) {
  gguf::Writer w;
  add_small_spm_vocab(w, with_eos);
  static std::vector<uint8_t> images[2];  // the parsed files point into these
  std::vector<uint8_t>& image = images[with_eos ? 1 : 0];
  image = w.bytes();
  auto parsed = gguf::File::parse(image, with_eos ? "small-vocab" : "small-vocab-no-eos");
  CW_CHECK(parsed.is_ok());
  return std::move(parsed).value().release();
}

}  // namespace

const gguf::File& small_spm_vocab_file() {
  static const gguf::File* f = parse_small_spm_vocab(/*with_eos=*/true);
  return *f;
}

const std::string& tiny_llama_f32(const std::string& name, uint64_t seed, bool with_eos) {
  static std::mutex mu;
  static std::map<std::string, std::string> made;
  std::lock_guard<std::mutex> lock(mu);
  auto it = made.find(name);
  if (it != made.end()) return it->second;
  model::MakeModelOptions o;
  o.arch = "llama";
  o.shape = "tiny";
  o.type = "f32";
  o.seed = seed;
  o.n_threads = 1;
  std::string path = temp_dir();
  path += '/';
  path += name;
  static const gguf::File* no_eos = parse_small_spm_vocab(/*with_eos=*/false);
  auto r = model::make_model(o, with_eos ? small_spm_vocab_file() : *no_eos, path);
  CW_CHECK_MSG(r.is_ok(), r.status().to_string());
  return made.emplace(name, path).first->second;
}

LoadedModel load_model_and_tokenizer(const std::string& path) {
  LoadedModel l;
  auto m = model::Model::load(path);
  CW_CHECK_MSG(m.is_ok(), m.status().to_string());
  l.model = std::move(m).value();
  auto t = tok::Tokenizer::from_gguf(l.model->file());
  CW_CHECK_MSG(t.is_ok(), t.status().to_string());
  l.tok = std::move(t).value();
  return l;
}

}  // namespace cw::testing
