// The server's Prometheus metrics (GET /metrics, text exposition format 0.0.4). Names:
//   chunkwise_requests_total{endpoint,status}  counter  HTTP responses by route and status code; endpoint is
//                                                        the route ("/v1/completions", ...) or "other"
//   chunkwise_prompt_tokens_total              counter  prompt tokens of finished generation requests
//   chunkwise_generated_tokens_total           counter  tokens they generated (a final eos included)
//   chunkwise_cached_tokens_total              counter  their prompt tokens reused from the prefix cache
//   chunkwise_requests_admitted                gauge    generation requests (running, waiting, or finishing
//                                                        their response) and embedding batches admitted now
//   chunkwise_requests_admitted_limit          gauge    the admission limit (--queue): beyond it, 503
//   chunkwise_requests_running                 gauge    requests the engine runs (decoding or prefilling)
//   chunkwise_requests_waiting                 gauge    requests queued in the engine
//   chunkwise_kv_blocks_total                  gauge    KV cache blocks
//   chunkwise_kv_blocks_used                   gauge    blocks held by requests (total - free - cached)
//   chunkwise_kv_blocks_free                   gauge    blocks holding nothing
//   chunkwise_kv_blocks_cached                 gauge    unreferenced blocks kept for prefix reuse (evictable)
//   chunkwise_kv_block_size_tokens             gauge    tokens per block
//   chunkwise_engine_steps_total               counter  engine steps (one forward pass each)
//   chunkwise_engine_busy_seconds_total        counter  time the step thread spent in steps
//   chunkwise_engine_preemptions_total         counter  requests preempted for KV memory (recomputed later)
// The engine gauges and counters are absent when the server runs without an engine.
// Thread-safety: every method may be called concurrently.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace cw {
class Engine;
}

namespace cw::server {

class Metrics {
 public:
  void count_response(std::string_view endpoint, int status);
  void add_tokens(int64_t prompt, int64_t generated, int64_t cached);

  // The exposition text; `engine` may be null.
  std::string render(const Engine* engine, int64_t admitted, int64_t admitted_limit) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> responses_;
  std::atomic<int64_t> prompt_tokens_{0}, generated_tokens_{0}, cached_tokens_{0};
};

}  // namespace cw::server
