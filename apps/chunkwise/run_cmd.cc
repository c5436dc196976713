// chunkwise run -m MODEL (-p PROMPT | -f FILE) [-n N] [sampling options] [--ctx N] [--ubatch N]
//               [--threads N] [--json] [--logits-top K]
// Generates a completion of a prompt: streamed text on stdout and a timing line on stderr, or one JSON
// object with --json.
#include <cstdio>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "args.h"
#include "base/json.h"
#include "base/utf8.h"
#include "commands.h"
#include "kv/policy.h"
#include "model/model.h"
#include "runtime/generate.h"
#include "runtime/kv_executor.h"
#include "runtime/sampler.h"
#include "threads_flag.h"
#include "tokenizer/tokenizer.h"

namespace cw::app {
namespace {

constexpr const char* kCmd = "run";

Result<std::string> read_prompt_file(const std::string& path) {
  CW_ASSIGN_OR_RETURN(std::string text, read_input_file(path, /*dash_is_stdin=*/true));
  if (text.empty()) return invalid_argument("the prompt file '" + path + "' is empty");
  return text;
}

// Writes token pieces as they come, holding back a UTF-8 sequence split across byte tokens until it is
// complete (invalid bytes are written as they are).
class Utf8Printer {
 public:
  Status push(std::string_view piece) {
    pending_.append(piece);
    const size_t i = pending_.size() - utf8_incomplete_suffix_len(pending_);
    Status s = write(std::string_view(pending_).substr(0, i));
    pending_.erase(0, i);
    return s;
  }
  Status finish() {
    Status s = write(pending_);
    pending_.clear();
    return s;
  }

