// Classes "special" (special files where a file is expected) and "text" (pathological text).
#include <filesystem>
#include <fstream>

#include "hostile/suite.h"

namespace cw::hostile {
namespace {

namespace fs = std::filesystem;

// ---- input slots: every place a subcommand reads a file --------------------------------------------------

struct Slot {
  std::string cmd;
  bool model;  // the slot wants a GGUF (a text-like input can never be right there)
  std::function<Case(Fixtures&, const std::string& path)> make;
};

std::vector<Slot> input_slots() {
  std::vector<Slot> v;
  v.push_back({"inspect", true, [](Fixtures&, const std::string& p) {
                 Case c;
                 c.args = {"inspect", p};
                 c.ok_check = check_inspect(false);
                 return c;
               }});
  v.push_back({"tokenize", true, [](Fixtures&, const std::string& p) {
                 Case c;
                 c.args = {"tokenize", "-m", p, "-p", "hello"};
                 c.ok_check = check_tokenize("");
                 return c;
               }});
  v.push_back({"tokenize", false, [](Fixtures& fx, const std::string& p) {
                 Case c;
                 c.args = {"tokenize", "-m", fx.vocab, "-f", p, "--ids"};
                 c.ok_check = check_tokenize("--ids");
                 return c;
               }});
  v.push_back({"run", true, [](Fixtures&, const std::string& p) {
                 Case c;
                 c.args = {"run", "-m", p, "-p", "Once", "-n", "2", "--temp", "0", "--json"};
                 c.ok_check = check_run(true, 2);
                 return c;
               }});
  v.push_back({"run", false, [](Fixtures& fx, const std::string& p) {
                 Case c;
                 c.args = {"run", "-m", fx.model, "-f", p, "-n", "2", "--temp", "0", "--json"};
                 c.ok_check = check_run(true, 2);
                 return c;
               }});
  v.push_back({"perplexity", true, [](Fixtures& fx, const std::string& p) {
                 Case c;
                 c.args = {"perplexity", "-m", p, "-f", fx.text, "-c", "16", "-q", "--json"};
                 c.ok_check = check_perplexity(true);
                 return c;
               }});
  v.push_back({"perplexity", false, [](Fixtures& fx, const std::string& p) {
                 Case c;
                 c.args = {"perplexity", "-m", fx.model, "-f", p, "-c", "16", "-q", "--json"};
                 c.ok_check = check_perplexity(true);
                 return c;
               }});
  v.push_back({"bench", true, [](Fixtures&, const std::string& p) {
                 Case c;
                 c.args = {"bench", "-m", p, "-p", "8", "-n", "4", "-r", "1", "-t", "1", "--json"};
                 c.ok_check = check_bench(true);
                 return c;
               }});
  v.push_back({"batch", true, [](Fixtures& fx, const std::string& p) {
                 Case c;
                 c.args = {"batch", "-m", p, "-f", fx.prompts, "-n", "2", "--temp", "0", "--no-progress"};
                 c.ok_check = check_batch(3);
                 return c;
               }});
  v.push_back({"batch", false, [](Fixtures& fx, const std::string& p) {
                 Case c;
                 c.args = {"batch", "-m", fx.model, "-f", p, "-n", "2", "--temp", "0", "--no-progress"};
                 c.ok_check = check_batch(0);  // only an empty input can succeed... and it must not (no prompts)
                 return c;
               }});
  v.push_back({"chunk", false, [](Fixtures&, const std::string& p) {
                 Case c;
                 c.args = {"chunk", "--size", "64", p};
                 c.ok_check = check_chunk({{p, kUnknownSize}}, 64, true);
                 return c;
               }});
  v.push_back({"chunk", false, [](Fixtures& fx, const std::string& p) {
                 Case c;
                 c.args = {"chunk", "--size", "64", fx.text, p};
                 c.ok_check = check_chunk({{fx.text, fs::file_size(fx.text)}, {p, kUnknownSize}}, 64, true);
                 return c;
               }});
  v.push_back({"chunk", true, [](Fixtures& fx, const std::string& p) {
                 Case c;
                 c.args = {"chunk", "--tokenizer", p, "--size", "64", fx.text};
                 c.ok_check = check_chunk({{fx.text, fs::file_size(fx.text)}}, 64, true);
                 return c;
               }});
  v.push_back({"chunk", true, [](Fixtures& fx, const std::string& p) {
                 Case c;
                 c.args = {"chunk", "--spec", "semantic:model=" + p, "--unit", "chars", "--size", "200", fx.text};
                 c.ok_check = check_chunk({{fx.text, fs::file_size(fx.text)}}, 200, true);
                 return c;
               }});
  v.push_back({"make-model", true, [](Fixtures& fx, const std::string& p) {
                 Case c;
                 const std::string out = fx.path("made.gguf");
                 c.args = {"make-model", "--arch", "llama", "--shape", "tiny", "--type", "q8_0", "--vocab", p, "-o", out,
                           "-q", "--threads", "1"};
                 c.ok_check = check_make_model(fx.bin, out);
                 return c;
               }});
  return v;
}

struct Special {
  std::string name;
  std::string path;
  bool text_ok;  // a text slot may accept it (reads as empty / as text)
  bool fast;
};

}  // namespace

void gen_special(Fixtures& fx, std::vector<Case>& out) {
  std::vector<Special> specials = {
      {"a directory", fx.dir_input, false, true},
      {"a FIFO with no writer", fx.fifo, false, true},
      {"/dev/zero", "/dev/zero", false, true},
      {"/dev/urandom", "/dev/urandom", false, false},
      {"/dev/null", "/dev/null", true, false},
      {"a symlink loop", fx.loop, false, false},
      {"a missing file", fx.missing, false, true},
      {"a dangling symlink", fx.dangling, false, false},
      {"an empty path", "", false, false},
      {"a file path with a trailing slash", fx.text + "/", false, false},
      {"a 5000-byte path", fx.dir + "/" + std::string(5000, 'x'), false, false},
      {"/proc/self/status (size 0, has content)", "/proc/self/status", true, false},
  };
  if (!fx.unreadable.empty()) specials.push_back({"an unreadable file (mode 000)", fx.unreadable, false, true});
  // Not generated when root: permission bits do not stop root, so "unreadable" would be readable.
  for (const Slot& slot : input_slots()) {
    for (const Special& s : specials) {
      Case c = slot.make(fx, s.path);
      // "model=" with nothing after it is the spec's way to say "no model" (the hash embedder).
      if (s.path.empty() && c.args[1] == "--spec") continue;
      c.cls = "special";
      c.cmd = slot.cmd;
      c.what = s.name + " as the " + (slot.model ? "GGUF" : "text") + " input";
      c.expect = (s.text_ok && !slot.model) ? Expect::kAny : Expect::kError;
      c.fast = s.fast && (slot.cmd == "tokenize" || slot.cmd == "chunk" || slot.cmd == "inspect");
      c.timeout_s = 6;
      if (slot.cmd == "make-model") {
        const std::string made = c.args[10];
        c.post = [made]() {
          std::error_code ec;
          fs::remove(made, ec);
          return std::string();
        };
      }
      out.push_back(std::move(c));
    }
  }
  // Standard input that never ends or is empty.
  struct Stdin {
    std::string cmd;
    std::vector<std::string> args;
    Check check;
  };
  const std::vector<Stdin> stdin_cmds = {
      {"chunk", {"chunk", "--size", "64", "-"}, check_chunk({{"-", kUnknownSize}}, 64, true)},
      {"chunk", {"chunk", "--size", "64"}, check_chunk({{"-", kUnknownSize}}, 64, true)},
      {"batch", {"batch", "-m", fx.model, "-f", "-", "-n", "2", "--no-progress"}, check_batch(0)},
      {"run", {"run", "-m", fx.model, "-f", "-", "-n", "2", "--json"}, check_run(true, 2)},
  };
  for (const Stdin& s : stdin_cmds) {
    for (const char* dev : {"/dev/zero", "/dev/urandom", "/dev/null"}) {
      Case c;
      c.cls = "special";
      c.cmd = s.cmd;
      c.what = std::string("stdin is ") + dev;
      c.args = s.args;
      c.stdin_path = dev;
      c.ok_check = s.check;
      c.expect = std::string(dev) == "/dev/null" ? Expect::kAny : Expect::kError;
      c.fast = std::string(dev) == "/dev/zero";
      c.timeout_s = 6;
      out.push_back(std::move(c));
    }
  }
}

// ---- pathological text ------------------------------------------------------------------------------------

namespace {

std::string utf16(const std::string& ascii, bool big_endian, bool bom) {
  std::string s;
  if (bom) s += big_endian ? "\xfe\xff" : "\xff\xfe";
  for (char c : ascii) {
    if (big_endian) s += '\0';
    s += c;
    if (!big_endian) s += '\0';
  }
  return s;
}

std::string repeat(const std::string& unit, size_t total_bytes) {
  std::string s;
  s.reserve(total_bytes + unit.size());
  while (s.size() < total_bytes) s += unit;
  s.resize(total_bytes);
  return s;
}

struct Text {
  std::string name;
  std::function<std::string()> make;
  bool heavy = false;
  bool utf16 = false;  // tokenizing it as bytes is wrong: decode or refuse
  bool fast = false;
};

std::vector<Text> texts(Fixtures& fx) {
  const std::string story = "Once upon a time there was a little cat who liked to play in the garden.\n";
  Rng rng(fx.seed ^ 0x7465787400000000ull);
  auto random_bytes = [seed = rng.next()](size_t n) {
    Rng r(seed);
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(r.next());
    return s;
  };
  auto random_letters = [seed = rng.next()](size_t n) {
    Rng r(seed);
    std::string s(n, 'a');
    for (char& c : s) c = static_cast<char>('a' + r.below(26));
    return s;
  };
  std::vector<Text> v = {
      {"empty", [] { return std::string(); }, false, false, true},
      {"one NUL byte", [] { return std::string(1, '\0'); }},
      {"NUL bytes inside words", [] { return std::string("Hello\0world\0\0 once upon\0a time\n", 31); }, false, false, true},
      {"64 KiB of NUL", [] { return std::string(1 << 16, '\0'); }},
      {"invalid UTF-8 (overlong, surrogates, > U+10FFFF, stray continuation)",
       [] { return std::string("ok \xff\xfe\xfd abc \xc0\xaf \xe0\x80\x80 \xed\xa0\x80 \xf4\x90\x80\x80 \x80\x80\x80 end\n"); },
       false, false, true},
      {"a UTF-8 sequence cut at the end", [] { return std::string("abc \xe2\x82"); }},
      {"64 KiB of random bytes", [random_bytes] { return random_bytes(1 << 16); }},
      {"UTF-16LE with BOM", [story] { return utf16(story, false, true); }, false, true, true},
      {"UTF-16BE with BOM", [story] { return utf16(story, true, true); }, false, true},
      {"UTF-16LE without BOM", [story] { return utf16(story, false, false); }, false, true},
      {"UTF-8 BOM then text", [story] { return "\xef\xbb\xbf" + story; }, false, false, true},
      {"only a UTF-8 BOM", [] { return std::string("\xef\xbb\xbf"); }},
      {"UTF-8 BOM in the middle", [story] { return story + "\xef\xbb\xbf" + story; }},
      {"CRLF line ends and lone CRs", [] { return std::string("one\r\ntwo\r\rthree\r\n\r\nfour\r"); }},
      {"one base letter + 50,000 combining accents", [] { return "e" + repeat("\xcc\x81", 100000) + " end"; }},
      {"10,000 ZWJ family emoji", [] { return repeat("\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7 ", 10000 * 16); }},
      {"RTL overrides and mixed scripts",
       [] { return repeat("abc \xe2\x80\xae\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d\xe2\x80\xac \xe4\xb8\xad\xe6\x96\x87 \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 ", 4096); }},
      {"special-token strings", [] { return repeat("<s></s><unk><|endoftext|>[CLS] ", 4096); }},
      {"exactly 4096 bytes", [story] { return repeat(story, 4096); }},
      {"exactly 8192 bytes, no newline", [] { return repeat("word ", 8192); }},
      {"20,000 markdown headings", [] { return repeat("# h\n", 80000); }},
      {"10,000 nested block quotes", [] { return repeat(">", 10000) + " deep\n"; }},
      {"5,000-level nested list", [] {
         std::string s;
         for (int i = 0; i < 5000; ++i) s += std::string(static_cast<size_t>(i % 200) * 2, ' ') + "- item\n";
         return s;
       }},
      {"unclosed code fence + 256 KiB", [story] { return "# T\n\n```\n" + repeat(story, 1 << 18); }},
      {"100,000 open braces", [] { return "int f() " + std::string(100000, '{'); }},
      {"64 KiB word", [] { return std::string(1 << 16, 'a'); }, false, false, true},
      {"64 KiB line of words", [] { return repeat("word ", 1 << 16); }},
      {"64 KiB of whitespace", [] { return repeat(" \t\n\r", 1 << 16); }},
      {"2 MiB word (size a multiple of 4096)", [] { return std::string(2 << 20, 'a'); }, true, false, true},
      {"2 MiB of English (size a multiple of 4096)", [story] { return repeat(story, 2 << 20); }, true},
      {"3 MiB + 7 line of words, no newline", [] { return repeat("word ", (3 << 20) + 7); }, true},
      {"8 MiB word", [] { return std::string(8 << 20, 'a'); }, true},
      {"8 MiB line of words, no newline", [] { return repeat("lorem ipsum ", 8 << 20); }, true},
      {"4 MiB of spaces", [] { return std::string(4 << 20, ' '); }, true},
      {"2 MiB of newlines", [] { return std::string(2 << 20, '\n'); }, true},
      {"2 MiB of letters, no separators", [random_letters] { return random_letters(2 << 20); }, true},
      {"2 MiB of one CJK character", [] { return repeat("\xe4\xb8\xad", (2 << 20) + 1); }, true},
      {"1 MiB of random bytes", [random_bytes] { return random_bytes(1 << 20); }, true},
  };
  return v;
}

struct TextUse {
  std::string cmd;
  std::string what;
  std::function<Case(Fixtures&, const std::string& path, uint64_t size, const Text& t)> make;
  bool for_heavy;
  uint64_t max_bytes = ~uint64_t{0};  // inputs past this take legitimately long (perplexity scores every token)
};

Case chunk_case(const std::string& path, uint64_t size, std::vector<std::string> args, int64_t n, bool stdin_mode) {
  Case c;
  c.args = {"chunk"};
  c.args.insert(c.args.end(), args.begin(), args.end());
  c.args.push_back("--size");
  c.args.push_back(std::to_string(n));
  if (stdin_mode) {
    c.args.push_back("-");
    c.stdin_path = path;
  } else {
    c.args.push_back(path);
  }
  c.ok_check = check_chunk({{stdin_mode ? "-" : path, size}}, n, true);
  return c;
}

std::vector<TextUse> text_uses(Fixtures& fx) {
  std::vector<TextUse> v;
  v.push_back({"tokenize", "--json", [](Fixtures& f, const std::string& p, uint64_t size, const Text& t) {
                 Case c;
                 c.args = {"tokenize", "-m", f.vocab, "-f", p, "--json"};
                 c.ok_check = check_tokenize("--json", t.utf16, size > 0);
                 return c;
               }, false});
  v.push_back({"tokenize", "--ids", [](Fixtures& f, const std::string& p, uint64_t size, const Text&) {
                 Case c;
                 c.args = {"tokenize", "-m", f.vocab, "-f", p, "--ids", "--add-special", "--parse-special"};
                 c.ok_check = check_tokenize("--ids", false, size > 0);
                 return c;
               }, true});
  v.push_back({"tokenize", "pieces", [](Fixtures& f, const std::string& p, uint64_t size, const Text&) {
                 Case c;
                 c.args = {"tokenize", "-m", f.vocab, "-f", p};
                 c.ok_check = check_tokenize("", false, size > 0);
                 return c;
               }, false});
  if (fx.shared) {
    for (const char* voc : {"gpt-2", "bert-bge", "llama-spm"}) {
      const std::string vp = *fx.shared + "/vocab/ggml-vocab-" + voc + ".gguf";
      std::error_code ec;
      if (!fs::exists(vp, ec)) continue;
      v.push_back({"tokenize", std::string("--json with the ") + voc + " vocab",
                   [vp](Fixtures&, const std::string& p, uint64_t, const Text& t) {
                     Case c;
                     c.args = {"tokenize", "-m", vp, "-f", p, "--json"};
                     c.ok_check = check_tokenize("--json", t.utf16);  // whitespace alone may give no tokens
                     return c;
                   }, std::string(voc) == "gpt-2"});
    }
  }
  struct M {
    const char* method;
    const char* unit;
    int64_t size;
    bool heavy;
  };
  for (const M& m : {M{"token", "tokens", 64, true}, M{"token", "words", 32, false}, M{"sentence", "chars", 200, true},
                     M{"sentence", "tokens", 64, false}, M{"recursive", "tokens", 64, true},
                     M{"recursive", "bytes", 256, false}, M{"markdown", "tokens", 64, true}, M{"markdown", "words", 40, false},
                     M{"semantic", "chars", 300, true}, M{"code", "tokens", 64, false}}) {
    v.push_back({"chunk", std::string(m.method) + " / " + m.unit,
                 [m](Fixtures& f, const std::string& p, uint64_t size, const Text&) {
                   std::vector<std::string> a = {"-m", m.method, "--unit", m.unit};
                   if (std::string(m.unit) == "tokens") {
                     a.push_back("--tokenizer");
                     a.push_back(f.vocab);
                   }
                   if (std::string(m.method) == "code") {
                     a.push_back("--lang");
                     a.push_back("c");
                   }
                   return chunk_case(p, size, a, m.size, false);
                 }, m.heavy});
  }
  v.push_back({"chunk", "recursive / chars from stdin", [](Fixtures&, const std::string& p, uint64_t size, const Text&) {
                 return chunk_case(p, size, {"--no-text"}, 512, true);
               }, true});
  v.push_back({"run", "prompt file", [](Fixtures& f, const std::string& p, uint64_t, const Text&) {
                 Case c;
                 c.args = {"run", "-m", f.model, "-f", p, "-n", "4", "--temp", "0", "--json"};
                 c.ok_check = check_run(true, 4);
                 return c;
               }, true});
  v.push_back({"perplexity", "scored text", [](Fixtures& f, const std::string& p, uint64_t, const Text&) {
                 Case c;
                 c.args = {"perplexity", "-m", f.model, "-f", p, "-c", "64", "-q", "--json"};
                 c.ok_check = check_perplexity(true);
                 return c;
               }, false, 16 << 10});
  return v;
}

}  // namespace

void gen_text(Fixtures& fx, std::vector<Case>& out) {
  const auto uses = text_uses(fx);
  for (const Text& t : texts(fx)) {
    if (t.heavy && !fx.full) continue;
    const std::string bytes_probe = t.heavy ? std::string() : t.make();
    auto file = fx.lazy("text.txt", [make = t.make](const std::string& p) {
      const std::string s = make();
      std::ofstream(p, std::ios::binary).write(s.data(), static_cast<std::streamsize>(s.size()));
    });
    // Size without keeping multi-MB strings around: heavy texts are made once here to measure them.
    const uint64_t size = t.heavy ? t.make().size() : bytes_probe.size();
    for (const TextUse& u : uses) {
      if ((t.heavy && !u.for_heavy) || size > u.max_bytes) continue;
      Case c = u.make(fx, file->path, size, t);
      c.cls = "text";
      c.cmd = u.cmd;
      c.what = t.name + " (" + u.what + ")";
      c.inputs.push_back(file);
      c.input_bytes = size;
      c.heavy = t.heavy;
      c.fast = t.fast && (u.cmd == "tokenize" || u.what == "recursive / tokens") && !t.heavy;
      c.timeout_s = t.heavy ? 20 : 10;
      out.push_back(std::move(c));
    }
  }
}

}  // namespace cw::hostile
