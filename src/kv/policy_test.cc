#include "kv/policy.h"

#include <gtest/gtest.h>

namespace cw::kv {
namespace {

TEST(KvPolicyTest, ParsesSpecs) {
  auto s = parse_policy_spec("sink_window:sinks=4,window=2044");
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(s->name, "sink_window");
  EXPECT_EQ(s->params.size(), 2u);
  EXPECT_EQ(s->params.at("sinks"), "4");
  EXPECT_EQ(s->params.at("window"), "2044");
  auto plain = parse_policy_spec("full");
  ASSERT_TRUE(plain.is_ok());
  EXPECT_TRUE(plain->params.empty());
  for (const char* bad : {"", ":a=1", "x:", "x:a", "x:=1", "x:a=", "x:a=1,", "x:a=1,a=2"}) {
    auto r = parse_policy_spec(bad);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(KvPolicyTest, RegistryCreatesFull) {
  EXPECT_NE(supported_kv_policies().find("full"), std::string::npos);
  auto p = make_kv_policy("full");
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ((*p)->spec(), "full");
  auto unknown = make_kv_policy("nope");
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("supported: full"), std::string::npos) << unknown.status().message();
  EXPECT_EQ(make_kv_policy("full:window=3").status().code(), StatusCode::kInvalidArgument);
}

TEST(KvPolicyTest, FullPolicyAnswers) {
  auto p = make_kv_policy("full");
  ASSERT_TRUE(p.is_ok());
  const KvPolicy& full = **p;
  const Placement same = full.place_reused({0, 0, 64});
  EXPECT_TRUE(same.reuse);
  EXPECT_EQ(same.position_delta, 0);
  EXPECT_TRUE(same.recompute.empty());
  EXPECT_FALSE(full.place_reused({0, 32, 64}).reuse);
}

}  // namespace
}  // namespace cw::kv
