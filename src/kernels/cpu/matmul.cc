#include "kernels/cpu/matmul.h"

#include <algorithm>

#include "base/status.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {

bool matmul_supports(uint32_t w_type) { return dot_kernels(w_type, Isa::kScalar) != nullptr; }

void matmul(const void* w, uint32_t w_type, int64_t n_in, int64_t n_out, const float* x, int64_t n_tokens, float* y,
            const float* bias, ThreadPool& pool, MatmulScratch& scratch) {
  const DotKernels* k = dot_kernels(w_type);
  CW_CHECK_MSG(k != nullptr, "no dot kernels for type " + std::to_string(w_type));
  const QuantTraits* wt = quant_traits(w_type);
  const QuantTraits* at = quant_traits(k->a_type);
  CW_CHECK(wt != nullptr && at != nullptr);
  const int64_t w_row_bytes = quant_row_bytes(*wt, n_in);
  const int64_t a_row_bytes = quant_row_bytes(*at, n_in);
  const size_t need = static_cast<size_t>(a_row_bytes * n_tokens);
  if (scratch.act.size() < need) scratch.act.resize(need);
  uint8_t* act = scratch.act.data();
  const auto* wb = static_cast<const uint8_t*>(w);

  if (n_tokens >= 4) {
    pool.parallel_for(n_tokens, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) k->quantize_act(x + t * n_in, act + t * a_row_bytes, n_in);
    });
  } else {
    for (int64_t t = 0; t < n_tokens; ++t) k->quantize_act(x + t * n_in, act + t * a_row_bytes, n_in);
  }

  // Row blocks small enough that a block of weight rows stays in L1/L2 while every token passes over it.
  const int64_t rows_per_block = std::max<int64_t>(1, std::min<int64_t>(16, (32 * 1024) / std::max<int64_t>(1, w_row_bytes)));
  const int64_t n_blocks = (n_out + rows_per_block - 1) / rows_per_block;
  pool.parallel_for(n_blocks, [&](int64_t bb, int64_t be, int) {
    for (int64_t blk = bb; blk < be; ++blk) {
      const int64_t r0 = blk * rows_per_block, r1 = std::min(n_out, r0 + rows_per_block);
      if (k->gemm != nullptr && n_tokens > 1) {
        k->gemm(n_in, wb + r0 * w_row_bytes, w_row_bytes, r1 - r0, act, a_row_bytes, n_tokens, y + r0, n_out);
        if (bias != nullptr)
          for (int64_t t = 0; t < n_tokens; ++t)
            for (int64_t r = r0; r < r1; ++r) y[t * n_out + r] += bias[r];
        continue;
      }
      for (int64_t t = 0; t < n_tokens; ++t) {
        const uint8_t* a = act + t * a_row_bytes;
        float* yt = y + t * n_out;
        for (int64_t r = r0; r < r1; ++r) yt[r] = k->vec_dot(n_in, wb + r * w_row_bytes, a) + (bias ? bias[r] : 0.0f);
      }
    }
  });
}

}  // namespace cw::kernels
