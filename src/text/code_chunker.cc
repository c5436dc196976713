#include "text/code_chunker.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "text/measure.h"
#include "text/pack.h"
#include "text/treesitter/languages.h"

#if CW_HAVE_TREE_SITTER
#include <tree_sitter/api.h>
#endif

namespace cw::text {
namespace {

#if CW_HAVE_TREE_SITTER

// Owning handles for the tree-sitter C objects.
struct ParserDeleter {
  void operator()(TSParser* p) const { ts_parser_delete(p); }
};
struct TreeDeleter {
  void operator()(TSTree* t) const { ts_tree_delete(t); }
};

// Node types that name a scope worth reporting in Chunk::headings (across the supported grammars).
bool is_definition(std::string_view type) {
  static const char* const kTypes[] = {
      "function_definition",   "function_declaration",   "function_item",
      "method_definition",     "method_declaration",     "constructor_declaration",
      "class_definition",      "class_declaration",      "class_specifier",
      "struct_specifier",      "union_specifier",        "enum_specifier",
      "namespace_definition",  "struct_item",            "enum_item",
      "union_item",            "impl_item",              "trait_item",
      "mod_item",              "interface_declaration",  "enum_declaration",
      "record_declaration",    "abstract_class_declaration", "generator_function_declaration",
      "internal_module",       "module",                 "type_spec",
      "annotation_type_declaration",
  };
  for (const char* t : kTypes) {
    if (type == t) return true;
  }
  return false;
}

std::string_view node_text(std::string_view text, TSNode n) {
  const uint32_t b = ts_node_start_byte(n), e = ts_node_end_byte(n);
  if (b >= e || e > text.size()) return {};
  return text.substr(b, e - b);
}

// One-line, bounded rendering of a name for headings.
std::string clean_name(std::string_view s) {
  constexpr size_t kMax = 120;
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
    if (out.size() >= kMax) break;
  }
  // Never end inside a UTF-8 sequence: drop trailing continuation bytes + their lead byte.
  while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
  if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xC0) out.pop_back();
  return out;
}

TSNode field(TSNode n, const char* name) {
  return ts_node_child_by_field_name(n, name, static_cast<uint32_t>(std::strlen(name)));
}

// The name of a definition node, or "" when it has none (anonymous class, lambda...).
std::string definition_name(std::string_view text, TSNode n) {
  const std::string_view type = ts_node_type(n);
  if (type == "impl_item") {  // Rust: impl [Trait for] Type
    const TSNode ty = field(n, "type");
    const TSNode tr = field(n, "trait");
    if (ts_node_is_null(ty)) return {};
    std::string s = "impl ";
    if (!ts_node_is_null(tr)) s += std::string(node_text(text, tr)) + " for ";
    s += node_text(text, ty);
    return clean_name(s);
  }
  TSNode name = field(n, "name");
  if (!ts_node_is_null(name)) return clean_name(node_text(text, name));
  // C / C++ functions: declarator chain down to the identifier.
  TSNode d = field(n, "declarator");
  for (int depth = 0; depth < 16 && !ts_node_is_null(d); ++depth) {
    const std::string_view dt = ts_node_type(d);
    if (dt.find("identifier") != std::string_view::npos || dt == "operator_name" || dt == "destructor_name" ||
        dt == "operator_cast") {
      return clean_name(node_text(text, d));
    }
    TSNode next = field(d, "declarator");
    if (ts_node_is_null(next)) break;
    d = next;
  }
  return {};
}

// Definitions that only wrap others (a namespace, a module): their head does not name a chunk's kind.
bool is_container(std::string_view type) {
  return type == "namespace_definition" || type == "mod_item" || type == "internal_module" || type == "module";
}

bool is_comment(std::string_view type) { return type.find("comment") != std::string_view::npos; }

struct HeadingNode {
  int32_t parent = -1;
  std::string name;
};

struct PieceMeta {
  const char* kind;  // a node type (static string owned by the grammar) or a literal
  int32_t heading;   // index into the heading table, -1 = none
  bool header;       // part of the head of a split definition (before its body): kind is the definition's
};

