#include "hostile/runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

namespace cw::hostile {
namespace {

using Clock = std::chrono::steady_clock;

// Resident set of `pid` in KiB from /proc/PID/statm (0 when unreadable).
int64_t current_rss_kb(int pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/statm", pid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  long long size = 0, resident = 0;
  if (std::sscanf(buf, "%lld %lld", &size, &resident) != 2) return 0;
  return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

struct Fds {
  int in = -1, out = -1, err = -1;
  void close_all() {
    for (int* fd : {&in, &out, &err})
      if (*fd >= 0) {
        ::close(*fd);
        *fd = -1;
      }
  }
};

// Opens the redirections in the parent so that errors are visible here (O_NONBLOCK for stdin would change
// the child's reads; stdin paths are never FIFOs in this suite).
bool open_fds(const ChildSpec& spec, Fds* fds, std::string* error) {
  fds->in = ::open(spec.stdin_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fds->in < 0) {
    *error = "cannot open stdin '" + spec.stdin_path + "': " + std::strerror(errno);
    return false;
  }
  auto open_out = [&](const std::string& p, int* fd) {
    *fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (*fd < 0) *error = "cannot open '" + p + "': " + std::strerror(errno);
    return *fd >= 0;
  };
  return open_out(spec.stdout_path, &fds->out) && open_out(spec.stderr_path, &fds->err);
}

int fork_exec(const ChildSpec& spec, Fds& fds) {
  // Everything the child needs is prepared before fork (only async-signal-safe calls after it).
  std::vector<char*> argv;
  for (const std::string& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::setpgid(0, 0);
  ::dup2(fds.in, 0);
  ::dup2(fds.out, 1);
  ::dup2(fds.err, 2);
  if (cwd != nullptr && ::chdir(cwd) != 0) ::_exit(126);
  struct rlimit core = {0, 0};
  ::setrlimit(RLIMIT_CORE, &core);
  // A safety net for the disk: no file written by a case may pass 2 GiB (SIGXFSZ, reported as a crash).
  struct rlimit fsize = {rlim_t{2} << 30, rlim_t{2} << 30};
  ::setrlimit(RLIMIT_FSIZE, &fsize);
  ::signal(SIGPIPE, SIG_DFL);
  ::execv(argv[0], argv.data());
  ::_exit(127);
}

void fill_status(int status, const struct rusage& ru, ChildResult* r) {
  r->max_rss_kb = ru.ru_maxrss;
  if (WIFEXITED(status)) {
    r->exited = true;
    r->exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r->signal = WTERMSIG(status);
  }
}

}  // namespace

ChildResult run_child(const ChildSpec& spec) {
  ChildResult r;
  Fds fds;
  if (!open_fds(spec, &fds, &r.setup_error)) {
    fds.close_all();
    return r;
  }
  const auto t0 = Clock::now();
  const pid_t pid = fork_exec(spec, fds);
  if (pid < 0) {
    r.setup_error = std::string("fork: ") + std::strerror(errno);
    fds.close_all();
    return r;
  }
  r.started = true;
  const int out_fd = fds.out;
  int status = 0;
  struct rusage ru {};
  bool killed = false;
  for (int iter = 0;; ++iter) {
    const pid_t w = ::wait4(pid, &status, killed ? 0 : WNOHANG, &ru);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (killed) continue;
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    bool kill_now = false;
    if (elapsed > spec.timeout_s) {
      r.timed_out = kill_now = true;
    } else if (spec.rss_kill_kb > 0 && current_rss_kb(pid) > spec.rss_kill_kb) {
      r.rss_killed = kill_now = true;
    } else {
      struct stat st {};
      if (::fstat(out_fd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > spec.output_cap)
        r.output_killed = kill_now = true;
    }
    if (kill_now) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      killed = true;
      continue;
    }
    // Poll fast at first (most cases take milliseconds), then every 4 ms.
    std::this_thread::sleep_for(std::chrono::microseconds(iter < 50 ? 200 : 4000));
  }
  r.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  fill_status(status, ru, &r);
  fds.close_all();
  return r;
}

int spawn_child(const ChildSpec& spec) {
  Fds fds;
  std::string error;
  if (!open_fds(spec, &fds, &error)) {
    fds.close_all();
    return -1;
  }
  const pid_t pid = fork_exec(spec, fds);
  fds.close_all();
  return pid;
}

ChildResult wait_child(int pid) {
  ChildResult r;
  r.started = true;
  int status = 0;
  struct rusage ru {};
  while (::wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
  }
  fill_status(status, ru, &r);
  return r;
}

std::string slurp(const std::string& path, uint64_t cap, uint64_t* total) {
  std::ifstream in(path, std::ios::binary);
  std::string s;
  if (total != nullptr) *total = 0;
  if (!in) return s;
  char buf[1 << 16];
  uint64_t n_total = 0;
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    const auto n = static_cast<uint64_t>(in.gcount());
    n_total += n;
    if (s.size() < cap) s.append(buf, static_cast<size_t>(std::min<uint64_t>(n, cap - s.size())));
  }
  if (total != nullptr) *total = n_total;
  return s;
}

std::string shell_line(const std::vector<std::string>& argv) {
  std::string line;
  for (const std::string& a : argv) {
    if (!line.empty()) line += ' ';
    bool plain = !a.empty() && a.size() < 200;
    for (unsigned char c : a)
      if (!(std::isalnum(c) || std::strchr("-_./=:,+@%", c) != nullptr)) plain = false;
    if (plain) {
      line += a;
    } else if (a.size() >= 200) {
      line += "<" + std::to_string(a.size()) + "-byte argument>";
    } else {
      line += '\'';
      for (char c : a) {
        if (c == '\'') {
          line += "'\\''";
        } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char hex[8];
          std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(c));
          line += hex;
        } else {
          line += c;
        }
      }
      line += '\'';
    }
  }
  return line;
}

}  // namespace cw::hostile
