// The HTTP transport (issue 15): routing, authentication, OpenAI-style errors, the endpoints that do not
// generate text, /metrics; completions are in completions.cc, embeddings in embeddings.cc. See http_server.h.
#include "server/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/json.h"
#include "base/json_value.h"
#include "chunkwise/engine.h"
#include "server/completions.h"
#include "server/deadline_server.h"
#include "server/embeddings.h"
#include "server/http_util.h"
#include "server/metrics.h"
#include "tokenizer/tokenizer.h"

namespace cw::server {
namespace {

// The routes this server knows and the one method each accepts (HEAD is answered like GET); the
// generating ones exist only with an engine, embeddings only with an embedder.
enum class Needs { kNothing, kEngine, kEmbedder };
struct Route {
  const char* path;
  const char* method;
  Needs needs;
};
constexpr Route kRoutes[] = {
    {"/health", "GET", Needs::kNothing},
    {"/v1/models", "GET", Needs::kNothing},
    {"/tokenize", "POST", Needs::kNothing},
    {"/detokenize", "POST", Needs::kNothing},
    {"/metrics", "GET", Needs::kNothing},
    {"/v1/completions", "POST", Needs::kEngine},
    {"/v1/chat/completions", "POST", Needs::kEngine},
    {"/v1/embeddings", "POST", Needs::kEmbedder},
};

// Equal strings, in time that depends only on the lengths.
bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// An optional boolean field: absent (or null) gives `fallback`.
Result<bool> optional_bool(const JsonValue& body, std::string_view key, bool fallback) {
  const JsonValue* v = body.get(key);
  if (v == nullptr || v->is_null()) return fallback;
  if (v->kind() != JsonValue::Kind::kBool) {
    std::string m = "\"";
    m.append(key).append("\" must be a boolean");
    return invalid_argument(std::move(m));
  }
  return v->as_bool();
}

}  // namespace

struct Server::Impl {
  Impl(ServerOptions o, const tok::Tokenizer* t, Engine* e, const text::Embedder* em)
      : options(std::move(o)),
        tokenizer(t),
        engine(e),
        embedder(em),
        metrics(std::make_shared<Metrics>()),
        admission(std::make_shared<Admission>(options.queue)) {
    if (engine != nullptr) {
      CompletionsConfig c;
      c.model_id = options.model_id;
      c.chat_family = options.chat_family;
      c.stream_buffer_bytes = options.stream_buffer_bytes;
      completions = std::make_unique<Completions>(engine, tokenizer, metrics, admission, std::move(c));
    }
    if (embedder != nullptr)
      embeddings = std::make_unique<Embeddings>(embedder, tokenizer, admission, options.model_id);
  }

  ServerOptions options;
  const tok::Tokenizer* tokenizer;
  Engine* engine;
  const text::Embedder* embedder;
  std::shared_ptr<Metrics> metrics;
  std::shared_ptr<Admission> admission;
  std::unique_ptr<Completions> completions;  // null without an engine
  std::unique_ptr<Embeddings> embeddings;    // null without an embedder

  const Route* find_route(const std::string& path) const {
    for (const Route& r : kRoutes) {
      if (path != r.path) continue;
      if (r.needs == Needs::kEngine && engine == nullptr) return nullptr;
      if (r.needs == Needs::kEmbedder && embedder == nullptr) return nullptr;
      return &r;
    }
    return nullptr;
  }
  DeadlineServer http;  // httplib's server, each request read within options.request_timeout_ms
  std::mutex mutex;  // listen / start / stop
  bool bound = false;
  bool stopped = false;
  int port = 0;
  std::thread thread;
  int listen_fd = -1;  // the listening socket (set_socket_options sees it before bind)
  static constexpr int kListenBacklog = 4096;
  static constexpr size_t kMaxHeadBytes = size_t{64} << 10;  // request line and headers
  std::atomic<bool> serving{false};  // listen_after_bind() entered (or about to be)
  std::atomic<bool> done{false};     // listen_after_bind() returned

