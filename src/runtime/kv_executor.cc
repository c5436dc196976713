#include "runtime/kv_executor.h"

#include <algorithm>
#include <string>
#include <type_traits>
#include <variant>

namespace cw::runtime {

Result<bool> policy_acts(const kv::KvPolicy& policy, int32_t block_size) {
  CW_ASSIGN_OR_RETURN(std::unique_ptr<kv::PolicyState> st, policy.make_state(block_size));
  return st->max_slots() >= 0 || st->layout().select.on || st->observe_rows() > 0;
}

Result<model::ChunkSelect> resolve_chunk_select(const kv::KvPolicy& policy, const kv::PolicyState& state,
                                                int64_t n_ctx_train, int32_t block_size) {
  model::ChunkSelect cs;
  const kv::HeadSelection& sel = state.layout().select;
  if (!sel.on) return cs;
  cs.span = sel.span > 0 ? sel.span : n_ctx_train;
  if (cs.span <= 0)
    return invalid_argument("kv policy '" + policy.spec() + "': the model states no training context: give span=N");
  if (n_ctx_train > 0 && cs.span > n_ctx_train)
    return out_of_range("kv policy '" + policy.spec() + "': span " + std::to_string(cs.span) +
                        " is beyond the model's training context of " + std::to_string(n_ctx_train) + " tokens");
  if (Status st = sel.check(cs.span, block_size); !st.is_ok())
    return invalid_argument("kv policy '" + policy.spec() + "': " + st.message());
  cs.sinks = sel.sinks;
  cs.local = sel.local;
  cs.top_k = sel.top_k;
  cs.expand = sel.expand;
  cs.group = sel.group;
  return cs;
}

Result<std::unique_ptr<kv::KvPolicy>> make_acting_policy(const std::string& spec, int32_t block_size) {
  if (spec.empty()) return std::unique_ptr<kv::KvPolicy>();
  CW_ASSIGN_OR_RETURN(std::unique_ptr<kv::KvPolicy> policy, kv::make_kv_policy(spec));
  CW_ASSIGN_OR_RETURN(const bool acts, policy_acts(*policy, block_size));
  if (!acts) policy.reset();
  return policy;
}

Result<int64_t> PolicySession::fit_ubatch(const model::Model& model, const kv::KvPolicy& policy, int64_t preferred,
                                          int32_t block_size) {
  CW_ASSIGN_OR_RETURN(std::unique_ptr<kv::PolicyState> state, policy.make_state(block_size));
  const int64_t room = model.hparams().n_ctx_train - state->max_slots();
  if (state->max_slots() < 0 || model.hparams().n_ctx_train <= 0 || room < 1) return preferred;
  return std::min(preferred, room);
}

Result<std::unique_ptr<PolicySession>> PolicySession::create(const model::Model& model, const kv::KvPolicy& policy,
                                                             int64_t ubatch, model::KvType kv_type, int n_threads,
                                                             int32_t block_size, int64_t capacity) {
  if (ubatch < 1) return invalid_argument("ubatch must be >= 1");
  CW_ASSIGN_OR_RETURN(std::unique_ptr<kv::PolicyState> state, policy.make_state(block_size));
  const int64_t max_slots = state->max_slots();
  const int64_t n_ctx_train = model.hparams().n_ctx_train;
  if (max_slots < 0 && (state->layout().select.on || state->observe_rows() > 0)) {
    // Keeps every slot (chunk_select), or until the prompt ends (compress): a cache for the whole request.
    CW_ASSIGN_OR_RETURN(const model::ChunkSelect cs, resolve_chunk_select(policy, *state, n_ctx_train, block_size));
    if (capacity < 1 || capacity > (int64_t{1} << 24))
      return invalid_argument("kv policy '" + policy.spec() + "' keeps the whole sequence: its length (" +
                              std::to_string(capacity) + ") must be in [1, 16777216]");
    if (n_ctx_train > 0 && !policy.lifts_context_limit() && capacity > n_ctx_train)
      return out_of_range("kv policy '" + policy.spec() + "': the prompt and the tokens to generate (" +
                          std::to_string(capacity) + ") exceed the model's training context of " +
                          std::to_string(n_ctx_train) + " tokens");
    CW_ASSIGN_OR_RETURN(std::unique_ptr<model::Session> session,
                        model::Session::create_paged(model, static_cast<int32_t>((capacity + block_size - 1) / block_size),
                                                     block_size, kv_type, n_threads));
    session->set_chunk_select(cs);
    return std::unique_ptr<PolicySession>(
        new PolicySession(policy, block_size, ubatch, std::move(state), std::move(session)));
  }
  if (max_slots < 0)
    return invalid_argument("kv policy '" + policy.spec() + "' keeps every slot: it runs on a plain session");
  if (n_ctx_train > 0 && max_slots + ubatch > n_ctx_train)
    return out_of_range("kv policy '" + policy.spec() + "' holds up to " + std::to_string(max_slots) +
                        " slots + " + std::to_string(ubatch) + " tokens per forward pass = " +
                        std::to_string(max_slots + ubatch) + ", beyond the model's training context of " +
                        std::to_string(n_ctx_train) + " tokens: make the window or the micro-batch smaller");
  const int64_t n_blocks = (max_slots + ubatch + block_size - 1) / block_size;
  if (n_blocks > (int64_t{1} << 24) / block_size)
    return out_of_range("kv policy '" + policy.spec() + "' needs more than 16777216 KV slots");
  CW_ASSIGN_OR_RETURN(std::unique_ptr<model::Session> session,
                      model::Session::create_paged(model, static_cast<int32_t>(n_blocks), block_size, kv_type, n_threads));
  return std::unique_ptr<PolicySession>(
      new PolicySession(policy, block_size, ubatch, std::move(state), std::move(session)));
}

PolicySession::PolicySession(const kv::KvPolicy& policy, int32_t block_size, int64_t ubatch,
                             std::unique_ptr<kv::PolicyState> state, std::unique_ptr<model::Session> session)
    : policy_(policy), block_size_(block_size), ubatch_(ubatch), state_(std::move(state)), session_(std::move(session)) {}

Status PolicySession::reset() {
  CW_ASSIGN_OR_RETURN(state_, policy_.make_state(block_size_));
  slot_tokens_.clear();
  session_->reset();
  session_->set_position_offset(0);
  return Status::ok();
}

Status PolicySession::recompute(int64_t begin, int64_t n) {
  if (begin + n != static_cast<int64_t>(slot_tokens_.size()))
    return internal_error("kv executor: Recompute{" + std::to_string(begin) + ", " + std::to_string(n) +
                          "} is not the tail of the " + std::to_string(slot_tokens_.size()) + " slots");
  CW_RETURN_IF_ERROR(session_->truncate(begin));
  session_->set_position_offset(static_cast<double>(state_->layout().pos_offset));
  for (int64_t i = 0; i < n; i += ubatch_) {
    const int64_t len = std::min(ubatch_, n - i);
    CW_RETURN_IF_ERROR(session_->fill(std::span<const int32_t>(slot_tokens_).subspan(static_cast<size_t>(begin + i),
                                                                                      static_cast<size_t>(len))));
  }
  return Status::ok();
}

void PolicySession::track_tokens(const std::vector<kv::Segment>& before, int64_t seen_before,
                                 std::span<const int32_t> appended) {
  // slot_tokens_ holds the slots of `before` followed by the appended tokens; rebuild it for the new layout.
  const int64_t n_before = static_cast<int64_t>(slot_tokens_.size());
  slot_tokens_.insert(slot_tokens_.end(), appended.begin(), appended.end());
  const kv::SeqLayout& l = state_->layout();
  std::vector<int32_t> next;
  next.reserve(static_cast<size_t>(l.n_slots));
  for (const kv::Segment& seg : l.segments)
    for (int64_t t = seg.token_begin; t < seg.token_begin + seg.n; ++t) {
      int64_t slot = t >= seen_before ? n_before + (t - seen_before) : -1;
      for (const kv::Segment& old : before)
        if (t >= old.token_begin && t < old.token_begin + old.n) slot = old.slot_begin + (t - old.token_begin);
      CW_CHECK(slot >= 0 && slot < static_cast<int64_t>(slot_tokens_.size()));  // a layout holds only held tokens
      next.push_back(slot_tokens_[static_cast<size_t>(slot)]);
    }
  slot_tokens_ = std::move(next);
}

Status PolicySession::apply(const std::vector<kv::KvAction>& actions) {
  for (const kv::KvAction& a : actions) {
    Status s = std::visit(
        [&](const auto& x) -> Status {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, kv::CopySlots>) return session_->copy_slots(x.src, x.dst, x.n);
          else if constexpr (std::is_same_v<T, kv::DropSlots>)
            return x.begin + x.n == session_->n_past() ? session_->truncate(x.begin) : session_->drop_slots(x.begin, x.n);
          else if constexpr (std::is_same_v<T, kv::MoveSinks>)
            return session_->move_first_keys(x.n, static_cast<double>(x.pos_offset));
          else if constexpr (std::is_same_v<T, kv::Reposition>)
            return session_->rotate_keys(x.begin, x.n, static_cast<double>(x.delta));
          else return recompute(x.begin, x.n);
        },
        a);
    CW_RETURN_IF_ERROR(s);
  }
  const kv::SeqLayout& l = state_->layout();
  session_->set_position_offset(static_cast<double>(l.pos_offset));
  if (session_->n_past() != l.n_slots)
    return internal_error("kv executor: the session holds " + std::to_string(session_->n_past()) +
                          " slots, the policy's layout " + std::to_string(l.n_slots));
  return Status::ok();
}

