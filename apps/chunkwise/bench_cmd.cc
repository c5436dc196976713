// chunkwise bench -m MODEL [-p 128] [-n 32] [-t THREADS] [-r REPS] [--kv f16|f32] [--json]
// chunkwise bench -m MODEL --depth N[,N...] [-n 32] [-t THREADS] [-r REPS] [--kv-policy SPEC] [--json]
// chunkwise bench -m MODEL --scenario mixed|prefix [--schedule chunked|prefill-first] [scenario options]
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <thread>

#include "args.h"
#include "base/json.h"
#include "commands.h"
#include "eval/bench.h"
#include "eval/scenario.h"
#include "kv/policy.h"
#include "kernels/cpu/dispatch.h"
#include "model/model.h"
#include "threads_flag.h"

namespace cw::app {

namespace {

struct ScenarioArgs {
  std::string scenario, schedule;
  int64_t batch_tokens = 128, block_size = 16, streams = 4, stream_tokens = 48, long_prompts = 2,
          long_tokens = 1024, prefix = 4096, suffix = 64;
};

// `bench --scenario`: the engine scenarios of eval/scenario.h, printed as a table or one JSON object.
int run_scenario(const model::Model& m, const std::string& model_path, const ScenarioArgs& a, int threads, int reps,
                 model::KvType kv_type, const std::string& kv, bool json) {
  runtime::EngineOptions eo;
  eo.n_threads = threads;
  eo.kv_type = kv_type;
  eo.batch_tokens = a.batch_tokens;
  eo.block_size = static_cast<int32_t>(a.block_size);
  JsonWriter w;
  w.begin_object().key("model").value(model_path).key("scenario").value(a.scenario).key("threads").value(int64_t{threads});
  w.key("kv").value(kv).key("batch_tokens").value(a.batch_tokens).key("block_size").value(a.block_size);
  if (a.scenario == "prefix") {
    eval::PrefixScenarioOptions o;
    o.prefix = a.prefix;
    o.suffix = a.suffix;
    o.reps = reps;
    o.engine = eo;
    auto r = eval::run_prefix_scenario(m, o);
    if (!r.is_ok()) return report_error("bench", r.status());
    if (json) {
      w.key("prefix_tokens").value(a.prefix).key("suffix_tokens").value(a.suffix);
      w.key("cold_ttft_ms").value(r->cold_ttft_ms).key("warm_ttft_ms").value(r->warm_ttft_ms);
      w.key("warm_samples_ms").begin_array();
      for (double v : r->warm_samples_ms) w.value(v);
      w.end_array().key("warm_cached_tokens").value(r->warm_cached_tokens);
      w.key("warm_computed_tokens").value(r->warm_computed_tokens).key("speedup").value(r->speedup).end_object();
      std::printf("%s\n", w.str().c_str());
      return kExitOk;
    }
    std::printf("| scenario | prompt | cached tokens | computed tokens | TTFT ms |\n|---|---|---|---|---|\n");
    std::printf("| prefix cold | %lld + %lld | 0 | %lld | %.1f |\n", static_cast<long long>(a.prefix),
                static_cast<long long>(a.suffix), static_cast<long long>(a.prefix + a.suffix), r->cold_ttft_ms);
    std::printf("| prefix warm (median of %d) | %lld + %lld | %lld | %lld | %.1f |\n", reps,
                static_cast<long long>(a.prefix), static_cast<long long>(a.suffix),
                static_cast<long long>(r->warm_cached_tokens), static_cast<long long>(r->warm_computed_tokens),
                r->warm_ttft_ms);
    std::printf("\nwarm TTFT %.1fx faster than cold\n", r->speedup);
    return kExitOk;
  }
  std::vector<std::string> schedules = {"chunked", "prefill-first"};
  if (!a.schedule.empty()) schedules = {a.schedule};
  std::vector<eval::MixedScenarioResult> results;
  for (const std::string& name : schedules) {
    eval::MixedScenarioOptions o;
    o.n_streams = a.streams;
    o.stream_tokens = a.stream_tokens;
    o.n_long = a.long_prompts;
    o.long_prompt = a.long_tokens;
    o.engine = eo;
    o.engine.schedule = *runtime::schedule_from_name(name);
    auto r = eval::run_mixed_scenario(m, o);
    if (!r.is_ok()) return report_error("bench", r.status());
    results.push_back(*r);
  }
  if (json) {
    w.key("streams").value(a.streams).key("stream_tokens").value(a.stream_tokens);
    w.key("long_prompts").value(a.long_prompts).key("long_prompt_tokens").value(a.long_tokens);
    w.key("runs").begin_array();
    for (size_t i = 0; i < results.size(); ++i) {
      const auto& r = results[i];
      w.begin_object().key("schedule").value(schedules[i]).key("itl_p50_ms").value(r.itl_p50_ms);
      w.key("itl_p99_ms").value(r.itl_p99_ms).key("itl_max_ms").value(r.itl_max_ms);
      w.key("itl_samples").value(r.itl_samples).key("long_ttft_ms").value(r.long_ttft_ms);
      w.key("total_tokens").value(r.total_tokens).key("wall_s").value(r.wall_s);
      w.key("total_tok_s").value(r.total_tok_s).key("steps").value(r.steps).end_object();
    }
    w.end_array().end_object();
    std::printf("%s\n", w.str().c_str());
    return kExitOk;
  }
  std::printf("| schedule | ITL p50 ms | ITL p99 ms | ITL max ms | long-prompt TTFT ms | total tok/s | wall s | steps |\n"
              "|---|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    std::printf("| %s | %.1f | %.1f | %.1f | %.0f | %.2f | %.1f | %lld |\n", schedules[i].c_str(), r.itl_p50_ms,
                r.itl_p99_ms, r.itl_max_ms, r.long_ttft_ms, r.total_tok_s, r.wall_s, static_cast<long long>(r.steps));
  }
  std::printf("\n%lld streams x %lld tokens; %lld prompts of %lld tokens arrive after 4 stream tokens; batch tokens %lld\n",
              static_cast<long long>(a.streams), static_cast<long long>(a.stream_tokens),
              static_cast<long long>(a.long_prompts), static_cast<long long>(a.long_tokens),
              static_cast<long long>(a.batch_tokens));
  if (results.size() == 2 && results[0].itl_p99_ms > 0 && results[1].total_tok_s > 0)
    std::printf("p99 ITL: prefill-first / chunked = %.1fx; throughput chunked / prefill-first = %.3f\n",
                results[1].itl_p99_ms / results[0].itl_p99_ms, results[0].total_tok_s / results[1].total_tok_s);
  return kExitOk;
}

// "N[,N...]" -> depths (each >= 1, at most eval::kMaxDepths).
Result<std::vector<int64_t>> parse_depths(const std::string& text) {
  std::vector<int64_t> out;
  size_t at = 0;
  while (true) {
    const size_t end = std::min(text.find(',', at), text.size());
    const std::string item = text.substr(at, end - at);
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || v < 1 || v > (int64_t{1} << 30))
      return invalid_argument("--depth takes a comma-separated list of token counts in [1, 1073741824], got '" +
                              text + "'");
    out.push_back(v);
    if (end == text.size()) break;
    at = end + 1;
  }
  if (out.size() > eval::kMaxDepths)
    return invalid_argument("--depth takes at most " + std::to_string(eval::kMaxDepths) + " depths, got " +
                            std::to_string(out.size()));
  return out;
}

