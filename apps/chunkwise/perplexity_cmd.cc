// chunkwise perplexity -m MODEL -f FILE [--ctx C] [--ubatch N] [--json]
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "args.h"
#include "base/json.h"
#include "commands.h"
#include "eval/perplexity.h"
#include "kv/policy.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace cw::app {

int perplexity_main(int argc, char** argv) {
  std::string model_path, file, kv_policy;
  int64_t ctx = 512, ubatch = 512;
  bool json = false, quiet = false;
  ArgParser p("perplexity", "-m MODEL -f FILE [--ctx C] [--ubatch N] [--kv-policy SPEC] [--json]",
              "Perplexity of a text with llama.cpp's method: the text is tokenized (BOS per the model), cut\n"
              "into windows of C tokens, each evaluated from an empty cache with BOS first, and the second\n"
              "half of each window scored. Prints PPL = x.xxxx (± its standard error).");
  p.option("-m,--model", &model_path, "MODEL", "GGUF model file");
  p.option("-f,--file", &file, "FILE", "text file to score");
  p.option("-c,--ctx", &ctx, "C",
           "window size in tokens (even, default min(512, training context); more than the model's\n"
           "training context is refused)", 4, int64_t{1} << 20);
  p.option("-b,--ubatch", &ubatch, "N", "tokens per forward call (default 512)", 1, int64_t{1} << 20);
  p.option("--kv-policy", &kv_policy, "SPEC",
           "KV policy each window runs under (supported: " + kv::supported_kv_policies() +
               "; default full);\n"
               "sink_window / window lift the training-context limit on --ctx");
  p.flag("--json", &json, "print one JSON object");
  p.flag("-q,--quiet", &quiet, "no progress on stderr");
  if (Status s = p.parse(argc, argv); !s.is_ok()) return report_error("perplexity", s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }
  if (model_path.empty() || file.empty())
    return report_error("perplexity", invalid_argument("-m MODEL and -f FILE are required (see --help)"));
  int64_t policy_slots = -1;  // the policy's max_slots(); -1: full
  if (p.given("--kv-policy")) {
    auto pol = kv::make_kv_policy(kv_policy);
    if (!pol.is_ok()) return report_error("perplexity", pol.status());
    auto st = (*pol)->make_state(16);
    if (!st.is_ok()) return report_error("perplexity", st.status());
    policy_slots = (*st)->max_slots();
  }
  auto text = read_input_file(file, /*dash_is_stdin=*/true);
  if (!text.is_ok()) return report_error("perplexity", text.status());
  auto model = model::Model::load(model_path);
  if (!model.is_ok()) return report_error("perplexity", model.status());
  auto tok = tok::Tokenizer::from_gguf((*model)->file());
  if (!tok.is_ok()) return report_error("perplexity", tok.status());
  const std::vector<int32_t> tokens = (*tok)->encode(*text, /*add_special=*/true, /*parse_special=*/false);
  // Under a policy the default micro-batch shrinks so that the window + one micro-batch stays within the
  // training context (PolicySession::create refuses more).
  if (policy_slots >= 0 && !p.given("--ubatch") && (*model)->hparams().n_ctx_train - policy_slots >= 1)
    ubatch = std::min(ubatch, (*model)->hparams().n_ctx_train - policy_slots);
  if (!p.given("--ctx")) ctx = std::max<int64_t>(4, std::min<int64_t>(ctx, (*model)->hparams().n_ctx_train / 2 * 2));

  eval::PerplexityOptions opt;
  opt.n_ctx = ctx;
  opt.ubatch = ubatch;
  opt.kv_policy = kv_policy;
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
