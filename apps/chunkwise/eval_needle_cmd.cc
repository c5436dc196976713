// chunkwise eval needle -m MODEL [--recipe passkey|kv|multi|extract] [--lengths L,...] [--depths D,...]
//                       [--needles N] [--trials N] [--kv-policy SPEC]... [--seed S] [--json] [--plot FILE]
// Needle-in-a-haystack accuracy grid (length x depth) per KV policy, on haystacks from the generator the
// model was trained on (src/eval/needle.h).
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "base/json.h"
#include "eval/needle.h"
#include "eval/plot.h"
#include "eval_commands.h"
#include "kv/policy.h"
#include "model/model.h"
#include "threads_flag.h"
#include "tokenizer/tokenizer.h"

namespace cw::app {
namespace {

constexpr const char* kCmd = "eval needle";
// "kW" lengths leave this many tokens of the window for the question, BOS and the answer.
constexpr int64_t kPromptReserve = 64;

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  size_t at = 0;
  for (;;) {
    const size_t comma = s.find(',', at);
    out.push_back(s.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    if (comma == std::string::npos) return out;
    at = comma + 1;
  }
}

// "512,1024" or multiples of the training window: "0.5W,1W,4W" = k * W - kPromptReserve tokens.
Result<std::vector<int64_t>> parse_lengths(const std::string& s, int64_t n_ctx_train) {
  std::vector<int64_t> out;
  for (const std::string& piece : split(s)) {
    const bool w = !piece.empty() && (piece.back() == 'W' || piece.back() == 'w');
    const std::string num = w ? piece.substr(0, piece.size() - 1) : piece;
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(num.c_str(), &end);
    int64_t len = 0;
    if (!num.empty() && *end == '\0' && errno == 0 && std::isfinite(v) && v > 0 && v <= (1 << 24)) {
      if (w) {
        if (n_ctx_train <= 0)
          return invalid_argument("--lengths: '" + piece + "' needs the model's training context, which it does not declare");
        len = std::llround(v * static_cast<double>(n_ctx_train)) - kPromptReserve;
      } else if (v == std::floor(v)) {
        len = static_cast<int64_t>(v);
      }
    }
    if (len < 1 || len > (int64_t{1} << 24))
      return invalid_argument("--lengths: '" + printable(piece, false) +
                              "' is not a length (tokens, 1..16777216, or a multiple of the window such as 2W)");
    out.push_back(len);
  }
  return out;
}

Result<std::vector<double>> parse_depths(const std::string& s) {
  std::vector<double> out;
  for (const std::string& piece : split(s)) {
    char* end = nullptr;
    const double v = std::strtod(piece.c_str(), &end);
    if (piece.empty() || *end != '\0' || !(v >= 0.0 && v <= 1.0))
      return invalid_argument("--depths: '" + printable(piece, false) + "' is not a depth in 0..1");
    out.push_back(v);
  }
  return out;
}

std::string depth_label(double d) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", d);
  return b;
}

}  // namespace

