#include "gguf/reader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "gguf/writer.h"
#include "support/testing.h"

namespace cw::gguf {
namespace {

std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

std::vector<uint8_t> sample_file() {
  Writer w;
  w.add_string("general.architecture", "llama")
      .add_u8("t.u8", 200)
      .add_i8("t.i8", -5)
      .add_u16("t.u16", 65000)
      .add_i16("t.i16", -30000)
      .add_u32("t.u32", 4000000000u)
      .add_i32("t.i32", -2000000000)
      .add_u64("t.u64", 1ull << 60)
      .add_i64("t.i64", -(1ll << 60))
      .add_f32("t.f32", 0.25f)
      .add_f64("t.f64", -1.5)
      .add_bool("t.bool", true)
      .add_string_array("t.strs", {"a", "", "ünï"})
      .add_f32_array("t.f32s", {1.0f, -2.0f})
      .add_i32_array("t.i32s", {7, -8, 9})
      .add_i32_array_array("t.nested", {{1, 2}, {}, {3}});
  EXPECT_TRUE(w.add_tensor("a", TensorType::kF32, {4, 2}, f32_bytes({0, 1, 2, 3, 4, 5, 6, 7})).is_ok());
  std::vector<uint8_t> q8(34 * 2, 0);
  EXPECT_TRUE(w.add_tensor("b", TensorType::kQ8_0, {64}, q8).is_ok());
  return w.bytes();
}

TEST(Reader, RoundTripsEveryValueType) {
  auto bytes = sample_file();
  auto r = File::parse(bytes);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const File& f = **r;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(*f.get_string("general.architecture"), "llama");
  EXPECT_EQ(*f.get_uint("t.u8"), 200u);
  EXPECT_EQ(*f.get_int("t.i8"), -5);
  EXPECT_EQ(*f.get_uint("t.u16"), 65000u);
  EXPECT_EQ(*f.get_int("t.i16"), -30000);
  EXPECT_EQ(*f.get_uint("t.u32"), 4000000000u);
  EXPECT_EQ(*f.get_int("t.i32"), -2000000000);
  EXPECT_EQ(*f.get_uint("t.u64"), 1ull << 60);
  EXPECT_EQ(*f.get_int("t.i64"), -(1ll << 60));
  EXPECT_EQ(*f.get_float("t.f32"), 0.25);
  EXPECT_EQ(*f.get_float("t.f64"), -1.5);
  EXPECT_TRUE(*f.get_bool("t.bool"));
  const Value* strs = f.find("t.strs");
  ASSERT_NE(strs, nullptr);
  ASSERT_EQ(strs->strings().size(), 3u);
  EXPECT_EQ(strs->strings()[2], "ünï");
  EXPECT_EQ(*f.find("t.f32s")->to_f32_vector(), (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(*f.find("t.i32s")->to_i64_vector(), (std::vector<int64_t>{7, -8, 9}));
  const Value* nested = f.find("t.nested");
  ASSERT_EQ(nested->arrays().size(), 3u);
  EXPECT_EQ(nested->arrays()[0].array_size(), 2u);
  EXPECT_EQ(nested->arrays()[1].array_size(), 0u);
  EXPECT_EQ(*nested->arrays()[2].to_i64_vector(), (std::vector<int64_t>{3}));

  ASSERT_EQ(f.tensors().size(), 2u);
  const TensorInfo* a = f.find_tensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->shape, (std::vector<uint64_t>{4, 2}));
  EXPECT_EQ(a->n_elements, 8u);
  EXPECT_EQ(a->n_bytes, 32u);
  EXPECT_EQ((a->data - bytes.data()) % 32, 0);
  float x;
  std::memcpy(&x, a->data + 4 * 5, 4);
  EXPECT_EQ(x, 5.0f);
  EXPECT_EQ(f.find_tensor("b")->n_bytes, 68u);
}

TEST(Reader, TypedGettersReportKeyAndType) {
  auto bytes = sample_file();
  auto f = File::parse(bytes);
  ASSERT_TRUE(f.is_ok());
  auto missing = (*f)->get_int("nope");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  auto wrong = (*f)->get_string("t.u8");
  ASSERT_FALSE(wrong.is_ok());
  EXPECT_NE(wrong.status().message().find("t.u8"), std::string::npos);
  EXPECT_FALSE((*f)->get_uint("t.i8").is_ok());  // negative as unsigned
  EXPECT_EQ(*(*f)->get_int_or("absent", 42), 42);
}

TEST(Reader, EveryTruncationIsAnErrorNotACrash) {
  auto bytes = sample_file();
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(n));
    auto r = File::parse(cut);
    // Cutting only trailing alignment padding of the last tensor still leaves a complete tensor.
    if (r.is_ok()) {
      for (const auto& t : (*r)->tensors()) EXPECT_LE(t.data + t.n_bytes, cut.data() + cut.size());
      continue;
    }
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << n << ": " << r.status().to_string();
  }
}

// Patches the u64 at `offset` of a copy of `bytes`.
std::vector<uint8_t> patch_u64(std::vector<uint8_t> bytes, size_t offset, uint64_t v) {
  std::memcpy(bytes.data() + offset, &v, 8);
  return bytes;
}
std::vector<uint8_t> patch_u32(std::vector<uint8_t> bytes, size_t offset, uint32_t v) {
  std::memcpy(bytes.data() + offset, &v, 4);
  return bytes;
}

TEST(Reader, RejectsHugeCounts) {
  auto bytes = sample_file();
  for (uint64_t huge : {uint64_t{1} << 40, ~uint64_t{0}, uint64_t{1} << 62}) {
    auto r1 = File::parse(patch_u64(bytes, 8, huge));  // n_tensors
    ASSERT_FALSE(r1.is_ok());
    EXPECT_NE(r1.status().message().find("n_tensors"), std::string::npos) << r1.status().message();
    auto r2 = File::parse(patch_u64(bytes, 16, huge));  // n_kv
    ASSERT_FALSE(r2.is_ok());
    EXPECT_NE(r2.status().message().find("n_kv"), std::string::npos);
    auto r3 = File::parse(patch_u64(bytes, 24, huge));  // first key length
    ASSERT_FALSE(r3.is_ok());
    EXPECT_NE(r3.status().message().find("offset 24"), std::string::npos) << r3.status().message();
  }
}

TEST(Reader, RejectsBadMagicVersionAndTypes) {
  auto bytes = sample_file();
  auto bad_magic = bytes;
  bad_magic[0] = 'X';
  EXPECT_FALSE(File::parse(bad_magic).is_ok());
  auto v1 = File::parse(patch_u32(bytes, 4, 1));
  ASSERT_FALSE(v1.is_ok());
  EXPECT_EQ(v1.status().code(), StatusCode::kUnimplemented);
  // First kv: key length (8) + "general.architecture" (20) at offset 24; its value type follows.
  auto bad_vtype = File::parse(patch_u32(bytes, 24 + 8 + 20, 99));
  ASSERT_FALSE(bad_vtype.is_ok());
  EXPECT_NE(bad_vtype.status().message().find("unknown value type 99"), std::string::npos);
}

TEST(Reader, RejectsBadTensorInfos) {
  auto make = [](TensorType type, std::vector<uint64_t> shape, size_t n_bytes) {
    Writer w;
    EXPECT_TRUE(w.add_tensor("t", type, std::move(shape), std::vector<uint8_t>(n_bytes)).is_ok());
    return w.bytes();
  };
  auto good = make(TensorType::kF32, {8}, 32);
  ASSERT_TRUE(File::parse(good).is_ok());
  // Tensor info layout: header 24, name len 8 + "t" 1, n_dims 4 at 33, ne[0] 8 at 37, type 4 at 45, offset at 49.
  auto bad_type = File::parse(patch_u32(good, 45, 77));
  ASSERT_FALSE(bad_type.is_ok());
  EXPECT_EQ(bad_type.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(bad_type.status().message().find("Q4_K"), std::string::npos);  // lists supported types
  auto misaligned = File::parse(patch_u64(good, 49, 4));
  ASSERT_FALSE(misaligned.is_ok());
  EXPECT_NE(misaligned.status().message().find("alignment"), std::string::npos);
  auto past_end = File::parse(patch_u64(good, 49, 64));
  ASSERT_FALSE(past_end.is_ok());
  EXPECT_NE(past_end.status().message().find("past the end"), std::string::npos);
  auto huge_dim = File::parse(patch_u64(good, 37, uint64_t{1} << 62));
  ASSERT_FALSE(huge_dim.is_ok());
  auto zero_dims = File::parse(patch_u32(good, 33, 0));
  ASSERT_FALSE(zero_dims.is_ok());
  auto many_dims = File::parse(patch_u32(good, 33, 1000000));
  ASSERT_FALSE(many_dims.is_ok());
  auto q = make(TensorType::kQ8_0, {32}, 34);
  auto not_block = File::parse(patch_u64(q, 37, 33));
  ASSERT_FALSE(not_block.is_ok());
  EXPECT_NE(not_block.status().message().find("block size"), std::string::npos);
}

TEST(Reader, RejectsDuplicatesAndBadAlignment) {
  Writer w;
  w.add_u32("k", 1).add_u32("k", 2);
  auto dup = w.bytes();
  EXPECT_FALSE(File::parse(dup).is_ok());
  Writer w2;
  w2.add_u32("general.alignment", 24);
  auto bad_align = w2.bytes();
  EXPECT_FALSE(File::parse(bad_align).is_ok());
  Writer w3;
  w3.set_alignment(64);
  ASSERT_TRUE(w3.add_tensor("x", TensorType::kF32, {3}, std::vector<uint8_t>(12)).is_ok());
  ASSERT_TRUE(w3.add_tensor("y", TensorType::kF32, {3}, std::vector<uint8_t>(12)).is_ok());
  auto aligned = w3.bytes();
  auto f = File::parse(aligned);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ((*f)->alignment(), 64u);
  EXPECT_EQ((*f)->find_tensor("y")->offset, 64u);
  EXPECT_EQ((*f)->data_offset() % 64, 0u);
}

TEST(Reader, OpensEverySharedGguf) {
  CW_REQUIRE_SHARED_DATA(dir);
  int n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.path().extension() != ".gguf") continue;
    auto f = File::open(e.path().string());
    ASSERT_TRUE(f.is_ok()) << e.path() << ": " << f.status().to_string();
    EXPECT_GT((*f)->metadata().size(), 0u) << e.path();
    ++n;
  }
  EXPECT_GE(n, 20);
}

TEST(Reader, OpenReportsMissingFile) {
  auto r = File::open("/nonexistent/model.gguf");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace cw::gguf
