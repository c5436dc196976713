// The hostile-input suite, fast subset (every build), and the kill tests of output atomicity: `chunk -o`
// and `batch -o` killed with SIGKILL mid-run, a failed `chunk` run, and `chunk a.md -o a.md`, must all
// leave the existing output (or input) exactly as it was.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "hostile/suite.h"
#include "support/testing.h"

namespace cw::hostile {
namespace {

namespace fs = std::filesystem;

std::string build_dir_file(const std::string& name) {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return (ec ? fs::path(".") : exe.parent_path()) / name;
}

TEST(HostileInput, FastSubset) {
  Fixtures fx;
  fx.full = false;
  make_fixtures(&fx);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  std::vector<Case> all = generate_all(fx);
  std::vector<Case> cases = fast_subset(std::move(all));
  for (Case& c : cases) c.timeout_s = std::min(c.timeout_s, 8.0);
  RunOptions opt;
  opt.fast = true;
  opt.summary_path = build_dir_file("hostile-fast-summary.txt");
  opt.failures_path = build_dir_file("hostile-fast-failures.txt");
  if (const char* f = std::getenv("CW_HOSTILE_FILTER")) opt.filter = f;
  const SuiteResult r = run_suite(fx, cases, opt);
  std::printf("%s\n", r.summary.c_str());
  if (r.n_failed > 0) std::printf("failing cases:\n%s\n", r.failures.c_str());
  remove_fixtures(fx);
  EXPECT_GT(r.n_cases, 50u);
  EXPECT_EQ(r.n_failed, 0u) << "see the failing cases above (also in " << opt.failures_path << ")";
}

// ---- output atomicity -------------------------------------------------------------------------------------

struct KillFixture {
  Fixtures fx;
  std::string dir;
  void SetUp() {
    make_fixtures(&fx);
    dir = fx.path("kill");
    fs::create_directories(dir);
  }
  ~KillFixture() { remove_fixtures(fx); }
};

std::set<std::string> listing(const std::string& dir) {
  std::set<std::string> s;
  for (const auto& e : fs::directory_iterator(dir)) s.insert(e.path().filename().string());
  return s;
}

struct Killed {
  bool was_running = false;  // still running when killed
  double after_s = 0;
  std::string why;           // what triggered the kill
};

// Starts `args`, waits until it has visibly started writing (the output changed, or a new file appeared
// next to it) or `max_wait_s` passed, then SIGKILLs it.
Killed start_and_kill(const Fixtures& fx, const std::vector<std::string>& args, const std::string& out,
                      double min_wait_s, double max_wait_s) {
  const auto before_files = listing(fs::path(out).parent_path());
  const auto before_size = fs::file_size(out);
  const auto before_mtime = fs::last_write_time(out);
  ChildSpec s;
  s.argv = args;
  s.argv.insert(s.argv.begin(), fx.bin);
  s.stdout_path = fx.dir + "/kill.out";
  s.stderr_path = fx.dir + "/kill.err";
  const int pid = spawn_child(s);
  Killed k;
  if (pid <= 0) {
    k.why = "spawn failed";
    return k;
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      k.why = "finished by itself after " + std::to_string(t) + " s";
      return k;
    }
    std::error_code ec;
    const bool changed = fs::file_size(out, ec) != before_size || fs::last_write_time(out, ec) != before_mtime;
    const bool new_file = listing(fs::path(out).parent_path()) != before_files;
    if (t >= min_wait_s && (changed || new_file || t >= max_wait_s)) {
      k.why = changed ? "output changed" : new_file ? "a new file appeared next to the output" : "timer";
      k.after_s = t;
      ::kill(pid, SIGKILL);
      const ChildResult r = wait_child(pid);
      k.was_running = !r.exited && r.signal == SIGKILL;
      return k;
    }
  }
}

const char kPrevious[] = "{\"previous\": \"output of an earlier run\"}\n";

TEST(HostileOutput, ChunkKilledMidRunKeepsPreviousOutput) {
  KillFixture kf;
  kf.SetUp();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  // 48 documents of 2 MiB + a bit: long enough that the run is killed while it writes.
  std::string story;
  while (story.size() < (2u << 20)) story += slurp(kf.fx.text);
  const std::string doc = kf.fx.write("big.txt", story);
  std::vector<std::string> args = {"chunk", "--size", "32", "--threads", "1", "-o", kf.dir + "/out.jsonl"};
  for (int i = 0; i < 48; ++i) args.push_back(doc);
  const std::string out = kf.dir + "/out.jsonl";
  for (double wait : {0.05, 0.4}) {
    std::ofstream(out) << kPrevious;
    const Killed k = start_and_kill(kf.fx, args, out, wait, 3.0);
    ASSERT_TRUE(k.was_running) << "chunk was not killed mid-run (" << k.why << "); make the input larger";
    EXPECT_EQ(slurp(out), kPrevious) << "chunk -o: SIGKILL after " << k.after_s << " s (" << k.why
                                     << ") left the previous output truncated or half-written ("
                                     << fs::file_size(out) << " bytes)";
  }
}

TEST(HostileOutput, BatchKilledMidRunKeepsPreviousOutput) {
  KillFixture kf;
  kf.SetUp();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  std::string jsonl;
  for (int i = 0; i < 400; ++i)
    jsonl += "{\"id\": " + std::to_string(i) + ", \"prompt\": \"Once upon a time " + std::to_string(i) +
             "\", \"n_predict\": 200}\n";
  const std::string prompts = kf.fx.write("kill-prompts.jsonl", jsonl);
  const std::string out = kf.dir + "/out.jsonl";
  const std::vector<std::string> args = {"batch", "-m", kf.fx.model, "-f", prompts, "-o", out, "--temp", "0",
                                         "--parallel", "4", "--no-progress"};
  for (double wait : {0.05, 0.5}) {
    std::ofstream(out) << kPrevious;
    const Killed k = start_and_kill(kf.fx, args, out, wait, 4.0);
    ASSERT_TRUE(k.was_running) << "batch was not killed mid-run (" << k.why << "); make the input larger";
    EXPECT_EQ(slurp(out), kPrevious) << "batch -o: SIGKILL after " << k.after_s << " s (" << k.why
                                     << ") left the previous output truncated or half-written ("
                                     << fs::file_size(out) << " bytes)";
  }
}

TEST(HostileOutput, FailedChunkRunKeepsPreviousOutput) {
  KillFixture kf;
  kf.SetUp();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  const std::string out = kf.dir + "/out.jsonl";
  const std::string good = kf.fx.text;
  const std::string emoji = kf.fx.write("emoji.txt", "Once \xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa9 end");
  // Later inputs that fail: up front (a directory, a missing file) or while chunking (a unit larger than
  // --size; a special file). Whatever the product decides for each, a failed run must leave `out` alone.
  const std::vector<std::vector<std::string>> runs = {
      {"chunk", good, kf.fx.dir_input, "-o", out},
      {"chunk", good, kf.fx.missing, "-o", out},
      {"chunk", "-m", "token", "--tokenizer", kf.fx.vocab, "--size", "1", good, emoji, "-o", out},
      {"chunk", good, "/dev/zero", "-o", out},
  };
  int n_failed_runs = 0;
  for (const auto& args : runs) {
    std::ofstream(out) << kPrevious;
    const auto before = listing(kf.dir);
    ChildSpec s;
    s.argv = args;
    s.argv.insert(s.argv.begin(), kf.fx.bin);
    s.stdout_path = kf.fx.dir + "/failed.out";
    s.stderr_path = kf.fx.dir + "/failed.err";
    s.timeout_s = 10;
    const ChildResult r = run_child(s);
    const std::string line = shell_line(args);
    ASSERT_TRUE(r.exited) << line << ": killed or crashed";
    if (r.exit_code == 0) continue;  // accepted: then `out` legitimately holds the new result
    ++n_failed_runs;
    EXPECT_EQ(slurp(out), kPrevious) << line << " (exit " << r.exit_code << ") damaged the existing output";
    EXPECT_EQ(listing(kf.dir), before) << line << " left files behind";
  }
  EXPECT_GE(n_failed_runs, 2);
}

TEST(HostileOutput, ChunkRefusesOutputEqualToInput) {
  KillFixture kf;
  kf.SetUp();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  const std::string a = kf.dir + "/a.md";
  fs::copy_file(kf.fx.md, a);
  const std::string before = slurp(a);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"chunk", a, "-o", a}, std::vector<std::string>{"chunk", "./a.md", "-o", "a.md"}}) {
    ChildSpec s;
    s.argv = args;
    s.argv.insert(s.argv.begin(), kf.fx.bin);
    s.cwd = kf.dir;
    s.stdout_path = kf.fx.dir + "/same.out";
    s.stderr_path = kf.fx.dir + "/same.err";
    s.timeout_s = 10;
    const ChildResult r = run_child(s);
    const std::string err = slurp(s.stderr_path);
    EXPECT_TRUE(r.exited && r.exit_code == 2) << shell_line(args) << ": expected exit 2, got "
                                              << (r.exited ? "exit " + std::to_string(r.exit_code) : "a signal");
    Outcome o;
    o.err = err;
    EXPECT_EQ(one_line_error(o), "") << shell_line(args) << ": " << err;
    EXPECT_EQ(slurp(a), before) << shell_line(args) << " changed the input (now " << fs::file_size(a) << " bytes)";
  }
}

}  // namespace
}  // namespace cw::hostile