// A range of the document to turn into pieces. Either one syntax node (members < 0) whose text, extended to
// [lo, hi), is handled as a unit, or a group of consecutive sibling nodes (members index
// CodeSplitter::members_: the children after the first on a line, comments directly above a sibling) which
// stays together when it fits and is taken apart member by member otherwise.
struct Work {
  TSNode node;  // the node (single) or the group's main member (for its kind)
  int64_t lo = 0, hi = 0;
  int32_t heading = -1;
  int32_t members_begin = -1, members_end = -1;  // [begin, end) in CodeSplitter::members_
  const char* kind = nullptr;  // node type of node, or of the nearest named ancestor for anonymous tokens
  const char* parent_kind = nullptr;  // groups: the kind of the node whose children they are
  bool header = false;                // head of a split definition (see PieceMeta::header)
  bool parent_is_definition = false;  // groups: members before the main one are the definition's head
  bool fragment = false;  // the head of an enclosing split node (a keyword, a name, an opening brace)
};

const char* kind_of(TSNode n, const char* parent_kind) {
  return ts_node_is_named(n) || parent_kind == nullptr ? ts_node_type(n) : parent_kind;
}

struct Member {
  TSNode node;
  int64_t lo = 0, hi = 0;
};

class CodeSplitter {
 public:
  CodeSplitter(const DocText& doc, const DocSizer& sizer, int64_t limit)
      : doc_(doc), text_(doc.text()), sizer_(sizer), limit_(limit) {}

  // Tiles the whole document with pieces (tags index metas()).
  void run(TSNode root, std::vector<Piece>& pieces) {
    std::vector<Work> stack;
    stack.push_back(Work{root, 0, doc_.size(), -1, -1, -1, ts_node_type(root)});
    std::vector<Work> children;
    while (!stack.empty()) {
      const Work w = stack.back();
      stack.pop_back();
      if (w.lo >= w.hi) continue;
      // A node known to be over the limit by its byte length alone is not measured: measuring every
      // enclosing node of a deep nest exactly would cost O(depth x size).
      const int64_t est = sizer_.min_units(w.hi - w.lo) > limit_ ? limit_ + 1 : sizer_.estimate(w.lo, w.hi);
      const char* kind = w.kind;
      if (est <= limit_) {
        emit(w.lo, w.hi, est, kind, w.heading, w.header, pieces);
        complete_since_break_ = complete_since_break_ || !w.fragment;
        continue;
      }
      // Too large for one chunk: it starts a new chunk (its first piece gets a hard break) unless the chunk
      // in progress holds only heads of the nodes enclosing it; then it is split.
      if (!w.fragment && complete_since_break_) {
        break_next_ = true;
        complete_since_break_ = false;
      }
      if (w.members_begin >= 0) {
        // A group too large as a whole: its members one by one; for a definition, the members before the
        // main one (return type, declarator, comments above) are its head.
        int32_t main = w.members_begin;
        for (int32_t m = w.members_begin; m < w.members_end; ++m) {
          if (ts_node_eq(members_[m].node, w.node)) main = m;
        }
        for (int32_t m = w.members_end - 1; m >= w.members_begin; --m) {
          const bool head = w.parent_is_definition && m < main;
          Work item{members_[m].node, members_[m].lo, members_[m].hi, w.heading, -1, -1,
                    head ? w.parent_kind : kind_of(members_[m].node, w.parent_kind)};
          item.header = head || (w.header && m < main);
          item.fragment = head || w.fragment;
          stack.push_back(item);
        }
        continue;
      }
      children.clear();
      expand(w, children);
      if (children.empty()) {
        split_text(w.lo, w.hi, kind, w.heading, w.header, pieces);
        complete_since_break_ = complete_since_break_ || !w.fragment;
        continue;
      }
      for (auto it = children.rbegin(); it != children.rend(); ++it) stack.push_back(*it);
    }
  }

