// cw::Engine (include/chunkwise/engine.h): model + tokenizer + runtime::Engine behind a text API.
//
// Per request, on the step thread (runtime callbacks, kept short): the Scheduler calls stop_after() for
// each sampled token, which appends its piece to the request's TextStream (stop strings, UTF-8 holdback);
// on_token_event takes the text that became final and posts one event to the request's bounded queue in
// Delivery; on_done builds the GenerationResult and posts it last. Delivery threads run the client's
// callbacks. A full queue cancels the request (the step thread never waits for a client).
#include <atomic>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "chunkwise/engine.h"
#include "kv/policy.h"
#include "model/model.h"
#include "runtime/delivery.h"
#include "runtime/engine.h"
#include "runtime/text_stream.h"
#include "tokenizer/tokenizer.h"

namespace cw {
namespace {

// One request's streaming state. `text` and `overflowed` belong to the step thread; `callback_error` to
// the request's delivery strand (its tasks run one at a time).
struct Stream {
  explicit Stream(std::vector<std::string> stop) : text(std::move(stop)) {}
  StreamCallbacks cb;
  runtime::TextStream text;
  bool overflowed = false;
  std::string callback_error;
};

}  // namespace

struct Engine::Impl {
  std::unique_ptr<model::Model> model;
  std::unique_ptr<tok::Tokenizer> tokenizer;
  std::unique_ptr<runtime::Delivery> delivery;
  std::unique_ptr<runtime::Engine> engine;
  EngineConfig config;

  std::mutex mu;  // the results of requests without on_done
  std::condition_variable done;
  std::set<int64_t> waitable;
  std::map<int64_t, GenerationResult> results;
  std::atomic<bool> closing{false};

  std::string piece(int32_t token) const {
    return token == tokenizer->eos() ? std::string() : tokenizer->token_to_piece(token);
  }

  Result<runtime::SeqRequest> to_request(const GenerationRequest& g) const {
    CW_RETURN_IF_ERROR(runtime::validate_stop_strings(g.stop));
    runtime::SeqRequest r;
    r.prompt = g.prompt_tokens.empty() ? tokenizer->encode(g.prompt, /*add_special=*/true, /*parse_special=*/false)
                                       : g.prompt_tokens;
    if (r.prompt.empty()) return invalid_argument("the prompt has no tokens");
    r.n_predict = g.n_predict;
    r.sampling = g.sampling;
    r.eos = g.stop_at_eos ? tokenizer->eos() : -1;
    r.keep_logits = g.keep_logits;
    r.logprobs = g.logprobs;
    r.top_logprobs = g.top_logprobs;
    r.deadline = g.deadline;
    if (!g.kv_policy.empty()) {
      CW_ASSIGN_OR_RETURN(std::unique_ptr<kv::KvPolicy> policy, kv::make_kv_policy(g.kv_policy));
      r.kv_policy = std::move(policy);
    }
    return r;
  }

  void store(GenerationResult g) {
    {
      std::lock_guard<std::mutex> lock(mu);
      results[g.id] = std::move(g);
    }
    done.notify_all();
  }

  // Step thread: a token was sampled.
  void on_token(const std::shared_ptr<Stream>& s, const runtime::StepEvents::Token& t) {
    if (s->overflowed) return;
    std::string text = s->text.take_ready();
    if (!s->cb.on_token && !s->cb.on_text) return;
    const int64_t id = t.id;
    auto task = [this, s, id, token = t.token, lp = t.has_logprobs ? std::make_optional(t.logprobs) : std::nullopt,
                 text = std::move(text)] {
      if (!s->callback_error.empty()) return;
      try {
        if (s->cb.on_token) s->cb.on_token(id, token, lp ? &*lp : nullptr);
        if (s->cb.on_text && !text.empty()) s->cb.on_text(id, text);
      } catch (const std::exception& e) {
        s->callback_error = std::string("a stream callback threw: ") + e.what();
      } catch (...) {
        s->callback_error = "a stream callback threw";
      }
      if (!s->callback_error.empty()) engine->cancel(id);
    };
    if (!delivery->post(id, std::move(task))) {
      s->overflowed = true;
      engine->cancel(id);
    }
  }

