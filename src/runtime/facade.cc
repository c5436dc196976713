// cw::Engine (include/chunkwise/engine.h): model + tokenizer + runtime::Engine behind a text API.
#include <map>
#include <mutex>

#include "chunkwise/engine.h"
#include "kv/policy.h"
#include "model/model.h"
#include "runtime/engine.h"
#include "tokenizer/tokenizer.h"

namespace cw {

struct Engine::Impl {
  std::unique_ptr<model::Model> model;
  std::unique_ptr<tok::Tokenizer> tokenizer;
  std::unique_ptr<runtime::Engine> engine;
  EngineConfig config;

  Result<runtime::SeqRequest> to_request(const GenerationRequest& g) const {
    runtime::SeqRequest r;
    r.prompt = g.prompt_tokens.empty() ? tokenizer->encode(g.prompt, /*add_special=*/true, /*parse_special=*/false)
                                       : g.prompt_tokens;
    if (r.prompt.empty()) return invalid_argument("the prompt has no tokens");
    r.n_predict = g.n_predict;
    const SamplingConfig& s = g.sampling;
    r.sampling.temperature = s.temperature;
    r.sampling.top_k = s.top_k;
    r.sampling.top_p = s.top_p;
    r.sampling.min_p = s.min_p;
    r.sampling.repeat_penalty = s.repeat_penalty;
    r.sampling.presence_penalty = s.presence_penalty;
    r.sampling.frequency_penalty = s.frequency_penalty;
    r.sampling.penalty_last_n = s.penalty_last_n;
    r.sampling.seed = s.seed;
    r.eos = g.stop_at_eos ? tokenizer->eos() : -1;
    r.keep_logits = g.keep_logits;
    if (!g.kv_policy.empty()) {
      CW_ASSIGN_OR_RETURN(std::unique_ptr<kv::KvPolicy> policy, kv::make_kv_policy(g.kv_policy));
      r.kv_policy = std::move(policy);
    }
    return r;
  }
};

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() {
  if (impl_) impl_->engine.reset();  // stops the step thread before the model goes away
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
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Status Engine::validate(const GenerationRequest& request) const {
  CW_ASSIGN_OR_RETURN(runtime::SeqRequest r, impl_->to_request(request));
  return impl_->engine->validate(r);
}

Result<int64_t> Engine::submit(const GenerationRequest& request, TokenStream on_token) {
  CW_ASSIGN_OR_RETURN(runtime::SeqRequest r, impl_->to_request(request));
  runtime::RequestCallbacks cb;
  if (on_token) {
    const tok::Tokenizer* t = impl_->tokenizer.get();
    cb.on_token = [t, on_token = std::move(on_token)](runtime::RequestId id, int32_t token) {
      on_token(id, token, token == t->eos() ? std::string() : t->token_to_piece(token));
    };
  }
  return impl_->engine->submit(std::move(r), std::move(cb));
}

bool Engine::cancel(int64_t id) { return impl_->engine->cancel(id); }

GenerationResult Engine::wait(int64_t id) {
  runtime::SeqResult r = impl_->engine->wait(id);
  GenerationResult g;
  g.id = r.id;
  g.finish_reason = runtime::finish_reason_name(r.reason);
  g.error = r.error;
  g.tokens = std::move(r.tokens);
  for (int32_t t : g.tokens)
    if (t != impl_->tokenizer->eos()) g.text += impl_->tokenizer->token_to_piece(t);
  g.prompt_tokens = r.prompt_tokens;
  g.cached_tokens = r.cached_tokens;
  g.computed_tokens = r.computed_tokens;
  g.preemptions = r.n_preemptions;
  g.logits = std::move(r.logits);
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
