// The hostile-input suite, whole set (label slow): >= 1,000 generated cases over every subcommand. Writes a
// summary (cases, ok, refused, crashes, hangs, RSS per class and subcommand) and the failing cases next to
// the test binary: hostile-summary.txt, hostile-failures.txt. docs/hostile-input.md quotes the counts.
#include <filesystem>
#include <set>

#include <gtest/gtest.h>

#include "hostile/suite.h"

namespace cw::hostile {
namespace {

namespace fs = std::filesystem;

TEST(HostileInput, WholeSet) {
  Fixtures fx;
  fx.full = true;
  make_fixtures(&fx);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  std::vector<Case> cases = generate_all(fx);
  std::set<std::string> cmds;
  for (const Case& c : cases) cmds.insert(c.cmd);
  EXPECT_EQ(cmds, (std::set<std::string>{"ask", "batch", "bench", "chunk", "eval", "gen-data", "inspect", "make-model", "perplexity",
                                         "run", "tokenize"}));
  EXPECT_GE(cases.size(), 1000u);
  std::error_code ec;
  const fs::path here = fs::read_symlink("/proc/self/exe", ec).parent_path();
  RunOptions opt;
  opt.summary_path = here / "hostile-summary.txt";
  opt.failures_path = here / "hostile-failures.txt";
  if (const char* f = std::getenv("CW_HOSTILE_FILTER")) opt.filter = f;
  const SuiteResult r = run_suite(fx, cases, opt);
  std::printf("%s\n", r.summary.c_str());
  if (r.n_failed > 0) std::printf("failing cases:\n%s\n", r.failures.c_str());
  std::printf("summary: %s\nfailures: %s\n", opt.summary_path.c_str(), opt.failures_path.c_str());
  remove_fixtures(fx);
  EXPECT_EQ(r.n_failed, 0u) << "see the failing cases above";
}

}  // namespace
}  // namespace cw::hostile
