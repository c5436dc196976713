#include "runtime/scheduler.h"

#include <algorithm>
#include <limits>
#include <span>

#include "model/hparams.h"
#include "runtime/kv_executor.h"  // resolve_chunk_select
#include "runtime/logprobs.h"

namespace cw::runtime {

Result<Schedule> schedule_from_name(std::string_view name) {
  if (name == "chunked") return Schedule::kChunked;
  if (name == "prefill-first") return Schedule::kPrefillFirst;
  return invalid_argument("unknown schedule '" + std::string(name) + "' (supported: chunked, prefill-first)");
}

const char* schedule_name(Schedule s) { return s == Schedule::kChunked ? "chunked" : "prefill-first"; }

void StepPlan::clear() {
  batch.tokens.clear();
  batch.seqs.clear();
  tables.clear();
  ids.clear();
  kv_ops.clear();
  n_decode_rows = n_prefill_rows = n_output_rows = 0;
}

Result<std::unique_ptr<Scheduler>> Scheduler::create(const SchedulerOptions& o, const kv::KvPolicy* policy) {
  if (o.n_blocks <= 0) return invalid_argument("the KV cache must have at least one block");
  if (o.block_size <= 0) return invalid_argument("the KV block size must be > 0");
  if (o.batch_tokens < 1) return invalid_argument("batch_tokens must be >= 1");
  if (o.max_running < 1) return invalid_argument("max_running must be >= 1");
  if (o.n_ctx_train < 0) return invalid_argument("n_ctx_train must be >= 0");
  if (o.n_vocab <= 0) return invalid_argument("n_vocab must be > 0");
  if (policy == nullptr) return invalid_argument("a KV policy is required");
  CW_RETURN_IF_ERROR(policy->make_state(o.block_size).status());  // parameters that do not fit the blocks
  CW_ASSIGN_OR_RETURN(kv::BlockManager bm, kv::BlockManager::create(o.n_blocks, o.block_size));
  return std::unique_ptr<Scheduler>(new Scheduler(o, policy, std::move(bm)));
}

Scheduler::Scheduler(const SchedulerOptions& options, const kv::KvPolicy* policy, kv::BlockManager bm)
    : opt_(options), policy_(policy), bm_(std::move(bm)) {}

int64_t Scheduler::max_request_tokens() const {
  // One block stays spare: the copy-on-write of a fully cached prompt holds source and copy at once.
  return static_cast<int64_t>(opt_.n_blocks - 1) * opt_.block_size;
}

Status Scheduler::validate(const SeqRequest& r) const {
  if (r.prompt.empty()) return invalid_argument("the prompt has no tokens");
  for (size_t i = 0; i < r.prompt.size(); ++i) {
    if (r.prompt[i] < 0 || r.prompt[i] >= opt_.n_vocab)
      return invalid_argument("prompt token " + std::to_string(i) + " has id " + std::to_string(r.prompt[i]) +
                              ", outside the vocabulary [0, " + std::to_string(opt_.n_vocab) + ")");
  }
  if (r.n_predict < 0) return invalid_argument("n_predict must be >= 0");
  CW_RETURN_IF_ERROR(runtime::validate(r.sampling));
  if (r.top_logprobs < 0 || r.top_logprobs > kMaxTopLogprobs)
    return out_of_range("top_logprobs must be in [0, " + std::to_string(kMaxTopLogprobs) + "], got " +
                        std::to_string(r.top_logprobs));
  const kv::KvPolicy& policy = r.kv_policy ? *r.kv_policy : *policy_;
  // The context rule of every entry point (model::check_context), unless the policy lifts it.
  if (opt_.n_ctx_train > 0 && !policy.lifts_context_limit()) {
    model::HParams hp;
    hp.n_ctx_train = opt_.n_ctx_train;
    CW_RETURN_IF_ERROR(model::check_context(hp, static_cast<int64_t>(r.prompt.size()), r.n_predict));
  }
  const auto n_prompt = static_cast<int64_t>(r.prompt.size());
  if (opt_.n_ctx > 0 && !policy.lifts_context_limit() && n_prompt + r.n_predict > opt_.n_ctx) {
    return out_of_range("the prompt (" + std::to_string(n_prompt) + " tokens) + " + std::to_string(r.n_predict) +
                        " tokens to generate = " + std::to_string(n_prompt + r.n_predict) +
                        " exceeds the context size of " + std::to_string(opt_.n_ctx) + " tokens");
  }
  // KV slots: the last generated token is sampled but never stored.
  int64_t need = static_cast<int64_t>(r.prompt.size()) + std::max<int64_t>(r.n_predict - 1, 0);
  CW_ASSIGN_OR_RETURN(std::unique_ptr<kv::PolicyState> state, policy.make_state(opt_.block_size));
  CW_RETURN_IF_ERROR(resolve_chunk_select(policy, *state, opt_.n_ctx_train, opt_.block_size).status());
  const int64_t max_slots = state->max_slots();
  int64_t held = 0;
  if (max_slots >= 0) {
    if (opt_.n_ctx_train > 0 && max_slots >= opt_.n_ctx_train)
      return out_of_range("kv policy '" + policy.spec() + "' holds up to " + std::to_string(max_slots) +
                          " slots, leaving no room for a new token within the model's training context of " +
                          std::to_string(opt_.n_ctx_train) + ": make the window smaller");
    // At most max_slots() slots between steps, and a step needs room for one new row (a prefill chunk
    // shrinks to what fits).
    need = std::min(need, max_slots + 1);
    held = (state->moved_slots() + opt_.block_size - 1) / opt_.block_size;  // the sinks' first-written keys
  }
  const int64_t can = max_request_tokens() - held * opt_.block_size;
  if (need > can) {
    return out_of_range("the request needs " + std::to_string(need) + " tokens of KV cache (prompt " +
                        std::to_string(r.prompt.size()) + " + n_predict " + std::to_string(r.n_predict) +
                        (r.n_predict > 0 ? " - 1, the last token is not stored" : std::string()) +
                        (max_slots >= 0 ? ", bounded by kv policy '" + policy.spec() + "'" : std::string()) +
                        "), but one request can hold at most " + std::to_string(can) + " (" +
                        std::to_string(opt_.n_blocks - 1) + " blocks of " + std::to_string(opt_.block_size) +
                        " tokens; one more block is kept spare for copy-on-write" +
                        (held > 0 ? ", " + std::to_string(held) + " for the policy's kept keys" : std::string()) +
                        "); use a larger KV cache or a smaller n_predict");
  }
  return Status::ok();
}

Status Scheduler::add(RequestId id, SeqRequest request) {
  CW_CHECK(seqs_.count(id) == 0);
  CW_RETURN_IF_ERROR(validate(request));
  Seq s;
  s.id = id;
  s.policy = request.kv_policy ? request.kv_policy.get() : policy_;
  s.tokens = request.prompt;
  s.sampler = std::make_unique<Sampler>(request.sampling, opt_.n_vocab);
  for (int32_t t : request.prompt) s.sampler->accept(t);
  s.req = std::move(request);
  if (s.req.deadline != std::chrono::steady_clock::time_point::max()) ++n_deadlines_;
  seqs_.emplace(id, std::move(s));
  waiting_.push_back(id);
  return Status::ok();
}

Scheduler::Seq& Scheduler::seq(RequestId id) {
  auto it = seqs_.find(id);
  CW_CHECK(it != seqs_.end());
  return it->second;
}

bool Scheduler::cancel(RequestId id, StepEvents* events) {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) return false;
  finish(it->second, FinishReason::kCancelled, Status::ok(), events);
  return true;
}

