// chunkwise gen-data --recipe passkey|kv|multi|extract|mix --n N --seed S --length L[,L2...]
//                    [--unit chars|tokens] [--depth D|random] [--needles K] [--vocab VOCAB.gguf]
//                    [--words FILE] [-o OUT.jsonl] [-q]
// Writes haystack samples (src/eval/haystack.h) as JSON lines: training data for the tiny model and the
// inputs of `eval needle`, from one deterministic generator.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "base/file_io.h"
#include "commands.h"
#include "eval/haystack.h"
#include "gguf/reader.h"
#include "tokenizer/tokenizer.h"

namespace cw::app {
namespace {

constexpr const char* kCmd = "gen-data";

Result<std::vector<int64_t>> parse_lengths(const std::string& s) {
  std::vector<int64_t> out;
  size_t at = 0;
  for (;;) {
    const size_t comma = s.find(',', at);
    const std::string piece = s.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(piece.c_str(), &end, 10);
    if (piece.empty() || *end != '\0' || errno != 0 || v < 1 || v > (int64_t{1} << 32))
      return invalid_argument("--length: '" + piece + "' is not a length in 1..2^32 (L or L1,L2,...)");
    out.push_back(v);
    if (comma == std::string::npos) return out;
    at = comma + 1;
  }
}

Result<double> parse_depth(const std::string& s) {
  if (s == "random") return -1.0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !(v >= 0.0 && v <= 1.0))
    return invalid_argument("--depth: '" + s + "' is not a depth in 0..1 or 'random'");
  return v;
}

}  // namespace

