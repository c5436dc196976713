#include "runtime/engine.h"

#include <algorithm>
#include <chrono>
#include <exception>

#include "base/thread_pool.h"
#include "model/model.h"

namespace cw::runtime {
namespace {

// Applies the plan's KV operations (copy-on-write copies, KV policy row copies and key moves), then runs the
// Forward pass over the paged cache.
class ForwardExecutor final : public StepExecutor {
 public:
  ForwardExecutor(const model::Model& m, std::unique_ptr<model::KvCache> kv, int n_threads, bool batch_invariant)
      : m_(m), kv_(std::move(kv)), fwd_(m, n_threads) {
    fwd_.set_batch_invariant(batch_invariant);
  }
  Status execute(const StepPlan& plan, std::vector<float>* logits) override {
    for (const KvOp& op : plan.kv_ops) {
      if (const auto* c = std::get_if<kv::BlockCopy>(&op)) {
        kv_->copy_block(c->src, c->dst);
      } else if (const auto* r = std::get_if<RowCopy>(&op)) {
        kv_->copy_rows(r->src, r->src_slot, r->dst, r->dst_slot, r->n);
      } else if (const auto* k = std::get_if<KeyMove>(&op)) {
        model::move_keys(m_, *kv_, k->origin, k->blocks, k->n, 0.0, k->to_offset, &coeffs_);
      } else {
        const auto& r = std::get<KeyRotate>(op);
        model::rotate_keys(m_, *kv_, r.block, r.slot, r.n, static_cast<double>(r.delta), &coeffs_);
      }
    }
    return fwd_.run(plan.batch, *kv_, logits);
  }

