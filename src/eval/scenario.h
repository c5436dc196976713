// Engine scenarios for `chunkwise bench --scenario` (issue 5): workloads that measure what the scheduler
// and the prefix cache are for, on the real Engine (runtime::Engine over the Forward pass).
//
//  mixed:  n_streams requests decode steadily; once each has produced `arrive_after` tokens, n_long long
//          prompts arrive. Reported: inter-token latency (ITL) of the streams' tokens from the arrival on
//          (p50 / p99 / max), the long prompts' time to first token, and total throughput (prompt +
//          generated tokens over the wall time from the first submit to the last result). Run once per
//          schedule: kChunked keeps every decode in every step and fills the rest of the token budget with
//          prefill chunks (SARATHI); kPrefillFirst runs whole prompts and pauses decodes meanwhile.
//  prefix: time to first token (TTFT) of a prompt = shared prefix + suffix, cold (empty cache: the whole
//          prompt is computed) vs warm (the prefix was computed by an earlier request with another suffix,
//          so only the suffix is computed); warm is the median of `reps` requests with fresh suffixes.
//
// Prompts are pseudo-random token ids (fixed seed), so any model can run them; timings are wall-clock.
// Thread-safety: each call builds and owns its engine. Failure: invalid options (kInvalidArgument /
// kOutOfRange naming them) and engine errors are returned; nothing aborts.
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "model/model.h"
#include "runtime/engine.h"

namespace cw::eval {

struct MixedScenarioOptions {
  int64_t n_streams = 4;          // decoding requests
  int64_t stream_prompt = 16;     // their prompt tokens
  int64_t stream_tokens = 48;     // tokens each stream generates
  int64_t arrive_after = 4;       // long prompts arrive once every stream has this many tokens
  int64_t n_long = 2;             // long prompts
  int64_t long_prompt = 1024;     // their prompt tokens
  int64_t long_predict = 4;       // tokens each long prompt generates
  uint64_t seed = 1;
  runtime::EngineOptions engine;  // schedule, batch_tokens, threads, KV; max_running is raised to fit
};

struct MixedScenarioResult {
  double itl_p50_ms = 0, itl_p99_ms = 0, itl_max_ms = 0;  // streams' inter-token gaps after the arrival
  int64_t itl_samples = 0;
  double long_ttft_ms = 0;  // mean over the long prompts, from their submit
  double wall_s = 0;
  int64_t total_tokens = 0;  // prompt + generated tokens of every request
  double total_tok_s = 0;
  int64_t steps = 0;
};

Result<MixedScenarioResult> run_mixed_scenario(const model::Model& m, const MixedScenarioOptions& o);

struct PrefixScenarioOptions {
  int64_t prefix = 4096;  // shared prefix tokens
  int64_t suffix = 64;    // suffix tokens
  int reps = 3;           // warm requests (median)
  uint64_t seed = 1;
  runtime::EngineOptions engine;  // KV is sized to hold the prefix + reps + 1 suffixes unless set
};

struct PrefixScenarioResult {
  double cold_ttft_ms = 0;
  double warm_ttft_ms = 0;                 // median
  std::vector<double> warm_samples_ms;
  int64_t warm_cached_tokens = 0;          // of the first warm request
  int64_t warm_computed_tokens = 0;
  double speedup = 0;                      // cold / warm
};

Result<PrefixScenarioResult> run_prefix_scenario(const model::Model& m, const PrefixScenarioOptions& o);

// Percentile (0..100) of `v` by linear interpolation between order statistics; 0 when empty.
double percentile(std::vector<double> v, double p);

}  // namespace cw::eval
