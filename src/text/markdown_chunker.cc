// markdown: structure-aware chunking.
//   - Blocks: ATX headings (# .. ######), setext headings (a line underlined with === or ---), fenced code
//     (``` or ~~~, up to the matching closing fence or the end), tables (a row with '|' followed by a
//     delimiter row, up to the first line without '|'), paragraphs (up to a blank line). Blank lines belong to
//     the block before them.
//   - Sections: a heading starts a section; its heading path is the stack of enclosing headings (outermost
//     first, the section's own heading last). A chunk never spans two sections (a hard break before each
//     heading), and carries its section's path in Chunk::headings.
//   - Blocks are packed greedily within a section. A fenced code block or a table is one piece: it is split
//     only when larger than the size (code along blank lines, lines, spaces; tables along rows); paragraphs
//     larger than the size are split along the plain preset.
//   - Chunk::kind: "code" or "table" when every non-heading block of the chunk is one, "heading" for a
//     chunk holding only a heading, else "text".
#include <algorithm>

#include "text/chunker.h"
#include "text/pack.h"

namespace cw::text {
namespace {

enum class BlockKind { kHeading, kCode, kTable, kText };

struct Block {
  int64_t begin, end;
  BlockKind kind;
  int32_t section;
};

struct Section {
  std::vector<std::string> path;
};

std::string_view line_at(std::string_view t, size_t pos, size_t& next) {
  const size_t nl = t.find('\n', pos);
  next = nl == std::string_view::npos ? t.size() : nl + 1;
  return t.substr(pos, next - pos);
}

std::string_view strip_eol(std::string_view l) {
  while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.remove_suffix(1);
  return l;
}

bool is_blank(std::string_view l) {
  for (char c : l) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  }
  return true;
}

// Up to 3 leading spaces.
std::string_view unindent(std::string_view l) {
  for (int k = 0; k < 3 && !l.empty() && l.front() == ' '; ++k) l.remove_prefix(1);
  return l;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// ATX heading level (1..6) and text, or 0.
int atx_level(std::string_view line, std::string& text) {
  std::string_view l = unindent(strip_eol(line));
  int level = 0;
  while (level < (int)l.size() && l[static_cast<size_t>(level)] == '#') ++level;
  if (level == 0 || level > 6) return 0;
  if (static_cast<size_t>(level) < l.size() && l[static_cast<size_t>(level)] != ' ' && l[static_cast<size_t>(level)] != '\t') return 0;
  std::string_view rest = trim(l.substr(static_cast<size_t>(level)));
  // Optional closing sequence of '#'.
  size_t k = rest.size();
  while (k > 0 && rest[k - 1] == '#') --k;
  if (k == 0 || rest[k - 1] == ' ' || rest[k - 1] == '\t') rest = trim(rest.substr(0, k));
  text = std::string(rest);
  return level;
}

// Setext underline: 1 for '=' lines, 2 for '-' lines, else 0.
int setext_level(std::string_view line) {
  std::string_view l = trim(unindent(strip_eol(line)));
  if (l.empty()) return 0;
  const char c = l[0];
  if (c != '=' && c != '-') return 0;
  for (char x : l) {
    if (x != c) return 0;
  }
  return c == '=' ? 1 : 2;
}

// Opening fence: its char and length (>= 3), or 0.
int fence_open(std::string_view line, char& ch) {
  std::string_view l = unindent(strip_eol(line));
  if (l.size() < 3 || (l[0] != '`' && l[0] != '~')) return 0;
  ch = l[0];
  int n = 0;
  while (n < (int)l.size() && l[static_cast<size_t>(n)] == ch) ++n;
  if (n < 3) return 0;
  if (ch == '`' && l.substr(static_cast<size_t>(n)).find('`') != std::string_view::npos) return 0;
  return n;
}

bool fence_close(std::string_view line, char ch, int n) {
  std::string_view l = trim(unindent(strip_eol(line)));
  if ((int)l.size() < n) return false;
  for (char x : l) {
    if (x != ch) return false;
  }
  return true;
}

// A table delimiter row: cells of -, with optional ':' at the ends, separated by '|'.
bool is_delimiter_row(std::string_view line) {
  std::string_view l = trim(strip_eol(line));
  if (l.empty() || l.find('-') == std::string_view::npos) return false;
  bool pipe = false;
  for (char c : l) {
    if (c == '|') pipe = true;
    else if (c != '-' && c != ':' && c != ' ' && c != '\t') return false;
  }
  return pipe || l.size() >= 3;
}

void parse_blocks(std::string_view t, std::vector<Block>& blocks, std::vector<Section>& sections) {
  sections.push_back(Section{});  // text before the first heading
  std::vector<std::pair<int, std::string>> stack;
  int32_t section = 0;
  auto new_section = [&](int level, std::string text) {
    while (!stack.empty() && stack.back().first >= level) stack.pop_back();
    stack.emplace_back(level, std::move(text));
    Section s;
    for (auto& h : stack) s.path.push_back(h.second);
    sections.push_back(std::move(s));
    section = static_cast<int32_t>(sections.size() - 1);
  };
  auto add = [&](int64_t b, int64_t e, BlockKind k) {
    if (e > b) blocks.push_back(Block{b, e, k, section});
  };
  size_t pos = 0;
  while (pos < t.size()) {
    size_t next;
    std::string_view line = line_at(t, pos, next);
    if (is_blank(line)) {  // blank lines join the previous block
      if (!blocks.empty() && blocks.back().end == static_cast<int64_t>(pos)) {
        blocks.back().end = static_cast<int64_t>(next);
      } else {
        add(static_cast<int64_t>(pos), static_cast<int64_t>(next), BlockKind::kText);
      }
      pos = next;
      continue;
    }
    std::string htext;
    if (int level = atx_level(line, htext); level > 0) {
      new_section(level, htext);
      add(static_cast<int64_t>(pos), static_cast<int64_t>(next), BlockKind::kHeading);
      pos = next;
      continue;
    }
    char ch;
    if (int n = fence_open(line, ch); n > 0) {
      size_t p = next;
      while (p < t.size()) {
        size_t nn;
        std::string_view l = line_at(t, p, nn);
        p = nn;
        if (fence_close(l, ch, n)) break;
      }
      add(static_cast<int64_t>(pos), static_cast<int64_t>(p), BlockKind::kCode);
      pos = p;
      continue;
    }
    size_t next2;
    std::string_view line2 = next < t.size() ? line_at(t, next, next2) : std::string_view();
    if (!line2.empty() && line.find('|') != std::string_view::npos && is_delimiter_row(line2)) {
      size_t p = next2;
      while (p < t.size()) {
        size_t nn;
        std::string_view l = line_at(t, p, nn);
        if (is_blank(l) || l.find('|') == std::string_view::npos) break;
        p = nn;
      }
      add(static_cast<int64_t>(pos), static_cast<int64_t>(p), BlockKind::kTable);
      pos = p;
      continue;
    }
    if (!line2.empty()) {
      if (int level = setext_level(line2); level > 0 && !is_blank(line)) {
        new_section(level, std::string(trim(unindent(strip_eol(line)))));
        add(static_cast<int64_t>(pos), static_cast<int64_t>(next2), BlockKind::kHeading);
        pos = next2;
        continue;
      }
    }
    // Paragraph: up to a blank line or a line that starts another block.
    size_t p = next;
    while (p < t.size()) {
      size_t nn;
      std::string_view l = line_at(t, p, nn);
      std::string tmp;
      char c2;
      if (is_blank(l) || atx_level(l, tmp) > 0 || fence_open(l, c2) > 0) break;
      size_t n3;
      std::string_view l3 = nn < t.size() ? line_at(t, nn, n3) : std::string_view();
      if (!l3.empty() && l.find('|') != std::string_view::npos && is_delimiter_row(l3)) break;
      if (!l3.empty() && setext_level(l3) > 0) break;  // the next line is a setext heading
      p = nn;
    }
    add(static_cast<int64_t>(pos), static_cast<int64_t>(p), BlockKind::kText);
    pos = p;
  }
}

std::vector<SeparatorLevel> code_levels() {
  return {{{"\n\n", 2}, {"\r\n\r\n", 4}}, {{"\n", 1}}, {{" ", 1}, {"\t", 1}}};
}
std::vector<SeparatorLevel> table_levels() { return {{{"\n", 1}}, {{"|", 1}}, {{" ", 1}}}; }

class MarkdownChunker final : public Chunker {
 public:
  using Chunker::Chunker;

  Result<std::vector<Chunk>> chunk(std::string_view doc_id, std::string_view text) const override {
    const DocText doc(text);
    std::unique_ptr<DocSizer> sizer = config().measure->bind(doc);
    std::vector<Block> blocks;
    std::vector<Section> sections;
    parse_blocks(text, blocks, sections);
    static const std::vector<SeparatorLevel> kCode = code_levels(), kTable = table_levels();
    const SeparatorPreset* plain = find_preset("plain");
    std::vector<Piece> pieces;
    int32_t prev_section = -1;
    for (const Block& b : blocks) {
      const size_t first = pieces.size();
      const std::vector<SeparatorLevel>& levels =
          b.kind == BlockKind::kCode ? kCode : b.kind == BlockKind::kTable ? kTable : plain->levels;
      split_recursive(*sizer, b.begin, b.end, levels, 0, config().size, pieces);
      for (size_t k = first; k < pieces.size(); ++k) pieces[k].tag = b.section;
      if (pieces.size() > first && b.section != prev_section) pieces[first].hard_break = true;
      prev_section = b.section;
    }
    std::vector<PackedChunk> packed;
    CW_ASSIGN_OR_RETURN(std::vector<Chunk> chunks, pack_to_chunks(config(), *sizer, doc_id, pieces, &packed));
    for (size_t i = 0; i < chunks.size(); ++i) {
      Chunk& c = chunks[i];
      const int32_t tag = packed[i].tag;
      if (tag >= 0) c.headings = sections[static_cast<size_t>(tag)].path;
      c.kind = kind_of(blocks, c.byte_begin, c.byte_end);
    }
    return chunks;
  }

 private:
  static std::string kind_of(const std::vector<Block>& blocks, int64_t b, int64_t e) {
    auto it = std::upper_bound(blocks.begin(), blocks.end(), b, [](int64_t x, const Block& k) { return x < k.end; });
    bool any = false, all_code = true, all_table = true;
    for (; it != blocks.end() && it->begin < e; ++it) {
      if (it->kind == BlockKind::kHeading) continue;
      any = true;
      all_code &= it->kind == BlockKind::kCode;
      all_table &= it->kind == BlockKind::kTable;
    }
    if (!any) return "heading";
    if (all_code) return "code";
    if (all_table) return "table";
    return "text";
  }
};

Result<std::unique_ptr<Chunker>> create(const ChunkerConfig& config) {
  return std::unique_ptr<Chunker>(new MarkdownChunker(config));
}

}  // namespace

const MethodInfo& markdown_method() {
  static const MethodInfo kInfo{
      "markdown",
      "markdown sections with heading paths; code fences and tables kept whole unless larger than the size",
      {},
      create};
  return kInfo;
}

}  // namespace cw::text
