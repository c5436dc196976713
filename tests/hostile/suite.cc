#include "hostile/suite.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "gguf/writer.h"
#include "support/spm_vocab.h"
#include "support/testing.h"

namespace cw::hostile {

namespace fs = std::filesystem;

constexpr int64_t kMiB = 1024;  // in KiB

const std::vector<ClassInfo> kClasses = {
    {"gguf", "corrupt, truncated, bit-flipped, oversized and inconsistent GGUF models and vocabularies", 256 * kMiB, 0},
    {"special",
     "special files as inputs: directory, FIFO, /dev/zero, /dev/null, unreadable, symlink loop, missing; endless stdin",
     512 * kMiB, 0},
    {"text", "pathological text: empty, NUL, invalid UTF-8, UTF-16, BOM, multi-MB word / line / whitespace",
     256 * kMiB, 32.0},
    {"flags", "hostile flags: huge / negative / malformed numbers, unknown options, missing values", 512 * kMiB, 0},
    {"jsonl", "hostile JSONL for batch: BOM, bad UTF-8, 1e20, deep nesting, huge strings, wrong types",
     512 * kMiB, 0},
    {"output", "output paths: -o equal to an input, into a missing dir, a directory, a full device", 256 * kMiB, 0},
};

const ClassInfo& class_info(const std::string& name) {
  for (const ClassInfo& c : kClasses)
    if (name == c.name) return c;
  std::abort();
}

int64_t rss_bound_kb(const Case& c) {
  const ClassInfo& ci = class_info(c.cls);
  return ci.rss_base_kb + static_cast<int64_t>(ci.rss_per_input_byte * static_cast<double>(c.input_bytes) / 1024.0);
}

void LazyFile::ensure() {
  if (made) return;
  make(path);
  made = true;
}

void LazyFile::release() {
  if (--users > 0 || !made) return;
  if (std::getenv("CW_HOSTILE_KEEP") == nullptr) {
    std::error_code ec;
    fs::remove(path, ec);
    made = false;
  }
}

std::string Fixtures::path(const std::string& stem) { return dir + "/" + std::to_string(counter++) + "-" + stem; }

std::string Fixtures::write(const std::string& stem, const std::string& bytes) {
  const std::string p = path(stem);
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return p;
}

LazyRef Fixtures::lazy(const std::string& stem, std::function<void(const std::string&)> make) {
  auto l = std::make_shared<LazyFile>();
  l->path = path(stem);
  l->make = std::move(make);
  return l;
}

namespace {

std::string english_text(Rng& rng, int n_sentences) {
  static const char* const kWords[] = {"once", "upon", "a", "time", "there", "was", "little", "cat", "who",
                                       "liked", "to", "play", "in", "the", "garden", "with", "her", "friend",
                                       "dog", "they", "ran", "and", "jumped", "over", "big", "red", "ball",
                                       "sun", "was", "warm", "happy", "day"};
  std::string s;
  for (int i = 0; i < n_sentences; ++i) {
    const int n = 4 + static_cast<int>(rng.below(9));
    for (int w = 0; w < n; ++w) {
      std::string word = kWords[rng.below(sizeof kWords / sizeof kWords[0])];
      if (w == 0) word[0] = static_cast<char>(std::toupper(word[0]));
      s += word;
      s += w + 1 < n ? " " : ". ";
    }
    if (i % 5 == 4) s += "\n\n";
  }
  return s;
}

}  // namespace

void make_fixtures(Fixtures* fx) {
  fx->bin = testing::chunkwise_binary();
  ASSERT_EQ(::access(fx->bin.c_str(), X_OK), 0) << "chunkwise binary not found at " << fx->bin;
  fx->dir = testing::temp_dir() + "/hostile-" + std::to_string(::getpid());
  fs::create_directories(fx->dir);
  fx->root = ::geteuid() == 0;
  fx->seed = 20241202;
  if (const char* s = std::getenv("CW_HOSTILE_SEED")) fx->seed = std::strtoull(s, nullptr, 10);
  if (auto d = testing::shared_data_dir()) fx->shared = fs::absolute(*d).lexically_normal().string();
  Rng rng(fx->seed);

  {
    gguf::Writer w;
    w.add_string("general.architecture", "llama");
    testing::add_small_spm_vocab(w);
    w.add_bool("tokenizer.ggml.add_bos_token", true);
    fx->vocab = fx->path("vocab.gguf");
    ASSERT_TRUE(w.write(fx->vocab).is_ok());
  }
  for (auto [out, type] : {std::pair{&fx->model, "f32"}, std::pair{&fx->model_q, "q4_k_m"}}) {
    *out = fx->path(std::string("tiny-") + type + ".gguf");
    ChildSpec s;
    s.argv = {fx->bin, "make-model", "--arch", "llama", "--shape", "tiny", "--type", type, "--vocab", fx->vocab,
              "-o", *out, "-q", "--threads", "1"};
    s.stdout_path = fx->dir + "/fixture.out";
    s.stderr_path = fx->dir + "/fixture.err";
    s.timeout_s = 120;
    ChildResult r = run_child(s);
    ASSERT_TRUE(r.exited && r.exit_code == 0) << "make-model fixture failed: " << slurp(s.stderr_path);
  }
  fx->text = fx->write("story.txt", english_text(rng, 60));
  fx->md = fx->write("doc.md",
                     "# Title\n\nSome intro text. It has two sentences.\n\n## Part one\n\n- item one\n- item two\n\n"
                     "```\nint main() { return 0; }\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n## Part two\n\n" +
                         english_text(rng, 12));
  fx->prompts = fx->write("prompts.jsonl",
                          "{\"id\": \"a\", \"prompt\": \"Once upon a time\"}\n"
                          "{\"prompt\": \"The cat\", \"n_predict\": 3}\n"
                          "{\"id\": 7, \"prompt\": \"Hello\", \"temperature\": 0.5, \"seed\": 3}\n");
  fx->dir_input = fx->path("a-directory");
  fs::create_directories(fx->dir_input);
  fx->fifo = fx->path("fifo");
  ASSERT_EQ(::mkfifo(fx->fifo.c_str(), 0644), 0);
  fx->loop = fx->path("loop-a");
  const std::string loop_b = fx->path("loop-b");
  fs::create_symlink(loop_b, fx->loop);
  fs::create_symlink(fx->loop, loop_b);
  fx->missing = fx->path("does-not-exist.gguf");
  fx->dangling = fx->path("dangling");
  fs::create_symlink(fx->path("nowhere"), fx->dangling);
  if (!fx->root) {
    fx->unreadable = fx->write("unreadable.txt", "secret");
    ::chmod(fx->unreadable.c_str(), 0);
  }
  // A private full device when we may make one (root), so that a product that wrongly renames a temp file
  // over a device replaces only our node, never the machine's /dev/full; /dev/full otherwise (a non-root
  // process cannot replace it).
  if (fx->root) {
    const std::string p = fx->path("full");
    if (::mknod(p.c_str(), S_IFCHR | 0666, makedev(1, 7)) == 0) fx->full_dev = p;
  } else if (::access("/dev/full", W_OK) == 0) {
    fx->full_dev = "/dev/full";
  }
}

void remove_fixtures(const Fixtures& fx) {
  if (fx.dir.empty() || std::getenv("CW_HOSTILE_KEEP") != nullptr) return;
  std::error_code ec;
  fs::remove_all(fx.dir, ec);
}

std::vector<Case> generate_all(Fixtures& fx) {
  std::vector<Case> all;
  gen_gguf(fx, all);
  gen_special(fx, all);
  gen_text(fx, all);
  gen_flags(fx, all);
  gen_jsonl(fx, all);
  gen_output(fx, all);
  return all;
}

std::vector<Case> fast_subset(std::vector<Case> all) {
  std::map<std::pair<std::string, std::string>, std::vector<size_t>> groups;
  for (size_t i = 0; i < all.size(); ++i)
    if (!all[i].heavy) groups[{all[i].cls, all[i].cmd}].push_back(i);
  std::set<size_t> keep;
  for (size_t i = 0; i < all.size(); ++i)
    if (all[i].fast) keep.insert(i);
  constexpr size_t kPerGroup = 3;
  for (auto& [key, idx] : groups) {
    const size_t stride = std::max<size_t>(1, idx.size() / kPerGroup);
    for (size_t k = stride / 2, n = 0; k < idx.size() && n < kPerGroup; k += stride, ++n) keep.insert(idx[k]);
  }
  std::vector<Case> out;
  for (size_t i : keep) out.push_back(std::move(all[i]));
  return out;
}

// ---- judging ----------------------------------------------------------------------------------------------

std::string one_line_error(const Outcome& o) {
  const std::string& e = o.err;
  if (e.empty()) return "nothing on stderr";
  const size_t n_lines = static_cast<size_t>(std::count(e.begin(), e.end(), '\n'));
  if (e.back() != '\n' || n_lines != 1)
    return "stderr has " + std::to_string(n_lines + (e.back() != '\n')) + " lines, expected exactly one";
  if (e.rfind("chunkwise", 0) != 0) return "stderr line does not start with 'chunkwise'";
  const size_t colon = e.find(": ");
  if (colon == std::string::npos || e.find_first_not_of(" \n", colon + 2) == std::string::npos)
    return "empty error message";
  return "";
}

namespace {

std::string first_line(const std::string& s, size_t max = 300) {
  std::string l = s.substr(0, s.find('\n'));
  if (l.size() > max) l = l.substr(0, max) + "...";
  for (char& c : l)
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t') c = '?';
  return l;
}

}  // namespace

Verdict judge(const Case& c, const Outcome& o) {
  std::vector<std::pair<std::string, std::string>> bad;
  const ChildResult& r = o.r;
  const int64_t bound = rss_bound_kb(c);
  std::string kind_ok;
  if (!r.started) {
    bad.emplace_back("setup", r.setup_error);
  } else if (r.timed_out) {
    bad.emplace_back("hang", "no exit within " + std::to_string(static_cast<int>(c.timeout_s)) + " s (killed)");
  } else if (r.rss_killed) {
    bad.emplace_back("rss", "killed: resident memory passed " + std::to_string(r.max_rss_kb / 1024) +
                                " MiB (bound " + std::to_string(bound / 1024) + " MiB)");
  } else if (r.output_killed) {
    bad.emplace_back("output", "killed: stdout passed " + std::to_string(o.out_bytes >> 20) + " MiB");
  } else if (!r.exited) {
    bad.emplace_back("crash", "signal " + std::to_string(r.signal) + " (" + strsignal(r.signal) + ")");
  } else {
    if (r.max_rss_kb > bound)
      bad.emplace_back("rss", "peak RSS " + std::to_string(r.max_rss_kb / 1024) + " MiB > bound " +
                                  std::to_string(bound / 1024) + " MiB");
    const int code = r.exit_code;
    if (code == 0) {
      kind_ok = "ok";
      if (c.expect == Expect::kError) {
        bad.emplace_back("accepted", "exit 0, expected a one-line error with exit 2" +
                                         (o.out.empty() ? std::string(" (stdout empty)")
                                                        : "; stdout: " + first_line(o.out, 120)));
      } else if (c.expect == Expect::kOutputError) {
        bad.emplace_back("accepted", "exit 0, but the output cannot have been written");
      } else if (c.ok_check) {
        if (std::string why = c.ok_check(o); !why.empty()) bad.emplace_back("result", why);
      }
    } else if (code == 1 || code == 2) {
      kind_ok = "refused";
      if (c.expect == Expect::kOk) bad.emplace_back("refused-valid", "exit " + std::to_string(code) + ": " + first_line(o.err));
      if (code == 1 && c.expect != Expect::kOutputError && c.expect != Expect::kOk)
        bad.emplace_back("exit", "exit 1 for bad input (expected 2): " + first_line(o.err));
      if (std::string why = one_line_error(o); !why.empty())
        bad.emplace_back("stderr", why + ": " + first_line(o.err));
      if (c.err_check)
        if (std::string why = c.err_check(o); !why.empty()) bad.emplace_back("message", why + ": " + first_line(o.err));
    } else {
      bad.emplace_back("exit", "exit code " + std::to_string(code) + ": " + first_line(o.err));
    }
  }
  if (c.post)
    if (std::string why = c.post(); !why.empty()) bad.emplace_back("post", why);
  Verdict v;
  if (bad.empty()) {
    v.pass = true;
    v.kind = kind_ok;
    return v;
  }
  v.kind = bad[0].first;
  for (auto& [k, d] : bad) v.detail += (v.detail.empty() ? "" : "; ") + ("[" + k + "] " + d);
  return v;
}

// ---- postconditions ---------------------------------------------------------------------------------------

std::function<std::string()> file_unchanged(const std::string& path) {
  auto before = std::make_shared<std::optional<std::string>>();
  auto taken = std::make_shared<bool>(false);
  // The snapshot is taken the first time the returned function is called with taken=false: run_suite calls
  // every post once before the run (see Case::post contract below), so we use a two-phase closure.
  return [path, before, taken]() -> std::string {
    std::error_code ec;
    const bool exists = fs::exists(path, ec);
    if (!*taken) {
      *taken = true;
      if (exists) *before = slurp(path);
      return "";
    }
    if (!before->has_value()) return exists ? "" : "";
    if (!exists) return "'" + fs::path(path).filename().string() + "' was deleted";
    const std::string now = slurp(path);
    if (now != **before)
      return "'" + fs::path(path).filename().string() + "' changed: " + std::to_string((*before)->size()) +
             " bytes before, " + std::to_string(now.size()) + " after";
    return "";
  };
}

std::function<std::string()> is_char_device(const std::string& path) {
  return [path]() -> std::string {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return "'" + path + "' is gone";
    if (!S_ISCHR(st.st_mode)) return "'" + path + "' is no longer a character device (replaced by a file?)";
    return "";
  };
}

std::function<std::string()> dir_unchanged(const std::string& dir) {
  auto before = std::make_shared<std::set<std::string>>();
  auto taken = std::make_shared<bool>(false);
  return [dir, before, taken]() -> std::string {
    std::set<std::string> now;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) now.insert(e.path().filename().string());
    if (!*taken) {
      *taken = true;
      *before = now;
      return "";
    }
    std::string diff;
    for (const std::string& n : now)
      if (before->count(n) == 0) diff += " +" + n;
    for (const std::string& n : *before)
      if (now.count(n) == 0) diff += " -" + n;
    return diff.empty() ? "" : "files left behind / removed in the output folder:" + diff;
  };
}

