// A persistent thread pool for data-parallel loops (matmuls, attention heads). The caller participates as
// thread 0. Workers spin briefly on a generation counter after each job (a decode step issues hundreds of
// small jobs back to back, so sleeping between them would cost a wake-up each), then park on a condition
// variable when idle, so an idle engine burns no CPU. No allocation per job.
//
// Oversubscription: every job waits for all of the pool's threads, so a pool with more threads than the
// machine has cores turns each job into a round of context switches (64 threads on 2 cores made a run
// 800x slower). Thread counts a user controls go through cap_threads() below; the waits also yield the
// core now and then, so a pool on a busy machine still progresses.
//
// Thread-safety: one parallel_for at a time per pool (calls from several threads are serialized by a
// mutex). `fn` must not call parallel_for on the same pool.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace cw {

// The hardware's concurrency: std::thread::hardware_concurrency(), at least 1.
int hardware_threads();

// The one rule for thread counts a user controls (forward passes, document pools): `requested` capped at
// hardware_threads(), and at least 1. Callers that want to tell the user compare the result with what was
// asked.
int cap_threads(int64_t requested);

class ThreadPool {
 public:
  // n_threads >= 1 (1 = run everything on the caller).
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Splits [0, n) into size() contiguous ranges (as equal as possible) and runs fn(begin, end, thread) on
  // each, thread 0 on the caller; returns when all are done. Empty ranges are skipped.
  template <typename Fn>
  void parallel_for(int64_t n, Fn&& fn) {
    run(n, &fn, [](void* ctx, int64_t b, int64_t e, int t) { (*static_cast<Fn*>(ctx))(b, e, t); });
  }

 private:
  using Trampoline = void (*)(void*, int64_t, int64_t, int);
  void run(int64_t n, void* ctx, Trampoline tramp);
  void worker(int index);
  void run_range(int thread);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex run_mu_;  // serializes parallel_for callers
  // Current job.
  int64_t n_ = 0;
  void* ctx_ = nullptr;
  Trampoline tramp_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  // Parking.
  std::mutex park_mu_;
  std::condition_variable park_cv_;
  std::atomic<int> parked_{0};
};

}  // namespace cw
