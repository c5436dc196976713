// Whether the client of a request that httplib is handling is still connected (internal to cw_server).
//
// Why this exists: a non-streaming completion writes nothing until it is done, so a client that went away
// is not noticed by a failing write (as a stream's is) and its request would run to max_tokens, holding KV
// blocks and an admission slot. Debian 12's cpp-httplib (0.11.4) gives a handler neither the socket nor
// upstream's later Request::is_connection_closed(); our DeadlineServer serves each connection itself and
// tells the handler's thread which socket it is on (DeadlineServer::current_socket), which this polls.
#pragma once

#include <httplib.h>

namespace cw::server {

class ClientConnection {
 public:
  // On the thread that runs the request's handler (where the socket is known).
  explicit ClientConnection(const httplib::Request& req);

  // True once the peer has closed (or half-closed) or reset the connection: the socket reports
  // hang-up / error, or it is readable with nothing to read (end of file), or the connection was reset
  // before httplib could ask for its peer. Bytes of a pipelined next request count as connected. Outside
  // a DeadlineServer connection (no socket known) the answer is always false.
  bool gone() const;

 private:
  bool reset_early_;  // httplib found no peer address: reset before the headers were read
  int fd_;            // the connection's socket, or -1
};

}  // namespace cw::server
