#include <memory>
#include <string>

#include "model/model.h"

namespace cw::model {
namespace {

KvShape session_shape(const HParams& hp, int64_t n_ctx, KvType kv_type) {
  CW_CHECK(n_ctx > 0 && n_ctx <= (int64_t{1} << 24));
  return KvShape::for_model(hp, 1, static_cast<int32_t>(n_ctx), kv_type);
}

}  // namespace

Session::Session(const Model& model, int64_t n_ctx, KvType kv_type, int n_threads)
    : m_(model),
      n_ctx_(n_ctx),
      kv_(std::make_unique<KvCache>(session_shape(model.hparams(), n_ctx, kv_type))),
      fwd_(model, n_threads) {}

Session::Session(const Model& model, int64_t n_ctx, std::unique_ptr<KvCache> kv, int n_threads, Created)
    : m_(model), n_ctx_(n_ctx), kv_(std::move(kv)), fwd_(model, n_threads) {}

uint64_t Session::kv_bytes(const HParams& hp, int64_t n_ctx, KvType kv_type) {
  return KvShape::for_model(hp, 1, static_cast<int32_t>(n_ctx), kv_type).total_bytes();
}

Result<std::unique_ptr<Session>> Session::create(const Model& model, int64_t n_ctx, KvType kv_type, int n_threads) {
  if (n_ctx < 1 || n_ctx > (int64_t{1} << 24))
    return out_of_range("context size " + std::to_string(n_ctx) + " is outside [1, 16777216]");
  CW_RETURN_IF_ERROR(check_context_size(model.hparams(), n_ctx));
  if (n_threads < 1) return out_of_range("the thread count must be >= 1");
  // Validates the cache size against this machine's memory; the pages are committed as they are used.
  const KvShape shape = KvShape::for_model(model.hparams(), 1, static_cast<int32_t>(n_ctx), kv_type);
  CW_ASSIGN_OR_RETURN(std::unique_ptr<KvCache> kv, KvCache::create(shape));
  return std::unique_ptr<Session>(new Session(model, n_ctx, std::move(kv), cap_threads(n_threads), Created{}));
}

Status Session::run(std::span<const int32_t> tokens, OutputMode mode, std::vector<float>* logits,
                    std::vector<float>* hidden) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) return invalid_argument("eval: no tokens");
  if (n_past_ + n > n_ctx_)
    return out_of_range("context overflow: " + std::to_string(n_past_) + " cached + " + std::to_string(n) +
                        " new tokens exceed the context size of " + std::to_string(n_ctx_) + " tokens");
  batch_.tokens.assign(tokens.begin(), tokens.end());
  batch_.seqs.assign(1, BatchSeq{std::span<const int32_t>(kBlockTable), n_past_, 0, n, pos_offset_, mode});
  CW_RETURN_IF_ERROR(fwd_.run(batch_, *kv_, logits, hidden));
  n_past_ += n;
  return Status::ok();
}

Status Session::eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>* logits) {
  return run(tokens, all_logits ? OutputMode::kAll : OutputMode::kLast, logits, nullptr);
}

Status Session::eval_hidden(std::span<const int32_t> tokens, std::vector<float>* hidden) {
  return run(tokens, OutputMode::kAll, nullptr, hidden);
}

}  // namespace cw::model
