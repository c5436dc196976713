#include "text/pack.h"

#include <algorithm>
#include <cstring>

namespace cw::text {

// ---------------------------------------------------------------------------------------------------------
// Separator presets

namespace {

SeparatorLevel after(std::initializer_list<const char*> seps) {
  SeparatorLevel level;
  for (const char* s : seps) level.push_back({s, static_cast<int>(std::strlen(s))});
  return level;
}
SeparatorLevel at(std::initializer_list<const char*> seps, int cut) {
  SeparatorLevel level;
  for (const char* s : seps) level.push_back({s, cut});
  return level;
}

// Levels shared by the presets' fine end: paragraphs, lines, sentences, clauses, words.
void append_prose_levels(std::vector<SeparatorLevel>& levels) {
  levels.push_back(after({"\n\n", "\r\n\r\n"}));
  levels.push_back(after({"\n"}));
  levels.push_back(after({". ", "! ", "? ", "\xE3\x80\x82", "\xEF\xBC\x81", "\xEF\xBC\x9F"}));  // 。！？
  levels.push_back(after({"; ", ", ", "\xE3\x80\x81", "\xEF\xBC\x8C", "\xEF\xBC\x9B"}));         // 、，；
  levels.push_back(after({" ", "\t"}));
}

std::vector<SeparatorPreset> build_presets() {
  std::vector<SeparatorPreset> presets;
  {
    SeparatorPreset p{"plain", {}};
    append_prose_levels(p.levels);
    presets.push_back(std::move(p));
  }
  {
    SeparatorPreset p{"markdown", {}};
    p.levels.push_back(at({"\n# "}, 1));
    p.levels.push_back(at({"\n## "}, 1));
    p.levels.push_back(at({"\n### "}, 1));
    p.levels.push_back(at({"\n#### ", "\n##### ", "\n###### "}, 1));
    p.levels.push_back(at({"\n```", "\n~~~", "\n---\n", "\n***\n", "\n___\n"}, 1));
    append_prose_levels(p.levels);
    presets.push_back(std::move(p));
  }
  {
    SeparatorPreset p{"latex", {}};
    p.levels.push_back(at({"\n\\part{", "\n\\chapter{"}, 1));
    p.levels.push_back(at({"\n\\section{", "\n\\section*{"}, 1));
    p.levels.push_back(at({"\n\\subsection{", "\n\\subsection*{"}, 1));
    p.levels.push_back(at({"\n\\subsubsection{", "\n\\paragraph{"}, 1));
    p.levels.push_back(at({"\n\\begin{"}, 1));
    append_prose_levels(p.levels);
    presets.push_back(std::move(p));
  }
  {
    SeparatorPreset p{"html", {}};
    p.levels.push_back(at({"<body", "<section", "<article", "<main"}, 0));
    p.levels.push_back(at({"<h1", "<h2", "<h3"}, 0));
    p.levels.push_back(at({"<h4", "<h5", "<h6", "<header", "<footer", "<nav"}, 0));
    p.levels.push_back(at({"<div", "<table", "<ul", "<ol", "<pre", "<blockquote"}, 0));
    p.levels.push_back(at({"<p>", "<p ", "<li", "<tr", "<dt", "<dd"}, 0));
    p.levels.push_back(at({"<br", "<td", "<th"}, 0));
    append_prose_levels(p.levels);
    presets.push_back(std::move(p));
  }
  {
    SeparatorPreset p{"code", {}};
    p.levels.push_back(at({"\nclass ", "\nstruct ", "\nenum ", "\ninterface ", "\nimpl ", "\nnamespace ",
                           "\nmodule ", "\ntrait "},
                          1));
    p.levels.push_back(at({"\ndef ", "\nasync def ", "\nfunction ", "\nfunc ", "\nfn ", "\npub fn ",
                           "\nexport ", "\nconst ", "\nlet ", "\nvar ", "\ntemplate", "\nstatic "},
                          1));
    p.levels.push_back(after({"\n\n", "\r\n\r\n"}));
    p.levels.push_back(after({"\n"}));
    p.levels.push_back(after({"; ", ", ", " ", "\t"}));
    presets.push_back(std::move(p));
  }
  return presets;
}

const std::vector<SeparatorPreset>& presets() {
  static const std::vector<SeparatorPreset> kPresets = build_presets();
  return kPresets;
}

// Finds the matches of a level's separators in text[from, end) in order. Each separator keeps its next match
// (found with string_view::find, i.e. memchr + compare), so a scan is linear per separator.
class LevelFinder {
 public:
  LevelFinder(std::string_view text, int64_t end, const SeparatorLevel& level)
      : text_(text.substr(0, static_cast<size_t>(end))), level_(level) {
    CW_CHECK(level.size() <= kMaxSeparators);
    for (size_t k = 0; k < level.size(); ++k) next_[k] = -2;
  }

