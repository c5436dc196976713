// Class "output": where results are written. -o equal to an input (by the same name, another spelling, a
// symlink, a hard link), -o into a missing folder, onto a folder, onto a full device, an empty name; stdout
// on a full device for every subcommand; an existing output and a run that fails. Inputs must stay intact,
// an existing output must survive a failed run, and a failed run leaves no stray files.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "hostile/suite.h"

namespace cw::hostile {
namespace {

namespace fs = std::filesystem;

const char kPrevious[] = "previous output: must survive a failed run\n";

struct Writer {
  std::string cmd;
  // Builds the args writing to `out`, reading `in` (a text / JSONL / vocab input, per command).
  std::function<std::vector<std::string>(const std::string& in, const std::string& out)> args;
  std::function<std::string(Fixtures&, const std::string& dir)> make_input;  // copies an input into `dir`
  std::function<Check(const std::string& in, const std::string& out)> ok;
};

std::string copy_into(const std::string& src, const std::string& dir, const std::string& name) {
  const std::string p = dir + "/" + name;
  fs::copy_file(src, p, fs::copy_options::overwrite_existing);
  return p;
}

std::vector<Writer> writers(Fixtures& fx) {
  std::vector<Writer> v;
  v.push_back({"chunk",
               [](const std::string& in, const std::string& out) {
                 return std::vector<std::string>{"chunk", "--size", "64", in, "-o", out};
               },
               [](Fixtures& f, const std::string& d) { return copy_into(f.text, d, "a.md"); },
               [](const std::string& in, const std::string& out) {
                 return on_file(out, check_chunk({{in, fs::file_size(in)}}, 64, true));
               }});
  v.push_back({"batch",
               [m = fx.model](const std::string& in, const std::string& out) {
                 return std::vector<std::string>{"batch", "-m", m, "-f", in, "-n", "2", "--temp", "0", "--no-progress",
                                                 "-o", out};
               },
               [](Fixtures& f, const std::string& d) { return copy_into(f.prompts, d, "prompts.jsonl"); },
               [](const std::string&, const std::string& out) { return on_file(out, check_batch(3)); }});
  v.push_back({"make-model",
               [](const std::string& in, const std::string& out) {
                 return std::vector<std::string>{"make-model", "--arch", "llama", "--shape", "tiny", "--type", "q8_0",
                                                 "--vocab", in, "-o", out, "-q", "--threads", "1"};
               },
               [](Fixtures& f, const std::string& d) { return copy_into(f.vocab, d, "vocab.gguf"); },
               [bin = fx.bin](const std::string&, const std::string& out) { return check_make_model(bin, out); }});
  return v;
}

Case out_case(const Writer& w, const std::string& what, std::vector<std::string> args, Expect e) {
  Case c;
  c.cls = "output";
  c.cmd = w.cmd;
  c.what = what;
  c.args = std::move(args);
  c.expect = e;
  return c;
}

}  // namespace

void gen_output(Fixtures& fx, std::vector<Case>& out) {
  for (const Writer& w : writers(fx)) {
    auto fresh = [&fx](const std::string& stem) {
      const std::string d = fx.path(stem);
      fs::create_directories(d);
      return d;
    };
    auto guarded = [](Case& c, const std::string& dir, std::vector<std::string> keep) {
      std::vector<std::function<std::string()>> posts = {dir_unchanged(dir)};
      for (const std::string& k : keep) posts.push_back(file_unchanged(k));
      c.post = all_of(posts);
    };
    {  // -o is the input, same spelling
      const std::string d = fresh("out-same");
      const std::string in = w.make_input(fx, d);
      Case c = out_case(w, "-o names the input", w.args(in, in), Expect::kError);
      guarded(c, d, {in});
      c.fast = true;
      out.push_back(std::move(c));
    }
    {  // another spelling of the same path, relative to the working directory
      const std::string d = fresh("out-spelling");
      const std::string in = w.make_input(fx, d);
      const std::string name = fs::path(in).filename().string();
      Case c = out_case(w, "-o is the input spelled ./NAME vs NAME", w.args("./" + name, name), Expect::kError);
      c.cwd = d;
      guarded(c, d, {in});
      out.push_back(std::move(c));
    }
    {  // a symlink to the input
      const std::string d = fresh("out-symlink");
      const std::string in = w.make_input(fx, d);
      const std::string link = d + "/link-to-input";
      fs::create_symlink(in, link);
      Case c = out_case(w, "-o is a symlink to the input", w.args(in, link), Expect::kError);
      guarded(c, d, {in});
      out.push_back(std::move(c));
    }
    {  // a hard link to the input
      const std::string d = fresh("out-hardlink");
      const std::string in = w.make_input(fx, d);
      const std::string link = d + "/hardlink-to-input";
      fs::create_hard_link(in, link);
      Case c = out_case(w, "-o is a hard link to the input", w.args(in, link), Expect::kError);
      guarded(c, d, {in});
      out.push_back(std::move(c));
    }
    {  // into a missing folder
      const std::string d = fresh("out-missing-dir");
      const std::string in = w.make_input(fx, d);
      Case c = out_case(w, "-o into a missing folder", w.args(in, d + "/no/such/dir/out"), Expect::kOutputError);
      guarded(c, d, {in});
      c.fast = w.cmd == "chunk";
      out.push_back(std::move(c));
    }
    {  // onto a folder
      const std::string d = fresh("out-dir");
      const std::string in = w.make_input(fx, d);
      const std::string sub = d + "/sub";
      fs::create_directories(sub);
      std::ofstream(sub + "/keep.txt") << "keep\n";
      Case c = out_case(w, "-o is a folder", w.args(in, sub), Expect::kOutputError);
      guarded(c, d, {in, sub + "/keep.txt"});
      out.push_back(std::move(c));
    }
    {  // under a regular file
      const std::string d = fresh("out-notdir");
      const std::string in = w.make_input(fx, d);
      Case c = out_case(w, "-o under a regular file (ENOTDIR)", w.args(in, in + "/out"), Expect::kOutputError);
      guarded(c, d, {in});
      out.push_back(std::move(c));
    }
    {  // empty name
      const std::string d = fresh("out-empty");
      const std::string in = w.make_input(fx, d);
      Case c = out_case(w, "-o ''", w.args(in, ""), Expect::kOutputError);
      guarded(c, d, {in});
      out.push_back(std::move(c));
    }
    if (!fx.full_dev.empty()) {  // a full device
      const std::string d = fresh("out-full");
      const std::string in = w.make_input(fx, d);
      Case c = out_case(w, "-o on a full device (ENOSPC)", w.args(in, fx.full_dev), Expect::kOutputError);
      c.post = all_of({dir_unchanged(d), file_unchanged(in), is_char_device(fx.full_dev)});
      c.fast = true;
      out.push_back(std::move(c));
    }
    if (!fx.root) {  // a read-only existing output
      const std::string d = fresh("out-readonly");
      const std::string in = w.make_input(fx, d);
      const std::string o = d + "/readonly.out";
      std::ofstream(o) << kPrevious;
      ::chmod(o.c_str(), 0444);
      Case c = out_case(w, "-o is a read-only file", w.args(in, o), Expect::kOutputError);
      guarded(c, d, {in, o});
      out.push_back(std::move(c));
    }
    {  // success replaces an existing output, and the result is complete
      const std::string d = fresh("out-ok");
      const std::string in = w.make_input(fx, d);
      const std::string o = d + "/result.out";
      std::ofstream(o) << kPrevious;
      Case c = out_case(w, "-o over an existing file (must succeed)", w.args(in, o), Expect::kOk);
      c.ok_check = w.ok(in, o);
      c.post = file_unchanged(in);
      out.push_back(std::move(c));
    }
  }

  // A run that fails must leave an existing output as it was (and no stray files).
  struct Failing {
    std::string cmd, what;
    std::function<std::vector<std::string>(const std::string& dir, const std::string& out)> args;
  };
  const std::vector<Failing> failing = {
      {"chunk", "a later input is a directory",
       [&fx](const std::string& d, const std::string& o) {
         return std::vector<std::string>{"chunk", copy_into(fx.text, d, "a.txt"), fx.dir_input, "-o", o};
       }},
      {"chunk", "a later input is missing",
       [&fx](const std::string& d, const std::string& o) {
         return std::vector<std::string>{"chunk", copy_into(fx.text, d, "a.txt"), fx.missing, "-o", o};
       }},
      {"chunk", "a later input is /dev/zero",
       [&fx](const std::string& d, const std::string& o) {
         return std::vector<std::string>{"chunk", copy_into(fx.text, d, "a.txt"), "/dev/zero", "-o", o};
       }},
      {"chunk", "a later input is a FIFO nobody writes",
       [&fx](const std::string& d, const std::string& o) {
         return std::vector<std::string>{"chunk", copy_into(fx.text, d, "a.txt"), fx.fifo, "-o", o};
       }},
      {"chunk", "a later input holds a unit larger than --size",
       [&fx](const std::string& d, const std::string& o) {
         std::ofstream(d + "/emoji.txt") << "Once \xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa9 end";
         return std::vector<std::string>{"chunk", "-m", "token", "--tokenizer", fx.vocab, "--size", "1",
                                         copy_into(fx.text, d, "a.txt"), d + "/emoji.txt", "-o", o};
       }},
      {"batch", "line 3 is invalid",
       [&fx](const std::string& d, const std::string& o) {
         std::ofstream(d + "/bad.jsonl") << "{\"prompt\": \"a\"}\n{\"prompt\": \"b\"}\n{\"prompt\": 3}\n";
         return std::vector<std::string>{"batch", "-m", fx.model, "-f", d + "/bad.jsonl", "-o", o, "--no-progress"};
       }},
      {"batch", "the model is corrupt",
       [&fx](const std::string& d, const std::string& o) {
         std::ofstream(d + "/bad.gguf") << "GGUF\x03";
         return std::vector<std::string>{"batch", "-m", d + "/bad.gguf", "-f", fx.prompts, "-o", o, "--no-progress"};
       }},
      {"make-model", "an unknown --type",
       [&fx](const std::string&, const std::string& o) {
         return std::vector<std::string>{"make-model", "--arch", "llama", "--shape", "tiny", "--type", "q9_9", "--vocab",
                                         fx.vocab, "-o", o, "-q"};
       }},
      {"make-model", "a truncated vocabulary",
       [&fx](const std::string& d, const std::string& o) {
         const std::string v = slurp(fx.vocab);
         std::ofstream(d + "/cut.gguf", std::ios::binary) << v.substr(0, v.size() / 2);
         return std::vector<std::string>{"make-model", "--arch", "llama", "--shape", "tiny", "--type", "q8_0", "--vocab",
                                         d + "/cut.gguf", "-o", o, "-q"};
       }},
  };
  for (const Failing& f : failing) {
    const std::string d = fx.path("out-failing");
    fs::create_directories(d);
    const std::string o = d + "/existing.out";
    std::ofstream(o) << kPrevious;
    Case c;
    c.cls = "output";
    c.cmd = f.cmd;
    c.what = "existing -o and a failing run: " + f.what;
    c.args = f.args(d, o);
    c.expect = Expect::kError;
    c.post = all_of({file_unchanged(o), dir_unchanged(d)});
    c.timeout_s = 6;
    c.fast = f.what.find("directory") != std::string::npos || f.what.find("unit larger") != std::string::npos;
    out.push_back(std::move(c));
  }

  // stdout on a full device: every subcommand must notice that its output was not written.
  if (!fx.full_dev.empty()) {
    const std::string made = fx.dir + "/stdout-full-made.gguf";
    const std::vector<std::pair<std::string, std::vector<std::string>>> to_stdout = {
        {"inspect", {"inspect", fx.model}},
        {"inspect", {"inspect", "--json", fx.model}},
        {"tokenize", {"tokenize", "-m", fx.vocab, "-f", fx.text}},
        {"tokenize", {"tokenize", "-m", fx.vocab, "-f", fx.text, "--json"}},
        {"run", {"run", "-m", fx.model, "-p", "Once upon a time", "-n", "4", "--temp", "0"}},
        {"run", {"run", "-m", fx.model, "-p", "Once upon a time", "-n", "4", "--temp", "0", "--json"}},
        {"batch", {"batch", "-m", fx.model, "-f", fx.prompts, "-n", "2", "--no-progress"}},
        {"chunk", {"chunk", "--size", "64", fx.text}},
        {"perplexity", {"perplexity", "-m", fx.model, "-f", fx.text, "-c", "64", "-q"}},
        {"bench", {"bench", "-m", fx.model, "-p", "8", "-n", "4", "-r", "1", "--json"}},
        {"make-model", {"make-model", "--arch", "llama", "--shape", "tiny", "--type", "q8_0", "--vocab", fx.vocab, "-o",
                        made, "-q"}},
    };
    for (const auto& [cmd, args] : to_stdout) {
      Case c;
      c.cls = "output";
      c.cmd = cmd;
      c.what = "stdout is a full device (ENOSPC)";
      c.args = args;
      c.stdout_path = fx.full_dev;
      c.expect = Expect::kOutputError;
      c.fast = cmd == "chunk" || cmd == "tokenize";
      c.post = all_of({is_char_device(fx.full_dev), [made]() {
                         std::error_code ec;
                         fs::remove(made, ec);
                         return std::string();
                       }});
      out.push_back(std::move(c));
    }
  }
}

}  // namespace cw::hostile
