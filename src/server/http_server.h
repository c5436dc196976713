// cw::server::Server: the HTTP transport of `chunkwise serve` (issue 15).
//   GET  /health      -> 200 {"status":"ok"}                (no API key needed)
//   GET  /v1/models   -> 200 {"object":"list","data":[{"id":MODEL_ID,"object":"model","created":0,
//                                                          "owned_by":"chunkwise"}]}
//   POST /tokenize    {"content":STR, "add_special":BOOL=true, "parse_special":BOOL=false}
//                     -> 200 {"tokens":[ID,...]}             (llama.cpp server's shape)
//   POST /detokenize  {"tokens":[ID,...]} -> 200 {"content":STR}; every id must be an integer in
//                     [0, n_vocab) (bytes that are not valid UTF-8 come out as U+FFFD).
//   GET  /metrics     -> 200 Prometheus text (the names are listed in metrics.h)
// With an engine (the constructor's third argument) also:
//   POST /v1/completions, POST /v1/chat/completions: OpenAI's request fields (openai_request.h) and
//                     response shapes (openai_response.h); "stream": true answers with Server-Sent Events,
//                     "data: {chunk}\n\n" ... "data: [DONE]\n\n" (an error after the headers went out is an
//                     event {"error":{...}} before [DONE]). The chat prompt is rendered with
//                     options.chat_family (chat_template.h) and tokenized with special tokens parsed, and the
//                     reply stops at the family's end-of-turn text (chat_end_of_turn) too; a
//                     completions prompt is tokenized as `chunkwise run` does (BOS by the vocabulary's
//                     rule), so greedy output equals `chunkwise run --temp 0`. max_tokens defaults to what
//                     the context (training context and KV cache) leaves after the prompt.
//                     finish_reason: openai_finish_reason(). A client that disconnects has its request
//                     cancelled, its KV freed at the engine's next step: a stream's when a write fails (an
//                     SSE keep-alive comment goes out every second while no token flows), a non-streaming
//                     one's within 20 ms (its socket is polled; a half-close counts as gone) -- counted as
//                     status 499 in /metrics.
// With an embedder (the fourth argument):
//   POST /v1/embeddings  OpenAI's shape (embeddings.h): "input" a string or up to 2048 strings,
//                     "encoding_format" float or base64.
// Generation requests and embedding batches share one admission limit, options.queue.
//
// Errors are OpenAI-style JSON, {"error":{"message":STR,"type":STR,"code":HTTP_STATUS}} (the code is the
// HTTP status as a number, as llama.cpp's server writes it):
//   400 invalid_request_error  malformed JSON, a body that is not an object, missing fields, wrong types,
//                              token ids outside the vocabulary, malformed HTTP
//   401 authentication_error   api_key set and the request lacks "Authorization: Bearer KEY" (every
//                              route except /health, unknown routes included)
//   404 not_found_error        unknown route; a "model" other than options.model_id
//   405 invalid_request_error  known route, wrong method (with an Allow header)
//   408 invalid_request_error  the request (line, headers, body) did not arrive within options.request_timeout_ms
//                              (the connection is closed)
//   413 invalid_request_error  body over max_body_bytes
//   431 invalid_request_error  request line and headers over 64 KiB (the connection is closed)
//   500 server_error           an exception escaped a handler (a bug; the server keeps running); a
//                              request that failed in the engine
//   503 overloaded_error       options.queue generation requests are already admitted (with Retry-After: 1),
//                              or the server is stopping
// Prompt over the context, and whatever Engine::validate refuses: 400 with the engine's message (token
// counts named).
//
// Libraries: HTTP is cpp-httplib (Debian's libcpp-httplib-dev; upstream it is a single header, Debian
// ships it prebuilt as a shared library with that header): it is packaged, small, runs each connection
// on a thread of a bounded pool, and has the request body limit built in (413 before the body is read).
// JSON is the project's own base/json.h (JsonWriter: always valid output, invalid UTF-8 as U+FFFD) and
// base/json_value.h (JsonValue::parse: RFC 8259, depth-limited, one-line errors with the byte offset):
// already validated by their tests and hostile-input suite, so no second JSON library (nlohmann-json)
// is linked. httplib stays out of this header (pimpl): users of Server need neither its headers nor flags.
//
// Thread-safety: start()/listen()/run()/stop() from one controlling thread, except that stop() may be
// called from any thread while run() blocks. Handlers run concurrently on the pool's threads; the
// tokenizer's const methods are thread-safe. The tokenizer and the engine must outlive the Server (the
// engine also runs the callbacks of requests the Server cancelled). stop() cancels the generation
// requests in flight before it joins the connection threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "server/chat_template.h"

namespace cw {
class Engine;
}
namespace cw::text {
class Embedder;
}

namespace cw::tok {
class Tokenizer;
}

namespace cw::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;                              // 0: the kernel picks a free port; port() reports it
  std::string api_key;                       // empty: no authentication
  size_t max_body_bytes = size_t{8} << 20;   // larger request bodies get 413
  int threads = 8;                           // connection threads (each keep-alive connection holds one;
                                             // a stream holds one until it ends: make it >= queue)
  std::string model_id = "chunkwise";        // the id /v1/models reports and requests may name
  int64_t queue = 64;                        // generation requests (and embedding batches) admitted at
                                             // once; more: 503
  ChatFamily chat_family = ChatFamily::kChatml;  // how chat messages become a prompt
  // Stream data one request may have waiting for its client (the connection thread is blocked writing);
  // beyond it the request is cancelled and the stream ends with an error event.
  size_t stream_buffer_bytes = size_t{4} << 20;
  // How long a connection may take to deliver one whole request (request line, headers and body), counted
  // from when a connection thread takes it up or from the end of its previous response (keep-alive idle time
  // counts). Past it the connection is closed (with a 408 when part of a request came). Each connection holds a
  // thread while its request trickles in, so without a bound a few clients sending a byte every few seconds
  // hold every thread for good. A handler that runs (generation, a stream) is not bounded by it. [1, 3600000]
  int request_timeout_ms = 10000;
};

class Server {
 public:
  // `tokenizer` must not be null and must outlive the Server. `engine` (optional: without it the
  // generating routes are unknown, 404) must outlive the Server, and `tokenizer` must then be its model's.
  // `embedder` (optional: without it /v1/embeddings is unknown) must outlive the Server.
  Server(ServerOptions options, const tok::Tokenizer* tokenizer, Engine* engine = nullptr,
         const text::Embedder* embedder = nullptr);
  ~Server();  // stops and joins
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Checks the options and binds the listening socket, synchronously. Errors are kInvalidArgument and
  // name the host and port (bad options, or an address that cannot be bound). Idempotent.
  Status listen();
  // listen() if needed, then serves on a background thread; returns at once.
  Status start();
  // listen() if needed, then serves on the calling thread until stop() is called from another thread
  // (returns ok at once when stop() came first).
  Status run();
  // Stops accepting, finishes the requests in flight, joins the background thread. Idempotent.
  void stop();

  // The bound port (the chosen one when options.port was 0); 0 before listen().
  int port() const;
  const ServerOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cw::server
