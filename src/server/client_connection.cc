// See client_connection.h.
#include "server/client_connection.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include "server/deadline_server.h"

namespace cw::server {

// httplib asks getpeername() for the peer once the headers are read; it fails (no address, port -1) only
// when the connection was already reset -- a client that sent its request and vanished at once.
ClientConnection::ClientConnection(const httplib::Request& req)
    : reset_early_(req.remote_port < 0 || req.remote_addr.empty()), fd_(DeadlineServer::current_socket()) {}

bool ClientConnection::gone() const {
  if (reset_early_) return true;
  if (fd_ < 0) return false;
  pollfd p{fd_, static_cast<short>(POLLIN | POLLRDHUP), 0};
  if (poll(&p, 1, 0) <= 0) return false;  // nothing happened (or EINTR: ask again next time)
  if ((p.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL)) != 0) return true;
  if ((p.revents & POLLIN) == 0) return false;
  char c;
  const ssize_t n = recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

}  // namespace cw::server
