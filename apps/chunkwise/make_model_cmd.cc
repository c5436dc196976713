// chunkwise make-model --arch A --shape S --type T --vocab VOCAB.gguf -o OUT.gguf [--seed N] [--threads N]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

#include "args.h"
#include "base/file_io.h"
#include "commands.h"
#include "model/make_model.h"

namespace cw::app {

int make_model_main(int argc, char** argv) {
  std::string arch, shape, type, vocab, output, pooling = "mean";
  int64_t seed = 1, threads = 0;
  bool quiet = false;
  ArgParser p("make-model", "--arch A --shape S --type T --vocab VOCAB.gguf -o OUT.gguf [--seed N] [--threads N]",
              "Writes a GGUF model with deterministic random weights at a real shape, with llama.cpp's tensor\n"
              "names, metadata keys and per-tensor quantization mix; all tokenizer.* metadata is copied from\n"
              "VOCAB.gguf, whose token count sets n_vocab. The same arguments give the same bytes.\n"
              "archs: " + model::supported_make_archs() + "\nshapes: " + model::supported_shapes() +
              "\ntypes: " + model::supported_file_types());
  p.option("--arch", &arch, "A", "architecture (required)");
  p.option("--shape", &shape, "S", "model size (required)");
  p.option("--type", &type, "T", "file type, llama.cpp's names, case-insensitive (required)");
  p.option("--vocab", &vocab, "VOCAB.gguf", "GGUF file to take the vocabulary from (required)");
  p.option("-o,--output", &output, "OUT.gguf", "file to write (required)");
  p.option("--seed", &seed, "N", "random seed (default 1)", 0, INT64_MAX);
  p.option("--pooling", &pooling, "mean|cls|last", "bert only: the pooling the model declares (default mean)");
  p.option("--threads", &threads, "N", "worker threads (default: all cores)", 0, 4096);
  p.flag("-q,--quiet", &quiet, "no progress on stderr");
  if (Status s = p.parse(argc, argv); !s.is_ok()) return report_error("make-model", s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }
  for (const auto& [value, name] : {std::pair{&arch, "--arch"}, std::pair{&shape, "--shape"}, std::pair{&type, "--type"}})
    if (value->empty()) return report_error("make-model", invalid_argument(std::string(name) + " is required (see --help)"));
  if (vocab.empty()) return report_error("make-model", invalid_argument("--vocab VOCAB.gguf is required (see --help)"));
  if (output.empty()) return report_error("make-model", invalid_argument("-o OUT.gguf is required (see --help)"));

  if (Status s = check_output_not_input(output, {vocab}); !s.is_ok()) return report_error("make-model", s);

  model::MakeModelOptions opts;
  opts.arch = arch;
  opts.shape = shape;
  opts.type = type;
  opts.seed = static_cast<uint64_t>(seed);
  if (pooling == "mean" || pooling == "cls" || pooling == "last") {
    opts.pooling = pooling == "mean" ? 1 : pooling == "cls" ? 2 : 3;
  } else {
    return report_error("make-model", invalid_argument("unknown --pooling '" + pooling + "' (supported: mean, cls, last)"));
  }
  if (p.given("--pooling") && arch != "bert")
    return report_error("make-model", invalid_argument("--pooling applies only to --arch bert"));
  opts.n_threads = static_cast<int>(threads);
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  auto last = t0;
  bool printed = false;
  if (!quiet) {
    opts.on_progress = [&](const model::MakeModelProgress& pr) {
      const auto now = Clock::now();
      const bool done = pr.tensors_done == pr.n_tensors;
      if (!done && now - last < std::chrono::milliseconds(250)) return;
      last = now;
      printed = true;
      std::fprintf(stderr, "\rmake-model: %zu/%zu tensors, %.1f/%.1f MB  ", pr.tensors_done, pr.n_tensors,
                   static_cast<double>(pr.bytes_done) / 1e6, static_cast<double>(pr.bytes_total) / 1e6);
      std::fflush(stderr);
    };
  }
  auto r = model::make_model(opts, vocab, output);
  if (printed) std::fputc('\n', stderr);
  if (!r.is_ok()) return report_error("make-model", r.status());
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("wrote %s: %s %s %s, %zu tensors, %.3f B params, n_vocab %lld, %.1f MB, %.1f s\n", output.c_str(),
              arch.c_str(), shape.c_str(), model::file_type_name(r->file_type), r->n_tensors,
              static_cast<double>(r->n_params) / 1e9, static_cast<long long>(r->n_vocab),
              static_cast<double>(r->file_bytes) / 1e6, secs);
  return kExitOk;
}

}  // namespace cw::app
