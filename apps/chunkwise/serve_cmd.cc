// chunkwise serve -m MODEL [--host 127.0.0.1] [--port 8080] [--api-key KEY] [--max-body BYTES]
//                 [-t THREADS] [--parallel N] [--ctx N] [--kv-policy SPEC] [--chat-template NAME]
//                 [--queue N] [--http-threads N] [--request-timeout SECONDS] [--embeddings]
// The OpenAI-compatible HTTP server (issue 15): opens the model as a cw::Engine and serves it with
// cw::server::Server (completions, chat completions with SSE streaming, /metrics, /tokenize, ...).
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <cstdio>
#include <string>
#include <thread>

#include "args.h"
#include "chunkwise/engine.h"
#include "commands.h"
#include "gguf/reader.h"
#include "kv/policy.h"
#include "server/chat_template.h"
#include "server/http_server.h"
#include "text/embedder_model.h"
#include "threads_flag.h"
#include "tokenizer/tokenizer.h"

namespace cw::app {

int serve_main(int argc, char** argv) {
  std::string model, host = "127.0.0.1", api_key, kv_policy = "full", chat_template;
  int64_t port = 8080, max_body = int64_t{8} << 20, threads = 1, parallel = 16, ctx = 0, queue = 0,
          http_threads = 0, request_timeout = 10;
  bool embeddings = false;
  ArgParser p("serve",
              "-m MODEL [--host 127.0.0.1] [--port 8080] [--api-key KEY] [--max-body BYTES] [-t THREADS]\n"
              "       [--parallel N] [--ctx N] [--kv-policy SPEC] [--chat-template NAME] [--queue N]\n"
              "       [--http-threads N] [--request-timeout SECONDS] [--embeddings]",
              "Serves the model over HTTP with OpenAI-style JSON: POST /v1/completions, POST /v1/chat/completions\n"
              "(\"stream\": true gives Server-Sent Events), GET /v1/models, GET /health, GET /metrics (Prometheus),\n"
              "POST /tokenize, POST /detokenize, and POST /v1/embeddings with --embeddings. Prints \"chunkwise serve: listening on http://HOST:PORT\" on\n"
              "stderr once the port is bound, and runs until SIGINT or SIGTERM (then cancels the requests in\n"
              "flight and exits 0).");
  p.option("-m,--model", &model, "MODEL", "the GGUF model file");
  p.option("--host", &host, "HOST", "the address to listen on (default 127.0.0.1; 0.0.0.0 = every interface)");
  p.option("--port", &port, "PORT", "the TCP port (default 8080; 0 = a free port, printed)", 0, 65535);
  p.option("--api-key", &api_key, "KEY",
           "require \"Authorization: Bearer KEY\" on every route except /health (default: none)");
  p.option("--max-body", &max_body, "BYTES", "the largest request body accepted (default 8 MiB; larger: 413)", 1,
           int64_t{1} << 40);
  p.option("-t,--threads", &threads, "N", "threads for the forward pass (default 1; capped at the cores)", 1, 1024);
  p.option("--parallel", &parallel, "N", "requests decoded at once (default 16)", 1, 4096);
  p.option("--ctx", &ctx, "N",
           "KV cache size in tokens (default: parallel x min(training context, 4096), at most 1 GiB)", 1,
           int64_t{1} << 24);
  p.option("--kv-policy", &kv_policy, "SPEC",
           "KV policy of every request (supported: " + kv::supported_kv_policies() + "; default full)");
  p.option("--chat-template", &chat_template, "NAME",
           "chat format (llama-2, llama-3, chatml, qwen, mistral, phi-3, gemma, zephyr; default: detected\n"
           "from the model's tokenizer.chat_template, chatml when unrecognised)");
  p.option("--queue", &queue, "N",
           "generation requests admitted at once, running or waiting (default 4 x --parallel); more get 503\n"
           "with Retry-After", 1, int64_t{1} << 20);
  p.option("--http-threads", &http_threads, "N",
           "connection threads (default --queue + 8; each open connection holds one, a stream until it ends)", 1,
           4096);
  p.option("--request-timeout", &request_timeout, "SECONDS",
           "how long a connection may take to send a whole request (headers and body), from when a connection\n"
           "thread takes it up or its previous response ended (default 10); slower: 408 and closed. Bounds how\n"
           "long slow clients hold connection threads; generation and streaming are not limited by it", 1, 3600);
  p.flag("--embeddings", &embeddings,
         "serve POST /v1/embeddings too (mean-pooled final hidden states for a decoder, the file's pooling for\n"
         "an embedding model; vectors L2-normalised, texts longer than 512 tokens in windows)");
  if (Status s = p.parse(argc, argv); !s.is_ok()) return report_error("serve", s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }
  if (model.empty()) return report_error("serve", invalid_argument("-m MODEL is required (see --help)"));
  if (p.given("--api-key") && api_key.empty())
    return report_error("serve", invalid_argument("--api-key must not be empty"));
  if (!p.given("--queue")) queue = 4 * parallel;
  if (!p.given("--http-threads")) http_threads = std::min<int64_t>(queue + 8, 4096);

  // SIGINT / SIGTERM are taken by a waiting thread (blocked here, before any thread exists -- the engine starts
  // threads -- so every thread inherits the mask); SIGPIPE from a vanished client must not kill the server.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto opened = gguf::File::open(model);
  if (!opened.is_ok()) return report_error("serve", opened.status());
  auto tok = tok::Tokenizer::from_gguf(**opened);
  if (!tok.is_ok()) return report_error("serve", tok.status());
  server::ChatFamily family = server::ChatFamily::kChatml;
  std::string notice;  // printed once listening (errors before it stay one line)
  if (p.given("--chat-template")) {
    auto f = server::parse_chat_family(chat_template);
    if (!f.is_ok()) return report_error("serve", f.status());
    family = *f;
  } else {
    auto jinja = (*opened)->get_string("tokenizer.chat_template");
    bool recognised = false;
    family = server::detect_chat_family(jinja.is_ok() ? *jinja : std::string_view(), &recognised);
    if (!recognised)
      notice = std::string(jinja.is_ok() ? "the model's chat template is not recognised"
                                         : "the model has no chat template") +
               "; chat uses the chatml format (--chat-template overrides)";
  }
  opened->reset();  // the tokenizer copied what it needs

  EngineConfig ec;
  ec.model_path = model;
  ec.threads = capped_threads_flag("serve", "--threads", threads);
  ec.parallel = parallel;
  ec.ctx = ctx;
  ec.kv_policy = kv_policy;
  auto engine = Engine::open(ec);
  if (!engine.is_ok()) return report_error("serve", engine.status());
  std::unique_ptr<text::ModelEmbedder> embedder;
  if (embeddings) {
    auto e = text::ModelEmbedder::load(model, {.ctx = 512, .threads = ec.threads});
    if (!e.is_ok()) return report_error("serve", e.status());
    embedder = std::move(e).value();
  }

  server::ServerOptions options;
  options.host = host;
  options.port = static_cast<int>(port);
  options.api_key = api_key;
  options.max_body_bytes = static_cast<size_t>(max_body);
  options.threads = static_cast<int>(http_threads);
  options.queue = queue;
  options.request_timeout_ms = static_cast<int>(request_timeout * 1000);
  options.chat_family = family;
  const size_t slash = model.find_last_of('/');
  options.model_id = slash == std::string::npos ? model : model.substr(slash + 1);

  server::Server srv(options, tok->get(), engine->get(), embedder.get());
  if (Status s = srv.listen(); !s.is_ok()) return report_error("serve", s);
  if (!notice.empty()) std::fprintf(stderr, "chunkwise serve: %s\n", notice.c_str());
  const bool v6 = host.find(':') != std::string::npos;
  std::fprintf(stderr, "chunkwise serve: listening on http://%s%s%s:%d\n", v6 ? "[" : "", host.c_str(), v6 ? "]" : "",
               srv.port());
  std::fflush(stderr);

  std::atomic<bool> signalled{false};
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    signalled = true;
    srv.stop();
  });
  const Status served = srv.run();  // returns after the waiter's stop(), or at once on an error
  if (!signalled) pthread_kill(waiter.native_handle(), SIGTERM);  // wakes the waiter (SIGTERM is blocked)
  waiter.join();
  if (!served.is_ok()) return report_error("serve", served);
  std::fprintf(stderr, "chunkwise serve: stopped\n");
  return kExitOk;
}

}  // namespace cw::app
