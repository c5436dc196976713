// The shipped model's card (models/README.md) reproduced (issue 14, label `slow`): the within-window grids
// of docs/needle/{passkey,multi4}-window.json are run again with the same options through eval::run_needle,
// and every cell must land within 2 points of the committed accuracy (the haystacks are the same by
// construction; only a near-tie argmax could differ between CPUs). Skipped when the model, the committed
// tables or the word list are absent.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/json_value.h"
#include "eval/needle.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

#ifndef CW_SOURCE_DIR
#define CW_SOURCE_DIR "."
#endif

namespace cw::eval {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void reproduce(const std::string& table) {
  const std::string dir = CW_SOURCE_DIR;
  const std::string model_path = dir + "/models/chunkwise-tiny-q8_0.gguf";
  const std::string json_path = dir + "/docs/needle/" + table;
  if (!std::ifstream(model_path).good() || !std::ifstream(json_path).good()) GTEST_SKIP() << "model or table absent";
  auto wl = WordList::load();
  if (!wl.is_ok()) GTEST_SKIP() << "word list absent";
  auto j = JsonValue::parse(slurp(json_path));
  ASSERT_TRUE(j.is_ok()) << j.status().to_string();
  auto m = model::Model::load(model_path);
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  auto tok = tok::Tokenizer::from_gguf((*m)->file());
  ASSERT_TRUE(tok.is_ok());

  NeedleOptions o;
  auto rc = parse_recipe(j->get("recipe")->as_string());
  ASSERT_TRUE(rc.is_ok());
  o.recipe = *rc;
  o.seed = static_cast<uint64_t>(j->get("seed")->as_number());
  o.needles = static_cast<int>(j->get("needles")->as_number());
  o.trials = static_cast<int>(j->get("trials")->as_number());
  o.n_threads = 2;
  std::vector<double> expected;
  for (const JsonValue& c : j->get("cells")->items()) {
    const auto len = static_cast<int64_t>(c.get("length")->as_number());
    const double d = c.get("depth")->as_number();
    if (o.lengths.empty() || o.lengths.back() != len) {
      if (std::find(o.lengths.begin(), o.lengths.end(), len) == o.lengths.end()) o.lengths.push_back(len);
    }
    if (std::find(o.depths.begin(), o.depths.end(), d) == o.depths.end()) o.depths.push_back(d);
    o.policies = {c.get("policy")->as_string()};
    expected.push_back(c.get("accuracy")->as_number());
  }
  const HaystackGenerator gen(*wl);
  auto r = run_needle(**m, **tok, gen, o);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_EQ(r->cells.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_LE(std::fabs(r->cells[i].accuracy - expected[i]), 0.02 + 1e-9)
        << table << " length " << r->cells[i].length << " depth " << r->cells[i].depth;
  }
}

TEST(ModelCard, PasskeyWithinTheWindow) { reproduce("passkey-window.json"); }
TEST(ModelCard, FourNeedlesOneAskedWithinTheWindow) { reproduce("multi4-window.json"); }

}  // namespace
}  // namespace cw::eval