// `bench --depth`: decode rate after each depth of context, as a table or a JSON array.
int run_depths(const model::Model& m, const std::string& model_path, const eval::BenchOptions& opt,
               const std::string& kv, bool json) {
  auto r = eval::bench_depths(m, opt);
  if (opt.progress) std::fprintf(stderr, "\r%60s\r", "");
  if (!r.is_ok()) return report_error("bench", r.status());
  const std::string policy = opt.kv_policy.empty() ? "full" : opt.kv_policy;
  if (json) {
    JsonWriter w;
    w.begin_array();
    for (const eval::DepthResult& d : *r) {
      w.begin_object().key("model").value(model_path).key("kv_policy").value(policy).key("kv").value(kv);
      w.key("threads").value(int64_t{opt.n_threads}).key("depth").value(d.depth).key("n_gen").value(opt.n_gen);
      w.key("reps").value(int64_t{opt.reps}).key("decode_tok_s").value(d.decode_tok_s);
      w.key("ms_per_token").value(d.ms_per_token).key("prefill_s").value(d.prefill_s);
      w.key("kv_bytes").value(d.kv_bytes).key("peak_rss_bytes").value(d.peak_rss_bytes);
      w.key("decode_samples").begin_array();
      for (double v : d.decode_samples) w.value(v);
      w.end_array().end_object();
    }
    w.end_array();
    std::printf("%s\n", w.str().c_str());
    return kExitOk;
  }
  std::printf("| kv policy | depth | decode tok/s (median of %d) | ms/token | KV MB | peak RSS MB | context build s |\n"
              "|---|---|---|---|---|---|---|\n",
              opt.reps);
  for (const eval::DepthResult& d : *r)
    std::printf("| %s | %lld | %.2f | %.3f | %.1f | %.1f | %.1f |\n", policy.c_str(), static_cast<long long>(d.depth),
                d.decode_tok_s, d.ms_per_token, d.kv_bytes / 1e6, d.peak_rss_bytes / 1e6, d.prefill_s);
  std::printf("\n%s, %s, %d threads, %lld decode steps per repetition\n", model_path.c_str(),
              kernels::isa_name(kernels::active_isa()), opt.n_threads, static_cast<long long>(opt.n_gen));
  return kExitOk;
}

}  // namespace

