#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "kernels/cpu/ops.h"
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

Result<std::unique_ptr<Session>> Session::create_paged(const Model& model, int32_t n_blocks, int32_t block_size,
                                                       KvType kv_type, int n_threads) {
  constexpr int64_t kMax = int64_t{1} << 24;
  if (n_blocks < 1 || block_size < 1 || n_blocks > kMax || block_size > kMax ||
      int64_t{n_blocks} * block_size > kMax)
    return out_of_range("a paged KV cache of " + std::to_string(n_blocks) + " blocks of " +
                        std::to_string(block_size) + " slots is outside [1, 16777216] slots");
  if (n_threads < 1) return out_of_range("the thread count must be >= 1");
  const KvShape shape = KvShape::for_model(model.hparams(), n_blocks, block_size, kv_type);
  CW_ASSIGN_OR_RETURN(std::unique_ptr<KvCache> kv, KvCache::create(shape));
  std::unique_ptr<Session> s(
      new Session(model, int64_t{n_blocks} * block_size, std::move(kv), cap_threads(n_threads), Created{}));
  s->paged_ = true;
  s->reset();
  return s;
}

void Session::reset() {
  n_past_ = 0;
  if (!paged_) return;
  table_.clear();
  free_.clear();
  // Taken from the back: block 0 first.
  for (int32_t b = kv_->shape().n_blocks - 1; b >= 0; --b) free_.push_back(b);
  first_keys_.clear();
  first_keys_n_ = 0;
}

uint8_t* Session::k_row(int64_t layer, int64_t slot) {
  const int32_t bs = kv_->shape().block_size;
  return static_cast<uint8_t*>(kv_->k_block(layer, table_[static_cast<size_t>(slot / bs)])) +
         (slot % bs) * kv_->shape().kv_dim * kv_->shape().element_bytes();
}

uint8_t* Session::v_row(int64_t layer, int64_t slot) {
  const int32_t bs = kv_->shape().block_size;
  return static_cast<uint8_t*>(kv_->v_block(layer, table_[static_cast<size_t>(slot / bs)])) +
         (slot % bs) * kv_->shape().kv_dim * kv_->shape().element_bytes();
}

Status Session::drop_slots(int64_t begin, int64_t n) {
  if (!paged_) return invalid_argument("drop_slots: the session is not paged");
  const int64_t bs = kv_->shape().block_size;
  if (begin < 0 || n < 0 || begin % bs != 0 || n % bs != 0 || begin + n > n_table_blocks() * bs)
    return invalid_argument("drop_slots: [" + std::to_string(begin) + ", " + std::to_string(begin + n) +
                            ") is not a block-aligned range of the table (" + std::to_string(n_table_blocks()) +
                            " blocks of " + std::to_string(bs) + ")");
  if (n == 0) return Status::ok();
  const auto b0 = table_.begin() + begin / bs, b1 = b0 + n / bs;
  free_.insert(free_.end(), b0, b1);
  table_.erase(b0, b1);
  n_past_ = std::max<int64_t>(begin, n_past_ - n);
  return Status::ok();
}

Status Session::truncate(int64_t n) {
  if (n < 0 || n > n_past_)
    return invalid_argument("truncate: " + std::to_string(n) + " is outside [0, " + std::to_string(n_past_) + "]");
  n_past_ = n;
  if (!paged_) return Status::ok();
  const int64_t bs = kv_->shape().block_size;
  const auto keep = static_cast<size_t>((n + bs - 1) / bs);
  free_.insert(free_.end(), table_.begin() + static_cast<int64_t>(keep), table_.end());
  table_.resize(keep);
  if (n < first_keys_n_) {
    first_keys_.clear();
    first_keys_n_ = 0;
  }
  return Status::ok();
}

Status Session::copy_slots(int64_t src, int64_t dst, int64_t n) {
  if (!paged_) return invalid_argument("copy_slots: the session is not paged");
  if (n < 0 || src < 0 || dst < 0 || src + n > n_past_ || dst + n > n_past_ || (dst > src && dst < src + n))
    return invalid_argument("copy_slots: [" + std::to_string(src) + ", " + std::to_string(src + n) + ") -> [" +
                            std::to_string(dst) + ", " + std::to_string(dst + n) + ") leaves the " +
                            std::to_string(n_past_) + " slots in use or overlaps forward");
  const size_t row = static_cast<size_t>(kv_->shape().kv_dim * kv_->shape().element_bytes());
  for (int64_t l = 0; l < kv_->shape().n_layer; ++l)
    for (int64_t i = 0; i < n; ++i) {  // ascending: safe for dst < src
      std::memmove(k_row(l, dst + i), k_row(l, src + i), row);
      std::memmove(v_row(l, dst + i), v_row(l, src + i), row);
    }
  return Status::ok();
}

