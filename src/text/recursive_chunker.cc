// recursive: a separator hierarchy (preset= plain | markdown | latex | html | code) applied greedily: each
// chunk takes the largest window that fits and ends at the last cut of the coarsest separator level inside
// it (window.h); overlap is aligned to a word start.
#include "text/chunker.h"
#include "text/window.h"

namespace cw::text {
namespace {

class RecursiveChunker final : public Chunker {
 public:
  RecursiveChunker(ChunkerConfig config, const SeparatorPreset* preset) : Chunker(std::move(config)), preset_(preset) {}

  Result<std::vector<Chunk>> chunk(std::string_view doc_id, std::string_view text) const override {
    return window_chunk(config(), doc_id, text, preset_->levels, /*word_overlap=*/true);
  }

 private:
  const SeparatorPreset* preset_;
};

Result<std::unique_ptr<Chunker>> create(const ChunkerConfig& config) {
  const std::vector<std::string_view> names = preset_names();
  CW_ASSIGN_OR_RETURN(std::string name, config.params.get_choice("preset", "plain", names));
  return std::unique_ptr<Chunker>(new RecursiveChunker(config, find_preset(name)));
}

}  // namespace

const MethodInfo& recursive_method() {
  static const MethodInfo kInfo{
      "recursive",
      "separator hierarchy with presets: each chunk ends at the coarsest break (paragraph, line, sentence, word) that fits",
      {{"preset", "separator preset: plain (default), markdown, latex, html, code"}},
      create};
  return kInfo;
}

}  // namespace cw::text
