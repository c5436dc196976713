#include "eval/scenario.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <string>

namespace cw::eval {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::vector<int32_t> random_tokens(std::mt19937_64& rng, int64_t n, int64_t n_vocab) {
  const int32_t lo = n_vocab > 8 ? 3 : 0;  // skip the usual special ids (unk, bos, eos)
  std::uniform_int_distribution<int32_t> d(lo, static_cast<int32_t>(n_vocab - 1));
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = d(rng);
  return t;
}

runtime::SeqRequest greedy_request(std::vector<int32_t> prompt, int64_t n_predict) {
  runtime::SeqRequest r;
  r.prompt = std::move(prompt);
  r.n_predict = n_predict;
  r.sampling.temperature = 0;
  r.eos = -1;  // fixed lengths: the timing must not depend on what the model says
  return r;
}

Status positive(int64_t v, const char* name) {
  if (v < 1) return out_of_range(std::string(name) + " must be >= 1");
  return Status::ok();
}

}  // namespace

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

Result<MixedScenarioResult> run_mixed_scenario(const model::Model& m, const MixedScenarioOptions& o) {
  CW_RETURN_IF_ERROR(positive(o.n_streams, "--streams"));
  CW_RETURN_IF_ERROR(positive(o.stream_prompt, "the stream prompt length"));
  CW_RETURN_IF_ERROR(positive(o.n_long, "--long-prompts"));
  CW_RETURN_IF_ERROR(positive(o.long_prompt, "--long-prompt-tokens"));
  CW_RETURN_IF_ERROR(positive(o.long_predict, "the long prompts' n_predict"));
  if (o.arrive_after < 1 || o.arrive_after + 2 > o.stream_tokens)
    return out_of_range("--stream-tokens must exceed the arrival point (" + std::to_string(o.arrive_after) +
                        " tokens) by at least 2");
  runtime::EngineOptions eo = o.engine;
  eo.max_running = std::max(eo.max_running, o.n_streams + o.n_long);
  if (eo.kv_mem_bytes == 0 && eo.ctx_tokens == 0) {
    eo.ctx_tokens = o.n_streams * (o.stream_prompt + o.stream_tokens + eo.block_size) +
                    o.n_long * (o.long_prompt + o.long_predict + eo.block_size);
  }
  const int64_t V = m.hparams().n_vocab;
  std::mt19937_64 rng(o.seed);

  // State the callbacks share; declared before the engine, so the engine (and its step thread) goes first.
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::vector<Clock::time_point>> stream_times(static_cast<size_t>(o.n_streams));
  std::vector<Clock::time_point> long_first(static_cast<size_t>(o.n_long));
  std::vector<Clock::time_point> long_submit(static_cast<size_t>(o.n_long));
  std::vector<bool> long_seen(static_cast<size_t>(o.n_long), false);
  bool arrived = false;
  Clock::time_point t_arrive;
  std::vector<runtime::RequestId> ids;
  Status submit_status;

  std::vector<std::vector<int32_t>> stream_prompts, long_prompts;
  for (int64_t s = 0; s < o.n_streams; ++s) stream_prompts.push_back(random_tokens(rng, o.stream_prompt, V));
  for (int64_t l = 0; l < o.n_long; ++l) long_prompts.push_back(random_tokens(rng, o.long_prompt, V));

  CW_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Engine> engine, runtime::Engine::create(m, eo));
  // The long prompts are submitted from the step thread, in the callback that delivers the last stream's
  // arrive_after-th token: they enter the very next step, whatever the speed of the model.
  auto submit_long = [&] {  // under mu
    t_arrive = Clock::now();
    for (int64_t l = 0; l < o.n_long; ++l) {
      runtime::RequestCallbacks cb;
      cb.on_token = [&, l](runtime::RequestId, int32_t) {
        std::lock_guard<std::mutex> lock(mu);
        if (!long_seen[static_cast<size_t>(l)]) {
          long_seen[static_cast<size_t>(l)] = true;
          long_first[static_cast<size_t>(l)] = Clock::now();
        }
      };
      long_submit[static_cast<size_t>(l)] = Clock::now();
      auto id = engine->submit(greedy_request(long_prompts[static_cast<size_t>(l)], o.long_predict), cb);
      if (!id.is_ok()) {
        submit_status = id.status();
        return;
      }
      ids.push_back(*id);
    }
  };

  const Clock::time_point t0 = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mu);
    for (int64_t s = 0; s < o.n_streams; ++s) {
      runtime::RequestCallbacks cb;
      cb.on_token = [&, s](runtime::RequestId, int32_t) {
        std::lock_guard<std::mutex> inner(mu);
        stream_times[static_cast<size_t>(s)].push_back(Clock::now());
        if (arrived) return;
        for (const auto& t : stream_times)
          if (static_cast<int64_t>(t.size()) < o.arrive_after) return;
        arrived = true;
        submit_long();
        cv.notify_all();
      };
      auto id = engine->submit(greedy_request(stream_prompts[static_cast<size_t>(s)], o.stream_tokens), cb);
      if (!id.is_ok()) return id.status();
      ids.push_back(*id);
    }
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    // Polls the engine too: a stream that failed never reaches the arrival point.
    while (!cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return arrived; })) {
      if (engine->stats().active == 0) break;
    }
    if (!submit_status.is_ok()) return submit_status;
  }
  std::vector<runtime::RequestId> all_ids;
  {
    std::lock_guard<std::mutex> lock(mu);
    all_ids = ids;
  }
  MixedScenarioResult r;
  for (runtime::RequestId id : all_ids) {
    const runtime::SeqResult res = engine->wait(id);
    if (res.reason == runtime::FinishReason::kError) return res.error;
    r.total_tokens += res.prompt_tokens + static_cast<int64_t>(res.tokens.size());
  }
  const Clock::time_point t_end = Clock::now();
  r.wall_s = ms_between(t0, t_end) / 1000.0;
  r.total_tok_s = r.wall_s > 0 ? static_cast<double>(r.total_tokens) / r.wall_s : 0;
  r.steps = engine->stats().scheduler.steps;

  std::lock_guard<std::mutex> lock(mu);
  if (!arrived) return internal_error("the decoding streams finished before the long prompts were due");
  std::vector<double> gaps;
  for (const auto& times : stream_times)
    for (size_t i = 1; i < times.size(); ++i)
      if (times[i] > t_arrive) gaps.push_back(ms_between(times[i - 1], times[i]));
  r.itl_samples = static_cast<int64_t>(gaps.size());
  r.itl_p50_ms = percentile(gaps, 50);
  r.itl_p99_ms = percentile(gaps, 99);
  r.itl_max_ms = gaps.empty() ? 0 : *std::max_element(gaps.begin(), gaps.end());
  double ttft = 0;
  for (int64_t l = 0; l < o.n_long; ++l)
    ttft += ms_between(long_submit[static_cast<size_t>(l)], long_first[static_cast<size_t>(l)]);
  r.long_ttft_ms = ttft / static_cast<double>(o.n_long);
  return r;
}