  bool authorized(const httplib::Request& req) const {
    if (options.api_key.empty()) return true;
    const std::string auth = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (auth.size() < kBearer.size()) return false;
    for (size_t i = 0; i < kBearer.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(auth[i])) != std::tolower(static_cast<unsigned char>(kBearer[i])))
        return false;
    return same_secret(std::string_view(auth).substr(kBearer.size()), options.api_key);
  }

  // Wraps a handler that needs the API key: 401 before the handler runs.
  httplib::Server::Handler guarded(void (Impl::*handler)(const httplib::Request&, httplib::Response&)) {
    return [this, handler](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req)) return unauthorized(res);
      (this->*handler)(req, res);
    };
  }

  void unauthorized(httplib::Response& res) const {
    res.set_header("WWW-Authenticate", "Bearer");
    set_error(res, 401, "missing or invalid API key (send the header \"Authorization: Bearer KEY\")");
  }

  void health(const httplib::Request&, httplib::Response& res) {
    JsonWriter w;
    w.begin_object().key("status").value("ok").end_object();
    set_json(res, w);
  }

  void models(const httplib::Request&, httplib::Response& res) {
    JsonWriter w;
    w.begin_object().key("object").value("list").key("data").begin_array();
    w.begin_object().key("id").value(options.model_id).key("object").value("model");
    w.key("created").value(0).key("owned_by").value("chunkwise").end_object();
    w.end_array().end_object();
    set_json(res, w);
  }

  void tokenize(const httplib::Request& req, httplib::Response& res) {
    auto body = parse_object(req);
    if (!body.is_ok()) return set_error(res, 400, body.status().message());
    const JsonValue* content = body->get("content");
    if (content == nullptr) return set_error(res, 400, "missing field \"content\" (a string)");
    if (!content->is_string()) return set_error(res, 400, "\"content\" must be a string");
    auto add_special = optional_bool(*body, "add_special", true);
    if (!add_special.is_ok()) return set_error(res, 400, add_special.status().message());
    auto parse_special = optional_bool(*body, "parse_special", false);
    if (!parse_special.is_ok()) return set_error(res, 400, parse_special.status().message());
    const std::vector<int32_t> ids = tokenizer->encode(content->as_string(), *add_special, *parse_special);
    JsonWriter w;
    w.begin_object().key("tokens").begin_array();
    for (int32_t id : ids) w.value(int64_t{id});
    w.end_array().end_object();
    set_json(res, w);
  }

  void detokenize(const httplib::Request& req, httplib::Response& res) {
    auto body = parse_object(req);
    if (!body.is_ok()) return set_error(res, 400, body.status().message());
    const JsonValue* tokens = body->get("tokens");
    if (tokens == nullptr) return set_error(res, 400, "missing field \"tokens\" (an array of token ids)");
    if (!tokens->is_array()) return set_error(res, 400, "\"tokens\" must be an array of token ids");
    const int32_t n_vocab = tokenizer->n_vocab();
    std::vector<int32_t> ids;
    ids.reserve(tokens->items().size());
    for (size_t i = 0; i < tokens->items().size(); ++i) {
      const JsonValue& t = tokens->items()[i];
      const std::string where = "\"tokens\"[" + std::to_string(i) + "]";
      if (!t.is_number() || !std::isfinite(t.as_number()) || std::floor(t.as_number()) != t.as_number())
        return set_error(res, 400, where + " must be an integer token id");
      const double x = t.as_number();
      if (x < 0 || x >= n_vocab) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.17g", x);
        return set_error(res, 400, where + " = " + buf + " is outside the vocabulary [0, " +
                                       std::to_string(n_vocab) + ")");
      }
      ids.push_back(static_cast<int32_t>(x));
    }
    JsonWriter w;
    w.begin_object().key("content").value(tokenizer->decode(ids)).end_object();
    set_json(res, w);
  }

  void metrics_page(const httplib::Request&, httplib::Response& res) {
    res.status = 200;
    res.set_content(metrics->render(engine, admission->admitted(), admission->limit()), "text/plain; version=0.0.4");
  }

  void complete(const httplib::Request& req, httplib::Response& res) { completions->handle(req, res, false); }
  void chat(const httplib::Request& req, httplib::Response& res) { completions->handle(req, res, true); }
  void embed(const httplib::Request& req, httplib::Response& res) { embeddings->handle(req, res); }

  // Called by httplib for every response with status >= 400; fills the body of those httplib produced
  // itself (no route, body over the limit, malformed HTTP), whose body is empty.
  httplib::Server::HandlerResponse error_page(const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    switch (res.status) {
      case 404: {
        const Route* route = find_route(req.path);
        const bool is_public = route != nullptr && std::string_view(route->path) == "/health";
        if (!is_public && !authorized(req)) {
          unauthorized(res);
        } else if (route != nullptr) {
          res.set_header("Allow", std::string_view(route->method) == "GET" ? "GET, HEAD" : route->method);
          set_error(res, 405,
                    "method " + req.method + " is not allowed on " + req.path + " (use " + route->method + ")");
        } else {
          set_error(res, 404, "unknown route " + req.method + " " + req.path);
        }
        break;
      }
      case 413:
        set_error(res, 413, "the request body exceeds the limit of " + std::to_string(options.max_body_bytes) +
                                " bytes");
        break;
      case 414: set_error(res, 414, "the request URI is too long"); break;
      case 400:
        // httplib answers 400 to a request it could not read; the stream knows when that was our limits.
        switch (DeadlineServer::current_read_failure()) {
          case DeadlineServer::ReadFailure::kDeadline:
            res.set_header("Connection", "close");
            set_error(res, 408, http.timeout_message());
            break;
          case DeadlineServer::ReadFailure::kHeadTooLarge:
            res.set_header("Connection", "close");
            set_error(res, 431, "the request line and headers exceed " + std::to_string(kMaxHeadBytes) + " bytes");
            break;
          case DeadlineServer::ReadFailure::kNone: set_error(res, 400, "malformed HTTP request"); break;
        }
        break;
      default: set_error(res, res.status, "HTTP error " + std::to_string(res.status)); break;
    }
    return httplib::Server::HandlerResponse::Handled;
  }

  void setup() {
    http.new_task_queue = [n = options.threads] { return new httplib::ThreadPool(static_cast<size_t>(n)); };
    http.set_payload_max_length(options.max_body_bytes);
    http.set_request_timeout(std::chrono::milliseconds(options.request_timeout_ms));
    http.set_max_head_bytes(kMaxHeadBytes);
    http.set_tcp_nodelay(true);  // headers and body go out in separate writes: no Nagle / delayed-ACK stall
    // SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, which lets a second server bind the
    // same port silently and share its connections.
    http.set_socket_options([this](int sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
      listen_fd = sock;
    });
    http.Get("/health", [this](const httplib::Request& q, httplib::Response& r) { health(q, r); });
    http.Get("/v1/models", guarded(&Impl::models));
    http.Post("/tokenize", guarded(&Impl::tokenize));
    http.Post("/detokenize", guarded(&Impl::detokenize));
    http.Get("/metrics", guarded(&Impl::metrics_page));
    if (completions) {
      http.Post("/v1/completions", guarded(&Impl::complete));
      http.Post("/v1/chat/completions", guarded(&Impl::chat));
    }
    if (embeddings) http.Post("/v1/embeddings", guarded(&Impl::embed));
    // Counts every response (after it is written) by route and status; unknown paths are "other".
    http.set_logger([this](const httplib::Request& q, const httplib::Response& r) {
      const Route* route = find_route(q.path);
      metrics->count_response(route != nullptr ? route->path : "other", r.status);
    });
    http.set_error_handler(httplib::Server::HandlerWithResponse(
        [this](const httplib::Request& q, httplib::Response& r) { return error_page(q, r); }));
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "internal error";
      try {
        if (ep) std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what += std::string(": ") + e.what();
      } catch (...) {
      }
      set_error(res, 500, what);
    });
  }

  Status listen_locked() {
    if (stopped) return invalid_argument("the server was stopped; create a new one");
    if (bound) return Status::ok();
    const std::string where = options.host + ":" + std::to_string(options.port);
    if (options.host.empty()) return invalid_argument("the host is empty");
    if (options.port < 0 || options.port > 65535)
      return invalid_argument("port " + std::to_string(options.port) + " is outside [0, 65535]");
    if (options.threads < 1 || options.threads > 1024)
      return invalid_argument("threads " + std::to_string(options.threads) + " is outside [1, 1024]");
    if (options.max_body_bytes < 1) return invalid_argument("the body limit must be at least 1 byte");
    if (options.queue < 1 || options.queue > (int64_t{1} << 20))
      return invalid_argument("queue " + std::to_string(options.queue) + " is outside [1, 1048576]");
    if (options.stream_buffer_bytes < 1) return invalid_argument("the stream buffer must hold at least 1 byte");
    if (options.request_timeout_ms < 1 || options.request_timeout_ms > 3600000)
      return invalid_argument("request timeout " + std::to_string(options.request_timeout_ms) +
                              " ms is outside [1, 3600000]");
    setup();
    errno = 0;
    if (options.port == 0) {
      const int p = http.bind_to_any_port(options.host);
      if (p <= 0) return bind_error(where, errno);
      port = p;
    } else {
      if (!http.bind_to_port(options.host, options.port)) return bind_error(where, errno);
      port = options.port;
    }
    // httplib listens with a backlog of 5 (compiled into Debian's library): with many clients opening
    // connections at once, the kernel's accept queue overflows, SYNs are dropped and retried a second later
    // (1 s time-to-first-token spikes) and some connections are reset (clients see a read error). A second
    // listen() on the bound socket raises the backlog (capped by net.core.somaxconn).
    if (listen_fd >= 0) ::listen(listen_fd, kListenBacklog);
    bound = true;
    return Status::ok();
  }

  static Status bind_error(const std::string& where, int err) {
    std::string m = "cannot listen on " + where;
    if (err != 0) m += std::string(": ") + std::strerror(err);
    return invalid_argument(m +
                            " (the port is in use, the host is not an address of this machine, or binding is "
                            "not permitted)");
  }

  void serve() {
    serving = true;
    http.listen_after_bind();
    done = true;
  }
};