  const std::vector<PieceMeta>& metas() const { return metas_; }
  const std::vector<HeadingNode>& headings() const { return headings_; }

 private:
  void emit(int64_t b, int64_t e, int64_t est, const char* kind, int32_t heading, bool header,
            std::vector<Piece>& out) {
    Piece p;
    p.begin = b;
    p.end = e;
    p.size = est;
    p.tag = meta(kind, heading, header);
    p.hard_break = break_next_;
    break_next_ = false;
    out.push_back(p);
  }

  int32_t meta(const char* kind, int32_t heading, bool header) {
    metas_.push_back(PieceMeta{kind, heading, header});
    return static_cast<int32_t>(metas_.size() - 1);
  }

  // A range with no usable syntax structure: the recursive "code" preset, then atoms.
  void split_text(int64_t b, int64_t e, const char* kind, int32_t heading, bool header, std::vector<Piece>& out) {
    const SeparatorPreset* preset = find_preset("code");
    static const std::vector<SeparatorLevel> kNone;
    const size_t first = out.size();
    split_recursive(sizer_, b, e, preset != nullptr ? preset->levels : kNone, 0, limit_, out);
    const int32_t tag = meta(kind, heading, header);
    for (size_t i = first; i < out.size(); ++i) out[i].tag = tag;
    if (out.size() > first) {
      out[first].hard_break = out[first].hard_break || break_next_;
      break_next_ = false;
    }
  }

  // Where a child starting at `s` may be cut from what precedes it: the start of its line when only
  // spaces/tabs precede it there (line_start = true), else s itself (line_start = false). Never before floor.
  int64_t cut_before(int64_t s, int64_t floor, bool& line_start) const {
    int64_t p = s;
    while (p > floor && (text_[p - 1] == ' ' || text_[p - 1] == '\t')) --p;
    line_start = p == 0 || text_[p - 1] == '\n' || text_[p - 1] == '\r';
    return line_start ? p : s;
  }

  int newlines_between(int64_t b, int64_t e) const {
    int n = 0;
    for (int64_t p = b; p < e && n < 2; ++p) n += text_[p] == '\n';
    return n;
  }

