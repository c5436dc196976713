// chunkwise train-tokenizer --vocab-size N [--pre gpt2] [--min-count C] (-f FILE... | --gen SPEC)
//                           [--words FILE] -o VOCAB.gguf [-q]
// Trains a byte-level BPE vocabulary (src/tokenizer/bpe_train.h) and writes it as a GGUF `gpt2` vocabulary
// (issue 14). With --gen the text comes from the haystack generator (src/eval/haystack.h): each sample's
// prompt and answer (format_prompt + format_answer), so the vocabulary fits what the model is trained on.
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "args.h"
#include "base/file_io.h"
#include "commands.h"
#include "eval/haystack.h"
#include "gguf/writer.h"
#include "tokenizer/bpe_train.h"

namespace cw::app {
namespace {

constexpr const char* kCmd = "train-tokenizer";

struct GenSpec {
  eval::GenOptions options;
  int64_t n = 1000;
  uint64_t seed = 0;
};

Result<uint64_t> parse_uint(const std::string& key, const std::string& v, uint64_t max) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || v[0] == '-' || *end != '\0' || errno != 0 || x > max)
    return invalid_argument("--gen: " + key + "='" + v + "' is not an integer in 0.." + std::to_string(max));
  return static_cast<uint64_t>(x);
}

// "recipe=mix,n=2000,length=2000,seed=1[,needles=4]"; length may list several as L1/L2/...
Result<GenSpec> parse_gen(const std::string& spec) {
  GenSpec g;
  g.options.recipe = eval::Recipe::kMix;
  size_t at = 0;
  while (at <= spec.size()) {
    size_t comma = spec.find(',', at);
    if (comma == std::string::npos) comma = spec.size();
    const std::string item = spec.substr(at, comma - at);
    at = comma + 1;
    const size_t eq = item.find('=');
    if (eq == std::string::npos)
      return invalid_argument("--gen: '" + item + "' is not key=value (keys: recipe, n, length, seed, needles)");
    const std::string k = item.substr(0, eq), v = item.substr(eq + 1);
    if (k == "recipe") {
      CW_ASSIGN_OR_RETURN(g.options.recipe, eval::parse_recipe(v));
    } else if (k == "n") {
      CW_ASSIGN_OR_RETURN(const uint64_t n, parse_uint(k, v, uint64_t{1} << 32));
      if (n == 0) return invalid_argument("--gen: n must be >= 1");
      g.n = static_cast<int64_t>(n);
    } else if (k == "seed") {
      CW_ASSIGN_OR_RETURN(g.seed, parse_uint(k, v, ~uint64_t{0}));
    } else if (k == "needles") {
      CW_ASSIGN_OR_RETURN(const uint64_t x, parse_uint(k, v, 64));
      g.options.needles = static_cast<int>(x);
    } else if (k == "length") {
      g.options.lengths.clear();
      size_t p = 0;
      while (p <= v.size()) {
        size_t slash = v.find('/', p);
        if (slash == std::string::npos) slash = v.size();
        CW_ASSIGN_OR_RETURN(const uint64_t L, parse_uint(k, v.substr(p, slash - p), uint64_t{1} << 32));
        g.options.lengths.push_back(static_cast<int64_t>(L));
        p = slash + 1;
      }
    } else {
      return invalid_argument("--gen: unknown key '" + k + "' (keys: recipe, n, length, seed, needles)");
    }
  }
  CW_RETURN_IF_ERROR(eval::validate(g.options));
  return g;
}

}  // namespace

