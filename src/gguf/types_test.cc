#include "gguf/types.h"

#include <gtest/gtest.h>

namespace cw::gguf {
namespace {

TEST(Types, BlockSizesAndBytes) {
  struct Expect {
    const char* name;
    uint32_t id, block, bytes;
  };
  const Expect table[] = {{"F32", 0, 1, 4},      {"F16", 1, 1, 2},      {"BF16", 30, 1, 2},
                          {"Q4_0", 2, 32, 18},   {"Q4_1", 3, 32, 20},   {"Q5_0", 6, 32, 22},
                          {"Q5_1", 7, 32, 24},   {"Q8_0", 8, 32, 34},   {"Q2_K", 10, 256, 84},
                          {"Q3_K", 11, 256, 110}, {"Q4_K", 12, 256, 144}, {"Q5_K", 13, 256, 176},
                          {"Q6_K", 14, 256, 210}, {"Q8_K", 15, 256, 292}};
  for (const auto& e : table) {
    auto t = type_traits(e.id);
    ASSERT_TRUE(t.has_value()) << e.name;
    EXPECT_STREQ(t->name, e.name);
    EXPECT_EQ(t->block_size, e.block) << e.name;
    EXPECT_EQ(t->block_bytes, e.bytes) << e.name;
    auto by_name = type_from_name(e.name);
    ASSERT_TRUE(by_name.has_value());
    EXPECT_EQ(static_cast<uint32_t>(*by_name), e.id);
  }
  EXPECT_FALSE(type_traits(4).has_value());  // removed Q4_2
  EXPECT_FALSE(type_traits(1000).has_value());
  EXPECT_EQ(type_from_name("q4_k"), TensorType::kQ4_K);
  EXPECT_FALSE(type_from_name("q4_k_m").has_value());
}

TEST(Types, RowBytes) {
  EXPECT_EQ(row_bytes(TensorType::kQ4_K, 512), 288u);
  EXPECT_EQ(row_bytes(TensorType::kF16, 3), 6u);
  EXPECT_FALSE(row_bytes(TensorType::kQ8_0, 33).has_value());
}

}  // namespace
}  // namespace cw::gguf
