// Unit tests of the `code` chunker (tree-sitter). Tests that need a grammar skip when it is not built in
// (tools/install-grammars.sh + re-configure installs them).
#include "text/code_chunker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "base/utf8.h"
#include "support/testing.h"
#include "text/chunker.h"
#include "text/treesitter/languages.h"

namespace cw::text {
namespace {

bool grammar_built(const std::string& lang) {
  const std::vector<std::string> built = ts::built_languages();
  return std::find(built.begin(), built.end(), lang) != built.end();
}

#define REQUIRE_GRAMMAR(lang)                                                                        \
  do {                                                                                               \
    if (!grammar_built(lang)) {                                                                      \
      GTEST_SKIP() << "tree-sitter grammar '" << lang << "' not in this build (tools/install-grammars.sh)"; \
    }                                                                                                \
  } while (0)

std::unique_ptr<Chunker> make(const std::string& spec) {
  auto c = make_chunker(spec);
  EXPECT_TRUE(c.is_ok()) << spec << ": " << c.status().to_string();
  return c.is_ok() ? std::move(c).value() : nullptr;
}

// Offsets exact (bytes and code points), chunks tile the input in order, sizes within the limit.
void expect_tiles(const std::vector<Chunk>& chunks, std::string_view text, int64_t size, const std::string& what) {
  int64_t pos = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Chunk& c = chunks[i];
    EXPECT_EQ(c.index, static_cast<int64_t>(i)) << what;
    EXPECT_EQ(c.byte_begin, pos) << what << " chunk " << i;
    EXPECT_LT(c.byte_begin, c.byte_end) << what << " chunk " << i;
    EXPECT_EQ(c.char_begin, static_cast<int64_t>(utf8_count_codepoints(text.substr(0, c.byte_begin)))) << what;
    EXPECT_EQ(c.char_end, static_cast<int64_t>(utf8_count_codepoints(text.substr(0, c.byte_end)))) << what;
    EXPECT_LE(c.n_tokens, size) << what << " chunk " << i;
    EXPECT_GE(c.n_tokens, 1) << what << " chunk " << i;
    pos = c.byte_end;
  }
  EXPECT_EQ(pos, static_cast<int64_t>(text.size())) << what;
}

// The chunk that contains [b, e) entirely, or -1.
int chunk_containing(const std::vector<Chunk>& chunks, size_t b, size_t e) {
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (chunks[i].byte_begin <= static_cast<int64_t>(b) && static_cast<int64_t>(e) <= chunks[i].byte_end) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

struct LangCase {
  std::string lang;
  std::string file;  // document id (extension picks the language)
  std::string source;
  std::vector<std::string> units;  // substrings of source that must each stay in one chunk
  std::string kind;                // a node type expected among the chunk kinds
};

std::vector<LangCase> lang_cases() {
  return {
      {"c", "a.c",
       "#include <stdio.h>\n\nstatic int add(int a, int b) {\n  int s = a + b;\n  return s;\n}\n\n"
       "int mul(int a, int b) {\n  int p = 0;\n  for (int i = 0; i < b; ++i) p += a;\n  return p;\n}\n\n"
       "int main(void) {\n  printf(\"%d\\n\", add(1, mul(2, 3)));\n  return 0;\n}\n",
       {"static int add(int a, int b) {\n  int s = a + b;\n  return s;\n}",
        "int mul(int a, int b) {\n  int p = 0;\n  for (int i = 0; i < b; ++i) p += a;\n  return p;\n}",
        "int main(void) {\n  printf(\"%d\\n\", add(1, mul(2, 3)));\n  return 0;\n}"},
       "function_definition"},
      {"cpp", "a.cc",
       "namespace geo {\n\nclass Point {\n public:\n  Point(double x, double y) : x_(x), y_(y) {}\n"
       "  double norm2() const { return x_ * x_ + y_ * y_; }\n\n private:\n  double x_, y_;\n};\n\n"
       "double dot(const Point& a, const Point& b) {\n  return a.norm2() + b.norm2();\n}\n\n}  // namespace geo\n",
       {"class Point {\n public:\n  Point(double x, double y) : x_(x), y_(y) {}\n"
        "  double norm2() const { return x_ * x_ + y_ * y_; }\n\n private:\n  double x_, y_;\n};",
        "double dot(const Point& a, const Point& b) {\n  return a.norm2() + b.norm2();\n}"},
       "class_specifier"},
      {"python", "a.py",
       "import os\n\n\ndef read(path):\n    with open(path) as f:\n        return f.read()\n\n\n"
       "class Store:\n    def __init__(self, root):\n        self.root = root\n\n"
       "    def get(self, key):\n        return read(os.path.join(self.root, key))\n",
       {"def read(path):\n    with open(path) as f:\n        return f.read()",
        "class Store:\n    def __init__(self, root):\n        self.root = root\n\n"
        "    def get(self, key):\n        return read(os.path.join(self.root, key))"},
       "class_definition"},
      {"javascript", "a.js",
       "const fs = require('fs');\n\nfunction load(p) {\n  const s = fs.readFileSync(p, 'utf8');\n  return JSON.parse(s);\n}\n\n"
       "class Cache {\n  constructor() { this.m = new Map(); }\n  get(k) { return this.m.get(k); }\n}\n\n"
       "module.exports = { load, Cache };\n",
       {"function load(p) {\n  const s = fs.readFileSync(p, 'utf8');\n  return JSON.parse(s);\n}",
        "class Cache {\n  constructor() { this.m = new Map(); }\n  get(k) { return this.m.get(k); }\n}"},
       "function_declaration"},
      {"typescript", "a.ts",
       "interface Shape {\n  area(): number;\n}\n\nexport class Circle implements Shape {\n  constructor(private r: number) {}\n"
       "  area(): number {\n    return Math.PI * this.r * this.r;\n  }\n}\n\n"
       "export function total(shapes: Shape[]): number {\n  return shapes.reduce((s, x) => s + x.area(), 0);\n}\n",
       {"export class Circle implements Shape {\n  constructor(private r: number) {}\n"
        "  area(): number {\n    return Math.PI * this.r * this.r;\n  }\n}",
        "export function total(shapes: Shape[]): number {\n  return shapes.reduce((s, x) => s + x.area(), 0);\n}"},
       "interface_declaration"},
      {"tsx", "a.tsx",
       "import React from 'react';\n\nexport function Hello(props: { name: string }) {\n  return <div className=\"x\">Hello {props.name}</div>;\n}\n\n"
       "export function Bye() {\n  return <span>bye</span>;\n}\n",
       {"export function Hello(props: { name: string }) {\n  return <div className=\"x\">Hello {props.name}</div>;\n}",
        "export function Bye() {\n  return <span>bye</span>;\n}"},
       "export_statement"},
      {"go", "a.go",
       "package main\n\nimport \"fmt\"\n\ntype Stack struct {\n\titems []int\n}\n\n"
       "func (s *Stack) Push(v int) {\n\ts.items = append(s.items, v)\n}\n\n"
       "func main() {\n\tvar s Stack\n\ts.Push(1)\n\tfmt.Println(s.items)\n}\n",
       {"func (s *Stack) Push(v int) {\n\ts.items = append(s.items, v)\n}",
        "func main() {\n\tvar s Stack\n\ts.Push(1)\n\tfmt.Println(s.items)\n}"},
       "method_declaration"},
      {"rust", "a.rs",
       "use std::collections::HashMap;\n\npub struct Index {\n    map: HashMap<String, usize>,\n}\n\n"
       "impl Index {\n    pub fn new() -> Self {\n        Index { map: HashMap::new() }\n    }\n\n"
       "    pub fn add(&mut self, k: &str) {\n        let n = self.map.len();\n        self.map.insert(k.to_string(), n);\n    }\n}\n\n"
       "fn main() {\n    let mut i = Index::new();\n    i.add(\"x\");\n}\n",
       {"pub struct Index {\n    map: HashMap<String, usize>,\n}",
        "fn main() {\n    let mut i = Index::new();\n    i.add(\"x\");\n}"},
       "function_item"},
      {"java", "A.java",
       "package demo;\n\nimport java.util.List;\n\npublic class A {\n  private int n;\n\n"
       "  public A(int n) {\n    this.n = n;\n  }\n\n  public int sum(List<Integer> xs) {\n    int s = 0;\n"
       "    for (int x : xs) s += x;\n    return s + n;\n  }\n}\n",
       {"  public A(int n) {\n    this.n = n;\n  }", "  public int sum(List<Integer> xs) {\n    int s = 0;\n"
                                                    "    for (int x : xs) s += x;\n    return s + n;\n  }"},
       "method_declaration"},
  };
}

TEST(CodeChunker, FunctionsAndClassesStayWholeInEveryLanguage) {
  int ran = 0;
  for (const LangCase& lc : lang_cases()) {
    if (!grammar_built(lc.lang)) continue;
    ++ran;
    // A limit that fits every unit but not the whole file.
    size_t biggest = 0;
    for (const std::string& u : lc.units) biggest = std::max(biggest, u.size());
    const int64_t size = static_cast<int64_t>(biggest) + 24;
    ASSERT_LT(size, static_cast<int64_t>(lc.source.size())) << lc.lang;
    auto chunker = make("code:size=" + std::to_string(size) + ",unit=bytes");
    ASSERT_NE(chunker, nullptr);
    auto chunks = chunker->chunk(lc.file, lc.source);  // language from the extension
    ASSERT_TRUE(chunks.is_ok()) << lc.lang << ": " << chunks.status().to_string();
    EXPECT_GE(chunks->size(), 2u) << lc.lang;
    expect_tiles(*chunks, lc.source, size, lc.lang);
    for (const std::string& u : lc.units) {
      const size_t b = lc.source.find(u);
      ASSERT_NE(b, std::string::npos) << lc.lang << ": test bug, unit not in source";
      EXPECT_GE(chunk_containing(*chunks, b, b + u.size()), 0) << lc.lang << ": split:\n" << u;
    }
    bool kind_seen = false;
    std::string kinds;
    for (const Chunk& c : *chunks) {
      kind_seen |= c.kind == lc.kind;
      kinds += c.kind + " ";
    }
    EXPECT_TRUE(kind_seen) << lc.lang << ": no chunk of kind " << lc.kind << " among " << kinds;
    // The same with lang= given explicitly and a document id without extension.
    auto explicit_lang = make("code:lang=" + lc.lang + ",size=" + std::to_string(size) + ",unit=bytes");
    auto again = explicit_lang->chunk("stdin", lc.source);
    ASSERT_TRUE(again.is_ok()) << again.status().to_string();
    ASSERT_EQ(again->size(), chunks->size()) << lc.lang;
  }
  if (ran == 0) GTEST_SKIP() << "no tree-sitter grammar in this build (tools/install-grammars.sh)";
}

TEST(CodeChunker, WholeFileThatFitsIsOneChunk) {
  REQUIRE_GRAMMAR("python");
  const std::string src = "def f():\n    return 1\n";
  auto chunks = make("code:lang=py,size=1000,unit=chars")->chunk("x", src);
  ASSERT_TRUE(chunks.is_ok());
  ASSERT_EQ(chunks->size(), 1u);
  EXPECT_EQ((*chunks)[0].byte_end, static_cast<int64_t>(src.size()));
  EXPECT_EQ((*chunks)[0].kind, "module");
}

TEST(CodeChunker, OversizedFunctionIsSplitAlongStatementsWithHeadings) {
  REQUIRE_GRAMMAR("python");
  std::string body;
  for (int i = 0; i < 40; ++i) body += "        total += compute_value_number_" + std::to_string(i) + "(x)\n";
  const std::string src = "class Accumulator:\n    def run(self, x):\n        total = 0\n" + body +
                          "        return total\n\n\ndef small():\n    return 2\n";
  const int64_t size = 160;
  auto chunks = make("code:lang=python,size=160,unit=chars")->chunk("acc.py", src);
  ASSERT_TRUE(chunks.is_ok()) << chunks.status().to_string();
  expect_tiles(*chunks, src, size, "python");
  ASSERT_GE(chunks->size(), 5u);
  // Cuts fall on line starts (statement boundaries), never inside a statement line.
  for (const Chunk& c : *chunks) {
    if (c.byte_begin > 0) {
      EXPECT_EQ(src[c.byte_begin - 1], '\n') << "chunk at " << c.byte_begin;
    }
  }
  // Inner parts carry the enclosing class and method names.
  int with_path = 0;
  for (const Chunk& c : *chunks) {
    if (c.headings == std::vector<std::string>{"Accumulator", "run"}) ++with_path;
  }
  EXPECT_GE(with_path, 3);
  // The small function after it stays whole.
  const size_t b = src.find("def small():");
  EXPECT_GE(chunk_containing(*chunks, b, src.size() - 1), 0);
}

TEST(CodeChunker, SmallSiblingsAreMerged) {
  REQUIRE_GRAMMAR("go");
  std::string src = "package p\n\n";
  for (int i = 0; i < 30; ++i) src += "func f" + std::to_string(i) + "() int { return " + std::to_string(i) + " }\n\n";
  auto chunks = make("code:lang=go,size=200,unit=chars")->chunk("p.go", src);
  ASSERT_TRUE(chunks.is_ok());
  expect_tiles(*chunks, src, 200, "go");
  // ~30 bytes per function: several functions per chunk, each function whole.
  EXPECT_LE(chunks->size(), src.size() / 100);
  for (int i = 0; i < 30; ++i) {
    const std::string f = "func f" + std::to_string(i) + "() int { return " + std::to_string(i) + " }";
    const size_t b = src.find(f);
    EXPECT_GE(chunk_containing(*chunks, b, b + f.size()), 0) << f;
  }
}

TEST(CodeChunker, CommentTravelsWithTheFunctionBelowIt) {
  REQUIRE_GRAMMAR("c");
  const std::string a = "int a(void) {\n  return 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9;\n}\n\n";
  const std::string doc = "// b: returns the answer,\n// computed carefully.\nint b(void) {\n  return 42;\n}\n";
  const std::string src = a + doc;
  auto chunks = make("code:lang=c,size=80,unit=bytes")->chunk("x.c", src);
  ASSERT_TRUE(chunks.is_ok());
  expect_tiles(*chunks, src, 80, "c");
  EXPECT_GE(chunk_containing(*chunks, a.size(), src.size()), 0) << "comment separated from its function";
}

TEST(CodeChunker, HugeLeafFallsBackToRecursiveSplitting) {
  REQUIRE_GRAMMAR("javascript");
  std::string s;
  for (int i = 0; i < 300; ++i) s += "word" + std::to_string(i) + " ";
  const std::string src = "const a = 1;\nconst big = \"" + s + "\";\nconst b = 2;\n";
  auto chunks = make("code:lang=js,size=64,unit=chars")->chunk("x.js", src);
  ASSERT_TRUE(chunks.is_ok()) << chunks.status().to_string();
  expect_tiles(*chunks, src, 64, "js");
  EXPECT_GT(chunks->size(), src.size() / 64);
}

TEST(CodeChunker, UnicodeOffsetsAreExact) {
  REQUIRE_GRAMMAR("python");
  const std::string src =
      "# 注释：计算 😀 👩‍👩‍👧 café\r\ndef grüße(name):\r\n    return f\"שלום {name} 🎉\"\r\n\r\n"
      "def 数(x):\r\n    return x * 2  # e\u0301\r\n";
  for (int64_t size : {8, 16, 40, 1000}) {
    auto chunks = make("code:lang=python,size=" + std::to_string(size) + ",unit=chars")->chunk("u.py", src);
    ASSERT_TRUE(chunks.is_ok()) << chunks.status().to_string();
    expect_tiles(*chunks, src, size, "unicode size " + std::to_string(size));
    for (const Chunk& c : *chunks) {  // never a cut inside a code point
      EXPECT_NE(static_cast<unsigned char>(src[c.byte_begin]) & 0xC0, 0x80);
    }
  }
}

TEST(CodeChunker, InvalidSyntaxAndBytesNeverFail) {
  const std::vector<std::string> langs = {"c", "cpp", "python", "javascript", "typescript", "go", "rust", "java"};
  std::mt19937 rng(7);
  const std::string alphabet = "(){}[];:,.=+-*/<>\"'`#\n\t abcXYZ019_\\\xC3\xA9\xE2\x82\xAC\xFF\x80";
  int ran = 0;
  for (const std::string& lang : langs) {
    if (!grammar_built(lang)) continue;
    ++ran;
    auto chunker = make("code:lang=" + lang + ",size=24,unit=chars");
    for (int round = 0; round < 20; ++round) {
      std::string src;
      const int n = 1 + static_cast<int>(rng() % 600);
      for (int i = 0; i < n; ++i) src += alphabet[rng() % alphabet.size()];
      if (round == 0) src = "def class ((( ]]] {{{ fn func } ) if else \"unterminated";
      auto chunks = chunker->chunk("fuzz", src);
      ASSERT_TRUE(chunks.is_ok()) << lang << ": " << chunks.status().to_string();
      expect_tiles(*chunks, src, 24, lang + " round " + std::to_string(round));
    }
  }
  if (ran == 0) GTEST_SKIP() << "no tree-sitter grammar in this build";
}

TEST(CodeChunker, DeepNestingDoesNotOverflowTheStack) {
  REQUIRE_GRAMMAR("javascript");
  const int depth = 20000;
  const std::string src = "x = " + std::string(depth, '[') + "1" + std::string(depth, ']') + ";\n";
  auto chunks = make("code:lang=javascript,size=50,unit=bytes")->chunk("deep.js", src);
  ASSERT_TRUE(chunks.is_ok()) << chunks.status().to_string();
  expect_tiles(*chunks, src, 50, "deep");
}

TEST(CodeChunker, EmptyInputAndOverlap) {
  REQUIRE_GRAMMAR("rust");
  EXPECT_TRUE(make("code:lang=rust,size=10")->chunk("e.rs", "")->empty());
  std::string src;
  for (int i = 0; i < 20; ++i) src += "fn f" + std::to_string(i) + "() {}\n";
  auto chunks = make("code:lang=rust,size=40,overlap=12,unit=chars")->chunk("o.rs", src);
  ASSERT_TRUE(chunks.is_ok()) << chunks.status().to_string();
  ASSERT_GE(chunks->size(), 2u);
  EXPECT_EQ(chunks->front().byte_begin, 0);
  EXPECT_EQ(chunks->back().byte_end, static_cast<int64_t>(src.size()));
  for (size_t i = 0; i + 1 < chunks->size(); ++i) {
    const Chunk& a = (*chunks)[i];
    const Chunk& b = (*chunks)[i + 1];
    EXPECT_LE(a.n_tokens, 40);
    EXPECT_LE(b.byte_begin, a.byte_end);  // coverage
    EXPECT_GT(b.byte_begin, a.byte_begin);
    EXPECT_LE(utf8_count_codepoints(std::string_view(src).substr(b.byte_begin, a.byte_end - b.byte_begin)), 12u);
  }
}

TEST(CodeChunker, TokenUnitWithAGgufVocab) {
  REQUIRE_GRAMMAR("cpp");
  CW_REQUIRE_SHARED_DATA(dir);
  const std::string vocab = dir + "/vocab/ggml-vocab-llama-spm.gguf";
  std::string src;
  for (int i = 0; i < 12; ++i) {
    src += "int function_number_" + std::to_string(i) + "(int a) {\n  return a * " + std::to_string(i) + " + 7;\n}\n\n";
  }
  auto chunker = make("code:lang=cpp,size=48,unit=tokens,tokenizer=" + vocab);
  ASSERT_NE(chunker, nullptr);
  auto chunks = chunker->chunk("t.cc", src);
  ASSERT_TRUE(chunks.is_ok()) << chunks.status().to_string();
  expect_tiles(*chunks, src, 48, "tokens");
  for (const Chunk& c : *chunks) {
    EXPECT_EQ(c.n_tokens, chunker->config().measure->measure(c.text_in(src)));
  }
}

TEST(CodeChunker, LanguageErrors) {
  auto bad = make_chunker("code:lang=cobol");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("cobol"), std::string::npos);
  EXPECT_NE(bad.status().message().find("python"), std::string::npos);  // lists the known ones

  auto c = make("code:size=100");
  auto r = c->chunk("README", "text");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("lang="), std::string::npos) << r.status().message();

  EXPECT_EQ(*ts::canonical_language("C++"), "cpp");
  EXPECT_EQ(*ts::language_for_path("src/x/y.hpp"), "cpp");
  EXPECT_EQ(*ts::language_for_path("a.b/c.PY"), "python");
  EXPECT_FALSE(ts::language_for_path(".py").is_ok());  // a dot file, not an extension
}

TEST(CodeChunker, MissingGrammarSaysHowToInstallIt) {
  // Whatever this build has, asking for a language without a grammar must name it and the install step.
  for (const std::string& lang : ts::known_languages()) {
    if (grammar_built(lang)) continue;
    auto r = make("code:lang=" + lang + ",size=100")->chunk("x", "x");
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find(lang), std::string::npos);
    EXPECT_NE(r.status().message().find("install-grammars.sh"), std::string::npos) << r.status().message();
  }
  if (ts::built_languages().size() == ts::known_languages().size()) {
    for (const std::string& lang : ts::known_languages()) EXPECT_TRUE(ts::language(lang).is_ok()) << lang;
  }
}

}  // namespace
}  // namespace cw::text