void Scheduler::finish(Seq& s, FinishReason reason, Status error, StepEvents* events) {
  if (s.kv >= 0) {
    bm_.free_sequence(s.kv);
    running_.erase(std::find(running_.begin(), running_.end(), s.id));
  } else {
    auto w = std::find(waiting_.begin(), waiting_.end(), s.id);
    if (w != waiting_.end()) waiting_.erase(w);
  }
  SeqResult r;
  r.id = s.id;
  r.reason = reason;
  r.error = std::move(error);
  r.tokens.assign(s.tokens.begin() + static_cast<int64_t>(s.req.prompt.size()), s.tokens.end());
  r.prompt_tokens = static_cast<int64_t>(s.req.prompt.size());
  r.cached_tokens = std::max<int64_t>(s.cached_tokens, 0);
  r.computed_tokens = s.computed_tokens;
  r.n_preemptions = s.n_preemptions;
  r.logits = std::move(s.logits);
  r.logprobs = std::move(s.logprobs);
  if (s.req.deadline != std::chrono::steady_clock::time_point::max()) --n_deadlines_;
  events->finished.push_back(std::move(r));
  seqs_.erase(s.id);
}

void Scheduler::preempt(RequestId id) {
  Seq& s = seq(id);
  CW_CHECK(s.kv >= 0 && s.step_rows == 0);
  bm_.free_sequence(s.kv);
  s.kv = -1;
  s.n_computed = 0;
  s.state.reset();
  s.redo.clear();
  ++s.n_preemptions;
  ++stats_.preemptions;
  running_.erase(std::find(running_.begin(), running_.end(), id));
  waiting_.push_front(id);
}