Result<PrefixScenarioResult> run_prefix_scenario(const model::Model& m, const PrefixScenarioOptions& o) {
  CW_RETURN_IF_ERROR(positive(o.prefix, "--prefix-tokens"));
  CW_RETURN_IF_ERROR(positive(o.suffix, "--suffix-tokens"));
  CW_RETURN_IF_ERROR(positive(o.reps, "--reps"));
  runtime::EngineOptions eo = o.engine;
  if (eo.kv_mem_bytes == 0 && eo.ctx_tokens == 0)
    eo.ctx_tokens = o.prefix + (o.reps + 1) * (o.suffix + eo.block_size) + eo.block_size;
  CW_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Engine> engine, runtime::Engine::create(m, eo));
  const int64_t V = m.hparams().n_vocab;
  std::mt19937_64 rng(o.seed);
  const std::vector<int32_t> prefix = random_tokens(rng, o.prefix, V);

  // One request: prefix + a fresh suffix; TTFT from submit to the first streamed token.
  auto ttft = [&](runtime::SeqResult* out) -> Result<double> {
    std::vector<int32_t> prompt = prefix;
    const std::vector<int32_t> suffix = random_tokens(rng, o.suffix, V);
    prompt.insert(prompt.end(), suffix.begin(), suffix.end());
    std::mutex mu;
    Clock::time_point first{};
    runtime::RequestCallbacks cb;
    cb.on_token = [&](runtime::RequestId, int32_t) {
      std::lock_guard<std::mutex> lock(mu);
      if (first == Clock::time_point{}) first = Clock::now();
    };
    const Clock::time_point t0 = Clock::now();
    CW_ASSIGN_OR_RETURN(const runtime::RequestId id, engine->submit(greedy_request(std::move(prompt), 1), cb));
    *out = engine->wait(id);
    if (out->reason == runtime::FinishReason::kError) return out->error;
    std::lock_guard<std::mutex> lock(mu);
    return ms_between(t0, first);
  };

  PrefixScenarioResult r;
  runtime::SeqResult res;
  CW_ASSIGN_OR_RETURN(r.cold_ttft_ms, ttft(&res));
  for (int i = 0; i < o.reps; ++i) {
    CW_ASSIGN_OR_RETURN(const double ms, ttft(&res));
    r.warm_samples_ms.push_back(ms);
    if (i == 0) {
      r.warm_cached_tokens = res.cached_tokens;
      r.warm_computed_tokens = res.computed_tokens;
    }
  }
  r.warm_ttft_ms = percentile(r.warm_samples_ms, 50);
  r.speedup = r.warm_ttft_ms > 0 ? r.cold_ttft_ms / r.warm_ttft_ms : 0;
  return r;
}

}  // namespace cw::eval
