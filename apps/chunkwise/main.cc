#include <cstdio>
#include <string>

#include "args.h"
#include "commands.h"
#include "run_subcommand.h"

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
      return cw::app::run_subcommand(c, argc, argv);
    }
  }
  std::fprintf(stderr, "chunkwise: unknown command '%s'\n\n", cmd.c_str());
  print_usage(stderr);
  return cw::app::kExitBadInput;
}
