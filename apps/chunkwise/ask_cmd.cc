// chunkwise ask [-m MODEL] [--doc FILE|DIR]... [--db INDEX.db] [--kv-policy SPEC] [--json] "question"
// The main job: chunk the documents, retrieve (BM25) what fits the model's window, answer, cite the chunks.
// With no -m: the shipped model; with no --doc and no --db: the shipped demo document (and its question
// when none is given).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "base/json.h"
#include "commands.h"
#include "kv/policy.h"
#include "model/model.h"
#include "pipelines/ask.h"
#include "pipelines/index.h"
#include "retrieval/select.h"
#include "retrieval/store.h"
#include "threads_flag.h"
#include "tokenizer/tokenizer.h"

#ifndef CW_SOURCE_DIR
#define CW_SOURCE_DIR "."
#endif

namespace cw::app {
namespace {

constexpr const char* kCmd = "ask";
constexpr const char* kShippedModel = CW_SOURCE_DIR "/models/chunkwise-tiny-q8_0.gguf";
constexpr const char* kDemoDoc = CW_SOURCE_DIR "/models/demo/lighthouse-keepers-log.txt";
constexpr const char* kDemoQuestion = "What is the pass key of the radio room?";

bool exists(const std::string& path) { return access(path.c_str(), R_OK) == 0; }

}  // namespace

int ask_main(int argc, char** argv) {
  std::string model_path, db, chunker, policy, select, mode = "retrieval";
  std::vector<std::string> docs, words;
  int64_t candidates = 20, max_answer = 48, threads = 1, n_ctx = 0;
  bool json = false, quiet = false, free_answer = false;
  ArgParser p(kCmd, "[-m MODEL] [--doc FILE|DIR]... [--db INDEX.db] [options] \"question\"",
              std::string("Answers a question from documents: chunks them, ranks the chunks by BM25, puts the best ones\n"
                          "that fit the model's window into one prompt, and answers greedily, citing the chunks it used\n"
                          "(document, character offsets, score) and where the answer occurs in them.\n"
                          "With no -m: the shipped model (") +
                  kShippedModel + ", or $CHUNKWISE_MODEL).\n" +
                  "With no --doc and no --db: the shipped demo document, and with no question its demo question.\n"
                  "--doc without --db indexes in memory; with --db the documents are added to that index first\n"
                  "(unchanged ones are skipped); --db alone asks an index made by `chunkwise index build`.\n\n"
                  "--json prints {\"answer\",\"answer_found\",\"answer_span\":{\"doc\",\"char_begin\",\"char_end\"}|null,\n"
                  "\"evidence\":{\"doc\",\"char_begin\",\"char_end\",\"text\"} (the best sentence of the top chunk, no model),\n"
                  "\"sources\":[{\"doc\",\"char_begin\",\"char_end\",\"score\",\"rank\",\"chunk\",\"tokens\"}],\"model\",\n"
                  "\"prompt_tokens\",\"answer_tokens\",\"stop\",\"retrieve_ms\",\"prefill_ms\",\"decode_ms\"}.");
  p.option("-m,--model", &model_path, "MODEL", "GGUF model (default: the shipped one)");
  p.option("--doc", &docs, "FILE|DIR", "a document or a folder of them (repeatable)");
  p.option("--db", &db, "INDEX.db", "an index (chunkwise index build); with --doc, documents are added to it");
  p.option("--chunker", &chunker, "SPEC", std::string("chunker for --doc (default ") + pipelines::kDefaultChunker + ")");
  p.option("-k,--candidates", &candidates, "K", "ranked chunks considered for the window (default 20)", 1, 10000);
  p.option("--select", &select, "SPEC", std::string("selector applied to the candidates first: ") + retrieval::selector_specs_help());
  p.option("--mode", &mode, "MODE",
           std::string("retrieval (default): the best-ranked chunks that fit the window; attention: every chunk, in\n"
                       "document order, read through a chunk-selective KV policy (default ") +
               pipelines::kAttentionPolicy + ") that lets each head pick what it attends to");
  p.option("--kv-policy", &policy, "SPEC", "KV policy (default full: the chunks must fit the window; attention mode: chunk_select): " +
                                            kv::supported_kv_policies());
  p.option("--ctx", &n_ctx, "N", "window in tokens (default: the model's training context)", 0, int64_t{1} << 24);
  p.option("--max-answer-tokens", &max_answer, "N", "answer length limit (default 48)", 1, 4096);
  p.option("-t,--threads", &threads, "N", "threads (default 1)", 1, 1024);
  p.flag("--free-answer", &free_answer, "let the model write freely (default: the answer is a verbatim quote of the chunks it read)");
  p.flag("--json", &json, "print one JSON object");
  p.flag("-q,--quiet", &quiet, "no progress or warnings on stderr");
  p.positionals(&words, "question", "the question (words are joined with spaces)");
  if (Status s = p.parse(argc, argv); !s.is_ok()) return report_error(kCmd, s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }
  std::string question;
  for (const std::string& w : words) question += (question.empty() ? "" : " ") + w;
  const bool demo = docs.empty() && db.empty();
  if (demo) {
    if (!exists(kDemoDoc))
      return report_error(kCmd, not_found(std::string("the shipped demo document ") + kDemoDoc +
                                          " is missing: pass --doc FILE|DIR or --db INDEX.db"));
    docs.push_back(kDemoDoc);
    if (question.empty()) question = kDemoQuestion;
  }
  if (question.empty()) return report_error(kCmd, invalid_argument("no question: chunkwise ask [options] \"question\""));
  if (Status s = kv::make_kv_policy(policy.empty() ? "full" : policy).status(); !s.is_ok()) return report_error(kCmd, s);
  if (!select.empty())
    if (Status s = retrieval::make_selector(select).status(); !s.is_ok()) return report_error(kCmd, s);
  if (model_path.empty()) {
    const char* env = std::getenv("CHUNKWISE_MODEL");
    model_path = env != nullptr && *env != '\0' ? env : kShippedModel;
    if (!exists(model_path))
      return report_error(kCmd, not_found("the model " + model_path + " is missing: pass -m MODEL.gguf"));
  }
  const int n_threads = capped_threads_flag(kCmd, "--threads", threads);

  // The index: in memory for --doc alone, else the --db file (created when documents are given).
  auto store = retrieval::Store::open(db.empty() ? ":memory:" : db, /*create=*/!docs.empty());
  if (!store.is_ok()) return report_error(kCmd, store.status());
  if (!docs.empty()) {
    auto warn = [&](const std::string& line) {
      if (!quiet) std::fprintf(stderr, "chunkwise ask: warning: skipped %s\n", line.c_str());
    };
    int64_t skipped = 0;
    const std::vector<std::string> files = pipelines::collect_files(docs, warn, &skipped);
    pipelines::IndexOptions io;
    if (!chunker.empty()) io.chunker = chunker;
    io.threads = n_threads;
    io.warn = warn;
    auto rep = pipelines::index_files(**store, files, io);
    if (!rep.is_ok()) return report_error(kCmd, rep.status());
    auto stats = (*store)->stats();
    if (!stats.is_ok()) return report_error(kCmd, stats.status());
    if (stats->chunks == 0)
      return report_error(kCmd, invalid_argument("no readable text in the documents given (" +
                                                 std::to_string(rep->skipped + skipped) + " skipped, the rest empty)"));
  }

  auto model = model::Model::load(model_path);
  if (!model.is_ok()) return report_error(kCmd, model.status());
  auto tok = tok::Tokenizer::from_gguf((*model)->file());
  if (!tok.is_ok()) return report_error(kCmd, tok.status());
  pipelines::AskOptions ao;
  if (mode == "attention") ao.mode = pipelines::AskMode::kAttention;
  else if (mode != "retrieval")
    return report_error(kCmd, invalid_argument("--mode must be retrieval or attention, got '" + mode + "'"));
  ao.candidates = candidates;
  ao.select = select;
  ao.kv_policy = policy;
  ao.max_answer_tokens = max_answer;
  ao.quote = !free_answer;
  ao.n_ctx = n_ctx;
  ao.n_threads = n_threads;
  if (demo && !quiet && !json) std::fprintf(stderr, "chunkwise ask: demo document %s\nquestion: %s\n", kDemoDoc, question.c_str());
  auto r = pipelines::ask(**model, **tok, **store, question, ao);
  if (!r.is_ok()) return report_error(kCmd, r.status());

  if (json) {
    JsonWriter w;
    w.begin_object().key("question").value(question).key("answer").value(r->answer);
    w.key("answer_found").value(r->answer_found).key("answer_span");
    if (r->answer_found) {
      w.begin_object().key("doc").value(r->answer_span.doc).key("char_begin").value(r->answer_span.char_begin);
      w.key("char_end").value(r->answer_span.char_end).key("byte_begin").value(r->answer_span.byte_begin);
      w.key("byte_end").value(r->answer_span.byte_end).end_object();
    } else {
      w.null();
    }
    w.key("evidence").begin_object().key("doc").value(r->evidence.doc).key("char_begin").value(r->evidence.char_begin);
    w.key("char_end").value(r->evidence.char_end).key("text").value(r->evidence_text).end_object();
    w.key("sources").begin_array();
    for (const pipelines::AskSource& s : r->sources) {
      w.begin_object().key("doc").value(s.doc).key("char_begin").value(s.char_begin).key("char_end").value(s.char_end);
      w.key("score").value(s.score).key("rank").value(int64_t{s.rank}).key("chunk").value(s.chunk_index);
      w.key("tokens").value(s.tokens).end_object();
    }
    w.end_array().key("model").value(model_path).key("candidates").value(r->candidates);
    w.key("prompt_tokens").value(r->prompt_tokens).key("answer_tokens").value(r->answer_tokens).key("stop").value(r->stop);
    w.key("retrieve_ms").value(r->retrieve_ms).key("prefill_ms").value(r->prefill_ms).key("decode_ms").value(r->decode_ms);
    w.end_object();
    std::printf("%s\n", w.str().c_str());
    return kExitOk;
  }
  std::printf("%s\n", r->answer.empty() ? "(no answer)" : r->answer.c_str());
  std::printf("\nevidence (no model: the sentence of the top chunk with the most question words), %s chars %lld-%lld:\n  %s\n",
              r->evidence.doc.c_str(), static_cast<long long>(r->evidence.char_begin),
              static_cast<long long>(r->evidence.char_end), printable(r->evidence_text, false).c_str());
  std::printf("\nsources (%zu chunks, %lld prompt tokens):\n", r->sources.size(), static_cast<long long>(r->prompt_tokens));
  for (const pipelines::AskSource& s : r->sources)
    std::printf("  [rank %d] %s chars %lld-%lld (BM25 %.2f)\n", s.rank, s.doc.c_str(), static_cast<long long>(s.char_begin),
                static_cast<long long>(s.char_end), s.score);
  if (r->answer_found)
    std::printf("answer found in %s at chars %lld-%lld\n", r->answer_span.doc.c_str(),
                static_cast<long long>(r->answer_span.char_begin), static_cast<long long>(r->answer_span.char_end));
  else
    std::printf("the answer is not a span of the sources\n");
  std::fflush(stdout);
  if (!quiet)
    std::fprintf(stderr, "chunkwise ask: retrieve %.0f ms, prefill %.0f ms, answer %.0f ms (%lld tokens, stop: %s)\n",
                 r->retrieve_ms, r->prefill_ms, r->decode_ms, static_cast<long long>(r->answer_tokens), r->stop.c_str());
  return kExitOk;
}

}  // namespace cw::app
