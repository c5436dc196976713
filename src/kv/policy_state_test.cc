// Policy states (docs/design/kv_layout.md): a simulated cache applies the actions a state emits, slot by
// slot, and must then hold exactly what the layout says — each slot's token, each key rotated at
// pos_offset + slot, and window keys never moved.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <variant>

#include "kv/policy.h"

namespace cw::kv {

extern const KvPolicyFactory kSinkWindowPolicy;
extern const KvPolicyFactory kWindowPolicy;
extern const KvPolicyFactory kRecomputeWindowPolicy;
extern const KvPolicyFactory kCompressPolicy;
extern const KvPolicyFactory kRetainPolicy;

namespace {

// One slot of the simulated cache: which token's KV it holds and the position its key was rotated at.
struct Slot {
  int64_t token = -1;
  int64_t rotated_at = -1;
};

// Applies actions like the executor will; returns false (with a test failure) on an action that breaks the
// contract (misaligned drop, overlapping copy, a re-rotation from the wrong position).
class SimCache {
 public:
  explicit SimCache(int64_t block) : block_(block) {}
  // New rows are written at position pos_offset + slot (the forward pass's BatchSeq::pos_offset).
  void append(int64_t first_token, int64_t n, int64_t pos_offset) {
    for (int64_t i = 0; i < n; ++i)
      slots_.push_back({first_token + i, pos_offset + static_cast<int64_t>(slots_.size())});
  }
  void apply(const KvAction& a) {
    if (const auto* c = std::get_if<CopySlots>(&a)) {
      ASSERT_LT(c->dst, c->src);
      ASSERT_LE(c->src + c->n, static_cast<int64_t>(slots_.size()));
      for (int64_t i = 0; i < c->n; ++i) slots_[c->dst + i] = slots_[c->src + i];
    } else if (const auto* d = std::get_if<DropSlots>(&a)) {
      if (d->begin + d->n == static_cast<int64_t>(slots_.size())) {  // the tail, whole blocks or not
        slots_.resize(static_cast<size_t>(d->begin));
        return;
      }
      ASSERT_EQ(d->begin % block_, 0) << "drops are whole blocks";
      ASSERT_EQ(d->n % block_, 0) << "drops are whole blocks";
      ASSERT_LE(d->begin + d->n, static_cast<int64_t>(slots_.size()));
      slots_.erase(slots_.begin() + d->begin, slots_.begin() + d->begin + d->n);
    } else if (const auto* m = std::get_if<MoveSinks>(&a)) {
      ASSERT_LE(m->n, static_cast<int64_t>(slots_.size()));
      for (int64_t s = 0; s < m->n; ++s) {
        ASSERT_EQ(slots_[s].token, s) << "a sink slot must still hold its sink";
        slots_[s].rotated_at = m->pos_offset + s;  // re-rotated from the key as first written
      }
    } else if (const auto* p = std::get_if<Reposition>(&a)) {
      ASSERT_LE(p->begin + p->n, static_cast<int64_t>(slots_.size()));
      for (int64_t i = 0; i < p->n; ++i) slots_[p->begin + i].rotated_at += p->delta;
    } else if (const auto* r = std::get_if<Recompute>(&a)) {
      ASSERT_TRUE(layout_ != nullptr) << "Recompute needs the layout";
      ASSERT_EQ(r->begin + r->n, layout_->n_slots) << "Recompute rewrites the tail";
      ASSERT_LE(r->begin, static_cast<int64_t>(slots_.size()));
      slots_.resize(static_cast<size_t>(r->begin));
      for (const Segment& seg : layout_->segments)
        for (int64_t i = 0; i < seg.n; ++i)
          if (seg.slot_begin + i >= r->begin)
            slots_.push_back({seg.token_begin + i, layout_->pos_offset + seg.slot_begin + i});
      ++recomputes_;
    }
  }
  // Recompute rebuilds slots from the layout the state reached (set before applying its actions).
  void set_layout(const SeqLayout* l) { layout_ = l; }
  int recomputes() const { return recomputes_; }
  const std::vector<Slot>& slots() const { return slots_; }

