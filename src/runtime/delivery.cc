#include "runtime/delivery.h"

#include <utility>

#include "base/status.h"

namespace cw::runtime {

Delivery::Delivery(int n_threads, size_t capacity) : capacity_(capacity) {
  CW_CHECK(n_threads >= 1 && capacity >= 1);
  for (int i = 0; i < n_threads; ++i) workers_.emplace_back([this] { work(); });
}

Delivery::~Delivery() { shutdown(); }

bool Delivery::post(int64_t key, std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = queues_.find(key);
    if (it != queues_.end() && it->second.tasks.size() >= capacity_) return false;
  }
  enqueue(key, std::move(task), /*final=*/false);
  return true;
}

void Delivery::post_final(int64_t key, std::function<void()> task) { enqueue(key, std::move(task), /*final=*/true); }

void Delivery::enqueue(int64_t key, std::function<void()> task, bool final) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ && workers_.empty()) return;  // shut down: nothing runs any more
    Queue& q = queues_[key];
    q.final = q.final || final;
    const bool idle = q.tasks.empty() && !q.busy;
    q.tasks.push_back(std::move(task));
    if (!idle) return;
    ready_.push_back(key);
  }
  cv_.notify_one();
}

void Delivery::work() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !ready_.empty(); });
    if (ready_.empty()) return;  // stopping, and nothing left to run
    const int64_t key = ready_.front();
    ready_.pop_front();
    Queue& q = queues_[key];
    std::deque<std::function<void()>> batch;
    batch.swap(q.tasks);
    q.busy = true;
    lock.unlock();
    for (std::function<void()>& task : batch) {
      try {
        task();
      } catch (...) {  // a worker must survive its tasks (DESIGN.md §5: exceptions stop at thread entry)
      }
    }
    batch.clear();  // destroy the tasks (and what they captured) outside the lock
    lock.lock();
    Queue& after = queues_[key];  // std::map: references stay valid, but look it up again for clarity
    after.busy = false;
    if (!after.tasks.empty()) {
      ready_.push_back(key);
      cv_.notify_one();
    } else if (after.final) {
      queues_.erase(key);
    }
  }
}

void Delivery::shutdown() {
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    workers.swap(workers_);
  }
  cv_.notify_all();
  for (std::thread& t : workers) t.join();
}

}  // namespace cw::runtime
