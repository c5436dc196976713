// Forward over a paged, multi-sequence KV cache: a batch that interleaves several sequences, each in its
// own shuffled blocks, must give the logits of running each sequence alone in a Session.
#include "model/forward.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include <unistd.h>

#include <cstdio>

#include "kernels/cpu/ops_ref.h"
#include "model/model.h"
#include "support/testing.h"

namespace cw::model {
namespace {

std::vector<int32_t> tokens_for(int seed, int n) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(3 + (i * 37 + seed * 101) % 500);
  return t;
}

float max_abs_diff(const float* a, const float* b, size_t n) {
  float d = 0;
  for (size_t i = 0; i < n; ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

// Three sequences fed in two batches with different chunkings, each batch mixing all of them, against
// one Session per sequence fed the same chunks.
// tol < 0: bit-identical, with the Forward in batch-invariant mode.
void check_interleaved(const Model& m, KvType type, int32_t block_size, float tol) {
  const int64_t V = m.hparams().n_vocab;
  const std::vector<std::vector<int32_t>> seq_tokens = {tokens_for(1, 45), tokens_for(2, 6), tokens_for(3, 70)};
  // [batch][seq] = rows of that sequence in that batch
  // Batch 3 has two single-row sequences next to each other and a multi-row one.
  const std::vector<std::vector<int>> split = {{37, 4, 60}, {7, 1, 0}, {1, 1, 10}};
  const std::vector<OutputMode> modes = {OutputMode::kAll, OutputMode::kLast, OutputMode::kLast};

  const int32_t per_seq = (75 + block_size - 1) / block_size, n_blocks = 3 * per_seq;
  KvCache kv(KvShape::for_model(m.hparams(), n_blocks, block_size, type));
  std::vector<int32_t> ids(n_blocks);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(7));
  std::vector<std::vector<int32_t>> tables(3);
  for (size_t s = 0, next = 0; s < 3; ++s)
    for (int32_t b = 0; b < per_seq; ++b) tables[s].push_back(ids[next++]);

  std::vector<std::unique_ptr<Session>> alone;
  for (int s = 0; s < 3; ++s) {
    alone.push_back(std::make_unique<Session>(m, 128, type));
    alone.back()->set_batch_invariant(tol < 0);
  }

  Forward fwd(m, 2);
  fwd.set_batch_invariant(tol < 0);
  std::vector<int64_t> n_past(3, 0);
  for (const auto& counts : split) {
    Batch batch;
    std::vector<std::vector<float>> want(3);
    for (size_t s = 0; s < 3; ++s) {
      if (counts[s] == 0) continue;
      const auto* src = seq_tokens[s].data() + n_past[s];
      BatchSeq bs;
      bs.block_table = tables[s];
      bs.n_past = n_past[s];
      bs.first = static_cast<int64_t>(batch.tokens.size());
      bs.count = counts[s];
      bs.output = modes[s];
      batch.tokens.insert(batch.tokens.end(), src, src + counts[s]);
      batch.seqs.push_back(bs);
      if (tol >= 0) {
        ASSERT_TRUE(alone[s]->eval(std::span<const int32_t>(src, static_cast<size_t>(counts[s])),
                                   modes[s] == OutputMode::kAll, &want[s]).is_ok());
      } else {
        // Batch-invariant mode must not depend on the chunking either: feed the sequence one token at a time.
        for (int i = 0; i < counts[s]; ++i) {
          std::vector<float> one;
          ASSERT_TRUE(alone[s]->eval(std::span<const int32_t>(src + i, 1), false, &one).is_ok());
          if (modes[s] == OutputMode::kAll || i == counts[s] - 1) want[s].insert(want[s].end(), one.begin(), one.end());
        }
      }
      n_past[s] += counts[s];
    }
    std::vector<float> got;
    const Status st = fwd.run(batch, kv, &got);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    size_t at = 0;
    for (size_t s = 0; s < 3; ++s) {
      if (want[s].empty()) continue;
      ASSERT_LE(at + want[s].size(), got.size());
      if (tol < 0)
        EXPECT_TRUE(std::equal(want[s].begin(), want[s].end(), got.begin() + static_cast<std::ptrdiff_t>(at)))
            << "sequence " << s << " block size " << block_size << " not bit-identical";
      else
        EXPECT_LE(max_abs_diff(got.data() + at, want[s].data(), want[s].size()), tol)
            << "sequence " << s << " block size " << block_size;
      at += want[s].size();
    }
    EXPECT_EQ(at, got.size());
    EXPECT_EQ(got.size() % static_cast<size_t>(V), 0u);
  }
}

TEST(Forward, InterleavedSequencesMatchSeparateSessions) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = Model::load(dir + "/models/stories260K.gguf");
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  for (int32_t bs : {1, 4, 16}) check_interleaved(**m, KvType::kF32, bs, 1e-4f);
  // fp16 K/V: a different matmul row count can move a value across an fp16 rounding boundary.
  check_interleaved(**m, KvType::kF16, 16, 2e-2f);
}

// Batch-invariant mode: every sequence's logits are bit-identical to running it alone (in a Session in the
// same mode), also for quantized weights (whose one-row GEMV and multi-row GEMM differ in fp32 order).
TEST(Forward, BatchInvariantModeIsBitIdenticalToSessions) {
  CW_REQUIRE_SHARED_DATA(dir);
  for (const char* type : {"Q4_0", "Q8_0", "Q4_K_M", "F16"}) {
    auto m = Model::load(dir + "/models/synth-tiny/seed1-" + type + ".gguf");
    ASSERT_TRUE(m.is_ok()) << m.status().to_string();
    SCOPED_TRACE(type);
    check_interleaved(**m, KvType::kF16, 16, -1.0f);
    check_interleaved(**m, KvType::kF32, 4, -1.0f);
  }
}

TEST(Forward, HiddenStatesProjectToTheLogits) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = Model::load(dir + "/models/stories260K.gguf");
  ASSERT_TRUE(m.is_ok());
  const HParams& hp = (*m)->hparams();
  const auto toks = tokens_for(4, 12);
  Session a(**m, 64, KvType::kF32), b(**m, 64, KvType::kF32);
  std::vector<float> logits, hidden;
  ASSERT_TRUE(a.eval(toks, true, &logits).is_ok());
  ASSERT_TRUE(b.eval_hidden(toks, &hidden).is_ok());
  ASSERT_EQ(hidden.size(), toks.size() * static_cast<size_t>(hp.n_embd));
  EXPECT_EQ(b.n_past(), static_cast<int64_t>(toks.size()));
  std::vector<float> projected(logits.size());
  const WeightRef& out = (*m)->output();
  kernels::matmul_ref(out.data, out.type, out.n_in, out.n_out, hidden.data(), static_cast<int64_t>(toks.size()),
                      projected.data());
  EXPECT_LE(max_abs_diff(projected.data(), logits.data(), logits.size()), 1e-3f);
}