 private:
  int64_t block_;
  std::vector<Slot> slots_;
  const SeqLayout* layout_ = nullptr;
  int recomputes_ = 0;
};

std::unique_ptr<PolicyState> make_state(const KvPolicyFactory& f, const std::string& spec, int32_t block) {
  auto parsed = parse_policy_spec(spec);
  EXPECT_TRUE(parsed.is_ok());
  auto policy = f.create(*parsed);
  EXPECT_TRUE(policy.is_ok()) << policy.status().message();
  auto state = (*policy)->make_state(block);
  EXPECT_TRUE(state.is_ok()) << state.status().message();
  return std::move(state).value();
}

// Drives a state with random appends and checks the simulated cache after every one.
void drive(PolicyState& st, int64_t sinks, int64_t window, int64_t block, uint32_t seed, int64_t total) {
  SimCache cache(block);
  std::mt19937 rng(seed);
  int64_t seen = 0;
  int slides = 0;
  while (seen < total) {
    const int64_t n = std::min<int64_t>(total - seen, 1 + static_cast<int64_t>(rng() % (rng() % 4 == 0 ? 200 : 3)));
    cache.append(seen, n, st.layout().pos_offset);
    seen += n;
    const std::vector<KvAction> actions = st.after_append(n);
    slides += !actions.empty();
    for (const KvAction& a : actions) {
      cache.apply(a);
      if (::testing::Test::HasFatalFailure()) return;
    }
    const SeqLayout& l = st.layout();
    ASSERT_TRUE(l.check().is_ok()) << l.check().message();
    ASSERT_EQ(l.n_seen, seen);
    ASSERT_EQ(l.n_slots, static_cast<int64_t>(cache.slots().size()));
    ASSERT_LE(l.n_slots, st.max_slots());
    // The cache holds the first min(S, seen) tokens, then the most recent ones, each at its own position.
    const int64_t n_sinks = std::min(sinks, seen);
    for (int64_t s = 0; s < l.n_slots; ++s) {
      const int64_t want = s < n_sinks ? s : seen - (l.n_slots - s);
      ASSERT_EQ(cache.slots()[s].token, want) << "slot " << s << " after " << seen << " tokens";
      ASSERT_EQ(cache.slots()[s].rotated_at, l.pos_offset + s) << "slot " << s;
      if (s >= n_sinks) {
        ASSERT_EQ(cache.slots()[s].rotated_at, want) << "a window key never moves";
      }
    }
    // At least `window` recent tokens are kept (or everything seen so far).
    ASSERT_GE(l.n_slots - n_sinks, std::min(window, seen - n_sinks));
    // The segments say the same.
    for (const Segment& seg : l.segments)
      for (int64_t i = 0; i < seg.n; ++i) ASSERT_EQ(cache.slots()[seg.slot_begin + i].token, seg.token_begin + i);
  }
  EXPECT_GE(slides, 3) << "the window should have slid several times";
}

TEST(SinkWindowState, CacheHoldsSinksAndWindowAtReindexedPositions) {
  for (int32_t block : {1, 16, 32}) {
    for (int64_t sinks : {0, 1, 4, 15, 16, 17, 40}) {
      for (int64_t window : {int64_t{block}, int64_t{2} * block - 1, int64_t{100}, int64_t{3} * block}) {
        if (window < block) continue;
        SCOPED_TRACE("block " + std::to_string(block) + " sinks " + std::to_string(sinks) + " window " +
                     std::to_string(window));
        auto st = make_state(kSinkWindowPolicy,
                             "sink_window:sinks=" + std::to_string(sinks) + ",window=" + std::to_string(window), block);
        EXPECT_EQ(st->max_slots(), sinks + window + block - 1);
        drive(*st, sinks, window, block, static_cast<uint32_t>(block * 1000 + sinks * 10 + window), 3000);
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST(SinkWindowState, OneBlockSlideWithPartialSinkBlockIsOneCopyOneDropOneRotation) {
  auto st = make_state(kSinkWindowPolicy, "sink_window:sinks=4,window=32", 16);
  EXPECT_TRUE(st->after_append(51).empty());  // 4 + 32 + 15: no whole block over yet
  const std::vector<KvAction> a = st->after_append(1);  // 52 = 4 + 32 + 16: one block over
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(std::get<CopySlots>(a[0]), (CopySlots{20, 4, 12}));  // block 1's tail into block 0 after the sinks
  EXPECT_EQ(std::get<DropSlots>(a[1]), (DropSlots{16, 16}));
  EXPECT_EQ(std::get<MoveSinks>(a[2]), (MoveSinks{4, 16}));
  EXPECT_EQ(st->layout().n_slots, 36);
  EXPECT_EQ(st->layout().pos_offset, 16);
  ASSERT_EQ(st->layout().segments.size(), 2u);
  EXPECT_EQ(st->layout().segments[1], (Segment{4, 32, 20, Segment::Kind::kWindow}));
}

TEST(SinkWindowState, LongAppendSlidesSeveralBlocksAtOnce) {
  auto st = make_state(kSinkWindowPolicy, "sink_window:sinks=16,window=64", 16);
  const std::vector<KvAction> a = st->after_append(16 + 64 + 5 * 16 + 3);
  ASSERT_EQ(a.size(), 2u);  // sinks fill whole blocks: no copy
  EXPECT_EQ(std::get<DropSlots>(a[0]), (DropSlots{16, 80}));
  EXPECT_EQ(std::get<MoveSinks>(a[1]), (MoveSinks{16, 80}));
  EXPECT_EQ(st->layout().n_slots, 83);
}

TEST(WindowState, IsSinkWindowWithoutSinks) {
  auto st = make_state(kWindowPolicy, "window:window=48", 16);
  drive(*st, 0, 48, 16, 5, 2000);
  auto st2 = make_state(kWindowPolicy, "window:window=48", 16);
  const std::vector<KvAction> a = st2->after_append(48 + 16);
  ASSERT_EQ(a.size(), 1u);  // nothing to copy or move: one block released
  EXPECT_EQ(std::get<DropSlots>(a[0]), (DropSlots{0, 16}));
}

TEST(RecomputeWindowState, RebuildsTheLastWindowMinusOneTokensAfterEveryAppendPastIt) {
  for (int64_t window : {1, 2, 17, 64}) {
    SCOPED_TRACE("window " + std::to_string(window));
    auto st = make_state(kRecomputeWindowPolicy, "recompute_window:window=" + std::to_string(window), 16);
    EXPECT_EQ(st->max_slots(), window - 1);
    SimCache cache(16);
    cache.set_layout(&st->layout());
    std::mt19937 rng(static_cast<uint32_t>(window));
    int64_t seen = 0;
    int expected_recomputes = 0;
    while (seen < 500) {
      const int64_t n = 1 + static_cast<int64_t>(rng() % (rng() % 4 == 0 ? 40 : 2));
      cache.append(seen, n, st->layout().pos_offset);
      seen += n;
      const std::vector<KvAction> actions = st->after_append(n);
      expected_recomputes += seen > window - 1;
      for (const KvAction& a : actions) {
        cache.apply(a);
        if (HasFatalFailure()) return;
      }
      const SeqLayout& l = st->layout();
      ASSERT_TRUE(l.check().is_ok()) << l.check().message();
      ASSERT_EQ(l.n_slots, std::min(seen, window - 1));
      ASSERT_EQ(static_cast<int64_t>(cache.slots().size()), l.n_slots);
      for (int64_t s = 0; s < l.n_slots; ++s) {
        ASSERT_EQ(cache.slots()[s].token, seen - l.n_slots + s) << "slot " << s;
        ASSERT_EQ(cache.slots()[s].rotated_at, l.pos_offset + s) << "slot " << s;
      }
    }
    EXPECT_EQ(cache.recomputes(), expected_recomputes);
    EXPECT_GE(cache.recomputes(), 3);
  }
}

TEST(RecomputeWindowPolicy, SpecsAndErrors) {
  auto d = make_kv_policy("recompute_window");
  ASSERT_TRUE(d.is_ok());
  EXPECT_EQ((*d)->spec(), "recompute_window:window=2048");
  EXPECT_TRUE((*d)->lifts_context_limit());
  for (const char* bad : {"recompute_window:window=0", "recompute_window:sinks=4", "recompute_window:window=x"}) {
    auto r = make_kv_policy(bad);
    ASSERT_FALSE(r.is_ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("recompute_window"), std::string::npos) << r.status().message();
  }
  EXPECT_NE(make_kv_policy("recompute_window:sinks=4").status().message().find("allowed: window"), std::string::npos);
}

TEST(KeepAllState, NeverActs) {
  auto policy = make_kv_policy("full");
  ASSERT_TRUE(policy.is_ok());
  auto st = (*policy)->make_state(16);
  ASSERT_TRUE(st.is_ok());
  for (int i = 0; i < 100; ++i) EXPECT_TRUE((*st)->after_append(37).empty());
  EXPECT_EQ((*st)->layout().n_slots, 3700);
  EXPECT_EQ((*st)->max_slots(), -1);
  EXPECT_TRUE((*st)->layout().check().is_ok());
}

TEST(SinkWindowPolicy, SpecsAndErrors) {
  auto spec = [](const KvPolicyFactory& f, const std::string& s) {
    auto parsed = parse_policy_spec(s);
    EXPECT_TRUE(parsed.is_ok()) << s;
    return f.create(*parsed);
  };
  auto d = spec(kSinkWindowPolicy, "sink_window");
  ASSERT_TRUE(d.is_ok());
  EXPECT_EQ((*d)->spec(), "sink_window:sinks=4,window=2044");
  EXPECT_TRUE((*d)->lifts_context_limit());
  EXPECT_EQ((*spec(kWindowPolicy, "window:window=512"))->spec(), "window:window=512");
  for (const char* bad : {"sink_window:sinks=-1", "sink_window:window=0", "sink_window:window=abc",
                          "sink_window:window=99999999999999999999", "sink_window:size=3", "window:sinks=4"}) {
    auto r = spec(std::string(bad).rfind("window:", 0) == 0 ? kWindowPolicy : kSinkWindowPolicy, bad);
    ASSERT_FALSE(r.is_ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("kv policy"), std::string::npos) << r.status().message();
  }
  auto small = (*spec(kSinkWindowPolicy, "sink_window:sinks=4,window=8"))->make_state(16);
  ASSERT_FALSE(small.is_ok());
  EXPECT_NE(small.status().message().find("smaller than one KV block"), std::string::npos) << small.status().message();
}

TEST(SeqLayout, CheckFindsBrokenInvariants) {
  SeqLayout l;
  l.n_slots = 10;
  l.n_seen = 20;
  l.segments = {{0, 4, 0, Segment::Kind::kSink}, {4, 6, 14, Segment::Kind::kWindow}};
  l.pos_offset = 10;
  EXPECT_TRUE(l.check().is_ok());
  l.pos_offset = 11;  // more than the tokens dropped
  EXPECT_FALSE(l.check().is_ok());
  l.pos_offset = 10;
  l.segments[1].slot_begin = 5;
  EXPECT_FALSE(l.check().is_ok());
  l.segments[1] = {4, 6, 2, Segment::Kind::kWindow};  // tokens overlap the sinks
  EXPECT_FALSE(l.check().is_ok());
  l.segments[1] = {4, 6, 15, Segment::Kind::kWindow};  // past n_seen
  EXPECT_FALSE(l.check().is_ok());
  l.segments[1] = {4, 5, 14, Segment::Kind::kWindow};  // does not cover n_slots
  EXPECT_FALSE(l.check().is_ok());
}

// compress (SnapKV): nothing happens while the prompt streams in; after it, the state keeps the first block,
// the blocks of the observed rows and the partial last block, and the blocks whose pooled attention mass is
// highest until keep% of the prompt; every kept key stays at its own position and the next token continues
// at the prompt's next position.
TEST(CompressState, KeepsTheMostAttendedSlotsAtTheirOwnPositions) {
  constexpr int64_t kBlock = 16;
  auto st = make_state(kCompressPolicy, "compress:keep=25,obs=20", kBlock);
  SimCache cache(kBlock);
  const int64_t n = 16 * 20 + 5;  // 20 whole blocks and 5 slots
  for (int64_t done = 0; done < n; done += 64) {
    const int64_t k = std::min<int64_t>(64, n - done);
    cache.append(done, k, st->layout().pos_offset);
    EXPECT_TRUE(st->after_append(k).empty());
  }
  EXPECT_EQ(st->observe_rows(), 20);
  std::vector<float> mass(static_cast<size_t>(n), 0.01f);
  mass[0] = 4.0f;    // the sink: pooling (5 slots after an attended one, 1 before) keeps 0..5
  mass[100] = 5.0f;  // a needle: pooling keeps 99..105
  mass[200] = 3.0f;  // another: 199..205
  const std::vector<KvAction> actions = st->after_prompt(mass);
  for (const KvAction& a : actions) cache.apply(a);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(st->observe_rows(), 0) << "observes once";
  const SeqLayout& l = st->layout();
  ASSERT_TRUE(l.check().is_ok()) << l.check().message();
  // keep 25% of 325 slots = 82: the 20 observed rows, then by pooled mass 99..105 (5.0), 0..5 (4.0),
  // 199..205 (3.0), and the 42 earliest of the rest (ties keep the earlier slot): 6..47.
  std::vector<int64_t> want;
  for (int64_t t = 0; t < 48; ++t) want.push_back(t);
  for (int64_t t = 99; t <= 105; ++t) want.push_back(t);
  for (int64_t t = 199; t <= 205; ++t) want.push_back(t);
  for (int64_t t = n - 20; t < n; ++t) want.push_back(t);
  std::vector<int64_t> kept_tokens;
  for (const Slot& sl : cache.slots()) kept_tokens.push_back(sl.token);
  EXPECT_EQ(kept_tokens, want);
  EXPECT_EQ(l.n_slots, 82);
  for (const Slot& sl : cache.slots()) EXPECT_EQ(sl.rotated_at, sl.token) << "kept keys never move";
  EXPECT_EQ(l.pos_offset + l.n_slots, n) << "the next token continues at the prompt's next position";
  for (const Segment& seg : l.segments)
    for (int64_t i = 0; i < seg.n; ++i) EXPECT_EQ(cache.slots()[seg.slot_begin + i].token, seg.token_begin + i);
  // Decoding afterwards appends at the end and never acts again.
  cache.append(n, 1, l.pos_offset);
  EXPECT_TRUE(st->after_append(1).empty());
  EXPECT_TRUE(st->after_prompt(mass).empty());
  EXPECT_EQ(cache.slots().back().rotated_at, n);
  // A budget below the observed rows keeps the last half of the budget of them, and the rest by mass.
  auto small = make_state(kCompressPolicy, "compress:keep=12,obs=32", kBlock);
  small->after_append(100);
  std::vector<float> m2(100, 0.0f);
  m2[40] = 1.0f;
  SimCache c2(kBlock);
  c2.append(0, 100, 0);
  for (const KvAction& a : small->after_prompt(m2)) c2.apply(a);
  ASSERT_FALSE(HasFatalFailure());
  std::vector<int64_t> got2;
  for (const Slot& sl : c2.slots()) got2.push_back(sl.token);
  EXPECT_EQ(got2, (std::vector<int64_t>{39, 40, 41, 42, 43, 44, 94, 95, 96, 97, 98, 99})) << "12 of 100: 6 + 6";
}

TEST(RetainState, KeepsTheProbedBlocksWithinItsBudgetPackedAtConsecutivePositions) {
  constexpr int64_t kBlock = 16;
  auto st = make_state(kRetainPolicy, "retain:budget=160,probe=8,sinks=16,local=48", kBlock);
  EXPECT_EQ(st->probe_rows(), 8);
  EXPECT_EQ(st->max_slots(), 168);
  SimCache cache(kBlock);
  std::mt19937 rng(7);
  const int64_t needle = 300;  // token 300 (block 18 of the stream) is what the probe attends to
  int64_t seen = 0, prunes = 0;
  while (seen < 3000) {
    const int64_t k = 40 + static_cast<int64_t>(rng() % 100);
    cache.append(seen, k, st->layout().pos_offset);
    seen += k;
    EXPECT_TRUE(st->after_append(k).empty()) << "appends never act; the observation does";
    // The probe's attention: the block holding the needle, plus noise elsewhere.
    std::vector<float> mass(static_cast<size_t>(cache.slots().size() / kBlock + 2), 0.0f);
    for (float& m : mass) m = static_cast<float>(rng() % 1000) * 1e-4f;
    for (size_t s = 0; s < cache.slots().size(); ++s)
      if (cache.slots()[s].token == needle) mass[s / kBlock] = 5.0f;
    const std::vector<KvAction> actions = st->after_observe(mass);
    prunes += !actions.empty();
    for (const KvAction& a : actions) cache.apply(a);
    ASSERT_FALSE(HasFatalFailure());
    const SeqLayout& l = st->layout();
    ASSERT_TRUE(l.check().is_ok()) << l.check().message();
    ASSERT_EQ(l.n_seen, seen);
    ASSERT_EQ(l.n_slots, static_cast<int64_t>(cache.slots().size()));
    ASSERT_LE(l.n_slots, 160) << "within the budget after every observation";
    EXPECT_EQ(l.pos_offset, 0);
    for (size_t s = 0; s < cache.slots().size(); ++s)
      ASSERT_EQ(cache.slots()[s].rotated_at, static_cast<int64_t>(s)) << "packed: slot s at position s";
    for (const Segment& seg : l.segments)
      for (int64_t i = 0; i < seg.n; ++i) ASSERT_EQ(cache.slots()[seg.slot_begin + i].token, seg.token_begin + i);
    for (int64_t t = 0; t < 16; ++t) ASSERT_EQ(cache.slots()[t].token, t) << "the sinks stay";
    for (int64_t i = 1; i <= std::min<int64_t>(48, seen); ++i)
      ASSERT_EQ(cache.slots()[cache.slots().size() - i].token, seen - i) << "the local window stays";
    if (seen > needle + 64) {
      bool has = false;
      for (const Slot& sl : cache.slots()) has = has || sl.token == needle;
      ASSERT_TRUE(has) << "the probed needle is kept after " << seen << " tokens";
    }
  }
  EXPECT_GE(prunes, 20);
  // Nothing to drop within the budget.
  auto small = make_state(kRetainPolicy, "retain:budget=160,probe=8,sinks=16,local=48", kBlock);
  small->after_append(150);
  EXPECT_TRUE(small->after_observe(std::vector<float>(10, 1.0f)).empty());
}

TEST(RetainPolicy, SpecsAndErrors) {
  auto p = make_kv_policy("retain");
  ASSERT_TRUE(p.is_ok()) << p.status().message();
  EXPECT_EQ((*p)->spec(), "retain:budget=512,probe=32,sinks=16,local=128");
  EXPECT_TRUE((*p)->lifts_context_limit());
  auto tight = make_kv_policy("retain:budget=100,sinks=16,local=64");
  ASSERT_TRUE(tight.is_ok());
  auto st = (*tight)->make_state(16);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.status().message().find("make it at least 128"), std::string::npos) << st.status().message();
  EXPECT_FALSE(make_kv_policy("retain:window=4").is_ok());
  EXPECT_FALSE(make_kv_policy("retain:probe=0").is_ok());
  EXPECT_FALSE(make_kv_policy("retain:budget=x").is_ok());
}

}  // namespace
}  // namespace cw::kv