Status PolicySession::eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>* logits,
                           bool prompt_end) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) return invalid_argument("eval: no tokens");
  const int64_t n_vocab = session_->model().hparams().n_vocab;
  if (all_logits) logits->resize(static_cast<size_t>(n * n_vocab));
  const int64_t probe = state_->probe_rows();
  for (int64_t i = 0; i < n; i += ubatch_) {
    const int64_t len = std::min(ubatch_, n - i);
    const bool last = i + len == n;
    std::vector<float>* out = all_logits ? &chunk_logits_ : (last ? logits : &chunk_logits_);
    const bool observe = prompt_end && last && state_->observe_rows() > 0;
    // Retention: a chunk of a known prompt is read with the prompt's last rows riding after it in the same
    // forward (observed, then removed); the prompt's last chunk (which holds them) and a chunk of an unknown
    // prompt are observed through their own last rows.
    const int64_t n_probe = probe > 0 && prompt_end && !last ? std::min(probe, n) : 0;
    std::span<const int32_t> rows = tokens.subspan(static_cast<size_t>(i), static_cast<size_t>(len));
    if (n_probe > 0) {
      probe_rows_.assign(rows.begin(), rows.end());
      probe_rows_.insert(probe_rows_.end(), tokens.end() - n_probe, tokens.end());
      rows = probe_rows_;
    }
    const int64_t observed = observe ? state_->observe_rows() : n_probe > 0 ? n_probe : probe;
    if (observed > 0) {  // compress: one value per slot; retain: per block
      const int64_t unit = observe ? 1 : block_size_;
      block_mass_.assign(static_cast<size_t>(session_->n_ctx() / unit + 1), 0.0f);
      session_->set_observation(observed, &block_mass_, unit);
    }
    Status st = session_->eval(rows, all_logits, out);
    session_->set_observation(0, nullptr);
    CW_RETURN_IF_ERROR(st);
    if (n_probe > 0) {
      CW_RETURN_IF_ERROR(session_->truncate(session_->n_past() - n_probe));
      if (all_logits) chunk_logits_.resize(static_cast<size_t>(len * n_vocab));
    }
    if (all_logits) std::copy(chunk_logits_.begin(), chunk_logits_.end(), logits->begin() + i * n_vocab);
    const std::vector<kv::Segment> before = state_->layout().segments;
    const int64_t seen_before = state_->layout().n_seen;
    std::vector<kv::KvAction> actions = state_->after_append(len);
    track_tokens(before, seen_before, tokens.subspan(static_cast<size_t>(i), static_cast<size_t>(len)));
    CW_RETURN_IF_ERROR(apply(actions));
    if (observe) {
      const std::vector<kv::Segment> kept = state_->layout().segments;
      const int64_t seen = state_->layout().n_seen;
      std::vector<kv::KvAction> more = state_->after_prompt(block_mass_);
      track_tokens(kept, seen, {});
      CW_RETURN_IF_ERROR(apply(more));
    }
    if (probe > 0) {
      const std::vector<kv::Segment> kept = state_->layout().segments;
      const int64_t seen = state_->layout().n_seen;
      std::vector<kv::KvAction> more = state_->after_observe(block_mass_);
      track_tokens(kept, seen, {});
      CW_RETURN_IF_ERROR(apply(more));
    }
  }
  return Status::ok();
}

}  // namespace cw::runtime
