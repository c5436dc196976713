// sentence: ICU sentence boundaries (multilingual, locale= key), sentences packed greedily up to the size;
// a sentence larger than the size is split along the plain preset (clauses, words, then atoms). Overlap is
// in whole sentences (pieces).
#include "text/chunker.h"
#include "text/pack.h"
#include "text/segment.h"

namespace cw::text {
namespace {

class SentenceChunker final : public Chunker {
 public:
  SentenceChunker(ChunkerConfig config, std::string locale) : Chunker(std::move(config)), locale_(std::move(locale)) {}

  Result<std::vector<Chunk>> chunk(std::string_view doc_id, std::string_view text) const override {
    const DocText doc(text);
    std::unique_ptr<DocSizer> sizer = config().measure->bind(doc);
    std::vector<int64_t> cuts;
    CW_RETURN_IF_ERROR(sentence_cuts(doc, 0, doc.size(), locale_, cuts));
    cuts.push_back(doc.size());
    const SeparatorPreset* plain = find_preset("plain");
    std::vector<Piece> pieces;
    pieces.reserve(cuts.size());
    int64_t prev = 0;
    for (int64_t c : cuts) {
      if (c <= prev) continue;
      split_recursive(*sizer, prev, c, plain->levels, 0, config().size, pieces);
      prev = c;
    }
    return pack_to_chunks(config(), *sizer, doc_id, pieces);
  }

 private:
  std::string locale_;
};

Result<std::unique_ptr<Chunker>> create(const ChunkerConfig& config) {
  const std::string locale = config.params.get("locale", kDefaultSentenceLocale);
  CW_RETURN_IF_ERROR(validate_sentence_locale(locale));
  return std::unique_ptr<Chunker>(new SentenceChunker(config, locale));
}

}  // namespace

const MethodInfo& sentence_method() {
  static const MethodInfo kInfo{
      "sentence",
      "ICU sentence boundaries packed to the size (oversized sentences split at clauses / words)",
      {{"locale", std::string("ICU locale of the sentence rules (default ") + kDefaultSentenceLocale + ")"}},
      create};
  return kInfo;
}

}  // namespace cw::text