RequestId Scheduler::preemption_victim(int64_t than) const {
  for (auto it = running_.rbegin(); it != running_.rend(); ++it) {
    const Seq& s = seqs_.at(*it);
    if (s.admit_order <= than) break;
    if (s.step_rows == 0) return *it;
  }
  return -1;
}

bool Scheduler::try_append(Seq& s, int64_t n) {
  const auto first = static_cast<size_t>(s.n_computed);
  std::vector<int32_t> rows = s.redo;
  rows.insert(rows.end(), s.tokens.begin() + static_cast<int64_t>(first), s.tokens.begin() + static_cast<int64_t>(first) + n);
  // A retaining state reads a prompt chunk that does not end the prompt "with the question in mind": the
  // prompt's last probe_rows() tokens ride after the chunk as probe rows (observed, then removed in complete()).
  const int64_t probe = probe_rows(s, n);
  if (probe > 0) {
    rows.insert(rows.end(), s.req.prompt.end() - probe, s.req.prompt.end());
    CW_CHECK(bm_.detach(s.kv).is_ok());  // the probe's blocks do not hold the token stream
  }
  const int64_t n_past = bm_.n_tokens(s.kv);
  // Rows past a chunk-selective sequence's span attend to a selection, not to the whole prefix: blocks filled
  // from there on must never serve another request as a cached prefix.
  if (s.select.span > 0 && n_past + static_cast<int64_t>(rows.size()) > s.select.span)
    CW_CHECK(bm_.detach(s.kv).is_ok());
  if (!bm_.append_tokens(s.kv, rows).is_ok()) return false;
  const std::span<const int32_t> table = bm_.block_table(s.kv);
  const int64_t bs = opt_.block_size, total = static_cast<int64_t>(rows.size());
  for (int64_t b = n_past / bs; b <= (n_past + total - 1) / bs; ++b) dirty_blocks_.push_back(table[static_cast<size_t>(b)]);
  s.step_n_past = n_past;
  s.step_redo = static_cast<int64_t>(s.redo.size());
  s.step_rows = total;
  s.step_probe = probe;
  step_order_.push_back(s.id);
  return true;
}

int64_t Scheduler::row_cap(const Seq& s) const {
  if (!s.state || opt_.n_ctx_train <= 0) return std::numeric_limits<int64_t>::max();
  return std::max<int64_t>(1, opt_.n_ctx_train - s.state->max_slots());
}

int64_t Scheduler::probe_rows(const Seq& s, int64_t n) const {
  const auto n_prompt = static_cast<int64_t>(s.req.prompt.size());
  if (!s.state || s.state->probe_rows() <= 0 || s.n_generated() > 0 || s.n_computed + n >= n_prompt) return 0;
  return std::min(s.state->probe_rows(), n_prompt);
}

int64_t Scheduler::append_prefill(Seq& s, int64_t n, bool may_preempt) {
  n = std::min(n, row_cap(s));
  // Probe rows count against the step's rows: the chunk gives way to them (one row at least).
  if (const int64_t probe = probe_rows(s, n); probe > 0) n = std::max<int64_t>(1, n - probe);
  const auto redo = static_cast<int64_t>(s.redo.size());
  while (true) {
    if (try_append(s, n)) return s.step_rows;
    if (!may_preempt) break;
    const RequestId victim = preemption_victim(s.admit_order);
    if (victim < 0) break;
    preempt(victim);
  }
  // Shrink to what fits: the room left in the last block plus the available blocks, less one block when
  // the last block would be copied first; then step down (a failed append changes nothing).
  const int64_t bs = opt_.block_size;
  const int64_t room = static_cast<int64_t>(bm_.block_table(s.kv).size()) * bs - bm_.n_tokens(s.kv);
  int64_t fit = std::min<int64_t>(n - 1, room + static_cast<int64_t>(bm_.n_available_blocks()) * bs - redo);
  for (; fit > 0; --fit)
    if (try_append(s, fit)) return s.step_rows;
  return 0;
}

