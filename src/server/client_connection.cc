// See client_connection.h.
#include "server/client_connection.h"

#include <dirent.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace cw::server {
namespace {

// The numeric host and the port of a socket address, as httplib writes Request::remote_addr (getnameinfo
// with NI_NUMERICHOST).
bool host_and_port(const sockaddr_storage& a, socklen_t len, char* host, size_t host_len, int* port) {
  if (a.ss_family == AF_INET) {
    *port = ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
  } else if (a.ss_family == AF_INET6) {
    *port = ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
  } else {
    return false;
  }
  return getnameinfo(reinterpret_cast<const sockaddr*>(&a), len, host, static_cast<socklen_t>(host_len), nullptr, 0,
                     NI_NUMERICHOST) == 0;
}

// The descriptor of the connected socket with this local port and this peer; kNoSuchSocket when there is
// none (getpeername() fails on a reset connection, so it is not found), kCannotLook without /proc.
constexpr int kNoSuchSocket = -1, kCannotLook = -3;
int find_socket(int local_port, const std::string& peer_host, int peer_port) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return kCannotLook;
  int found = kNoSuchSocket;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const int fd = std::atoi(e->d_name);
    if (fd == dirfd(dir)) continue;
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    char host[NI_MAXHOST];
    int port = -1;
    // Not a socket (ENOTSOCK), or not an IP socket, or another local port: not ours.
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) continue;
    if (!host_and_port(a, len, host, sizeof host, &port) || port != local_port) continue;
    len = sizeof a;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) continue;  // listening, or reset
    if (!host_and_port(a, len, host, sizeof host, &port) || port != peer_port || peer_host != host) continue;
    found = fd;
    break;
  }
  closedir(dir);
  return found;
}

}  // namespace

bool ClientConnection::gone() {
  // httplib asks getpeername() for the peer once the headers are read; it fails (no address, port -1)
  // only when the connection was already reset -- a client that sent its request and vanished at once.
  if (req_.remote_port < 0 || req_.remote_addr.empty()) return true;
  if (fd_ == kNotLookedUp) fd_ = find_socket(req_.local_port, req_.remote_addr, req_.remote_port);
  // The connection is open in this process while its handler runs: when no socket of it answers
  // getpeername(), it was reset (seen after a client's RST between the headers and the first look).
  if (fd_ == kNoSuchSocket) return true;
  if (fd_ < 0) return false;  // kCannotLook: no /proc; such a client is noticed only by the engine's end
  pollfd p{fd_, static_cast<short>(POLLIN | POLLRDHUP), 0};
  if (poll(&p, 1, 0) <= 0) return false;  // nothing happened (or EINTR: ask again next time)
  if ((p.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL)) != 0) return true;
  if ((p.revents & POLLIN) == 0) return false;
  char c;
  const ssize_t n = recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

}  // namespace cw::server
