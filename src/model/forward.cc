// The forward pass of a llama-family decoder over one sequence:
//   x = embed(tokens)
//   per layer: x += Wo · attn(rope(Wq·norm(x)), rope(Wk·norm(x)), Wv·norm(x))
//              x += Wd · (silu(Wg·h) * Wu·h),  h = norm(x)
//   logits = Wout · norm(x)
// Matmuls run on the thread pool with the ISA's kernels (kernels/cpu/matmul.h); attention is split across
// threads by (token, head). Shapes are written outermost-first.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/ops_ref.h"
#include "model/model.h"

namespace cw::model {

Session::Session(const Model& model, int64_t n_ctx, KvType kv_type, int n_threads)
    : m_(model), n_ctx_(n_ctx), kv_type_(kv_type), pool_(n_threads) {
  CW_CHECK(n_ctx > 0 && n_ctx <= (int64_t{1} << 24));
  const HParams& hp = m_.hparams();
  const size_t n = static_cast<size_t>(hp.n_layer * n_ctx * hp.n_head_kv * hp.head_dim);
  if (kv_type_ == KvType::kF16) {
    k16_.assign(n, 0);
    v16_.assign(n, 0);
  } else {
    k32_.assign(n, 0.0f);
    v32_.assign(n, 0.0f);
  }
}

uint64_t Session::kv_bytes(const HParams& hp, int64_t n_ctx, KvType kv_type) {
  return 2ull * static_cast<uint64_t>(hp.n_layer * n_ctx * hp.n_head_kv * hp.head_dim) * (kv_type == KvType::kF16 ? 2 : 4);
}

Result<std::unique_ptr<Session>> Session::create(const Model& model, int64_t n_ctx, KvType kv_type, int n_threads) {
  if (n_ctx < 1 || n_ctx > (int64_t{1} << 24))
    return out_of_range("context size " + std::to_string(n_ctx) + " is outside [1, 16777216]");
  if (n_threads < 1 || n_threads > 1024) return out_of_range("thread count must be in [1, 1024]");
  const uint64_t need = kv_bytes(model.hparams(), n_ctx, kv_type);
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  const uint64_t phys = pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
  if (phys > 0 && need > phys / 10 * 9)
    return out_of_range("a KV cache of " + std::to_string(n_ctx) + " positions needs " + std::to_string(need >> 20) +
                      " MiB, more than this machine's memory (" + std::to_string(phys >> 20) + " MiB); lower --ctx");
  return std::make_unique<Session>(model, n_ctx, kv_type, n_threads);
}

void Session::ensure_buffers(int64_t n) {
  if (n <= buf_tokens_) return;
  const HParams& hp = m_.hparams();
  const auto sz = [n](int64_t per_token) { return static_cast<size_t>(n * per_token); };
  buf_.x.resize(sz(hp.n_embd));
  buf_.h.resize(sz(hp.n_embd));
  buf_.proj.resize(sz(hp.n_embd));
  buf_.q.resize(sz(hp.n_head * hp.head_dim));
  buf_.attn.resize(sz(hp.n_head * hp.head_dim));
  buf_.k.resize(sz(hp.n_head_kv * hp.head_dim));
  buf_.v.resize(sz(hp.n_head_kv * hp.head_dim));
  buf_.gate.resize(sz(hp.n_ff));
  buf_.up.resize(sz(hp.n_ff));
  // One attention scratch per thread, sized for the whole context.
  buf_.attn_scratch.resize(static_cast<size_t>(pool_.size() * kernels::attention_scratch_floats(n_ctx_, hp.head_dim)));
  buf_tokens_ = n;
}

// Token t of this batch attends to cache positions [0, n_past + t]. Work items are (token, head) pairs.
void Session::attention(int64_t layer, int64_t n) {
  const HParams& hp = m_.hparams();
  const int64_t kv_dim = hp.n_head_kv * hp.head_dim, q_dim = hp.n_head * hp.head_dim;
  const kernels::AttentionShape shape{hp.n_head, hp.n_head_kv, hp.head_dim, kv_dim,
                                      1.0f / std::sqrt(static_cast<float>(hp.head_dim))};
  const size_t layer_off = static_cast<size_t>(layer * n_ctx_ * kv_dim);
  const int64_t scratch_floats = kernels::attention_scratch_floats(n_ctx_, hp.head_dim);
  pool_.parallel_for(n * hp.n_head, [&](int64_t b, int64_t e, int thread) {
    float* scratch = buf_.attn_scratch.data() + thread * scratch_floats;
    for (int64_t item = b; item < e;) {
      const int64_t t = item / hp.n_head, h0 = item % hp.n_head;
      const int64_t h1 = std::min(hp.n_head, h0 + (e - item));
      const int64_t n_kv = n_past_ + t + 1;
      const float* q = &buf_.q[static_cast<size_t>(t * q_dim)];
      float* out = &buf_.attn[static_cast<size_t>(t * q_dim)];
      if (kv_type_ == KvType::kF16)
        kernels::attention_f16(shape, q, &k16_[layer_off], &v16_[layer_off], n_kv, out, scratch, h0, h1);
      else
        kernels::attention_f32(shape, q, &k32_[layer_off], &v32_[layer_off], n_kv, out, scratch, h0, h1);
      item += h1 - h0;
    }
  });
}

Status Session::eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>* logits) {
  const HParams& hp = m_.hparams();
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) return invalid_argument("eval: no tokens");
  for (int32_t t : tokens)
    if (t < 0 || t >= hp.n_vocab)
      return invalid_argument("token id " + std::to_string(t) + " is out of range [0, " + std::to_string(hp.n_vocab) + ")");
  if (n_past_ + n > n_ctx_)
    return out_of_range("context overflow: " + std::to_string(n_past_) + " cached + " + std::to_string(n) +
                        " new tokens exceed the context of " + std::to_string(n_ctx_) + " (raise --ctx)");
  ensure_buffers(n);
  const int64_t E = hp.n_embd, D = hp.head_dim, H = hp.n_head, HKV = hp.n_head_kv;
  const int64_t q_dim = H * D, kv_dim = HKV * D;
  const float* freq_factors = m_.rope_freq_factors().empty() ? nullptr : m_.rope_freq_factors().data();
  float *x = buf_.x.data(), *h = buf_.h.data(), *q = buf_.q.data(), *k = buf_.k.data(), *v = buf_.v.data();
  float *proj = buf_.proj.data(), *gate = buf_.gate.data(), *up = buf_.up.data();
  auto mm = [&](const WeightRef& w, const float* in, float* out, const std::vector<float>& bias, int64_t rows) {
    kernels::matmul(w.data, w.type, w.n_in, w.n_out, in, rows, out, bias.empty() ? nullptr : bias.data(), pool_,
                    mm_scratch_);
  };
  static const std::vector<float> kNoBias;

  for (int64_t t = 0; t < n; ++t)
    kernels::get_row_ref(m_.tok_embd().data, m_.tok_embd().type, E, tokens[static_cast<size_t>(t)], x + t * E);

  for (int64_t l = 0; l < hp.n_layer; ++l) {
    const LayerWeights& L = m_.layers()[static_cast<size_t>(l)];
    for (int64_t t = 0; t < n; ++t) kernels::rms_norm_ref(x + t * E, L.attn_norm.data(), h + t * E, E, hp.rms_eps);
    mm(L.wq, h, q, L.bq, n);
    mm(L.wk, h, k, L.bk, n);
    mm(L.wv, h, v, L.bv, n);
    const size_t layer_off = static_cast<size_t>(l * n_ctx_ * kv_dim);
    for (int64_t t = 0; t < n; ++t) {
      const double pos = pos_offset_ + static_cast<double>(n_past_ + t);
      kernels::rope_ref(q + t * q_dim, H, D, hp.n_rot, pos, hp.rope_freq_base, hp.rope_freq_scale, hp.rope_style, freq_factors);
      kernels::rope_ref(k + t * kv_dim, HKV, D, hp.n_rot, pos, hp.rope_freq_base, hp.rope_freq_scale, hp.rope_style,
                        freq_factors);
      const size_t at = layer_off + static_cast<size_t>((n_past_ + t) * kv_dim);
      if (kv_type_ == KvType::kF16) {
        for (int64_t i = 0; i < kv_dim; ++i) {
          k16_[at + static_cast<size_t>(i)] = kernels::fp32_to_fp16(k[t * kv_dim + i]);
          v16_[at + static_cast<size_t>(i)] = kernels::fp32_to_fp16(v[t * kv_dim + i]);
        }
      } else {
        std::copy_n(k + t * kv_dim, kv_dim, &k32_[at]);
        std::copy_n(v + t * kv_dim, kv_dim, &v32_[at]);
      }
    }
    attention(l, n);
    mm(L.wo, buf_.attn.data(), proj, kNoBias, n);
    for (int64_t i = 0; i < n * E; ++i) x[i] += proj[i];

    for (int64_t t = 0; t < n; ++t) kernels::rms_norm_ref(x + t * E, L.ffn_norm.data(), h + t * E, E, hp.rms_eps);
    mm(L.ffn_gate, h, gate, kNoBias, n);
    mm(L.ffn_up, h, up, kNoBias, n);
    kernels::swiglu_ref(gate, up, gate, n * hp.n_ff);
    mm(L.ffn_down, gate, proj, kNoBias, n);
    for (int64_t i = 0; i < n * E; ++i) x[i] += proj[i];
  }

  const int64_t first = all_logits ? 0 : n - 1;
  const int64_t n_out = n - first;
  for (int64_t t = first; t < n; ++t) kernels::rms_norm_ref(x + t * E, m_.output_norm().data(), h + t * E, E, hp.rms_eps);
  logits->resize(static_cast<size_t>(n_out * hp.n_vocab));
  mm(m_.output(), h + first * E, logits->data(), kNoBias, n_out);
  n_past_ += n;
  return Status::ok();
}

}  // namespace cw::model
