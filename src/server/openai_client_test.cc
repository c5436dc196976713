// The official `openai` npm package against `chunkwise serve` (issue 15's acceptance: real clients work):
// the server runs as a process on a free port with a generated tiny llama, --embeddings and --api-key, and
// tests/openai/client_test.mjs drives it through OpenAI's Node client -- chat completions streaming and
// not, legacy completions, embeddings, and the errors the client maps to its exception classes. The
// package is installed outside the repository by tools/install-openai-client.sh (tools/install-deps.sh
// calls it); without node or the package the test skips, saying which is missing.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "server/serve_process_testing.h"
#include "support/spm_vocab.h"
#include "support/testing.h"

#ifndef CW_SOURCE_DIR
#define CW_SOURCE_DIR "."
#endif

namespace cw::server {
namespace {

// Where tools/install-openai-client.sh installs the package (the same fallbacks as the script).
std::string client_dir() {
  if (const char* d = std::getenv("CW_OPENAI_CLIENT_DIR"); d != nullptr && *d != '\0') return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x != '\0')
    return std::string(x) + "/chunkwise/openai-client";
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "") + "/.cache/chunkwise/openai-client";
}

TEST(OpenAiNodeClient, ChatCompletionsEmbeddingsAndErrors) {
  if (testing::run_command("command -v node").exit_code != 0)
    GTEST_SKIP() << "node is not installed (install Node.js + npm, then run tools/install-openai-client.sh)";
  const std::string dir = client_dir();
  if (!std::filesystem::exists(dir + "/node_modules/openai/package.json"))
    GTEST_SKIP() << "the openai npm package is not installed in " << dir << " (run tools/install-openai-client.sh)";

  const std::string model = testing::tiny_llama_f32("openai-client-tiny.gguf", 3);
  const std::string err = testing::temp_dir() + "/openai-client-serve-err.txt";
  testing_serve::Spawned sp = testing_serve::spawn_serve(
      {"-m", model, "--port", "0", "--api-key", "test-key-1", "--embeddings", "--parallel", "4"}, err);
  ASSERT_GT(sp.pid, 0);
  const int port = testing_serve::wait_port(err);
  if (port == 0) {
    kill(sp.pid, SIGKILL);
    waitpid(sp.pid, nullptr, 0);
    FAIL() << "no listening line: " << testing_serve::slurp(err);
  }
  // `timeout`: a client that hangs fails the test instead of reaching ctest's limit.
  const auto r = testing::run_command(
      "timeout 120 node " + testing::shell_quote(std::string(CW_SOURCE_DIR) + "/tests/openai/client_test.mjs") +
      " --base-url http://127.0.0.1:" + std::to_string(port) + "/v1 --api-key test-key-1 --model openai-client-tiny.gguf" +
      " --client-dir " + testing::shell_quote(dir));
  std::printf("%s%s", r.out.c_str(), r.err.c_str());  // every check's line, in the test log
  kill(sp.pid, SIGTERM);
  const int st = testing_serve::wait_exit(sp.pid, 20);
  EXPECT_EQ(r.exit_code, 0) << "client_test.mjs failed:\n" << r.out << r.err;
  EXPECT_NE(r.out.find("all checks passed"), std::string::npos);
  ASSERT_NE(st, -1) << "the server did not exit after SIGTERM";
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << testing_serve::slurp(err);
}

}  // namespace
}  // namespace cw::server