int gen_data_main(int argc, char** argv) {
  std::string recipe = "passkey", lengths = "2000", unit, depth = "random", vocab, words = eval::kDefaultWordsPath,
              output, format = "jsonl";
  int64_t n = 100, needles = 4;
  uint64_t seed = 0;
  bool quiet = false;
  ArgParser p(kCmd,
              "--recipe passkey|kv|multi|extract|quote|mix [--n N] [--seed S] [--length L[,L2...]] [--unit chars|tokens] "
              "[--depth D|random] [--needles K] [--vocab VOCAB.gguf] [--words FILE] [-o OUT.jsonl]",
              "Generates needle-in-a-haystack samples: filler prose from a grammar over an English word list,\n"
              "needles (pass keys, key-value facts with near-miss distractors, several magic numbers) or an\n"
              "extractive question about one generated sentence, with the exact answer and its byte span.\n"
              "Byte-for-byte reproducible for a seed; sample i uses length L[i mod count]. One JSON line each:\n"
              "{\"recipe\",\"seed\",\"index\",\"unit\",\"target_length\",\"length\",\"depth\",\"text\",\"question\",\n"
              "\"answer\",\"answer_begin\",\"answer_end\",\"needles\":[{\"begin\",\"end\"}],\"asked\",\"words_fingerprint\"}\n"
              "and, with --vocab, \"prompt_tokens\" and \"answer_tokens\" of the prompt format\n"
              "(document + \"\\nQuestion: Q\\nAnswer:\", then \" ANSWER\\n\"; docs/design/haystack.md).\n\n"
              "exit codes: 0 ok, 2 bad flags / missing word list or vocabulary, 1 output error.");
  p.option("-r,--recipe", &recipe, "R", "passkey | kv | multi | extract | quote | mix (default passkey; mix draws one of the first four per sample)");
  p.option("-n,--n", &n, "N", "number of samples (default 100)", 1, int64_t{1} << 40);
  p.option("-s,--seed", &seed, "S", "seed of the stream (default 0)");
  p.option("-l,--length", &lengths, "L[,L2...]", "target document length(s) (default 2000)");
  p.option("--unit", &unit, "U", "chars | tokens (default tokens with --vocab, else chars)");
  p.option("-d,--depth", &depth, "D", "depth of the asked needle, 0..1, or random (default random)");
  p.option("--needles", &needles, "K", "facts per document for kv and multi, one asked (default 4)", 1, 64);
  p.option("--vocab", &vocab, "VOCAB.gguf", "GGUF vocabulary: lengths in tokens, prompt_tokens / answer_tokens");
  p.option("--format", &format, "F",
           "jsonl (default) or tok: token ids only, for tools/train_tiny (needs --vocab; magic \"CWTOK1\\n\", then per "
           "sample little-endian uint16 n_prompt, n_answer and the ids)");
  p.option("--words", &words, "FILE", std::string("word list (default ") + eval::kDefaultWordsPath +
                                          ", Debian package " + eval::kWordsPackage + ")");
  p.option("-o,--output", &output, "OUT.jsonl", "write the JSON lines to a file (default stdout)");
  p.flag("-q,--quiet", &quiet, "no progress on stderr");
  if (Status s = p.parse(argc, argv); !s.is_ok()) return report_error(kCmd, s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }

  eval::GenOptions o;
  auto r = eval::parse_recipe(recipe);
  if (!r.is_ok()) return report_error(kCmd, r.status());
  o.recipe = *r;
  auto ls = parse_lengths(lengths);
  if (!ls.is_ok()) return report_error(kCmd, ls.status());
  o.lengths = std::move(ls).value();
  auto d = parse_depth(depth);
  if (!d.is_ok()) return report_error(kCmd, d.status());
  o.depth = *d;
  o.needles = static_cast<int>(needles);
  if (unit.empty()) unit = vocab.empty() ? "chars" : "tokens";
  if (unit != "chars" && unit != "tokens")
    return report_error(kCmd, invalid_argument("--unit: '" + unit + "' is not chars or tokens"));
  o.unit = unit == "tokens" ? eval::LengthUnit::kTokens : eval::LengthUnit::kChars;
  if (o.unit == eval::LengthUnit::kTokens && vocab.empty())
    return report_error(kCmd, invalid_argument("--unit tokens needs --vocab VOCAB.gguf"));

  std::unique_ptr<tok::Tokenizer> tokenizer;
  if (!vocab.empty()) {
    auto f = gguf::File::open(vocab);
    if (!f.is_ok()) return report_error(kCmd, f.status());
    auto t = tok::Tokenizer::from_gguf(**f);
    if (!t.is_ok()) return report_error(kCmd, t.status());
    tokenizer = std::move(t).value();
    o.tokenizer = tokenizer.get();
  }
  if (format != "jsonl" && format != "tok")
    return report_error(kCmd, invalid_argument("--format: '" + printable(format, false) + "' is not jsonl or tok"));
  const bool tok_format = format == "tok";
  if (tok_format && tokenizer == nullptr) return report_error(kCmd, invalid_argument("--format tok needs --vocab VOCAB.gguf"));
  if (tok_format && tokenizer->n_vocab() > 65536)
    return report_error(kCmd, invalid_argument("--format tok stores uint16 ids: the vocabulary has more than 65536 tokens"));
  if (Status s = eval::validate(o); !s.is_ok()) return report_error(kCmd, s);
  auto wl = eval::WordList::load(words);
  if (!wl.is_ok()) return report_error(kCmd, wl.status());
  const eval::HaystackGenerator gen(*wl);

  FILE* out = stdout;
  OutputFile out_file;
  if (!output.empty()) {
    if (Status s = check_output_not_input(output, {words, vocab}); !s.is_ok()) return report_error(kCmd, s);
    auto created = OutputFile::create(output);
    if (!created.is_ok()) return report_error(kCmd, created.status());
    out_file = std::move(created).value();
    out = out_file.file();
  }
  const bool progress = !quiet && n >= 1000;
  std::string buf;
  for (int64_t i = 0; i < n; ++i) {
    auto s = gen.generate(o, seed, i);
    if (!s.is_ok()) return report_error(kCmd, s.status());
    if (tok_format) {
      if (i == 0) buf += "CWTOK1\n";
      const std::vector<int32_t> pt = tokenizer->encode(eval::format_prompt(*s), /*add_special=*/true, false);
      const std::vector<int32_t> at = tokenizer->encode(eval::format_answer(*s), /*add_special=*/false, false);
      if (pt.size() > 65535 || at.size() > 65535)
        return report_error(kCmd, invalid_argument("--format tok: sample " + std::to_string(i) + " has more than 65535 tokens"));
      auto put = [&buf](size_t v) {
        buf += static_cast<char>(v & 0xFF);
        buf += static_cast<char>((v >> 8) & 0xFF);
      };
      put(pt.size());
      put(at.size());
      for (int32_t t : pt) put(static_cast<size_t>(t));
      for (int32_t t : at) put(static_cast<size_t>(t));
    } else {
      eval::append_sample_jsonl(buf, *s, o.unit, wl->fingerprint(), o.tokenizer);
    }
    if (buf.size() >= (1u << 20) || i + 1 == n) {
      if (std::fwrite(buf.data(), 1, buf.size(), out) != buf.size())
        return report_error(kCmd, io_error("writing " + (output.empty() ? std::string("stdout") : output) + " failed"));
      buf.clear();
    }
    if (progress && ((i + 1) % (n / 10) == 0 || i + 1 == n))
      std::fprintf(stderr, "gen-data: %lld/%lld samples\n", static_cast<long long>(i + 1), static_cast<long long>(n));
  }
  if (!output.empty()) {
    if (Status s = out_file.commit(); !s.is_ok()) {
      report_error(kCmd, s);
      return kExitFailure;
    }
  } else if (std::fflush(stdout) != 0) {
    return report_error(kCmd, io_error("writing stdout failed"));
  }
  return kExitOk;
}

}  // namespace cw::app
