// Class "jsonl": hostile prompt files for `batch` (BOM, bad UTF-8, 1e20, deep nesting, huge strings,
// missing fields, wrong types, malformed JSON, odd line ends, many lines).
#include <fstream>

#include "hostile/suite.h"

namespace cw::hostile {
namespace {

struct J {
  J(std::string w, std::string c, Expect e, size_t n, bool h = false, bool f = false, std::string bad = "",
    bool bom = false)
      : what(std::move(w)), content(std::move(c)), expect(e), lines(n), heavy(h), fast(f), bad_text(std::move(bad)),
        names_bom(bom) {}
  std::string what;
  std::string content;
  Expect expect;
  size_t lines;  // output lines expected on success
  bool heavy = false;
  bool fast = false;
  std::string bad_text;  // the error message must not contain this
  bool names_bom = false;  // if refused, the message must say it is a byte-order mark
};

std::string nest(const std::string& open, const std::string& close, size_t depth, const std::string& inner) {
  std::string s;
  s.reserve(depth * (open.size() + close.size()) + inner.size());
  for (size_t i = 0; i < depth; ++i) s += open;
  s += inner;
  for (size_t i = 0; i < depth; ++i) s += close;
  return s;
}

std::string many(const std::string& line, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += line;
  return s;
}

std::vector<J> cases() {
  const std::string P = "{\"prompt\": \"Once upon a time\"}\n";
  auto with = [](const std::string& field) { return "{\"prompt\": \"Once upon a time\", " + field + "}\n"; };
  std::vector<J> v = {
      {"valid, 3 lines", "{\"id\":\"a\",\"prompt\":\"Once\"}\n{\"prompt\":\"The cat\",\"n_predict\":1}\n" + P, Expect::kOk, 3, false, true},
      {"valid, no final newline", P.substr(0, P.size() - 1), Expect::kOk, 1},
      {"UTF-8 BOM before the first line", "\xef\xbb\xbf" + P, Expect::kAny, 1, false, true, "", true},
      {"UTF-8 BOM before the second line", P + "\xef\xbb\xbf" + P, Expect::kAny, 2},
      {"UTF-16LE file", std::string("\xff\xfe{\0\"\0p\0\"\0:\0\"\0x\0\"\0}\0\n\0", 22), Expect::kError, 0},
      {"raw invalid UTF-8 inside the prompt", "{\"prompt\": \"Once \xff\xfe upon \xc0\xaf\"}\n", Expect::kAny, 1},
      {"invalid UTF-8 outside strings", "{\"prompt\": \"x\"} \xff\n", Expect::kError, 0},
      {"raw NUL inside the prompt", std::string("{\"prompt\": \"a\0b\"}\n", 18), Expect::kAny, 1},
      {"raw NUL outside strings", std::string("{\"prompt\": \"ab\"}\0\n", 18), Expect::kError, 0},
      {"escaped \\u0000 in the prompt", "{\"prompt\": \"a\\u0000b\"}\n", Expect::kAny, 1},
      {"lone surrogate \\ud800", "{\"prompt\": \"a\\ud800b\"}\n", Expect::kAny, 1},
      {"valid surrogate pair", "{\"prompt\": \"a \\ud83d\\ude00 b\"}\n", Expect::kOk, 1},
      {"raw tab and CR inside the prompt", "{\"prompt\": \"a\tb\rc\"}\n", Expect::kAny, 1},
      {"n_predict 1e20", with("\"n_predict\": 1e20"), Expect::kError, 0, false, true, "-9223372036854775808"},
      {"n_predict -1", with("\"n_predict\": -1"), Expect::kError, 0},
      {"n_predict 1.5", with("\"n_predict\": 1.5"), Expect::kError, 0},
      {"n_predict \"5\"", with("\"n_predict\": \"5\""), Expect::kError, 0},
      {"n_predict null", with("\"n_predict\": null"), Expect::kError, 0},
      {"n_predict true", with("\"n_predict\": true"), Expect::kError, 0},
      {"n_predict 1e308", with("\"n_predict\": 1e308"), Expect::kError, 0, false, false, "-9223372036854775808"},
      {"n_predict 1e999999999", with("\"n_predict\": 1e999999999"), Expect::kError, 0},
      {"n_predict with 10,000 digits", with("\"n_predict\": 1" + std::string(10000, '0')), Expect::kError, 0},
      {"n_predict 16777217", with("\"n_predict\": 16777217"), Expect::kError, 0},
      {"n_predict 16777216 (past the training context)", with("\"n_predict\": 16777216"), Expect::kError, 0},
      {"n_predict 5000 (past the 2048-token training context)", with("\"n_predict\": 5000"), Expect::kError, 0, false, true},
      {"n_predict -0", with("\"n_predict\": -0"), Expect::kAny, 1},
      {"n_predict 007", with("\"n_predict\": 007"), Expect::kError, 0},
      {"n_predict +5", with("\"n_predict\": +5"), Expect::kError, 0},
      {"n_predict 0x10", with("\"n_predict\": 0x10"), Expect::kError, 0},
      {"temperature -1", with("\"temperature\": -1"), Expect::kError, 0},
      {"temperature 1e20", with("\"temperature\": 1e20"), Expect::kError, 0},
      {"temperature \"x\"", with("\"temperature\": \"x\""), Expect::kError, 0},
      {"temperature NaN", with("\"temperature\": NaN"), Expect::kError, 0},
      {"temperature Infinity", with("\"temperature\": Infinity"), Expect::kError, 0},
      {"seed 2^53 + 1", with("\"seed\": 9007199254740993"), Expect::kAny, 1},
      {"seed -1", with("\"seed\": -1"), Expect::kError, 0},
      {"seed 1e20", with("\"seed\": 1e20"), Expect::kError, 0, false, false, "-9223372036854775808"},
      {"seed 18446744073709551615", with("\"seed\": 18446744073709551615"), Expect::kError, 0, false, false, "-9223372036854775808"},
      {"id an object", with("\"id\": {\"a\": 1}"), Expect::kError, 0},
      {"id an array", with("\"id\": [1, 2]"), Expect::kError, 0},
      {"id null", with("\"id\": null"), Expect::kError, 0},
      {"id true", with("\"id\": true"), Expect::kError, 0},
      {"id 1e300", with("\"id\": 1e300"), Expect::kAny, 1},
      {"id -0", with("\"id\": -0"), Expect::kAny, 1},
      {"id a 1 MiB string", with("\"id\": \"" + std::string(1 << 20, 'i') + "\""), Expect::kAny, 1},
      {"missing prompt", "{\"id\": 1}\n", Expect::kError, 0, false, true},
      {"prompt empty", "{\"prompt\": \"\"}\n", Expect::kError, 0},
      {"prompt a number", "{\"prompt\": 5}\n", Expect::kError, 0},
      {"prompt an array", "{\"prompt\": [\"a\"]}\n", Expect::kError, 0},
      {"prompt null", "{\"prompt\": null}\n", Expect::kError, 0},
      {"prompt only whitespace", "{\"prompt\": \"   \"}\n", Expect::kAny, 1},
      {"prompt of 4 MiB (past the context)", "{\"prompt\": \"" + many("once upon a time ", 1 << 18) + "\"}\n",
       Expect::kError, 0, true},
      {"prompt of special-token text", "{\"prompt\": \"<s></s><unk>\"}\n", Expect::kAny, 1},
      {"unknown key", with("\"max_tokens\": 5"), Expect::kError, 0},
      {"prompt given twice", "{\"prompt\": \"a\", \"prompt\": \"b\"}\n", Expect::kAny, 1},
      {"100,000 unknown keys", "{\"prompt\": \"a\"" + [] {
         std::string s;
         for (int i = 0; i < 100000; ++i) s += ",\"k" + std::to_string(i) + "\":1";
         return s;
       }() + "}\n",
       Expect::kError, 0},
      {"id nested 100,000 arrays deep", with("\"id\": " + nest("[", "]", 100000, "1")), Expect::kError, 0, false, true},
      {"prompt nested 100,000 objects deep", "{\"prompt\": " + nest("{\"a\":", "}", 100000, "1") + "}\n", Expect::kError, 0},
      {"a line of 1,000,000 nested arrays", nest("[", "]", 1000000, "") + "\n", Expect::kError, 0},
      {"a line of 1,000,000 open brackets", std::string(1000000, '[') + "\n", Expect::kError, 0},
      {"trailing garbage after the object", "{\"prompt\": \"a\"} x\n", Expect::kError, 0},
      {"two objects on one line", "{\"prompt\": \"a\"}{\"prompt\": \"b\"}\n", Expect::kError, 0},
      {"top-level array", "[{\"prompt\": \"a\"}]\n", Expect::kError, 0},
      {"top-level string", "\"prompt\"\n", Expect::kError, 0},
      {"top-level number", "5\n", Expect::kError, 0},
      {"top-level null", "null\n", Expect::kError, 0},
      {"empty file", "", Expect::kError, 0},
      {"only blank lines", "\n\n   \n\t\n", Expect::kError, 0},
      {"only CRLFs", "\r\n\r\n", Expect::kError, 0},
      {"CRLF line ends", "{\"prompt\": \"a\"}\r\n{\"prompt\": \"b\"}\r\n", Expect::kAny, 2},
      {"lone CR between objects", "{\"prompt\": \"a\"}\r{\"prompt\": \"b\"}\r", Expect::kAny, 1},
      {"comments", "// prompts\n{\"prompt\": \"a\"} /* x */\n", Expect::kError, 0},
      {"single quotes", "{'prompt': 'a'}\n", Expect::kError, 0},
      {"unterminated string", "{\"prompt\": \"a}\n", Expect::kError, 0},
      {"unterminated object", "{\"prompt\": \"a\"\n", Expect::kError, 0},
      {"bad escape", "{\"prompt\": \"a\\qb\"}\n", Expect::kError, 0},
      {"truncated \\u escape", "{\"prompt\": \"a\\u12\"}\n", Expect::kError, 0},
      {"1 MiB of spaces then a prompt", std::string(1 << 20, ' ') + "\n" + P, Expect::kOk, 1},
      {"100,000 blank lines then a prompt", std::string(100000, '\n') + P, Expect::kOk, 1},
      {"a good line, then a bad one on line 3", P + P + "{\"prompt\": 1}\n", Expect::kError, 0, false, false},
      {"2,000 prompts with n_predict 0", many("{\"prompt\": \"Once upon a time\", \"n_predict\": 0}\n", 2000), Expect::kAny,
       2000, true},
      {"300 prompts sharing a prefix", many("{\"prompt\": \"Once upon a time there was a cat\", \"n_predict\": 1}\n", 300),
       Expect::kAny, 300},
  };
  return v;
}

}  // namespace

void gen_jsonl(Fixtures& fx, std::vector<Case>& out) {
  for (const J& j : cases()) {
    if (j.heavy && !fx.full) continue;
    auto file = fx.lazy("prompts.jsonl", [content = j.content](const std::string& p) {
      std::ofstream(p, std::ios::binary).write(content.data(), static_cast<std::streamsize>(content.size()));
    });
    for (bool via_stdin : {false, true}) {
      if (via_stdin && !j.fast) continue;
      Case c;
      c.cls = "jsonl";
      c.cmd = "batch";
      c.what = j.what + (via_stdin ? " (stdin)" : "");
      c.args = {"batch", "-m", fx.model, "-f", via_stdin ? "-" : file->path, "-n", "2", "--temp", "0", "--no-progress"};
      if (via_stdin) c.stdin_path = file->path;
      c.inputs.push_back(file);
      c.expect = j.expect;
      c.ok_check = check_batch(j.lines);
      c.input_bytes = j.content.size();
      c.heavy = j.heavy;
      c.fast = j.fast;
      c.timeout_s = j.heavy ? 30 : 10;
      if (!j.bad_text.empty()) {
        c.err_check = [bad = j.bad_text](const Outcome& o) -> std::string {
          if (o.err.find(bad) != std::string::npos) return "the message shows '" + bad + "', which is not in the input";
          return "";
        };
      }
      if (j.names_bom) {
        c.err_check = [](const Outcome& o) -> std::string {
          std::string e = o.err;
          for (char& ch : e) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          if (e.find("bom") == std::string::npos && e.find("byte order") == std::string::npos &&
              e.find("byte-order") == std::string::npos)
            return "a refused UTF-8 BOM is not named as such";
          return "";
        };
      }
      out.push_back(std::move(c));
    }
  }
}

}  // namespace cw::hostile
