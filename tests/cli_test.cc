#include <gtest/gtest.h>

#include "support/testing.h"

namespace cw {
namespace {

TEST(Cli, UnknownCommandExitsTwo) {
  auto r = testing::run_command(testing::chunkwise_binary() + " frobnicate");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown command"), std::string::npos);
}

}  // namespace
}  // namespace cw
