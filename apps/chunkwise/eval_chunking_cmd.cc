// chunkwise eval chunking --corpora DIR --questions CSV --chunker SPEC [--retriever bm25|dense|hybrid]
//                         [--embed-model GGUF|hash] [--select SPEC] [-k K] [--sweep SWEEP] [--json] [--plot FILE]
// Chroma's chunking evaluation (src/eval/chunking_eval.h): argument parsing and printing only.
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "base/json.h"
#include "eval/chunking_eval.h"
#include "eval/chunking_ranker.h"
#include "eval/plot.h"
#include "eval_commands.h"
#include "text/chunker.h"
#include "text/embedder.h"
#include "text/embedder_model.h"

namespace cw::app {
namespace {

constexpr const char* kCmd = "eval chunking";

constexpr const char* kDescription =
    "Chroma's chunking evaluation, built in: every corpus named by the questions is chunked with --chunker,\n"
    "all chunks go into one in-memory index, each question retrieves k chunks (--retriever, then --select),\n"
    "and the retrieved code-point ranges are scored against the question's reference excerpts exactly as\n"
    "Chroma's evaluation code scores them (docs/chunking-metrics.md): recall, precision, Precision-Omega\n"
    "(the precision of the best possible retrieval of whole chunks) and IoU, per question, averaged over all\n"
    "questions and per corpus, in percent.\n\n"
    "input: --questions is Chroma's CSV (question,references,corpus_id; references a JSON list of\n"
    "{content,start_index,end_index} in code points); corpus <id> is read from DIR/<id>.md (or DIR/<id>).\n\n"
    "--sweep 'KEY=V1,V2,...;KEY2=...' evaluates every combination (the first key varies slowest), each\n"
    "applied to --chunker's spec: KEY is a chunker spec key (size, overlap, a method's own) or 'method';\n"
    "an overlap value may end in % of the setting's size, e.g. --sweep 'size=200,400,800;overlap=0,50%'.\n"
    "--plot draws recall and IoU against the first sweep key (needs --sweep).\n\n"
    "--select: topk:k=K (default topk:k=<k>), gradient[:min=M,max=K], budget:tokens=T[,candidates=N],\n"
    "neighbors:n=N[,base=SPEC]; the index is asked for max(k, what the selector wants) hits.\n"
    "--embed-model: a GGUF embedding model (bert family with the pooling it declares, or a decoder\n"
    "mean-pooled) or 'hash' (a deterministic bag-of-words hashing embedder: a baseline, not a semantic\n"
    "model); needed by dense and hybrid.\n\n"
    "--json prints one object: chunker, retriever, select, k, n_questions, n_chunks, mean_chunk_tokens,\n"
    "mean_chunk_chars, mean_retrieved, recall, precision, precision_omega, iou (percent) and \"corpora\" (the\n"
    "same scores per corpus); with --sweep, {\"sweep\", \"settings\": [one such object per setting, with\n"
    "\"setting\": {key: value}]}.\n\n"
    "exit codes: 0 ok, 2 bad flags or input (one line naming the file and line), 1 other failures.";

struct Args {
  std::string corpora, questions, chunker, retriever = "bm25", embed_model, select, sweep, plot;
  int64_t k = 5, embed_ctx = 512, threads = 1;
  bool json = false;
};

void write_scores(JsonWriter& w, const eval::ChunkingScores& s) {
  w.key("recall").value(s.recall).key("precision").value(s.precision);
  w.key("precision_omega").value(s.precision_omega).key("iou").value(s.iou);
}

void write_result(JsonWriter& w, const Args& a, const eval::ChunkingResult& r, const eval::SweepSetting* setting) {
  w.begin_object();
  if (setting != nullptr) {
    w.key("setting").begin_object();
    for (const auto& [k, v] : setting->values) w.key(k).value(v);
    w.end_object();
  }
  w.key("chunker").value(r.chunker_spec).key("retriever").value(a.retriever);
  w.key("select").value(a.select.empty() ? "topk:k=" + std::to_string(a.k) : a.select).key("k").value(a.k);
  w.key("n_questions").value(r.n_questions).key("n_chunks").value(r.n_chunks);
  w.key("mean_chunk_tokens").value(r.mean_chunk_tokens).key("mean_chunk_chars").value(r.mean_chunk_chars);
  w.key("mean_retrieved").value(r.mean_retrieved);
  write_scores(w, r.overall);
  w.key("corpora").begin_array();
  for (const eval::CorpusResult& c : r.per_corpus) {
    w.begin_object().key("corpus_id").value(c.corpus_id).key("n_questions").value(c.n_questions);
    w.key("n_chunks").value(c.n_chunks);
    write_scores(w, c.scores);
    w.end_object();
  }
  w.end_array().end_object();
}

void print_scores_row(const std::string& name, int64_t questions, int64_t chunks, const eval::ChunkingScores& s) {
  std::printf("  %-22s %9lld %7lld %8.2f %10.2f %11.2f %7.2f\n", name.c_str(), static_cast<long long>(questions),
              static_cast<long long>(chunks), s.recall, s.precision, s.precision_omega, s.iou);
}

void print_result(const Args& a, const eval::ChunkingResult& r) {
  std::printf("chunker %s, retriever %s, select %s, k %lld\n", r.chunker_spec.c_str(), a.retriever.c_str(),
              (a.select.empty() ? "topk:k=" + std::to_string(a.k) : a.select).c_str(), static_cast<long long>(a.k));
  std::printf("  mean chunk: %.1f units, %.1f chars; mean chunks retrieved: %.2f\n", r.mean_chunk_tokens,
              r.mean_chunk_chars, r.mean_retrieved);
  std::printf("  %-22s %9s %7s %8s %10s %11s %7s\n", "corpus", "questions", "chunks", "recall", "precision",
              "precision_Ω", "IoU");
  for (const eval::CorpusResult& c : r.per_corpus) print_scores_row(c.corpus_id, c.n_questions, c.n_chunks, c.scores);
  print_scores_row("all", r.n_questions, r.n_chunks, r.overall);
}

std::string setting_label(const eval::SweepSetting& s) {
  std::string out;
  for (const auto& [k, v] : s.values) out += (out.empty() ? "" : " ") + k + "=" + v;
  return out;
}

// Recall and IoU against the first sweep key: one pair of lines per combination of the other keys.
Status write_sweep_plot(const Args& a, const std::vector<eval::SweepSetting>& settings,
                        const std::vector<eval::ChunkingResult>& results) {
  const std::string x_key = settings.front().values.front().first;
  bool numeric = true;
  for (const eval::SweepSetting& s : settings) {
    char* end = nullptr;
    const std::string& v = s.values.front().second;
    (void)std::strtod(v.c_str(), &end);
    numeric &= !v.empty() && *end == '\0';
  }
  eval::LinePlot plot;
  plot.title = "chunking evaluation: " + a.chunker.substr(0, a.chunker.find(':')) + ", " + a.retriever + ", " +
               (a.select.empty() ? "topk:k=" + std::to_string(a.k) : a.select + ", k=" + std::to_string(a.k));
  plot.x_label = numeric ? x_key : x_key + " (setting number)";
  plot.y_label = "percent";
  std::vector<std::string> groups;  // the other keys' values
  std::vector<size_t> group_of(settings.size());
  for (size_t i = 0; i < settings.size(); ++i) {
    std::string g;
    for (size_t k = 1; k < settings[i].values.size(); ++k)
      g += (g.empty() ? "" : " ") + settings[i].values[k].first + "=" + settings[i].values[k].second;
    size_t gi = 0;
    while (gi < groups.size() && groups[gi] != g) ++gi;
    if (gi == groups.size()) groups.push_back(g);
    group_of[i] = gi;
  }
  for (const char* metric : {"recall", "IoU"}) {
    for (size_t gi = 0; gi < groups.size(); ++gi) {
      eval::Series s;
      s.label = std::string(metric) + (groups[gi].empty() ? "" : " (" + groups[gi] + ")");
      size_t n = 0;
      for (size_t i = 0; i < settings.size(); ++i) {
        if (group_of[i] != gi) continue;
        s.x.push_back(numeric ? std::strtod(settings[i].values.front().second.c_str(), nullptr) : static_cast<double>(n));
        s.y.push_back(metric[0] == 'r' ? results[i].overall.recall : results[i].overall.iou);
        ++n;
      }
      plot.series.push_back(std::move(s));
    }
  }
  return eval::write_plot(a.plot, plot);
}

}  // namespace

int eval_chunking_main(int argc, char** argv) {
  Args a;
  ArgParser p(kCmd,
              "--corpora DIR --questions CSV --chunker SPEC [--retriever bm25|dense|hybrid] [--embed-model GGUF|hash]\n"
              "       [--select SPEC] [-k K] [--sweep 'KEY=V1,V2;KEY2=...'] [--json] [--plot FILE.svg|.png]",
              kDescription);
  p.option("--corpora", &a.corpora, "DIR", "folder of the corpora (<corpus_id>.md)");
  p.option("--questions", &a.questions, "CSV", "questions with reference excerpts (Chroma's CSV)");
  p.option("--chunker", &a.chunker, "SPEC", "chunker spec, e.g. recursive:size=200,tokenizer=VOCAB.gguf");
  p.option("--retriever", &a.retriever, "R", "bm25 (default) | dense | hybrid");
  p.option("--embed-model", &a.embed_model, "GGUF", "embedding model for dense / hybrid, or 'hash'");
  p.option("--embed-ctx", &a.embed_ctx, "N", "tokens per forward window of the embedding model (default 512)", 1,
           int64_t{1} << 20);
  p.option("-t,--threads", &a.threads, "N", "forward-pass threads of the embedding model (default 1)", 1, 1024);
  p.option("--select", &a.select, "SPEC", "chunk selector (default topk:k=<k>)");
  p.option("-k", &a.k, "K", "chunks retrieved per question (default 5)", 1, 10000);
  p.option("--sweep", &a.sweep, "SWEEP", "evaluate every combination of chunker spec values (see above)");
  p.flag("--json", &a.json, "print one JSON object");
  p.option("--plot", &a.plot, "FILE", "with --sweep: recall and IoU against the first sweep key (.svg or .png)");
  if (Status s = p.parse(argc, argv, 3); !s.is_ok()) return report_error(kCmd, s);
  if (p.help_requested()) {
    std::printf("%s\n", p.help().c_str());
    return kExitOk;
  }
  for (auto [value, flag] : {std::pair{&a.corpora, "--corpora"}, std::pair{&a.questions, "--questions"}, std::pair{&a.chunker, "--chunker"}}) {
    if (value->empty()) return report_error(kCmd, invalid_argument(std::string(flag) + " is required"));
  }
  if (!a.plot.empty() && a.sweep.empty()) {
    return report_error(kCmd, invalid_argument("--plot needs --sweep (it draws the scores against a swept key)"));
  }
  if (a.retriever == "bm25" && !a.embed_model.empty()) {
    return report_error(kCmd, invalid_argument("--embed-model is used by --retriever dense or hybrid only"));
  }

  // Every setting's spec is validated before any work.
  std::vector<eval::SweepSetting> settings;
  if (a.sweep.empty()) {
    settings.push_back({a.chunker, {}});
  } else {
    auto s = eval::expand_sweep(a.chunker, a.sweep);
    if (!s.is_ok()) return report_error(kCmd, s.status());
    settings = std::move(s).value();
  }
  std::vector<std::unique_ptr<text::Chunker>> chunkers;
  for (const eval::SweepSetting& s : settings) {
    auto c = text::make_chunker(s.spec);
    if (!c.is_ok()) return report_error(kCmd, Status(c.status().code(), "--chunker " + s.spec + ": " + c.status().message()));
    chunkers.push_back(std::move(c).value());
  }

  eval::StoreRankerOptions ro;
  ro.retriever = a.retriever;
  ro.k = a.k;
  ro.select = a.select;
  if (a.embed_model == "hash") {
    ro.embedder = std::make_shared<text::HashEmbedder>();
  } else if (!a.embed_model.empty()) {
    text::ModelEmbedderOptions eo;
    eo.ctx = a.embed_ctx;
    eo.threads = static_cast<int>(a.threads);
    auto e = text::ModelEmbedder::load(a.embed_model, eo);
    if (!e.is_ok()) return report_error(kCmd, e.status());
    ro.embedder = std::shared_ptr<const text::Embedder>(std::move(e).value());
  }
  auto factory = eval::make_store_ranker(ro);
  if (!factory.is_ok()) return report_error(kCmd, factory.status());
  if (!a.plot.empty()) {
    // Fail on a bad plot name before the work, not after it.
    const std::string& f = a.plot;
    auto ends = [&f](const char* ext) {
      const std::string e(ext);
      if (f.size() < e.size()) return false;
      for (size_t i = 0; i < e.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(f[f.size() - e.size() + i])) != e[i]) return false;
      return true;
    };
    if (!ends(".svg") && !ends(".png")) return report_error(kCmd, invalid_argument("plot file must end in .svg or .png"));
  }