TEST(Forward, RejectsMalformedBatches) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = Model::load(dir + "/models/stories260K.gguf");
  ASSERT_TRUE(m.is_ok());
  KvCache kv(KvShape::for_model((*m)->hparams(), 4, 8, KvType::kF16));
  Forward fwd(**m, 1);
  const std::vector<int32_t> table = {0, 1};
  auto batch_of = [&](int64_t n, std::vector<BatchSeq> seqs) {
    Batch b;
    b.tokens.assign(static_cast<size_t>(n), 5);
    b.seqs = std::move(seqs);
    return b;
  };
  std::vector<float> out;
  const auto code = [&](const Batch& b) { return fwd.run(b, kv, &out).code(); };
  EXPECT_EQ(code(batch_of(0, {})), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(batch_of(3, {BatchSeq{table, 0, 0, 2}})), StatusCode::kInvalidArgument);  // row 2 unclaimed
  EXPECT_EQ(code(batch_of(3, {BatchSeq{table, 0, 0, 2}, BatchSeq{table, 0, 1, 2}})),
            StatusCode::kInvalidArgument);  // overlap
  EXPECT_EQ(code(batch_of(3, {BatchSeq{table, 14, 0, 3}})), StatusCode::kInvalidArgument);  // needs 3 blocks
  const std::vector<int32_t> bad = {0, 9};
  EXPECT_EQ(code(batch_of(2, {BatchSeq{bad, 7, 0, 2}})), StatusCode::kInvalidArgument);  // block 9 of 4
  Batch b = batch_of(2, {BatchSeq{table, 0, 0, 2}});
  b.tokens[1] = 100000;
  EXPECT_EQ(code(b), StatusCode::kInvalidArgument);
  KvCache other(KvShape{3, 7, 4, 8, KvType::kF16});
  EXPECT_EQ(fwd.run(batch_of(1, {BatchSeq{table, 0, 0, 1}}), other, &out).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(fwd.run(batch_of(2, {BatchSeq{table, 0, 0, 2}}), kv, &out).is_ok());
  EXPECT_EQ(out.size(), static_cast<size_t>((*m)->hparams().n_vocab));
}

