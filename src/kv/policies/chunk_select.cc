// `chunk_select` (LongHeads, Lu et al. 2024, adapted to GQA and paged blocks): keep every slot, and let each
// KV head of each row group pick the blocks it attends to: the sinks, the top_k blocks whose key summaries
// bound the query's scores highest (with `expand` neighbours each), and the local window, packed at
// consecutive positions so that no head sees a position difference above `span` (default: the model's
// trained length). The forward pass does the picking (model::ChunkSelect), where the queries and the key
// summaries already are; the state only carries the parameters, so nothing is dropped or moved and memory
// grows with the input like `full`'s. docs/design/kv_layout.md, "Chunk-selective attention".
#include <string>

#include "kv/policy.h"

namespace cw::kv {
namespace {

class ChunkSelectPolicy final : public KvPolicy {
 public:
  explicit ChunkSelectPolicy(const HeadSelection& sel) : sel_(sel) {}

  std::string spec() const override {
    return "chunk_select:span=" + std::to_string(sel_.span) + ",sinks=" + std::to_string(sel_.sinks) +
           ",local=" + std::to_string(sel_.local) + ",top_k=" + std::to_string(sel_.top_k) +
           ",expand=" + std::to_string(sel_.expand) + ",group=" + std::to_string(sel_.group);
  }
  Result<std::unique_ptr<PolicyState>> make_state(int32_t block_size) const override {
    if (block_size <= 0) return invalid_argument("block size must be > 0");
    if (sel_.span > 0) {
      Status st = sel_.check(sel_.span, block_size);
      if (!st.is_ok()) return invalid_argument("kv policy '" + spec() + "': " + st.message());
    }
    return keep_all_state(sel_);
  }
  bool lifts_context_limit() const override { return true; }

 private:
  const HeadSelection sel_;
};

Result<std::unique_ptr<KvPolicy>> create_chunk_select(const PolicySpec& spec) {
  CW_RETURN_IF_ERROR(only_keys(spec, {"span", "sinks", "local", "top_k", "expand", "group"}));
  HeadSelection sel;
  sel.on = true;
  CW_ASSIGN_OR_RETURN(sel.span, int_param(spec, "span", 0, 0, kMaxPolicyTokens));
  CW_ASSIGN_OR_RETURN(sel.sinks, int_param(spec, "sinks", 16, 0, kMaxPolicyTokens));
  CW_ASSIGN_OR_RETURN(sel.local, int_param(spec, "local", 512, 0, kMaxPolicyTokens));
  CW_ASSIGN_OR_RETURN(sel.top_k, int_param(spec, "top_k", 8, 0, kMaxPolicyTokens));
  CW_ASSIGN_OR_RETURN(sel.expand, int_param(spec, "expand", 1, 0, 64));
  CW_ASSIGN_OR_RETURN(sel.group, int_param(spec, "group", 16, 1, 4096));
  return std::unique_ptr<KvPolicy>(std::make_unique<ChunkSelectPolicy>(sel));
}

}  // namespace

extern const KvPolicyFactory kChunkSelectPolicy = {
    "chunk_select",
    "keep every slot; each KV head attends to the sinks, its top-k blocks by key summary and a local window, "
    "packed within the trained length (LongHeads)",
    &create_chunk_select};

}  // namespace cw::kv
