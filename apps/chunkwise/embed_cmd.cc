// chunkwise embed -m MODEL (-p TEXT | -f FILE) [--lines] [--ctx N] [--threads N]
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "args.h"
#include "base/json.h"
#include "commands.h"
#include "text/embedder_model.h"
#include "threads_flag.h"

namespace cw::app {

int embed_main(int argc, char** argv) {
  std::string model_path, prompt, file;
  int64_t ctx = 512, threads = 1;
  bool lines = false;
  ArgParser p("embed", "-m MODEL (-p TEXT | -f FILE) [--lines] [--ctx N] [--threads N]",
              "Prints the embedding of a text as JSON: {\"model\", \"pooling\", \"dim\", \"embeddings\": [[...]]}.\n"
              "An embedding model (bert: bge, all-MiniLM, e5, ...) uses the pooling its GGUF declares; a decoder\n"
              "(llama, qwen2, ...) is mean-pooled over its final hidden states. Vectors are L2-normalised; a\n"
              "text longer than the context runs in windows whose embeddings are averaged.");
  p.option("-m,--model", &model_path, "MODEL", "GGUF model file");
  p.option("-p,--prompt", &prompt, "TEXT", "the text to embed");
  p.option("-f,--file", &file, "FILE", "read the text from FILE ('-' = stdin)");
  p.flag("--lines", &lines, "embed every non-empty line of the input separately");
  p.option("--ctx", &ctx, "N", "tokens per window (default 512; at most the model's context)", 1, int64_t{1} << 20);
  p.option("--threads", &threads, "N", "threads (default 1; capped at the cores)", 1, 1024);
  if (Status s = p.parse(argc, argv); !s.is_ok()) return report_error("embed", s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }
  if (model_path.empty()) return report_error("embed", invalid_argument("-m MODEL is required (see --help)"));
  if (p.given("--prompt") == p.given("--file"))
    return report_error("embed", invalid_argument("give exactly one of -p TEXT or -f FILE (see --help)"));
  std::string text = prompt;
  if (p.given("--file")) {
    auto r = read_input_file(file, /*dash_is_stdin=*/true);
    if (!r.is_ok()) return report_error("embed", r.status());
    text = std::move(r).value();
  }
  std::vector<std::string_view> texts;
  if (lines) {
    std::string_view rest = text;
    while (!rest.empty()) {
      const size_t nl = rest.find('\n');
      const std::string_view line = rest.substr(0, nl);
      if (!line.empty()) texts.push_back(line);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    }
    if (texts.empty()) return report_error("embed", invalid_argument("the input has no non-empty line"));
  } else {
    texts.push_back(text);
  }
  const int n_threads = capped_threads_flag("embed", "--threads", threads);
  auto emb = text::ModelEmbedder::load(model_path, {.ctx = ctx, .threads = n_threads});
  if (!emb.is_ok()) return report_error("embed", emb.status());
  std::vector<float> out;
  if (Status s = (*emb)->embed(texts, &out); !s.is_ok()) return report_error("embed", s);
  const auto dim = static_cast<size_t>((*emb)->dim());
  JsonWriter w;
  w.begin_object().key("model").value(model_path).key("pooling").value((*emb)->pooling());
  w.key("dim").value(static_cast<int64_t>(dim)).key("embeddings").begin_array();
  for (size_t t = 0; t < texts.size(); ++t) {
    w.begin_array();
    for (size_t d = 0; d < dim; ++d) w.value(static_cast<double>(out[t * dim + d]));
    w.end_array();
  }
  w.end_array().end_object();
  std::printf("%s\n", w.str().c_str());
  return kExitOk;
}

}  // namespace cw::app
