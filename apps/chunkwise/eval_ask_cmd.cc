// chunkwise eval ask -m MODEL --corpora DIR --questions CSV [--chunker SPEC] [-k K] [--limit N] [--json]
// Answers on real documents: the share of `ask` answers inside a reference passage, beside the best
// sentence of the top BM25 chunk (src/eval/answer_eval.h).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "args.h"
#include "base/json.h"
#include "eval/answer_eval.h"
#include "eval/chunking_eval.h"
#include "eval_commands.h"
#include "model/model.h"
#include "threads_flag.h"
#include "tokenizer/tokenizer.h"

namespace cw::app {

int eval_ask_main(int argc, char** argv) {
  constexpr const char* kCmd = "eval ask";
  std::string model_path, corpora, questions, chunker, mode = "retrieval", policy;
  int64_t candidates = 20, limit = 0, threads = 1, max_answer = 48;
  bool json = false, quiet = false, free_answer = false;
  ArgParser p(kCmd, "-m MODEL --corpora DIR --questions CSV [options]",
              "Puts every question of a Chroma-format dataset (as `eval chunking` reads it) to `chunkwise ask` over one\n"
              "BM25 index of all its corpora. An answer counts when it is a verbatim span of the chunks the model read\n"
              "and that span lies inside one of the question's reference passages (by offsets). Beside it, a no-model\n"
              "baseline scored the same way: the sentence of the top BM25 chunk with the most question words.\n"
              "Mean answer lengths are shown for both (a whole sentence lands inside a passage more easily).\n\n"
              "--json prints {\"questions\",\"model_inside\",\"baseline_inside\",\"model_in_sources\",\"model_mean_chars\",\n"
              "\"baseline_mean_chars\",\"seconds\",\"records\":[{\"line\",\"corpus\",\"question\",\"answer\",\"answer_inside\",\n"
              "\"baseline\",\"baseline_inside\"}]} (shares in [0, 1]).");
  p.option("-m,--model", &model_path, "MODEL", "GGUF model (required)");
  p.option("--corpora", &corpora, "DIR", "folder of the corpora (<corpus_id>.md or <corpus_id>)");
  p.option("--questions", &questions, "CSV", "Chroma's questions CSV (question,references,corpus_id)");
  p.option("--chunker", &chunker, "SPEC", "chunker (default: ask's)");
  p.option("-k,--candidates", &candidates, "K", "ranked chunks considered for the window (default 20)", 1, 10000);
  p.option("--max-answer-tokens", &max_answer, "N", "answer length limit (default 48)", 1, 4096);
  p.option("--mode", &mode, "MODE", "retrieval (default) or attention: ask --mode (every chunk through a chunk-selective policy)");
  p.option("--kv-policy", &policy, "SPEC", "KV policy of the answering model (attention mode: default chunk_select)");
  p.option("--limit", &limit, "N", "only the first N questions (default all)", 0, int64_t{1} << 40);
  p.option("-t,--threads", &threads, "N", "threads (default 1)", 1, 1024);
  p.flag("--free-answer", &free_answer, "let the model write freely (default: the answer is a verbatim quote of the chunks it read)");
  p.flag("--json", &json, "print one JSON object");
  p.flag("-q,--quiet", &quiet, "no progress on stderr");
  if (Status s = p.parse(argc, argv, 3); !s.is_ok()) return report_error(kCmd, s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }
  if (model_path.empty() || corpora.empty() || questions.empty())
    return report_error(kCmd, invalid_argument("-m MODEL, --corpora DIR and --questions CSV are required"));
  auto data = eval::load_dataset(corpora, questions);
  if (!data.is_ok()) return report_error(kCmd, data.status());
  auto model = model::Model::load(model_path);
  if (!model.is_ok()) return report_error(kCmd, model.status());
  auto tok = tok::Tokenizer::from_gguf((*model)->file());
  if (!tok.is_ok()) return report_error(kCmd, tok.status());

  eval::AnswerEvalOptions o;
  o.chunker = chunker;
  o.limit = limit;
  o.ask.candidates = candidates;
  o.ask.max_answer_tokens = max_answer;
  o.ask.quote = !free_answer;
  o.ask.kv_policy = policy;
  if (mode == "attention") o.ask.mode = pipelines::AskMode::kAttention;
  else if (mode != "retrieval")
    return report_error(kCmd, invalid_argument("--mode must be retrieval or attention, got '" + mode + "'"));
  o.ask.n_threads = capped_threads_flag(kCmd, "--threads", threads);
  const bool show = !quiet && isatty(STDERR_FILENO);
  if (show)
    o.progress = [](int64_t done, int64_t total) {
      std::fprintf(stderr, "\r  %lld/%lld questions", static_cast<long long>(done), static_cast<long long>(total));
    };
  auto r = eval::evaluate_answers(**model, **tok, *data, o);
  if (show) std::fputc('\n', stderr);
  if (!r.is_ok()) return report_error(kCmd, r.status());
  if (json) {
    JsonWriter w;
    w.begin_object().key("model").value(model_path).key("questions").value(r->questions);
    w.key("model_inside").value(r->model_inside).key("baseline_inside").value(r->baseline_inside);
    w.key("model_in_sources").value(r->model_in_sources).key("model_mean_chars").value(r->model_mean_chars);
    w.key("baseline_mean_chars").value(r->baseline_mean_chars).key("seconds").value(r->seconds).key("records").begin_array();
    for (const eval::AnswerRecord& a : r->records) {
      w.begin_object().key("line").value(a.line).key("corpus").value(a.corpus_id).key("question").value(a.question);
      w.key("answer").value(a.answer).key("answer_inside").value(a.answer_inside).key("baseline").value(a.baseline);
      w.key("baseline_inside").value(a.baseline_inside).end_object();
    }
    w.end_array().end_object();
    std::printf("%s\n", w.str().c_str());
    return kExitOk;
  }
  std::printf("%lld questions, %.1f s\n", static_cast<long long>(r->questions), r->seconds);
  std::printf("  %-44s %8s %12s\n", "", "inside", "mean chars");
  std::printf("  %-44s %7.1f%% %12.1f\n", "model (ask)", 100.0 * r->model_inside, r->model_mean_chars);
  std::printf("  %-44s %7.1f%% %12.1f\n", "baseline (best sentence of the top BM25 chunk)", 100.0 * r->baseline_inside,
              r->baseline_mean_chars);
  std::printf("  model answers that are spans of their sources: %.1f%%\n", 100.0 * r->model_in_sources);
  return kExitOk;
}

}  // namespace cw::app