  // Children of w.node as work items tiling [w.lo, w.hi): one item per line group (see Work).
  void expand(const Work& w, std::vector<Work>& out) {
    int32_t heading = w.heading;
    const std::string_view type = ts_node_type(w.node);
    const bool definition = ts_node_is_named(w.node) && is_definition(type);
    if (definition) {
      std::string name = definition_name(text_, w.node);
      if (!name.empty()) {
        headings_.push_back(HeadingNode{w.heading, std::move(name)});
        heading = static_cast<int32_t>(headings_.size() - 1);
      }
    }
    kids_.clear();
    TSTreeCursor cursor = ts_tree_cursor_new(w.node);
    if (ts_tree_cursor_goto_first_child(&cursor)) {
      do {
        const TSNode c = ts_tree_cursor_current_node(&cursor);
        const int64_t s = ts_node_start_byte(c), e = ts_node_end_byte(c);
        if (e <= s) continue;                  // MISSING nodes and other empty tokens
        if (e <= w.lo || s >= w.hi) continue;  // outside the range (cannot happen for a tree, but be safe)
        kids_.push_back(Member{c, std::max<int64_t>(s, w.lo), std::min<int64_t>(e, w.hi)});
      } while (ts_tree_cursor_goto_next_sibling(&cursor));
    }
    ts_tree_cursor_delete(&cursor);
    if (kids_.empty()) return;
    if (kids_.size() == 1) {  // a wrapper: descend without a cut
      Work item{kids_[0].node, w.lo, w.hi, heading, -1, -1, kind_of(kids_[0].node, w.kind)};
      item.header = w.header;
      item.fragment = w.fragment;
      out.push_back(item);
      return;
    }
    // The largest child of a definition is its body; the children before it are its head.
    size_t body = 0;
    for (size_t k = 1; k < kids_.size(); ++k) {
      if (kids_[k].hi - kids_[k].lo > kids_[body].hi - kids_[body].lo) body = k;
    }
    // Children before the content are fragments of this node's head: a definition's head, or the anonymous
    // tokens (an opening brace) before the first named child of anything else.
    size_t content = definition ? body : 0;
    if (!definition) {
      while (content < kids_.size() && !ts_node_is_named(kids_[content].node)) ++content;
    }
    // Ranges: child i owns [cut_i, cut_{i+1}) where cut_0 = w.lo and the last ends at w.hi; a new group
    // starts at child i when it begins a line and the previous child is not a comment sitting directly
    // above it (no blank line between).
    const size_t n = kids_.size();
    std::vector<int64_t> cuts(n + 1);
    std::vector<uint8_t> starts_group(n, 0), line_start(n, 1), attached(n + 1, 0);
    cuts[0] = w.lo;
    {
      bool ls = false;
      cut_before(kids_[0].lo, w.lo, ls);
      line_start[0] = ls;
    }
    for (size_t i = 1; i < n; ++i) {
      bool ls = false;
      int64_t c = cut_before(kids_[i].lo, cuts[i - 1], ls);
      c = std::clamp<int64_t>(doc_.floor_boundary(std::clamp<int64_t>(c, cuts[i - 1], w.hi)), cuts[i - 1], w.hi);
      cuts[i] = c;
      line_start[i] = ls;
    }
    cuts[n] = w.hi;
    // attached[i]: child i-1 is a comment directly above child i (no blank line) and child i is a sibling
    // or another comment of such a run, so the comments travel with the sibling below them.
    for (size_t i = n - 1; i >= 1; --i) {
      const bool prev_comment = is_comment(ts_node_type(kids_[i - 1].node));
      const bool cur_comment = is_comment(ts_node_type(kids_[i].node));
      attached[i] = prev_comment && line_start[i - 1] && newlines_between(kids_[i - 1].hi, kids_[i].lo) <= 1 &&
                    (!cur_comment || attached[i + 1]);
    }
    starts_group[0] = 1;
    for (size_t i = 1; i < n; ++i) starts_group[i] = line_start[i] && !attached[i];
    for (size_t i = 0; i < n;) {
      size_t j = i + 1;
      while (j < n && !starts_group[j]) ++j;  // group [i, j)
      // Head of this (split) definition: labelled with the definition's kind. A split non-definition passes
      // its own head flag to its first child range only.
      const bool head = (definition && i < body) || (w.header && i == 0);
      if (j - i == 1) {
        Work item{kids_[i].node, cuts[i], cuts[i + 1], heading, -1, -1,
                  definition && i < body ? w.kind : kind_of(kids_[i].node, w.kind)};
        item.header = head;
        item.fragment = w.fragment || i < content;
        out.push_back(item);
      } else {
        const int32_t mb = static_cast<int32_t>(members_.size());
        size_t main = i;
        int64_t main_bytes = -1;
        for (size_t k = i; k < j; ++k) {
          members_.push_back(Member{kids_[k].node, cuts[k], cuts[k + 1]});
          const int64_t bytes = kids_[k].hi - kids_[k].lo;
          if (!is_comment(ts_node_type(kids_[k].node)) && bytes > main_bytes) main = k, main_bytes = bytes;
        }
        const bool group_head = head || (definition && j > body && i <= body);
        Work g{kids_[main].node, cuts[i], cuts[j], heading, mb, static_cast<int32_t>(members_.size()),
               definition && i <= body ? w.kind : kind_of(kids_[main].node, w.kind)};
        g.parent_kind = w.kind;
        g.parent_is_definition = definition;
        g.header = group_head;
        g.fragment = w.fragment || i < content;
        out.push_back(g);
      }
      i = j;
    }
  }

  const DocText& doc_;
  std::string_view text_;
  const DocSizer& sizer_;
  int64_t limit_;
  std::vector<PieceMeta> metas_;
  std::vector<HeadingNode> headings_;
  std::vector<Member> members_;  // group members of pending work items (append-only)
  std::vector<Member> kids_;     // scratch
  bool break_next_ = false;      // the next emitted piece starts a new chunk
  bool complete_since_break_ = false;  // a piece that is not a fragment was emitted since the last break
};

