// Whether the client of a request that httplib is handling is still connected (internal to cw_server).
//
// Why this exists: a non-streaming completion writes nothing until it is done, so a client that went away
// is not noticed by a failing write (as a stream's is) and its request would run to max_tokens, holding KV
// blocks and an admission slot. Debian 12's cpp-httplib (0.11.4) gives a handler neither the socket nor
// upstream's later Request::is_connection_closed(), and the method that owns the socket
// (Server::process_and_close_socket) is private. The request does carry both ends' addresses, though, and
// the handler runs while its connection is open (the connection thread closes it only after the handler
// returns), so the socket is found once by its (local port, peer address, peer port) among the process's
// descriptors and then polled.
#pragma once

#include <httplib.h>

namespace cw::server {

class ClientConnection {
 public:
  explicit ClientConnection(const httplib::Request& req) : req_(req) {}

  // True once the peer has closed (or half-closed) or reset the connection: the socket reports
  // hang-up / error, or it is readable with nothing to read (end of file), or it was reset before it could
  // be looked at (httplib has no peer address for the request, or no socket of this process has the
  // request's peer). Bytes of a pipelined next request count as connected. The first call looks the
  // socket up (one pass over /proc/self/fd); without /proc the answer is always false.
  bool gone();

 private:
  static constexpr int kNotLookedUp = -2;
  const httplib::Request& req_;
  int fd_ = kNotLookedUp;  // else the socket, or find_socket's kNoSuchSocket / kCannotLook
};

}  // namespace cw::server
