// chunkwise run -m MODEL (-p PROMPT | -f FILE) [-n N] [sampling options] [--ctx N] [--ubatch N]
//               [--threads N] [--json] [--logits-top K]
// Generates a completion of a prompt: streamed text on stdout and a timing line on stderr, or one JSON
// object with --json. It drives the public cw::Engine (chunkwise/engine.h) with one request, the same
// path as `batch` and `serve` (DESIGN.md §3, one generation path): the library validates the request and
// applies the context rule; this file only maps flags to the request and prints.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "args.h"
#include "base/json.h"
#include "chunkwise/engine.h"
#include "commands.h"
#include "kv/policy.h"
#include "runtime/sampler.h"
#include "threads_flag.h"

namespace cw::app {
namespace {

constexpr const char* kCmd = "run";
// --logits-top keeps every logit row of the run until it ends: at most this many bytes of them.
constexpr uint64_t kMaxKeptLogitBytes = uint64_t{1} << 30;

Result<std::string> read_prompt_file(const std::string& path) {
  CW_ASSIGN_OR_RETURN(std::string text, read_input_file(path, /*dash_is_stdin=*/true));
  if (text.empty()) return invalid_argument("the prompt file '" + path + "' is empty");
  return text;
}

Status write_stdout(std::string_view bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size() || std::fflush(stdout) != 0)
    return io_error("cannot write the output");
  return Status::ok();
}

double tok_per_s(int64_t n, double ms) { return ms > 0 && n > 0 ? static_cast<double>(n) * 1000.0 / ms : 0.0; }

// Timings seen from this process: prompt = submit -> first token sampled (prefill + one sample);
// decode = first token -> last token (the n - 1 tokens after the first).
struct Timings {
  double prompt_ms = 0, decode_ms = 0;
  int64_t decode_tokens = 0;
};

std::string to_json(const std::vector<int32_t>& prompt_tokens, const GenerationResult& g, int64_t n_vocab,
                    int logits_top, const Timings& t, uint64_t seed, int64_t threads) {
  JsonWriter w;
  w.begin_object().key("prompt_tokens").begin_array();
  for (int32_t tok : prompt_tokens) w.value(int64_t{tok});
  w.end_array().key("tokens").begin_array();
  for (int32_t tok : g.tokens) w.value(int64_t{tok});
  w.end_array().key("text").value(g.text).key("finish_reason").value(finish_reason_name(g.finish_reason));
  if (logits_top > 0) {
    // The k highest raw logits each token was sampled from (the kept rows, one per generated token).
    w.key("steps").begin_array();
    const auto row_len = static_cast<size_t>(n_vocab);
    for (size_t i = 0; i < g.tokens.size() && (i + 1) * row_len <= g.logits.size(); ++i) {
      w.begin_object().key("token").value(int64_t{g.tokens[i]}).key("top").begin_array();
      const std::span<const float> row(g.logits.data() + i * row_len, row_len);
      for (const auto& [id, logit] : runtime::top_logits(row, logits_top))
        w.begin_array().value(int64_t{id}).value(double{logit}).end_array();
      w.end_array().end_object();
    }
    w.end_array();
  }
  w.key("timings").begin_object();
  w.key("prompt_ms").value(t.prompt_ms).key("decode_ms").value(t.decode_ms);
  w.key("prefill_tok_s").value(tok_per_s(static_cast<int64_t>(prompt_tokens.size()), t.prompt_ms));
  w.key("decode_tok_s").value(tok_per_s(t.decode_tokens, t.decode_ms));
  w.end_object();
  w.key("seed").value(seed).key("threads").value(threads);
  w.end_object();
  return w.str() + "\n";
}

}  // namespace

