// chunkwise bench -m MODEL [-p 128] [-n 32] [-t THREADS] [-r REPS] [--kv f16|f32] [--json]
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "args.h"
#include "base/json.h"
#include "commands.h"
#include "eval/bench.h"
#include "kernels/cpu/dispatch.h"
#include "model/model.h"

namespace cw::app {

int bench_main(int argc, char** argv) {
  std::string model_path, kv = "f16";
  int64_t n_prompt = 128, n_gen = 32, reps = 5;
  int64_t threads = std::max(1u, std::thread::hardware_concurrency());
  bool json = false;
  ArgParser p("bench", "-m MODEL [-p N] [-n N] [-t THREADS] [-r REPS] [--kv f16|f32] [--json]",
              "Measures prefill (pp: N prompt tokens from an empty cache) and decode (tg: N single-token steps\n"
              "from an empty cache) throughput like llama-bench, the median of REPS repetitions after one\n"
              "warm-up, plus the decode memory bandwidth (weight bytes read per token × tok/s) and peak RSS.");
  p.option("-m,--model", &model_path, "MODEL", "GGUF model file");
  p.option("-p,--n-prompt", &n_prompt, "N", "prompt tokens for the prefill test (default 128, 0 = skip)", 0, 1 << 20);
  p.option("-n,--n-gen", &n_gen, "N", "tokens for the decode test (default 32, 0 = skip)", 0, 1 << 20);
  p.option("-t,--threads", &threads, "N", "threads (default: all cores)", 1, 1024);
  p.option("-r,--reps", &reps, "N", "repetitions (default 5)", 1, 1000);
  p.option("--kv", &kv, "TYPE", "KV cache precision: f16 (default) or f32");
  p.flag("--json", &json, "print one JSON object");
  if (Status s = p.parse(argc, argv); !s.is_ok()) return report_error("bench", s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }
  if (model_path.empty()) return report_error("bench", invalid_argument("-m MODEL is required (see --help)"));
  if (kv != "f16" && kv != "f32") return report_error("bench", invalid_argument("--kv must be f16 or f32, got '" + kv + "'"));
  auto model = model::Model::load(model_path);
  if (!model.is_ok()) return report_error("bench", model.status());

  eval::BenchOptions opt;
  opt.n_prompt = n_prompt;
  opt.n_gen = n_gen;
  opt.n_threads = static_cast<int>(threads);
  opt.reps = static_cast<int>(reps);
  opt.kv_type = kv == "f16" ? model::KvType::kF16 : model::KvType::kF32;
  if (isatty(STDERR_FILENO))
    opt.progress = [](const char* phase, int rep, int total) {
      std::fprintf(stderr, "\r  %s %d/%d   ", phase, rep, total);
      std::fflush(stderr);
    };
  auto r = eval::bench(**model, opt);
  if (opt.progress) std::fprintf(stderr, "\r%40s\r", "");
  if (!r.is_ok()) return report_error("bench", r.status());
  const char* isa = kernels::isa_name(kernels::active_isa());
  if (json) {
    JsonWriter w;
    w.begin_object().key("model").value(model_path).key("isa").value(isa).key("threads").value(threads);
    w.key("n_prompt").value(n_prompt).key("n_gen").value(n_gen).key("reps").value(reps).key("kv").value(kv);
    w.key("prefill_tok_s").value(r->prefill_tok_s).key("decode_tok_s").value(r->decode_tok_s);
    w.key("decode_gb_s").value(r->decode_gb_s).key("weight_bytes_per_token").value(r->weight_bytes_per_token);
    w.key("model_bytes").value(r->model_bytes).key("kv_bytes").value(r->kv_bytes);
    w.key("peak_rss_bytes").value(r->peak_rss_bytes);
    w.key("prefill_samples").begin_array();
    for (double v : r->prefill_samples) w.value(v);
    w.end_array().key("decode_samples").begin_array();
    for (double v : r->decode_samples) w.value(v);
    w.end_array().end_object();
    std::printf("%s\n", w.str().c_str());
    return kExitOk;
  }
  std::printf("| model | isa | threads | test | tok/s (median of %lld) | GB/s |\n|---|---|---|---|---|---|\n",
              static_cast<long long>(reps));
  if (n_prompt > 0)
    std::printf("| %s | %s | %lld | pp%lld | %.2f | |\n", model_path.c_str(), isa, static_cast<long long>(threads),
                static_cast<long long>(n_prompt), r->prefill_tok_s);
  if (n_gen > 0)
    std::printf("| %s | %s | %lld | tg%lld | %.2f | %.1f |\n", model_path.c_str(), isa, static_cast<long long>(threads),
                static_cast<long long>(n_gen), r->decode_tok_s, r->decode_gb_s);
  std::printf("\nweights %.1f MB (%.1f MB read per token), KV %.1f MB, peak RSS %.1f MB\n", r->model_bytes / 1e6,
              r->weight_bytes_per_token / 1e6, r->kv_bytes / 1e6, r->peak_rss_bytes / 1e6);
  return kExitOk;
}

}  // namespace cw::app
