// Runs the data-driven chunker cases in tests/chunk_cases/*.cases (format: README.md there).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/utf8.h"
#include "support/testing.h"
#include "text/chunker.h"

namespace cw::text {
namespace {

struct Case {
  std::string file;
  int line = 0;
  std::string name, spec, input;
  bool has_bytes = false;
  std::vector<std::pair<int64_t, int64_t>> bytes, chars;
  std::vector<int64_t> sizes;
  std::vector<std::string> texts, kinds;
  std::vector<std::pair<int64_t, std::string>> headings;
  std::string error_code, error_text;
  bool needs_vocab = false;
};

// Parses a quoted string with escapes starting at s[i] == '"'; advances i past the closing quote.
bool parse_quoted(const std::string& s, size_t& i, std::string& out, std::string& err) {
  if (i >= s.size() || s[i] != '"') {
    err = "expected a quoted string";
    return false;
  }
  ++i;
  while (i < s.size() && s[i] != '"') {
    char c = s[i++];
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (i >= s.size()) break;
    c = s[i++];
    switch (c) {
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case '\\': out.push_back('\\'); break;
      case '"': out.push_back('"'); break;
      case 'x': {
        if (i + 2 > s.size()) {
          err = "bad \\x escape";
          return false;
        }
        out.push_back(static_cast<char>(std::stoi(s.substr(i, 2), nullptr, 16)));
        i += 2;
        break;
      }
      case 'u': {
        const size_t close = s.find('}', i);
        if (i >= s.size() || s[i] != '{' || close == std::string::npos) {
          err = "bad \\u{...} escape";
          return false;
        }
        utf8_append(out, static_cast<uint32_t>(std::stoul(s.substr(i + 1, close - i - 1), nullptr, 16)));
        i = close + 1;
        break;
      }
      default:
        err = std::string("unknown escape \\") + c;
        return false;
    }
  }
  if (i >= s.size()) {
    err = "unterminated string";
    return false;
  }
  ++i;
  return true;
}

std::vector<std::pair<int64_t, int64_t>> parse_ranges(const std::string& v) {
  std::vector<std::pair<int64_t, int64_t>> out;
  std::istringstream ss(v);
  std::string tok;
  while (ss >> tok) {
    const size_t dash = tok.find('-');
    out.emplace_back(std::stoll(tok.substr(0, dash)), std::stoll(tok.substr(dash + 1)));
  }
  return out;
}

std::vector<Case> load_cases(std::string& err) {
  std::vector<Case> cases;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(CW_CHUNK_CASES_DIR)) {
    if (e.path().extension() == ".cases") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    std::ifstream f(path);
    std::string line;
    int lineno = 0;
    while (std::getline(f, line)) {
      ++lineno;
      if (line.empty() || line[0] == '#') continue;
      const size_t sp = line.find(' ');
      const std::string key = line.substr(0, sp);
      const std::string v = sp == std::string::npos ? "" : line.substr(sp + 1);
      const std::string where = path.filename().string() + ":" + std::to_string(lineno);
      if (key == "case") {
        cases.emplace_back();
        cases.back().file = path.filename().string();
        cases.back().line = lineno;
        cases.back().name = v;
        continue;
      }
      if (cases.empty()) {
        err = where + ": key before the first case";
        return {};
      }
      Case& c = cases.back();
      if (key == "spec") {
        c.spec = v;
        if (v.find("$VOCAB/") != std::string::npos) c.needs_vocab = true;
      } else if (key == "input") {
        size_t i = 0;
        if (!parse_quoted(v, i, c.input, err)) {
          err = where + ": " + err;
          return {};
        }
      } else if (key == "bytes") {
        c.has_bytes = true;
        c.bytes = parse_ranges(v);
      } else if (key == "chars") {
        c.chars = parse_ranges(v);
      } else if (key == "sizes") {
        std::istringstream ss(v);
        int64_t n;
        while (ss >> n) c.sizes.push_back(n);
      } else if (key == "kinds") {
        std::istringstream ss(v);
        std::string k;
        while (ss >> k) c.kinds.push_back(k);
      } else if (key == "texts") {
        size_t i = 0;
        while (i < v.size()) {
          if (v[i] == ' ') {
            ++i;
            continue;
          }
          std::string t;
          if (!parse_quoted(v, i, t, err)) {
            err = where + ": " + err;
            return {};
          }
          c.texts.push_back(t);
        }
      } else if (key == "headings") {
        std::istringstream ss(v);
        int64_t idx;
        ss >> idx;
        std::string rest;
        std::getline(ss, rest);
        while (!rest.empty() && rest.front() == ' ') rest.erase(rest.begin());
        c.headings.emplace_back(idx, rest);
      } else if (key == "error") {
        const size_t s2 = v.find(' ');
        c.error_code = v.substr(0, s2);
        c.error_text = s2 == std::string::npos ? "" : v.substr(s2 + 1);
      } else {
        err = where + ": unknown key '" + key + "'";
        return {};
      }
    }
  }
  return cases;
}

std::string code_name(StatusCode code) {
  std::string s = status_code_name(code);
  std::replace(s.begin(), s.end(), ' ', '_');
  return s;
}

std::string join_path(const std::vector<std::string>& h) {
  std::string s;
  for (size_t i = 0; i < h.size(); ++i) s += (i ? " > " : "") + h[i];
  return s;
}

TEST(ChunkCases, AllCasesPass) {
  std::string err;
  const std::vector<Case> cases = load_cases(err);
  ASSERT_TRUE(err.empty()) << err;
  ASSERT_GT(cases.size(), 20u);
  const auto shared = testing::shared_data_dir();
  int run = 0, skipped = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file + ":" + std::to_string(c.line) + " case " + c.name);
    std::string spec = c.spec;
    if (c.needs_vocab) {
      if (!shared) {
        ++skipped;
        continue;
      }
      for (size_t p; (p = spec.find("$VOCAB/")) != std::string::npos;) spec.replace(p, 7, *shared + "/vocab/");
    }
    ++run;
    auto chunker = make_chunker(spec);
    Result<std::vector<Chunk>> got = chunker.is_ok() ? (*chunker)->chunk("case", c.input) : chunker.status();
    if (!c.error_code.empty()) {
      ASSERT_FALSE(got.is_ok()) << "expected error " << c.error_code;
      EXPECT_EQ(code_name(got.status().code()), c.error_code) << got.status().to_string();
      EXPECT_NE(got.status().message().find(c.error_text), std::string::npos) << got.status().to_string();
      continue;
    }
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    const std::vector<Chunk>& chunks = *got;
    const ChunkerConfig& cfg = (*chunker)->config();
    // Invariants.
    int64_t prev_begin = -1, prev_end = 0;
    for (size_t i = 0; i < chunks.size(); ++i) {
      const Chunk& k = chunks[i];
      EXPECT_EQ(k.index, static_cast<int64_t>(i));
      ASSERT_LE(0, k.byte_begin);
      ASSERT_LT(k.byte_begin, k.byte_end);
      ASSERT_LE(k.byte_end, static_cast<int64_t>(c.input.size()));
      EXPECT_GT(k.byte_begin, prev_begin);
      EXPECT_LE(k.byte_begin, prev_end);
      if (cfg.overlap == 0) EXPECT_EQ(k.byte_begin, prev_end);
      EXPECT_EQ(k.char_begin, static_cast<int64_t>(utf8_count_codepoints(std::string_view(c.input).substr(0, k.byte_begin))));
      EXPECT_EQ(k.char_end - k.char_begin, static_cast<int64_t>(utf8_count_codepoints(k.text_in(c.input))));
      EXPECT_EQ(k.n_tokens, cfg.measure->measure(k.text_in(c.input)));
      EXPECT_LE(k.n_tokens, cfg.size);
      prev_begin = k.byte_begin;
      prev_end = k.byte_end;
    }
    EXPECT_EQ(prev_end, static_cast<int64_t>(c.input.size()));
    // Expectations.
    if (c.has_bytes) {
      std::vector<std::pair<int64_t, int64_t>> b;
      for (const Chunk& k : chunks) b.emplace_back(k.byte_begin, k.byte_end);
      EXPECT_EQ(b, c.bytes);
    }
    if (!c.chars.empty()) {
      std::vector<std::pair<int64_t, int64_t>> b;
      for (const Chunk& k : chunks) b.emplace_back(k.char_begin, k.char_end);
      EXPECT_EQ(b, c.chars);
    }
    if (!c.sizes.empty()) {
      std::vector<int64_t> s;
      for (const Chunk& k : chunks) s.push_back(k.n_tokens);
      EXPECT_EQ(s, c.sizes);
    }
    if (!c.texts.empty()) {
      std::vector<std::string> t;
      for (const Chunk& k : chunks) t.emplace_back(k.text_in(c.input));
      EXPECT_EQ(t, c.texts);
    }
    if (!c.kinds.empty()) {
      std::vector<std::string> t;
      for (const Chunk& k : chunks) t.push_back(k.kind);
      EXPECT_EQ(t, c.kinds);
    }
    for (const auto& [idx, path] : c.headings) {
      ASSERT_LT(idx, static_cast<int64_t>(chunks.size()));
      EXPECT_EQ(join_path(chunks[static_cast<size_t>(idx)].headings), path) << "chunk " << idx;
    }
  }
  std::printf("chunk cases: %d run, %d skipped (no shared vocab)\n", run, skipped);
}

}  // namespace
}  // namespace cw::text
