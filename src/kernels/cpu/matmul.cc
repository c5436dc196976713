#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <atomic>

#include "base/status.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::kernels {

namespace {
constexpr int64_t kGemmRowsPerBlock = 16;
constexpr int kMaxParts = 3;

// One part resolved: its kernels, row sizes, where its quantized activations are, and its row blocks.
struct Resolved {
  const DotKernels* k;
  const uint8_t* w;
  int64_t w_row_bytes;
  const uint8_t* act;
  int64_t a_row_bytes;
  const int32_t* a_sums;  // or nullptr
  int64_t rows_per_block;
  int64_t n_blocks;
  const MatmulPart* part;
};

enum class Path { kGemm, kGemv, kVecDot };

// Rows [r0, r1) of one part for every token, then its bias and residual on those rows.
void run_rows(const Resolved& p, Path path, int64_t n_in, int64_t n_tokens, int64_t r0, int64_t r1) {
  const MatmulPart& part = *p.part;
  const int64_t n_out = part.n_out;
  float* y = part.y;
  switch (path) {
    case Path::kGemm:
      p.k->gemm(n_in, p.w + r0 * p.w_row_bytes, p.w_row_bytes, r1 - r0, p.act, p.a_row_bytes, n_tokens, y + r0,
                n_out, p.a_sums);
      break;
    case Path::kGemv:
      // The kernel tiles the rows several at a time, so every activation block is loaded once per tile.
      p.k->gemv(n_in, p.w + r0 * p.w_row_bytes, p.w_row_bytes, r1 - r0, p.act, y + r0);
      break;
    case Path::kVecDot:
      for (int64_t t = 0; t < n_tokens; ++t) {
        const uint8_t* a = p.act + t * p.a_row_bytes;
        float* yt = y + t * n_out;
        for (int64_t r = r0; r < r1; ++r) yt[r] = p.k->vec_dot(n_in, p.w + r * p.w_row_bytes, a);
      }
      break;
  }
  if (part.bias != nullptr)
    for (int64_t t = 0; t < n_tokens; ++t)
      for (int64_t r = r0; r < r1; ++r) y[t * n_out + r] += part.bias[r];
  if (part.residual != nullptr)
    for (int64_t t = 0; t < n_tokens; ++t)
      for (int64_t r = r0; r < r1; ++r) part.residual[t * n_out + r] += y[t * n_out + r];
}

}  // namespace

bool matmul_supports(uint32_t w_type) { return dot_kernels(w_type, Isa::kScalar) != nullptr; }

void matmul(const void* w, uint32_t w_type, int64_t n_in, int64_t n_out, const float* x, int64_t n_tokens, float* y,
            const float* bias, ThreadPool& pool, MatmulScratch& scratch, bool multi_row_path) {
  MatmulPart part;
  part.w = w;
  part.w_type = w_type;
  part.n_out = n_out;
  part.y = y;
  part.bias = bias;
  matmul_group(&part, 1, n_in, x, n_tokens, pool, scratch, multi_row_path);
}