namespace {

// Rotation coefficients moving slot s from position from + s to to + s, for s in [0, n).
void reposition_coeffs(const Model& m, int64_t n, double from, double to, std::vector<float>* coeffs) {
  const HParams& hp = m.hparams();
  const int64_t nc = kernels::rope_reposition_coeff_floats(hp.n_rot);
  coeffs->resize(static_cast<size_t>(n * nc));
  const float* ff = m.rope_freq_factors().empty() ? nullptr : m.rope_freq_factors().data();
  for (int64_t s = 0; s < n; ++s)
    kernels::rope_reposition_coeffs(from + static_cast<double>(s), to + static_cast<double>(s), hp.n_rot,
                                    hp.rope_freq_base, hp.rope_freq_scale, ff, &(*coeffs)[static_cast<size_t>(s * nc)]);
}

// Re-rotates `run` consecutive key rows starting at `k` (slot s0) with the coefficients of slots s0...
void apply_reposition(const Model& m, const KvShape& sh, void* k, int64_t s0, int64_t run, const std::vector<float>& coeffs) {
  const HParams& hp = m.hparams();
  const int64_t nc = kernels::rope_reposition_coeff_floats(hp.n_rot);
  const kernels::KvElem elem = sh.type == KvType::kF16 ? kernels::KvElem::kF16 : kernels::KvElem::kF32;
  kernels::rope_reposition_apply(k, elem, run, sh.kv_dim, hp.n_head_kv, hp.head_dim, hp.n_rot, hp.rope_style,
                                 &coeffs[static_cast<size_t>(s0 * nc)]);
}

}  // namespace

void move_keys(const Model& m, KvCache& kv, std::span<const int32_t> origin, std::span<const int32_t> blocks, int64_t n,
               double from_offset, double to_offset, std::vector<float>* coeffs) {
  const KvShape& sh = kv.shape();
  const int64_t bs = sh.block_size;
  CW_CHECK(n >= 0 && static_cast<int64_t>(origin.size()) * bs >= n && static_cast<int64_t>(blocks.size()) * bs >= n);
  if (n == 0) return;
  reposition_coeffs(m, n, from_offset, to_offset, coeffs);
  const size_t row = static_cast<size_t>(sh.kv_dim * sh.element_bytes());
  for (int64_t l = 0; l < sh.n_layer; ++l)
    for (int64_t s = 0; s < n; s += bs) {
      const int64_t run = std::min<int64_t>(n - s, bs);
      const auto j = static_cast<size_t>(s / bs);
      void* dst = kv.k_block(l, blocks[j]);
      if (origin[j] != blocks[j]) std::memcpy(dst, kv.k_block(l, origin[j]), static_cast<size_t>(run) * row);
      apply_reposition(m, sh, dst, s, run, *coeffs);
    }
}

void rotate_keys(const Model& m, KvCache& kv, int32_t block, int64_t slot, int64_t n, double delta,
                 std::vector<float>* coeffs) {
  const KvShape& sh = kv.shape();
  CW_CHECK(slot >= 0 && n >= 0 && slot + n <= sh.block_size);
  if (n == 0 || delta == 0) return;
  reposition_coeffs(m, n, 0.0, delta, coeffs);  // the same rotation for every row
  const size_t row = static_cast<size_t>(sh.kv_dim * sh.element_bytes());
  for (int64_t l = 0; l < sh.n_layer; ++l)
    apply_reposition(m, sh, static_cast<uint8_t*>(kv.k_block(l, block)) + static_cast<size_t>(slot) * row, 0, n, *coeffs);
}

