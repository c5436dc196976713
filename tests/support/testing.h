// Test support: locating ../shared/data (skip cleanly when absent) and temp files.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

namespace cw::testing {

// Path of the shared test data folder: $CW_SHARED_DIR/data, else ../shared/data relative to the project
// root (tests run from the project root). nullopt when absent.
std::optional<std::string> shared_data_dir();

// A fresh temporary directory for this test process (created on first use).
std::string temp_dir();

// Path of the built chunkwise executable (CW_BINARY compile definition, overridable by $CW_BINARY).
std::string chunkwise_binary();

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs a shell command line, capturing stdout and stderr.
CommandResult run_command(const std::string& cmdline);

// `s` as one single-quoted POSIX shell word (embedded ' written as '\''), for run_command lines.
std::string shell_quote(const std::string& s);

}  // namespace cw::testing

// Skips the current test when ../shared/data is absent; binds `dir` to its path otherwise.
#define CW_REQUIRE_SHARED_DATA(dir)                                            \
  auto cw_shared_opt_ = ::cw::testing::shared_data_dir();                     \
  if (!cw_shared_opt_) GTEST_SKIP() << "../shared/data not present; skipping"; \
  const std::string dir = *cw_shared_opt_

namespace cw::testing {

// A copy of `text` that ends exactly at a page boundary, followed by an inaccessible (PROT_NONE) page:
// reading one byte past the end faults, as it does on a file mapping whose size is a multiple of the
// page size. The view stays valid as long as the object lives.
class GuardedText {
 public:
  explicit GuardedText(std::string_view text);
  ~GuardedText();
  GuardedText(const GuardedText&) = delete;
  GuardedText& operator=(const GuardedText&) = delete;
  std::string_view view() const { return view_; }

 private:
  void* base_ = nullptr;
  size_t length_ = 0;
  std::string_view view_;
};

}  // namespace cw::testing