  // Step thread: the request finished.
  void on_done(const std::shared_ptr<Stream>& s, runtime::SeqResult r) {
    GenerationResult g;
    g.id = r.id;
    g.finish_reason = r.reason;
    g.error = std::move(r.error);
    g.tokens = std::move(r.tokens);
    g.text = std::string(s->text.text());
    std::string last = s->text.finish();
    g.prompt_tokens = r.prompt_tokens;
    g.cached_tokens = r.cached_tokens;
    g.computed_tokens = r.computed_tokens;
    g.preemptions = r.n_preemptions;
    g.logits = std::move(r.logits);
    g.logprobs = std::move(r.logprobs);
    if (s->overflowed && g.finish_reason == FinishReason::kCancelled) {
      g.error = resource_exhausted("request " + std::to_string(g.id) + " was cancelled: its callbacks fell " +
                                   std::to_string(config.callback_queue) +
                                   " events behind (EngineConfig::callback_queue)");
    }
    if (!s->cb.on_token && !s->cb.on_text && !s->cb.on_done) {
      store(std::move(g));
      return;
    }
    const bool overflowed = s->overflowed;
    const int64_t id = g.id;
    delivery->post_final(id, [this, s, overflowed, last = std::move(last), g = std::move(g)]() mutable {
      if (!s->callback_error.empty()) {
        if (g.finish_reason == FinishReason::kCancelled && g.error.is_ok())
          g.error = internal_error("request " + std::to_string(g.id) + " was cancelled: " + s->callback_error);
      } else if (!overflowed && s->cb.on_text && !last.empty()) {
        try {
          s->cb.on_text(g.id, last);
        } catch (...) {  // nothing is left to cancel: the request has finished
        }
      }
      if (!s->cb.on_done) {
        store(std::move(g));
        return;
      }
      try {
        s->cb.on_done(std::move(g));
      } catch (...) {  // the last callback of the request: nothing is left to cancel
      }
    });
  }
};

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() {
  if (!impl_) return;
  impl_->closing = true;
  impl_->engine->shutdown();    // every request finishes; its last events are posted
  impl_->delivery->shutdown();  // ... and delivered
  impl_->engine.reset();        // before the model goes away
}

Result<std::unique_ptr<Engine>> Engine::open(const EngineConfig& c) {
  if (c.model_path.empty()) return invalid_argument("a model path is required");
  runtime::EngineOptions o;
  if (c.kv_type == "f16") {
    o.kv_type = model::KvType::kF16;
  } else if (c.kv_type == "f32") {
    o.kv_type = model::KvType::kF32;
  } else {
    return invalid_argument("unknown KV type '" + c.kv_type + "' (supported: f16, f32)");
  }
  CW_ASSIGN_OR_RETURN(o.schedule, runtime::schedule_from_name(c.schedule));
  if (c.threads < 1) return out_of_range("threads must be >= 1");  // capped at the hardware's by the engine
  if (c.batch_tokens < 1 || c.batch_tokens > (int64_t{1} << 20))
    return out_of_range("batch tokens must be in [1, 1048576]");
  if (c.parallel < 1 || c.parallel > 4096) return out_of_range("parallel must be in [1, 4096]");
  if (c.block_size < 1 || c.block_size > 4096) return out_of_range("the KV block size must be in [1, 4096]");
  if (c.ctx < 0) return out_of_range("ctx must be >= 0");
  if (c.callback_threads < 1 || c.callback_threads > 64) return out_of_range("callback threads must be in [1, 64]");
  if (c.callback_queue < 1 || c.callback_queue > (int64_t{1} << 20))
    return out_of_range("the callback queue must hold [1, 1048576] events");
  o.block_size = c.block_size;
  o.kv_mem_bytes = c.kv_mem_bytes;
  o.ctx_tokens = c.ctx;
  o.n_threads = c.threads;
  o.batch_tokens = c.batch_tokens;
  o.max_running = c.parallel;
  o.kv_policy = c.kv_policy;
  o.batch_invariant = c.batch_invariant;

  auto impl = std::make_unique<Impl>();
  impl->config = c;
  CW_ASSIGN_OR_RETURN(impl->model, model::Model::load(c.model_path));
  CW_ASSIGN_OR_RETURN(impl->tokenizer, tok::Tokenizer::from_gguf(impl->model->file()));
  if (impl->tokenizer->n_vocab() != impl->model->hparams().n_vocab) {
    return data_loss("the vocabulary has " + std::to_string(impl->tokenizer->n_vocab()) + " tokens but the model " +
                     std::to_string(impl->model->hparams().n_vocab));
  }
  CW_ASSIGN_OR_RETURN(impl->engine, runtime::Engine::create(*impl->model, o));
  impl->delivery =
      std::make_unique<runtime::Delivery>(c.callback_threads, static_cast<size_t>(c.callback_queue));
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Status Engine::validate(const GenerationRequest& request) const {
  CW_ASSIGN_OR_RETURN(runtime::SeqRequest r, impl_->to_request(request));
  return impl_->engine->validate(r);
}

Result<int64_t> Engine::submit(const GenerationRequest& request, StreamCallbacks callbacks) {
  if (impl_->closing) return internal_error("the engine is shutting down");
  CW_ASSIGN_OR_RETURN(runtime::SeqRequest r, impl_->to_request(request));
  auto s = std::make_shared<Stream>(request.stop);
  s->cb = std::move(callbacks);
  const bool waitable = !s->cb.on_done;
  Impl* impl = impl_.get();
  r.stop_after = [impl, s](int32_t token) { return s->text.push(impl->piece(token)); };
  runtime::RequestCallbacks cb;
  cb.on_token_event = [impl, s](const runtime::StepEvents::Token& t) { impl->on_token(s, t); };
  cb.on_done = [impl, s](runtime::SeqResult result) { impl->on_done(s, std::move(result)); };
  // Under mu: wait() must know the id before its result can arrive.
  std::lock_guard<std::mutex> lock(impl_->mu);
  CW_ASSIGN_OR_RETURN(const int64_t id, impl_->engine->submit(std::move(r), std::move(cb)));
  if (waitable) impl_->waitable.insert(id);
  return id;
}

bool Engine::cancel(int64_t id) { return impl_->engine->cancel(id); }

GenerationResult Engine::wait(int64_t id) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  if (impl_->waitable.count(id) == 0) {
    GenerationResult g;
    g.id = id;
    g.finish_reason = FinishReason::kError;
    g.error = not_found("unknown request " + std::to_string(id) +
                        " (never submitted, already waited for, or its result goes to on_done)");
    return g;
  }
  impl_->done.wait(lock, [&] { return impl_->results.count(id) != 0; });
  GenerationResult g = std::move(impl_->results[id]);
  impl_->results.erase(id);
  impl_->waitable.erase(id);
  return g;
}

std::vector<int32_t> Engine::tokenize(std::string_view text, bool add_special) const {
  return impl_->tokenizer->encode(text, add_special, /*parse_special=*/false);
}

std::string Engine::token_piece(int32_t token) const { return impl_->tokenizer->token_to_piece(token); }

int32_t Engine::eos() const { return impl_->tokenizer->eos(); }

EngineInfo Engine::info() const {
  EngineInfo i;
  i.n_vocab = impl_->model->hparams().n_vocab;
  i.n_ctx_train = impl_->model->hparams().n_ctx_train;
  const runtime::EngineStats st = impl_->engine->stats();
  i.kv_blocks = st.kv_blocks;
  i.block_size = st.block_size;
  i.kv_bytes = st.kv_bytes;
  i.max_request_tokens = static_cast<int64_t>(st.kv_blocks - 1) * st.block_size;
  return i;
}

EngineCounters Engine::counters() const {
  const runtime::EngineStats st = impl_->engine->stats();
  EngineCounters c;
  c.steps = st.scheduler.steps;
  c.preemptions = st.scheduler.preemptions;
  c.cached_tokens = st.scheduler.cached_tokens;
  c.decode_rows = st.scheduler.decode_rows;
  c.prefill_rows = st.scheduler.prefill_rows;
  c.running = st.running;
  c.waiting = st.waiting;
  c.free_blocks = st.free_blocks;
  c.cached_blocks = st.cached_blocks;
  c.busy_ms = st.busy_ms;
  return c;
}

}  // namespace cw
