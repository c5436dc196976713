// The forward pass of a llama-family decoder over a batch of rows from one or more sequences:
//   x = embed(tokens)
//   per layer: x += Wo · attn(rope(Wq·norm(x)), rope(Wk·norm(x)), Wv·norm(x))
//              x += Wd · (silu(Wg·h) * Wu·h),  h = norm(x)
//   logits = Wout · norm(x)   (only for the rows a sequence asks for)
// Matmuls run over all rows at once on the thread pool with the ISA's kernels (kernels/cpu/matmul.h);
// attention is per row over that row's sequence's KV blocks, split across threads by (row, head).
// Shapes are written outermost-first.
#include "model/forward.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops_ref.h"
#include "model/model.h"

namespace cw::model {
namespace {

// `covered` is caller-owned scratch (no allocation per decode step once it has grown).
Status validate(const Batch& batch, const KvCache& kv, const HParams& hp, std::vector<uint8_t>& covered) {
  const int64_t n = static_cast<int64_t>(batch.tokens.size());
  if (n == 0 || batch.seqs.empty()) return invalid_argument("forward: empty batch");
  if (kv.shape().n_layer != hp.n_layer || kv.shape().kv_dim != hp.n_head_kv * hp.head_dim)
    return invalid_argument("forward: the KV cache was made for a different model shape");
  for (int32_t t : batch.tokens)
    if (t < 0 || t >= hp.n_vocab)
      return invalid_argument("token id " + std::to_string(t) + " is out of range [0, " + std::to_string(hp.n_vocab) + ")");
  covered.assign(static_cast<size_t>(n), 0);
  const int64_t bs = kv.shape().block_size;
  for (const BatchSeq& s : batch.seqs) {
    if (s.count < 1 || s.first < 0 || s.first + s.count > n || s.n_past < 0)
      return invalid_argument("forward: bad row range of a sequence");
    for (int64_t r = s.first; r < s.first + s.count; ++r) {
      if (covered[static_cast<size_t>(r)]) return invalid_argument("forward: two sequences claim the same row");
      covered[static_cast<size_t>(r)] = 1;
    }
    const int64_t need_blocks = (s.n_past + s.count + bs - 1) / bs;
    if (static_cast<int64_t>(s.block_table.size()) < need_blocks)
      return invalid_argument("forward: block table too short for " + std::to_string(s.n_past + s.count) + " slots");
    for (int64_t b = 0; b < need_blocks; ++b) {
      const int32_t id = s.block_table[static_cast<size_t>(b)];
      if (id < 0 || id >= kv.shape().n_blocks)
        return invalid_argument("forward: block id " + std::to_string(id) + " is outside the KV cache");
    }
  }
  if (std::find(covered.begin(), covered.end(), 0) != covered.end())
    return invalid_argument("forward: a row belongs to no sequence");
  return Status::ok();
}

}  // namespace

Forward::Forward(const Model& model, int n_threads) : m_(model), pool_(n_threads) { CW_CHECK(n_threads >= 1); }
Forward::~Forward() = default;

void Forward::ensure_buffers(int64_t n, int64_t max_kv) {
  const HParams& hp = m_.hparams();
  if (n > buf_tokens_) {
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
    buf_.rope.resize(sz(hp.n_rot));
    buf_tokens_ = n;
  }
  if (max_kv > buf_kv_) {
    // One attention scratch per thread, sized for the longest sequence of the batch.
    buf_.attn_scratch.resize(static_cast<size_t>(pool_.size() * kernels::attention_scratch_floats(max_kv, hp.head_dim)));
    buf_kv_ = max_kv;
  }
}

// The multi-row attention's work units, the same for every layer: tiles of consecutive rows of one
// sequence, most expensive (longest causal span) first. With an fp16 cache a tile holds up to
// kAttentionMaxGroup / group rows (kernels::attention_f16_rows shares each K/V row among them); with fp32,
// one row.
void Forward::plan_attention_tiles(const Batch& batch, bool f16) {
  const HParams& hp = m_.hparams();
  const int64_t tile = f16 ? std::max<int64_t>(1, kernels::kAttentionMaxGroup / (hp.n_head / hp.n_head_kv)) : 1;
  tiles_.clear();
  for (const BatchSeq& s : batch.seqs)
    for (int64_t t = s.first + s.count; t > s.first; t -= tile) {
      const int64_t first = std::max(s.first, t - tile);
      tiles_.push_back({first, t - first});
    }
  const auto cost = [&](const std::pair<int64_t, int64_t>& u) {
    const BatchSeq& s = batch.seqs[static_cast<size_t>(row_seq_[static_cast<size_t>(u.first)])];
    return s.n_past + (u.first - s.first) + u.second;
  };
  std::sort(tiles_.begin(), tiles_.end(), [&](const auto& a, const auto& b) { return cost(a) > cost(b); });
}

void Forward::gather_block_pointers(const Batch& batch, KvCache& kv, int64_t layer) {
  const int64_t bs = kv.shape().block_size;
  k_ptrs_.clear();
  v_ptrs_.clear();
  seq_ptr_off_.clear();
  for (const BatchSeq& s : batch.seqs) {
    seq_ptr_off_.push_back(static_cast<int64_t>(k_ptrs_.size()));
    const int64_t n_blocks = (s.n_past + s.count + bs - 1) / bs;
    for (int64_t b = 0; b < n_blocks; ++b) {
      k_ptrs_.push_back(kv.k_block(layer, s.block_table[static_cast<size_t>(b)]));
      v_ptrs_.push_back(kv.v_block(layer, s.block_table[static_cast<size_t>(b)]));
    }
  }
}

// Row r of sequence s (i = r - s.first) attends to slots [0, s.n_past + i].
void Forward::attention(const Batch& batch, KvCache& kv, int64_t layer) {
  const HParams& hp = m_.hparams();
  const int64_t kv_dim = hp.n_head_kv * hp.head_dim, q_dim = hp.n_head * hp.head_dim;
  const int64_t bs = kv.shape().block_size;
  const kernels::AttentionShape shape{hp.n_head, hp.n_head_kv, hp.head_dim, kv_dim,
                                      1.0f / std::sqrt(static_cast<float>(hp.head_dim))};
  gather_block_pointers(batch, kv, layer);
  const int64_t n = static_cast<int64_t>(batch.tokens.size());
  const int64_t scratch_floats = kernels::attention_scratch_floats(buf_kv_, hp.head_dim);
  const bool f16 = kv.shape().type == KvType::kF16;
  // Heads [h0, h1) of row t.
  auto run_heads = [&](int64_t t, int64_t h0, int64_t h1, float* scratch) {
    const int64_t si = row_seq_[static_cast<size_t>(t)];
    const BatchSeq& s = batch.seqs[static_cast<size_t>(si)];
    const int64_t n_kv = s.n_past + (t - s.first) + 1;
    const size_t off = static_cast<size_t>(seq_ptr_off_[static_cast<size_t>(si)]);
    const kernels::KvBlocks blocks{&k_ptrs_[off], &v_ptrs_[off], bs};
    const float* q = &buf_.q[static_cast<size_t>(t * q_dim)];
    float* out = &buf_.attn[static_cast<size_t>(t * q_dim)];
    if (f16)
      kernels::attention_f16(shape, q, blocks, n_kv, out, scratch, h0, h1);
    else
      kernels::attention_f32(shape, q, blocks, n_kv, out, scratch, h0, h1);
  };
  if (n == 1) {
    // Decode: the heads split evenly across threads.
    pool_.parallel_for(hp.n_head, [&](int64_t h0, int64_t h1, int thread) {
      if (h0 < h1) run_heads(0, h0, h1, buf_.attn_scratch.data() + thread * scratch_floats);
    });
    return;
  }
  // Several rows: causal rows differ in cost (n_kv grows along a prompt), so threads take work units — a tile
  // of rows (plan_attention_tiles) on one KV head — from a shared counter, most expensive first, instead of
  // a static split that leaves one thread with all the long rows.
  const int64_t group = hp.n_head / hp.n_head_kv;
  const int64_t n_units = static_cast<int64_t>(tiles_.size()) * hp.n_head_kv;
  std::atomic<int64_t> next{0};
  pool_.parallel_for(pool_.size(), [&](int64_t, int64_t, int thread) {
    float* scratch = buf_.attn_scratch.data() + thread * scratch_floats;
    for (int64_t u; (u = next.fetch_add(1, std::memory_order_relaxed)) < n_units;) {
      const auto [t, rows] = tiles_[static_cast<size_t>(u / hp.n_head_kv)];
      const int64_t g = u % hp.n_head_kv;
      if (!f16) {
        run_heads(t, g * group, (g + 1) * group, scratch);
        continue;
      }
      const int64_t si = row_seq_[static_cast<size_t>(t)];
      const BatchSeq& s = batch.seqs[static_cast<size_t>(si)];
      const size_t off = static_cast<size_t>(seq_ptr_off_[static_cast<size_t>(si)]);
      const kernels::KvBlocks blocks{&k_ptrs_[off], &v_ptrs_[off], bs};
      kernels::attention_f16_rows(shape, &buf_.q[static_cast<size_t>(t * q_dim)], rows, blocks,
                                  s.n_past + (t - s.first) + 1, g, &buf_.attn[static_cast<size_t>(t * q_dim)],
                                  scratch);
    }
  });
}

template <typename Fn>
void Forward::for_rows(int64_t n, Fn&& fn) {
  if (n < 4) {
    for (int64_t t = 0; t < n; ++t) fn(t);
    return;
  }
  pool_.parallel_for(n, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) fn(t);
  });
}