 private:
  const model::Model& m_;
  std::unique_ptr<model::KvCache> kv_;
  model::Forward fwd_;
  std::vector<float> coeffs_;
};

}  // namespace

Result<int32_t> kv_blocks_for(const model::HParams& hp, const EngineOptions& o) {
  if (o.block_size < 1 || o.block_size > 4096) return out_of_range("the KV block size must be in [1, 4096]");
  if (o.max_running < 1) return out_of_range("the number of requests running at once must be >= 1");
  const model::KvShape one = model::KvShape::for_model(hp, 1, o.block_size, o.kv_type);
  int64_t blocks = 0;
  if (o.kv_mem_bytes > 0) {
    blocks = model::KvCache::blocks_for_bytes(one, o.kv_mem_bytes);
    if (blocks < 2)
      return out_of_range("a KV memory of " + std::to_string(o.kv_mem_bytes) +
                          " bytes holds fewer than 2 KV blocks of " + std::to_string(one.block_bytes()) + " bytes (" +
                          std::to_string(o.block_size) + " tokens each)");
  } else {
    int64_t tokens = o.ctx_tokens;
    if (tokens < 0) return out_of_range("the KV cache size in tokens must be > 0");
    if (tokens == 0) {
      const int64_t per_seq = std::min<int64_t>(std::max<int64_t>(hp.n_ctx_train, 1), 4096);
      tokens = std::min<int64_t>(per_seq * o.max_running,
                                 static_cast<int64_t>((uint64_t{1} << 30) / (one.block_bytes() / o.block_size)));
      tokens = std::max<int64_t>(tokens, o.block_size);
    }
    if (tokens > (int64_t{1} << 30)) return out_of_range("the KV cache size must be at most 2^30 tokens");
    blocks = (tokens + o.block_size - 1) / o.block_size + 1;  // + the copy-on-write spare
  }
  if (blocks > (int64_t{1} << 26)) return out_of_range("the KV cache would have more than 2^26 blocks");
  return static_cast<int32_t>(blocks);
}

Result<std::unique_ptr<Engine>> Engine::create(const model::Model& model, const EngineOptions& o) {
  if (o.n_threads < 1) return out_of_range("the thread count must be >= 1");
  CW_ASSIGN_OR_RETURN(const int32_t n_blocks, kv_blocks_for(model.hparams(), o));
  const model::KvShape shape = model::KvShape::for_model(model.hparams(), n_blocks, o.block_size, o.kv_type);
  CW_ASSIGN_OR_RETURN(std::unique_ptr<model::KvCache> kv, model::KvCache::create(shape));
  SchedulerOptions so;
  so.n_blocks = n_blocks;
  so.block_size = o.block_size;
  so.batch_tokens = o.batch_tokens;
  so.max_running = o.max_running;
  so.schedule = o.schedule;
  so.n_vocab = static_cast<int32_t>(model.hparams().n_vocab);
  so.n_ctx_train = model.hparams().n_ctx_train;
  CW_ASSIGN_OR_RETURN(std::unique_ptr<kv::KvPolicy> policy, kv::make_kv_policy(o.kv_policy));
  if (o.ctx_tokens > 0 && o.kv_mem_bytes == 0) so.n_ctx = o.ctx_tokens;
  CW_ASSIGN_OR_RETURN(std::unique_ptr<Scheduler> sched, Scheduler::create(so, policy.get()));
  auto exec = std::make_unique<ForwardExecutor>(model, std::move(kv), cap_threads(o.n_threads), o.batch_invariant);
  return std::unique_ptr<Engine>(new Engine(std::move(exec), std::move(policy), std::move(sched), shape.total_bytes()));
}

Result<std::unique_ptr<Engine>> Engine::create(std::unique_ptr<StepExecutor> executor, const SchedulerOptions& options,
                                               const std::string& kv_policy) {
  if (executor == nullptr) return invalid_argument("an executor is required");
  CW_ASSIGN_OR_RETURN(std::unique_ptr<kv::KvPolicy> policy, kv::make_kv_policy(kv_policy));
  CW_ASSIGN_OR_RETURN(std::unique_ptr<Scheduler> sched, Scheduler::create(options, policy.get()));
  return std::unique_ptr<Engine>(new Engine(std::move(executor), std::move(policy), std::move(sched), 0));
}

Engine::Engine(std::unique_ptr<StepExecutor> executor, std::unique_ptr<kv::KvPolicy> policy,
               std::unique_ptr<Scheduler> scheduler, uint64_t kv_bytes)
    : exec_(std::move(executor)),
      policy_(std::move(policy)),
      sched_(std::move(scheduler)),
      sched_opt_(sched_->options()),
      kv_bytes_(kv_bytes) {
  stats_.kv_blocks = sched_opt_.n_blocks;
  stats_.block_size = sched_opt_.block_size;
  stats_.free_blocks = sched_opt_.n_blocks;
  stats_.kv_bytes = kv_bytes_;
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() { shutdown(); }

void Engine::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  std::lock_guard<std::mutex> lock(join_mu_);
  if (thread_.joinable()) thread_.join();
}

Result<RequestId> Engine::submit(SeqRequest request, RequestCallbacks callbacks) {
  CW_RETURN_IF_ERROR(sched_->validate(request));  // reads immutable configuration only
  std::lock_guard<std::mutex> lock(mu_);
  if (!fatal_.is_ok()) return internal_error("the engine stopped after an internal failure: " + fatal_.message());
  if (stop_) return internal_error("the engine is shutting down");
  const RequestId id = next_id_++;
  if (callbacks.on_done) detached_.insert(id);
  active_.insert(id);
  inbox_.push_back({id, std::move(request), std::move(callbacks)});
  wake_.notify_all();
  return id;
}

bool Engine::cancel(RequestId id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (active_.count(id) == 0) return false;
  cancels_.push_back(id);
  wake_.notify_all();
  return true;
}

SeqResult Engine::wait(RequestId id) {
  std::unique_lock<std::mutex> lock(mu_);
  SeqResult r;
  r.id = id;
  r.reason = FinishReason::kError;
  if (detached_.count(id) != 0) {
    r.error = invalid_argument("request " + std::to_string(id) + " delivers its result to on_done");
    return r;
  }
  if (active_.count(id) == 0 && results_.count(id) == 0) {
    r.error = not_found("unknown request " + std::to_string(id) + " (never submitted, or already waited for)");
    return r;
  }
  done_.wait(lock, [&] { return results_.count(id) != 0; });
  r = std::move(results_[id]);
  results_.erase(id);
  return r;
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  EngineStats s = stats_;
  s.active = static_cast<int64_t>(active_.size());
  return s;
}

void Engine::deliver(StepEvents* events) {
  for (const StepEvents::Token& t : events->tokens) {
    auto it = callbacks_.find(t.id);
    if (it == callbacks_.end()) continue;
    if (it->second.on_token_event) {
      it->second.on_token_event(t);
    } else if (it->second.on_token) {
      it->second.on_token(t.id, t.token);
    }
  }
  for (SeqResult& r : events->finished) {
    const RequestId id = r.id;
    RequestCallbacks cb;
    if (auto it = callbacks_.find(id); it != callbacks_.end()) {
      cb = std::move(it->second);
      callbacks_.erase(it);
    }
    if (cb.on_done) {
      cb.on_done(std::move(r));
      std::lock_guard<std::mutex> lock(mu_);
      active_.erase(id);
      detached_.erase(id);
    } else {
      std::lock_guard<std::mutex> lock(mu_);
      active_.erase(id);
      results_[id] = std::move(r);
    }
  }
  events->clear();
  done_.notify_all();
}

void Engine::step_once() {
  std::vector<Pending> inbox;
  std::vector<RequestId> cancels;
  {
    std::unique_lock<std::mutex> lock(mu_);
    wake_.wait(lock, [&] { return stop_ || !inbox_.empty() || !cancels_.empty() || !sched_->idle(); });
    inbox.swap(inbox_);
    cancels.swap(cancels_);
  }
  for (Pending& p : inbox) {
    callbacks_[p.id] = std::move(p.callbacks);
    if (Status st = sched_->add(p.id, std::move(p.request)); !st.is_ok()) {
      SeqResult r;
      r.id = p.id;
      r.reason = FinishReason::kError;
      r.error = st;
      events_.finished.push_back(std::move(r));
    }
  }
  for (RequestId id : cancels) sched_->cancel(id, &events_);
  sched_->expire(std::chrono::steady_clock::now(), &events_);
  publish_stats(0);  // before deliver(): a waiter woken by a result must see the blocks it released
  deliver(&events_);

  const auto t0 = std::chrono::steady_clock::now();
  if (sched_->plan(&plan_, &events_)) {
    Status st = exec_->execute(plan_, &logits_);
    if (st.is_ok() && logits_.size() < static_cast<size_t>(plan_.n_output_rows) * sched_opt_.n_vocab)
      st = internal_error("the executor returned too few logits");
    if (st.is_ok()) {
      sched_->complete(plan_, logits_, &events_);
    } else {
      sched_->fail(plan_, st, &events_);
    }
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  publish_stats(ms);
  deliver(&events_);
}

void Engine::publish_stats(double busy_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.scheduler = sched_->stats();
  stats_.running = static_cast<int64_t>(sched_->n_running());
  stats_.waiting = static_cast<int64_t>(sched_->n_waiting());
  stats_.free_blocks = sched_->blocks().n_free_blocks();
  stats_.cached_blocks = sched_->blocks().n_cached_blocks();
  stats_.busy_ms += busy_ms;
}

void Engine::loop() {
  try {
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) break;
      }
      step_once();
    }
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(mu_);
    fatal_ = internal_error(std::string("engine step failed: ") + e.what());
  }
  // Stopping (or failed): everything still known finishes now.
  std::vector<Pending> inbox;
  {
    std::lock_guard<std::mutex> lock(mu_);
    inbox.swap(inbox_);
  }
  const Status fatal = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    return fatal_;
  }();
  const FinishReason reason = fatal.is_ok() ? FinishReason::kCancelled : FinishReason::kError;
  for (Pending& p : inbox) {
    callbacks_[p.id] = std::move(p.callbacks);
    SeqResult r;
    r.id = p.id;
    r.reason = reason;
    r.error = fatal;
    events_.finished.push_back(std::move(r));
  }
  std::vector<RequestId> left;
  for (const auto& [id, cb] : callbacks_) left.push_back(id);
  for (RequestId id : left) {
    if (sched_->cancel(id, &events_) && !fatal.is_ok()) {
      events_.finished.back().reason = FinishReason::kError;
      events_.finished.back().error = fatal;
    }
  }
  publish_stats(0);
  deliver(&events_);
}

}  // namespace cw::runtime
