// Tokenizer throughput: encodes >= 10 MB of English-ish text (stories260K-generated.txt and the
// chunking_eval corpora, repeated) in one call per iteration, single thread, with an SPM vocab and
// byte-level BPE vocabs. Reports bytes/s. Skips cleanly when ../shared/data is absent.
//
//   cw_tokenizer_bench [--benchmark_filter=...]     (run from the project root)
//   CW_BENCH_CORPUS_BYTES=200000 valgrind --tool=callgrind cw_tokenizer_bench --benchmark_filter=encode/falcon
#include <benchmark/benchmark.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace {

constexpr size_t kMinBytes = 10u << 20;

bool is_dir(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string shared_data_dir() {
  if (const char* env = std::getenv("CW_SHARED_DIR")) return is_dir(std::string(env) + "/data") ? std::string(env) + "/data" : "";
  for (const char* c : {"../shared/data", "../../shared/data", "../../../shared/data"})
    if (is_dir(c)) return c;
  return "";
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string build_corpus(const std::string& data) {
  std::string base;
  for (const char* rel : {"/text/stories260K-generated.txt", "/chunking_eval/corpora/chatlogs.md",
                          "/chunking_eval/corpora/state_of_the_union.md", "/chunking_eval/corpora/wikitexts.md"}) {
    base += read_all(data + rel);
    base += "\n";
  }
  if (base.size() < 1024) return "";
  // CW_BENCH_CORPUS_BYTES: a smaller corpus (e.g. 200000 for profiling under valgrind).
  size_t want = kMinBytes;
  if (const char* env = std::getenv("CW_BENCH_CORPUS_BYTES")) want = std::strtoull(env, nullptr, 10);
  std::string text;
  while (text.size() < want) text += base;
  if (want < kMinBytes) text.resize(want);
  return text;
}

// Loads a vocab on first use, so that --benchmark_filter avoids loading the others.
const cw::tok::Tokenizer* tokenizer(const std::string& data, const std::string& name, std::string* error) {
  static std::vector<std::pair<std::string, std::unique_ptr<cw::tok::Tokenizer>>> cache;
  for (auto& [n, t] : cache)
    if (n == name) return t.get();
  auto f = cw::gguf::File::open(data + "/vocab/ggml-vocab-" + name + ".gguf");
  if (!f.is_ok()) {
    *error = f.status().to_string();
    return nullptr;
  }
  auto t = cw::tok::Tokenizer::from_gguf(**f);
  if (!t.is_ok()) {
    *error = t.status().to_string();
    return nullptr;
  }
  cache.emplace_back(name, std::move(t).value());
  return cache.back().second.get();
}

void bm_encode(benchmark::State& state, std::string data, std::string name, const std::string* text) {
  std::string error;
  const cw::tok::Tokenizer* tok = tokenizer(data, name, &error);
  if (tok == nullptr) {
    state.SkipWithError(error.c_str());
    return;
  }
  size_t n_tokens = 0;
  for (auto _ : state) {
    auto ids = tok->encode(*text, false, false);
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text->size()));
  state.counters["tokens"] = static_cast<double>(n_tokens);
  state.counters["MB"] = static_cast<double>(text->size()) / 1e6;
}

// Pre-tokenizer alone (split into words, no BPE): isolates the regex-equivalent scanners, including
// families without a vocab file here (llama3, qwen2).
void bm_split(benchmark::State& state, std::string pre, const std::string* text) {
  auto p = cw::tok::PreTokenizer::create(pre);
  if (!p.is_ok()) {
    state.SkipWithError(p.status().to_string().c_str());
    return;
  }
  std::vector<std::string_view> words;
  for (auto _ : state) {
    words.clear();
    (*p)->split(*text, words);
    benchmark::DoNotOptimize(words.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text->size()));
  state.counters["words"] = static_cast<double>(words.size());
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const std::string data = shared_data_dir();
  if (data.empty()) {
    std::printf("cw_tokenizer_bench: ../shared/data not found (set CW_SHARED_DIR); nothing to run\n");
    return 0;
  }
  static const std::string text = build_corpus(data);
  if (text.empty()) {
    std::printf("cw_tokenizer_bench: text corpora missing under %s; nothing to run\n", data.c_str());
    return 0;
  }
  for (const char* name :
       {"llama-spm", "gpt-2", "deepseek-llm", "falcon", "deepseek-coder", "starcoder", "mpt", "bert-bge"}) {
    benchmark::RegisterBenchmark((std::string("encode/") + name).c_str(), bm_encode, data, std::string(name), &text)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(2.0)
        ->UseRealTime();
  }
  for (const char* pre : {"gpt-2", "default", "starcoder", "llama3", "qwen2", "deepseek-llm", "deepseek-coder",
                          "falcon"}) {
    benchmark::RegisterBenchmark((std::string("split/") + pre).c_str(), bm_split, std::string(pre), &text)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(1.0)
        ->UseRealTime();
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
