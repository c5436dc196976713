// The shared machinery of the chunkers: split a document into pieces, then pack pieces into chunks that
// never exceed the limit, with optional overlap. Chunkers built on it (token, sentence, markdown, code,
// semantic) differ only in how they produce pieces. (recursive uses the separator presets below with its
// own one-pass window search, see recursive_chunker.cc.)
//
//   split_recursive  splits a byte range along a separator hierarchy (a preset: plain, markdown, latex,
//                    html, code) until every piece's estimate fits, then at the unit's atoms.
//   pack_pieces      greedy packing of consecutive pieces into chunks: fills by estimates, verifies each
//                    chunk's exact size on its own text, shrinks (or splits a single piece at atom cuts)
//                    when the exact size is over the limit, and grows again when it is under.
//   to_chunks        PackedChunk -> Chunk with code point offsets.
//
// Overlap is aligned to pieces: chunk k+1 starts at the earliest piece start inside chunk k such that the
// overlapping text [start, end of chunk k) measures <= overlap (exactly), and such that chunk k+1 still
// gains at least one new piece within the limit; it is 0 when no such piece start exists.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "text/chunker.h"
#include "text/measure.h"

namespace cw::text {

struct Piece {
  int64_t begin = 0, end = 0;  // byte range; the pieces given to pack_pieces tile a range in order
  int64_t size = -1;           // estimate in the unit; < 0 means "compute it" (pack_pieces fills it)
  bool hard_break = false;     // a chunk never contains this piece together with the one before it
  int32_t tag = -1;            // caller's metadata (e.g. index of a heading path); a chunk gets its first piece's
};

struct PackedChunk {
  int64_t begin = 0, end = 0;  // byte range
  int64_t size = 0;            // exact size of the chunk's text in the unit
  int32_t tag = -1;            // tag of the chunk's first piece
  int32_t longest_tag = -1;    // tag of the chunk's longest piece in bytes (the first of equals) among the pieces
                               // with a tag >= 0, oversized pieces counted atom by atom; -1 when none
};

struct PackOptions {
  int64_t size = 512;   // limit, >= 1
  int64_t overlap = 0;  // 0 <= overlap < size
};

// Packs `pieces` (tiling a range, in order; modified: sizes < 0 filled) into chunks appended to `out`. A
// piece over the limit by estimate is packed as its atoms (DocSizer::atom_cuts), cut a window at a time while
// packing: the atoms of a long run (blank lines, spaces) never exist all at once, and `pieces` keeps the piece
// whole. Memory: O(pieces.size() + the pieces of one chunk). Errors: out_of_range when one atom alone exceeds
// the limit (message names its byte offset and size). Empty pieces are allowed and absorbed.
Status pack_pieces(const DocSizer& sizer, std::vector<Piece>& pieces, const PackOptions& options,
                   std::vector<PackedChunk>& out);

// A separator: where a match of `text` is found, the cut falls at match + cut (0 = the separator starts the
// next piece, text.size() = it ends the previous one).
struct Separator {
  std::string text;
  int cut = 0;
};
using SeparatorLevel = std::vector<Separator>;  // alternatives of equal rank

struct SeparatorPreset {
  std::string name;
  std::vector<SeparatorLevel> levels;  // coarsest first; the unit's atoms are the implicit last level
};
// Presets: "plain", "markdown", "latex", "html", "code". nullptr for an unknown name.
const SeparatorPreset* find_preset(std::string_view name);
std::vector<std::string_view> preset_names();

// Appends pieces tiling [b, e) to `out`: a range whose estimate fits `limit` is one piece; otherwise it is cut
// at every match of the first level (starting at `first_level`) that has a match inside it, and each part is
// handled the same way with the following levels; a part that no level cuts and is still over the limit is
// one piece, which pack_pieces cuts at the unit's atoms (each atom one piece) while packing. Pieces are
// therefore <= limit by estimate or left to pack_pieces to cut at atoms. Piece sizes are filled.
void split_recursive(const DocSizer& sizer, int64_t b, int64_t e, const std::vector<SeparatorLevel>& levels,
                     size_t first_level, int64_t limit, std::vector<Piece>& out);

// Appends one Chunk per PackedChunk with doc id, index (first_index, first_index + 1, ...), code point offsets
// (computed incrementally) and n_tokens = size. size_is_chars: sizes are code point counts (unit chars), so
// char_end = char_begin + size without counting.
void to_chunks(const DocText& doc, std::string_view doc_id, std::span<const PackedChunk> packed,
               int64_t first_index, std::vector<Chunk>& out, bool size_is_chars = false);

// The common tail of a chunker: pack_pieces with config.size / config.overlap, then to_chunks. `packed`
// (optional) receives the packed ranges with their tags.
Result<std::vector<Chunk>> pack_to_chunks(const ChunkerConfig& config, const DocSizer& sizer, std::string_view doc_id,
                                          std::vector<Piece>& pieces, std::vector<PackedChunk>* packed = nullptr);

}  // namespace cw::text
