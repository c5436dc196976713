// chunkwise serve -m MODEL [--host 127.0.0.1] [--port 8080] [--api-key KEY] [--max-body BYTES] [--threads N]
// The OpenAI-compatible HTTP server (issue 15). This slice serves /health, /v1/models, /tokenize and
// /detokenize with the model's tokenizer; the generating endpoints come with the engine refactor.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>

#include "args.h"
#include "commands.h"
#include "gguf/reader.h"
#include "server/http_server.h"
#include "tokenizer/tokenizer.h"

namespace cw::app {

int serve_main(int argc, char** argv) {
  std::string model, host = "127.0.0.1", api_key;
  int64_t port = 8080, max_body = int64_t{8} << 20, threads = 8;
  ArgParser p("serve", "-m MODEL [--host 127.0.0.1] [--port 8080] [--api-key KEY] [--max-body BYTES] [--threads N]",
              "Serves the model over HTTP with OpenAI-style JSON: GET /health, GET /v1/models, POST /tokenize,\n"
              "POST /detokenize (completions, chat completions and embeddings are not served yet). Prints\n"
              "\"chunkwise serve: listening on http://HOST:PORT\" on stderr once the port is bound, and runs\n"
              "until SIGINT or SIGTERM (then finishes the requests in flight and exits 0).");
  p.option("-m,--model", &model, "MODEL", "the GGUF model file (its tokenizer is loaded)");
  p.option("--host", &host, "HOST", "the address to listen on (default 127.0.0.1; 0.0.0.0 = every interface)");
  p.option("--port", &port, "PORT", "the TCP port (default 8080; 0 = a free port, printed)", 0, 65535);
  p.option("--api-key", &api_key, "KEY",
           "require \"Authorization: Bearer KEY\" on every route except /health (default: none)");
  p.option("--max-body", &max_body, "BYTES", "the largest request body accepted (default 8 MiB; larger: 413)", 1,
           int64_t{1} << 40);
  p.option("--threads", &threads, "N", "connection threads (default 8; each keep-alive connection holds one)", 1,
           1024);
  if (Status s = p.parse(argc, argv); !s.is_ok()) return report_error("serve", s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }
  if (model.empty()) return report_error("serve", invalid_argument("-m MODEL is required (see --help)"));
  if (p.given("--api-key") && api_key.empty())
    return report_error("serve", invalid_argument("--api-key must not be empty"));

  auto opened = gguf::File::open(model);
  if (!opened.is_ok()) return report_error("serve", opened.status());
  auto tok = tok::Tokenizer::from_gguf(**opened);
  if (!tok.is_ok()) return report_error("serve", tok.status());
  opened->reset();  // the tokenizer copied what it needs

  server::ServerOptions options;
  options.host = host;
  options.port = static_cast<int>(port);
  options.api_key = api_key;
  options.max_body_bytes = static_cast<size_t>(max_body);
  options.threads = static_cast<int>(threads);
  const size_t slash = model.find_last_of('/');
  options.model_id = slash == std::string::npos ? model : model.substr(slash + 1);

  // SIGINT / SIGTERM are taken by a waiting thread (blocked here, before any thread exists, so every
  // thread inherits the mask); SIGPIPE from a vanished client must not kill the server.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  server::Server srv(options, tok->get());
  if (Status s = srv.listen(); !s.is_ok()) return report_error("serve", s);
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
