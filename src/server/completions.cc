// See completions.h.
#include "server/completions.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <utility>
#include <vector>

#include "server/client_connection.h"
#include "server/http_util.h"
#include "server/openai_request.h"
#include "server/openai_response.h"

namespace cw::server {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Undelivered stream data: text and, with logprobs, one event per token.
struct Event {
  std::string text;
  std::vector<TokenLogprobs> logprobs;
};

size_t event_bytes(const TokenLogprobs& t) { return 64 + 16 * t.top.size(); }

bool write_all(httplib::DataSink& sink, const std::string& s) { return sink.write(s.data(), s.size()); }

std::string sse(const std::string& json) { return "data: " + json + "\n\n"; }

// How often a non-streaming request looks whether its client is still there: a few engine steps.
constexpr std::chrono::milliseconds kDisconnectPoll{20};

}  // namespace

// One request's state, shared by its callbacks (delivery threads) and its connection thread.
struct Completions::Stream {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Event> events;  // streaming only
  size_t pending_bytes = 0;
  bool overflowed = false;
  bool done = false;
  GenerationResult result;
};

Completions::Completions(Engine* engine, const tok::Tokenizer* tokenizer, std::shared_ptr<Metrics> metrics,
                         std::shared_ptr<Admission> admission, CompletionsConfig config)
    : engine_(engine),
      tokenizer_(tokenizer),
      config_(std::move(config)),
      metrics_(std::move(metrics)),
      admission_(std::move(admission)) {}

void Completions::track(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_.insert(id);
}

void Completions::untrack(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_.erase(id);
}

void Completions::shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = true;
  for (int64_t id : in_flight_) engine_->cancel(id);
}

void Completions::handle(const httplib::Request& req, httplib::Response& res, bool chat) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      res.set_header("Retry-After", "1");
      return set_error(res, 503, "the server is stopping");
    }
  }
  respond(req, res, chat);
}