int eval_needle_main(int argc, char** argv) {
  std::string ask_mode;
  std::string model_path, recipe = "passkey", lengths = "0.25W,0.5W,1W", depths = "0,0.25,0.5,0.75,1", words = eval::kDefaultWordsPath,
              plot;
  std::vector<std::string> policies;
  int64_t needles = 4, trials = 10, threads = 1, jobs = 1, ubatch = 256, max_answer = 32;
  uint64_t seed = 1;
  bool json = false, quiet = false;
  ArgParser p(kCmd, "-m MODEL [options]",
              "Needle-in-a-haystack accuracy: haystacks from the generator the model was trained on (gen-data's\n"
              "recipes), the greedy answer up to the first newline, exact match. One grid (length x depth) per\n"
              "KV policy; the same haystacks for every policy. Trial t of a cell is sample t of a stream seeded by\n"
              "(--seed, length, depth), so a cell gives the same haystacks whatever else is asked.\n"
              "`full` past the training context runs with positions beyond those trained (as a user of full\n"
              "attention would); a policy such as sink_window keeps the sequence within them.\n\n"
              "--json prints {\"model\",\"recipe\",\"n_ctx_train\",\"cells\":[{\"policy\",\"length\",\"depth\",\"trials\",\n"
              "\"accuracy\",\"correct\",\"prompt_tokens\",\"seconds\",\"misses\"}],\"policies\":[{\"policy\",\"accuracy\"}]}.");
  p.option("-m,--model", &model_path, "MODEL", "GGUF model (required)");
  p.option("--recipe", &recipe, "NAME", "passkey (default), kv, multi (N needles, one asked), extract or quote");
  p.option("--lengths", &lengths, "L,...",
           "document lengths in tokens, or multiples of the training window W such as 0.5W,2W (k*W - 64 tokens, "
           "leaving room for the question); default 0.25W,0.5W,1W");
  p.option("--depths", &depths, "D,...", "depths of the asked needle in 0..1 (default 0,0.25,0.5,0.75,1)");
  p.option("--needles", &needles, "N", "facts per document for kv and multi (default 4)", 1, 64);
  p.option("--trials", &trials, "N", "haystacks per cell (default 10)", 1, 1000000);
  p.option("--kv-policy", &policies, "SPEC", "KV policy (repeatable; default full): " + kv::supported_kv_policies());
  p.option("--seed", &seed, "S", "haystack seed (default 1)");
  p.option("--max-answer-tokens", &max_answer, "N", "greedy steps at most (default 32)", 1, 4096);
  p.option("--ubatch", &ubatch, "N", "prompt tokens per forward pass (default 256)", 1, 1 << 20);
  p.option("-t,--threads", &threads, "N", "threads of each job (default 1)", 1, 1024);
  p.option("-j,--jobs", &jobs, "N", "haystacks of a cell evaluated at once, each with its own KV cache (default 1; "
                                     "jobs x threads is capped at the cores)", 1, 1024);
  p.option("--words", &words, "FILE", std::string("word list (default ") + eval::kDefaultWordsPath + ", Debian package " +
                                          eval::kWordsPackage + ")");
  p.option("--ask", &ask_mode, "MODE",
           "answer through `ask` instead of one prompt: retrieval (BM25 chunks that fit the window) or attention\n"
           "(every chunk through the policy; chunk_select when it is full), on an in-memory index of each haystack");
  p.option("--plot", &plot, "FILE.svg|png", "write the heatmaps (one panel per policy)");
  p.flag("--json", &json, "print one JSON object");
  p.flag("-q,--quiet", &quiet, "no progress on stderr");
  if (Status s = p.parse(argc, argv, 3); !s.is_ok()) return report_error(kCmd, s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }
  if (model_path.empty()) return report_error(kCmd, invalid_argument("-m MODEL is required"));
  if (policies.empty()) policies.push_back("full");
  if (!plot.empty()) {
    const std::string ext = plot.size() >= 4 ? plot.substr(plot.size() - 4) : "";
    if (ext != ".svg" && ext != ".png" && ext != ".SVG" && ext != ".PNG")
      return report_error(kCmd, invalid_argument("plot file must end in .svg or .png"));
  }

  eval::NeedleOptions o;
  auto rc = eval::parse_recipe(recipe);
  if (!rc.is_ok()) return report_error(kCmd, rc.status());
  o.recipe = *rc;
  auto ds = parse_depths(depths);
  if (!ds.is_ok()) return report_error(kCmd, ds.status());
  o.depths = std::move(ds).value();
  o.needles = static_cast<int>(needles);
  o.trials = static_cast<int>(trials);
  o.seed = seed;
  o.policies = policies;
  o.max_answer_tokens = max_answer;
  o.ubatch = ubatch;
  o.n_threads = capped_threads_flag("eval needle", "--threads", threads);
  // Each job holds its own KV cache and runs o.n_threads threads: jobs x threads is capped at the cores.
  o.jobs = capped_threads_flag("eval needle", "--jobs", jobs);
  if (static_cast<int64_t>(o.jobs) * o.n_threads > cap_threads(int64_t{1} << 20)) {
    o.jobs = std::max(1, cap_threads(int64_t{1} << 20) / o.n_threads);
    std::fprintf(stderr, "chunkwise eval needle: --jobs capped at %d (x %d threads = the hardware's concurrency)\n",
                 o.jobs, o.n_threads);
  }
  o.ask_mode = ask_mode;
  // Everything but the lengths (which may need the model's window) is checked before the model loads.
  o.lengths = {1};
  if (Status s = eval::validate(o); !s.is_ok()) return report_error(kCmd, s);

  auto wl = eval::WordList::load(words);
  if (!wl.is_ok()) return report_error(kCmd, wl.status());
  auto model = model::Model::load(model_path);
  if (!model.is_ok()) return report_error(kCmd, model.status());
  const model::Model& m = **model;
  auto tok = tok::Tokenizer::from_gguf(m.file());
  if (!tok.is_ok()) return report_error(kCmd, tok.status());
  auto ls = parse_lengths(lengths, m.hparams().n_ctx_train);
  if (!ls.is_ok()) return report_error(kCmd, ls.status());
  o.lengths = std::move(ls).value();

  const bool show = !quiet && isatty(STDERR_FILENO);
  if (!quiet)
    std::fprintf(stderr, "eval needle: %s, %zu lengths x %zu depths x %lld trials x %zu policies (W = %lld)\n",
                 recipe.c_str(), o.lengths.size(), o.depths.size(), static_cast<long long>(trials), policies.size(),
                 static_cast<long long>(m.hparams().n_ctx_train));
  if (show) {
    auto last = std::make_shared<std::chrono::steady_clock::time_point>();
    o.progress = [last](int64_t done, int64_t total) {
      const auto now = std::chrono::steady_clock::now();
      if (done < total && now - *last < std::chrono::milliseconds(200)) return;
      *last = now;
      std::fprintf(stderr, "\r  %lld/%lld trials", static_cast<long long>(done), static_cast<long long>(total));
    };
  }
  const eval::HaystackGenerator gen(*wl);
  auto r = eval::run_needle(m, **tok, gen, o);
  if (show) std::fputc('\n', stderr);
  if (!r.is_ok()) return report_error(kCmd, r.status());
  const eval::NeedleReport& rep = *r;

  // Per policy: the mean accuracy over its cells.
  std::vector<std::pair<std::string, double>> per_policy;
  for (const eval::NeedleCell& c : rep.cells) {
    if (per_policy.empty() || per_policy.back().first != c.policy) per_policy.emplace_back(c.policy, 0.0);
    per_policy.back().second += c.accuracy / static_cast<double>(o.lengths.size() * o.depths.size());
  }

  if (json) {
    JsonWriter w;
    w.begin_object().key("model").value(model_path).key("recipe").value(rep.recipe);
    w.key("n_ctx_train").value(rep.n_ctx_train).key("seed").value(seed).key("needles").value(needles);
    w.key("trials").value(trials).key("seconds").value(rep.seconds).key("cells").begin_array();
    for (const eval::NeedleCell& c : rep.cells) {
      w.begin_object().key("policy").value(c.policy).key("length").value(c.length).key("depth").value(c.depth);
      w.key("trials").value(int64_t{c.trials}).key("accuracy").value(c.accuracy).key("correct").value(int64_t{c.correct});
      w.key("prompt_tokens").value(c.mean_prompt_tokens).key("seconds").value(c.seconds).key("misses").begin_array();
      for (const eval::NeedleMiss& x : c.misses)
        w.begin_object().key("index").value(x.index).key("expected").value(x.expected).key("got").value(x.got).end_object();
      w.end_array().end_object();
    }
    w.end_array().key("policies").begin_array();
    for (const auto& [pol, acc] : per_policy) w.begin_object().key("policy").value(pol).key("accuracy").value(acc).end_object();
    w.end_array().end_object();
    std::printf("%s\n", w.str().c_str());
  } else {
    std::printf("recipe %s, W = %lld, %lld trials per cell, %.1f s\n", rep.recipe.c_str(),
                static_cast<long long>(rep.n_ctx_train), static_cast<long long>(trials), rep.seconds);
    size_t k = 0;
    for (const auto& [pol, acc] : per_policy) {
      std::printf("\n%s: mean accuracy %.1f%%\n  %-8s", pol.c_str(), 100.0 * acc, "depth");
      for (int64_t l : o.lengths) std::printf(" %8lld", static_cast<long long>(l));
      std::printf("   (document tokens)\n");
      for (size_t di = 0; di < o.depths.size(); ++di) {
        std::printf("  %-8s", depth_label(o.depths[di]).c_str());
        for (size_t li = 0; li < o.lengths.size(); ++li)
          std::printf(" %7.1f%%", 100.0 * rep.cells[k + li * o.depths.size() + di].accuracy);
        std::printf("\n");
      }
      for (size_t i = 0; i < o.lengths.size() * o.depths.size(); ++i)
        for (const eval::NeedleMiss& x : rep.cells[k + i].misses)
          if (&x == &rep.cells[k + i].misses.front())
            std::printf("  e.g. length %lld depth %s trial %lld: expected '%s', got '%s'\n",
                        static_cast<long long>(rep.cells[k + i].length), depth_label(rep.cells[k + i].depth).c_str(),
                        static_cast<long long>(x.index), printable(x.expected, false).c_str(),
                        printable(x.got, false).c_str());
      k += o.lengths.size() * o.depths.size();
    }
  }
  std::fflush(stdout);

  if (!plot.empty()) {
    std::vector<eval::Heatmap> maps;
    size_t k = 0;
    for (const auto& [pol, acc] : per_policy) {
      eval::Heatmap h;
      char title[256];
      std::snprintf(title, sizeof title, "%s (mean %.1f%%)", pol.c_str(), 100.0 * acc);
      h.title = title;
      h.x_label = "document tokens";
      h.y_label = "needle depth";
      for (int64_t l : o.lengths) h.x_ticks.push_back(std::to_string(l));
      for (double d : o.depths) h.y_ticks.push_back(depth_label(d));
      h.values.resize(o.depths.size() * o.lengths.size());
      for (size_t li = 0; li < o.lengths.size(); ++li)
        for (size_t di = 0; di < o.depths.size(); ++di)
          h.values[di * o.lengths.size() + li] = rep.cells[k + li * o.depths.size() + di].accuracy;
      maps.push_back(std::move(h));
      k += o.lengths.size() * o.depths.size();
    }
    if (Status s = eval::write_plot(plot, maps); !s.is_ok()) return report_error(kCmd, s);
    if (!quiet) std::fprintf(stderr, "eval needle: heatmap written to %s\n", plot.c_str());
  }
  return kExitOk;
}

}  // namespace cw::app