bool Scheduler::admit_front(int64_t max_rows, StepEvents* events) {
  const RequestId id = waiting_.front();
  Seq& s = seq(id);
  auto added = bm_.add_sequence();
  if (!added.is_ok()) {  // the id space of the block manager is exhausted: fail this request only
    waiting_.pop_front();
    finish(s, FinishReason::kError, added.status(), events);
    return true;
  }
  s.kv = *added;
  auto cached = bm_.match_prefix(s.kv, s.tokens);
  CW_CHECK(cached.is_ok());
  int64_t n_cached = *cached;
  auto state = s.policy->make_state(opt_.block_size);
  if (!state.is_ok()) {  // validate() made one: not expected, but never abort on it
    bm_.free_sequence(s.kv);
    s.kv = -1;
    waiting_.pop_front();
    finish(s, FinishReason::kError, state.status(), events);
    return true;
  }
  auto select = resolve_chunk_select(*s.policy, **state, opt_.n_ctx_train, opt_.block_size);
  CW_CHECK(select.is_ok());  // validate() checked it
  s.select = *select;
  if (s.select.span > 0 && n_cached > s.select.span) {
    // Within the span a chunk-selective sequence attends like full attention, so a cached prefix computed
    // by any policy is its own only that far (whole blocks: nothing to copy).
    const int64_t cap = s.select.span / opt_.block_size * opt_.block_size;
    CW_CHECK(bm_.truncate(s.kv, cap).is_ok());
    n_cached = cap;
  }
  if ((*state)->max_slots() < 0 && (*state)->observe_rows() > 0) {
    s.state = std::move(state).value();  // keeps every slot until the prompt ends (compress)
  } else if ((*state)->max_slots() >= 0) {
    s.state = std::move(state).value();
    // Reuse at most max_slots() cached tokens, whole blocks: a longer cached prefix was computed with full
    // attention, which the policy would not have kept.
    const int64_t cap = s.state->max_slots() / opt_.block_size * opt_.block_size;
    if (n_cached > cap) {
      CW_CHECK(bm_.truncate(s.kv, cap).is_ok());  // whole blocks: nothing to copy
      n_cached = cap;
    }
  }
  if (n_cached > 0) {
    // Blocks written by this very step hold no K/V yet: wait a step rather than read them.
    std::sort(dirty_blocks_.begin(), dirty_blocks_.end());
    bool dirty = false;
    for (int32_t b : bm_.block_table(s.kv))
      dirty = dirty || std::binary_search(dirty_blocks_.begin(), dirty_blocks_.end(), b);
    const kv::Placement place = policy_->place_reused({0, 0, n_cached});
    if (dirty || !place.reuse || place.position_delta != 0 || !place.recompute.empty()) {
      bm_.free_sequence(s.kv);
      s.kv = -1;
      if (dirty) return false;
      auto fresh = bm_.add_sequence();
      if (!fresh.is_ok()) {
        waiting_.pop_front();
        finish(s, FinishReason::kError, fresh.status(), events);
        return true;
      }
      s.kv = *fresh;
      n_cached = 0;
    }
  }
  if (s.state && n_cached > 0 && !s.state->after_append(n_cached).empty()) {
    // A state that would act on the cached prefix at once: compute the prompt instead (a fresh state).
    bm_.free_sequence(s.kv);
    s.kv = *bm_.add_sequence();  // the id space cannot run out here: one id was just used
    s.state = std::move(s.policy->make_state(opt_.block_size)).value();
    n_cached = 0;
  }
  s.n_computed = n_cached;
  s.admit_order = next_admit_++;
  waiting_.pop_front();
  running_.push_back(id);
  const int64_t rows = append_prefill(s, std::min(s.pending(), max_rows), /*may_preempt=*/false);
  if (rows == 0) {
    // Nothing fits now: undo (matched blocks go back to the cache untouched) and wait.
    bm_.free_sequence(s.kv);
    s.kv = -1;
    s.state.reset();
    s.n_computed = 0;
    s.admit_order = -1;
    running_.pop_back();
    waiting_.push_front(id);
    --next_admit_;
    return false;
  }
  if (s.cached_tokens < 0) {
    s.cached_tokens = n_cached;
    stats_.cached_tokens += n_cached;
  }
  return true;
}

