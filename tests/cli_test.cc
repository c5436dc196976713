// End-to-end tests of the chunkwise binary: exit codes, one-line errors, and output shapes.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "gguf/writer.h"
#include "support/testing.h"

namespace cw {
namespace {

using testing::chunkwise_binary;
using testing::run_command;

std::string write_temp(const std::string& name, const std::vector<uint8_t>& bytes) {
  std::string path = testing::temp_dir() + "/" + name;
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                              static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::vector<uint8_t> small_model_bytes() {
  gguf::Writer w;
  w.add_string("general.architecture", "llama").add_string_array("tokenizer.ggml.tokens", {"a", "b", "c"});
  std::vector<uint8_t> data(16 * 4, 0);
  EXPECT_TRUE(w.add_tensor("token_embd.weight", gguf::TensorType::kF32, {16}, data).is_ok());
  return w.bytes();
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

TEST(Cli, UnknownCommandExitsTwo) {
  auto r = run_command(chunkwise_binary() + " frobnicate");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown command"), std::string::npos);
}

TEST(Cli, HelpListsCommands) {
  auto r = run_command(chunkwise_binary() + " --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("inspect"), std::string::npos);
  EXPECT_NE(r.out.find("tokenize"), std::string::npos);
  auto r2 = run_command(chunkwise_binary() + " inspect --help");
  EXPECT_EQ(r2.exit_code, 0);
  EXPECT_NE(r2.out.find("--json"), std::string::npos);
}

TEST(Cli, InspectShowsMetadataAndTensors) {
  std::string path = write_temp("small.gguf", small_model_bytes());
  auto r = run_command(chunkwise_binary() + " inspect " + path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("general.architecture"), std::string::npos);
  EXPECT_NE(r.out.find("array<string>[3]"), std::string::npos);
  EXPECT_NE(r.out.find("token_embd.weight"), std::string::npos);
  auto j = run_command(chunkwise_binary() + " inspect --json " + path);
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_EQ(j.out.front(), '{');
  EXPECT_NE(j.out.find("\"tensors\":[{\"name\":\"token_embd.weight\",\"type\":\"F32\",\"shape\":[16]"),
            std::string::npos)
      << j.out;
}

TEST(Cli, InspectMalformedFilesGiveOneLineErrorAndExitTwo) {
  auto good = small_model_bytes();
  std::vector<std::pair<std::string, std::vector<uint8_t>>> cases;
  cases.emplace_back("truncated", std::vector<uint8_t>(good.begin(), good.begin() + 40));
  auto huge = good;
  uint64_t big = uint64_t{1} << 50;
  std::memcpy(huge.data() + 16, &big, 8);  // n_kv
  cases.emplace_back("huge_count", huge);
  auto badtype = good;
  uint32_t t = 12345;
  std::memcpy(badtype.data() + 24 + 8 + 20, &t, 4);  // first value type
  cases.emplace_back("bad_type", badtype);
  // Misaligned tensor offset: the offset is the last u64 of the tensor info, just before the padding.
  gguf::Writer w;
  EXPECT_TRUE(w.add_tensor("t", gguf::TensorType::kF32, {8}, std::vector<uint8_t>(32)).is_ok());
  auto mis = w.bytes();
  uint64_t off = 4;
  std::memcpy(mis.data() + 49, &off, 8);
  cases.emplace_back("misaligned", mis);
  cases.emplace_back("empty", std::vector<uint8_t>());
  for (const auto& [name, bytes] : cases) {
    std::string path = write_temp(name + ".gguf", bytes);
    auto r = run_command(chunkwise_binary() + " inspect " + path);
    EXPECT_EQ(r.exit_code, 2) << name;
    EXPECT_EQ(count_lines(r.err), 1) << name << ": " << r.err;
    EXPECT_EQ(r.err.rfind("chunkwise inspect: ", 0), 0u) << r.err;
    EXPECT_TRUE(r.out.empty()) << name;
  }
  auto missing = run_command(chunkwise_binary() + " inspect /nonexistent.gguf");
  EXPECT_EQ(missing.exit_code, 2);
  auto usage = run_command(chunkwise_binary() + " inspect");
  EXPECT_EQ(usage.exit_code, 2);
  auto badflag = run_command(chunkwise_binary() + " inspect --frob x.gguf");
  EXPECT_EQ(badflag.exit_code, 2);
}

TEST(Cli, InspectReadsEverySharedGguf) {
  CW_REQUIRE_SHARED_DATA(dir);
  int n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.path().extension() != ".gguf") continue;
    auto r = run_command(chunkwise_binary() + " inspect --json " + e.path().string());
    EXPECT_EQ(r.exit_code, 0) << e.path() << ": " << r.err;
    EXPECT_NE(r.out.find("\"metadata\""), std::string::npos);
    ++n;
  }
  EXPECT_GE(n, 20);
}

}  // namespace
}  // namespace cw