std::vector<std::string> heading_path(const std::vector<HeadingNode>& table, int32_t h) {
  std::vector<std::string> path;
  for (; h >= 0; h = table[h].parent) path.push_back(table[h].name);
  std::reverse(path.begin(), path.end());
  return path;
}

// Deepest heading shared by a and b (indices into the table; -1 = none).
int32_t common_heading(const std::vector<HeadingNode>& table, int32_t a, int32_t b) {
  auto depth = [&](int32_t h) {
    int d = 0;
    for (; h >= 0; h = table[h].parent) ++d;
    return d;
  };
  int da = depth(a), db = depth(b);
  while (da > db) a = table[a].parent, --da;
  while (db > da) b = table[b].parent, --db;
  while (a != b) a = table[a].parent, b = table[b].parent;
  return a;
}

#endif  // CW_HAVE_TREE_SITTER

class CodeChunker final : public Chunker {
 public:
  CodeChunker(ChunkerConfig config, std::string lang) : Chunker(std::move(config)), lang_(std::move(lang)) {}

  Result<std::vector<Chunk>> chunk(std::string_view doc_id, std::string_view text) const override {
    std::string lang = lang_;
    if (lang.empty()) {
      Result<std::string> by_path = ts::language_for_path(doc_id);
      if (!by_path.is_ok()) return invalid_argument(by_path.status().message());
      lang = std::move(by_path).value();
    }
    CW_ASSIGN_OR_RETURN(const TSLanguage* language, ts::language(lang));
    std::vector<Chunk> out;
    if (text.empty()) return out;
#if CW_HAVE_TREE_SITTER
    if (text.size() > std::numeric_limits<uint32_t>::max()) {
      return out_of_range("code chunker: '" + std::string(doc_id) + "' is " + std::to_string(text.size()) +
                          " bytes; tree-sitter parses at most 4 GiB");
    }
    std::unique_ptr<TSParser, ParserDeleter> parser(ts_parser_new());
    if (!ts_parser_set_language(parser.get(), language)) {
      return unimplemented("code chunker: libtree-sitter refused the " + lang + " grammar (language ABI " +
                           std::to_string(ts_language_version(language)) + ")");
    }
    const DocText doc(text);
    // Tree-sitter's error recovery is slow and memory-hungry on text that is not source code (random bytes:
    // ~17 us and ~270 bytes per input byte), and Debian's libtree-sitter 0.20 corrupts its heap on ~70,000
    // nested brackets. Invalid UTF-8, documents over kMaxParseBytes, brackets nested deeper than
    // kMaxBracketDepth (real code nests a few dozen deep) and parses over a time budget proportional to the
    // size are chunked with the recursive "code" preset instead.
    std::unique_ptr<TSTree, TreeDeleter> tree;
    if (doc.valid_utf8() && text.size() <= kMaxParseBytes && bracket_depth(text) <= kMaxBracketDepth) {
      ts_parser_set_timeout_micros(parser.get(), kParseMicrosBase + text.size() * kParseMicrosPerKiB / 1024);
      tree.reset(ts_parser_parse_string(parser.get(), nullptr, text.data(), static_cast<uint32_t>(text.size())));
    }
    if (!tree) return chunk_without_tree(doc, doc_id);

    const std::unique_ptr<DocSizer> sizer = config().measure->bind(doc);
    CodeSplitter splitter(doc, *sizer, config().size);
    std::vector<Piece> pieces;
    splitter.run(ts_tree_root_node(tree.get()), pieces);

    std::vector<PackedChunk> packed;
    CW_RETURN_IF_ERROR(pack_pieces(*sizer, pieces, PackOptions{config().size, config().overlap}, packed));
    to_chunks(doc, doc_id, packed, 0, out);

    // kind = type of the chunk's largest piece; headings = the path its pieces share.
    const std::vector<PieceMeta>& metas = splitter.metas();
    const std::vector<HeadingNode>& table = splitter.headings();
    size_t first = 0;
    for (size_t k = 0; k < packed.size(); ++k) {
      const PackedChunk& pc = packed[k];
      while (first < pieces.size() && pieces[first].end <= pc.begin) ++first;
      // The largest piece as packed (pieces over the size were packed atom by atom: pack.h).
      const char* kind = pc.longest_tag >= 0 && static_cast<size_t>(pc.longest_tag) < metas.size()
                             ? metas[pc.longest_tag].kind
                             : "code";
      const char* head_kind = nullptr;
      int32_t heading = -2;
      for (size_t p = first; p < pieces.size() && pieces[p].begin < pc.end; ++p) {
        const Piece& piece = pieces[p];
        const int64_t bytes = std::min(piece.end, pc.end) - std::max(piece.begin, pc.begin);
        if (bytes <= 0 || piece.tag < 0 || static_cast<size_t>(piece.tag) >= metas.size()) continue;
        const PieceMeta& m = metas[piece.tag];
        if (m.header && head_kind == nullptr && !is_container(m.kind)) head_kind = m.kind;
        heading = heading == -2 ? m.heading : common_heading(table, heading, m.heading);
      }
      out[k].kind = head_kind != nullptr ? head_kind : kind;
      out[k].headings = heading_path(table, heading < 0 ? -1 : heading);
    }
#else
    (void)language;
#endif
    return out;
  }

