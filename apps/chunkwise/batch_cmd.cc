// chunkwise batch -m MODEL -f prompts.jsonl [-o out.jsonl] [--parallel N] [--batch-tokens N]
//                 [--kv-mem BYTES | --ctx N] [--threads N] [...]
// Offline generation of many prompts through the Engine: one JSON object per input line, one result line
// per input line in input order (written as soon as all earlier ones are done).
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <limits>
#include <string>
#include <vector>

#include "args.h"
#include "base/file_io.h"
#include "base/json.h"
#include "base/json_value.h"
#include "chunkwise/engine.h"
#include "commands.h"
#include "kv/policy.h"
#include "threads_flag.h"

namespace cw::app {
namespace {

constexpr const char* kCmd = "batch";

struct Line {
  int64_t line_no = 0;  // 1-based
  bool has_id = false;
  JsonValue id;
  GenerationRequest request;
};

// "123", "64K", "512M", "2G" (binary multiples) -> bytes.
Result<uint64_t> parse_bytes(const std::string& s) {
  if (s.empty()) return invalid_argument("--kv-mem needs a byte count");
  size_t pos = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(s, &pos);
  } catch (...) {
    return invalid_argument("--kv-mem '" + s + "' is not a byte count (e.g. 268435456, 256M, 2G)");
  }
  uint64_t mul = 1;
  const std::string suffix = s.substr(pos);
  if (suffix == "K" || suffix == "k") {
    mul = uint64_t{1} << 10;
  } else if (suffix == "M" || suffix == "m") {
    mul = uint64_t{1} << 20;
  } else if (suffix == "G" || suffix == "g") {
    mul = uint64_t{1} << 30;
  } else if (!suffix.empty() || s[0] == '-') {
    return invalid_argument("--kv-mem '" + s + "' is not a byte count (e.g. 268435456, 256M, 2G)");
  }
  if (v == 0 || v > (uint64_t{1} << 50) / mul) return out_of_range("--kv-mem must be in [1, 2^50] bytes");
  return static_cast<uint64_t>(v) * mul;
}

Status line_error(int64_t line_no, const std::string& what) {
  return invalid_argument("line " + std::to_string(line_no) + ": " + what);
}

Result<int64_t> get_int(const JsonValue& v, const char* key, int64_t line_no, int64_t min, int64_t max) {
  if (!v.is_number() || v.as_number() != std::floor(v.as_number()))
    return line_error(line_no, std::string("\"") + key + "\" must be an integer");
  const double d = v.as_number();
  if (d < static_cast<double>(min) || d > static_cast<double>(max)) {
    char got[32];
    std::snprintf(got, sizeof got, "%.17g", d);  // never converted to an integer: 1e20 prints as 1e+20
    return line_error(line_no, std::string("\"") + key + "\" must be in [" + std::to_string(min) + ", " +
                                   std::to_string(max) + "], got " + got);
  }
  return static_cast<int64_t>(d);
}

// Parses and validates one input line into `out` (fields default to the command-line values in `defaults`).
Status parse_line(std::string_view text, int64_t line_no, const GenerationRequest& defaults, Line* out) {
  auto parsed = JsonValue::parse(text);
  if (!parsed.is_ok()) return line_error(line_no, "invalid JSON: " + parsed.status().message());
  const JsonValue& doc = *parsed;
  out->line_no = line_no;
  if (!doc.is_object()) return line_error(line_no, "expected a JSON object");
  out->request = defaults;
  bool have_prompt = false;
  for (const auto& [key, v] : doc.members()) {
    if (key == "id") {
      if (!v.is_string() && !v.is_number()) return line_error(line_no, "\"id\" must be a string or a number");
      out->has_id = true;
      out->id = v;
    } else if (key == "prompt") {
      if (!v.is_string()) return line_error(line_no, "\"prompt\" must be a string");
      if (v.as_string().empty()) return line_error(line_no, "\"prompt\" is empty");
      out->request.prompt = v.as_string();
      have_prompt = true;
    } else if (key == "n_predict") {
      CW_ASSIGN_OR_RETURN(out->request.n_predict, get_int(v, "n_predict", line_no, 0, int64_t{1} << 24));
    } else if (key == "temperature") {
      if (!v.is_number() || !(v.as_number() >= 0) || v.as_number() > 1e9)
        return line_error(line_no, "\"temperature\" must be a number >= 0");
      out->request.sampling.temperature = static_cast<float>(v.as_number());
    } else if (key == "seed") {
      CW_ASSIGN_OR_RETURN(const int64_t seed,
                          get_int(v, "seed", line_no, 0, int64_t{1} << 53));
      out->request.sampling.seed = static_cast<uint64_t>(seed);
    } else if (key == "kv_policy") {
      if (!v.is_string() || v.as_string().empty()) return line_error(line_no, "\"kv_policy\" must be a policy spec string");
      out->request.kv_policy = v.as_string();
    } else {
      return line_error(line_no,
                        "unknown key \"" + key + "\" (allowed: id, prompt, n_predict, temperature, seed, kv_policy)");
    }
  }
  if (!have_prompt) return line_error(line_no, "missing \"prompt\"");
  return Status::ok();
}

std::string result_json(const Line& line, const GenerationResult& r) {
  JsonWriter w;
  w.begin_object().key("id");
  if (!line.has_id) {
    w.value(line.line_no);
  } else if (line.id.is_string()) {
    w.value(line.id.as_string());
  } else {
    const double d = line.id.as_number();
    if (d == std::floor(d) && std::fabs(d) < 9e15) {
      w.value(static_cast<int64_t>(d));
    } else {
      w.value(d);
    }
  }
  w.key("tokens").begin_array();
  for (int32_t t : r.tokens) w.value(int64_t{t});
  w.end_array();
  w.key("text").value(r.text).key("prompt_tokens").value(r.prompt_tokens).key("cached_tokens").value(r.cached_tokens);
  if (r.finish_reason != FinishReason::kLength) w.key("finish_reason").value(finish_reason_name(r.finish_reason));
  if (!r.error.is_ok()) w.key("error").value(r.error.message());
  w.end_object();
  return w.str() + "\n";
}

class Progress {
 public:
  Progress(size_t total, bool on) : total_(total), on_(on), t0_(std::chrono::steady_clock::now()) {}
  void update(size_t done, int64_t tokens) {
    if (!on_) return;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    constexpr int kWidth = 30;
    const int filled = total_ == 0 ? kWidth : static_cast<int>(kWidth * done / total_);
    std::string bar(static_cast<size_t>(filled), '=');
    bar.resize(kWidth, ' ');
    std::fprintf(stderr, "\r[%s] %zu/%zu  %.1f tok/s  %.0fs ", bar.c_str(), done, total_,
                 s > 0 ? static_cast<double>(tokens) / s : 0.0, s);
    std::fflush(stderr);
  }
  void finish() {
    if (on_) std::fprintf(stderr, "\n");
  }

