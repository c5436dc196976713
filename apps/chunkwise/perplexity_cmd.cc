// chunkwise perplexity -m MODEL -f FILE [--ctx C] [--ubatch N] [--kv-policy SPEC] [--json]
// chunkwise perplexity --stream -m MODEL -f FILE [--kv-policy SPEC]... [--segment N] [--max-tokens N] [--json]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "args.h"
#include "base/json.h"
#include "commands.h"
#include "eval/perplexity.h"
#include "eval/perplexity_stream.h"
#include "eval/plot.h"
#include "kv/policy.h"
#include "model/model.h"
#include "runtime/kv_executor.h"
#include "threads_flag.h"
#include "tokenizer/tokenizer.h"

namespace cw::app {
namespace {

constexpr int64_t kDefaultUbatch = 512;

double mb(uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

struct StreamArgs {
  std::string file, plot;
  std::vector<std::string> policies;
  int64_t ubatch = kDefaultUbatch;
  bool ubatch_given = false;
  int64_t segment = 0;  // 0: the default
  int64_t max_tokens = 0;  // 0: the text's length
  int threads = 1;
  bool json = false, quiet = false;
};

int stream_main(const model::Model& m, const std::vector<int32_t>& tokens, const StreamArgs& a) {
  const int64_t max_tokens = a.max_tokens > 0 ? a.max_tokens : static_cast<int64_t>(tokens.size());
  // Default segment: a 32nd of the stream rounded up to a multiple of 1024, at least 1024 positions.
  const int64_t segment = a.segment > 0 ? a.segment : std::max<int64_t>(1024, (max_tokens / 32 + 1023) / 1024 * 1024);
  const bool show = !a.quiet && isatty(STDERR_FILENO);
  if (!a.quiet)
    std::fprintf(stderr, "perplexity --stream: %zu text tokens, a stream of %lld tokens, segments of %lld, %zu %s\n",
                 tokens.size(), static_cast<long long>(max_tokens), static_cast<long long>(segment), a.policies.size(),
                 a.policies.size() == 1 ? "policy" : "policies");
  std::vector<eval::StreamResult> results;
  std::vector<int64_t> ubatches;
  for (const std::string& spec : a.policies) {
    eval::StreamOptions opt;
    opt.max_tokens = max_tokens;
    opt.segment = segment;
    opt.kv_policy = spec;
    opt.n_threads = a.threads;
    if (a.ubatch_given) {
      opt.ubatch = a.ubatch;
    } else {
      auto ub = eval::default_ubatch(m, spec, kDefaultUbatch);
      if (!ub.is_ok()) return report_error("perplexity", ub.status());
      opt.ubatch = *ub;
    }
    if (show) {
      auto last = std::make_shared<std::chrono::steady_clock::time_point>();
      opt.progress = [spec, last](int64_t done, int64_t total, double ppl) {
        const auto now = std::chrono::steady_clock::now();
        if (done < total && now - *last < std::chrono::milliseconds(200)) return;
        *last = now;
        std::fprintf(stderr, "\r  %s: %lld/%lld, PPL so far %.4f", spec.c_str(), static_cast<long long>(done),
                     static_cast<long long>(total), ppl);
      };
    }
    auto r = eval::stream_perplexity(m, tokens, opt);
    if (show) std::fputc('\n', stderr);
    if (!r.is_ok()) return report_error("perplexity", r.status());
    results.push_back(std::move(*r));
    ubatches.push_back(opt.ubatch);
  }
  if (a.json) {
    JsonWriter w;
    w.begin_object().key("text").value(a.file == "-" ? std::string("stdin") : a.file);
    w.key("text_tokens").value(static_cast<uint64_t>(tokens.size())).key("n_tokens").value(max_tokens);
    w.key("segment").value(segment).key("threads").value(int64_t{a.threads}).key("policies").begin_array();
    for (size_t k = 0; k < results.size(); ++k) {
      const eval::StreamResult& r = results[k];
      w.begin_object().key("policy").value(r.policy).key("ubatch").value(ubatches[k]).key("segments").begin_array();
      for (const eval::StreamSegment& s : r.segments) {
        w.begin_object().key("begin").value(s.begin).key("end").value(s.end).key("ppl").value(s.ppl);
        w.key("tok_s").value(s.tok_s).key("rss_mb").value(mb(s.rss_bytes)).key("peak_rss_mb").value(mb(s.peak_rss_bytes));
        w.end_object();
      }
      w.end_array().key("ppl").value(r.ppl).key("n_scored").value(r.n_scored).key("seconds").value(r.seconds);
      w.key("tok_s").value(r.tok_s).key("peak_rss_mb").value(mb(r.peak_rss_bytes)).key("stopped");
      if (r.stopped.empty()) {
        w.null();
      } else {
        w.value(r.stopped);
      }
      w.key("stopped_at");
      if (r.stopped_at < 0) {
        w.null();
      } else {
        w.value(r.stopped_at);
      }
      w.end_object();
    }
    w.end_array().end_object();
    std::printf("%s\n", w.str().c_str());
  } else {
    for (size_t k = 0; k < results.size(); ++k) {
      const eval::StreamResult& r = results[k];
      std::printf("%s%s (ubatch %lld)\n", k ? "\n" : "", r.policy.c_str(), static_cast<long long>(ubatches[k]));
      std::printf("  %-24s %10s %12s %9s\n", "positions", "PPL", "tok/s", "RSS MB");
      for (const eval::StreamSegment& s : r.segments) {
        const std::string range = "[" + std::to_string(s.begin) + ", " + std::to_string(s.end) + ")";
        std::printf("  %-24s %10.4f %12.1f %9.1f\n", range.c_str(), s.ppl, s.tok_s, mb(s.rss_bytes));
      }
      std::printf("  total: PPL %.4f over %lld tokens, %.1f s, %.1f tok/s, peak RSS %.1f MB\n", r.ppl,
                  static_cast<long long>(r.n_scored), r.seconds, r.tok_s, mb(r.peak_rss_bytes));
      if (!r.stopped.empty())
        std::printf("  stopped at position %lld: %s\n", static_cast<long long>(r.stopped_at), r.stopped.c_str());
    }
  }
  std::fflush(stdout);
  if (!a.plot.empty()) {
    // PPL of each segment at the segment's middle position, one line per policy.
    eval::LinePlot plot;
    plot.title = "streaming perplexity: " + (a.file == "-" ? std::string("stdin") : a.file) + ", segments of " +
                 std::to_string(segment);
    plot.x_label = "stream position (tokens)";
    plot.y_label = "PPL of the segment";
    for (const eval::StreamResult& r : results) {
      eval::Series s;
      s.label = r.stopped.empty() ? r.policy : r.policy + " (stopped at " + std::to_string(r.stopped_at) + ")";
      for (const eval::StreamSegment& g : r.segments) {
        s.x.push_back(0.5 * static_cast<double>(g.begin + g.end));
        s.y.push_back(g.ppl);
      }
      plot.series.push_back(std::move(s));
    }
    if (Status st = eval::write_plot(a.plot, plot); !st.is_ok()) return report_error("perplexity", st);
  }
  return kExitOk;
}

}  // namespace

int perplexity_main(int argc, char** argv) {
  std::string model_path, file, plot;
  std::vector<std::string> policies;
  int64_t ctx = 512, ubatch = kDefaultUbatch, segment = 0, max_tokens = 0, threads = 1;
  bool json = false, quiet = false, stream = false;
  ArgParser p("perplexity",
              "-m MODEL -f FILE [--ctx C] [--ubatch N] [--kv-policy SPEC] [--threads N] [--json]\n"
              "       chunkwise perplexity --stream -m MODEL -f FILE [--kv-policy SPEC]... [--segment N]\n"
              "       [--max-tokens N] [--ubatch N] [--threads N] [--json] [--plot FILE.svg|.png]",
              "Perplexity of a text with llama.cpp's method: the text is tokenized (BOS per the model), cut\n"
              "into windows of C tokens, each evaluated from an empty cache with BOS first, and the second\n"
              "half of each window scored. Prints PPL = x.xxxx (± its standard error).\n"
              "\n"
              "With --stream, the text is one sequence that never restarts: its tokens (BOS per the model)\n"
              "are repeated cyclically up to --max-tokens and fed through each --kv-policy in turn (the option\n"
              "may be repeated; default full), in micro-batches, and every token after the first is scored\n"
              "from the logits before it. Prints per segment of --segment positions its PPL, tok/s and the\n"
              "process's resident memory, then totals (PPL, tokens, seconds, tok/s, peak RSS). A policy that\n"
              "acts (sink_window, window) runs in constant memory however long the stream; full keeps every\n"
              "key and stops at the model's training context (reported, not an error). -f - reads stdin.");
  p.option("-m,--model", &model_path, "MODEL", "GGUF model file");
  p.option("-f,--file", &file, "FILE", "text file to score ('-': standard input)");
  p.option("-c,--ctx", &ctx, "C",
           "window size in tokens (even, default min(512, training context); more than the model's\n"
           "training context is refused; not with --stream)", 4, int64_t{1} << 20);
  p.option("-b,--ubatch", &ubatch, "N",
           "tokens per forward call (default 512; under a policy that acts, shrunk so that the policy's\n"
           "slots + N stay within the training context)", 1, int64_t{1} << 20);
  p.option("--kv-policy", &policies, "SPEC",
           "KV policy (supported: " + kv::supported_kv_policies() +
               "; default full);\n"
               "sink_window / window lift the training-context limit on --ctx; with --stream, may be\n"
               "repeated: each policy runs over the same stream in turn");
  p.option("-t,--threads", &threads, "N", "threads of the forward pass (default 1)", 1, 4096);
  p.flag("--stream", &stream, "streaming mode (see above)");
  p.option("--segment", &segment, "N",
           "with --stream: positions per reported segment (default: a 32nd of the stream rounded up to\n"
           "a multiple of 1024, at least 1024)", 1, int64_t{1} << 40);
  p.option("--max-tokens", &max_tokens, "N",
           "with --stream: the stream's length in tokens (default: the text's own length; a larger value\n"
           "repeats the text, a smaller one takes its beginning)", 2, int64_t{1} << 40);
  p.option("--plot", &plot, "FILE",
           "with --stream: also draw each segment's PPL against its position, one line per policy\n"
           "(FILE.svg or FILE.png)");
  p.flag("--json", &json, "print one JSON object");
  p.flag("-q,--quiet", &quiet, "no progress on stderr");
  if (Status s = p.parse(argc, argv); !s.is_ok()) return report_error("perplexity", s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }
  if (model_path.empty() || file.empty())
    return report_error("perplexity", invalid_argument("-m MODEL and -f FILE are required (see --help)"));
  const std::string kv_policy = policies.empty() ? std::string() : policies.back();
  if (!stream) {
    if (policies.size() > 1)
      return report_error("perplexity", invalid_argument("--kv-policy may be repeated only with --stream"));
    for (const char* opt : {"--segment", "--max-tokens", "--plot"})
      if (p.given(opt)) return report_error("perplexity", invalid_argument(std::string(opt) + " applies only to --stream"));
  } else if (p.given("--ctx")) {
    return report_error("perplexity", invalid_argument("--ctx does not apply to --stream"));
  }
  // A bad spec is refused before the model loads.
  for (const std::string& spec : policies)
    if (auto pol = runtime::make_acting_policy(spec); !pol.is_ok()) return report_error("perplexity", pol.status());
  const int n_threads = capped_threads_flag("perplexity", "--threads", threads);
  auto text = read_input_file(file, /*dash_is_stdin=*/true);
  if (!text.is_ok()) return report_error("perplexity", text.status());
  auto model = model::Model::load(model_path);
  if (!model.is_ok()) return report_error("perplexity", model.status());
  auto tok = tok::Tokenizer::from_gguf((*model)->file());
  if (!tok.is_ok()) return report_error("perplexity", tok.status());
  const std::vector<int32_t> tokens = (*tok)->encode(*text, /*add_special=*/true, /*parse_special=*/false);

  if (stream) {
    StreamArgs a;
    a.file = file;
    a.plot = plot;
    a.policies = policies.empty() ? std::vector<std::string>{"full"} : policies;
    a.ubatch = ubatch;
    a.ubatch_given = p.given("--ubatch");
    a.segment = segment;
    a.max_tokens = max_tokens;
    a.threads = n_threads;
    a.json = json;
    a.quiet = quiet;
    return stream_main(**model, tokens, a);
  }

  if (!p.given("--ubatch")) {
    auto ub = eval::default_ubatch(**model, kv_policy, ubatch);
    if (!ub.is_ok()) return report_error("perplexity", ub.status());
    ubatch = *ub;
  }
  if (!p.given("--ctx")) ctx = std::max<int64_t>(4, std::min<int64_t>(ctx, (*model)->hparams().n_ctx_train / 2 * 2));

  eval::PerplexityOptions opt;
  opt.n_ctx = ctx;
  opt.ubatch = ubatch;
  opt.kv_policy = kv_policy;
  opt.n_threads = n_threads;
  opt.bos = (*tok)->add_bos() ? (*tok)->bos() : -1;
  const bool show = !quiet && isatty(STDERR_FILENO);
  if (!quiet)
    std::fprintf(stderr, "perplexity: %zu tokens, %lld windows of %lld\n", tokens.size(),
                 static_cast<long long>(tokens.size() / static_cast<size_t>(ctx)), static_cast<long long>(ctx));
  if (show)
    opt.progress = [](int64_t done, int64_t total, double ppl) {
      std::fprintf(stderr, "\r  [%lld/%lld] PPL so far %.4f", static_cast<long long>(done), static_cast<long long>(total), ppl);
      if (done == total) std::fputc('\n', stderr);
    };
  auto r = eval::perplexity(**model, tokens, opt);
  if (!r.is_ok()) return report_error("perplexity", r.status());
  if (json) {
    JsonWriter w;
    w.begin_object().key("ppl").value(r->ppl).key("ppl_stderr").value(r->ppl_stderr);
    if (!kv_policy.empty()) w.key("kv_policy").value(kv_policy);
    w.key("n_ctx").value(ctx).key("n_tokens").value(static_cast<uint64_t>(tokens.size()));
    w.key("n_windows").value(r->n_windows).key("n_scored").value(r->n_scored).key("seconds").value(r->seconds);
    w.key("tok_s").value(static_cast<double>(r->n_windows * ctx) / r->seconds).end_object();
    std::printf("%s\n", w.str().c_str());
  } else {
    std::printf("PPL = %.4f +/- %.4f  (%lld windows of %lld, %lld tokens scored, %.1f s)\n", r->ppl, r->ppl_stderr,
                static_cast<long long>(r->n_windows), static_cast<long long>(ctx), static_cast<long long>(r->n_scored),
                r->seconds);
  }
  return kExitOk;
}

}  // namespace cw::app
