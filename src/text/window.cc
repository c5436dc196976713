// Greedy window chunking, shared by the recursive and token methods (see window.h).
#include "text/window.h"

#include <cstring>

namespace cw::text {
namespace {

// The last cut c of `sep` with s < c <= w (match inside the text, c on a code point boundary), or -1.
int64_t last_cut(const DocText& doc, int64_t s, int64_t w, const Separator& sep) {
  const std::string_view t = doc.text();
  const auto len = static_cast<int64_t>(sep.text.size());
  const int64_t lo = std::max<int64_t>(0, s - sep.cut + 1);
  int64_t hi = std::min<int64_t>(w - sep.cut, static_cast<int64_t>(t.size()) - len);
  const char first = sep.text[0];
  while (hi >= lo) {
    const void* p = ::memrchr(t.data() + lo, first, static_cast<size_t>(hi - lo + 1));
    if (p == nullptr) return -1;
    const int64_t m = static_cast<const char*>(p) - t.data();
    if (std::memcmp(t.data() + m, sep.text.data(), static_cast<size_t>(len)) == 0 && doc.is_boundary(m + sep.cut)) {
      return m + sep.cut;
    }
    hi = m - 1;
  }
  return -1;
}

// Whether the code point at i is ASCII whitespace; next = the following code point boundary. (Non-ASCII
// spaces only matter for overlap alignment, which then falls back to a code point boundary.)
bool space_cp(const DocText& doc, int64_t i, int64_t& next) {
  const auto c = static_cast<unsigned char>(doc.text()[static_cast<size_t>(i)]);
  if (c < 0x80) {
    next = i + 1;
    return c == ' ' || (c >= '\t' && c <= '\r');
  }
  next = doc.next_boundary(i);
  return false;
}

class Window {
 public:
  Window(const ChunkerConfig& config, const std::vector<SeparatorLevel>& levels, bool word_overlap)
      : config_(config), levels_(levels), word_overlap_(word_overlap) {}
  const ChunkerConfig& config() const { return config_; }

  Result<std::vector<Chunk>> run(std::string_view doc_id, std::string_view text) const {
    const DocText doc(text);
    std::unique_ptr<DocSizer> sizer = config().measure->bind(doc);
    const DocSizer& z = *sizer;
    const int64_t n = doc.size(), size = config().size, overlap = config().overlap;
    const bool verify = !z.estimate_is_exact();
    std::vector<PackedChunk> packed;
    int64_t s = 0, prev_end = 0;
    while (prev_end < n) {
      int64_t cut = -1, measured = 0;
      fit(z, s, cut, measured, verify);
      if (cut <= prev_end) {
        if (s < prev_end) {  // the overlap leaves no room: restart at the previous end without it
          s = prev_end;
          continue;
        }
        const int64_t e = doc.next_boundary(s);
        return out_of_range("a single indivisible unit at byte " + std::to_string(s) + " (" +
                            std::to_string(e - s) + " bytes) measures " + std::to_string(z.exact(s, e)) +
                            " > size=" + std::to_string(size) + "; raise the size or choose another unit");
      }
      packed.push_back(PackedChunk{s, cut, measured, -1});
      prev_end = cut;
      s = cut;
      if (overlap > 0 && cut < n) s = overlap_start(z, packed.back().begin, cut, overlap);
    }
    std::vector<Chunk> chunks;
    chunks.reserve(packed.size());
    to_chunks(doc, doc_id, packed, 0, chunks, config().measure->unit() == Unit::kChars);
    return chunks;
  }

 private:
  // The best cut in (s, w]: the last cut of the coarsest level present, else w.
  int64_t best_cut(const DocText& doc, int64_t s, int64_t w) const {
    if (w >= doc.size()) return doc.size();
    for (const SeparatorLevel& level : levels_) {
      int64_t best = -1;
      for (const Separator& sep : level) best = std::max(best, last_cut(doc, s, w, sep));
      if (best > s) return best;
    }
    return w;
  }

