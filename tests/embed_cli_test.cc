// `chunkwise embed` and `make-model --arch bert` end to end (issue 13): a random bert file with the bge
// WordPiece vocabulary (../shared; skipped without it), JSON shape, unit-length rows, --lines, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>

#include "base/json_value.h"
#include "support/testing.h"

namespace cw {
namespace {

using testing::chunkwise_binary;
using testing::run_command;
using testing::shell_quote;

TEST(EmbedCli, BertFileGivesUnitVectorsWithItsPooling) {
  CW_REQUIRE_SHARED_DATA(dir);
  const std::string model = testing::temp_dir() + "/embed-cli-bert.gguf";
  auto made = run_command(chunkwise_binary() + " make-model --arch bert --shape tiny --type q8_0 --pooling cls -q --vocab " +
                          shell_quote(dir + "/vocab/ggml-vocab-bert-bge.gguf") + " -o " + shell_quote(model));
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string lines = testing::temp_dir() + "/embed-lines.txt";
  std::ofstream(lines) << "first line\n\nsecond line, a little longer\n";
  auto r = run_command(chunkwise_binary() + " embed -m " + shell_quote(model) + " -f " + shell_quote(lines) + " --lines");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = JsonValue::parse(r.out);
  ASSERT_TRUE(j.is_ok()) << r.out;
  EXPECT_EQ(j->get("pooling")->as_string(), "cls");
  EXPECT_EQ(j->get("dim")->as_number(), 256);
  const std::vector<JsonValue>& rows = j->get("embeddings")->items();
  ASSERT_EQ(rows.size(), 2u);  // the blank line is skipped
  for (const JsonValue& row : rows) {
    double norm = 0;
    ASSERT_EQ(row.items().size(), 256u);
    for (const JsonValue& x : row.items()) norm += x.as_number() * x.as_number();
    EXPECT_NEAR(norm, 1.0, 1e-5);
  }
  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {"-p hi", "-m MODEL is required"},
           {"-m " + shell_quote(model), "give exactly one of -p TEXT or -f FILE"},
           {"-m /nonexistent.gguf -p hi", "/nonexistent.gguf"},
           {"-m " + shell_quote(model) + " -f " + shell_quote(testing::temp_dir() + "/empty.txt") + " --lines",
            "no non-empty line"},
       }) {
    std::ofstream(testing::temp_dir() + "/empty.txt") << "\n\n";
    auto e = run_command(chunkwise_binary() + " embed " + args);
    EXPECT_EQ(e.exit_code, 2) << args << "\n" << e.err;
    EXPECT_NE(e.err.find(message), std::string::npos) << args << "\n" << e.err;
  }
  auto pool = run_command(chunkwise_binary() + " make-model --arch llama --shape tiny --type f32 --pooling cls -q --vocab " +
                          shell_quote(dir + "/vocab/ggml-vocab-bert-bge.gguf") + " -o " + shell_quote(model + ".x"));
  EXPECT_EQ(pool.exit_code, 2);
  EXPECT_NE(pool.err.find("--pooling applies only to --arch bert"), std::string::npos) << pool.err;
}

}  // namespace
}  // namespace cw