Server::Server(ServerOptions options, const tok::Tokenizer* tokenizer, Engine* engine,
               const text::Embedder* embedder)
    : impl_(std::make_unique<Impl>(std::move(options), tokenizer, engine, embedder)) {
  if (tokenizer == nullptr) {
    std::fprintf(stderr, "cw::server::Server: the tokenizer must not be null\n");
    std::abort();
  }
}

Server::~Server() { stop(); }

Status Server::listen() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->listen_locked();
}

Status Server::start() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (Status s = impl_->listen_locked(); !s.is_ok()) return s;
  if (impl_->serving) return Status::ok();
  impl_->serving = true;
  impl_->thread = std::thread([impl = impl_.get()] { impl->serve(); });
  return Status::ok();
}

Status Server::run() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (impl_->stopped && !impl_->serving) return Status::ok();  // stop() came first: nothing to serve
    if (Status s = impl_->listen_locked(); !s.is_ok()) return s;
    if (impl_->serving) return invalid_argument("the server is already serving");
    impl_->serving = true;
  }
  impl_->serve();
  return Status::ok();
}

void Server::stop() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->stopped = true;
  if (impl_->completions) impl_->completions->shutdown();  // streams end at the engine's next step
  if (impl_->serving) {
    // listen_after_bind() ignores a stop() that comes before it has started: wait until it runs.
    while (!impl_->http.is_running() && !impl_->done)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    impl_->http.stop();
  }
  if (impl_->thread.joinable()) impl_->thread.join();
}

int Server::port() const { return impl_->port; }
const ServerOptions& Server::options() const { return impl_->options; }

}  // namespace cw::server
