// The observation window of KV compression policies (BatchSeq::observe_rows, kv::PolicyState::observe_rows /
// probe_rows): the softmax weights of a sequence's last rows over their whole causal span, summed over query
// heads and layers, per slot or per block (BatchSeq::mass_unit). Runs once per layer for the observed rows
// only (the prompt's last forward, a retaining state's probe rows), on the
// caller's thread; each key row is widened to fp32 once for all observed rows and heads of its KV head.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/ops_ref.h"
#include "model/forward.h"
#include "model/model.h"

namespace cw::model {

void Forward::observe_attention(const Batch& batch, const KvCache& kv, int64_t layer) {
  const HParams& hp = m_.hparams();
  const int64_t D = hp.head_dim, kv_dim = hp.n_head_kv * D, q_dim = hp.n_head * D;
  const int64_t bs = kv.shape().block_size, group = hp.n_head / hp.n_head_kv;
  const bool f16 = kv.shape().type == KvType::kF16;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  for (const BatchSeq& s : batch.seqs) {
    if (s.observe_rows <= 0 || s.block_mass == nullptr) continue;
    const int64_t rows = std::min(s.observe_rows, s.count);
    const int64_t t0 = s.first + s.count - rows;
    const int64_t n_kv = s.n_past + s.count;  // the last row's span; row t sees [0, s.n_past + (t - s.first) + 1)
    const int64_t unit = s.mass_unit > 0 ? s.mass_unit : bs;
    // Per KV head: its keys widened to fp32 once, transposed ([D][n_kv]), so that the scores of one query
    // row are a sum of D scaled key rows — contiguous, vectorizable — rather than n_kv short dot products.
    observe_key_.resize(static_cast<size_t>(D * n_kv));
    observe_scores_.resize(static_cast<size_t>(n_kv));
    for (int64_t g = 0; g < hp.n_head_kv; ++g) {
      for (int64_t j = 0; j < n_kv; ++j) {
        const int32_t block = s.block_table[static_cast<size_t>(j / bs)];
        const int64_t at = (j % bs) * kv_dim + g * D;
        if (f16) {
          const auto* k = static_cast<const uint16_t*>(kv.k_block(layer, block)) + at;
          for (int64_t d = 0; d < D; ++d) observe_key_[static_cast<size_t>(d * n_kv + j)] = kernels::fp16_to_fp32(k[d]);
        } else {
          const auto* k = static_cast<const float*>(kv.k_block(layer, block)) + at;
          for (int64_t d = 0; d < D; ++d) observe_key_[static_cast<size_t>(d * n_kv + j)] = k[d];
        }
      }
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t t = t0 + r;
        const int64_t span = s.n_past + (t - s.first) + 1;  // causal
        for (int64_t h = 0; h < group; ++h) {
          const float* q = &buf_.q[static_cast<size_t>(t * q_dim + (g * group + h) * D)];
          float* p = observe_scores_.data();
          std::fill_n(p, span, 0.0f);
          for (int64_t d = 0; d < D; ++d) {
            const float qd = q[d] * scale;
            const float* kd = &observe_key_[static_cast<size_t>(d * n_kv)];
            for (int64_t j = 0; j < span; ++j) p[j] += qd * kd[j];
          }
          kernels::softmax_ref(p, span);
          for (int64_t j = 0; j < span; ++j) s.block_mass[j / unit] += p[j];
        }
      }
    }
  }
}

}  // namespace cw::model
