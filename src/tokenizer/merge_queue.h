// MergeQueue: the candidate queue of the long-word path of the SPM and BPE encoders (spm.cc, bpe.cc).
//
// Why: both encoders repeatedly merge the best adjacent pair of a word (best = lowest rank, ties: leftmost).
// A plain binary heap of {score, left, right, ...} records costs 20-28 bytes per candidate and a cache miss
// per level; on one 50 MB "word" (no separators) that is > 2 GB and about a minute. Here a candidate is only
// its left symbol index (4 bytes) in a bucket per rank; within a bucket, candidates pushed in ascending
// order (the common case: the first pass pushes every pair left to right, and merges proceed leftmost
// first) are appended to a sorted run, others go to a small heap. Popping is amortized O(1) for runs and
// O(log k) for the k out-of-order entries; memory is 4 bytes per live candidate (consumed runs are
// compacted) plus a fixed 4 bytes per possible rank.
//
// Contract: pop() returns the entries in ascending (rank, left) order. Entries are never invalidated: the
// caller re-validates each popped entry against the current symbols (an entry is valid iff the pair now
// starting at `left` has exactly the popped rank) and skips it otherwise. This yields the same merge order
// as the reference heap algorithm: a popped entry that re-validates has the key of the current pair at
// `left`, which is in the queue, and no remaining entry is smaller, so it is the best current pair.
//
// Not thread-safe; the encoders keep one per thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace cw::tok {

// Words longer than this many bytes take the long-word path (MergeQueue, compact symbols); shorter ones the
// tuned small-word heap. Both give identical ids; tests lower it to 0 to compare the paths on every input.
inline std::atomic<size_t> g_long_word_bytes{size_t{64} << 10};

class MergeQueue {
 public:
  // Empties the queue for ranks in [0, n_ranks). O(buckets touched since the last reset).
  void reset(size_t n_ranks) {
    for (uint32_t r : touched_) slot_[r] = -1;
    touched_.clear();
    if (slot_.size() != n_ranks) slot_.assign(n_ranks, -1);
    for (size_t k = 0; k < n_buckets_; ++k) buckets_[k].clear();
    n_buckets_ = 0;
    ranks_.clear();
  }

  void push(uint32_t rank, int32_t left) {
    int32_t& s = slot_[rank];
    if (s < 0) {
      s = static_cast<int32_t>(n_buckets_++);
      touched_.push_back(rank);
      if (buckets_.size() < n_buckets_) buckets_.emplace_back();
    }
    Bucket& b = buckets_[static_cast<size_t>(s)];
    if (!b.queued) {
      b.queued = true;
      ranks_.push_back(rank);
      std::push_heap(ranks_.begin(), ranks_.end(), std::greater<>{});
    }
    if (b.head == b.run.size()) {
      b.run.clear();
      b.head = 0;
    }
    if (b.run.empty() || left >= b.run.back()) {
      b.run.push_back(left);
    } else {
      b.heap.push_back(left);
      std::push_heap(b.heap.begin(), b.heap.end(), std::greater<>{});
    }
  }

  // The smallest (rank, left); false when empty.
  bool pop(uint32_t& rank, int32_t& left) {
    while (!ranks_.empty()) {
      const uint32_t r = ranks_.front();
      Bucket& b = buckets_[static_cast<size_t>(slot_[r])];
      const bool has_run = b.head < b.run.size();
      if (!has_run && b.heap.empty()) {
        std::pop_heap(ranks_.begin(), ranks_.end(), std::greater<>{});
        ranks_.pop_back();
        b.queued = false;
        continue;
      }
      rank = r;
      if (has_run && (b.heap.empty() || b.run[b.head] <= b.heap.front())) {
        left = b.run[b.head++];
        if (b.head > 4096 && b.head * 2 > b.run.size()) {  // compact the consumed prefix
          b.run.erase(b.run.begin(), b.run.begin() + static_cast<std::ptrdiff_t>(b.head));
          b.head = 0;
        }
      } else {
        std::pop_heap(b.heap.begin(), b.heap.end(), std::greater<>{});
        left = b.heap.back();
        b.heap.pop_back();
      }
      return true;
    }
    return false;
  }

  // Frees large buffers (after a huge word) so that a thread does not keep them.
  void trim() {
    size_t bytes = 0;
    for (const Bucket& b : buckets_) bytes += (b.run.capacity() + b.heap.capacity()) * sizeof(int32_t);
    if (bytes > (size_t{8} << 20)) {
      reset(slot_.size());
      buckets_.clear();
      buckets_.shrink_to_fit();
    }
  }

 private:
  struct Bucket {
    std::vector<int32_t> run;   // ascending; [head, size) not yet popped
    size_t head = 0;
    std::vector<int32_t> heap;  // min-heap of out-of-order entries
    bool queued = false;        // the rank is in ranks_
    void clear() {
      run.clear();
      heap.clear();
      head = 0;
      queued = false;
    }
  };
  std::vector<int32_t> slot_;      // rank -> index into buckets_, -1 when untouched
  std::vector<uint32_t> touched_;  // ranks with a slot
  std::vector<Bucket> buckets_;
  size_t n_buckets_ = 0;
  std::vector<uint32_t> ranks_;  // min-heap of ranks whose bucket may be non-empty
};

}  // namespace cw::tok