int64_t Scheduler::plan_decodes(int64_t budget, StepEvents* events) {
  for (RequestId id : std::vector<RequestId>(running_)) {
    if (budget == 0) break;
    auto it = seqs_.find(id);
    if (it == seqs_.end() || it->second.kv < 0 || !it->second.decoding()) continue;
    Seq& s = it->second;
    while (!try_append(s, 1)) {
      const RequestId victim = preemption_victim(s.admit_order - 1);  // may be s itself
      CW_CHECK(victim >= 0);  // s itself is always a candidate
      preempt(victim);
      if (victim == id) break;
    }
    // A decode with rows to recompute (recompute_window) may overshoot the budget: it cannot be split.
    if (s.kv >= 0) budget = std::max<int64_t>(0, budget - s.step_rows);
  }
  return budget;
}

void Scheduler::plan_chunked(StepEvents* events) {
  // 1. Decodes, oldest admission first.
  int64_t budget = plan_decodes(opt_.batch_tokens, events);
  // 2. Prefill chunks of admitted sequences.
  for (RequestId id : std::vector<RequestId>(running_)) {
    if (budget == 0) break;
    auto it = seqs_.find(id);
    if (it == seqs_.end() || it->second.kv < 0 || it->second.step_rows > 0 || it->second.decoding()) continue;
    Seq& s = it->second;
    const int64_t rows = append_prefill(s, std::min(s.pending(), budget), /*may_preempt=*/true);
    if (rows == 0) break;  // the KV cache is full for now
    budget = std::max<int64_t>(0, budget - rows);
  }
  // 3. Admissions.
  while (budget > 0 && !waiting_.empty() && static_cast<int64_t>(running_.size()) < opt_.max_running) {
    const RequestId id = waiting_.front();
    if (!admit_front(budget, events)) break;
    if (seqs_.count(id)) budget = std::max<int64_t>(0, budget - seq(id).step_rows);
  }
}

void Scheduler::plan_prefill_first(StepEvents* events) {
  int64_t used = 0;
  // Whole prompts (pending tokens) of admitted sequences, then of new admissions.
  for (RequestId id : std::vector<RequestId>(running_)) {
    auto it = seqs_.find(id);
    if (it == seqs_.end() || it->second.kv < 0 || it->second.decoding()) continue;
    Seq& s = it->second;
    if (used > 0 && used + s.pending() > opt_.batch_tokens) break;
    const int64_t rows = append_prefill(s, s.pending(), /*may_preempt=*/true);
    if (rows == 0) break;
    used += rows;
  }
  while (!waiting_.empty() && static_cast<int64_t>(running_.size()) < opt_.max_running) {
    const Seq& next = seq(waiting_.front());
    if (used > 0 && used + next.pending() > opt_.batch_tokens) break;
    const RequestId id = next.id;
    if (!admit_front(next.pending(), events)) break;
    if (seqs_.count(id)) used += seq(id).step_rows;
  }
  if (!step_order_.empty()) return;
  // No prompt to run: every decode (the budget still bounds the rows).
  plan_decodes(opt_.batch_tokens, events);
}

