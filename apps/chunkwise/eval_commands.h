// The `chunkwise eval <what>` group: each evaluation lives in its own file (eval_<what>_cmd.cc) and is one
// line of kEvalCommands. eval_cmd.cc dispatches; argv[1] is "eval", argv[2] the evaluation's name.
#pragma once

namespace cw::app {

struct EvalCommand {
  const char* name;
  const char* summary;
  int (*main)(int argc, char** argv);  // parse from argv[3] on
};

int eval_chunking_main(int argc, char** argv);
int eval_needle_main(int argc, char** argv);
int eval_ask_main(int argc, char** argv);

inline constexpr EvalCommand kEvalCommands[] = {
    {"chunking", "Chroma's chunking evaluation: recall, precision, Precision-Omega, IoU of a chunker + retriever",
     eval_chunking_main},
    {"needle", "needle-in-a-haystack accuracy grid (length x depth) per KV policy, on the generator's recipes",
     eval_needle_main},
    {"ask", "answers on real documents: share inside a reference passage, beside a BM25-sentence baseline",
     eval_ask_main},
};

}  // namespace cw::app
