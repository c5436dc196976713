// See deadline_server.h.
#include "server/deadline_server.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "server/http_util.h"

namespace cw::server {
namespace {

using Clock = std::chrono::steady_clock;

// Set by the Stream of the connection this thread serves (one at a time), read by the error handler that
// httplib calls on the same thread.
thread_local DeadlineServer::ReadFailure t_read_failure = DeadlineServer::ReadFailure::kNone;
thread_local int t_socket = -1;  // the connection this thread serves (current_socket)

int ms_until(Clock::time_point t) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(t - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, 1 << 30));
}

// poll() on one descriptor, retried after a signal; >0 ready, 0 timed out, <0 error.
int poll_one(int fd, short events, int timeout_ms) {
  const auto until = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    pollfd p{fd, events, 0};
    const int r = poll(&p, 1, timeout_ms);
    if (r >= 0 || errno != EINTR) return r;
    timeout_ms = ms_until(until);
  }
}

// The numeric host and the port of a socket's address, as httplib's own stream reports them (getnameinfo
// with NI_NUMERICHOST; ClientConnection compares against these); untouched when the address is unknown.
void address_of(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if ((peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len)
            : getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len)) != 0)
    return;
  int p;
  if (a.ss_family == AF_INET) {
    p = ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
  } else if (a.ss_family == AF_INET6) {
    p = ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
  } else {
    return;
  }
  char host[NI_MAXHOST];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&a), len, host, sizeof host, nullptr, 0, NI_NUMERICHOST) != 0)
    return;
  ip = host;
  port = p;
}

// One connection's socket as httplib's Stream, reads bounded by the current request's deadline and head size.
// Reads go through a buffer (httplib reads request lines a byte at a time); it lives as long as the
// connection, so bytes of a pipelined next request stay for it.
class DeadlineStream final : public httplib::Stream {
 public:
  DeadlineStream(int fd, int read_timeout_ms, int write_timeout_ms, size_t max_head_bytes)
      : fd_(fd), read_timeout_ms_(read_timeout_ms), write_timeout_ms_(write_timeout_ms),
        max_head_bytes_(max_head_bytes) {}

  void begin_request(Clock::time_point deadline) {
    deadline_ = deadline;
    failed_ = false;
    in_head_ = true;
    head_bytes_ = 0;
    line_bytes_ = 0;
    t_read_failure = DeadlineServer::ReadFailure::kNone;
  }
  // A read failed (timed out, the peer closed, the deadline passed, the head was too large): what remains of
  // the connection cannot be parsed as requests.
  bool failed() const { return failed_; }
  // Whether any byte of the current request was read.
  bool began() const { return head_bytes_ > 0; }

  // Waits until a next request's first bytes are there (true), or `idle_until` or the deadline passes, or
  // the server stops (false). Wakes every 100 ms to see a stop: a server stopping does not wait out idle
  // keep-alive connections.
  bool wait_for_request(Clock::time_point idle_until, const std::atomic<socket_t>& listening) {
    if (off_ < len_) return true;
    const Clock::time_point until = std::min(idle_until, deadline_);
    for (;;) {
      if (listening == INVALID_SOCKET) return false;
      const int left = ms_until(until);
      if (left == 0) return false;
      const int r = poll_one(fd_, POLLIN, std::min(left, 100));
      if (r != 0) return r > 0;  // readable (or closed: the read will tell), or an error
    }
  }

  bool is_readable() const override { return off_ < len_ || wait_readable(); }

  // Writable within the write timeout and the peer still there (as httplib's stream: a stream's writes fail
  // once its client has closed or reset, and the generation is cancelled).
  bool is_writable() const override {
    if (poll_one(fd_, POLLOUT, write_timeout_ms_) <= 0) return false;
    if (poll_one(fd_, POLLIN, 0) == 0) return true;  // nothing to read: no end of file, no error
    char c;
    return recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;  // bytes of a next request: still there
  }