  // Earliest match at or after `from`: its position, or -1; sets len and cut.
  int64_t find(int64_t from, int64_t& len, int& cut) {
    int64_t best = -1;
    size_t best_k = 0;
    for (size_t k = 0; k < level_.size(); ++k) {
      int64_t& nx = next_[k];
      if (nx != -1 && nx < from) {
        const size_t p = text_.find(level_[k].text, static_cast<size_t>(from));
        nx = p == std::string_view::npos ? -1 : static_cast<int64_t>(p);
      }
      if (nx >= 0 && (best < 0 || nx < best)) {
        best = nx;
        best_k = k;
      }
    }
    if (best >= 0) {
      len = static_cast<int64_t>(level_[best_k].text.size());
      cut = level_[best_k].cut;
    }
    return best;
  }

 private:
  static constexpr size_t kMaxSeparators = 16;
  std::string_view text_;
  const SeparatorLevel& level_;
  int64_t next_[kMaxSeparators];  // -2: not searched yet, -1: no more matches
};

}  // namespace

const SeparatorPreset* find_preset(std::string_view name) {
  for (const SeparatorPreset& p : presets()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::vector<std::string_view> preset_names() {
  std::vector<std::string_view> names;
  for (const SeparatorPreset& p : presets()) names.push_back(p.name);
  return names;
}

// ---------------------------------------------------------------------------------------------------------
// Recursive splitting

namespace {

void split_atoms(const DocSizer& sizer, int64_t b, int64_t e, std::vector<Piece>& out) {
  std::vector<int64_t> cuts;
  sizer.atom_cuts(b, e, cuts);
  int64_t prev = b;
  cuts.push_back(e);
  for (int64_t c : cuts) {
    if (c <= prev) continue;
    Piece p;
    p.begin = prev;
    p.end = c;
    p.size = sizer.estimate(prev, c);
    out.push_back(p);
    prev = c;
  }
}

// One piece per code point of [b, e).
void split_code_points(const DocSizer& sizer, int64_t b, int64_t e, std::vector<Piece>& out) {
  const DocText& doc = sizer.doc();
  for (int64_t p = b; p < e;) {
    const int64_t c = std::min(e, doc.next_boundary(p));
    Piece q;
    q.begin = p;
    q.end = c;
    q.size = sizer.estimate(p, c);
    out.push_back(q);
    p = c;
  }
}

bool ascii_blank(std::string_view t, int64_t b, int64_t e) {
  for (int64_t i = b; i < e; ++i) {
    const char c = t[static_cast<size_t>(i)];
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return false;
  }
  return true;
}

// scratch[level]: the cut list of a call at that level (reused across calls; one call per level is active).
void split_level(const DocSizer& sizer, int64_t b, int64_t e, const std::vector<SeparatorLevel>& levels,
                 size_t level, int64_t limit, std::vector<Piece>& out, std::vector<std::vector<int64_t>>& scratch) {
  const DocText& doc = sizer.doc();
  const std::string_view text = doc.text();
  for (; level < levels.size(); ++level) {
    std::vector<int64_t>& cuts = scratch[level];
    // Cut at every match of this level; skip the level when nothing cuts inside (b, e). A part holding only
    // whitespace (repeated separators) stays with the part before it.
    cuts.clear();
    int64_t from = b, prev = b, len = 0;
    int cut = 0;
    LevelFinder finder(text, e, levels[level]);
    while (from < e) {
      const int64_t m = finder.find(from, len, cut);
      if (m < 0) break;
      const int64_t c = m + cut;
      from = m + len;
      if (c <= prev || c >= e || !doc.is_boundary(c)) continue;
      if (!cuts.empty() && ascii_blank(text, prev, c)) {
        cuts.back() = c;
      } else {
        cuts.push_back(c);
      }
      prev = c;
    }
    if (cuts.size() > 1 && ascii_blank(text, cuts.back(), e)) cuts.pop_back();
    if (cuts.empty()) continue;
    cuts.push_back(e);
    prev = b;
    for (int64_t c : cuts) {
      const int64_t size = sizer.min_units(c - prev) > limit ? limit + 1 : sizer.estimate(prev, c);
      if (size <= limit) {
        out.push_back(Piece{prev, c, size, false, -1});
      } else {
        split_level(sizer, prev, c, levels, level + 1, limit, out, scratch);
      }
      prev = c;
    }
    return;
  }
  // Still over the limit after the last level: one piece, cut at atoms by pack_pieces while it packs (one
  // piece per atom here would cost ~40 bytes per byte of a long blank run).
  out.push_back(Piece{b, e, sizer.estimate(b, e), false, -1});
}

}  // namespace

void split_recursive(const DocSizer& sizer, int64_t b, int64_t e, const std::vector<SeparatorLevel>& levels,
                     size_t first_level, int64_t limit, std::vector<Piece>& out) {
  if (e <= b) return;
  const int64_t size = sizer.min_units(e - b) > limit ? limit + 1 : sizer.estimate(b, e);
  if (size <= limit) {
    out.push_back(Piece{b, e, size, false, -1});
    return;
  }
  std::vector<std::vector<int64_t>> scratch(levels.size());
  split_level(sizer, b, e, levels, first_level, limit, out, scratch);
}

// ---------------------------------------------------------------------------------------------------------
// Packing

namespace {

// The sequence packed is the input pieces with those over the limit by estimate cut at atoms (the first atom
// keeps the piece's hard break, every atom its tag). It is materialized lazily in a window p_ that runs from
// the first piece of the current chunk (overlap included) to the furthest piece looked at, so a long run of
// atoms (5 MB of newlines: 5 M one-byte atoms) never exists as a whole: memory is O(input pieces + one chunk).
class Packer {
 public:
  Packer(const DocSizer& sizer, std::vector<Piece>& pieces, const PackOptions& opt)
      : sizer_(sizer), in_(pieces), limit_(opt.size), overlap_(opt.overlap), additive_(sizer.additive()) {}

  Status run(std::vector<PackedChunk>& out) {
    size_t s = 0;  // first piece of the current chunk (overlap included)
    size_t i = 0;  // first piece not yet in any chunk
    while (has(i)) {
      // Pieces before s are never looked at again: drop them (amortized O(1) per piece).
      if (s >= kTrimAt && 2 * s >= p_.size()) {
        p_.erase(p_.begin(), p_.begin() + static_cast<std::ptrdiff_t>(s));
        i -= s;
        s = 0;
      }
      // Keep the overlap only while piece i still fits after it.
      int64_t acc = sum(s, i);
      while (s < i && acc + p_[i].size > limit_) {
        acc -= additive_ ? p_[s].size : 0;
        ++s;
        if (!additive_) acc = sum(s, i);
      }
      // A piece over the limit by estimate is a single atom (oversized pieces are cut at atoms); for additive
      // units the estimate is exact, so it can never fit.
      if (additive_ && p_[i].size > limit_) return too_large(p_[i].begin, p_[i].end, p_[i].size);
      size_t j = i + 1;
      acc += p_[i].size;
      while (has(j) && !p_[j].hard_break && acc + p_[j].size <= limit_) acc += p_[j++].size;
      int64_t exact = acc;
      if (!additive_) {
        CW_RETURN_IF_ERROR(fit_exact(s, i, j, exact));
        if (j == 0) continue;  // pieces were split or the overlap dropped: retry from the same state
      }
      PackedChunk c;
      c.begin = p_[s].begin;
      c.end = p_[j - 1].end;
      c.size = exact;
      c.tag = p_[s].tag;
      int64_t longest = 0;
      for (size_t k = s; k < j; ++k) {
        if (p_[k].tag >= 0 && p_[k].end - p_[k].begin > longest) {
          longest = p_[k].end - p_[k].begin;
          c.longest_tag = p_[k].tag;
        }
      }
      out.push_back(c);
      // Overlap for the next chunk.
      size_t next_s = j;
      if (overlap_ > 0 && has(j) && !p_[j].hard_break) next_s = overlap_start(s, j, c.end);
      s = next_s;
      i = j;
    }
    return Status::ok();
  }

 private:
  static constexpr size_t kTrimAt = 4096;
  static constexpr int64_t kAtomBytes = 16 << 10;  // atoms are cut kAtomBytes (or more) at a time

  // Whether piece k of the window exists (materializing pieces up to it).
  bool has(size_t k) {
    while (k >= p_.size()) {
      if (!next_pieces()) return false;
    }
    return true;
  }

  // Appends the next input piece, or the next atoms of an oversized one; false at the end of the input.
  bool next_pieces() {
    if (cut_ < 0) {
      if (next_in_ >= in_.size()) return false;
      Piece& q = in_[next_in_];
      if (q.size < 0) q.size = sizer_.estimate(q.begin, q.end);
      if (q.size <= limit_) {
        p_.push_back(q);
        ++next_in_;
        return true;
      }
      cut_ = q.begin;
    }
    // Atoms of [cut_, q.end): the cuts inside a prefix of at least kAtomBytes, up to its last cut (every cut
    // of the prefix is one of the whole range: the units' atom cuts do not depend on the range's end).
    const Piece& q = in_[next_in_];
    const DocText& doc = sizer_.doc();
    for (int64_t span = kAtomBytes;; span *= 2) {
      const int64_t e = q.end - cut_ <= span ? q.end : doc.floor_boundary(cut_ + span);
      cuts_.clear();
      sizer_.atom_cuts(cut_, e, cuts_);
      if (e == q.end) cuts_.push_back(q.end);
      if (!cuts_.empty()) break;
    }
    for (int64_t c : cuts_) {
      if (c <= cut_) continue;
      p_.push_back(Piece{cut_, c, sizer_.estimate(cut_, c), cut_ == q.begin && q.hard_break, q.tag});
      cut_ = c;
    }
    if (cut_ >= q.end) {
      cut_ = -1;
      ++next_in_;
    }
    return true;
  }

  int64_t sum(size_t a, size_t b) const {
    int64_t t = 0;
    for (size_t k = a; k < b; ++k) t += p_[k].size;
    return t;
  }
  int64_t exact_of(size_t s, size_t j) const { return sizer_.exact(p_[s].begin, p_[j - 1].end); }

  // Non-additive units: makes [s, j) fit by its exact size (shrinking j, dropping the overlap, or splitting
  // piece i), then grows it while the exact size allows. Sets j = 0 to ask the caller to retry.
  Status fit_exact(size_t& s, size_t i, size_t& j, int64_t& exact) {
    exact = exact_of(s, j);
    if (exact > limit_) {
      // Shrink: step back by the excess (each piece is >= 0 units), then one piece at a time.
      while (j > i + 1 && exact > limit_) {
        const size_t step = static_cast<size_t>(std::max<int64_t>(1, std::min<int64_t>(exact - limit_, 8)));
        j = std::max(i + 1, j > step ? j - step : i + 1);
        exact = exact_of(s, j);
      }
      if (exact > limit_) {
        if (s < i) {  // drop the overlap
          s = i;
          j = 0;
          return Status::ok();
        }
        // Piece i alone is over the limit: split it at atoms, or fail for a single atom.
        const Piece q = p_[i];
        std::vector<Piece> atoms;
        split_atoms(sizer_, q.begin, q.end, atoms);
        // One unit's atom (a document token) may span several code points whose own texts fit: the
        // indivisible unit is one code point (chunker.h), so split at code points before giving up.
        if (atoms.size() <= 1) {
          atoms.clear();
          split_code_points(sizer_, q.begin, q.end, atoms);
        }
        if (atoms.size() <= 1) return too_large(q.begin, q.end, exact);
        atoms[0].hard_break = q.hard_break;
        for (Piece& a : atoms) a.tag = q.tag;
        p_.erase(p_.begin() + static_cast<std::ptrdiff_t>(i));
        p_.insert(p_.begin() + static_cast<std::ptrdiff_t>(i), atoms.begin(), atoms.end());
        j = 0;
        return Status::ok();
      }
      return Status::ok();
    }
    // Grow while the estimate of the added pieces fits what the exact size leaves.
    for (int round = 0; round < 4 && exact < limit_; ++round) {
      size_t g = j;
      int64_t acc = exact;
      while (has(g) && !p_[g].hard_break && acc + p_[g].size <= limit_) acc += p_[g++].size;
      if (g == j) break;
      const int64_t e2 = exact_of(s, g);
      if (e2 > limit_) break;
      j = g;
      exact = e2;
    }
    return Status::ok();
  }

  Status too_large(int64_t b, int64_t e, int64_t size) const {
    return out_of_range("a single indivisible unit at byte " + std::to_string(b) + " (" + std::to_string(e - b) +
                        " bytes) measures " + std::to_string(size) + " > size=" + std::to_string(limit_) +
                        "; raise the size or choose another unit");
  }

  // Earliest piece start k in (s, j) with exact([k, end)) <= overlap; j when none.
  size_t overlap_start(size_t s, size_t j, int64_t end) const {
    size_t k = j;
    int64_t acc = 0;
    while (k > s + 1 && acc + p_[k - 1].size <= overlap_) {
      acc += p_[k - 1].size;
      --k;
    }
    if (!additive_) {
      while (k < j && sizer_.exact(p_[k].begin, end) > overlap_) ++k;
    }
    return k;
  }

  const DocSizer& sizer_;
  std::vector<Piece>& in_;  // the input pieces (sizes filled as they are read)
  size_t next_in_ = 0;      // first input piece not yet (entirely) in p_
  int64_t cut_ = -1;        // >= 0: in_[next_in_] is oversized and its atoms from cut_ on are not yet in p_
  std::vector<int64_t> cuts_;
  std::vector<Piece> p_;    // the window
  const int64_t limit_;
  const int64_t overlap_;
  const bool additive_;
};

}  // namespace

Status pack_pieces(const DocSizer& sizer, std::vector<Piece>& pieces, const PackOptions& options,
                   std::vector<PackedChunk>& out) {
  CW_CHECK(options.size >= 1 && options.overlap >= 0 && options.overlap < options.size);
  if (pieces.empty()) return Status::ok();
  return Packer(sizer, pieces, options).run(out);
}

void to_chunks(const DocText& doc, std::string_view doc_id, std::span<const PackedChunk> packed,
               int64_t first_index, std::vector<Chunk>& out, bool size_is_chars) {
  // Known (byte, char) pairs: the previous chunk's begin and end; chunks are ordered, so the next begin is
  // at or after the previous begin and each byte is counted about once.
  int64_t b_byte = 0, b_char = 0, e_byte = 0, e_char = 0;
  int64_t index = first_index;
  for (const PackedChunk& c : packed) {
    Chunk k;
    k.doc = std::string(doc_id);
    k.index = index++;
    k.byte_begin = c.begin;
    k.byte_end = c.end;
    if (c.begin >= e_byte) {
      k.char_begin = e_char + doc.count_chars(e_byte, c.begin);
    } else if (c.begin >= b_byte) {
      k.char_begin = b_char + doc.count_chars(b_byte, c.begin);
    } else {
      k.char_begin = doc.count_chars(0, c.begin);
    }
    k.char_end = k.char_begin + (size_is_chars ? c.size : doc.count_chars(c.begin, c.end));
    k.n_tokens = c.size;
    b_byte = c.begin;
    b_char = k.char_begin;
    e_byte = c.end;
    e_char = k.char_end;
    out.push_back(std::move(k));
  }
}

Result<std::vector<Chunk>> pack_to_chunks(const ChunkerConfig& config, const DocSizer& sizer, std::string_view doc_id,
                                          std::vector<Piece>& pieces, std::vector<PackedChunk>* packed) {
  std::vector<PackedChunk> local;
  std::vector<PackedChunk>& out = packed ? *packed : local;
  out.clear();
  CW_RETURN_IF_ERROR(pack_pieces(sizer, pieces, PackOptions{config.size, config.overlap}, out));
  std::vector<Chunk> chunks;
  chunks.reserve(out.size());
  to_chunks(sizer.doc(), doc_id, out, 0, chunks, config.measure->unit() == Unit::kChars);
  return chunks;
}

}  // namespace cw::text
