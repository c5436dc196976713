// chunkwise eval <what> [options]: the evaluation group. Each evaluation is one file + one line in
// eval_commands.h.
#include <cstdio>
#include <string>

#include "args.h"
#include "commands.h"
#include "eval_commands.h"

namespace cw::app {
namespace {

void print_eval_usage(FILE* f) {
  std::fprintf(f, "usage: chunkwise eval <evaluation> [options]   (chunkwise eval <evaluation> --help for details)\n\n"
                  "evaluations:\n");
  for (const EvalCommand& c : kEvalCommands) std::fprintf(f, "  %-10s %s\n", c.name, c.summary);
}

}  // namespace

int eval_main(int argc, char** argv) {
  std::string names;
  for (const EvalCommand& c : kEvalCommands) names += std::string(names.empty() ? "" : ", ") + c.name;
  if (argc < 3)
    return report_error("eval", invalid_argument("no evaluation given (evaluations: " + names + "; chunkwise eval --help)"));
  const std::string what = argv[2];
  if (what == "-h" || what == "--help" || what == "help") {
    print_eval_usage(stdout);
    return kExitOk;
  }
  for (const EvalCommand& c : kEvalCommands) {
    if (what == c.name) return c.main(argc, argv);
  }
  return report_error("eval", invalid_argument("unknown evaluation '" + printable(what, false) + "' (evaluations: " +
                                                   names + ")"));
}

}  // namespace cw::app
