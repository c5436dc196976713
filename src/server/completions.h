// POST /v1/completions and POST /v1/chat/completions over the public cw::Engine (issue 15). Internal to
// cw_server (includes httplib); the Server routes to it. See http_server.h for the behaviour and
// openai_request.h for the fields.
//
// Per request, no thread besides the connection thread httplib gives it: the request is submitted with
// StreamCallbacks whose on_text / on_token append to a bounded per-request buffer and whose on_done
// stores the result; the connection thread waits on the request's condition variable (non-streaming), or
// drains the buffer into Server-Sent Events from httplib's chunked content provider (streaming). A
// stream whose socket write fails (the client went away) cancels its request at once; while no token
// flows, an SSE comment (": keep-alive") goes out every second so a vanished client is noticed even
// then. A non-streaming request's connection thread polls its client's socket while it waits
// (client_connection.h) and cancels the request when the client has gone. Admission (admission.h): a generation request holds a slot from submit to its on_done; without one
// it gets 503 with Retry-After at once.
#pragma once

#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "chunkwise/engine.h"
#include "server/admission.h"
#include "server/chat_template.h"
#include "server/metrics.h"
#include "tokenizer/tokenizer.h"

namespace cw::server {

struct CompletionsConfig {
  std::string model_id;
  ChatFamily chat_family = ChatFamily::kChatml;
  size_t stream_buffer_bytes = size_t{4} << 20;  // undelivered SSE data per request; beyond: cancelled
};

class Completions {
 public:
  // engine and tokenizer (the engine model's) must outlive every request's callbacks: the engine runs
  // them, so the engine must outlive the Server; metrics and admission are shared for that reason.
  Completions(Engine* engine, const tok::Tokenizer* tokenizer, std::shared_ptr<Metrics> metrics,
              std::shared_ptr<Admission> admission, CompletionsConfig config);

  void handle(const httplib::Request& req, httplib::Response& res, bool chat);
  // Refuses new requests (503) and cancels those in flight (their responses end at the next step).
  void shutdown();

 private:
  struct Stream;

  void track(int64_t id);
  void untrack(int64_t id);
  void respond(const httplib::Request& req, httplib::Response& res, bool chat);

  Engine* engine_;
  const tok::Tokenizer* tokenizer_;
  CompletionsConfig config_;
  std::shared_ptr<Metrics> metrics_;
  std::shared_ptr<Admission> admission_;
  std::atomic<uint64_t> seed_counter_{0};
  std::mutex mu_;  // in_flight_, stopping_
  std::set<int64_t> in_flight_;
  bool stopping_ = false;
};

}  // namespace cw::server
