#include "kv/block_manager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <vector>

namespace cw::kv {
namespace {

using Tokens = std::vector<int32_t>;

Tokens iota_tokens(int32_t n, int32_t start) {
  Tokens t(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) t[static_cast<size_t>(i)] = start + i;
  return t;
}

std::vector<int32_t> table_of(const BlockManager& bm, SeqId s) {
  auto t = bm.block_table(s);
  return {t.begin(), t.end()};
}

SeqId new_seq(BlockManager& bm) {
  auto r = bm.add_sequence();
  EXPECT_TRUE(r.is_ok());
  return *r;
}

#define EXPECT_INVARIANTS(bm)                        \
  do {                                               \
    Status st_ = (bm).check_invariants();            \
    EXPECT_TRUE(st_.is_ok()) << st_.to_string();     \
  } while (0)

TEST(BlockManagerTest, CreateValidatesConfig) {
  EXPECT_EQ(BlockManager::create(0, 16).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(BlockManager::create(4, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(BlockManager::create(4, 16, nullptr).status().code(), StatusCode::kInvalidArgument);
  auto bm = BlockManager::create(4, 16);
  ASSERT_TRUE(bm.is_ok());
  EXPECT_EQ(bm->n_free_blocks(), 4);
  EXPECT_INVARIANTS(*bm);
}

TEST(BlockManagerTest, UnknownAndNonEmptySequencesAreErrors) {
  BlockManager bm(4, 4);
  const Tokens t = iota_tokens(3, 0);
  EXPECT_EQ(bm.append_tokens(77, t).code(), StatusCode::kNotFound);
  EXPECT_EQ(bm.match_prefix(77, t).status().code(), StatusCode::kNotFound);
  SeqId s = new_seq(bm);
  ASSERT_TRUE(bm.append_tokens(s, t).is_ok());
  EXPECT_EQ(bm.match_prefix(s, t).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(bm.append_tokens(s, {}).is_ok());
  EXPECT_EQ(bm.n_tokens(s), 3);
  EXPECT_INVARIANTS(bm);
}

TEST(BlockManagerTest, PrefixReuseSharesFullBlocks) {
  const int32_t bs = 4;
  BlockManager bm(8, bs);
  Tokens prompt = iota_tokens(2 * bs + 2, 100);  // 2 full blocks + a partial one
  SeqId a = new_seq(bm);
  ASSERT_TRUE(bm.append_tokens(a, prompt).is_ok());
  EXPECT_EQ(table_of(bm, a), (std::vector<int32_t>{0, 1, 2}));

  Tokens prompt_b(prompt.begin(), prompt.begin() + 2 * bs);
  prompt_b.push_back(7);
  prompt_b.push_back(8);
  prompt_b.push_back(9);
  SeqId b = new_seq(bm);
  auto cached = bm.match_prefix(b, prompt_b);
  ASSERT_TRUE(cached.is_ok());
  EXPECT_EQ(*cached, 2 * bs);
  EXPECT_EQ(table_of(bm, b), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(bm.ref_count(0), 2);
  EXPECT_EQ(bm.ref_count(1), 2);
  EXPECT_EQ(bm.ref_count(2), 1);
  ASSERT_TRUE(bm.append_tokens(b, std::span(prompt_b).subspan(static_cast<size_t>(*cached))).is_ok());
  EXPECT_EQ(table_of(bm, b), (std::vector<int32_t>{0, 1, 3}));
  EXPECT_TRUE(bm.take_pending_copies().empty());
  EXPECT_INVARIANTS(bm);

  // After a frees, the shared blocks are still referenced by b; a's partial block is free.
  bm.free_sequence(a);
  EXPECT_EQ(bm.ref_count(0), 1);
  EXPECT_EQ(bm.ref_count(2), 0);
  EXPECT_EQ(bm.n_cached_blocks(), 0);
  EXPECT_INVARIANTS(bm);
  // After b frees, the full blocks are cached, the partial one free; a new request still reuses them.
  bm.free_sequence(b);
  EXPECT_EQ(bm.n_cached_blocks(), 2);
  EXPECT_EQ(bm.n_free_blocks(), 6);
  SeqId c = new_seq(bm);
  EXPECT_EQ(*bm.match_prefix(c, prompt), 2 * bs);
  EXPECT_EQ(table_of(bm, c), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(bm.n_cached_blocks(), 0);
  EXPECT_INVARIANTS(bm);
}

TEST(BlockManagerTest, PartialLastBlockIsNeverShared) {
  const int32_t bs = 4;
  BlockManager bm(8, bs);
  const Tokens prompt = iota_tokens(bs + 3, 0);
  SeqId a = new_seq(bm);
  ASSERT_TRUE(bm.append_tokens(a, prompt).is_ok());
  SeqId b = new_seq(bm);
  EXPECT_EQ(*bm.match_prefix(b, prompt), bs);  // only the full block
  EXPECT_EQ(table_of(bm, b), (std::vector<int32_t>{0}));
  ASSERT_TRUE(bm.append_tokens(b, std::span(prompt).subspan(bs)).is_ok());
  EXPECT_EQ(table_of(bm, a), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(table_of(bm, b), (std::vector<int32_t>{0, 2}));  // its own copy of the tail
  EXPECT_EQ(bm.ref_count(1), 1);
  EXPECT_EQ(bm.ref_count(2), 1);
  EXPECT_INVARIANTS(bm);
}

TEST(BlockManagerTest, CopyOnWriteWhenWholePromptIsCachedAndShared) {
  const int32_t bs = 4;
  BlockManager bm(8, bs);
  const Tokens prompt = iota_tokens(2 * bs, 10);  // exactly two full blocks
  SeqId a = new_seq(bm);
  ASSERT_TRUE(bm.append_tokens(a, prompt).is_ok());
  EXPECT_TRUE(bm.take_pending_copies().empty());

  SeqId b = new_seq(bm);
  auto cached = bm.match_prefix(b, prompt);
  ASSERT_TRUE(cached.is_ok());
  EXPECT_EQ(*cached, 2 * bs - 1);  // one token left to compute for logits
  EXPECT_EQ(bm.n_tokens(b), 2 * bs - 1);
  EXPECT_EQ(table_of(bm, b), (std::vector<int32_t>{0, 1}));
  EXPECT_INVARIANTS(bm);

  ASSERT_TRUE(bm.append_tokens(b, std::span(prompt).subspan(static_cast<size_t>(*cached))).is_ok());
  EXPECT_EQ(table_of(bm, b), (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(bm.take_pending_copies(), (std::vector<BlockCopy>{{1, 2}}));
  EXPECT_TRUE(bm.take_pending_copies().empty());  // drained
  EXPECT_EQ(bm.ref_count(1), 1);                   // a still holds the original
  const auto copy = bm.block_tokens(2);
  EXPECT_TRUE(std::equal(copy.begin(), copy.end(), prompt.begin() + bs, prompt.end()));
  EXPECT_INVARIANTS(bm);

  // The original stays the registered block: a third request still finds blocks 0 and 1.
  SeqId c = new_seq(bm);
  EXPECT_EQ(*bm.match_prefix(c, prompt), 2 * bs - 1);
  EXPECT_EQ(table_of(bm, c), (std::vector<int32_t>{0, 1}));
  EXPECT_INVARIANTS(bm);
}

TEST(BlockManagerTest, CopyOnWriteFromCachedBlockLeavesOriginalCached) {
  const int32_t bs = 4;
  BlockManager bm(8, bs);
  const Tokens prompt = iota_tokens(2 * bs, 10);
  SeqId a = new_seq(bm);
  ASSERT_TRUE(bm.append_tokens(a, prompt).is_ok());
  bm.free_sequence(a);
  EXPECT_EQ(bm.n_cached_blocks(), 2);

  // Sole user (ref 1) but the block is registered: writing a *different* last token must not change it.
  SeqId b = new_seq(bm);
  EXPECT_EQ(*bm.match_prefix(b, prompt), 2 * bs - 1);
  const int32_t other = 999;
  ASSERT_TRUE(bm.append_tokens(b, std::span(&other, 1)).is_ok());
  EXPECT_EQ(bm.take_pending_copies(), (std::vector<BlockCopy>{{1, 2}}));
  EXPECT_EQ(bm.block_tokens(2).back(), other);
  EXPECT_EQ(bm.block_tokens(1).back(), prompt.back());
  EXPECT_EQ(bm.ref_count(1), 0);
  EXPECT_EQ(bm.lru_order(), (std::vector<int32_t>{1}));
  EXPECT_INVARIANTS(bm);

  SeqId c = new_seq(bm);
  Tokens longer = prompt;
  longer.push_back(5);
  EXPECT_EQ(*bm.match_prefix(c, longer), 2 * bs);
  EXPECT_EQ(table_of(bm, c), (std::vector<int32_t>{0, 1}));
  EXPECT_INVARIANTS(bm);
}

TEST(BlockManagerTest, BlockSizeOneFullyCachedPromptNeedsNoCopy) {
  BlockManager bm(8, 1);
  const Tokens prompt = iota_tokens(3, 0);
  SeqId a = new_seq(bm);
  ASSERT_TRUE(bm.append_tokens(a, prompt).is_ok());
  SeqId b = new_seq(bm);
  EXPECT_EQ(*bm.match_prefix(b, prompt), 2);
  EXPECT_EQ(table_of(bm, b), (std::vector<int32_t>{0, 1}));
  ASSERT_TRUE(bm.append_tokens(b, std::span(prompt).subspan(2)).is_ok());
  EXPECT_EQ(table_of(bm, b), (std::vector<int32_t>{0, 1, 3}));
  EXPECT_TRUE(bm.take_pending_copies().empty());
  EXPECT_INVARIANTS(bm);
}

TEST(BlockManagerTest, EvictsLeastRecentlyUsedTailFirst) {
  const int32_t bs = 2;
  BlockManager bm(4, bs);
  const Tokens x = iota_tokens(2 * bs, 0);
  const Tokens y = iota_tokens(2 * bs, 50);
  SeqId a = new_seq(bm);
  ASSERT_TRUE(bm.append_tokens(a, x).is_ok());  // blocks 0, 1
  SeqId b = new_seq(bm);
  ASSERT_TRUE(bm.append_tokens(b, y).is_ok());  // blocks 2, 3
  bm.free_sequence(a);
  bm.free_sequence(b);
  EXPECT_EQ(bm.lru_order(), (std::vector<int32_t>{1, 0, 3, 2}));

  // Reusing x makes it the most recently used.
  SeqId e = new_seq(bm);
  Tokens x_more = x;
  x_more.push_back(7);
  EXPECT_EQ(*bm.match_prefix(e, x_more), 2 * bs);
  EXPECT_EQ(bm.lru_order(), (std::vector<int32_t>{3, 2}));
  bm.free_sequence(e);
  EXPECT_EQ(bm.lru_order(), (std::vector<int32_t>{3, 2, 1, 0}));

  // A fresh sequence needing two blocks evicts y's tail, then y's head.
  SeqId f = new_seq(bm);
  ASSERT_TRUE(bm.append_tokens(f, iota_tokens(2 * bs, 200)).is_ok());
  EXPECT_EQ(table_of(bm, f), (std::vector<int32_t>{3, 2}));
  EXPECT_EQ(bm.lru_order(), (std::vector<int32_t>{1, 0}));
  EXPECT_INVARIANTS(bm);
  // y is gone from the index; x is still there.
  SeqId g = new_seq(bm);
  Tokens y_more = y;
  y_more.push_back(1);
  EXPECT_EQ(*bm.match_prefix(g, y_more), 0);
  bm.free_sequence(g);
  SeqId h = new_seq(bm);
  EXPECT_EQ(*bm.match_prefix(h, x_more), 2 * bs);
  EXPECT_INVARIANTS(bm);
}

TEST(BlockManagerTest, ExhaustionLeavesStateUnchanged) {
  const int32_t bs = 4;
  BlockManager bm(3, bs);
  SeqId a = new_seq(bm);
  ASSERT_TRUE(bm.append_tokens(a, iota_tokens(2 * bs, 0)).is_ok());
  SeqId b = new_seq(bm);
  ASSERT_TRUE(bm.append_tokens(b, iota_tokens(2, 100)).is_ok());  // last block
  // b's block has 2 free slots; 2 + 4 + 1 tokens would need two more blocks: none.
  Status st = bm.append_tokens(b, iota_tokens(7, 200));
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(bm.n_tokens(b), 2);
  EXPECT_EQ(table_of(bm, b), (std::vector<int32_t>{2}));
  EXPECT_EQ(bm.block_tokens(2).size(), 2u);
  EXPECT_EQ(bm.n_free_blocks(), 0);
  EXPECT_INVARIANTS(bm);
  // Filling exactly the remaining slots still works.
  EXPECT_TRUE(bm.append_tokens(b, iota_tokens(2, 300)).is_ok());
  EXPECT_INVARIANTS(bm);
}

TEST(BlockManagerTest, ExhaustionOnCopyOnWriteLeavesStateUnchanged) {
  const int32_t bs = 4;
  BlockManager bm(2, bs);
  const Tokens prompt = iota_tokens(2 * bs, 0);
  SeqId a = new_seq(bm);
  ASSERT_TRUE(bm.append_tokens(a, prompt).is_ok());
  SeqId b = new_seq(bm);
  EXPECT_EQ(*bm.match_prefix(b, prompt), 2 * bs - 1);
  Status st = bm.append_tokens(b, std::span(prompt).subspan(2 * bs - 1));
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);  // the copy needs a block
  EXPECT_EQ(bm.n_tokens(b), 2 * bs - 1);
  EXPECT_EQ(table_of(bm, b), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(bm.ref_count(1), 2);
  EXPECT_TRUE(bm.take_pending_copies().empty());
  EXPECT_INVARIANTS(bm);
}

uint64_t constant_hash(uint64_t, std::span<const int32_t>) { return 42; }
uint64_t parentless_hash(uint64_t, std::span<const int32_t> tokens) {
  return default_block_hash(kRootHash, tokens);
}

TEST(BlockManagerTest, HashCollisionOnTokensIsNotReused) {
  const int32_t bs = 4;
  BlockManager bm(8, bs, &constant_hash);
  SeqId a = new_seq(bm);
  ASSERT_TRUE(bm.append_tokens(a, iota_tokens(2 * bs, 1)).is_ok());
  EXPECT_INVARIANTS(bm);
  SeqId b = new_seq(bm);
  const Tokens other = iota_tokens(2 * bs + 1, 500);
  EXPECT_EQ(*bm.match_prefix(b, other), 0);
  EXPECT_TRUE(bm.block_table(b).empty());
  bm.free_sequence(b);
  // The first block matches for real; the second candidate (same hash, block 0 again) fails verification.
  SeqId c = new_seq(bm);
  Tokens p = iota_tokens(2 * bs, 1);
  p.push_back(0);
  EXPECT_EQ(*bm.match_prefix(c, p), bs);
  EXPECT_EQ(table_of(bm, c), (std::vector<int32_t>{0}));
  EXPECT_INVARIANTS(bm);
}

TEST(BlockManagerTest, HashCollisionOnParentIsNotReused) {
  // The hash ignores the parent, so [3333][2222] collides with [1111][2222] at level 1; the tokens of
  // that level agree, only the parent check tells the two prefixes apart.
  const int32_t bs = 4;
  BlockManager bm(8, bs, &parentless_hash);
  const Tokens x = {1, 1, 1, 1, 2, 2, 2, 2};
  const Tokens y = {3, 3, 3, 3, 2, 2, 2, 2};
  SeqId a = new_seq(bm);
  ASSERT_TRUE(bm.append_tokens(a, x).is_ok());  // 0:[1111] 1:[2222] registered
  SeqId b = new_seq(bm);
  ASSERT_TRUE(bm.append_tokens(b, y).is_ok());  // 2:[3333] registered, 3:[2222] duplicate hash
  bm.free_sequence(a);
  bm.free_sequence(b);
  EXPECT_EQ(bm.n_cached_blocks(), 3);
  SeqId c = new_seq(bm);
  Tokens y_more = y;
  y_more.push_back(9);
  EXPECT_EQ(*bm.match_prefix(c, y_more), bs);  // not 2*bs: block 1 follows [1111], not [3333]
  EXPECT_EQ(table_of(bm, c), (std::vector<int32_t>{2}));
  bm.free_sequence(c);
  SeqId d = new_seq(bm);
  Tokens x_more = x;
  x_more.push_back(9);
  EXPECT_EQ(*bm.match_prefix(d, x_more), 2 * bs);
  EXPECT_EQ(table_of(bm, d), (std::vector<int32_t>{0, 1}));
  EXPECT_INVARIANTS(bm);
}

// Randomized property test. Alongside the manager it simulates the KV tensors the runtime would keep
// (`phys`: one token id per slot, written at append time after the queued copies are applied) and checks
// after every operation that (1) the invariants hold and (2) every live sequence reads back exactly its own
// tokens through its block table — so no reuse, eviction or copy ever hands a sequence wrong content.
struct OpStats {
  int reused_tokens = 0, copies = 0, exhausted = 0, evictions = 0;
};

void run_random_ops(BlockHashFn hash, uint32_t seed, int n_ops, OpStats& stats) {
  std::mt19937 rng(seed);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const int32_t n_blocks = uni(4, 16);
  const int32_t bs = uni(1, 4);
  SCOPED_TRACE("seed " + std::to_string(seed) + " n_blocks " + std::to_string(n_blocks) + " bs " +
               std::to_string(bs));
  BlockManager bm(n_blocks, bs, hash);
  std::vector<std::vector<int32_t>> phys(static_cast<size_t>(n_blocks), std::vector<int32_t>(bs, -1));
  std::map<SeqId, Tokens> model;
  // A few base prompts over a tiny alphabet, so prefixes are shared often.
  std::vector<Tokens> bases;
  for (int i = 0; i < 3; ++i) {
    Tokens t;
    for (int j = 0; j < 4 * bs + 3; ++j) t.push_back(uni(0, 2));
    bases.push_back(t);
  }
  auto random_tokens = [&](int n) {
    Tokens t;
    for (int i = 0; i < n; ++i) t.push_back(uni(0, 2));
    return t;
  };
  auto pick_seq = [&]() {
    auto it = model.begin();
    std::advance(it, uni(0, static_cast<int>(model.size()) - 1));
    return it->first;
  };
  // Append through the manager and mirror into phys as the runtime would.
  auto append = [&](SeqId s, const Tokens& t) {
    const auto before_table = table_of(bm, s);
    const int64_t before_n = bm.n_tokens(s);
    const int32_t before_free = bm.n_free_blocks(), before_cached = bm.n_cached_blocks();
    const auto before_lru = bm.lru_order();
    Status st = bm.append_tokens(s, t);
    if (!st.is_ok()) {
      EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
      EXPECT_EQ(table_of(bm, s), before_table);
      EXPECT_EQ(bm.n_tokens(s), before_n);
      EXPECT_EQ(bm.n_free_blocks(), before_free);
      EXPECT_EQ(bm.n_cached_blocks(), before_cached);
      EXPECT_EQ(bm.lru_order(), before_lru);
      EXPECT_TRUE(bm.take_pending_copies().empty());
      ++stats.exhausted;
      return;
    }
    if (bm.n_cached_blocks() < before_cached) ++stats.evictions;
    const auto copies = bm.take_pending_copies();
    stats.copies += static_cast<int>(copies.size());
    for (const BlockCopy& c : copies) phys[static_cast<size_t>(c.dst)] = phys[static_cast<size_t>(c.src)];
    const auto table = bm.block_table(s);
    for (size_t i = 0; i < t.size(); ++i) {
      const int64_t pos = before_n + static_cast<int64_t>(i);
      phys[static_cast<size_t>(table[static_cast<size_t>(pos / bs)])][static_cast<size_t>(pos % bs)] = t[i];
    }
    Tokens& m = model[s];
    m.insert(m.end(), t.begin(), t.end());
  };

  for (int op = 0; op < n_ops; ++op) {
    const int kind = uni(0, 9);
    if (model.empty() || (kind <= 2 && model.size() < 6)) {
      SeqId s = new_seq(bm);
      model[s] = {};
      if (uni(0, 3) != 0) {
        Tokens prompt = bases[static_cast<size_t>(uni(0, 2))];
        prompt.resize(static_cast<size_t>(uni(1, static_cast<int>(prompt.size()))));
        if (uni(0, 1)) {
          Tokens tail = random_tokens(uni(0, 2 * bs));
          prompt.insert(prompt.end(), tail.begin(), tail.end());
        }
        auto cached = bm.match_prefix(s, prompt);
        ASSERT_TRUE(cached.is_ok()) << cached.status().to_string();
        ASSERT_LT(*cached, static_cast<int32_t>(prompt.size()));
        ASSERT_TRUE(*cached % bs == 0 || *cached == static_cast<int32_t>(prompt.size()) - 1);
        stats.reused_tokens += *cached;
        model[s].assign(prompt.begin(), prompt.begin() + *cached);
        append(s, Tokens(prompt.begin() + *cached, prompt.end()));
      }
    } else if (kind <= 6) {
      append(pick_seq(), random_tokens(uni(1, 2 * bs + 1)));
    } else {
      SeqId s = pick_seq();
      bm.free_sequence(s);
      model.erase(s);
    }
    Status inv = bm.check_invariants();
    ASSERT_TRUE(inv.is_ok()) << "op " << op << ": " << inv.to_string();
    for (const auto& [s, toks] : model) {
      ASSERT_EQ(bm.n_tokens(s), static_cast<int64_t>(toks.size()));
      const auto table = bm.block_table(s);
      for (size_t p = 0; p < toks.size(); ++p) {
        ASSERT_EQ(phys[static_cast<size_t>(table[p / static_cast<size_t>(bs)])][p % static_cast<size_t>(bs)], toks[p])
            << "op " << op << " seq " << s << " pos " << p;
      }
    }
  }
  for (const auto& [s, toks] : model) bm.free_sequence(s);
  ASSERT_TRUE(bm.check_invariants().is_ok());
  EXPECT_EQ(bm.n_free_blocks() + bm.n_cached_blocks(), n_blocks);
  for (int32_t i = 0; i < n_blocks; ++i) EXPECT_EQ(bm.ref_count(i), 0);
}

uint64_t weak_hash(uint64_t parent, std::span<const int32_t> tokens) {
  return default_block_hash(parent, tokens) & 3;  // four buckets: collisions everywhere
}

// The paths under test must actually be taken, or the property test proves little.
void expect_coverage(const OpStats& st) {
  EXPECT_GT(st.reused_tokens, 0);
  EXPECT_GT(st.copies, 0);
  EXPECT_GT(st.exhausted, 0);
  EXPECT_GT(st.evictions, 0);
}

// 10 pools x 1,000 operations = 10,000 operations per hash function.
TEST(BlockManagerTest, RandomOperationsKeepInvariants) {
  OpStats st;
  for (uint32_t seed = 1; seed <= 10 && !::testing::Test::HasFatalFailure(); ++seed) {
    run_random_ops(&default_block_hash, seed, 1000, st);
  }
  expect_coverage(st);
}

TEST(BlockManagerTest, RandomOperationsWithCollidingHashes) {
  OpStats weak, parentless;
  for (uint32_t seed = 1; seed <= 10 && !::testing::Test::HasFatalFailure(); ++seed) {
    run_random_ops(&weak_hash, seed, 1000, weak);
    run_random_ops(&parentless_hash, seed + 100, 1000, parentless);
  }
  expect_coverage(weak);
  expect_coverage(parentless);
}

}  // namespace
}  // namespace cw::kv
