#include "base/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <numeric>
#include <thread>
#include <vector>

namespace cw {
namespace {

TEST(ThreadPool, CoversEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 100, 1001}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.parallel_for(n, [&](int64_t b, int64_t e, int t) {
        EXPECT_GE(t, 0);
        EXPECT_LT(t, threads);
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << threads << " " << n << " " << i;
    }
  }
}

TEST(ThreadPool, ManySmallJobsBackToBack) {
  ThreadPool pool(2);
  int64_t total = 0;
  std::vector<int64_t> partial(2);
  for (int rep = 0; rep < 20000; ++rep) {
    partial[0] = partial[1] = 0;
    pool.parallel_for(10, [&](int64_t b, int64_t e, int t) {
      for (int64_t i = b; i < e; ++i) partial[static_cast<size_t>(t)] += i;
    });
    total += partial[0] + partial[1];
  }
  EXPECT_EQ(total, 20000 * 45);
}

TEST(ThreadPool, SurvivesParkingBetweenJobs) {
  ThreadPool pool(3);
  std::atomic<int> sum{0};
  for (int rep = 0; rep < 3; ++rep) {
    pool.parallel_for(3, [&](int64_t b, int64_t e, int) { sum += static_cast<int>(e - b); });
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // workers park
  }
  EXPECT_EQ(sum.load(), 9);
}

TEST(ThreadPool, ConcurrentCallersAreSerialized) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int rep = 0; rep < 500; ++rep)
        pool.parallel_for(4, [&](int64_t b, int64_t e, int) { sum += e - b; });
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(sum.load(), 4 * 500 * 4);
}

// Issue 11: `--threads 1024` on a 2-core machine never finished; user thread counts are capped at the
// hardware's concurrency in one place.
TEST(CapThreads, CapsAtTheHardwaresConcurrency) {
  const int hw = hardware_threads();
  EXPECT_GE(hw, 1);
  EXPECT_EQ(hw, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  EXPECT_EQ(cap_threads(1), 1);
  EXPECT_EQ(cap_threads(0), 1);
  EXPECT_EQ(cap_threads(-5), 1);
  EXPECT_EQ(cap_threads(hw), hw);
  EXPECT_EQ(cap_threads(1024), hw);
  EXPECT_EQ(cap_threads(int64_t{1} << 40), hw);
}

// More threads than cores still completes (the waits yield the core); no timing asserted.
TEST(ThreadPool, OversubscribedPoolCompletes) {
  ThreadPool pool(4 * hardware_threads() + 1);
  int64_t total = 0;
  std::vector<int64_t> partial(static_cast<size_t>(pool.size()));
  for (int rep = 0; rep < 200; ++rep) {
    std::fill(partial.begin(), partial.end(), 0);
    pool.parallel_for(1000, [&](int64_t b, int64_t e, int t) {
      for (int64_t i = b; i < e; ++i) partial[static_cast<size_t>(t)] += i;
    });
    for (int64_t p : partial) total += p;
  }
  EXPECT_EQ(total, 200 * (999 * 1000 / 2));
}

}  // namespace
}  // namespace cw
