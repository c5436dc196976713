// Data-driven tests against llama.cpp's vocabulary test vectors in ../shared/data/vocab/:
// ggml-vocab-<name>.gguf with .inp (strings separated by "\n__ggml_vocab_test__\n") and .out (one line of
// expected ids per string, add_special=false, parse_special=false).
#include <dirent.h>

#include <algorithm>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "support/testing.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab_vectors_test_util.h"

namespace cw::tok {
namespace {

using testing::read_all;
using testing::read_expected;
using testing::split_inputs;
constexpr auto& kVocabs = testing::kVocabVectorNames;

std::string ids_str(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += (s.empty() ? "" : " ") + std::to_string(id);
  return s;
}

class VocabVectors : public ::testing::TestWithParam<const char*> {};

TEST_P(VocabVectors, MatchesLlamaCpp) {
  CW_REQUIRE_SHARED_DATA(data);
  const std::string base = data + "/vocab/ggml-vocab-" + GetParam() + ".gguf";
  const std::string inp = read_all(base + ".inp");
  if (inp.empty()) GTEST_SKIP() << base << ".inp not present";
  auto file = gguf::File::open(base);
  ASSERT_TRUE(file.is_ok()) << file.status().to_string();
  auto tok = Tokenizer::from_gguf(**file);
  if (!tok.is_ok() && tok.status().code() == StatusCode::kUnimplemented) {
    GTEST_SKIP() << "not supported: " << tok.status().message();
  }
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  const Tokenizer& t = **tok;

  const auto inputs = split_inputs(inp);
  const auto expected = read_expected(base + ".out");
  ASSERT_FALSE(inputs.empty());
  ASSERT_EQ(inputs.size(), expected.size()) << "malformed .inp/.out pair";
  int passed = 0, round_trips = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto got = t.encode(inputs[i], /*add_special=*/false, /*parse_special=*/false);
    if (got == expected[i]) {
      ++passed;
    } else {
      ADD_FAILURE() << GetParam() << " vector " << i << " '" << inputs[i] << "'\n  expected: " << ids_str(expected[i])
                    << "\n  got:      " << ids_str(got);
    }
    // Detokenization inverts tokenization for SPM (space prefix removed) and byte-level BPE. WordPiece
    // normalises (lower case, no accents, dropped control characters), so there the decoded text must
    // encode back to the same ids instead (except where [UNK] stands for what was lost).
    const std::string back = t.decode(expected[i]);
    if (t.model_name() == "bert") {
      const bool has_unk = std::find(expected[i].begin(), expected[i].end(), 100) != expected[i].end() &&
                           t.token_text(100) == "[UNK]";
      const auto again = t.encode(back, false, false);
      if (has_unk || again == expected[i]) {
        ++round_trips;
      } else {
        ADD_FAILURE() << GetParam() << " vector " << i << ": decode '" << back << "' encodes to " << ids_str(again);
      }
    } else if (back == inputs[i]) {
      ++round_trips;
    } else {
      ADD_FAILURE() << GetParam() << " vector " << i << " does not round-trip: '" << back << "'";
    }
  }
  std::printf("[ vocab ] %-15s %d/%zu vectors pass, %d/%zu round-trip\n", GetParam(), passed, inputs.size(),
              round_trips, inputs.size());
}

INSTANTIATE_TEST_SUITE_P(All, VocabVectors, ::testing::ValuesIn(kVocabs),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

// Every vocab with test vectors in the shared folder must be listed above.
TEST(VocabVectorsList, CoversEveryVectorFile) {
  CW_REQUIRE_SHARED_DATA(data);
  DIR* d = opendir((data + "/vocab").c_str());
  if (d == nullptr) GTEST_SKIP() << "no vocab folder";
  std::set<std::string> listed(std::begin(kVocabs), std::end(kVocabs));
  const std::string prefix = "ggml-vocab-", suffix = ".gguf.inp";
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > prefix.size() + suffix.size() && n.compare(0, prefix.size(), prefix) == 0 &&
        n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) {
      const std::string name = n.substr(prefix.size(), n.size() - prefix.size() - suffix.size());
      EXPECT_TRUE(listed.count(name)) << "vector file for '" << name << "' is not tested";
    }
  }
  closedir(d);
}

// Vocabs without vectors still load, and round-trip plain text.
TEST(VocabFiles, OthersLoadAndRoundTrip) {
  CW_REQUIRE_SHARED_DATA(data);
  for (const char* name : {"gpt-neox", "baichuan"}) {
    const std::string path = data + "/vocab/ggml-vocab-" + name + ".gguf";
    auto file = gguf::File::open(path);
    if (!file.is_ok()) continue;
    auto tok = Tokenizer::from_gguf(**file);
    ASSERT_TRUE(tok.is_ok()) << name << ": " << tok.status().to_string();
    const std::string text = "Hello world, this is a test: 12345 ... \n\n  indented\ttab ünïcödé 日本語";
    EXPECT_EQ((*tok)->decode((*tok)->encode(text, false, false)), text) << name;
  }
}

}  // namespace
}  // namespace cw::tok

namespace cw::tok {
namespace {

// The pre-tokenizers' fast multi-stage path equals the staged reference on real text: every vector input
// and the benchmark corpora, for every family.
TEST(PreTokenizerRealText, FlagPathMatchesStaged) {
  CW_REQUIRE_SHARED_DATA(data);
  std::vector<std::string> texts;
  for (const char* v : kVocabs) {
    for (std::string& s : split_inputs(read_all(data + "/vocab/ggml-vocab-" + v + ".gguf.inp"))) texts.push_back(s);
  }
  for (const char* rel : {"/chunking_eval/corpora/chatlogs.md", "/chunking_eval/corpora/wikitexts.md"}) {
    std::string t = read_all(data + rel);
    if (t.size() > (1u << 20)) t.resize(1u << 20);
    texts.push_back(t);
  }
  for (const char* pre : {"default", "starcoder", "deepseek-llm", "deepseek-coder", "falcon"}) {
    auto p = PreTokenizer::create(pre);
    ASSERT_TRUE(p.is_ok()) << pre;
    for (size_t i = 0; i < texts.size(); ++i) {
      std::vector<std::string_view> fast, ref;
      (*p)->split(texts[i], fast);
      (*p)->split_staged(texts[i], ref);
      EXPECT_TRUE(fast == ref) << pre << ": text " << i << " splits differently";
    }
  }
}

}  // namespace
}  // namespace cw::tok
