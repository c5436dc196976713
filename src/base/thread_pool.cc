#include "base/thread_pool.h"

#include <algorithm>
#include <chrono>

#include "base/status.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CW_CPU_RELAX() _mm_pause()
#else
#define CW_CPU_RELAX() std::this_thread::yield()
#endif

namespace cw {
namespace {
// How long a worker spins for the next job before parking (decode steps issue jobs every few µs).
constexpr auto kSpin = std::chrono::microseconds(2000);
// Spins between two yields of the core while waiting (a few µs of pauses): cheap when the other threads
// are running, and lets a descheduled thread in when the machine is busier than the pool assumed.
constexpr int kSpinsPerYield = 1024;
}  // namespace

int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(std::min<unsigned>(n, 1u << 16));
}

int cap_threads(int64_t requested) {
  if (requested < 1) return 1;
  return static_cast<int>(std::min<int64_t>(requested, hardware_threads()));
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads) {
  CW_CHECK(n_threads >= 1);
  workers_.reserve(static_cast<size_t>(n_threads - 1));
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(park_mu_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  park_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_range(int thread) {
  const int64_t b = n_ * thread / n_threads_, e = n_ * (thread + 1) / n_threads_;
  if (b < e) tramp_(ctx_, b, e, thread);
}

void ThreadPool::run(int64_t n, void* ctx, Trampoline tramp) {
  if (n <= 0) return;
  if (n_threads_ == 1 || n == 1) {
    tramp(ctx, 0, n, 0);
    return;
  }
  std::lock_guard<std::mutex> run_lock(run_mu_);
  n_ = n;
  ctx_ = ctx;
  tramp_ = tramp;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  {
    // Publishing the generation under park_mu_ closes the race with a worker about to park.
    std::lock_guard<std::mutex> lock(park_mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  if (parked_.load(std::memory_order_acquire) > 0) park_cv_.notify_all();
  run_range(0);
  for (unsigned spins = 1; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    CW_CPU_RELAX();
    if (spins % kSpinsPerYield == 0) std::this_thread::yield();
  }
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  while (true) {
    auto spin_until = std::chrono::steady_clock::now() + kSpin;
    uint64_t g;
    int spins = 0;
    while ((g = generation_.load(std::memory_order_acquire)) == seen) {
      CW_CPU_RELAX();
      if (++spins % kSpinsPerYield != 0) continue;
      std::this_thread::yield();
      if (std::chrono::steady_clock::now() > spin_until) {
        std::unique_lock<std::mutex> lock(park_mu_);
        parked_.fetch_add(1);
        park_cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        parked_.fetch_sub(1);
        spin_until = std::chrono::steady_clock::now() + kSpin;
      }
    }
    seen = g;
    if (stop_.load()) return;
    run_range(index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace cw
