// PolicySession: one sequence on a paged model::Session under a KV policy state — the single-sequence
// executor of kv::KvAction (docs/design/kv_layout.md), behind `run`, `perplexity` and `bench` with
// --kv-policy. Tokens are fed in chunks of at most `ubatch`; after each chunk the state slides
// (PolicyState::after_append) and its actions are applied in order through the Session's primitives
// (CopySlots -> copy_slots, DropSlots -> drop_slots, MoveSinks -> move_first_keys, Recompute -> truncate +
// fill from the tokens it keeps per slot, Reposition -> rotate_keys); a retaining state (probe_rows) gets the
// attention of its probe after each chunk (after_observe); then the Session's
// position offset becomes layout().pos_offset and its n_past() equals layout().n_slots. The cache holds
// max_slots() + ubatch slots, so memory stays constant however long the sequence grows.
//
// Thread-safety: single-threaded, like the Session it owns.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "kv/policy.h"
#include "model/model.h"

namespace cw::runtime {

// Whether `policy` acts on a sequence (its state is bounded: max_slots() >= 0, or it selects what each
// head sees: layout().select.on). `full` does not: its callers keep the plain Session path.
Result<bool> policy_acts(const kv::KvPolicy& policy, int32_t block_size);

// The policy of `spec` when it acts on a sequence with `block_size`-slot blocks (a PolicySession runs it),
// else nullptr (an empty spec, or a policy such as `full` that runs on a plain Session). Errors: the spec's
// (make_kv_policy) and the state's (make_state).
Result<std::unique_ptr<kv::KvPolicy>> make_acting_policy(const std::string& spec, int32_t block_size = 16);

// A state's chunk selection for the forward pass (model::ChunkSelect; span 0 when the state does not select),
// its span resolved (0: the model's training context) and validated: kInvalidArgument when the model states
// no training context or the span cannot hold its parts, kOutOfRange when it exceeds the training context.
Result<model::ChunkSelect> resolve_chunk_select(const kv::KvPolicy& policy, const kv::PolicyState& state,
                                                int64_t n_ctx_train, int32_t block_size);

class PolicySession {
 public:
  // The micro-batch to use under `policy`: `preferred`, shrunk so that max_slots() + ubatch stays within
  // the model's training context (create() refuses more); `preferred` when the policy does not act or
  // leaves no room (create() then explains). Errors: make_state's.
  static Result<int64_t> fit_ubatch(const model::Model& model, const kv::KvPolicy& policy, int64_t preferred,
                                    int32_t block_size = 16);

  // A fresh state of `policy` and a paged Session of ceil((max_slots + ubatch) / block_size) blocks — or,
  // for a policy that keeps every slot and selects (chunk_select), of ceil(capacity / block_size) blocks:
  // `capacity` is then the most tokens the sequence will hold (prompt + tokens to generate), and the
  // selection's span (0: the model's training context) must fit that context.
  // Errors: a policy that does not act (kInvalidArgument: use a plain Session), make_state's errors,
  // ubatch < 1, max_slots() + ubatch beyond the model's training context (kOutOfRange: position differences
  // must stay where the model was trained), a selecting policy without a capacity or with a span the model
  // was not trained on, the Session's errors.
  static Result<std::unique_ptr<PolicySession>> create(const model::Model& model, const kv::KvPolicy& policy,
                                                       int64_t ubatch, model::KvType kv_type = model::KvType::kF16,
                                                       int n_threads = 1, int32_t block_size = 16,
                                                       int64_t capacity = 0);

  // Appends `tokens` (any number, chunked by ubatch) and writes logits like Session::eval: [n, n_vocab]
  // when all_logits, else [n_vocab] of the last token. Errors: empty input and the Session's errors.
  // prompt_end: `tokens` end the prompt — a state that observes (observe_rows) gets the attention of their
  // last rows (after_prompt) and its actions run before the next eval; a retaining state (probe_rows) gets,
  // after each chunk but the last, the attention of the prompt's last probe_rows() tokens, run as probe rows
  // after the chunk in its forward and then removed (without prompt_end, and for the last chunk: of the
  // chunk's own last rows).
  Status eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>* logits, bool prompt_end = false);
  // Empties the sequence and starts a fresh policy state.
  Status reset();

  const kv::PolicyState& state() const { return *state_; }
  model::Session& session() { return *session_; }
  int64_t ubatch() const { return ubatch_; }
  const model::Model& model() const { return session_->model(); }

 private:
  PolicySession(const kv::KvPolicy& policy, int32_t block_size, int64_t ubatch, std::unique_ptr<kv::PolicyState> state,
                std::unique_ptr<model::Session> session);
  Status apply(const std::vector<kv::KvAction>& actions);
  // Recompute{begin, n}: truncate the Session to `begin` slots and run slot_tokens_[begin, begin + n) again.
  Status recompute(int64_t begin, int64_t n);
  // After an append: slot_tokens_ follows the state's new layout (`before`: the segments before it).
  void track_tokens(const std::vector<kv::Segment>& before, int64_t seen_before, std::span<const int32_t> appended);

  const kv::KvPolicy& policy_;
  int32_t block_size_;
  int64_t ubatch_;
  std::unique_ptr<kv::PolicyState> state_;
  std::unique_ptr<model::Session> session_;
  std::vector<float> chunk_logits_;
  std::vector<float> block_mass_;  // observation: attention per block of the prompt's last rows / the probe
  std::vector<int32_t> probe_rows_;  // a prompt chunk followed by the prompt's last rows (retention)
  std::vector<int32_t> slot_tokens_;  // the token each slot holds (what Recompute runs again)
};

}  // namespace cw::runtime