int bench_main(int argc, char** argv) {
  std::string model_path, kv = "f16", kv_policy, depth_list;
  int64_t n_prompt = 128, n_gen = 32, reps = 5;
  int64_t threads = std::max(1u, std::thread::hardware_concurrency());
  bool json = false, past_ctx = false;
  ArgParser p("bench", "-m MODEL [-p N] [-n N] [-t THREADS] [-r REPS] [--kv f16|f32] [--json]\n"
              "       chunkwise bench -m MODEL --scenario mixed|prefix [--schedule chunked|prefill-first] [...] [--json]",
              "Measures prefill (pp: N prompt tokens from an empty cache) and decode (tg: N single-token steps\n"
              "from an empty cache) throughput like llama-bench, the median of REPS repetitions after one\n"
              "warm-up, plus the decode memory bandwidth (weight bytes read per token × tok/s) and peak RSS.");
  p.option("-m,--model", &model_path, "MODEL", "GGUF model file");
  p.option("-p,--n-prompt", &n_prompt, "N",
           "prompt tokens for the prefill test (default 128, 0 = skip; at most the training context)", 0, 1 << 20);
  p.option("-n,--n-gen", &n_gen, "N", "tokens for the decode test (default 32, 0 = skip; at most the training context)",
           0, 1 << 20);
  p.option("-t,--threads", &threads, "N", "threads (default: all cores; more are capped at the cores)", 1, 1024);
  p.option("-r,--reps", &reps, "N", "repetitions (default 5)", 1, 1000);
  p.option("--kv", &kv, "TYPE", "KV cache precision: f16 (default) or f32");
  p.option("--kv-policy", &kv_policy, "SPEC",
           "KV policy of the pp/tg tests (supported: " + kv::supported_kv_policies() +
               "; default full), e.g.\n"
               "sink_window:sinks=4,window=240: the prefill is one chunk on top of the window's slots");
  p.option("--depth", &depth_list, "N[,N...]",
           "decode rate after N tokens of context instead of pp/tg (up to 16 depths; -n steps timed per\n"
           "depth, median of -r; full refuses depth + n beyond the training context, a window policy streams)");
  p.flag("--past-training-context", &past_ctx,
         "--depth with full attention: run depths beyond the training context anyway (speed and memory only)");
  p.flag("--json", &json, "print one JSON object (with --depth: an array, one object per depth)");
  ScenarioArgs sc;
  p.option("--scenario", &sc.scenario, "NAME",
           "engine scenario instead of pp/tg: mixed (decodes + arriving long prompts; ITL p50/p99,\n"
           "throughput) or prefix (TTFT of shared prefix + suffix, cold vs warm); -r = warm repetitions");
  p.option("--schedule", &sc.schedule, "NAME", "mixed: chunked or prefill-first (default: both, compared)");
  p.option("--batch-tokens", &sc.batch_tokens, "N", "scenario: token budget per step (default 128)", 1, 1 << 20);
  p.option("--block-size", &sc.block_size, "N", "scenario: tokens per KV block (default 16)", 1, 4096);
  p.option("--streams", &sc.streams, "N", "mixed: decoding streams (default 4)", 1, 4096);
  p.option("--stream-tokens", &sc.stream_tokens, "N", "mixed: tokens each stream generates (default 48)", 6, 1 << 20);
  p.option("--long-prompts", &sc.long_prompts, "N", "mixed: long prompts arriving (default 2)", 1, 4096);
  p.option("--long-prompt-tokens", &sc.long_tokens, "N", "mixed: their length (default 1024)", 1, 1 << 20);
  p.option("--prefix-tokens", &sc.prefix, "N", "prefix: shared prefix tokens (default 4096)", 1, 1 << 20);
  p.option("--suffix-tokens", &sc.suffix, "N", "prefix: suffix tokens (default 64)", 1, 1 << 20);
  if (Status s = p.parse(argc, argv); !s.is_ok()) return report_error("bench", s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }
  if (model_path.empty()) return report_error("bench", invalid_argument("-m MODEL is required (see --help)"));
  if (kv != "f16" && kv != "f32") return report_error("bench", invalid_argument("--kv must be f16 or f32, got '" + kv + "'"));
  if (!sc.scenario.empty() && sc.scenario != "mixed" && sc.scenario != "prefix")
    return report_error("bench", invalid_argument("--scenario must be mixed or prefix, got '" + sc.scenario + "'"));
  for (const char* opt : {"--schedule", "--batch-tokens", "--block-size", "--streams", "--stream-tokens",
                          "--long-prompts", "--long-prompt-tokens", "--prefix-tokens", "--suffix-tokens"})
    if (sc.scenario.empty() && p.given(opt))
      return report_error("bench", invalid_argument(std::string(opt) + " needs --scenario"));
  if (!sc.schedule.empty()) {
    if (sc.scenario != "mixed") return report_error("bench", invalid_argument("--schedule needs --scenario mixed"));
    if (auto s = runtime::schedule_from_name(sc.schedule); !s.is_ok()) return report_error("bench", s.status());
  }
  if (p.given("--kv-policy")) {
    if (!sc.scenario.empty()) return report_error("bench", invalid_argument("--kv-policy does not apply to --scenario"));
    if (auto pol = kv::make_kv_policy(kv_policy); !pol.is_ok()) return report_error("bench", pol.status());
  }
  std::vector<int64_t> depths;
  if (p.given("--depth")) {
    if (!sc.scenario.empty()) return report_error("bench", invalid_argument("--depth does not apply to --scenario"));
    if (p.given("--n-prompt")) return report_error("bench", invalid_argument("-p does not apply to --depth"));
    if (n_gen < 1) return report_error("bench", invalid_argument("--depth needs -n >= 1"));
    auto d = parse_depths(depth_list);
    if (!d.is_ok()) return report_error("bench", d.status());
    depths = std::move(d).value();
  }
  if (!sc.scenario.empty() && (p.given("--n-prompt") || p.given("--n-gen")))
    return report_error("bench", invalid_argument("-p / -n do not apply to --scenario"));
  threads = capped_threads_flag("bench", "--threads", threads);
  auto model = model::Model::load(model_path);
  if (!model.is_ok()) return report_error("bench", model.status());
  if (!sc.scenario.empty())
    return run_scenario(**model, model_path, sc, static_cast<int>(threads), p.given("--reps") ? static_cast<int>(reps) : 3,
                        kv == "f16" ? model::KvType::kF16 : model::KvType::kF32, kv, json);

  eval::BenchOptions opt;
  opt.n_prompt = n_prompt;
  opt.n_gen = n_gen;
  opt.n_threads = static_cast<int>(threads);
  opt.reps = static_cast<int>(reps);
  opt.kv_type = kv == "f16" ? model::KvType::kF16 : model::KvType::kF32;
  opt.kv_policy = kv_policy;
  if (isatty(STDERR_FILENO))
    opt.progress = [](const char* phase, int rep, int total) {
      std::fprintf(stderr, "\r  %s %d/%d   ", phase, rep, total);
      std::fflush(stderr);
    };
  if (!depths.empty()) {
    opt.depths = depths;
    opt.past_training_context = past_ctx;
    return run_depths(**model, model_path, opt, kv, json);
  }
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
    if (!kv_policy.empty()) w.key("kv_policy").value(kv_policy);
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
