// Admission of work that holds server resources (generation requests, embedding batches): at most
// `limit` at once; one more is refused (the server answers 503 with Retry-After at once). Shared by
// pointer with the callbacks that release it. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>

namespace cw::server {

class Admission {
 public:
  explicit Admission(int64_t limit) : limit_(limit) {}
  // True when admitted (then leave() must follow exactly once).
  bool try_enter() {
    if (n_.fetch_add(1) < limit_) return true;
    n_.fetch_sub(1);
    return false;
  }
  void leave() { n_.fetch_sub(1); }
  int64_t admitted() const { return n_.load(); }
  int64_t limit() const { return limit_; }

 private:
  const int64_t limit_;
  std::atomic<int64_t> n_{0};
};

}  // namespace cw::server
