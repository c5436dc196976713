#include "kernels/cpu/attention.h"

#include <algorithm>

#include "base/status.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/ops_ref.h"

namespace cw::kernels {
namespace {

// Calls fn(j, row) for positions j in [0, n_kv) in order, row = element pointer of position j (type T).
template <typename T, typename Fn>
inline void for_each_position(const void* const* blocks, int64_t block_size, int64_t n_kv, int64_t stride,
                              int64_t col, Fn&& fn) {
  for (int64_t b = 0, j = 0; j < n_kv; ++b) {
    const T* base = static_cast<const T*>(blocks[b]) + col;
    const int64_t end = std::min(n_kv, j + block_size);
    for (; j < end; ++j, base += stride) fn(j, base);
  }
}

}  // namespace

void attention_f32(const AttentionShape& s, const float* q, const KvBlocks& kv, int64_t n_kv, float* out,
                   float* scratch, int64_t h0, int64_t h1) {
  const int64_t D = s.head_dim, group = s.n_head / s.n_head_kv;
  float* scores = scratch;
  for (int64_t h = h0; h < h1; ++h) {
    const float* qh = q + h * D;
    const int64_t kvh = h / group;
    for_each_position<float>(kv.k, kv.block_size, n_kv, s.kv_stride, kvh * D, [&](int64_t j, const float* kj) {
      float acc = 0.0f;
      for (int64_t d = 0; d < D; ++d) acc += qh[d] * kj[d];
      scores[j] = acc * s.scale;
    });
    softmax_ref(scores, n_kv);
    float* o = out + h * D;
    std::fill_n(o, D, 0.0f);
    for_each_position<float>(kv.v, kv.block_size, n_kv, s.kv_stride, kvh * D, [&](int64_t j, const float* vj) {
      const float p = scores[j];
      for (int64_t d = 0; d < D; ++d) o[d] += p * vj[d];
    });
  }
}

void attention_f16_avx2(const AttentionShape& s, const float* q, const KvBlocks& kv, int64_t n_kv, float* out,
                        float* scratch, int64_t h0, int64_t h1);

void attention_f16(const AttentionShape& s, const float* q, const KvBlocks& kv, int64_t n_kv, float* out,
                   float* scratch, int64_t h0, int64_t h1) {
  if (active_isa() != Isa::kScalar && s.head_dim % 8 == 0) {
    attention_f16_avx2(s, q, kv, n_kv, out, scratch, h0, h1);
    return;
  }
  attention_f16_scalar(s, q, kv, n_kv, out, scratch, h0, h1);
}

void attention_f16_rows_avx2(const AttentionShape& s, const float* q, int64_t n_rows, const KvBlocks& kv,
                             int64_t n_kv0, int64_t kvh, float* out, float* scratch);

void attention_f16_rows(const AttentionShape& s, const float* q, int64_t n_rows, const KvBlocks& kv, int64_t n_kv0,
                        int64_t kvh, float* out, float* scratch) {
  const int64_t group = s.n_head / s.n_head_kv, q_dim = s.n_head * s.head_dim;
  CW_CHECK(n_rows >= 1 && n_rows * group <= kAttentionMaxGroup);
  if (active_isa() != Isa::kScalar && s.head_dim % 8 == 0) {
    attention_f16_rows_avx2(s, q, n_rows, kv, n_kv0, kvh, out, scratch);
    return;
  }
  for (int64_t i = 0; i < n_rows; ++i)
    attention_f16_scalar(s, q + i * q_dim, kv, n_kv0 + i, out + i * q_dim, scratch, kvh * group, (kvh + 1) * group);
}

void attention_f16_scalar(const AttentionShape& s, const float* q, const KvBlocks& kv, int64_t n_kv, float* out,
                          float* scratch, int64_t h0, int64_t h1) {
  const int64_t D = s.head_dim, group = s.n_head / s.n_head_kv;
  float* scores = scratch;
  float* qr = scratch + n_kv;
  float* acc = qr + D;
  for (int64_t h = h0; h < h1; ++h) {
    for (int64_t d = 0; d < D; ++d) qr[d] = fp16_to_fp32(fp32_to_fp16(q[h * D + d]));
    const int64_t kvh = h / group;
    for_each_position<uint16_t>(kv.k, kv.block_size, n_kv, s.kv_stride, kvh * D, [&](int64_t j, const uint16_t* kj) {
      float a = 0.0f;
      for (int64_t d = 0; d < D; ++d) a += qr[d] * fp16_to_fp32(kj[d]);
      scores[j] = a * s.scale;
    });
    softmax_ref(scores, n_kv);
    std::fill_n(acc, D, 0.0f);
    for_each_position<uint16_t>(kv.v, kv.block_size, n_kv, s.kv_stride, kvh * D, [&](int64_t j, const uint16_t* vj) {
      const float p = fp16_to_fp32(fp32_to_fp16(scores[j]));
      for (int64_t d = 0; d < D; ++d) acc[d] += p * fp16_to_fp32(vj[d]);
    });
    std::copy_n(acc, D, out + h * D);
  }
}

}  // namespace cw::kernels
