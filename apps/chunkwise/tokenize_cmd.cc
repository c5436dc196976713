// chunkwise tokenize -m FILE.gguf (-p TEXT | -f FILE) [--add-special] [--parse-special] [--ids | --json]
#include <cstdio>
#include <string>
#include <vector>

#include "args.h"
#include "base/json.h"
#include "commands.h"
#include "gguf/reader.h"
#include "tokenizer/tokenizer.h"

namespace cw::app {

int tokenize_main(int argc, char** argv) {
  std::string model, prompt, file;
  bool add_special = false, parse_special = false, ids_only = false, json = false;
  ArgParser p("tokenize", "-m FILE.gguf (-p TEXT | -f FILE) [--add-special] [--parse-special] [--ids | --json]",
              "Tokenizes text with the vocabulary of a GGUF file. Prints one line per token (id and its\n"
              "piece, control bytes escaped), or the ids on one line (--ids), or a JSON object (--json).");
  p.option("-m,--model", &model, "FILE.gguf", "the GGUF file whose vocabulary to use");
  p.option("-p,--prompt", &prompt, "TEXT", "the text to tokenize");
  p.option("-f,--file", &file, "FILE", "read the text to tokenize from FILE ('-' = standard input)");
  p.flag("--add-special", &add_special, "add BOS/EOS as the vocabulary asks");
  p.flag("--parse-special", &parse_special, "recognise special tokens written in the text");
  p.flag("--ids", &ids_only, "print only the ids, space-separated, on one line");
  p.flag("--json", &json, "print {\"tokens\":[...],\"pieces\":[...]}");
  if (Status s = p.parse(argc, argv); !s.is_ok()) return report_error("tokenize", s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }
  if (model.empty()) return report_error("tokenize", invalid_argument("-m FILE.gguf is required (see --help)"));
  if (p.given("--prompt") == p.given("--file")) {
    return report_error("tokenize", invalid_argument("give exactly one of -p TEXT or -f FILE (see --help)"));
  }
  if (ids_only && json) return report_error("tokenize", invalid_argument("--ids and --json are exclusive"));

  std::string text = prompt;
  if (p.given("--file")) {
    auto r = read_input_file(file, /*dash_is_stdin=*/true);
    if (!r.is_ok()) return report_error("tokenize", r.status());
    text = std::move(r).value();
  }
  auto opened = gguf::File::open(model);
  if (!opened.is_ok()) return report_error("tokenize", opened.status());
  auto tok = tok::Tokenizer::from_gguf(**opened);
  if (!tok.is_ok()) return report_error("tokenize", tok.status());
  const tok::Tokenizer& t = **tok;
  const std::vector<int32_t> ids = t.encode(text, add_special, parse_special);

  std::string out;
  if (ids_only) {
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) out.push_back(' ');
      out += std::to_string(ids[i]);
    }
    out.push_back('\n');
  } else if (json) {
    JsonWriter w;
    w.begin_object().key("tokens").begin_array();
    for (int32_t id : ids) w.value(int64_t{id});
    w.end_array().key("pieces").begin_array();
    for (int32_t id : ids) w.value(t.token_to_piece(id));
    w.end_array().end_object();
    out = w.str() + "\n";
  } else {
    for (int32_t id : ids) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%6d -> '", id);
      out += buf;
      out += printable(t.token_to_piece(id), /*escape_quotes=*/true);
      out += "'\n";
    }
  }
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0) {
    return report_error("tokenize", io_error("cannot write the output"));
  }
  return kExitOk;
}

}  // namespace cw::app
