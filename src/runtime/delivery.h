// Delivery: runs client callbacks off the engine's step thread (the public façade, chunkwise/engine.h).
//
// Each key (a request id) has a FIFO of tasks. Tasks of one key run one at a time, in the order posted;
// tasks of different keys run in parallel on `n_threads` worker threads, so a slow callback holds up its
// own request only (as long as fewer keys are blocked than there are workers). A key's queue holds at
// most `capacity` tasks not yet started: post() refuses more (the caller decides: the façade cancels the
// request) instead of blocking the poster or growing without bound. post_final() always queues, and the
// key is forgotten once that task has run.
//
// Thread-safety: post(), post_final() and shutdown() may be called from any thread. A task must not wait
// for a later task of its own key. An exception escaping a task is caught at the worker (and dropped:
// tasks that care catch their own).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace cw::runtime {

class Delivery {
 public:
  Delivery(int n_threads, size_t capacity);  // n_threads >= 1, capacity >= 1 (CW_CHECK)
  ~Delivery();                               // shutdown()
  Delivery(const Delivery&) = delete;
  Delivery& operator=(const Delivery&) = delete;

  // Queues `task` for `key`; false (nothing queued) when the key already has `capacity` tasks waiting.
  bool post(int64_t key, std::function<void()> task);
  // Queues the key's last task whatever the queue's length.
  void post_final(int64_t key, std::function<void()> task);
  // Runs every queued task, then joins the workers (idempotent). Posting afterwards runs nothing.
  void shutdown();

 private:
  struct Queue {
    std::deque<std::function<void()>> tasks;
    bool busy = false;   // a worker is running this key's tasks
    bool final = false;  // post_final() was called
  };
  void enqueue(int64_t key, std::function<void()> task, bool final);
  void work();

  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, Queue> queues_;
  std::deque<int64_t> ready_;  // keys with tasks and no worker, in order of arrival
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace cw::runtime