int run_main(int argc, char** argv) {
  std::string model_path, prompt, file;
  uint64_t seed = 0;
  int64_t n_predict = 64, top_k = 40, repeat_last_n = 64, n_ctx = 0, ubatch = 512, threads = 1,
          logits_top = 0;
  double temp = 0.8, top_p = 0.95, min_p = 0.05, repeat_penalty = 1.0, presence_penalty = 0.0,
         frequency_penalty = 0.0;
  bool json = false;
  bool batch_invariant = false;
  std::string kv_policy;
  constexpr double kBig = 1e9;
  ArgParser p(kCmd,
              "-m MODEL.gguf (-p PROMPT | -f FILE) [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P]\n"
              "       [--repeat-penalty R] [--repeat-last-n N] [--presence-penalty X] [--frequency-penalty X]\n"
              "       [--seed S] [--ctx N] [--ubatch N] [--threads N] [--json] [--logits-top K]\n"
              "       [--batch-invariant] [--kv-policy SPEC]",
              "Generates text from a prompt (BOS added as the model's vocabulary asks). Streams the text to\n"
              "stdout and prints timings on stderr, or prints one JSON object with --json. Sampling follows\n"
              "llama.cpp's chain: penalties, top-k, top-p, min-p, temperature; --temp 0 is greedy.");
  p.option("-m,--model", &model_path, "MODEL.gguf", "the model to run");
  p.option("-p,--prompt", &prompt, "PROMPT", "the prompt text");
  p.option("-f,--file", &file, "FILE", "read the prompt from FILE ('-' = standard input)");
  p.option("-n,--n-predict", &n_predict, "N", "tokens to generate (default 64; stops early at EOS)", 0,
           int64_t{1} << 24);
  p.option("--temp", &temp, "T", "temperature (default 0.8; 0 = greedy)", 0, kBig);
  p.option("--top-k", &top_k, "K", "keep the K most likely tokens (default 40; 0 = off)", 0,
           std::numeric_limits<int32_t>::max());
  p.option("--top-p", &top_p, "P", "nucleus: smallest set with probability >= P (default 0.95; 1 = off)", 0, 1);
  p.option("--min-p", &min_p, "P", "drop tokens below P x the top probability (default 0.05; 0 = off)", 0, 1);
  p.option("--repeat-penalty", &repeat_penalty, "R", "penalise repeated tokens (default 1 = off)", 0, kBig);
  p.option("--repeat-last-n", &repeat_last_n, "N", "tokens the penalties look back on (default 64; 0 = off)", 0,
           int64_t{1} << 20);
  p.option("--presence-penalty", &presence_penalty, "X", "subtract X from seen tokens (default 0)", -kBig, kBig);
  p.option("--frequency-penalty", &frequency_penalty, "X", "subtract X x count from seen tokens (default 0)",
           -kBig, kBig);
  p.option("--seed", &seed, "S", "random seed, 0 .. 2^64-1 (default: random, printed)");
  p.option("--ctx", &n_ctx, "N",
           "context size in tokens (default: what the prompt and -n need, at least min(training context,\n"
           "4096)); the prompt + -n and --ctx may not exceed the model's training context (refused)", 1,
           int64_t{1} << 24);
  p.option("--ubatch", &ubatch, "N", "prompt tokens per forward pass (default 512)", 1, int64_t{1} << 20);
  p.option("--threads", &threads, "N", "threads for the forward pass (default 1; capped at the cores)", 1, 1024);
  p.flag("--json", &json, "print one JSON object: prompt_tokens, tokens, text, finish_reason, timings");
  p.flag("--batch-invariant", &batch_invariant,
         "every matmul on the multi-row kernels: the output then equals `batch --batch-invariant` bit for bit "
         "(slower decoding of quantized models)");
  p.option("--kv-policy", &kv_policy, "SPEC",
           "KV policy (supported: " + kv::supported_kv_policies() +
               "; default full), e.g. sink_window:sinks=4,window=240:\n"
               "sink_window / window keep a bounded cache, so -n may run past --ctx and the training context\n"
               "(the window + one micro-batch must fit in the training context); chunk_select keeps every token\n"
               "and lets each head attend to the blocks it picks within the training context, so the prompt may\n"
               "be far longer than the window (the cache grows with it)");
  p.option("--logits-top", &logits_top, "K", "with --json: the K highest logits of every step", 0, 1 << 20);
  if (Status s = p.parse(argc, argv); !s.is_ok()) return report_error(kCmd, s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }
  if (model_path.empty()) return report_error(kCmd, invalid_argument("-m MODEL.gguf is required (see --help)"));
  if (p.given("--prompt") == p.given("--file"))
    return report_error(kCmd, invalid_argument("give exactly one of -p PROMPT or -f FILE (see --help)"));
  if (logits_top > 0 && !json) return report_error(kCmd, invalid_argument("--logits-top needs --json"));
  auto spec = kv::make_kv_policy(kv_policy.empty() ? "full" : kv_policy);
  if (!spec.is_ok()) return report_error(kCmd, spec.status());
  const bool bounded = (*spec)->lifts_context_limit();
  // A policy that lifts the context rule but keeps every slot (chunk_select) needs a cache for the whole request.
  bool grows = false;
  if (bounded) {
    auto st = (*spec)->make_state(16);
    if (!st.is_ok()) return report_error(kCmd, st.status());
    grows = (*st)->max_slots() < 0;
  }
  // Constant memory: the cache holds the policy's slots (+ one micro-batch); no --ctx, no prompt + -n rule.
  if (bounded && p.given("--ctx"))
    return report_error(kCmd, invalid_argument("--ctx does not apply with kv policy '" + (*spec)->spec() +
                                               "': its window sets the cache size"));

  GenerationRequest req;
  req.n_predict = n_predict;
  req.keep_logits = logits_top > 0;
  SamplingConfig& sp = req.sampling;
  sp.temperature = static_cast<float>(temp);
  sp.top_k = static_cast<int>(top_k);
  sp.top_p = static_cast<float>(top_p);
  sp.min_p = static_cast<float>(min_p);
  sp.repeat_penalty = static_cast<float>(repeat_penalty);
  sp.presence_penalty = static_cast<float>(presence_penalty);
  sp.frequency_penalty = static_cast<float>(frequency_penalty);
  sp.penalty_last_n = static_cast<int>(repeat_last_n);
  sp.seed = p.given("--seed") ? seed
                      : (uint64_t{std::random_device{}()} << 32 | std::random_device{}()) >> 1;
  if (Status s = runtime::validate(sp); !s.is_ok()) return report_error(kCmd, s);

  if (p.given("--file")) {
    auto r = read_prompt_file(file);
    if (!r.is_ok()) return report_error(kCmd, r.status());
    prompt = std::move(r).value();
  } else if (prompt.empty()) {
    return report_error(kCmd, invalid_argument("the prompt is empty"));
  }

  EngineConfig cfg;
  cfg.model_path = model_path;
  cfg.threads = capped_threads_flag(kCmd, "--threads", threads);
  cfg.parallel = 1;
  cfg.batch_tokens = ubatch;
  cfg.kv_policy = (*spec)->spec();
  cfg.batch_invariant = batch_invariant;
  if (p.given("--ctx")) cfg.ctx = n_ctx;
  auto opened = Engine::open(cfg);
  if (!opened.is_ok()) return report_error(kCmd, opened.status());
  std::unique_ptr<Engine> engine = std::move(opened).value();

  req.prompt_tokens = engine->tokenize(prompt);
  if (req.prompt_tokens.empty()) return report_error(kCmd, invalid_argument("the prompt has no tokens"));
  const auto n_prompt = static_cast<int64_t>(req.prompt_tokens.size());
  const EngineInfo info = engine->info();
  if (!bounded && p.given("--ctx") && n_ctx > info.n_ctx_train)
    return report_error(kCmd, out_of_range("--ctx " + std::to_string(n_ctx) + " exceeds the model's training context of " +
                                           std::to_string(info.n_ctx_train) + " tokens"));
  // The default cache holds min(training context, 4096) tokens; a longer prompt + -n within the training
  // context gets a cache of its size (KV memory is committed as it is used).
  if (((!bounded && n_prompt + n_predict <= info.n_ctx_train) || grows) && !p.given("--ctx") &&
      n_prompt + n_predict - 1 > info.max_request_tokens) {
    cfg.ctx = n_prompt + n_predict;
    engine.reset();
    opened = Engine::open(cfg);
    if (!opened.is_ok()) return report_error(kCmd, opened.status());
    engine = std::move(opened).value();
  }
  if (logits_top > 0 &&
      static_cast<uint64_t>(n_predict) * static_cast<uint64_t>(info.n_vocab) * sizeof(float) > kMaxKeptLogitBytes)
    return report_error(kCmd, invalid_argument("--logits-top keeps every logit row: -n " + std::to_string(n_predict) +
                                               " x " + std::to_string(info.n_vocab) +
                                               " vocabulary entries is over 1 GiB; use a smaller -n"));
  if (Status s = engine->validate(req); !s.is_ok()) return report_error(kCmd, s);

  // Text streams from the engine's delivery thread (whole UTF-8 characters); a failed write cancels.
  using Clock = std::chrono::steady_clock;
  const Clock::time_point t_submit = Clock::now();
  Clock::time_point t_first{}, t_last{};
  int64_t n_seen = 0;
  Status write_status;
  StreamCallbacks cb;
  cb.on_token = [&](int64_t, int32_t, const TokenLogprobs*) {
    t_last = Clock::now();
    if (n_seen++ == 0) t_first = t_last;
  };
  if (!json) {
    cb.on_text = [&](int64_t id, std::string_view piece) {
      if (!write_status.is_ok()) return;
      write_status = write_stdout(piece);
      if (!write_status.is_ok()) engine->cancel(id);
    };
  }
  auto id = engine->submit(req, std::move(cb));
  if (!id.is_ok()) return report_error(kCmd, id.status());
  const GenerationResult g = engine->wait(*id);  // after every callback of the request has run
  if (!write_status.is_ok()) return report_error(kCmd, write_status);
  if (g.finish_reason == FinishReason::kError || g.finish_reason == FinishReason::kCancelled)
    return report_error(kCmd, g.error.is_ok() ? internal_error("the generation was cancelled") : g.error);
  Timings t;
  if (n_seen > 0) {
    t.prompt_ms = std::chrono::duration<double, std::milli>(t_first - t_submit).count();
    t.decode_ms = std::chrono::duration<double, std::milli>(t_last - t_first).count();
    t.decode_tokens = n_seen - 1;
  } else {
    t.prompt_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_submit).count();
  }

  if (json) {
    const std::string out = to_json(req.prompt_tokens, g, info.n_vocab, static_cast<int>(logits_top), t, sp.seed,
                                    cfg.threads);
    if (Status s = write_stdout(out); !s.is_ok()) return report_error(kCmd, s);
    return kExitOk;
  }
  if (Status s = write_stdout("\n"); !s.is_ok()) return report_error(kCmd, s);
  std::fprintf(stderr,
               "prompt: %lld tokens, %.1f ms, %.1f tok/s | decode: %zu tokens, %.1f ms, %.1f tok/s | seed %llu, "
               "threads %d%s\n",
               static_cast<long long>(n_prompt), t.prompt_ms, tok_per_s(n_prompt, t.prompt_ms), g.tokens.size(),
               t.decode_ms, tok_per_s(t.decode_tokens, t.decode_ms), static_cast<unsigned long long>(sp.seed),
               cfg.threads, g.finish_reason == FinishReason::kEos ? " | stopped at EOS" : "");
  return kExitOk;
}

}  // namespace cw::app
