// Selectors on hand-computed cases.
#include "retrieval/select.h"

#include <gtest/gtest.h>

namespace cw::retrieval {
namespace {

// One document "c0 c1 ... c5" (chunk i = "ci ", n_tokens = i + 1) and a second "d0 d1".
struct Fixture {
  std::unique_ptr<Store> store;
  std::vector<int64_t> c, d;  // chunk ids by index
  std::string text_c = "c0 c1 c2 c3 c4 c5 ", text_d = "d0 d1 ";
  Fixture() {
    store = std::move(Store::open(":memory:", true)).value();
    auto add = [&](const std::string& path, const std::string& text, int n) {
      DocumentInput doc;
      doc.path = path;
      doc.text = text;
      doc.chunker = "test";
      for (int i = 0; i < n; ++i) doc.chunks.push_back({i, 3 * i, 3 * i + 3, 3 * i, 3 * i + 3, i + 1});
      EXPECT_TRUE(store->ingest(doc).is_ok());
    };
    add("c", text_c, 6);
    add("d", text_d, 2);
    const auto rows_c = store->chunks_of("c"), rows_d = store->chunks_of("d");
    for (const auto& r : *rows_c) c.push_back(r.chunk_id);
    for (const auto& r : *rows_d) d.push_back(r.chunk_id);
  }
  std::vector<int64_t> run(const std::string& spec, const std::vector<Hit>& hits) {
    auto sel = make_selector(spec);
    EXPECT_TRUE(sel.is_ok()) << spec << ": " << sel.status().message();
    auto r = (*sel)->select(hits, *store);
    EXPECT_TRUE(r.is_ok()) << r.status().message();
    std::vector<int64_t> ids;
    for (const Hit& h : *r) ids.push_back(h.chunk_id);
    return ids;
  }
};

TEST(SelectTest, TopK) {
  Fixture f;
  const std::vector<Hit> hits = {{f.c[3], 9}, {f.c[1], 8}, {f.d[0], 7}};
  EXPECT_EQ(f.run("topk:k=2", hits), (std::vector<int64_t>{f.c[3], f.c[1]}));
  EXPECT_EQ(f.run("topk:k=10", hits).size(), 3u);
  EXPECT_EQ(f.run("topk", hits).size(), 3u);  // default k = 5
  EXPECT_EQ((*make_selector("topk:k=7"))->candidates(), 7);
}

TEST(SelectTest, GradientCutsAtTheSteepestDrop) {
  Fixture f;
  // Drops: 1, 4, 0.5, 0.5 -> keep 2.
  const std::vector<Hit> hits = {{f.c[0], 10}, {f.c[1], 9}, {f.c[2], 5}, {f.c[3], 4.5}, {f.c[4], 4}};
  EXPECT_EQ(f.run("gradient", hits), (std::vector<int64_t>{f.c[0], f.c[1]}));
  // min=3: c in [3, 4]: drops 0.5 (c=3), 0.5 (c=4) -> the first, keep 3.
  EXPECT_EQ(f.run("gradient:min=3,max=5", hits).size(), 3u);
  // max=2: only c=1 is allowed (drop 1) -> keep 1.
  EXPECT_EQ(f.run("gradient:max=2", hits), (std::vector<int64_t>{f.c[0]}));
  // Fewer hits than min+1: all kept.
  EXPECT_EQ(f.run("gradient:min=4", {{f.c[0], 3}, {f.c[1], 1}}).size(), 2u);
  EXPECT_TRUE(f.run("gradient", {}).empty());
}

TEST(SelectTest, BudgetGreedyByScore) {
  Fixture f;
  // n_tokens: c[i] = i + 1. Budget 7: c5 (6) fits -> 6; c4 (5) no; c3 (4) no; c0 (1) fits -> 7; stop.
  const std::vector<Hit> hits = {{f.c[5], 9}, {f.c[4], 8}, {f.c[3], 7}, {f.c[0], 6}, {f.c[1], 5}};
  EXPECT_EQ(f.run("budget:tokens=7", hits), (std::vector<int64_t>{f.c[5], f.c[0]}));
  EXPECT_EQ(f.run("budget:tokens=5,candidates=2", hits), (std::vector<int64_t>{f.c[4]}));
  EXPECT_TRUE(f.run("budget:tokens=3", {{f.c[5], 9}, {f.c[4], 8}}).empty());  // nothing fits
}

TEST(SelectTest, NeighborsExpandMergeAndDeduplicate) {
  Fixture f;
  const std::vector<Hit> hits = {{f.c[2], 9}, {f.c[3], 8}, {f.d[0], 7}, {f.c[5], 6}};
  // base topk:k=3 keeps c2, c3, d0; n=1 adds c1, c3 (c2's), then c4 (c3's), then d1 (d0's).
  EXPECT_EQ(f.run("neighbors:n=1,base=topk:k=3", hits),
            (std::vector<int64_t>{f.c[1], f.c[2], f.c[3], f.c[4], f.d[0], f.d[1]}));
  EXPECT_EQ(f.run("neighbors:n=0,base=topk:k=2", hits), (std::vector<int64_t>{f.c[2], f.c[3]}));
  // Document edges: c5 with n=2 -> c3, c4, c5.
  EXPECT_EQ(f.run("neighbors:n=2,base=topk:k=1", {{f.c[5], 1}}), (std::vector<int64_t>{f.c[3], f.c[4], f.c[5]}));
  // A base with commas.
  EXPECT_EQ(f.run("neighbors:n=1,base=gradient:min=1,max=2", hits).size(), 3u);
  // Scores are inherited from the hit.
  auto sel = make_selector("neighbors:n=1,base=topk:k=1");
  auto r = (*sel)->select(hits, *f.store);
  ASSERT_TRUE(r.is_ok());
  for (const Hit& h : *r) EXPECT_EQ(h.score, 9);
}

TEST(SelectTest, BadSpecsAreOneLineErrors) {
  for (const char* spec : {"", "nope", "topk:k=0", "topk:k=x", "topk:n=3", "topk:k", "gradient:min=5,max=2",
                           "budget", "budget:tokens=-1", "neighbors:base=nope", "neighbors:base=neighbors:n=1",
                           "topk:k=1,k=2"}) {
    auto s = make_selector(spec);
    ASSERT_FALSE(s.is_ok()) << spec;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.status().message().find('\n'), std::string::npos);
  }
  EXPECT_NE(make_selector("nope").status().message().find("topk:k=K"), std::string::npos);
  EXPECT_NE(make_selector("topk:n=3").status().message().find("keys: k"), std::string::npos);
}

}  // namespace
}  // namespace cw::retrieval
