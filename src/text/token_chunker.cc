// token: fixed-size chunks of N units (tokens of a GGUF vocabulary, chars, bytes or words) with overlap.
// Tokens and words: windows of N document tokens (snapped to code point boundaries) / words with their
// trailing spaces (window.h, no separators), each chunk verified on its own text; overlap in whole units.
// Chars and bytes: direct arithmetic over code point boundaries.
#include "text/chunker.h"
#include "text/pack.h"
#include "text/window.h"

namespace cw::text {
namespace {

class TokenChunker final : public Chunker {
 public:
  using Chunker::Chunker;

  Result<std::vector<Chunk>> chunk(std::string_view doc_id, std::string_view text) const override {
    const Unit unit = config().measure->unit();
    if (unit == Unit::kChars || unit == Unit::kBytes) return fixed_additive(DocText(text), doc_id, unit);
    // Tokens and words: fixed windows of `size` document tokens / words, each verified on its own text.
    static const std::vector<SeparatorLevel> kNoLevels;
    return window_chunk(config(), doc_id, text, kNoLevels, /*word_overlap=*/false);
  }

 private:
  // Chunks of exactly `size` code points (chars) or at most `size` bytes ending on a boundary (bytes).
  Result<std::vector<Chunk>> fixed_additive(const DocText& doc, std::string_view doc_id, Unit unit) const {
    const int64_t size = config().size, overlap = config().overlap, n = doc.size();
    std::vector<PackedChunk> packed;
    int64_t begin = 0;
    while (begin < n) {
      int64_t end, units;
      if (unit == Unit::kBytes) {
        end = begin + size >= n ? n : doc.floor_boundary(begin + size);
        if (end <= begin) {
          const int64_t next = doc.next_boundary(begin);
          return out_of_range("a single indivisible unit at byte " + std::to_string(begin) + " (" +
                              std::to_string(next - begin) + " bytes) measures " + std::to_string(next - begin) +
                              " > size=" + std::to_string(size) + "; raise the size or choose another unit");
        }
        units = end - begin;
      } else {
        end = begin;
        units = 0;
        if (doc.valid_utf8()) {
          // Skip `size` code point starts: the end is the first non-continuation byte after them.
          const char* d = doc.text().data();
          while (end < n && units < size) {
            ++end;
            while (end < n && (static_cast<unsigned char>(d[end]) & 0xC0) == 0x80) ++end;
            ++units;
          }
        } else {
          while (end < n && units < size) {
            end = doc.next_boundary(end);
            ++units;
          }
        }
      }
      packed.push_back(PackedChunk{begin, end, units, -1});
      if (end >= n) break;
      // Next start: `overlap` units before the end, but after this chunk's start.
      int64_t next = end;
      if (overlap > 0) {
        if (unit == Unit::kBytes) {
          next = doc.ceil_boundary(end - overlap);
        } else {
          for (int64_t k = 0; k < overlap && next > begin; ++k) next = doc.floor_boundary(next - 1);
        }
        if (next <= begin) next = doc.next_boundary(begin);
      }
      begin = next;
    }
    std::vector<Chunk> chunks;
    chunks.reserve(packed.size());
    to_chunks(doc, doc_id, packed, 0, chunks, unit == Unit::kChars);
    return chunks;
  }
};

Result<std::unique_ptr<Chunker>> create(const ChunkerConfig& config) {
  return std::unique_ptr<Chunker>(new TokenChunker(config));
}

}  // namespace

const MethodInfo& token_method() {
  static const MethodInfo kInfo{
      "token", "fixed-size chunks of N units (tokens, chars, bytes or words) with overlap", {}, create};
  return kInfo;
}

}  // namespace cw::text