  ssize_t read(char* ptr, size_t size) override {
    if (size == 0) return 0;
    if (off_ == len_) {
      if (!wait_readable()) return fail();
      ssize_t n;
      do n = recv(fd_, buf_, sizeof buf_, 0);
      while (n < 0 && errno == EINTR);
      if (n <= 0) {
        failed_ = true;
        return n;
      }
      off_ = 0;
      len_ = static_cast<size_t>(n);
    }
    const size_t n = std::min(size, len_ - off_);
    if (in_head_ && !count_head(buf_ + off_, n)) {
      t_read_failure = DeadlineServer::ReadFailure::kHeadTooLarge;
      return fail();
    }
    std::memcpy(ptr, buf_ + off_, n);
    off_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do n = send(fd_, ptr, size, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { address_of(fd_, true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address_of(fd_, false, ip, port); }
  socket_t socket() const override { return fd_; }

 private:
  // Readable within the read timeout and before the deadline; when the deadline is what ran out, notes it.
  bool wait_readable() const {
    const int left = ms_until(deadline_);
    if (left > 0 && poll_one(fd_, POLLIN, std::min(left, read_timeout_ms_)) > 0) return true;
    if (Clock::now() >= deadline_) t_read_failure = DeadlineServer::ReadFailure::kDeadline;
    return false;
  }

  ssize_t fail() {
    failed_ = true;
    return -1;
  }

  // Counts head bytes handed to httplib up to the empty line that ends the headers; false past the limit.
  bool count_head(const char* p, size_t n) {
    for (size_t i = 0; i < n && in_head_; ++i) {
      if (++head_bytes_ > max_head_bytes_) return false;
      if (p[i] == '\n') {
        if (line_bytes_ == 0) in_head_ = false;  // an empty line ("\r\n"): the body follows
        line_bytes_ = 0;
      } else if (p[i] != '\r') {
        ++line_bytes_;
      }
    }
    return true;
  }

  const int fd_;
  const int read_timeout_ms_, write_timeout_ms_;
  const size_t max_head_bytes_;
  Clock::time_point deadline_{};
  bool failed_ = false;
  bool in_head_ = true;
  size_t head_bytes_ = 0, line_bytes_ = 0;
  char buf_[16384];
  size_t off_ = 0, len_ = 0;
};

}  // namespace

DeadlineServer::ReadFailure DeadlineServer::current_read_failure() { return t_read_failure; }

int DeadlineServer::current_socket() { return t_socket; }

std::string DeadlineServer::timeout_message() const {
  char buf[96];
  std::snprintf(buf, sizeof buf, "the request was not received within %g s (--request-timeout)",
                static_cast<double>(request_timeout_.count()) / 1000.0);
  return buf;
}

void DeadlineServer::set_request_timeout(std::chrono::milliseconds timeout) {
  request_timeout_ = timeout;
  const auto seconds = std::chrono::ceil<std::chrono::seconds>(timeout).count();
  if (seconds < keep_alive_timeout_sec_) set_keep_alive_timeout(static_cast<time_t>(seconds));
}

// httplib's own loop, with the deadline: up to keep_alive_max_count_ requests, each awaited for at most the
// keep-alive timeout and read before its deadline; the last one (or any the client marked "close") closes.
bool DeadlineServer::process_and_close_socket(socket_t sock) {
  const auto to_ms = [](time_t sec, time_t usec) { return static_cast<int>(sec * 1000 + (usec + 999) / 1000); };
  DeadlineStream strm(sock, to_ms(read_timeout_sec_, read_timeout_usec_), to_ms(write_timeout_sec_, write_timeout_usec_),
                      max_head_bytes_);
  bool ret = false;
  t_socket = static_cast<int>(sock);
  for (size_t left = keep_alive_max_count_; left > 0 && svr_sock_ != INVALID_SOCKET; --left) {
    const auto start = Clock::now();
    strm.begin_request(start + request_timeout_);
    if (!strm.wait_for_request(start + std::chrono::seconds(keep_alive_timeout_sec_), svr_sock_)) break;
    bool closed = false;
    ret = process_request(strm, left == 1, closed, nullptr);
    // httplib answers a request it could not read with a 400 (turned into 408 by the error handler), except
    // when the read failed within the request line: it just closes. Such a client gets the 408 from here.
    if (!ret && strm.began() && t_read_failure == ReadFailure::kDeadline) {
      const std::string body = error_json(408, timeout_message());
      const std::string answer = "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nContent-Length: " +
                                 std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
      (void)strm.write(answer.data(), answer.size());  // small: one send; a client that is gone misses it
    }
    if (!ret || closed || strm.failed()) break;
  }
  t_read_failure = ReadFailure::kNone;
  t_socket = -1;
  shutdown(sock, SHUT_RDWR);
  close(sock);
  return ret;
}

}  // namespace cw::server
