// Runs one child process for the hostile-input suite: fork/exec (no shell), stdin/stdout/stderr from/to
// files, a wall-clock timeout, a resident-memory watchdog, and the peak RSS from wait4()'s rusage.
//
// The watchdog polls /proc/PID/statm while the child runs and SIGKILLs it (whole process group) when its
// RSS passes `rss_kill_kb` or its stdout file passes `output_cap` bytes, so that a runaway case cannot take
// the machine down; such a kill is reported, never mistaken for a crash of the program.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cw::hostile {

struct ChildSpec {
  std::vector<std::string> argv;       // argv[0] is the program path
  std::string cwd;                     // working directory ("" = inherit)
  std::string stdin_path = "/dev/null";
  std::string stdout_path;             // created/truncated (a device is opened as is)
  std::string stderr_path;
  double timeout_s = 10;
  int64_t rss_kill_kb = 0;             // 0 = no watchdog on memory
  uint64_t output_cap = uint64_t{1} << 30;
};

struct ChildResult {
  bool started = false;      // fork/exec set up (false: could not open a redirection; see `setup_error`)
  std::string setup_error;
  bool exited = false;       // normal exit: exit_code valid
  int exit_code = -1;
  int signal = 0;            // terminating signal when !exited
  bool timed_out = false;    // killed by us: wall-clock timeout
  bool rss_killed = false;   // killed by us: RSS over rss_kill_kb
  bool output_killed = false;  // killed by us: stdout over output_cap
  double wall_s = 0;
  int64_t max_rss_kb = 0;    // ru_maxrss of the child
};

ChildResult run_child(const ChildSpec& spec);

// Starts a child like run_child but returns at once (pid > 0), for tests that kill it themselves.
// stdout/stderr go to the given files. Returns -1 on failure.
int spawn_child(const ChildSpec& spec);
// Waits for a child started by spawn_child; fills exit status and rusage.
ChildResult wait_child(int pid);

// Reads up to `cap` bytes of a file ("" when absent); `total` gets its full size when non-null.
std::string slurp(const std::string& path, uint64_t cap = uint64_t{1} << 62, uint64_t* total = nullptr);

// `argv` as one line a POSIX shell would accept (words quoted when needed).
std::string shell_line(const std::vector<std::string>& argv);

}  // namespace cw::hostile
