// The `full` KV policy: keep every slot, attend to all of them (causal), reuse cached chunks only at their
// original position (exact prefix reuse). The baseline every other policy is measured against.
#include "kv/policy.h"

namespace cw::kv {
namespace {

class FullPolicy final : public KvPolicy {
 public:
  std::string spec() const override { return "full"; }
};

Result<std::unique_ptr<KvPolicy>> create_full(const PolicySpec& spec) {
  if (!spec.params.empty())
    return invalid_argument("kv policy 'full' takes no parameters, got '" + spec.params.begin()->first + "'");
  return std::unique_ptr<KvPolicy>(std::make_unique<FullPolicy>());
}

}  // namespace

extern const KvPolicyFactory kFullPolicy = {"full", "keep every KV slot; exact prefix reuse (default)", &create_full};

}  // namespace cw::kv