void Completions::respond(const httplib::Request& req, httplib::Response& res, bool chat) {
  auto body = parse_object(req);
  if (!body.is_ok()) return set_error(res, 400, body.status().message());
  auto parsed = parse_openai_request(*body, chat, tokenizer_->n_vocab());
  if (!parsed.is_ok()) return set_error(res, 400, parsed.status().message());
  const OpenAiRequest& o = *parsed;
  if (!o.model.empty() && o.model != config_.model_id)
    return set_error(res, 404, "the model '" + o.model + "' does not exist (this server serves '" +
                                   config_.model_id + "')");

  GenerationRequest g;
  if (chat) {
    auto text = render_chat(config_.chat_family, o.messages, /*add_generation_prompt=*/true);
    if (!text.is_ok()) return set_error(res, 400, text.status().message());
    g.prompt_tokens = tokenizer_->encode(*text, /*add_special=*/true, /*parse_special=*/true);
  } else if (!o.prompt_ids.empty()) {
    g.prompt_tokens = o.prompt_ids;
  } else {
    // As `chunkwise run` and Engine::submit tokenize a text prompt: BOS by the vocabulary's rule, no
    // special-token parsing.
    g.prompt_tokens = tokenizer_->encode(o.prompt, /*add_special=*/true, /*parse_special=*/false);
  }
  const int64_t n_prompt = static_cast<int64_t>(g.prompt_tokens.size());
  if (n_prompt == 0) return set_error(res, 400, "the prompt has no tokens");

  // The context one request may fill: the training context and the KV cache.
  const EngineInfo info = engine_->info();
  int64_t context = info.max_request_tokens + 1;
  if (info.n_ctx_train > 0) context = std::min(context, info.n_ctx_train);
  g.n_predict = o.max_tokens.value_or(std::max<int64_t>(context - n_prompt, 1));
  g.sampling = o.sampling;
  if (!o.seed_given) g.sampling.seed = splitmix64(static_cast<uint64_t>(
      std::chrono::steady_clock::now().time_since_epoch().count()) ^ splitmix64(++seed_counter_));
  g.stop = o.stop;
  // A chat reply ends at the template's end of turn (the model's eos may be another token): one more
  // stop string when the client left room for it (the engine takes 4).
  if (chat) {
    const std::string eot = chat_end_of_turn(config_.chat_family);
    if (g.stop.size() < 4 && std::find(g.stop.begin(), g.stop.end(), eot) == g.stop.end()) g.stop.push_back(eot);
  }
  g.logprobs = o.logprobs;
  g.top_logprobs = o.top_logprobs;

  auto over_context = [&](const Status& why) {
    if (n_prompt + g.n_predict <= context) return why.message();
    if (!o.max_tokens || n_prompt >= context)
      return "the prompt has " + std::to_string(n_prompt) + " tokens; the context holds " + std::to_string(context) +
             " (prompt + max_tokens)";
    return "the prompt (" + std::to_string(n_prompt) + " tokens) + max_tokens (" + std::to_string(g.n_predict) +
           ") = " + std::to_string(n_prompt + g.n_predict) + " tokens exceed the context of " +
           std::to_string(context) + " tokens";
  };
  if (Status v = engine_->validate(g); !v.is_ok()) return set_error(res, 400, over_context(v));

  // Admission: from here to the request's on_done.
  if (!admission_->try_enter()) {
    res.set_header("Retry-After", "1");
    return set_error(res, 503, "the server is busy: " + std::to_string(admission_->limit()) +
                                   " requests are in flight; retry later");
  }

  auto st = std::make_shared<Stream>();
  const bool stream = o.stream;
  const bool per_token = o.stream && o.logprobs;
  const size_t cap = config_.stream_buffer_bytes;
  Engine* engine = engine_;
  auto overflow = [st, cap, engine](int64_t id) {  // under st->mu
    if (st->pending_bytes <= cap || st->overflowed) return;
    st->overflowed = true;
    engine->cancel(id);
  };
  StreamCallbacks cb;
  if (stream) {
    if (per_token) {
      cb.on_token = [st, overflow](int64_t id, int32_t, const TokenLogprobs* lp) {
        if (lp == nullptr) return;
        std::lock_guard<std::mutex> lock(st->mu);
        if (st->overflowed) return;
        st->events.emplace_back();
        st->events.back().logprobs.push_back(*lp);
        st->pending_bytes += event_bytes(*lp);
        overflow(id);
      };
    }
    cb.on_text = [st, overflow](int64_t id, std::string_view piece) {
      {
        std::lock_guard<std::mutex> lock(st->mu);
        if (st->overflowed) return;
        if (st->events.empty()) st->events.emplace_back();
        st->events.back().text.append(piece);
        st->pending_bytes += piece.size();
        overflow(id);
      }
      st->cv.notify_all();
    };
  }
  cb.on_done = [st, metrics = metrics_, admission = admission_](GenerationResult r) {
    metrics->add_tokens(r.prompt_tokens, static_cast<int64_t>(r.tokens.size()), r.cached_tokens);
    admission->leave();  // before the response completes: a client's next request finds the slot free
    {
      std::lock_guard<std::mutex> lock(st->mu);
      st->result = std::move(r);
      st->done = true;
    }
    st->cv.notify_all();
  };
  auto submitted = engine_->submit(g, std::move(cb));
  if (!submitted.is_ok()) {
    admission_->leave();
    return set_error(res, 400, over_context(submitted.status()));
  }
  const int64_t id = *submitted;
  track(id);
  {
    // A shutdown between the check in handle() and track() would miss this request.
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) engine_->cancel(id);
  }

  ResponseMeta meta;
  meta.chat = chat;
  meta.id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(id);
  meta.created = static_cast<int64_t>(std::time(nullptr));
  meta.model = config_.model_id;
  meta.logprobs = o.logprobs;

  if (!stream) {
    // Nothing is written until the request is done, so a client that went away is noticed by looking at
    // its socket every kDisconnectPoll: then the request is cancelled (its KV freed at the engine's next step).
    ClientConnection client(req);
    bool client_gone = false;
    std::unique_lock<std::mutex> lock(st->mu);
    while (!st->cv.wait_for(lock, kDisconnectPoll, [&] { return st->done; })) {
      if (client_gone) continue;  // cancelled: on_done comes at the next step
      lock.unlock();
      client_gone = client.gone();
      if (client_gone) engine_->cancel(id);
      lock.lock();
    }
    lock.unlock();
    untrack(id);
    const GenerationResult& r = st->result;
    if (client_gone && r.finish_reason == FinishReason::kCancelled)  // nobody reads it; counted in /metrics
      return set_error(res, 499, "the client closed the connection; the request was cancelled");
    if (r.finish_reason == FinishReason::kError)
      return set_error(res, 500, "the request failed: " + r.error.message());
    if (r.finish_reason == FinishReason::kCancelled) {
      res.set_header("Retry-After", "1");
      return set_error(res, 503, "the request was cancelled (the server is stopping)");
    }
    res.status = 200;
    res.set_content(completion_json(meta, r, *tokenizer_), kJsonType);
    return;
  }

  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  const bool include_usage = o.include_usage;
  auto provider = [this, st, id, meta, include_usage](size_t, httplib::DataSink& sink) -> bool {
    auto fail = [&] {
      engine_->cancel(id);  // the client went away: free its KV at the next step
      return false;
    };
    int64_t text_offset = 0;
    if (meta.chat && !write_all(sink, sse(chunk_json(meta, "", {}, nullptr, true, *tokenizer_, &text_offset))))
      return fail();
    for (;;) {
      std::deque<Event> batch;
      bool done = false, overflowed = false;
      {
        std::unique_lock<std::mutex> lock(st->mu);
        st->cv.wait_for(lock, std::chrono::seconds(1), [&] { return !st->events.empty() || st->done; });
        batch.swap(st->events);
        st->pending_bytes = 0;
        done = st->done;
        overflowed = st->overflowed;
      }
      if (batch.empty() && !done) {
        if (!write_all(sink, ": keep-alive\n\n")) return fail();
        continue;
      }
      if (!meta.logprobs) {  // coalesce: one chunk for what arrived
        for (size_t i = 1; i < batch.size(); ++i) batch[0].text += batch[i].text;
        batch.resize(1);
      }
      for (const Event& e : batch) {
        if (e.text.empty() && e.logprobs.empty()) continue;
        if (!write_all(sink, sse(chunk_json(meta, e.text, e.logprobs, nullptr, false, *tokenizer_, &text_offset))))
          return fail();
      }
      if (!done) continue;
      const GenerationResult& r = st->result;
      std::string tail;
      if (r.finish_reason == FinishReason::kError) {
        tail = sse(error_json(500, "the request failed: " + r.error.message()));
      } else if (r.finish_reason == FinishReason::kCancelled) {
        tail = sse(error_json(
            503, overflowed || !r.error.is_ok() ? std::string("the request was cancelled: the client fell behind the stream")
                                                : std::string("the request was cancelled (the server is stopping)")));
      } else {
        tail = sse(chunk_json(meta, "", {}, openai_finish_reason(r.finish_reason), false, *tokenizer_, &text_offset));
        if (include_usage) tail += sse(usage_chunk_json(meta, r));
      }
      tail += "data: [DONE]\n\n";
      if (!write_all(sink, tail)) return false;
      sink.done();
      return true;
    }
  };
  auto releaser = [this, st, id](bool) {
    bool done;
    {
      std::lock_guard<std::mutex> lock(st->mu);
      done = st->done;
    }
    if (!done) engine_->cancel(id);
    untrack(id);
  };
  res.set_chunked_content_provider("text/event-stream", std::move(provider), std::move(releaser));
}

}  // namespace cw::server
