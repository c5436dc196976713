#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <atomic>

#include "base/status.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {

namespace {
constexpr int64_t kGemmRowsPerBlock = 16;
}  // namespace

bool matmul_supports(uint32_t w_type) { return dot_kernels(w_type, Isa::kScalar) != nullptr; }

void matmul(const void* w, uint32_t w_type, int64_t n_in, int64_t n_out, const float* x, int64_t n_tokens, float* y,
            const float* bias, ThreadPool& pool, MatmulScratch& scratch, bool multi_row_path) {
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
  // The GEMM path packs its rows into panels of 8 (legacy_gemm_avx2.cc), so it takes whole panels.
  // multi_row_path (matmul.h): a single token takes the same kernel as a multi-token call.
  const bool use_gemm = k->gemm != nullptr && (n_tokens > 1 || multi_row_path);
  const bool use_gemv = k->gemv != nullptr && n_tokens == 1 && !multi_row_path;
  const int64_t rows_per_block =
      use_gemm || use_gemv ? kGemmRowsPerBlock
               : std::max<int64_t>(1, std::min<int64_t>(16, (32 * 1024) / std::max<int64_t>(1, w_row_bytes)));
  const int64_t n_blocks = (n_out + rows_per_block - 1) / rows_per_block;
  if (use_gemm) {
    // Prefill: threads take row blocks from a shared counter, so a thread slowed down (by another process
    // on its core, or a slower block) does not leave the others waiting at the end of a static split.
    std::atomic<int64_t> next{0};
    pool.parallel_for(pool.size(), [&](int64_t, int64_t, int) {
      for (int64_t blk; (blk = next.fetch_add(1, std::memory_order_relaxed)) < n_blocks;) {
        const int64_t r0 = blk * rows_per_block, r1 = std::min(n_out, r0 + rows_per_block);
        k->gemm(n_in, wb + r0 * w_row_bytes, w_row_bytes, r1 - r0, act, a_row_bytes, n_tokens, y + r0, n_out);
        if (bias != nullptr)
          for (int64_t t = 0; t < n_tokens; ++t)
            for (int64_t r = r0; r < r1; ++r) y[t * n_out + r] += bias[r];
      }
    });
    return;
  }
  if (use_gemv) {
    // Decode: each thread takes a contiguous range of row blocks; the kernel tiles them several rows at a
    // time so every activation block is loaded once per tile instead of once per row.
    pool.parallel_for(n_blocks, [&](int64_t bb, int64_t be, int) {
      const int64_t r0 = bb * rows_per_block, r1 = std::min(n_out, be * rows_per_block);
      if (r1 <= r0) return;
      k->gemv(n_in, wb + r0 * w_row_bytes, w_row_bytes, r1 - r0, act, y + r0);
      if (bias != nullptr)
        for (int64_t r = r0; r < r1; ++r) y[r] += bias[r];
    });
    return;
  }
  pool.parallel_for(n_blocks, [&](int64_t bb, int64_t be, int) {
    for (int64_t blk = bb; blk < be; ++blk) {
      const int64_t r0 = blk * rows_per_block, r1 = std::min(n_out, r0 + rows_per_block);
      for (int64_t t = 0; t < n_tokens; ++t) {
        const uint8_t* a = act + t * a_row_bytes;
        float* yt = y + t * n_out;
        for (int64_t r = r0; r < r1; ++r) yt[r] = k->vec_dot(n_in, wb + r * w_row_bytes, a) + (bias ? bias[r] : 0.0f);
      }
    }
  });
}

}  // namespace cw::kernels