  // Chooses [s, cut) with measured size <= size; cut <= s when even one atom does not fit.
  void fit(const DocSizer& z, int64_t s, int64_t& cut, int64_t& measured, bool verify) const {
    const int64_t size = config().size;
    int64_t budget = size;
    cut = -1;
    // Each failed attempt moves the window's end before the rejected cut, so cuts strictly decrease.
    // The budget never skips the one-atom window: estimates may count far fewer units than the exact size
    // (byte-fallback tokens snap to one code point boundary), so the excess is no measure of how far to step.
    for (int attempt = 0; attempt < 4096 && budget >= 1; ++attempt) {
      const int64_t w = z.advance(s, budget);
      if (w <= s) break;
      const int64_t c = best_cut(z.doc(), s, w);
      const int64_t m = verify ? z.exact(s, c) : z.estimate(s, c);
      if (m <= size) {
        cut = c;
        measured = m;
        break;
      }
      if (budget == 1) break;
      budget = std::max<int64_t>(
          1, std::min(budget, z.estimate(s, c)) - std::max<int64_t>(1, std::min(m - size, budget / 2 + 1)));
    }
    if (!verify) return;
    if (cut < 0) {
      // Even the first atom (a document token, snapped to code points) is over the size measured alone: the
      // indivisible unit is one code point (chunker.h), so take the longest run of its code points that fits.
      // When none fits, run() reports the first code point with its exact size, which is then > size.
      const DocText& d = z.doc();
      const int64_t atom_end = std::max(z.advance(s, 1), d.next_boundary(s));
      for (int64_t c = d.next_boundary(s); c <= atom_end && c > s; c = d.next_boundary(c)) {
        const int64_t m = z.exact(s, c);
        if (m > size) break;
        cut = c;
        measured = m;
        if (c >= d.size()) break;
      }
      return;
    }
    // Grow while the document-level estimate over-counted the chunk's own size (token counts differ at the
    // edges): the window may then hold more. Otherwise the cut was chosen by the hierarchy, not the budget.
    for (int round = 0; round < 3 && measured < size && cut < z.doc().size(); ++round) {
      const int64_t est = z.estimate(s, cut);
      if (est <= measured) break;
      budget += est - measured;
      const int64_t w = z.advance(s, budget);
      const int64_t c = best_cut(z.doc(), s, w);
      if (c <= cut) break;
      const int64_t m = z.exact(s, c);
      if (m > size) break;
      cut = c;
      measured = m;
    }
  }

  int64_t overlap_start(const DocSizer& z, int64_t begin, int64_t end, int64_t overlap) const {
    const DocText& doc = z.doc();
    int64_t k = overlap;
    for (int attempt = 0; attempt < 16 && k >= 1; ++attempt) {
      const int64_t p0 = std::max(z.retreat(end, k), doc.next_boundary(begin));
      // Align to the first word start at or after p0 (a non-space after a space).
      int64_t q = p0, next = 0;
      int64_t nx = 0;
      bool prev_space = word_overlap_ && p0 > 0 && space_cp(doc, doc.floor_boundary(p0 - 1), nx);
      int64_t found = -1;
      while (word_overlap_ && q < end) {
        const bool sp = space_cp(doc, q, next);
        if (!sp && prev_space) {
          found = q;
          break;
        }
        prev_space = sp;
        q = next;
      }
      const int64_t p = found >= 0 ? found : p0;
      if (p >= end) return end;
      const int64_t m = z.estimate_is_exact() ? z.estimate(p, end) : z.exact(p, end);
      if (m <= overlap) return p;
      k -= std::max<int64_t>(1, m - overlap);
    }
    return end;
  }

  const ChunkerConfig& config_;
  const std::vector<SeparatorLevel>& levels_;
  const bool word_overlap_;
};

}  // namespace

Result<std::vector<Chunk>> window_chunk(const ChunkerConfig& config, std::string_view doc_id, std::string_view text,
                                        const std::vector<SeparatorLevel>& levels, bool word_overlap) {
  return Window(config, levels, word_overlap).run(doc_id, text);
}

}  // namespace cw::text
