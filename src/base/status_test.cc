#include "base/status.h"

#include <gtest/gtest.h>

namespace cw {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return invalid_argument("must be positive, got " + std::to_string(v));
  return v * 2;
}

Result<int> chain(int v) {
  CW_ASSIGN_OR_RETURN(int doubled, parse_positive(v));
  return doubled + 1;
}

TEST(Status, OkAndError) {
  EXPECT_TRUE(Status::ok().is_ok());
  Status s = data_loss("bad header");
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(s.to_string(), "malformed data: bad header");
}

TEST(Result, PropagatesErrorsAndValues) {
  auto ok = chain(3);
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ(*ok, 7);
  auto bad = chain(-1);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("-1"), std::string::npos);
}

TEST(CheckDeathTest, AbortsWithMessage) {
  EXPECT_DEATH(CW_CHECK_MSG(1 + 1 == 3, "arithmetic"), "arithmetic");
}

}  // namespace
}  // namespace cw
