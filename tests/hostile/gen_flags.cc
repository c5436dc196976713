// Class "flags": every numeric option of every subcommand given huge / negative / overflowing / malformed
// values, every option given without its value, unknown options, and odd argument shapes.
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <regex>

#include "base/json_value.h"
#include "hostile/suite.h"

namespace cw::hostile {
namespace {

namespace fs = std::filesystem;

struct Value {
  std::string text;
  bool malformed;  // no parser should take it as a number of that kind
  bool fast;
};

const std::vector<Value> kIntValues = {
    {"-1", false, true},
    {"0", false, true},
    {"1", false, false},
    {"3", false, false},
    {"1024", false, true},
    {"65536", false, false},
    {"16777216", false, true},
    {"2147483648", false, false},
    {"9223372036854775807", false, false},
    {"9223372036854775808", false, false},
    {"18446744073709551615", false, true},
    {"-9223372036854775809", false, false},
    {"1e20", true, true},
    {"1.5", true, false},
    {"0x10", true, false},
    {"abc", true, true},
    {"", true, false},
    {"7 ", true, false},
    {"+7", false, false},
    {"007", false, false},
    {"1_000", true, false},
    {"\xd9\xa1\xd9\xa2", true, false},  // Arabic-Indic digits
};

const std::vector<Value> kDoubleValues = {
    {"-1", false, true},   {"0", false, true},      {"1e-300", false, false}, {"1e308", false, false},
    {"1e309", false, false}, {"inf", false, true},  {"-inf", false, false},   {"nan", false, true},
    {"1e20", false, true}, {"0x1p3", false, false}, {"abc", true, true},      {"", true, false},
    {"7 ", true, false},   {"1,5", true, false},
};

bool is_integer_literal(const std::string& s) { return std::regex_match(s, std::regex("[+-]?[0-9]+")); }

// A well-formed integer that does not fit must not be called "not an integer".
Check honest_range_message(const std::string& value) {
  if (!is_integer_literal(value)) return {};
  return [value](const Outcome& o) -> std::string {
    for (const char* bad : {"expects an integer", "not an integer", "is not a number"})
      if (o.err.find(bad) != std::string::npos)
        return "the well-formed integer '" + value + "' is reported as not an integer (say the range instead)";
    return "";
  };
}

struct Opt {
  std::string name;
  bool is_double;
};

struct Command {
  Command(std::string c, std::vector<std::string> b) : cmd(std::move(c)), base(std::move(b)) {}
  std::string cmd;
  std::vector<std::string> base;  // a valid, quick command line
  std::vector<Opt> numeric;
  std::vector<std::pair<std::string, std::vector<std::string>>> strings;  // option, hostile values
  std::vector<std::string> all_options;  // every option that takes a value (for "missing value")
  std::vector<std::string> flags;        // options without value
  std::function<Check(const std::string& opt, const std::string& value)> check;
};

int64_t int_or(const std::string& v, int64_t def) {
  errno = 0;
  char* end = nullptr;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  return (v.empty() || *end != '\0' || errno == ERANGE || x < 0) ? def : x;
}

std::vector<Command> commands(Fixtures& fx) {
  std::vector<Command> v;
  const uint64_t text_size = fs::file_size(fx.text);
  const std::string small = fx.write("small.txt", "Hello there. Once upon a time.\n");
  {
    Command c{"run", {"run", "-m", fx.model, "-p", "Once upon a time", "-n", "4", "--temp", "0", "--json"}};
    for (const char* o : {"-n", "--top-k", "--repeat-last-n", "--seed", "--ctx", "--ubatch", "--threads", "--logits-top"})
      c.numeric.push_back({o, false});
    for (const char* o : {"--temp", "--top-p", "--min-p", "--repeat-penalty", "--presence-penalty", "--frequency-penalty"})
      c.numeric.push_back({o, true});
    c.all_options = {"-m", "-p", "-f", "-n", "--temp", "--top-k", "--top-p", "--min-p", "--repeat-penalty",
                     "--repeat-last-n", "--presence-penalty", "--frequency-penalty", "--seed", "--ctx", "--ubatch",
                     "--threads", "--logits-top"};
    c.flags = {"--json", "--batch-invariant"};
    c.check = [](const std::string& opt, const std::string& val) {
      return check_run(true, opt == "-n" ? int_or(val, 4) : 4);
    };
    v.push_back(c);
  }
  {
    Command c{"batch", {"batch", "-m", fx.model, "-f", fx.prompts, "-n", "4", "--temp", "0", "--no-progress"}};
    for (const char* o : {"--parallel", "--batch-tokens", "--ctx", "--threads", "--block-size", "-n", "--seed"})
      c.numeric.push_back({o, false});
    c.numeric.push_back({"--temp", true});
    c.strings = {{"--kv-mem", {"0", "-1", "1", "16K", "1G", "1e20", "18446744073709551615", "99999999999999999999K",
                               "1T", "abc", "", "64M "}},
                 {"--kv-type", {"q8_0", "F16", "", "f16\n"}},
                 {"--schedule", {"fastest", "", "CHUNKED"}},
                 {"--kv-policy", {"nope", "", "sink_window:sinks=-1,window=1", "sink_window:sinks=0,window=0",
                                  "sink_window:sinks=99999999999999999999", "sink_window:window=1e20",
                                  "sink_window:,,,,", "sink_window:sinks=4,sinks=5", "full:x=1"}}};
    c.all_options = {"-m", "-f", "-o", "--parallel", "--batch-tokens", "--kv-mem", "--ctx", "--threads",
                     "--block-size", "--kv-type", "--schedule", "--kv-policy", "-n", "--temp", "--seed"};
    c.flags = {"--no-progress", "--batch-invariant"};
    c.check = [](const std::string&, const std::string&) { return check_batch(3); };
    v.push_back(c);
  }
  {
    Command c{"chunk", {"chunk", "--size", "64", fx.text}};
    for (const char* o : {"--size", "--overlap", "--threads"}) c.numeric.push_back({o, false});
    c.strings = {{"--method", {"nope", "", "TOKEN", "recursive\n"}},
                 {"--unit", {"nope", "", "Tokens", "tokens"}},  // tokens without --tokenizer
                 {"--lang", {"klingon", "", "C"}},
                 {"--spec", {"", ":", "recursive:", "recursive:size=-1", "recursive:size=99999999999999999999",
                             "recursive:size=1e20", "recursive:size=0", "token:size=4,overlap=4",
                             "token:size=4,overlap=5", "recursive:,,,,", "recursive:size=10,size=20",
                             "recursive:preset=nope", "semantic:window=65", "semantic:dim=0",
                             "semantic:dim=99999999999", "semantic:threshold=nope", "semantic:amount=nan",
                             "sentence:locale=xx_NOPE", "recursive:" + std::string(100000, 'k') + "=1",
                             "nope:size=1"}}};
    c.all_options = {"-m", "-s", "--overlap", "-u", "--tokenizer", "--spec", "--lang", "-o", "-t"};
    c.flags = {"--no-text"};
    c.check = [text = fx.text, text_size](const std::string& opt, const std::string& val) {
      const int64_t size = opt == "--size" ? int_or(val, 64) : 64;
      const bool tiles = opt != "--overlap" && !(opt == "--spec" && val.find("overlap") != std::string::npos);
      return check_chunk({{text, text_size}}, opt == "--spec" ? int64_t{1} << 40 : size, tiles);
    };
    v.push_back(c);
  }
  {
    Command c{"perplexity", {"perplexity", "-m", fx.model, "-f", fx.text, "-c", "64", "-q", "--json"}};
    c.numeric = {{"-c", false}, {"-b", false}};
    c.all_options = {"-m", "-f", "-c", "-b"};
    c.flags = {"--json", "-q"};
    c.check = [](const std::string&, const std::string&) { return check_perplexity(true); };
    v.push_back(c);
  }
  {
    Command c{"bench", {"bench", "-m", fx.model, "-p", "8", "-n", "4", "-r", "1", "--json"}};
    c.numeric = {{"-p", false}, {"-n", false}, {"-t", false}, {"-r", false}};
    c.strings = {{"--kv", {"q8", "", "F32"}}, {"--scenario", {"nope", ""}}};
    c.all_options = {"-m", "-p", "-n", "-t", "-r", "--kv", "--scenario", "--schedule", "--batch-tokens",
                     "--block-size", "--streams", "--stream-tokens", "--long-prompts", "--long-prompt-tokens",
                     "--prefix-tokens", "--suffix-tokens"};
    c.flags = {"--json"};
    c.check = [](const std::string&, const std::string&) { return check_bench(true); };
    v.push_back(c);
  }
  {
    Command c{"bench", {"bench", "-m", fx.model, "--scenario", "mixed", "--streams", "2", "--stream-tokens", "8",
                        "--long-prompts", "1", "--long-prompt-tokens", "32", "-r", "1", "--json"}};
    for (const char* o : {"--batch-tokens", "--block-size", "--streams", "--stream-tokens", "--long-prompts",
                          "--long-prompt-tokens"})
      c.numeric.push_back({o, false});
    c.strings = {{"--schedule", {"nope", "", "prefill-first"}}};
    c.check = [](const std::string&, const std::string&) { return check_json_object("scenario"); };
    v.push_back(c);
  }
  {
    Command c{"bench", {"bench", "-m", fx.model, "--scenario", "prefix", "--prefix-tokens", "64", "--suffix-tokens", "8",
                        "-r", "1", "--json"}};
    for (const char* o : {"--prefix-tokens", "--suffix-tokens"}) c.numeric.push_back({o, false});
    c.check = [](const std::string&, const std::string&) { return check_json_object("scenario"); };
    v.push_back(c);
  }
  {
    const std::string out = fx.dir + "/flags-made.gguf";
    Command c{"make-model", {"make-model", "--arch", "llama", "--shape", "tiny", "--type", "q8_0", "--vocab", fx.vocab,
                             "-o", out, "-q"}};
    c.numeric = {{"--seed", false}, {"--threads", false}};
    c.strings = {{"--arch", {"nope", "", "LLAMA", "qwen2\n"}},
                 {"--shape", {"nope", "", "TINY", "70b", "tiny "}},
                 {"--type", {"nope", "", "q4_k_x", "F64", "I32", "Q8_1", "q8_k"}}};
    c.all_options = {"--arch", "--shape", "--type", "--vocab", "-o", "--seed", "--threads"};
    c.flags = {"-q"};
    c.check = [bin = fx.bin, out](const std::string&, const std::string&) { return check_make_model(bin, out); };
    v.push_back(c);
  }
  {
    Command c{"tokenize", {"tokenize", "-m", fx.vocab, "-p", "Hello world", "--json"}};
    c.all_options = {"-m", "-p", "-f"};
    c.flags = {"--add-special", "--parse-special", "--ids", "--json"};
    c.check = [](const std::string&, const std::string&) { return check_tokenize("--json"); };
    v.push_back(c);
  }
  {
    Command c{"inspect", {"inspect", fx.model}};
    c.flags = {"--json"};
    c.check = [](const std::string&, const std::string&) { return check_inspect(false); };
    v.push_back(c);
  }
  {
    Command c{"ask", {"ask", "-m", fx.model, "--doc", small, "--json", "-q", "Once upon a time?"}};
    for (const char* o : {"-k", "--ctx", "--max-answer-tokens", "-t"}) c.numeric.push_back({o, false});
    c.strings = {{"--kv-policy", {"nope", "", "sink_window:sinks=-1,window=1", "sink_window:window=1e20", "full:x=1"}},
                 {"--select", {"nope", "", "topk:k=0", "topk:k=-1", "budget:tokens=99999999999999999999",
                               "gradient:min=5,max=2", "neighbors:n=1,base=nope"}},
                 {"--chunker", {"nope", "", "recursive:size=0", "recursive:size=1e20", "token:size=4,overlap=5"}},
                 {"--db", {"", small, fx.dir}}};
    c.all_options = {"-m", "--doc", "--db", "--chunker", "-k", "--select", "--kv-policy", "--ctx",
                     "--max-answer-tokens", "-t"};
    c.flags = {"--json", "-q", "--free-answer"};
    c.check = [](const std::string&, const std::string&) { return check_json_object("answer"); };
    v.push_back(c);
  }
  {
    // --trials is left out: a million trials is legitimate work, not a hostile value.
    Command c{"eval", {"eval", "needle", "-m", fx.model, "--lengths", "64", "--depths", "0.5", "--trials", "1",
                       "--max-answer-tokens", "2", "--json", "-q"}};
    for (const char* o : {"--needles", "--max-answer-tokens", "--ubatch", "-t", "--seed"}) c.numeric.push_back({o, false});
    c.strings = {{"--lengths", {"0", "-1", "abc", "", "1.5", "0W", "-2W", "nanW", "1e309", "99999999999999999999",
                                "64,,64", ",", "W"}},
                 {"--depths", {"1.5", "-0.1", "nan", "", "0,,1", "inf", "0x1p-1"}},
                 {"--recipe", {"mix", "nope", "", "PASSKEY", "quote"}},
                 {"--kv-policy", {"nope", "", "sink_window:sinks=4,window=0", "full:x=1"}},
                 {"--plot", {"", "x.txt", "/nonexistent/dir/x.svg"}}};
    c.all_options = {"-m", "--recipe", "--lengths", "--depths", "--needles", "--trials", "--kv-policy", "--seed",
                     "--max-answer-tokens", "--ubatch", "-t", "--words", "--plot"};
    c.flags = {"--json", "-q"};
    c.check = [](const std::string&, const std::string&) { return check_json_object("cells"); };
    v.push_back(c);
  }
  {
    // A one-corpus Chroma-format dataset: the corpus is the fixture text, the reference its first 40 characters.
    const std::string corpora = fx.dir + "/flags-corpora";
    fs::create_directories(corpora);
    fs::copy_file(fx.text, corpora + "/tiny.md", fs::copy_options::overwrite_existing);
    const std::string csv = fx.write("flags-questions.csv",
                                     "question,references,corpus_id\n"
                                     "What happened once upon a time?,\"[{\"\"content\"\": \"\"x\"\", "
                                     "\"\"start_index\"\": 0, \"\"end_index\"\": 40}]\",tiny\n");
    Command c{"eval", {"eval", "ask", "-m", fx.model, "--corpora", corpora, "--questions", csv, "--max-answer-tokens",
                       "2", "--json", "-q"}};
    for (const char* o : {"-k", "--max-answer-tokens", "--limit", "-t"}) c.numeric.push_back({o, false});
    c.strings = {{"--chunker", {"nope", "", "recursive:size=0", "token:size=4,overlap=5"}},
                 {"--corpora", {"", fx.missing, fx.text}},
                 {"--questions", {"", fx.missing, fx.text, fx.dir_input}}};
    c.all_options = {"-m", "--corpora", "--questions", "--chunker", "-k", "--max-answer-tokens", "--limit", "-t"};
    c.flags = {"--json", "-q", "--free-answer"};
    c.check = [](const std::string&, const std::string&) { return check_json_object("questions"); };
    v.push_back(c);
  }
  {
    const std::string out = fx.dir + "/flags-gen.jsonl";
    Command c{"gen-data", {"gen-data", "--recipe", "mix", "--n", "2", "--seed", "1", "--length", "300", "-o", out, "-q"}};
    // --n is left out: millions of samples are legitimate work (streamed, memory stays flat), not hostile.
    c.numeric = {{"--seed", false}, {"--needles", false}};
    c.strings = {{"--recipe", {"quote", "nope", "", "MIX"}},
                 {"--length", {"0", "-1", "abc", "", "1e309", "64,,64", "99999999999999999999"}},
                 {"--unit", {"nope", "", "tokens", "chars"}},
                 {"--depth", {"1.5", "-0.1", "nan", "", "random", "0.5"}},
                 {"--format", {"tok", "nope", "", "jsonl"}},
                 {"--vocab", {"", fx.missing, fx.text}},
                 {"--words", {"", fx.missing, fx.text}}};
    c.all_options = {"--recipe", "--n", "--seed", "--length", "--unit", "--depth", "--needles", "--vocab", "--words",
                     "--format", "-o"};
    c.flags = {"-q"};
    // A run that succeeds leaves its output file (written under a temporary name and renamed); the check
    // removes it, so that the next case's check sees only its own.
    c.check = [out](const std::string&, const std::string&) {
      return Check([out](const Outcome&) {
        std::error_code ec;
        const bool made = fs::remove(out, ec);
        return made ? std::string() : "no output file " + out;
      });
    };
    v.push_back(c);
  }
  return v;
}

Case flag_case(const Command& c, std::vector<std::string> extra, const std::string& what, Expect e, Check check) {
  Case k;
  k.cls = "flags";
  k.cmd = c.cmd;
  k.args = c.base;
  k.args.insert(k.args.end(), extra.begin(), extra.end());
  k.what = what;
  k.expect = e;
  k.ok_check = std::move(check);
  return k;
}

}  // namespace

void gen_flags(Fixtures& fx, std::vector<Case>& out) {
  for (const Command& c : commands(fx)) {
    for (const Opt& o : c.numeric) {
      for (const Value& v : o.is_double ? kDoubleValues : kIntValues) {
        if (!fx.full && !v.fast) continue;
        Case k = flag_case(c, {o.name, v.text}, o.name + " " + (v.text.empty() ? "''" : v.text),
                           v.malformed ? Expect::kError : Expect::kAny, c.check(o.name, v.text));
        if (!o.is_double) k.err_check = honest_range_message(v.text);
        k.fast = (o.name == "--threads" || o.name == "-t") && v.text == "1024";
        k.fast = k.fast || (o.name == "--ctx" && v.text == "16777216") ||
                 (o.name == "--seed" && v.text == "18446744073709551615");
        if (c.cmd == "make-model") {
          const std::string made = c.base[10];
          k.post = [made]() {
            std::error_code ec;
            fs::remove(made, ec);
            return std::string();
          };
        }
        out.push_back(std::move(k));
      }
    }
    for (const auto& [name, values] : c.strings) {
      for (const std::string& val : values) {
        Case k = flag_case(c, {name, val}, name + " '" + val.substr(0, 40) + "'", Expect::kAny, c.check(name, val));
        out.push_back(std::move(k));
      }
    }
    // An option with no value after it (last on the line).
    for (const std::string& o : c.all_options) {
      Case k = flag_case(c, {o}, o + " without its value", Expect::kError, {});
      k.fast = o == c.all_options.front();
      out.push_back(std::move(k));
    }
    if (c.all_options.empty() && c.flags.empty()) continue;  // a second base line of the same subcommand
    // Unknown options and odd shapes.
    const Check base_check = c.check("", "");
    out.push_back(flag_case(c, {"--frobnicate"}, "unknown option", Expect::kError, {}));
    out.push_back(flag_case(c, {"--frobnicate=3"}, "unknown option with a value", Expect::kError, {}));
    out.push_back(flag_case(c, {"-x"}, "unknown short option", Expect::kError, {}));
    out.push_back(flag_case(c, {"---"}, "'---'", Expect::kError, {}));
    out.push_back(flag_case(c, {"--=5"}, "'--=5'", Expect::kError, {}));
    // `ask` takes its question as free words: an em-dash word is part of the question, not an option.
    const bool free_words = c.cmd == "ask";
    out.push_back(flag_case(c, {"\xe2\x80\x94json"}, "an em dash instead of --", free_words ? Expect::kAny : Expect::kError,
                            free_words ? base_check : Check{}));
    out.push_back(flag_case(c, {std::string(100000, 'z')}, "a 100,000-byte stray argument", Expect::kError, {}));
    out.push_back(flag_case(c, {"-h", "--frobnicate"}, "-h before an unknown option", Expect::kAny,
                            [](const Outcome& o) { return o.out.find("usage:") == std::string::npos ? "no usage" : ""; }));
    for (const std::string& f : c.flags) {
      out.push_back(flag_case(c, {f + "=1"}, f + "=1 (a flag given a value)", Expect::kError, {}));
      out.push_back(flag_case(c, {f, f}, f + " twice", Expect::kAny, base_check));
    }
    if (!c.all_options.empty()) {
      const std::string& o = c.all_options.front();
      out.push_back(flag_case(c, {o + "="}, o + "= (empty inline value)", Expect::kError, {}));
    }
    Case bare;
    bare.cls = "flags";
    bare.cmd = c.cmd;
    bare.args = {c.cmd};
    bare.what = "no arguments";
    // `chunk` with no arguments reads stdin; `ask` with none answers the shipped demo document.
    // chunk reads stdin, ask answers the demo, gen-data writes one default sample to stdout.
    bare.expect = c.cmd == "chunk" || c.cmd == "ask" || c.cmd == "gen-data" ? Expect::kAny : Expect::kError;
    bare.ok_check = c.cmd == "ask"        ? Check([](const Outcome& o) { return o.out.empty() ? "no answer printed" : ""; })
                    : c.cmd == "gen-data" ? Check([](const Outcome& o) -> std::string {
                                              size_t lines = 0;
                                              for (size_t b = 0; b < o.out.size(); ++lines) {
                                                const size_t e = o.out.find('\n', b);
                                                if (e == std::string::npos) return "the last line has no newline";
                                                auto j = JsonValue::parse(std::string_view(o.out).substr(b, e - b));
                                                if (!j.is_ok() || !j->is_object() || j->get("question") == nullptr)
                                                  return "line " + std::to_string(lines + 1) + " is not a sample";
                                                b = e + 1;
                                              }
                                              return lines == 0 ? "no samples printed" : "";
                                            })
                                          : check_chunk({{"-", 0}}, 512, true);
    out.push_back(std::move(bare));
  }
  // Many positional arguments.
  {
    const std::string tiny = fx.write("tiny-doc.txt", "Hello there. Once upon a time.\n");
    std::vector<ChunkDoc> docs;
    Case k;
    k.cls = "flags";
    k.cmd = "chunk";
    k.args = {"chunk", "--size", "16"};
    for (int i = 0; i < 5000; ++i) {
      k.args.push_back(tiny);
      docs.push_back({tiny, 31});
    }
    k.what = "5,000 input files";
    k.ok_check = check_chunk(docs, 16, true);
    out.push_back(std::move(k));
    Case i2;
    i2.cls = "flags";
    i2.cmd = "inspect";
    i2.args = {"inspect", fx.vocab, fx.vocab, fx.vocab};
    i2.what = "three files";
    i2.ok_check = check_inspect(false);
    out.push_back(std::move(i2));
  }
}

}  // namespace cw::hostile
