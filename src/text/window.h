// Greedy window chunking (the recursive method; the token method for tokens and words).
//
// Each chunk starts where the previous one ended (or inside it, for overlap) and takes the largest window
// that fits the size by estimate (DocSizer::advance). It ends at the LAST cut of the COARSEST separator level
// that has a cut inside the window (for the presets: paragraph breaks before line breaks before sentence
// ends before spaces), else at the window's end (an atom boundary: code point, token or word). This is what
// merging the splits of each level greedily does (LangChain's RecursiveCharacterTextSplitter), computed
// with one backward search per chunk instead of materializing every split. Non-additive units (tokens,
// words) are verified on the chunk's own text; a chunk over the limit retries with a smaller window, and
// one under it (when the document-level estimate over-counted) tries a larger one.
//
// Overlap: the next chunk starts at retreat(end, overlap) -- with word_overlap, moved forward to the first
// word start (a non-space after an ASCII space) when the tail holds one -- such that the repeated text
// measures <= overlap; no overlap when that would not leave room for new text.
//
// Errors: out_of_range (naming the byte offset) when a single atom measures more than the size.
#pragma once

#include <string_view>
#include <vector>

#include "text/chunker.h"
#include "text/pack.h"

namespace cw::text {

// `levels` may be empty (fixed-size windows). Thread-safe: no state outside the call.
Result<std::vector<Chunk>> window_chunk(const ChunkerConfig& config, std::string_view doc_id, std::string_view text,
                                        const std::vector<SeparatorLevel>& levels, bool word_overlap);

}  // namespace cw::text
