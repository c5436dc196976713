// The reference forward pass of a llama-family decoder over one sequence:
//   x = embed(tokens)
//   per layer: x += Wo · attn(rope(Wq·norm(x)), rope(Wk·norm(x)), Wv·norm(x));  x += Wd · (silu(Wg·h) * Wu·h), h = norm(x)
//   logits = Wout · norm(x)
// Shapes are written outermost-first.
#include <algorithm>
#include <cmath>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/ops_ref.h"
#include "model/model.h"

namespace cw::model {

using kernels::matmul_ref;

namespace {
float round_f16(float x) { return kernels::fp16_to_fp32(kernels::fp32_to_fp16(x)); }
void round_f16(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = round_f16(x[i]);
}
}  // namespace

Session::Session(const Model& model, int64_t n_ctx, KvType kv_type) : m_(model), n_ctx_(n_ctx), kv_type_(kv_type) {
  CW_CHECK(n_ctx > 0 && n_ctx <= (int64_t{1} << 24));
  const HParams& hp = m_.hparams();
  const size_t n = static_cast<size_t>(hp.n_layer * n_ctx * hp.n_head_kv * hp.head_dim);
  k_cache_.assign(n, 0.0f);
  v_cache_.assign(n, 0.0f);
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

  const int64_t E = hp.n_embd, D = hp.head_dim, H = hp.n_head, HKV = hp.n_head_kv;
  const int64_t q_dim = H * D, kv_dim = HKV * D, group = H / HKV;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const bool f16 = kv_type_ == KvType::kF16;
  const float* freq_factors = m_.rope_freq_factors().empty() ? nullptr : m_.rope_freq_factors().data();

  std::vector<float> x(static_cast<size_t>(n * E)), h(x.size());
  std::vector<float> q(static_cast<size_t>(n * q_dim)), k(static_cast<size_t>(n * kv_dim)), v(k.size());
  std::vector<float> attn(q.size()), proj(x.size());
  std::vector<float> gate(static_cast<size_t>(n * hp.n_ff)), up(gate.size());
  std::vector<float> scores(static_cast<size_t>(n_past_ + n));

  for (int64_t t = 0; t < n; ++t)
    kernels::get_row_ref(m_.tok_embd().data, m_.tok_embd().type, E, tokens[static_cast<size_t>(t)], &x[t * E]);

  for (int64_t l = 0; l < hp.n_layer; ++l) {
    const LayerWeights& L = m_.layers()[static_cast<size_t>(l)];
    for (int64_t t = 0; t < n; ++t) kernels::rms_norm_ref(&x[t * E], L.attn_norm.data(), &h[t * E], E, hp.rms_eps);
    matmul_ref(L.wq.data, L.wq.type, E, q_dim, h.data(), n, q.data(), L.bq.empty() ? nullptr : L.bq.data());
    matmul_ref(L.wk.data, L.wk.type, E, kv_dim, h.data(), n, k.data(), L.bk.empty() ? nullptr : L.bk.data());
    matmul_ref(L.wv.data, L.wv.type, E, kv_dim, h.data(), n, v.data(), L.bv.empty() ? nullptr : L.bv.data());
    float* kc = &k_cache_[static_cast<size_t>(l * n_ctx_ * kv_dim)];
    float* vc = &v_cache_[static_cast<size_t>(l * n_ctx_ * kv_dim)];
    for (int64_t t = 0; t < n; ++t) {
      const double pos = pos_offset_ + static_cast<double>(n_past_ + t);
      kernels::rope_ref(&q[t * q_dim], H, D, hp.n_rot, pos, hp.rope_freq_base, hp.rope_freq_scale, hp.rope_style, freq_factors);
      kernels::rope_ref(&k[t * kv_dim], HKV, D, hp.n_rot, pos, hp.rope_freq_base, hp.rope_freq_scale, hp.rope_style,
                        freq_factors);
      std::copy_n(&k[t * kv_dim], kv_dim, kc + (n_past_ + t) * kv_dim);
      std::copy_n(&v[t * kv_dim], kv_dim, vc + (n_past_ + t) * kv_dim);
      if (f16) {
        round_f16(kc + (n_past_ + t) * kv_dim, kv_dim);
        round_f16(vc + (n_past_ + t) * kv_dim, kv_dim);
        round_f16(&q[t * q_dim], q_dim);
      }
    }
    // Causal attention: token t sees cache positions [0, n_past + t].
    for (int64_t t = 0; t < n; ++t) {
      const int64_t n_kv = n_past_ + t + 1;
      for (int64_t hd = 0; hd < H; ++hd) {
        const float* qh = &q[t * q_dim + hd * D];
        const int64_t kvh = hd / group;
        for (int64_t j = 0; j < n_kv; ++j) {
          const float* kj = kc + j * kv_dim + kvh * D;
          float s = 0.0f;
          for (int64_t d = 0; d < D; ++d) s += qh[d] * kj[d];
          scores[static_cast<size_t>(j)] = s * scale;
        }
        kernels::softmax_ref(scores.data(), n_kv);
        float* out = &attn[t * q_dim + hd * D];
        std::fill_n(out, D, 0.0f);
        for (int64_t j = 0; j < n_kv; ++j) {
          const float* vj = vc + j * kv_dim + kvh * D;
          const float p = f16 ? round_f16(scores[static_cast<size_t>(j)]) : scores[static_cast<size_t>(j)];
          for (int64_t d = 0; d < D; ++d) out[d] += p * vj[d];
        }
      }
    }
    matmul_ref(L.wo.data, L.wo.type, q_dim, E, attn.data(), n, proj.data());
    for (size_t i = 0; i < x.size(); ++i) x[i] += proj[i];

    for (int64_t t = 0; t < n; ++t) kernels::rms_norm_ref(&x[t * E], L.ffn_norm.data(), &h[t * E], E, hp.rms_eps);
    matmul_ref(L.ffn_gate.data, L.ffn_gate.type, E, hp.n_ff, h.data(), n, gate.data());
    matmul_ref(L.ffn_up.data, L.ffn_up.type, E, hp.n_ff, h.data(), n, up.data());
    kernels::swiglu_ref(gate.data(), up.data(), gate.data(), n * hp.n_ff);
    matmul_ref(L.ffn_down.data, L.ffn_down.type, hp.n_ff, E, gate.data(), n, proj.data());
    for (size_t i = 0; i < x.size(); ++i) x[i] += proj[i];
  }

  const int64_t first = all_logits ? 0 : n - 1;
  const int64_t n_out = n - first;
  for (int64_t t = first; t < n; ++t) kernels::rms_norm_ref(&x[t * E], m_.output_norm().data(), &h[t * E], E, hp.rms_eps);
  logits->resize(static_cast<size_t>(n_out * hp.n_vocab));
  matmul_ref(m_.output().data, m_.output().type, E, hp.n_vocab, &h[first * E], n_out, logits->data());
  n_past_ += n;
  return Status::ok();
}

}  // namespace cw::model