Status Forward::run(const Batch& batch, KvCache& kv, std::vector<float>* logits, std::vector<float>* hidden) {
  const HParams& hp = m_.hparams();
  CW_RETURN_IF_ERROR(validate(batch, kv, hp, row_covered_));
  const int64_t n = static_cast<int64_t>(batch.tokens.size());
  int64_t max_kv = 0;
  row_seq_.assign(static_cast<size_t>(n), 0);
  for (size_t si = 0; si < batch.seqs.size(); ++si) {
    const BatchSeq& s = batch.seqs[si];
    max_kv = std::max(max_kv, s.n_past + s.count);
    std::fill_n(row_seq_.begin() + s.first, s.count, static_cast<int64_t>(si));
  }
  ensure_buffers(n, max_kv);
  selecting_ = std::any_of(batch.seqs.begin(), batch.seqs.end(), [](const BatchSeq& s) { return s.select != nullptr; });
  if (selecting_) kv.enable_key_summaries();
  // Once a cache keeps key summaries, every row widens them (another sequence may select over its blocks later).
  summarizing_ = kv.has_key_summaries();
  if (summarizing_) buf_.k_raw.resize(static_cast<size_t>(n * hp.n_head_kv * hp.head_dim));
  const int64_t E = hp.n_embd, D = hp.head_dim, H = hp.n_head, HKV = hp.n_head_kv;
  const int64_t q_dim = H * D, kv_dim = HKV * D, bs = kv.shape().block_size;
  const bool f16 = kv.shape().type == KvType::kF16;
  const float* freq_factors = m_.rope_freq_factors().empty() ? nullptr : m_.rope_freq_factors().data();
  float *x = buf_.x.data(), *h = buf_.h.data(), *q = buf_.q.data(), *k = buf_.k.data(), *v = buf_.v.data();
  float *proj = buf_.proj.data(), *gate = buf_.gate.data(), *up = buf_.up.data(), *rope = buf_.rope.data();
  const auto bias_of = [](const std::vector<float>& b) { return b.empty() ? nullptr : b.data(); };
  // Weights that read the same input run as one pool dispatch (kernels::matmul_group), with the residual
  // add and SwiGLU fused into the pass over their output rows.
  const auto part = [](const WeightRef& w, float* y, const float* bias = nullptr, float* residual = nullptr) {
    kernels::MatmulPart p;
    p.w = w.data;
    p.w_type = w.type;
    p.n_out = w.n_out;
    p.y = y;
    p.bias = bias;
    p.residual = residual;
    return p;
  };
  const auto group = [&](std::initializer_list<kernels::MatmulPart> parts, int64_t n_in, const float* in,
                         kernels::MatmulEpilogue epilogue = kernels::MatmulEpilogue::kNone) {
    kernels::matmul_group(parts.begin(), static_cast<int>(parts.size()), n_in, in, n, pool_, mm_scratch_,
                          batch_invariant_, epilogue);
  };

  for_rows(n, [&](int64_t t) {
    kernels::get_row_ref(m_.tok_embd().data, m_.tok_embd().type, E, batch.tokens[static_cast<size_t>(t)], x + t * E);
  });
  // Rope angles depend only on a row's position: once per row for all heads and layers.
  for_rows(n, [&](int64_t t) {
    const BatchSeq& s = batch.seqs[static_cast<size_t>(row_seq_[static_cast<size_t>(t)])];
    const double pos = s.pos_offset + static_cast<double>(s.n_past + (t - s.first));
    kernels::rope_angles(pos, hp.n_rot, hp.rope_freq_base, hp.rope_freq_scale, freq_factors, rope + t * hp.n_rot);
  });

  if (n > 1 && !selecting_) plan_attention_tiles(batch, f16);

  for (int64_t l = 0; l < hp.n_layer; ++l) {
    const LayerWeights& L = m_.layers()[static_cast<size_t>(l)];
    for_rows(n, [&](int64_t t) { kernels::rms_norm_ref(x + t * E, L.attn_norm.data(), h + t * E, E, hp.rms_eps); });
    group({part(L.wq, q, bias_of(L.bq)), part(L.wk, k, bias_of(L.bk)), part(L.wv, v, bias_of(L.bv))}, E, h);
    for_rows(n, [&](int64_t t) {
      const BatchSeq& s = batch.seqs[static_cast<size_t>(row_seq_[static_cast<size_t>(t)])];
      const int64_t slot = s.n_past + (t - s.first);
      kernels::rope_apply(q + t * q_dim, H, D, hp.n_rot, hp.rope_style, rope + t * hp.n_rot);
      if (summarizing_) std::copy_n(k + t * kv_dim, kv_dim, buf_.k_raw.data() + t * kv_dim);
      kernels::rope_apply(k + t * kv_dim, HKV, D, hp.n_rot, hp.rope_style, rope + t * hp.n_rot);
      const int32_t block = s.block_table[static_cast<size_t>(slot / bs)];
      const int64_t row = (slot % bs) * kv_dim;
      if (f16) {
        uint16_t* kd = static_cast<uint16_t*>(kv.k_block(l, block)) + row;
        uint16_t* vd = static_cast<uint16_t*>(kv.v_block(l, block)) + row;
        for (int64_t j = 0; j < kv_dim; ++j) {
          kd[j] = kernels::fp32_to_fp16(k[t * kv_dim + j]);
          vd[j] = kernels::fp32_to_fp16(v[t * kv_dim + j]);
        }
      } else {
        std::copy_n(k + t * kv_dim, kv_dim, static_cast<float*>(kv.k_block(l, block)) + row);
        std::copy_n(v + t * kv_dim, kv_dim, static_cast<float*>(kv.v_block(l, block)) + row);
      }
    });
    if (summarizing_) update_key_summaries(batch, kv, l);
    if (selecting_) {
      attention_selective(batch, kv, l);
    } else {
      attention(batch, kv, l);
    }
    observe_attention(batch, kv, l);
    group({part(L.wo, proj, nullptr, x)}, q_dim, buf_.attn.data());  // x += Wo attn

    for_rows(n, [&](int64_t t) { kernels::rms_norm_ref(x + t * E, L.ffn_norm.data(), h + t * E, E, hp.rms_eps); });
    group({part(L.ffn_gate, gate), part(L.ffn_up, up)}, E, h, kernels::MatmulEpilogue::kSwiGlu);
    group({part(L.ffn_down, proj, nullptr, x)}, hp.n_ff, gate);  // x += Wd (silu(gate) * up)
  }

  // Final norm of the requested rows, gathered in sequence order into proj: [n_out, n_embd].
  int64_t n_out = 0;
  for (const BatchSeq& s : batch.seqs) {
    if (s.output == OutputMode::kNone) continue;
    const int64_t first = s.output == OutputMode::kAll ? s.first : s.first + s.count - 1;
    for (int64_t t = first; t < s.first + s.count; ++t, ++n_out)
      kernels::rms_norm_ref(x + t * E, m_.output_norm().data(), proj + n_out * E, E, hp.rms_eps);
  }
  if (hidden != nullptr) {
    hidden->assign(proj, proj + n_out * E);
    CW_RETURN_IF_ERROR(non_finite_error(batch, hidden->data(), n_out, E, "hidden states"));
  }
  if (logits != nullptr) {
    logits->resize(static_cast<size_t>(n_out * hp.n_vocab));
    if (n_out > 0)
      kernels::matmul(m_.output().data, m_.output().type, E, hp.n_vocab, proj, n_out, logits->data(), nullptr, pool_,
                      mm_scratch_, batch_invariant_);
    CW_RETURN_IF_ERROR(non_finite_error(batch, logits->data(), n_out, hp.n_vocab, "logits"));
  }
  return Status::ok();
}

