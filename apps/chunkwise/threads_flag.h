// The thread-count flags (--threads / -t) of the subcommands that run the model or a document pool. The
// library caps every thread count at the hardware's concurrency (cw::cap_threads: more threads than cores
// only fight over them); this helper applies the same cap and tells the user when it did.
#pragma once

#include <cstdint>
#include <cstdio>

#include "base/thread_pool.h"

namespace cw::app {

// cap_threads(requested); when that is less than requested, prints one line on stderr:
// "chunkwise run: --threads 1024 capped at 2, the hardware's concurrency".
inline int capped_threads_flag(const char* command, const char* flag, int64_t requested) {
  const int capped = cap_threads(requested);
  if (capped < requested)
    std::fprintf(stderr, "chunkwise %s: %s %lld capped at %d, the hardware's concurrency\n", command, flag,
                 static_cast<long long>(requested), capped);
  return capped;
}

}  // namespace cw::app
