// chunkwise-serve: the OpenAI-compatible server as its own program (`chunkwise serve` runs it; see
// serve_exec.cc). `chunkwise-serve ARGS` and `chunkwise-serve serve ARGS` are the same command.
#include <cstring>
#include <vector>

#include "commands.h"
#include "run_subcommand.h"

int main(int argc, char** argv) {
  static char serve[] = "serve";
  std::vector<char*> args(argv, argv + argc);
  if (argc < 2 || std::strcmp(argv[1], "serve") != 0) args.insert(args.begin() + 1, serve);
  const cw::app::Subcommand cmd{"serve", "", cw::app::serve_main};
  return cw::app::run_subcommand(cmd, static_cast<int>(args.size()), args.data());
}