Status Forward::non_finite_error(const Batch& batch, const float* rows, int64_t n_rows, int64_t width,
                                 const char* what) {
  // NaN and Inf are the floats whose exponent bits are all ones: an OR over integer tests, one pass per
  // row with no branch per element (vectorizes).
  int64_t bad = -1;
  for (int64_t r = 0; r < n_rows && bad < 0; ++r) {
    const float* x = rows + r * width;
    uint32_t any = 0;
    for (int64_t j = 0; j < width; ++j) {
      uint32_t b;
      std::memcpy(&b, x + j, sizeof b);
      any |= static_cast<uint32_t>((b & 0x7f800000u) == 0x7f800000u);
    }
    if (any != 0) bad = r;
  }
  if (bad < 0) return Status::ok();
  // The token position of output row `bad` (rows come per sequence in order: kLast one, kAll count).
  int64_t position = 0, row = 0;
  for (const BatchSeq& s : batch.seqs) {
    if (s.output == OutputMode::kNone) continue;
    const int64_t n = s.output == OutputMode::kAll ? s.count : 1;
    if (bad < row + n) {
      position = s.output == OutputMode::kAll ? s.n_past + (bad - row) : s.n_past + s.count - 1;
      break;
    }
    row += n;
  }
  if (!weights_scanned_) {
    bad_tensor_ = find_non_finite_tensor(m_);
    weights_scanned_ = true;
  }
  return non_finite_output_error(bad_tensor_, what, position);
}

}  // namespace cw::model
