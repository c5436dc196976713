// Unit tests of the cw_text building blocks: spec parsing, units and measures, DocText, packing, JSONL.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "base/json.h"
#include "support/testing.h"
#include "text/chunker.h"
#include "text/jsonl.h"
#include "text/measure.h"
#include "text/pack.h"
#include "text/segment.h"
#include "tokenizer/tokenizer.h"

namespace cw::text {
namespace {

TEST(Spec, ParsesMethodAndKeys) {
  auto p = parse_spec("recursive: size=512 , overlap=64,preset=markdown");
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ(p->method, "recursive");
  EXPECT_EQ(p->kv.at("size"), "512");
  EXPECT_EQ(p->kv.at("overlap"), "64");
  EXPECT_EQ(p->kv.at("preset"), "markdown");
  auto bare = parse_spec("token");
  ASSERT_TRUE(bare.is_ok());
  EXPECT_EQ(bare->method, "token");
  EXPECT_TRUE(bare->kv.empty());
  EXPECT_FALSE(parse_spec("").is_ok());
  EXPECT_FALSE(parse_spec(":size=3").is_ok());
}

TEST(Spec, DefaultsAndValidation) {
  auto c = make_chunker("recursive");
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ((*c)->config().size, 512);
  EXPECT_EQ((*c)->config().overlap, 0);
  EXPECT_EQ((*c)->config().measure->unit(), Unit::kChars);
  auto bad = make_chunker("recursive:size=10,overlap=10");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  auto unknown = make_chunker("markdown:preset=plain");
  ASSERT_FALSE(unknown.is_ok());
  EXPECT_NE(unknown.status().message().find("valid keys: size, overlap, unit, tokenizer"), std::string::npos);
  // Every registered method is reachable by name and creatable with defaults.
  for (const MethodInfo* m : chunker_methods()) {
    EXPECT_EQ(find_method(m->name), m);
  }
  for (const char* name : {"token", "sentence", "recursive", "markdown"}) {
    EXPECT_NE(find_method(name), nullptr) << name;
    EXPECT_TRUE(make_chunker(name).is_ok()) << name;
  }
}

TEST(Spec, ParamsGetters) {
  SpecParams p({{"n", "12"}, {"x", "0.5"}, {"c", "b"}, {"bad", "1e"}});
  EXPECT_EQ(*p.get_int("n", 0, 0, 100), 12);
  EXPECT_EQ(*p.get_int("missing", 7, 0, 100), 7);
  EXPECT_FALSE(p.get_int("n", 0, 0, 10).is_ok());
  EXPECT_FALSE(p.get_int("bad", 0, 0, 10).is_ok());
  EXPECT_DOUBLE_EQ(*p.get_double("x", 0, 0, 1), 0.5);
  EXPECT_FALSE(p.get_double("bad", 0, 0, 1).is_ok());
  const std::string_view choices[] = {"a", "b"};
  EXPECT_EQ(*p.get_choice("c", "a", choices), "b");
  EXPECT_FALSE(p.get_choice("n", "a", choices).is_ok());
}

TEST(Units, ParseAndNames) {
  for (Unit u : {Unit::kTokens, Unit::kChars, Unit::kBytes, Unit::kWords}) {
    auto r = parse_unit(unit_name(u));
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(*r, u);
  }
  EXPECT_FALSE(parse_unit("lines").is_ok());
}

TEST(DocText, BoundariesAndCounts) {
  const std::string s = "a\xC3\xA9\xF0\x9F\x98\x80z";  // a é 😀 z
  DocText d(s);
  EXPECT_TRUE(d.valid_utf8());
  EXPECT_TRUE(d.is_boundary(0));
  EXPECT_TRUE(d.is_boundary(1));
  EXPECT_FALSE(d.is_boundary(2));
  EXPECT_TRUE(d.is_boundary(3));
  EXPECT_FALSE(d.is_boundary(5));
  EXPECT_EQ(d.floor_boundary(5), 3);
  EXPECT_EQ(d.ceil_boundary(5), 7);
  EXPECT_EQ(d.next_boundary(3), 7);
  EXPECT_EQ(d.count_chars(0, 8), 4);
  EXPECT_EQ(d.count_chars(1, 7), 2);
  const std::string bad = "a\xE6\x97\xFFz";  // truncated sequence + invalid byte: each byte one unit
  DocText b(bad);
  EXPECT_FALSE(b.valid_utf8());
  EXPECT_EQ(b.count_chars(0, 5), 5);
  EXPECT_TRUE(b.is_boundary(2));
  EXPECT_TRUE(b.is_boundary(3));
}

TEST(Units, FastCharCountMatchesDecoder) {
  std::string s;
  for (int i = 0; i < 300; ++i) s += i % 3 ? "ab\xE6\x97\xA5" : "\xF0\x9F\x98\x80 ";
  for (size_t n : {0ul, 1ul, 15ul, 16ul, 17ul, 100ul, s.size()}) {
    int64_t expect = 0;
    for (size_t i = 0; i < n; ++i) expect += (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
    EXPECT_EQ(count_utf8_chars_fast(s.data(), static_cast<int64_t>(n)), expect) << n;
  }
}

TEST(Units, Words) {
  EXPECT_EQ(count_words(""), 0);
  EXPECT_EQ(count_words("   "), 0);
  EXPECT_EQ(count_words("one"), 1);
  EXPECT_EQ(count_words(" one  two\tthree\n"), 3);
  EXPECT_EQ(count_words("a\xC2\xA0" "b"), 2);  // NBSP is White_Space
  EXPECT_EQ(count_words("\xE6\x97\xA5\xE6\x9C\xAC"), 1);
}

TEST(Measure, TokenSizerMatchesEncodeAndSnapsToCodePoints) {
  CW_REQUIRE_SHARED_DATA(dir);
  for (const char* vocab : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf", "ggml-vocab-bert-bge.gguf"}) {
    SCOPED_TRACE(vocab);
    auto m = SizeMeasure::create(Unit::kTokens, dir + "/vocab/" + vocab);
    ASSERT_TRUE(m.is_ok()) << m.status().to_string();
    const std::string text = "Hello world, \xF0\x9F\x98\x80 caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC!\n  x";
    DocText doc(text);
    auto sizer = (*m)->bind(doc);
    // Atom cuts are increasing code point boundaries; the exact size equals a direct encode.
    std::vector<int64_t> cuts;
    sizer->atom_cuts(0, doc.size(), cuts);
    ASSERT_FALSE(cuts.empty());
    for (size_t i = 0; i < cuts.size(); ++i) {
      EXPECT_TRUE(doc.is_boundary(cuts[i]));
      if (i) {
        EXPECT_LT(cuts[i - 1], cuts[i]);
      }
    }
    EXPECT_EQ(sizer->exact(0, doc.size()), (*m)->measure(text));
    EXPECT_EQ((*m)->measure(text), static_cast<int64_t>((*m)->tokenizer()->encode(text, false, false).size()));
    EXPECT_FALSE(sizer->additive());
  }
}

// Pieces of given sizes over a text of 'x's (chars unit): packing arithmetic.
std::vector<PackedChunk> pack_sizes(const std::string& text, const std::vector<int64_t>& sizes, int64_t size,
                                    int64_t overlap, std::vector<bool> hard = {}) {
  static std::shared_ptr<const SizeMeasure> chars = SizeMeasure::make(Unit::kChars);
  DocText doc(text);
  auto sizer = chars->bind(doc);
  std::vector<Piece> pieces;
  int64_t at = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    pieces.push_back(Piece{at, at + sizes[i], -1, i < hard.size() && hard[i], static_cast<int32_t>(i)});
    at += sizes[i];
  }
  std::vector<PackedChunk> out;
  Status s = pack_pieces(*sizer, pieces, PackOptions{size, overlap}, out);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return out;
}

TEST(Pack, GreedyOverlapAndHardBreaks) {
  const std::string t(20, 'x');
  auto a = pack_sizes(t, {3, 3, 3, 3, 3, 5}, 7, 0);
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(a[0].begin, 0);
  EXPECT_EQ(a[0].end, 6);
  EXPECT_EQ(a[1].end, 12);
  EXPECT_EQ(a[2].end, 15);
  EXPECT_EQ(a[3].end, 20);
  // Overlap of one 3-unit piece.
  auto b = pack_sizes(t, {3, 3, 3, 3, 3, 5}, 7, 3);
  ASSERT_GE(b.size(), 2u);
  EXPECT_EQ(b[1].begin, 3);  // the last piece of chunk 0 is repeated
  for (size_t i = 1; i < b.size(); ++i) EXPECT_LE(b[i - 1].end - b[i].begin, 3);
  // A hard break stops packing and suppresses overlap across it.
  auto c = pack_sizes(t, {3, 3, 3, 3, 3, 5}, 100, 3, {false, false, true});
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].end, 6);
  EXPECT_EQ(c[1].begin, 6);
  EXPECT_EQ(c[1].tag, 2);
  // An oversized piece is split at atoms.
  auto d = pack_sizes(t, {2, 15, 3}, 4, 0);
  ASSERT_FALSE(d.empty());
  for (const auto& k : d) EXPECT_LE(k.size, 4);
  EXPECT_EQ(d.back().end, 20);
}