 private:
  static Status write(std::string_view bytes) {
    if (std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size() || std::fflush(stdout) != 0)
      return io_error("cannot write the output");
    return Status::ok();
  }
  std::string pending_;
};

double tok_per_s(size_t n, double ms) { return ms > 0 ? static_cast<double>(n) * 1000.0 / ms : 0.0; }

std::string to_json(const std::vector<int32_t>& prompt_tokens, const runtime::GenerateResult& g,
                    const std::string& text, uint64_t seed, int64_t threads, bool with_steps) {
  JsonWriter w;
  w.begin_object().key("prompt_tokens").begin_array();
  for (int32_t t : prompt_tokens) w.value(int64_t{t});
  w.end_array().key("tokens").begin_array();
  for (int32_t t : g.tokens) w.value(int64_t{t});
  w.end_array().key("text").value(text);
  if (with_steps) {
    w.key("steps").begin_array();
    for (const auto& s : g.steps) {
      w.begin_object().key("token").value(int64_t{s.token}).key("top").begin_array();
      for (const auto& [id, logit] : s.top) w.begin_array().value(int64_t{id}).value(double{logit}).end_array();
      w.end_array().end_object();
    }
    w.end_array();
  }
  w.key("timings").begin_object();
  w.key("prompt_ms").value(g.prompt_ms).key("decode_ms").value(g.decode_ms);
  w.key("prefill_tok_s").value(tok_per_s(prompt_tokens.size(), g.prompt_ms));
  w.key("decode_tok_s").value(tok_per_s(g.tokens.size(), g.decode_ms));
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
  p.flag("--json", &json, "print one JSON object: prompt_tokens, tokens, text, timings");
  p.flag("--batch-invariant", &batch_invariant,
         "every matmul on the multi-row kernels: the output then equals `batch --batch-invariant` bit for bit "
         "(slower decoding of quantized models)");
  p.option("--kv-policy", &kv_policy, "SPEC",
           "KV policy (supported: " + kv::supported_kv_policies() +
               "; default full), e.g. sink_window:sinks=4,window=240:\n"
               "sink_window / window keep a bounded cache, so -n may run past --ctx and the training context\n"
               "(the window + one micro-batch must fit in the training context)");
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
  auto acting = runtime::make_acting_policy(kv_policy);  // null for `full` (and no --kv-policy)
  if (!acting.is_ok()) return report_error(kCmd, acting.status());
  const std::unique_ptr<kv::KvPolicy> policy = std::move(acting).value();

  runtime::SamplerParams sp;
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

  auto model = model::Model::load(model_path);
  if (!model.is_ok()) return report_error(kCmd, model.status());
  const model::Model& m = **model;
  auto tok = tok::Tokenizer::from_gguf(m.file());
  if (!tok.is_ok()) return report_error(kCmd, tok.status());
  const tok::Tokenizer& t = **tok;

  const std::vector<int32_t> prompt_tokens = t.encode(prompt, /*add_special=*/true, /*parse_special=*/false);
  if (prompt_tokens.empty()) return report_error(kCmd, invalid_argument("the prompt has no tokens"));
  // The library applies the context rule (session and generate); KV memory is committed as it is used.
  if (!p.given("--ctx"))
    n_ctx = std::min<int64_t>(m.hparams().n_ctx_train,
                              std::max<int64_t>(4096, static_cast<int64_t>(prompt_tokens.size()) + n_predict));
  threads = capped_threads_flag(kCmd, "--threads", threads);

  std::unique_ptr<model::Session> plain;
  std::unique_ptr<runtime::PolicySession> bounded;
  if (policy != nullptr) {
    // Constant memory: the cache holds the policy's slots + one micro-batch (no --ctx, no prompt + -n rule).
    if (p.given("--ctx"))
      return report_error(kCmd, invalid_argument("--ctx does not apply with kv policy '" + policy->spec() +
                                                 "': its window sets the cache size"));
    if (!p.given("--ubatch")) {
      auto fit = runtime::PolicySession::fit_ubatch(m, *policy, ubatch);
      if (!fit.is_ok()) return report_error(kCmd, fit.status());
      ubatch = *fit;
    }
    auto created = runtime::PolicySession::create(m, *policy, ubatch, model::KvType::kF16, static_cast<int>(threads));
    if (!created.is_ok()) return report_error(kCmd, created.status());
    bounded = std::move(created).value();
    bounded->session().set_batch_invariant(batch_invariant);
  } else {
    auto created = model::Session::create(m, n_ctx, model::KvType::kF16, static_cast<int>(threads));
    if (!created.is_ok()) return report_error(kCmd, created.status());
    plain = std::move(created).value();
    plain->set_batch_invariant(batch_invariant);
  }
  runtime::Sampler sampler(sp, static_cast<int32_t>(m.hparams().n_vocab));
  runtime::GenerateOptions opts;
  opts.n_predict = n_predict;
  opts.ubatch = ubatch;
  opts.eos = t.eos();
  opts.logits_top = static_cast<int>(logits_top);

  std::string text;  // the generated pieces, EOS left out
  Utf8Printer printer;
  auto on_token = [&](int32_t id) -> Status {
    if (id == t.eos()) return Status::ok();
    const std::string piece = t.token_to_piece(id);
    text += piece;
    return json ? Status::ok() : printer.push(piece);
  };
  auto gen = bounded != nullptr ? runtime::generate(*bounded, sampler, prompt_tokens, opts, on_token)
                                : runtime::generate(*plain, sampler, prompt_tokens, opts, on_token);
  if (!gen.is_ok()) return report_error(kCmd, gen.status());
  const runtime::GenerateResult& g = *gen;

  if (json) {
    const std::string out = to_json(prompt_tokens, g, text, sp.seed, threads, logits_top > 0);
    if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0)
      return report_error(kCmd, io_error("cannot write the output"));
    return kExitOk;
  }
  if (Status s = printer.finish(); !s.is_ok()) return report_error(kCmd, s);
  if (Status s = printer.push("\n"); !s.is_ok()) return report_error(kCmd, s);
  std::fprintf(stderr,
               "prompt: %zu tokens, %.1f ms, %.1f tok/s | decode: %zu tokens, %.1f ms, %.1f tok/s | seed %llu, "
               "threads %lld%s\n",
               prompt_tokens.size(), g.prompt_ms, tok_per_s(prompt_tokens.size(), g.prompt_ms), g.tokens.size(),
               g.decode_ms, tok_per_s(g.tokens.size(), g.decode_ms), static_cast<unsigned long long>(sp.seed),
               static_cast<long long>(threads), g.stopped_at_eos ? " | stopped at EOS" : "");
  return kExitOk;
}

}  // namespace cw::app