int train_tokenizer_main(int argc, char** argv) {
  int64_t vocab_size = 0, min_count = 2;
  std::string pre = "gpt2", gen, words = eval::kDefaultWordsPath, output;
  std::vector<std::string> files;
  bool quiet = false;
  ArgParser p(kCmd,
              "--vocab-size N [--pre NAME] [--min-count C] (-f FILE... | --gen SPEC) [--words FILE] -o VOCAB.gguf",
              "Trains a byte-level BPE vocabulary on text and writes it as a GGUF 'gpt2' vocabulary that\n"
              "`chunkwise tokenize -m` / `gen-data --vocab` load: 256 byte tokens, N - 257 merges, then\n"
              "<|endoftext|> (BOS and EOS, added at the start). Words are split by the engine's own\n"
              "pre-tokenizer --pre; the most frequent adjacent pair is merged first, ties by bytes.\n"
              "Byte-for-byte reproducible for the same text and flags.\n\n"
              "--gen SPEC takes the text from the haystack generator (as `gen-data`): comma-separated\n"
              "key=value among recipe (passkey|kv|multi|extract|mix, default mix), n (samples, default 1000),\n"
              "length (chars, L or L1/L2/..., default 2000), seed (default 0), needles (default 4);\n"
              "each sample contributes its prompt and answer text.\n\n"
              "exit codes: 0 ok, 2 bad flags / unreadable input / too little text, 1 output error.");
  p.option("--vocab-size", &vocab_size, "N", "tokens in the vocabulary, 257..131072", 1, int64_t{1} << 30);
  p.option("--pre", &pre, "NAME", "pre-tokenizer (tokenizer.ggml.pre; default gpt2)");
  p.option("--min-count", &min_count, "C", "merge only pairs seen at least C times (default 2)", 1, int64_t{1} << 40);
  p.option("-f,--file", &files, "FILE", "a text file to train on (repeatable)");
  p.option("--gen", &gen, "SPEC", "generated text: 'recipe=mix,n=2000,length=2000,seed=1'");
  p.option("--words", &words, "FILE", std::string("word list for --gen (default ") + eval::kDefaultWordsPath + ")");
  p.option("-o,--output", &output, "VOCAB.gguf", "output GGUF vocabulary (required)");
  p.flag("-q,--quiet", &quiet, "no summary on stderr");
  if (Status s = p.parse(argc, argv); !s.is_ok()) return report_error(kCmd, s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }
  if (!p.given("--vocab-size")) return report_error(kCmd, invalid_argument("--vocab-size N is required"));
  if (output.empty()) return report_error(kCmd, invalid_argument("-o VOCAB.gguf is required"));
  if (files.empty() == gen.empty())
    return report_error(kCmd, invalid_argument("give either -f FILE... or --gen SPEC (exactly one of them)"));

  tok::BpeTrainOptions o;
  if (vocab_size > tok::kMaxTrainedVocab)
    return report_error(kCmd, invalid_argument("--vocab-size " + std::to_string(vocab_size) + " is above " +
                                               std::to_string(tok::kMaxTrainedVocab)));
  o.vocab_size = static_cast<int32_t>(vocab_size);
  o.pre = pre;
  o.min_pair_count = min_count;

  // The text: files as they are, or generated samples.
  std::vector<std::string> texts;
  if (!gen.empty()) {
    auto g = parse_gen(gen);
    if (!g.is_ok()) return report_error(kCmd, g.status());
    auto wl = eval::WordList::load(words);
    if (!wl.is_ok()) return report_error(kCmd, wl.status());
    const eval::HaystackGenerator generator(*wl);
    texts.reserve(static_cast<size_t>(g->n));
    for (int64_t i = 0; i < g->n; ++i) {
      auto s = generator.generate(g->options, g->seed, i);
      if (!s.is_ok()) return report_error(kCmd, s.status());
      texts.push_back(eval::format_prompt(*s) + eval::format_answer(*s));
    }
  } else {
    if (Status s = check_output_not_input(output, files); !s.is_ok()) return report_error(kCmd, s);
    for (const std::string& f : files) {
      auto t = read_input(f);
      if (!t.is_ok()) return report_error(kCmd, t.status());
      texts.push_back(std::move(t).value());
    }
  }
  std::vector<std::string_view> views(texts.begin(), texts.end());

  const auto t0 = std::chrono::steady_clock::now();
  auto bpe = tok::train_bpe(views, o);
  if (!bpe.is_ok()) return report_error(kCmd, bpe.status());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  gguf::Writer w;
  tok::write_bpe_vocab(*bpe, w);
  auto out = OutputFile::create(output);
  if (!out.is_ok()) return report_error(kCmd, out.status());
  const std::vector<uint8_t> bytes = w.bytes();
  if (Status s = out->write(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size())); !s.is_ok()) {
    report_error(kCmd, s);
    return kExitFailure;
  }
  if (Status s = out->commit(); !s.is_ok()) {
    report_error(kCmd, s);
    return kExitFailure;
  }
  if (!quiet)
    std::fprintf(stderr,
                 "train-tokenizer: %llu bytes, %llu words (%llu distinct) -> %zu tokens (%zu merges) in %.2f s; "
                 "wrote %s\n",
                 static_cast<unsigned long long>(bpe->n_bytes), static_cast<unsigned long long>(bpe->n_words),
                 static_cast<unsigned long long>(bpe->n_unique_words), bpe->tokens.size(), bpe->merges.size(), secs,
                 output.c_str());
  return kExitOk;
}

}  // namespace cw::app