TEST(KvCache, CopyBlockCopiesEveryLayerAndCreateValidates) {
  KvCache kv(KvShape{2, 4, 3, 2, KvType::kF32});
  for (int64_t l = 0; l < 2; ++l)
    for (int i = 0; i < 8; ++i) {
      static_cast<float*>(kv.k_block(l, 1))[i] = static_cast<float>(l * 100 + i);
      static_cast<float*>(kv.v_block(l, 1))[i] = static_cast<float>(-l * 100 - i);
    }
  kv.copy_block(1, 2);
  for (int64_t l = 0; l < 2; ++l)
    for (int i = 0; i < 8; ++i) {
      EXPECT_EQ(static_cast<const float*>(kv.k_block(l, 2))[i], static_cast<float>(l * 100 + i));
      EXPECT_EQ(static_cast<const float*>(kv.v_block(l, 2))[i], static_cast<float>(-l * 100 - i));
      EXPECT_EQ(static_cast<const float*>(kv.k_block(l, 0))[i], 0.0f);
    }
  EXPECT_EQ(KvCache::create(KvShape{2, 4, 0, 2, KvType::kF32}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(KvCache::create(KvShape{4096, 1 << 16, 1 << 20, 64, KvType::kF32}).status().code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(KvCache::blocks_for_bytes(KvShape{2, 4, 1, 2, KvType::kF16}, 1000), 1000 / 64);
}

// Resident bytes of this process (/proc/self/statm); 0 where unavailable.
uint64_t resident_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

// Issue 11: `run --ctx 16777216` committed 10.5 GB of KV for a 3-token prompt. The cache's memory now
// follows use: a 1 GiB cache costs (nearly) nothing until its slots are written, and reads as zeros.
TEST(KvCache, MemoryIsCommittedAsItIsUsed) {
  const KvShape shape{8, 1024, 1, 1 << 15, KvType::kF16};  // 8 layers x 32768 slots x 1024 x 2 B x (K, V)
  ASSERT_EQ(shape.total_bytes(), uint64_t{1} << 30);
  if (!KvCache::check_fits(shape).is_ok()) GTEST_SKIP() << "this machine has less than ~1.2 GiB of memory";
  const uint64_t before = resident_bytes();
  if (before == 0) GTEST_SKIP() << "/proc/self/statm is not readable";
  auto kv = KvCache::create(shape);
  ASSERT_TRUE(kv.is_ok()) << kv.status().to_string();
  constexpr uint64_t kMargin = uint64_t{64} << 20;  // generous: allocator noise, not the 1 GiB
  EXPECT_LT(resident_bytes(), before + kMargin);
  // One slot of one layer written: still small; untouched slots read as zeros.
  auto* k = static_cast<uint16_t*>((*kv)->k_block(3, 0));
  for (int j = 0; j < 1024; ++j) k[j] = static_cast<uint16_t>(j + 1);
  const auto* v = static_cast<const uint16_t*>((*kv)->v_block(7, 0)) + int64_t{1024} * ((1 << 15) - 1);
  for (int j = 0; j < 1024; ++j) ASSERT_EQ(v[j], 0);
  EXPECT_EQ(k[1023], 1024);
  EXPECT_LT(resident_bytes(), before + kMargin);
}

}  // namespace
}  // namespace cw::model
