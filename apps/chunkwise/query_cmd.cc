// chunkwise query --db FILE.db [-k K] [--select SPEC] [--retriever bm25|dense|hybrid] [--embed-model GGUF]
//                  [--json] "question"
// Argument parsing and printing only: the work is pipelines::query.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "base/json.h"
#include "commands.h"
#include "pipelines/query.h"
#include "retrieval/select.h"
#include "text/embedder_model.h"
#include "threads_flag.h"

namespace cw::app {

int query_main(int argc, char** argv) {
  const std::string cmd = "query";
  std::string db, select, retriever = "bm25", embed_model;
  int64_t k = 10, threads = 1;
  bool json = false;
  std::vector<std::string> words;
  ArgParser p(cmd, "--db FILE.db [-k K] [--select SPEC] [--retriever bm25|dense|hybrid] [--embed-model GGUF] [--json] \"question\"",
              std::string("Prints the chunks of an index that best answer a question, best first, with their score,\n"
                          "document path, offsets (bytes and code points) and text. -k K chunks are retrieved; a\n"
                          "selector then chooses among them (at least as many as it needs are retrieved).\n") +
                  retrieval::selector_specs_help() + ".");
  p.option("--db", &db, "FILE.db", "the index (chunkwise index build)");
  p.option("-k", &k, "K", "chunks retrieved (default 10)", 1, 100000);
  p.option("--select", &select, "SPEC", "chunk selector (default topk:k=K)");
  p.option("--retriever", &retriever, "R", "bm25 (default), dense or hybrid (dense and hybrid need --embed-model)");
  p.option("--embed-model", &embed_model, "GGUF", "the embedding model the index was built with");
  p.option("-t,--threads", &threads, "N", "embedding threads (default 1)", 1, 1024);
  p.flag("--json", &json, "print a JSON array of objects");
  p.positionals(&words, "QUESTION", "the question (several words are joined by spaces)");
  if (Status s = p.parse(argc, argv); !s.is_ok()) return report_error(cmd, s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }
  if (db.empty()) return report_error(cmd, invalid_argument("--db FILE.db is required"));
  std::string question;
  for (const std::string& w : words) question += (question.empty() ? "" : " ") + w;
  if (question.empty()) return report_error(cmd, invalid_argument("no question given"));

  pipelines::QueryOptions opt;
  auto r = pipelines::parse_retriever(retriever);
  if (!r.is_ok()) return report_error(cmd, r.status());
  opt.retriever = *r;
  opt.k = k;
  opt.select = select;
  if (!select.empty()) {  // a bad spec fails before the index is opened
    auto sel = retrieval::make_selector(select);
    if (!sel.is_ok()) return report_error(cmd, sel.status());
  }
  auto store = retrieval::Store::open(db, /*create=*/false);
  if (!store.is_ok()) return report_error(cmd, store.status());
  std::unique_ptr<text::ModelEmbedder> embedder;
  if (!embed_model.empty() && opt.retriever != pipelines::Retriever::kBm25) {
    text::ModelEmbedderOptions mo;
    mo.threads = capped_threads_flag(cmd.c_str(), "--threads", threads);
    auto e = text::ModelEmbedder::load(embed_model, mo);
    if (!e.is_ok()) return report_error(cmd, e.status());
    embedder = std::move(e).value();
    opt.embedder = embedder.get();
  }
  auto results = pipelines::query(**store, question, opt);
  if (!results.is_ok()) return report_error(cmd, results.status());
  if (json) {
    JsonWriter w;
    w.begin_array();
    int64_t rank = 0;
    for (const pipelines::QueryResult& q : *results) {
      const retrieval::ChunkRow& c = q.row;
      w.begin_object().key("rank").value(++rank).key("score").value(q.hit.score).key("chunk_id").value(c.chunk_id);
      w.key("path").value(c.path).key("index").value(c.index).key("byte_begin").value(c.byte_begin);
      w.key("byte_end").value(c.byte_end).key("char_begin").value(c.char_begin).key("char_end").value(c.char_end);
      w.key("n_tokens").value(c.n_tokens).key("text").value(c.text).end_object();
    }
    w.end_array();
    std::printf("%s\n", w.str().c_str());
    return kExitOk;
  }
  int rank = 0;
  for (const pipelines::QueryResult& q : *results) {
    const retrieval::ChunkRow& c = q.row;
    std::printf("%d. score %.4f  %s  chunk %lld  bytes %lld-%lld  chars %lld-%lld\n", ++rank, q.hit.score,
                c.path.c_str(), static_cast<long long>(c.index), static_cast<long long>(c.byte_begin),
                static_cast<long long>(c.byte_end), static_cast<long long>(c.char_begin),
                static_cast<long long>(c.char_end));
    std::string indented = "   ";
    for (char ch : c.text) {
      indented += ch;
      if (ch == '\n') indented += "   ";
    }
    std::printf("%s\n\n", indented.c_str());
  }
  if (results->empty()) std::fprintf(stderr, "chunkwise query: no chunk matches\n");
  return kExitOk;
}

}  // namespace cw::app
