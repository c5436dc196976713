// Causal attention of one query token over a KV cache, per head (GQA: query head h reads kv head
// h / (n_head / n_head_kv)).
//
// What and why: the decode/prefill attention of the forward pass. Two cache precisions:
//   - f32 cache: scores and the weighted V sum in fp32 (exact reference numerics);
//   - f16 cache (default, half the memory): K and V stored as fp16; like llama.cpp's CPU path, Q and
//     the softmax probabilities are rounded to fp16 for the two products, accumulation is fp32.
// Softmax is max-subtracted with an fp32 exp and a double sum (softmax_ref; the AVX2 kernel uses an 8-lane exp
// within ~2 ulp of expf, softmax_f32_avx2).
#pragma once

#include <cstdint>

namespace cw::kernels {

// Query vectors that read the same KV head are processed together, up to this many at once — the query
// heads of one GQA group, and for prefill the heads of several consecutive rows (attention_f16_rows): the
// AVX2 kernel converts each cached K and V row once for all of them instead of once per head and row.
inline constexpr int64_t kAttentionMaxGroup = 8;
inline int64_t attention_scratch_floats(int64_t n_kv, int64_t head_dim) {
  return kAttentionMaxGroup * ((n_kv + 7) / 8 * 8 + head_dim) + 8 * head_dim + head_dim;
}

struct AttentionShape {
  int64_t n_head;
  int64_t n_head_kv;
  int64_t head_dim;
  int64_t kv_stride;  // elements between consecutive positions of the cache (n_head_kv * head_dim)
  float scale;        // usually 1/sqrt(head_dim)
};

// A paged cache: position j lives in block j / block_size at row j % block_size; k[b] and v[b] point at
// block b's first row (block_size rows of kv_stride elements, fp32 or fp16 bits by the function).
// A contiguous cache is one block with block_size >= n_kv.
struct KvBlocks {
  const void* const* k;
  const void* const* v;
  int64_t block_size;
};

// q: [n_head, head_dim]; attends positions [0, n_kv); out: [n_head, head_dim];
// scratch: attention_scratch_floats(n_kv, head_dim) floats (no allocation inside).
// Heads [h0, h1) only (callers split heads across threads). The result does not depend on block_size.
void attention_f32(const AttentionShape& s, const float* q, const KvBlocks& kv, int64_t n_kv, float* out,
                   float* scratch, int64_t h0, int64_t h1);
// Dispatches to the AVX2 version (attention_avx2.cc) when the active ISA has it and head_dim % 8 == 0.
void attention_f16(const AttentionShape& s, const float* q, const KvBlocks& kv, int64_t n_kv, float* out,
                   float* scratch, int64_t h0, int64_t h1);
// Rows i = 0 .. n_rows - 1 of one sequence at consecutive positions (row i attends [0, n_kv0 + i)), the query
// heads of KV head kvh only: q and out are [n_rows, n_head * head_dim]. n_rows * (n_head / n_head_kv) <=
// kAttentionMaxGroup. Each (row, head) result is bit for bit what attention_f16 gives for that row alone
// (prefill tiles rows this way; decode and batch invariance rely on the equality).
void attention_f16_rows(const AttentionShape& s, const float* q, int64_t n_rows, const KvBlocks& kv, int64_t n_kv0,
                        int64_t kvh, float* out, float* scratch);
// The portable version (the reference for the AVX2 one).
void attention_f16_scalar(const AttentionShape& s, const float* q, const KvBlocks& kv, int64_t n_kv, float* out,
                          float* scratch, int64_t h0, int64_t h1);

// softmax_ref with a vectorized exp (within ~2 ulp of expf); AVX2 only (callers check the ISA). The AVX2
// attention uses it.
void softmax_f32_avx2(float* x, int64_t n);

// Contiguous-cache conveniences: k, v: [n_kv, kv_stride].
inline void attention_f32(const AttentionShape& s, const float* q, const float* k, const float* v, int64_t n_kv,
                          float* out, float* scratch, int64_t h0, int64_t h1) {
  const void* kp = k;
  const void* vp = v;
  attention_f32(s, q, KvBlocks{&kp, &vp, n_kv}, n_kv, out, scratch, h0, h1);
}
inline void attention_f16(const AttentionShape& s, const float* q, const uint16_t* k, const uint16_t* v, int64_t n_kv,
                          float* out, float* scratch, int64_t h0, int64_t h1) {
  const void* kp = k;
  const void* vp = v;
  attention_f16(s, q, KvBlocks{&kp, &vp, n_kv}, n_kv, out, scratch, h0, h1);
}
inline void attention_f16_scalar(const AttentionShape& s, const float* q, const uint16_t* k, const uint16_t* v,
                                 int64_t n_kv, float* out, float* scratch, int64_t h0, int64_t h1) {
  const void* kp = k;
  const void* vp = v;
  attention_f16_scalar(s, q, KvBlocks{&kp, &vp, n_kv}, n_kv, out, scratch, h0, h1);
}

}  // namespace cw::kernels
