// Test support: locating ../shared/data (skip cleanly when absent) and temp files.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>

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