std::function<std::string()> all_of(std::vector<std::function<std::string()>> posts) {
  return [posts]() {
    std::string all;
    for (const auto& p : posts)
      if (std::string s = p(); !s.empty()) all += (all.empty() ? "" : "; ") + s;
    return all;
  };
}

// ---- running ----------------------------------------------------------------------------------------------

namespace {

struct Stats {
  size_t cases = 0, ok = 0, refused = 0, crash = 0, hang = 0, rss = 0, other = 0;
  int64_t max_rss_kb = 0;
};

std::string strip_dir(std::string s, const std::string& dir) {
  for (size_t p; (p = s.find(dir)) != std::string::npos;) s.replace(p, dir.size(), "$T");
  return s;
}

std::string row(const std::string& a, const std::string& b, const Stats& s) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "| %-8s | %-10s | %5zu | %5zu | %7zu | %5zu | %4zu | %4zu | %5zu | %7lld |\n", a.c_str(),
                b.c_str(), s.cases, s.ok, s.refused, s.crash, s.hang, s.rss, s.other,
                static_cast<long long>(s.max_rss_kb / 1024));
  return buf;
}

void add(Stats& s, const Verdict& v, int64_t rss) {
  ++s.cases;
  s.max_rss_kb = std::max(s.max_rss_kb, rss);
  if (v.pass) {
    (v.kind == "ok" ? s.ok : s.refused)++;
  } else if (v.kind == "crash") {
    ++s.crash;
  } else if (v.kind == "hang") {
    ++s.hang;
  } else if (v.kind == "rss") {
    ++s.rss;
  } else {
    ++s.other;
  }
}

}  // namespace

