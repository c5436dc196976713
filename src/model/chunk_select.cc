// Chunk-selective attention (model::ChunkSelect, forward.h): per row group and KV head, pick the blocks a
// row sees from the key summaries, pack them at consecutive positions, and run the ordinary attention
// kernels over a virtual block table (original blocks where the position is unchanged, rotated key copies
// where a run moved). Kept apart from forward.cc: the plain path does not change.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/ops_ref.h"
#include "model/forward.h"
#include "model/model.h"

namespace cw::model {

void Forward::update_key_summaries(const Batch& batch, KvCache& kv, int64_t layer) {
  const int64_t kv_dim = kv.shape().kv_dim, bs = kv.shape().block_size;
  for (const BatchSeq& s : batch.seqs) {
    for (int64_t i = 0; i < s.count; ++i) {
      const int64_t slot = s.n_past + i;
      const int32_t block = s.block_table[static_cast<size_t>(slot / bs)];
      float* sum = kv.key_summary(layer, block);
      const float* k = buf_.k_raw.data() + (s.first + i) * kv_dim;
      if (slot % bs == 0) {
        std::copy_n(k, kv_dim, sum);
        std::copy_n(k, kv_dim, sum + kv_dim);
        if (layer + 1 == kv.shape().n_layer) kv.set_summary_valid(block, true);
        continue;
      }
      for (int64_t j = 0; j < kv_dim; ++j) {
        sum[j] = std::min(sum[j], k[j]);
        sum[kv_dim + j] = std::max(sum[kv_dim + j], k[j]);
      }
    }
  }
}

void Forward::attention_selective(const Batch& batch, KvCache& kv, int64_t layer) {
  const HParams& hp = m_.hparams();
  const int64_t D = hp.head_dim, kv_dim = hp.n_head_kv * D, q_dim = hp.n_head * D;
  const int64_t bs = kv.shape().block_size, group = hp.n_head / hp.n_head_kv;
  const bool f16 = kv.shape().type == KvType::kF16;
  const int64_t elem = kv.shape().element_bytes();
  const kernels::AttentionShape shape{hp.n_head, hp.n_head_kv, D, kv_dim, 1.0f / std::sqrt(static_cast<float>(D))};
  const float* freq_factors = m_.rope_freq_factors().empty() ? nullptr : m_.rope_freq_factors().data();
  const int64_t f16_tile = std::max<int64_t>(1, kernels::kAttentionMaxGroup / group);

  gather_block_pointers(batch, kv, layer);
  // Work units: row groups (counted back from each sequence's last row) x KV heads, longest first.
  select_units_.clear();
  for (const BatchSeq& s : batch.seqs) {
    const int64_t rows = s.select != nullptr ? std::max<int64_t>(1, s.select->group) : (f16 ? f16_tile : 1);
    for (int64_t end = s.first + s.count; end > s.first; end -= rows) {
      const int64_t first = std::max(s.first, end - rows);
      int64_t cost = s.n_past + (end - s.first);
      if (s.select != nullptr) cost = std::min(cost, s.select->span);
      for (int64_t g = 0; g < hp.n_head_kv; ++g) select_units_.push_back({first, end, g, cost * (end - first)});
    }
  }
  std::sort(select_units_.begin(), select_units_.end(),
            [](const SelectUnit& a, const SelectUnit& b) { return a.cost > b.cost; });
  if (select_scratch_.size() < static_cast<size_t>(pool_.size()))
    select_scratch_.resize(static_cast<size_t>(pool_.size()));
  const int64_t scratch_floats = kernels::attention_scratch_floats(buf_kv_, D);

  // Attention of rows [first, end) of sequence s over a block table whose slot j is visible to row `first`
  // for j < n_kv0 (row first + i: n_kv0 + i), heads of KV head g.
  const auto attend = [&](int64_t first, int64_t end, int64_t g, const kernels::KvBlocks& blocks, int64_t n_kv0,
                          float* scratch) {
    if (f16) {
      for (int64_t t = first; t < end; t += f16_tile) {
        const int64_t rows = std::min(f16_tile, end - t);
        kernels::attention_f16_rows(shape, &buf_.q[static_cast<size_t>(t * q_dim)], rows, blocks, n_kv0 + (t - first),
                                    g, &buf_.attn[static_cast<size_t>(t * q_dim)], scratch);
      }
      return;
    }
    for (int64_t t = first; t < end; ++t)
      kernels::attention_f32(shape, &buf_.q[static_cast<size_t>(t * q_dim)], blocks, n_kv0 + (t - first),
                             &buf_.attn[static_cast<size_t>(t * q_dim)], scratch, g * group, (g + 1) * group);
  };

  const int64_t n_units = static_cast<int64_t>(select_units_.size());
  std::atomic<int64_t> next{0};
  pool_.parallel_for(pool_.size(), [&](int64_t, int64_t, int thread) {
    float* scratch = buf_.attn_scratch.data() + thread * scratch_floats;
    SelectScratch& ss = select_scratch_[static_cast<size_t>(thread)];
    for (int64_t u; (u = next.fetch_add(1, std::memory_order_relaxed)) < n_units;) {
      const SelectUnit unit = select_units_[static_cast<size_t>(u)];
      const int64_t si = row_seq_[static_cast<size_t>(unit.first)];
      const BatchSeq& s = batch.seqs[static_cast<size_t>(si)];
      const size_t off = static_cast<size_t>(seq_ptr_off_[static_cast<size_t>(si)]);
      const int64_t first_slot = s.n_past + (unit.first - s.first);
      const int64_t n_kv_last = s.n_past + (unit.end - s.first);
      const ChunkSelect* cs = s.select;
      if (cs == nullptr || n_kv_last <= cs->span) {
        attend(unit.first, unit.end, unit.kvh, kernels::KvBlocks{&k_ptrs_[off], &v_ptrs_[off], bs}, first_slot + 1,
               scratch);
        continue;
      }
      // The regions: sink blocks [0, n_sink), candidates [n_sink, local0), local blocks [local0, n_blocks).
      const int64_t n_blocks = (n_kv_last + bs - 1) / bs;
      const int64_t n_sink = std::min((cs->sinks + bs - 1) / bs, n_blocks);
      const int64_t local0 = std::clamp((first_slot - cs->local) / bs, n_sink, n_blocks);
      const int64_t local_len = n_kv_last - local0 * bs;
      const int64_t budget = std::max<int64_t>(0, (cs->span - n_sink * bs - local_len) / bs);
      const int64_t n_cand = local0 - n_sink;
      ss.mark.assign(static_cast<size_t>(std::max<int64_t>(n_cand, 0)), 0);
      ss.cs.resize(static_cast<size_t>(hp.n_rot));
      if (n_cand > 0 && budget > 0 && cs->top_k > 0) {
        // Scores: the group's last row's queries, rotated as if a block sat just before the local window.
        const int64_t t_last = unit.end - 1;
        const double p_last = s.pos_offset + static_cast<double>(n_kv_last - 1);
        kernels::rope_angles(static_cast<double>(local_len + bs / 2) - p_last, hp.n_rot, hp.rope_freq_base,
                             hp.rope_freq_scale, freq_factors, ss.cs.data());
        ss.q.resize(static_cast<size_t>(group * D));
        std::copy_n(&buf_.q[static_cast<size_t>(t_last * q_dim + unit.kvh * group * D)], group * D, ss.q.data());
        kernels::rope_apply(ss.q.data(), group, D, hp.n_rot, hp.rope_style, ss.cs.data());
        // The bound sum_j max(q_j lo_j, q_j hi_j) = q+ . hi + q- . lo (q+ = max(q, 0), q- = min(q, 0)): two dot
        // products per block and head, in 8 independent lanes so that they vectorize.
        ss.q.resize(static_cast<size_t>(3 * group * D));
        float* qpos = ss.q.data() + group * D;
        float* qneg = qpos + group * D;
        for (int64_t j = 0; j < group * D; ++j) {
          qpos[j] = std::max(ss.q[static_cast<size_t>(j)], 0.0f);
          qneg[j] = std::min(ss.q[static_cast<size_t>(j)], 0.0f);
        }
        ss.scores.resize(static_cast<size_t>(n_cand));
        for (int64_t c = 0; c < n_cand; ++c) {
          const int32_t block = s.block_table[static_cast<size_t>(n_sink + c)];
          if (!kv.summary_valid(block)) {  // keys from before the cache kept summaries: unknown, so a candidate
            ss.scores[static_cast<size_t>(c)] = std::numeric_limits<float>::infinity();
            continue;
          }
          const float* sum = kv.key_summary(layer, block);
          const float* lo = sum + unit.kvh * D;
          const float* hi = sum + kv_dim + unit.kvh * D;
          float best = -std::numeric_limits<float>::infinity();
          for (int64_t h = 0; h < group; ++h) {
            const float* qp = qpos + h * D;
            const float* qn = qneg + h * D;
            float lane[8] = {};
            int64_t j = 0;
            for (; j + 8 <= D; j += 8)
              for (int k = 0; k < 8; ++k) lane[k] += qp[j + k] * hi[j + k] + qn[j + k] * lo[j + k];
            float acc = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
            for (; j < D; ++j) acc += qp[j] * hi[j] + qn[j] * lo[j];
            best = std::max(best, acc);
          }
          ss.scores[static_cast<size_t>(c)] = best;
        }
        ss.order.resize(static_cast<size_t>(n_cand));
        for (int64_t c = 0; c < n_cand; ++c) ss.order[static_cast<size_t>(c)] = c;
        const int64_t n_top = std::min(n_cand, cs->top_k);
        std::partial_sort(ss.order.begin(), ss.order.begin() + n_top, ss.order.end(), [&](int64_t a, int64_t b) {
          const float sa = ss.scores[static_cast<size_t>(a)], sb = ss.scores[static_cast<size_t>(b)];
          return sa > sb || (sa == sb && a > b);  // ties: the later block
        });
        int64_t used = 0;
        for (int64_t i = 0; i < n_top; ++i) {
          const int64_t c = ss.order[static_cast<size_t>(i)];
          const int64_t lo = std::max<int64_t>(0, c - cs->expand), hi = std::min(n_cand, c + cs->expand + 1);
          int64_t add = 0;
          for (int64_t b = lo; b < hi; ++b) add += ss.mark[static_cast<size_t>(b)] == 0;
          if (used + add > budget) continue;
          for (int64_t b = lo; b < hi; ++b) ss.mark[static_cast<size_t>(b)] = 1;
          used += add;
        }
      }
      // The virtual table: sinks, picked blocks, local blocks, in slot order.
      ss.blocks.clear();
      for (int64_t b = 0; b < n_sink; ++b) ss.blocks.push_back(b);
      for (int64_t c = 0; c < n_cand; ++c)
        if (ss.mark[static_cast<size_t>(c)] != 0) ss.blocks.push_back(n_sink + c);
      const int64_t v_local0 = static_cast<int64_t>(ss.blocks.size());
      for (int64_t b = local0; b < n_blocks; ++b) ss.blocks.push_back(b);
      const int64_t n_vis_blocks = static_cast<int64_t>(ss.blocks.size());
      ss.k.resize(static_cast<size_t>(n_vis_blocks));
      ss.v.resize(static_cast<size_t>(n_vis_blocks));
      const size_t block_bytes = static_cast<size_t>(bs * kv_dim * elem);
      if (ss.keys.size() < static_cast<size_t>(v_local0) * block_bytes) ss.keys.resize(static_cast<size_t>(v_local0) * block_bytes);
      // A block moved closer by delta positions is read through a copy whose keys (this KV head's) are rotated
      // by +delta: kernels::rope_reposition_apply with the move 0 -> delta repeated for every row of the block.
      int64_t coeff_delta = -1;
      const int64_t n_coeff = kernels::rope_reposition_coeff_floats(hp.n_rot);
      for (int64_t i = 0; i < n_vis_blocks; ++i) {
        const int64_t b = ss.blocks[static_cast<size_t>(i)];
        ss.v[static_cast<size_t>(i)] = v_ptrs_[off + static_cast<size_t>(b)];
        // Positions this block moved closer to the query: the gap between it and the local window.
        const int64_t delta = i >= v_local0 ? 0 : ((local0 - v_local0) - (b - i)) * bs;
        if (delta == 0) {
          ss.k[static_cast<size_t>(i)] = k_ptrs_[off + static_cast<size_t>(b)];
          continue;
        }
        if (delta != coeff_delta) {
          ss.cs.resize(static_cast<size_t>(bs * n_coeff));
          kernels::rope_reposition_coeffs(0.0, static_cast<double>(delta), hp.n_rot, hp.rope_freq_base,
                                          hp.rope_freq_scale, freq_factors, ss.cs.data());
          for (int64_t r = 1; r < bs; ++r) std::copy_n(ss.cs.data(), n_coeff, ss.cs.data() + r * n_coeff);
          coeff_delta = delta;
        }
        uint8_t* dst = ss.keys.data() + static_cast<size_t>(i) * block_bytes;
        std::memcpy(dst, k_ptrs_[off + static_cast<size_t>(b)], block_bytes);
        kernels::rope_reposition_apply(dst + unit.kvh * D * elem, f16 ? kernels::KvElem::kF16 : kernels::KvElem::kF32,
                                       bs, kv_dim, 1, D, hp.n_rot, hp.rope_style, ss.cs.data());
        ss.k[static_cast<size_t>(i)] = dst;
      }
      const int64_t n_kv0 = v_local0 * bs + (first_slot - local0 * bs) + 1;
      attend(unit.first, unit.end, unit.kvh, kernels::KvBlocks{ss.k.data(), ss.v.data(), bs}, n_kv0, scratch);
    }
  });
}

}  // namespace cw::model