TEST(Pack, SplitRecursiveRespectsLevelsAndLimit) {
  const std::string t = "aaaa bbbb. cccc dddd.\n\neeee ffff gggg.";
  DocText doc(t);
  auto sizer = SizeMeasure::make(Unit::kChars)->bind(doc);
  std::vector<Piece> pieces;
  split_recursive(*sizer, 0, doc.size(), find_preset("plain")->levels, 0, 12, pieces);
  int64_t at = 0;
  for (const Piece& p : pieces) {
    EXPECT_EQ(p.begin, at);
    EXPECT_LE(p.size, 12);
    EXPECT_EQ(p.size, p.end - p.begin);
    at = p.end;
  }
  EXPECT_EQ(at, doc.size());
  EXPECT_EQ(find_preset("nope"), nullptr);
  EXPECT_EQ(preset_names().size(), 5u);
}

TEST(Segment, SentencesAndLocales) {
  const std::string t = "Mr. Who arrived. It rained! Did it? Yes.";
  DocText doc(t);
  std::vector<int64_t> cuts;
  ASSERT_TRUE(sentence_cuts(doc, 0, doc.size(), kDefaultSentenceLocale, cuts).is_ok());
  std::string got;
  for (int64_t c : cuts) got += std::to_string(c) + " ";
  ASSERT_EQ(cuts.size(), 3u) << got;
  EXPECT_EQ(t.substr(0, static_cast<size_t>(cuts[0])), "Mr. Who arrived. ");
  EXPECT_FALSE(validate_sentence_locale("bad locale!").is_ok());
  EXPECT_TRUE(validate_sentence_locale("ja").is_ok());
}