SuiteResult run_suite(Fixtures& fx, std::vector<Case>& cases, const RunOptions& opt) {
  SuiteResult res;
  for (Case& c : cases)
    for (auto& l : c.inputs) ++l->users;
  std::map<std::pair<std::string, std::string>, Stats> by_group;
  std::map<std::string, Stats> by_class, by_cmd;
  Stats total;
  std::map<std::string, size_t> fail_kinds;
  const std::string out_path = fx.dir + "/case.out", err_path = fx.dir + "/case.err";
  size_t done = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (Case& c : cases) {
    if (!opt.filter.empty() && (c.cls + "/" + c.cmd + ": " + c.what + " " + shell_line(c.args)).find(opt.filter) ==
                                   std::string::npos) {
      for (auto& l : c.inputs) l->release();
      continue;
    }
    for (auto& l : c.inputs) l->ensure();
    if (c.post) c.post();  // snapshot phase of the postconditions
    ChildSpec spec;
    spec.argv = c.args;
    spec.argv.insert(spec.argv.begin(), fx.bin);
    spec.cwd = c.cwd.empty() ? fx.dir : c.cwd;
    spec.stdin_path = c.stdin_path;
    spec.stdout_path = c.stdout_path.empty() ? out_path : c.stdout_path;
    spec.stderr_path = err_path;
    spec.timeout_s = c.timeout_s;
    const int64_t bound = rss_bound_kb(c);
    spec.rss_kill_kb = std::max(2 * bound, bound + 256 * kMiB);
    spec.output_cap = uint64_t{512} << 20;
    Outcome o;
    o.r = run_child(spec);
    if (c.stdout_path.empty()) o.out = slurp(out_path, uint64_t{256} << 20, &o.out_bytes);
    o.err = slurp(err_path, 4 << 20);
    const Verdict v = judge(c, o);
    for (auto& l : c.inputs) l->release();
    add(by_group[{c.cls, c.cmd}], v, o.r.max_rss_kb);
    add(by_class[c.cls], v, o.r.max_rss_kb);
    add(by_cmd[c.cmd], v, o.r.max_rss_kb);
    add(total, v, o.r.max_rss_kb);
    ++res.n_cases;
    if (v.pass && std::getenv("CW_HOSTILE_VERBOSE") != nullptr)
      std::fprintf(stderr, "[pass %s] %s/%s: %s\n  $ chunkwise %s\n", v.kind.c_str(), c.cls.c_str(), c.cmd.c_str(),
                   c.what.c_str(), strip_dir(shell_line(c.args), fx.dir).substr(0, 300).c_str());
    if (!v.pass) {
      ++res.n_failed;
      ++fail_kinds[v.kind];
      std::string block = "[FAIL " + v.kind + "] " + c.cls + "/" + c.cmd + ": " + c.what + "\n  $ chunkwise " +
                          strip_dir(shell_line(c.args), fx.dir);
      if (c.stdin_path != "/dev/null") block += " < " + strip_dir(c.stdin_path, fx.dir);
      if (!c.stdout_path.empty()) block += " > " + strip_dir(c.stdout_path, fx.dir);
      char tail[160];
      std::snprintf(tail, sizeof tail, "\n  (%.2f s, peak RSS %lld MiB) ", o.r.wall_s,
                    static_cast<long long>(o.r.max_rss_kb / 1024));
      block += tail + strip_dir(v.detail, fx.dir) + "\n";
      res.failures += block;
      std::fputs(block.c_str(), stderr);  // as it happens: the whole set runs for minutes
    }
    if (++done % 200 == 0) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "hostile: %zu/%zu cases, %zu failed, %.0f s\n", done, cases.size(), res.n_failed, s);
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::ostringstream ss;
  ss << "hostile-input suite (" << (opt.fast ? "fast subset" : "whole set") << ", seed " << fx.seed
     << (fx.shared ? ", ../shared data used" : ", no ../shared data") << (fx.root ? ", as root" : "") << "): "
     << res.n_cases << " cases, " << res.n_failed << " failed, " << static_cast<int>(secs) << " s\n\n";
  const std::string head =
      "| class    | subcommand | cases |    ok | exit-2* | crash | hang |  rss | other | max RSS MiB |\n"
      "|----------|------------|-------|-------|---------|-------|------|------|-------|-------------|\n";
  ss << head;
  for (auto& [k, s] : by_group) ss << row(k.first, k.second, s);
  ss << "\nby class (peak-RSS bound: base + factor x input bytes):\n\n" << head;
  for (auto& [k, s] : by_class) ss << row(k, "(all)", s);
  ss << "\nby subcommand:\n\n" << head;
  for (auto& [k, s] : by_cmd) ss << row("(all)", k, s);
  ss << row("(all)", "(all)", total);
  ss << "\n* exit-2: refused with a one-line error (exit 2, or 1 for an output error) where the case allows it.\n";
  ss << "\nbounds:\n";
  for (const ClassInfo& ci : kClasses) {
    ss << "  " << ci.name << ": " << ci.rss_base_kb / 1024 << " MiB";
    if (ci.rss_per_input_byte > 0) ss << " + " << ci.rss_per_input_byte << " x input bytes";
    ss << " -- " << ci.description << "\n";
  }
  if (!fail_kinds.empty()) {
    ss << "\nfailures by kind:";
    for (auto& [k, n] : fail_kinds) ss << " " << k << "=" << n;
    ss << "\n";
  }
  res.summary = ss.str();
  if (!opt.summary_path.empty()) std::ofstream(opt.summary_path) << res.summary;
  if (!opt.failures_path.empty()) std::ofstream(opt.failures_path) << res.failures;
  return res;
}

}  // namespace cw::hostile