 private:
  size_t total_;
  bool on_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace

int batch_main(int argc, char** argv) {
  std::string model_path, input, output, kv_mem, kv_type = "f16", schedule = "chunked", kv_policy = "full";
  int64_t parallel = 16, batch_tokens = 512, ctx = 0, threads = 1, block_size = 16, n_predict = 64, seed = 0;
  double temp = 0.8;
  bool no_progress = false;
  bool batch_invariant = false;
  ArgParser p(kCmd,
              "-m MODEL.gguf -f PROMPTS.jsonl [-o OUT.jsonl] [--parallel N] [--batch-tokens N]\n"
              "       [--kv-mem BYTES | --ctx N] [--threads N] [--block-size 16|32] [--kv-type f16|f32]\n"
              "       [--schedule chunked|prefill-first] [--kv-policy SPEC] [-n N] [--temp T] [--seed S]\n"
              "       [--batch-invariant] [--no-progress]",
              "Generates completions for many prompts at once (continuous batching with chunked prefill and\n"
              "prefix reuse). Each input line is a JSON object:\n"
              "  {\"id\": ..., \"prompt\": \"...\", \"n_predict\": N, \"temperature\": T, \"seed\": S,\n"
              "   \"kv_policy\": SPEC}\n"
              "(only \"prompt\" is required; the others default to the options below; blank lines are\n"
              "skipped). Each output line, in input order:\n"
              "  {\"id\": ..., \"tokens\": [...], \"text\": \"...\", \"prompt_tokens\": P, \"cached_tokens\": C}\n"
              "plus \"finish_reason\" when not \"length\" and \"error\" if the request failed. Every line is\n"
              "validated before anything runs. A progress bar goes to stderr when it is a terminal.");
  p.option("-m,--model", &model_path, "MODEL.gguf", "the model to run");
  p.option("-f,--file", &input, "PROMPTS.jsonl", "input prompts, one JSON object per line ('-' = stdin)");
  p.option("-o,--output", &output, "OUT.jsonl", "write results here (default: stdout)");
  p.option("--parallel", &parallel, "N", "requests running at once (default 16)", 1, 4096);
  p.option("--batch-tokens", &batch_tokens, "N", "token budget of one forward step (default 512)", 1, 1 << 20);
  p.option("--kv-mem", &kv_mem, "BYTES", "KV cache size in bytes (suffix K, M, G allowed)");
  p.option("--ctx", &ctx, "N",
           "KV cache size in tokens, shared by the running requests (default: parallel x min(train ctx,\n"
           "4096), <= 1 GiB); each request's prompt + n_predict may not exceed the model's training\n"
           "context (refused, like run)", 1, int64_t{1} << 30);
  p.option("--threads", &threads, "N", "threads for the forward pass (default 1; capped at the cores)", 1, 1024);
  p.option("--block-size", &block_size, "N", "tokens per KV block (default 16)", 1, 4096);
  p.option("--kv-type", &kv_type, "TYPE", "KV cache precision: f16 (default) or f32");
  p.option("--schedule", &schedule, "NAME", "chunked (default) or prefill-first");
  p.option("--kv-policy", &kv_policy, "SPEC",
           "KV policy of every request without its own (supported: " + kv::supported_kv_policies() +
               "; default full);\n"
               "sink_window / window / recompute_window keep a request's KV bounded, so it may run past the\n"
               "KV cache and the training context");
  p.option("-n,--n-predict", &n_predict, "N", "default tokens to generate per line (default 64)", 0, int64_t{1} << 24);
  p.option("--temp", &temp, "T", "default temperature (default 0.8; 0 = greedy)", 0, 1e9);
  p.option("--seed", &seed, "S", "default sampling seed (default 0)", 0, int64_t{1} << 53);
  p.flag("--no-progress", &no_progress, "never draw the progress bar");
  p.flag("--batch-invariant", &batch_invariant,
         "outputs bit-identical to `run --batch-invariant` whatever the batching, for every weight type "
         "(slower decoding; F32/F16/BF16 models are batch-invariant anyway)");
  if (Status s = p.parse(argc, argv); !s.is_ok()) return report_error(kCmd, s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }
  if (model_path.empty()) return report_error(kCmd, invalid_argument("-m MODEL.gguf is required (see --help)"));
  if (input.empty()) return report_error(kCmd, invalid_argument("-f PROMPTS.jsonl is required (see --help)"));
  if (p.given("--output") && output.empty()) return report_error(kCmd, invalid_argument("-o needs a file name"));
  if (p.given("--kv-mem") && p.given("--ctx"))
    return report_error(kCmd, invalid_argument("give at most one of --kv-mem and --ctx"));

  EngineConfig cfg;
  cfg.model_path = model_path;
  cfg.threads = capped_threads_flag(kCmd, "--threads", threads);
  if (p.given("--kv-mem")) {
    auto b = parse_bytes(kv_mem);
    if (!b.is_ok()) return report_error(kCmd, b.status());
    cfg.kv_mem_bytes = *b;
  }
  cfg.ctx = ctx;
  cfg.block_size = static_cast<int>(block_size);
  cfg.kv_type = kv_type;
  cfg.batch_tokens = batch_tokens;
  cfg.parallel = parallel;
  cfg.schedule = schedule;
  cfg.kv_policy = kv_policy;
  cfg.batch_invariant = batch_invariant;

  auto text = read_input_file(input, /*dash_is_stdin=*/true);
  if (!text.is_ok()) return report_error(kCmd, text.status());
  GenerationRequest defaults;
  defaults.n_predict = n_predict;
  defaults.sampling.temperature = static_cast<float>(temp);
  defaults.sampling.seed = static_cast<uint64_t>(seed);
  std::deque<Line> lines;
  {
    std::string_view rest = strip_utf8_bom(*text);  // a byte-order mark some editors write is not JSON
    int64_t line_no = 0;
    while (!rest.empty()) {
      const size_t nl = rest.find('\n');
      std::string_view raw = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      ++line_no;
      if (raw.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      Line line;
      if (Status s = parse_line(raw, line_no, defaults, &line); !s.is_ok()) return report_error(kCmd, s);
      lines.push_back(std::move(line));
    }
  }
  if (lines.empty()) return report_error(kCmd, invalid_argument("'" + input + "' has no prompts"));

  auto opened = Engine::open(cfg);
  if (!opened.is_ok()) return report_error(kCmd, opened.status());
  Engine& engine = **opened;
  for (const Line& l : lines) {
    if (Status s = engine.validate(l.request); !s.is_ok())
      return report_error(kCmd, line_error(l.line_no, s.message()));
  }

  // Results go to a temporary file renamed over the output only when the run completes: a failed or
  // killed run leaves an existing output as it was.
  std::FILE* out = stdout;
  OutputFile out_file;
  if (!output.empty()) {
    if (Status s = check_output_not_input(output, {input, model_path}); !s.is_ok()) return report_error(kCmd, s);
    auto created = OutputFile::create(output);
    if (!created.is_ok()) return report_error(kCmd, created.status());
    out_file = std::move(created).value();
    out = out_file.file();
  }
  Progress progress(lines.size(), !no_progress && isatty(STDERR_FILENO) && lines.size() > 1);
  // Keep the engine fed with up to 2 x parallel requests; collect results in input order.
  const size_t window = static_cast<size_t>(std::min<int64_t>(2 * parallel, 1 << 16));
  std::deque<int64_t> in_flight;
  size_t next = 0, done = 0;
  int64_t generated = 0;
  Status first_failure;  // the first failed request's error, with its line: the exit code follows its class
  Status write_status;
  while (done < lines.size()) {
    while (next < lines.size() && in_flight.size() < window) {
      auto id = engine.submit(lines[next].request);
      if (!id.is_ok()) return report_error(kCmd, line_error(lines[next].line_no, id.status().message()));
      in_flight.push_back(*id);
      ++next;
    }
    const GenerationResult r = engine.wait(in_flight.front());
    in_flight.pop_front();
    if (r.finish_reason == FinishReason::kError && first_failure.is_ok())
      first_failure = Status(r.error.is_ok() ? StatusCode::kInternal : r.error.code(),
                             "line " + std::to_string(lines[done].line_no) + ": " + r.error.message());
    generated += static_cast<int64_t>(r.tokens.size());
    const std::string json = result_json(lines[done], r);
    if (write_status.is_ok() && (std::fwrite(json.data(), 1, json.size(), out) != json.size() || std::fflush(out) != 0))
      write_status = io_error("cannot write the output" + (output.empty() ? std::string() : " '" + output + "'"));
    if (!write_status.is_ok()) break;
    lines[done].request = GenerationRequest();  // free what is no longer needed
    ++done;
    progress.update(done, generated);
  }
  progress.finish();
  if (write_status.is_ok() && out_file.file() != nullptr) write_status = out_file.commit();
  if (!write_status.is_ok()) return report_error(kCmd, write_status);
  if (!first_failure.is_ok())
    return report_error(kCmd, Status(first_failure.code(), "some requests failed (see their \"error\" fields); the first, " +
                                                               first_failure.message()));
  return kExitOk;
}

}  // namespace cw::app