void Scheduler::build_batch(StepPlan* plan) {
  plan->tables.reserve(step_order_.size());
  for (RequestId id : step_order_) {
    Seq& s = seq(id);
    CW_CHECK(s.kv >= 0 && s.step_rows > 0);
    model::BatchSeq bs;
    bs.n_past = s.step_n_past;
    bs.first = static_cast<int64_t>(plan->batch.tokens.size());
    bs.count = s.step_rows;
    bs.pos_offset = s.state ? static_cast<double>(s.state->layout().pos_offset) : 0.0;
    if (s.select.span > 0) bs.select = &s.select;
    const int64_t fresh = s.step_rows - s.step_redo - s.step_probe;
    const bool reaches_end = fresh > 0 && s.n_computed + fresh == static_cast<int64_t>(s.tokens.size());
    bs.output = reaches_end ? model::OutputMode::kLast : model::OutputMode::kNone;
    if (reaches_end && s.n_generated() == 0 && s.state && s.state->observe_rows() > 0) {
      // The prompt's last rows: the state observes their attention per slot (after_prompt in complete()).
      s.block_mass.assign(bm_.block_table(s.kv).size() * static_cast<size_t>(opt_.block_size), 0.0f);
      bs.observe_rows = s.state->observe_rows();
      bs.block_mass = s.block_mass.data();
      bs.mass_unit = 1;
    } else if (s.state && s.state->probe_rows() > 0) {
      // A retaining state: the probe rows, or (the prompt's last chunk, decoding) the rows' own last ones.
      s.block_mass.assign(bm_.block_table(s.kv).size(), 0.0f);
      bs.observe_rows = s.step_probe > 0 ? s.step_probe : s.state->probe_rows();
      bs.block_mass = s.block_mass.data();
    }
    plan->n_output_rows += reaches_end ? 1 : 0;
    (s.decoding() ? plan->n_decode_rows : plan->n_prefill_rows) += s.step_rows;
    plan->batch.tokens.insert(plan->batch.tokens.end(), s.redo.begin(), s.redo.begin() + s.step_redo);
    plan->batch.tokens.insert(plan->batch.tokens.end(), s.tokens.begin() + s.n_computed,
                              s.tokens.begin() + s.n_computed + fresh);
    plan->batch.tokens.insert(plan->batch.tokens.end(), s.req.prompt.end() - s.step_probe, s.req.prompt.end());
    const std::span<const int32_t> table = bm_.block_table(s.kv);
    plan->tables.emplace_back(table.begin(), table.end());
    plan->ids.push_back(id);
    plan->batch.seqs.push_back(bs);
  }
  for (size_t i = 0; i < plan->tables.size(); ++i) plan->batch.seqs[i].block_table = plan->tables[i];
  take_copies();
  plan->kv_ops = std::move(kv_ops_);
  kv_ops_.clear();
}

bool Scheduler::plan(StepPlan* plan, StepEvents* events) {
  plan->clear();
  step_order_.clear();
  dirty_blocks_.clear();
  if (opt_.schedule == Schedule::kChunked) {
    plan_chunked(events);
  } else {
    plan_prefill_first(events);
  }
  // A preempted sequence can have rows only if it was re-admitted later in this step: drop stale entries.
  std::vector<RequestId> live;
  for (RequestId id : step_order_) {
    auto it = seqs_.find(id);
    if (it != seqs_.end() && it->second.kv >= 0 && it->second.step_rows > 0 &&
        std::find(live.begin(), live.end(), id) == live.end())
      live.push_back(id);
  }
  step_order_ = std::move(live);
  build_batch(plan);
  for (RequestId id : step_order_) seq(id).step_rows = 0;
  if (plan->batch.tokens.empty()) return false;
  ++stats_.steps;
  stats_.decode_rows += plan->n_decode_rows;
  stats_.prefill_rows += plan->n_prefill_rows;
  return true;
}

