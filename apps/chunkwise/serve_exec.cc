// `chunkwise serve ...` replaces this process with chunkwise-serve (same directory as this executable) and
// the same arguments: the pid, the signals, stdin/stdout/stderr and the exit status are the server's.
#include <limits.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"

namespace cw::app {

int serve_exec_main(int argc, char** argv) {
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) {
    std::fprintf(stderr, "chunkwise serve: cannot find this program's directory (/proc/self/exe): %s\n",
                 std::strerror(errno));
    return kExitFailure;
  }
  std::string path(self, static_cast<size_t>(n));
  path = path.substr(0, path.rfind('/') + 1) + "chunkwise-serve";
  std::vector<char*> args(argv, argv + argc);  // argv[1] stays "serve": chunkwise-serve accepts it
  args[0] = path.data();
  args.push_back(nullptr);
  execv(path.c_str(), args.data());
  std::fprintf(stderr, "chunkwise serve: cannot run the server program '%s': %s (it is built and installed next to "
               "chunkwise)\n", path.c_str(), std::strerror(errno));
  return kExitFailure;
}

}  // namespace cw::app
