#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "args.h"
#include "commands.h"

namespace {

void print_usage(FILE* f) {
  std::fprintf(f,
               "chunkwise — long inputs, cheap and accurate, for local LLMs\n\n"
               "usage: chunkwise <command> [options]   (chunkwise <command> --help for details)\n\ncommands:\n");
  for (const auto& c : cw::app::kSubcommands) std::fprintf(f, "  %-10s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    return cw::app::kExitBadInput;
  }
  std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    print_usage(stdout);
    return cw::app::kExitOk;
  }
  if (cmd == "--version") {
    std::printf("chunkwise 0.1.0\n");
    return cw::app::kExitOk;
  }
  for (const auto& c : cw::app::kSubcommands) {
    if (cmd == c.name) {
      try {
        const int rc = c.main(argc, argv);
        // Whatever a command printed must have reached stdout (a full disk, a closed pipe): check once here
        // for every command rather than trusting each one to.
        if (rc == cw::app::kExitOk && (std::fflush(stdout) != 0 || std::ferror(stdout) != 0)) {
          const int e = errno;
          std::fprintf(stderr, "chunkwise %s: cannot write the output: %s\n", c.name, std::strerror(e != 0 ? e : EIO));
          return cw::app::kExitFailure;
        }
        return rc;
      } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "chunkwise %s: out of memory\n", c.name);
        return cw::app::kExitFailure;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "chunkwise %s: internal error: %s\n", c.name, e.what());
        return cw::app::kExitFailure;
      }
    }
  }
  std::fprintf(stderr, "chunkwise: unknown command '%s'\n\n", cmd.c_str());
  print_usage(stderr);
  return cw::app::kExitBadInput;
}