  auto data = eval::load_dataset(a.corpora, a.questions);
  if (!data.is_ok()) return report_error(kCmd, data.status());

  const bool progress = !a.json && settings.size() > 1 && ::isatty(STDERR_FILENO) == 1;
  std::vector<eval::ChunkingResult> results;
  for (size_t i = 0; i < settings.size(); ++i) {
    if (progress) std::fprintf(stderr, "[%zu/%zu] %s\n", i + 1, settings.size(), settings[i].spec.c_str());
    auto r = eval::evaluate_chunking(*data, *chunkers[i], settings[i].spec, *factory);
    if (!r.is_ok()) return report_error(kCmd, r.status());
    results.push_back(std::move(r).value());
  }

  if (a.json) {
    JsonWriter w;
    if (a.sweep.empty()) {
      write_result(w, a, results.front(), nullptr);
    } else {
      w.begin_object().key("sweep").value(a.sweep).key("settings").begin_array();
      for (size_t i = 0; i < results.size(); ++i) write_result(w, a, results[i], &settings[i]);
      w.end_array().end_object();
    }
    std::printf("%s\n", w.str().c_str());
  } else if (a.sweep.empty()) {
    print_result(a, results.front());
  } else {
    std::printf("sweep %s over %s, retriever %s, select %s, k %lld, %lld questions\n", a.sweep.c_str(),
                a.chunker.c_str(), a.retriever.c_str(),
                (a.select.empty() ? "topk:k=" + std::to_string(a.k) : a.select).c_str(), static_cast<long long>(a.k),
                static_cast<long long>(results.front().n_questions));
    std::printf("  %-28s %7s %8s %8s %10s %11s %7s\n", "setting", "chunks", "units", "recall", "precision",
                "precision_Ω", "IoU");
    for (size_t i = 0; i < results.size(); ++i) {
      const eval::ChunkingResult& r = results[i];
      std::printf("  %-28s %7lld %8.1f %8.2f %10.2f %11.2f %7.2f\n", setting_label(settings[i]).c_str(),
                  static_cast<long long>(r.n_chunks), r.mean_chunk_tokens, r.overall.recall, r.overall.precision,
                  r.overall.precision_omega, r.overall.iou);
    }
  }
  std::fflush(stdout);
  if (!a.plot.empty()) {
    if (Status s = write_sweep_plot(a, settings, results); !s.is_ok()) return report_error(kCmd, s);
  }
  return kExitOk;
}

}  // namespace cw::app