Status Session::move_first_keys(int64_t n, double offset) {
  if (!paged_) return invalid_argument("move_first_keys: the session is not paged");
  if (n < 0 || n > n_past_) return invalid_argument("move_first_keys: " + std::to_string(n) + " slots but " +
                                                     std::to_string(n_past_) + " in use");
  if (n == 0) return Status::ok();
  const KvShape& sh = kv_->shape();
  const size_t row = static_cast<size_t>(sh.kv_dim * sh.element_bytes());
  if (first_keys_n_ == 0) {  // keep the keys as first written
    first_keys_.resize(static_cast<size_t>(sh.n_layer * n) * row);
    for (int64_t l = 0; l < sh.n_layer; ++l)
      for (int64_t s = 0; s < n; ++s) std::memcpy(&first_keys_[static_cast<size_t>(l * n + s) * row], k_row(l, s), row);
    first_keys_n_ = n;
    first_keys_offset_ = pos_offset_;
  } else if (n != first_keys_n_) {
    return invalid_argument("move_first_keys: " + std::to_string(n) + " slots, but the kept keys are " +
                            std::to_string(first_keys_n_));
  }
  reposition_coeffs(m_, n, first_keys_offset_, offset, &coeffs_);
  for (int64_t l = 0; l < sh.n_layer; ++l) {
    // Restore the original keys, then move each run of slots within one block in one call.
    for (int64_t s = 0; s < n; ++s) std::memcpy(k_row(l, s), &first_keys_[static_cast<size_t>(l * n + s) * row], row);
    for (int64_t s = 0; s < n;) {
      const int64_t run = std::min<int64_t>(n - s, sh.block_size - s % sh.block_size);
      apply_reposition(m_, sh, k_row(l, s), s, run, coeffs_);
      s += run;
    }
  }
  return Status::ok();
}

Status Session::rotate_keys(int64_t begin, int64_t n, double delta) {
  if (!paged_) return invalid_argument("rotate_keys: the session is not paged");
  if (begin < 0 || n < 0 || begin + n > n_past_)
    return invalid_argument("rotate_keys: [" + std::to_string(begin) + ", " + std::to_string(begin + n) +
                            ") leaves the " + std::to_string(n_past_) + " slots in use");
  const int64_t bs = kv_->shape().block_size;
  for (int64_t s = begin; s < begin + n;) {  // one run per block
    const int64_t run = std::min<int64_t>(begin + n - s, bs - s % bs);
    model::rotate_keys(m_, *kv_, table_[static_cast<size_t>(s / bs)], s % bs, run, delta, &coeffs_);
    s += run;
  }
  return Status::ok();
}

Status Session::run(std::span<const int32_t> tokens, OutputMode mode, std::vector<float>* logits,
                    std::vector<float>* hidden) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) return invalid_argument("eval: no tokens");
  if (n_past_ + n > n_ctx_)
    return out_of_range("context overflow: " + std::to_string(n_past_) + " cached + " + std::to_string(n) +
                        " new tokens exceed the context size of " + std::to_string(n_ctx_) + " tokens");
  batch_.tokens.assign(tokens.begin(), tokens.end());
  if (paged_) {
    // Take blocks for the new slots (capacity was checked above: the free list holds them).
    const int64_t bs = kv_->shape().block_size;
    const int64_t need = (n_past_ + n + bs - 1) / bs;
    if (need - n_table_blocks() > static_cast<int64_t>(free_.size()))
      return out_of_range("context overflow: no free KV block for " + std::to_string(n) + " new tokens");
    while (n_table_blocks() < need) {
      table_.push_back(free_.back());
      free_.pop_back();
    }
    batch_.seqs.assign(1, BatchSeq{std::span<const int32_t>(table_), n_past_, 0, n, pos_offset_, mode});
    if (select_.span > 0) batch_.seqs[0].select = &select_;
    const int64_t unit = observe_unit_ > 0 ? observe_unit_ : bs;
    if (observe_rows_ > 0 && observe_mass_ != nullptr &&
        static_cast<int64_t>(observe_mass_->size()) >= (need * bs + unit - 1) / unit) {
      batch_.seqs[0].observe_rows = observe_rows_;
      batch_.seqs[0].block_mass = observe_mass_->data();
      batch_.seqs[0].mass_unit = unit;
    }
  } else {
    batch_.seqs.assign(1, BatchSeq{std::span<const int32_t>(kBlockTable), n_past_, 0, n, pos_offset_, mode});
  }
  CW_RETURN_IF_ERROR(fwd_.run(batch_, *kv_, logits, hidden));
  n_past_ += n;
  return Status::ok();
}

Status Session::eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>* logits) {
  return run(tokens, all_logits ? OutputMode::kAll : OutputMode::kLast, logits, nullptr);
}

Status Session::fill(std::span<const int32_t> tokens) { return run(tokens, OutputMode::kNone, nullptr, nullptr); }

Status Session::eval_hidden(std::span<const int32_t> tokens, std::vector<float>* hidden) {
  return run(tokens, OutputMode::kAll, nullptr, hidden);
}

}  // namespace cw::model
