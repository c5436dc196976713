// Nothing reads past the end of its input: documents and texts are placed so that their last byte is the
// last byte of a page and the next page is inaccessible (as for a file mapping whose size is a multiple of
// the page size: `chunk --tokenizer` once read one byte past such a mapping and crashed). Every chunker
// method in both unit families, DocText, and the tokenizers run over such inputs of many sizes and kinds.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "base/utf8.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "support/spm_vocab.h"
#include "support/testing.h"
#include "text/chunker.h"
#include "text/measure.h"
#include "tokenizer/tokenizer.h"

namespace cw {
namespace {

using testing::GuardedText;

std::vector<std::string> texts() {
  std::vector<std::string> out;
  const std::string kinds[] = {"word ", "Once upon a time. ", "caf\xC3\xA9 \xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA9 ",
                               "# Title\n\nText.\n", "\xFF\xC3(", "x"};
  for (size_t size : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{15}, size_t{16}, size_t{17}, size_t{31},
                      size_t{4095}, size_t{4096}, size_t{4097}, size_t{8192}}) {
    for (const std::string& k : kinds) {
      std::string t;
      while (t.size() < size) t += k;
      t.resize(size);
      out.push_back(t);
    }
  }
  return out;
}

std::string small_vocab_path() {
  const std::string path = testing::temp_dir() + "/guard_spm_vocab.gguf";
  gguf::Writer w;
  testing::add_small_spm_vocab(w);
  EXPECT_TRUE(w.write(path).is_ok());
  return path;
}

TEST(GuardPage, DocTextStaysInsideItsInput) {
  for (const std::string& t : texts()) {
    GuardedText g(t);
    text::DocText d(g.view());
    EXPECT_EQ(d.count_chars(0, d.size()), static_cast<int64_t>(utf8_count_codepoints(t)));
    EXPECT_EQ(d.floor_boundary(d.size()), d.size());
  }
}

TEST(GuardPage, EveryChunkerStaysInsideItsInput) {
  const std::string vocab = small_vocab_path();
  int n_methods_run = 0;
  for (const text::MethodInfo* m : text::chunker_methods()) {
    for (const std::string unit : {"chars", "bytes", "words", "tokens"}) {
      std::string spec = m->name + ":size=24,unit=" + unit;
      if (unit == "tokens") spec += ",tokenizer=" + vocab;
      if (m->name == "code") spec += ",lang=python";
      auto made = text::make_chunker(spec);
      if (!made.is_ok()) {
        // Only the code chunker may be unavailable (its grammars are installed separately).
        EXPECT_EQ(m->name, "code") << spec << ": " << made.status().message();
        continue;
      }
      ++n_methods_run;
      for (const std::string& t : texts()) {
        GuardedText g(t);
        auto r = (*made)->chunk("doc", g.view());
        if (!r.is_ok()) continue;  // e.g. a unit larger than size: an error, not a read past the end
        int64_t end = 0;
        for (const text::Chunk& c : *r) end = std::max(end, c.byte_end);
        EXPECT_EQ(end, static_cast<int64_t>(t.size())) << spec;
      }
    }
  }
  EXPECT_GE(n_methods_run, 5 * 4);  // token, sentence, recursive, markdown, semantic in every unit
}

TEST(GuardPage, TokenizersStayInsideTheirInput) {
  std::vector<std::string> vocabs = {small_vocab_path()};
  if (auto dir = testing::shared_data_dir()) {
    for (const char* v : {"llama-spm", "gpt-2", "llama-bpe", "bert-bge", "qwen2", "phi-3", "deepseek-coder"})
      vocabs.push_back(*dir + "/vocab/ggml-vocab-" + v + ".gguf");
  }
  for (const std::string& path : vocabs) {
    auto f = gguf::File::open(path);
    if (!f.is_ok()) continue;  // not every vocabulary is in every copy of the shared data
    auto tok = tok::Tokenizer::from_gguf(**f);
    ASSERT_TRUE(tok.is_ok()) << path << ": " << tok.status().message();
    for (const std::string& t : texts()) {
      GuardedText g(t);
      const std::vector<int32_t> ids = (*tok)->encode(g.view(), false, true);
      EXPECT_LE(ids.size(), 3 * t.size() + 3) << path;  // byte fallback: a space is "▁", 3 byte tokens
      if (t.size() >= 4) {
        EXPECT_FALSE(ids.empty()) << path;
      }
    }
  }
}

}  // namespace
}  // namespace cw
