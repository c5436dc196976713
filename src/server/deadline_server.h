// cw::server::DeadlineServer: an httplib::Server whose connections must deliver each whole request (request
// line, headers, body) within a deadline, and whose request heads are bounded in size (internal to cw_server).
//
// Why: cpp-httplib 0.11.4 gives each connection a thread of a fixed pool for as long as it is open, and its
// read timeout (5 s) is per read: a client that sends a byte every few seconds keeps its thread for good, and
// as many such clients as threads stall the server (every other connection waits in the pool's queue). Nor
// does it bound how many header lines a request may send.
//
// How: httplib's extension point for transports (the one its SSLServer uses) is overriding
// process_and_close_socket(), which owns an accepted socket, and serving each request with the protected
// process_request() over a Stream of our own. Our Stream's reads wait at most until the request's deadline,
// so the connection thread never blocks past it; no watchdog thread, no descriptor bookkeeping, no race
// with a descriptor number reused by a later connection. The deadline starts when a connection thread
// takes the connection up (time spent queued behind busy threads is not the client's fault) and again after
// each response (keep-alive idle time counts). Handlers read nothing from the socket (the body is read
// before routing), so a handler that runs -- a generation, a stream -- is never cut by the deadline.
#pragma once

#include <httplib.h>

#include <chrono>
#include <cstddef>
#include <string>

namespace cw::server {

class DeadlineServer : public httplib::Server {
 public:
  // Why the request being answered on this thread could not be read; kNone when it could (or no request).
  // The error handler runs on the connection's thread while httplib answers such a request with its 400,
  // and uses this to answer 408 / 431 instead.
  enum class ReadFailure { kNone, kDeadline, kHeadTooLarge };
  static ReadFailure current_read_failure();
  // The socket of the connection whose request this thread is handling (httplib runs a request's handler
  // on its connection's thread); -1 outside one. ClientConnection polls it to see a client leave.
  static int current_socket();
  // The message of a 408.
  std::string timeout_message() const;

  // Both before listening. The keep-alive timeout httplib advertises is lowered to the request timeout
  // (rounded up to seconds) when that is shorter: an idle connection is closed at the deadline.
  void set_request_timeout(std::chrono::milliseconds timeout);
  // The request line and headers together; more: 431 and the connection is closed.
  void set_max_head_bytes(size_t bytes) { max_head_bytes_ = bytes; }

 private:
  bool process_and_close_socket(socket_t sock) override;

  std::chrono::milliseconds request_timeout_{10000};
  size_t max_head_bytes_ = size_t{64} << 10;
};

}  // namespace cw::server