void Scheduler::complete(const StepPlan& plan, const std::vector<float>& logits, StepEvents* events) {
  const auto V = static_cast<size_t>(opt_.n_vocab);
  CW_CHECK(logits.size() >= static_cast<size_t>(plan.n_output_rows) * V);
  size_t out_row = 0;
  std::vector<std::pair<RequestId, std::vector<kv::KvAction>>> actions;
  for (size_t i = 0; i < plan.ids.size(); ++i) {
    const model::BatchSeq& bs = plan.batch.seqs[i];
    auto it = seqs_.find(plan.ids[i]);
    CW_CHECK(it != seqs_.end());  // nothing finishes a sequence between plan() and complete()
    Seq& s = it->second;
    const int64_t fresh = bs.count - s.step_redo - s.step_probe;
    s.redo.erase(s.redo.begin(), s.redo.begin() + s.step_redo);
    s.step_redo = 0;
    s.n_computed += fresh;
    s.computed_tokens += bs.count;
    if (s.step_probe > 0) {  // the probe rows leave the cache
      CW_CHECK(bm_.truncate(s.kv, bm_.n_tokens(s.kv) - s.step_probe).is_ok());
      take_copies();
      s.step_probe = 0;
    }
    if (s.state) {
      std::vector<kv::KvAction> a = s.state->after_append(fresh);
      if (bs.observe_rows > 0) {
        std::vector<kv::KvAction> more = s.state->probe_rows() > 0 ? s.state->after_observe(s.block_mass)
                                                                    : s.state->after_prompt(s.block_mass);
        a.insert(a.end(), more.begin(), more.end());
      }
      if (!a.empty()) actions.emplace_back(s.id, std::move(a));
    }
    if (bs.output == model::OutputMode::kNone) continue;
    const std::span<const float> row(logits.data() + out_row * V, V);
    ++out_row;
    if (s.req.n_predict == 0) {
      if (s.req.keep_logits) s.logits.assign(row.begin(), row.end());
      finish(s, FinishReason::kLength, Status::ok(), events);
      continue;
    }
    if (s.req.keep_logits) s.logits.insert(s.logits.end(), row.begin(), row.end());
    const int32_t token = s.sampler->sample(row);
    s.sampler->accept(token);
    s.tokens.push_back(token);
    StepEvents::Token& ev = events->tokens.emplace_back();
    ev.id = s.id;
    ev.token = token;
    if (s.req.wants_logprobs()) {
      ev.has_logprobs = true;
      compute_logprobs(row, token, s.req.top_logprobs, &ev.logprobs);
      s.logprobs.push_back(ev.logprobs);
    }
    if (token == s.req.eos) {
      finish(s, FinishReason::kEos, Status::ok(), events);
    } else if (s.req.stop_after && s.req.stop_after(token)) {
      finish(s, FinishReason::kStop, Status::ok(), events);
    } else if (s.n_generated() >= s.req.n_predict) {
      finish(s, FinishReason::kLength, Status::ok(), events);
    }
  }
  // KV policy actions, once every row of the step is accounted (a preemption below may pick any sequence).
  for (auto& [id, list] : actions) {
    auto it = seqs_.find(id);
    if (it != seqs_.end() && it->second.kv >= 0) apply_actions(it->second, list);
  }
}

void Scheduler::take_copies() {
  for (const kv::BlockCopy& c : bm_.take_pending_copies()) kv_ops_.emplace_back(c);
}

