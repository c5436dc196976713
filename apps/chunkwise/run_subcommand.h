// Runs one subcommand the way every chunkwise program does: exceptions become one-line errors, and a
// command that succeeded must have got its output out (a full disk, a closed pipe). Shared by `chunkwise`
// (main.cc) and `chunkwise-serve` (serve_main.cc).
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>

#include "args.h"
#include "commands.h"

namespace cw::app {

inline int run_subcommand(const Subcommand& c, int argc, char** argv) {
  try {
    const int rc = c.main(argc, argv);
    if (rc == kExitOk && (std::fflush(stdout) != 0 || std::ferror(stdout) != 0)) {
      const int e = errno;
      std::fprintf(stderr, "chunkwise %s: cannot write the output: %s\n", c.name, std::strerror(e != 0 ? e : EIO));
      return kExitFailure;
    }
    return rc;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "chunkwise %s: out of memory\n", c.name);
    return kExitFailure;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chunkwise %s: internal error: %s\n", c.name, e.what());
    return kExitFailure;
  }
}

}  // namespace cw::app