 private:
  static constexpr size_t kMaxParseBytes = size_t{32} << 20;
  static constexpr int64_t kMaxBracketDepth = 256;
  // The deepest nesting of ( [ { in `text`, counted over every byte (strings and comments included: an
  // upper bound of what the parser sees, in one pass).
  static int64_t bracket_depth(std::string_view text) {
    int64_t depth = 0, deepest = 0;
    for (const char c : text) {
      if (c == '(' || c == '[' || c == '{') {
        deepest = std::max(deepest, ++depth);
      } else if ((c == ')' || c == ']' || c == '}') && depth > 0) {
        --depth;
      }
    }
    return deepest;
  }
  static constexpr uint64_t kParseMicrosBase = 1000000;  // 1 s
  static constexpr uint64_t kParseMicrosPerKiB = 200;     // 0.2 s per MiB (valid code parses > 10x faster)

  // The fallback: the recursive "code" separator preset, packed; kind "code", no headings.
  Result<std::vector<Chunk>> chunk_without_tree(const DocText& doc, std::string_view doc_id) const {
    const std::unique_ptr<DocSizer> sizer = config().measure->bind(doc);
    std::vector<Piece> pieces;
    split_recursive(*sizer, 0, doc.size(), find_preset("code")->levels, 0, config().size, pieces);
    std::vector<PackedChunk> packed;
    CW_RETURN_IF_ERROR(pack_pieces(*sizer, pieces, PackOptions{config().size, config().overlap}, packed));
    std::vector<Chunk> out;
    to_chunks(doc, doc_id, packed, 0, out);
    for (Chunk& c : out) c.kind = "code";
    return out;
  }

  std::string lang_;  // canonical, or empty = by extension
};

}  // namespace

Result<std::unique_ptr<Chunker>> create_code_chunker(const ChunkerConfig& config) {
  std::string lang;
  if (config.params.has("lang")) {
    CW_ASSIGN_OR_RETURN(lang, ts::canonical_language(config.params.get("lang", "")));
  }
  return std::unique_ptr<Chunker>(new CodeChunker(config, std::move(lang)));
}

const MethodInfo& code_method() {
  static const MethodInfo kInfo{
      "code",
      "source code along its tree-sitter syntax tree (functions/classes whole when they fit)",
      {{"lang", "c|cpp|python|javascript|typescript|tsx|go|rust|java (default: from the file extension)"}},
      &create_code_chunker,
  };
  return kInfo;
}

}  // namespace cw::text