Status Scheduler::apply_action(Seq& s, const kv::KvAction& action) {
  const int64_t bs = opt_.block_size;
  if (const auto* c = std::get_if<kv::CopySlots>(&action)) {
    CW_RETURN_IF_ERROR(bm_.copy_slots(s.kv, c->src, c->dst, c->n));
    take_copies();  // the private copies of the destination blocks come first
    const std::span<const int32_t> table = bm_.block_table(s.kv);
    for (int64_t i = 0; i < c->n;) {  // runs that stay within one block on both sides
      const int64_t src = c->src + i, dst = c->dst + i;
      const int64_t run = std::min({c->n - i, bs - src % bs, bs - dst % bs});
      kv_ops_.emplace_back(RowCopy{table[static_cast<size_t>(src / bs)], static_cast<int32_t>(src % bs),
                                   table[static_cast<size_t>(dst / bs)], static_cast<int32_t>(dst % bs),
                                   static_cast<int32_t>(run)});
      i += run;
    }
    return Status::ok();
  }
  if (const auto* d = std::get_if<kv::DropSlots>(&action)) {
    if (d->begin + d->n == bm_.n_tokens(s.kv)) {  // the tail, whole blocks or not
      CW_RETURN_IF_ERROR(bm_.truncate(s.kv, d->begin));
      take_copies();
      return Status::ok();
    }
    if (d->begin % bs != 0 || d->n % bs != 0) return internal_error("kv policy: a drop that is not whole blocks");
    return bm_.drop_blocks(s.kv, d->begin / bs, d->n / bs);
  }
  if (const auto* m = std::get_if<kv::MoveSinks>(&action)) {
    const int64_t nb = (m->n + bs - 1) / bs;
    if (bm_.held_blocks(s.kv).empty()) {  // keep the keys as first written (at positions 0..n-1)
      CW_RETURN_IF_ERROR(bm_.hold_copies(s.kv, nb));
      take_copies();
    }
    for (int64_t j = 0; j < nb; ++j) CW_RETURN_IF_ERROR(bm_.make_writable(s.kv, j));
    take_copies();
    const std::span<const int32_t> table = bm_.block_table(s.kv), held = bm_.held_blocks(s.kv);
    KeyMove move;
    move.origin.assign(held.begin(), held.end());
    move.blocks.assign(table.begin(), table.begin() + nb);
    move.n = m->n;
    move.to_offset = static_cast<double>(m->pos_offset);
    kv_ops_.emplace_back(std::move(move));
    return Status::ok();
  }
  if (const auto* p = std::get_if<kv::Reposition>(&action)) {
    for (int64_t j = p->begin / bs; j < (p->begin + p->n + bs - 1) / bs; ++j) CW_RETURN_IF_ERROR(bm_.make_writable(s.kv, j));
    take_copies();
    const std::span<const int32_t> table = bm_.block_table(s.kv);
    for (int64_t i = p->begin; i < p->begin + p->n;) {  // one rotation per block
      const int64_t run = std::min(p->begin + p->n - i, bs - i % bs);
      kv_ops_.emplace_back(KeyRotate{table[static_cast<size_t>(i / bs)], static_cast<int32_t>(i % bs),
                                     static_cast<int32_t>(run), p->delta});
      i += run;
    }
    return Status::ok();
  }
  const auto& r = std::get<kv::Recompute>(action);
  CW_RETURN_IF_ERROR(bm_.truncate(s.kv, r.begin));
  take_copies();
  // The tokens the layout says slots [begin, begin + n) hold, run again before the next new rows.
  s.redo.clear();
  for (const kv::Segment& seg : s.state->layout().segments)
    for (int64_t i = 0; i < seg.n; ++i)
      if (seg.slot_begin + i >= r.begin && seg.slot_begin + i < r.begin + r.n)
        s.redo.push_back(s.tokens[static_cast<size_t>(seg.token_begin + i)]);
  if (static_cast<int64_t>(s.redo.size()) != r.n) return internal_error("kv policy: Recompute outside the layout");
  return Status::ok();
}

bool Scheduler::apply_actions(Seq& s, const std::vector<kv::KvAction>& actions) {
  CW_CHECK(bm_.detach(s.kv).is_ok());  // from now on its blocks are not a prefix of one token stream
  for (const kv::KvAction& a : actions) {
    while (true) {
      const Status st = apply_action(s, a);
      if (st.is_ok()) break;
      // Each block-manager call changes nothing when it fails, so the action can be retried after room is made.
      CW_CHECK_MSG(st.code() == StatusCode::kResourceExhausted, st.message());
      const RequestId victim = preemption_victim(s.admit_order);
      preempt(victim >= 0 ? victim : s.id);
      if (victim < 0) return false;
    }
  }
  return true;
}

void Scheduler::expire(std::chrono::steady_clock::time_point now, StepEvents* events) {
  if (n_deadlines_ == 0) return;
  std::vector<RequestId> late;
  for (const auto& [id, s] : seqs_)
    if (s.req.deadline <= now) late.push_back(id);
  for (RequestId id : late) finish(seq(id), FinishReason::kDeadline, Status::ok(), events);
}

void Scheduler::fail(const StepPlan& plan, const Status& error, StepEvents* events) {
  for (RequestId id : plan.ids) {
    auto it = seqs_.find(id);
    if (it != seqs_.end()) finish(it->second, FinishReason::kError, error, events);
  }
  // The forward may have written part of the batch: no block content can be trusted. Requeue the rest
  // (oldest first at the front) and start from an empty pool.
  for (auto it = running_.rbegin(); it != running_.rend(); ++it) {
    Seq& s = seq(*it);
    s.kv = -1;
    s.n_computed = 0;
    s.state.reset();
    s.redo.clear();
    ++s.n_preemptions;
    waiting_.push_front(*it);
  }
  running_.clear();
  kv_ops_.clear();
  bm_ = kv::BlockManager(opt_.n_blocks, opt_.block_size);
}

}  // namespace cw::runtime