void matmul_group(const MatmulPart* parts, int n_parts, int64_t n_in, const float* x, int64_t n_tokens,
                  ThreadPool& pool, MatmulScratch& scratch, bool multi_row_path, MatmulEpilogue epilogue) {
  CW_CHECK(n_parts >= 1 && n_parts <= kMaxParts && n_tokens >= 1);
  const bool glu = epilogue == MatmulEpilogue::kSwiGlu;
  CW_CHECK(!glu || (n_parts == 2 && parts[0].n_out == parts[1].n_out && parts[0].residual == nullptr));

  // multi_row_path (matmul.h): a single token takes the same kernel as a multi-token call.
  const bool many = n_tokens > 1 || multi_row_path;
  // Quantize x once per distinct activation type (and sum its blocks once if a GEMM of the group wants it).
  Resolved res[kMaxParts];
  uint32_t act_types[kMaxParts];
  bool have_sums[kMaxParts] = {};
  int n_act = 0;
  for (int i = 0; i < n_parts; ++i) {
    const MatmulPart& pt = parts[i];
    const DotKernels* k = dot_kernels(pt.w_type);
    CW_CHECK_MSG(k != nullptr, "no dot kernels for type " + std::to_string(pt.w_type));
    const QuantTraits* wt = quant_traits(pt.w_type);
    const QuantTraits* at = quant_traits(k->a_type);
    CW_CHECK(wt != nullptr && at != nullptr);
    int slot = 0;
    while (slot < n_act && act_types[slot] != k->a_type) ++slot;
    const int64_t a_row_bytes = quant_row_bytes(*at, n_in);
    if (slot == n_act) {
      act_types[n_act++] = k->a_type;
      std::vector<uint8_t>& buf = scratch.act[slot];
      const size_t need = static_cast<size_t>(a_row_bytes * n_tokens);
      if (buf.size() < need) buf.resize(need);
      uint8_t* act = buf.data();
      if (n_tokens >= 4) {
        pool.parallel_for(n_tokens, [&](int64_t b, int64_t e, int) {
          for (int64_t t = b; t < e; ++t) k->quantize_act(x + t * n_in, act + t * a_row_bytes, n_in);
        });
      } else {
        for (int64_t t = 0; t < n_tokens; ++t) k->quantize_act(x + t * n_in, act + t * a_row_bytes, n_in);
      }
    }
    const int32_t* a_sums = nullptr;
    if (many && k->gemm != nullptr && k->act_sums != nullptr) {
      std::vector<int32_t>& sums = scratch.sums[slot];
      const int64_t nb = n_in / 32;
      if (!have_sums[slot]) {
        if (sums.size() < static_cast<size_t>(nb * n_tokens)) sums.resize(static_cast<size_t>(nb * n_tokens));
        const uint8_t* act = scratch.act[slot].data();
        const ActSumsFn fn = k->act_sums;
        pool.parallel_for(n_tokens, [&](int64_t b, int64_t e, int) {
          for (int64_t t = b; t < e; ++t) fn(act + t * a_row_bytes, n_in, sums.data() + t * nb);
        });
        have_sums[slot] = true;
      }
      a_sums = sums.data();
    }
    const int64_t w_row_bytes = quant_row_bytes(*wt, n_in);
    res[i] = Resolved{k, static_cast<const uint8_t*>(pt.w), w_row_bytes, scratch.act[slot].data(), a_row_bytes,
                      a_sums, 0, 0, &pt};
  }

  // Row blocks: small enough that a block of weight rows stays in L1/L2 while every token passes over it.
  // The GEMM path packs its rows into panels of 8 (legacy_gemm_avx2.cc), so it takes whole panels.
  for (int i = 0; i < n_parts; ++i) {
    Resolved& r = res[i];
    const bool fast = many ? r.k->gemm != nullptr : r.k->gemv != nullptr;
    r.rows_per_block = fast ? kGemmRowsPerBlock
                            : std::max<int64_t>(1, std::min<int64_t>(16, (32 * 1024) / std::max<int64_t>(1, r.w_row_bytes)));
    if (glu) r.rows_per_block = kGemmRowsPerBlock;  // gate and up blocks must cover the same rows
    r.n_blocks = (parts[i].n_out + r.rows_per_block - 1) / r.rows_per_block;
  }
  auto path_of = [&](const Resolved& r) {
    if (many) return r.k->gemm != nullptr ? Path::kGemm : Path::kVecDot;
    return r.k->gemv != nullptr ? Path::kGemv : Path::kVecDot;
  };

  // Work units: block b of a part (with kSwiGlu: block b of gate and of up, then the epilogue on its rows).
  const int n_streams = glu ? 1 : n_parts;
  int64_t unit_begin[kMaxParts + 1];
  unit_begin[0] = 0;
  for (int i = 0; i < n_streams; ++i) unit_begin[i + 1] = unit_begin[i] + res[i].n_blocks;
  const int64_t n_units = unit_begin[n_streams];
  // Units [u0, u1) within stream i (contiguous row range: one kernel call, so its prefetch runs through).
  auto run_units = [&](int i, int64_t u0, int64_t u1) {
    const Resolved& r = res[i];
    const int64_t r0 = u0 * r.rows_per_block, r1 = std::min(parts[i].n_out, u1 * r.rows_per_block);
    if (r1 <= r0) return;
    run_rows(r, path_of(r), n_in, n_tokens, r0, r1);
    if (glu) {
      run_rows(res[1], path_of(res[1]), n_in, n_tokens, r0, r1);
      float* g = parts[0].y + r0;
      swiglu_rows(g, parts[1].y + r0, g, n_tokens, r1 - r0, parts[0].n_out);
    }
  };
  auto run_global = [&](int64_t g0, int64_t g1) {  // global units [g0, g1), split at stream boundaries
    for (int i = 0; i < n_streams && g0 < g1; ++i) {
      const int64_t b = std::max(g0, unit_begin[i]), e = std::min(g1, unit_begin[i + 1]);
      if (b < e) run_units(i, b - unit_begin[i], e - unit_begin[i]);
    }
  };

  if (many) {
    // Prefill: threads take units from a shared counter, so a thread slowed down (by another process on its
    // core, or a slower block) does not leave the others waiting at the end of a static split.
    std::atomic<int64_t> next{0};
    pool.parallel_for(pool.size(), [&](int64_t, int64_t, int) {
      for (int64_t u; (u = next.fetch_add(1, std::memory_order_relaxed)) < n_units;) run_global(u, u + 1);
    });
    return;
  }
  // Decode: each thread takes one contiguous range of units, split by weight bytes (parts may differ in
  // type), so each thread streams its share of the weights once, front to back. (Stealing units from the
  // back of the other thread's range when one finishes early was measured: no faster on 1B Q4_0.)
  int64_t unit_cost[kMaxParts];
  int64_t cost_begin[kMaxParts + 1];
  cost_begin[0] = 0;
  for (int i = 0; i < n_streams; ++i) {
    unit_cost[i] = res[i].rows_per_block * res[i].w_row_bytes * (glu ? 2 : 1);
    cost_begin[i + 1] = cost_begin[i] + res[i].n_blocks * unit_cost[i];
  }
  const int64_t total = cost_begin[n_streams];
  // The first unit whose cost range starts at or after `c`.
  auto unit_at = [&](int64_t c) {
    for (int i = 0; i < n_streams; ++i) {
      if (c <= cost_begin[i]) return unit_begin[i];
      if (c < cost_begin[i + 1]) return unit_begin[i] + (c - cost_begin[i] + unit_cost[i] - 1) / unit_cost[i];
    }
    return n_units;
  };
  const int n_threads = static_cast<int>(std::min<int64_t>(pool.size(), n_units));
  pool.parallel_for(n_threads, [&](int64_t tb, int64_t te, int) {
    for (int64_t t = tb; t < te; ++t) run_global(unit_at(total * t / n_threads), unit_at(total * (t + 1) / n_threads));
  });
}

}  // namespace cw::kernels