TEST(Jsonl, EscapesAndReplacesInvalidBytes) {
  std::string out;
  json_append_string(out, std::string("a\"b\\c\n\t\x01\xFF\xC3\xA9 0123456789abcdef\""));
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\t\\u0001\xEF\xBF\xBD\xC3\xA9 0123456789abcdef\\\"\"");
  Chunk c;
  c.doc = "d.md";
  c.index = 2;
  c.byte_begin = 1;
  c.byte_end = 3;
  c.char_begin = 1;
  c.char_end = 3;
  c.n_tokens = 2;
  c.headings = {"A", "B"};
  c.kind = "text";
  std::string line;
  append_chunk_jsonl(line, c, "xyzw");
  EXPECT_EQ(line,
            "{\"doc\":\"d.md\",\"index\":2,\"byte_begin\":1,\"byte_end\":3,\"char_begin\":1,\"char_end\":3,"
            "\"n_tokens\":2,\"text\":\"yz\",\"headings\":[\"A\",\"B\"],\"kind\":\"text\"}\n");
}

TEST(Chunkers, ConcurrentUseIsSafe) {
  auto c = make_chunker("sentence:size=40");
  ASSERT_TRUE(c.is_ok());
  std::string text;
  for (int i = 0; i < 200; ++i) text += "Sentence number " + std::to_string(i) + " is here. ";
  auto ref = (*c)->chunk("d", text);
  ASSERT_TRUE(ref.is_ok());
  std::vector<std::thread> ts;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      for (int k = 0; k < 5; ++k) {
        auto r = (*c)->chunk("d", text);
        if (!r.is_ok() || r->size() != ref->size()) ++mismatches;
      }
    });
  }
  for (auto& th : ts) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace cw::text
