// Test support for the tests that run `chunkwise serve` as a process (serve_cli_test.cc,
// openai_client_test.cc): spawning it with stderr in a file, reading the port it printed, waiting for it
// to exit. Header-only; tests only.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/testing.h"

extern char** environ;

namespace cw::server::testing_serve {

struct Spawned {
  pid_t pid = -1;
  std::string err_path;
};

// `chunkwise serve ARGS...` with stdout to /dev/null and stderr to err_path; pid -1 when it cannot start.
inline Spawned spawn_serve(const std::vector<std::string>& args, const std::string& err_path) {
  std::vector<std::string> argv_s = {testing::chunkwise_binary(), "serve"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  Spawned sp;
  sp.err_path = err_path;
  if (posix_spawn(&sp.pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) sp.pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  return sp;
}

inline std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Waits for the process to exit (up to `seconds`); returns its wait status, or -1 on timeout (then kills it).
inline int wait_exit(pid_t pid, int seconds) {
  for (int i = 0; i < seconds * 100; ++i) {
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == pid) return st;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
  return -1;
}

// The port a spawned `serve --port 0` printed, or 0 after 20 s without one.
inline int wait_port(const std::string& err) {
  const std::string prefix = "chunkwise serve: listening on http://127.0.0.1:";
  for (int i = 0; i < 2000; ++i) {
    const std::string text = slurp(err);
    const size_t at = text.find(prefix);
    if (at != std::string::npos && text.find('\n', at) != std::string::npos) return std::atoi(text.c_str() + at + prefix.size());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return 0;
}

}  // namespace cw::server::testing_serve
