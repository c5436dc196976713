#include "kv/policy.h"

namespace cw::kv {

// The registry: one line per policy (the factories live in policies/<name>.cc).
extern const KvPolicyFactory kFullPolicy;
extern const KvPolicyFactory kSinkWindowPolicy;
extern const KvPolicyFactory kWindowPolicy;

const std::vector<const KvPolicyFactory*>& kv_policies() {
  static const std::vector<const KvPolicyFactory*> kAll = {&kFullPolicy, &kSinkWindowPolicy, &kWindowPolicy};
  return kAll;
}

std::string supported_kv_policies() {
  std::string out;
  for (const KvPolicyFactory* f : kv_policies()) {
    if (!out.empty()) out += ", ";
    out += f->name;
  }
  return out;
}

Result<PolicySpec> parse_policy_spec(std::string_view spec) {
  PolicySpec out;
  const size_t colon = spec.find(':');
  out.name = std::string(spec.substr(0, colon));
  if (out.name.empty()) return invalid_argument("kv policy spec '" + std::string(spec) + "' has no policy name");
  if (colon == std::string_view::npos) return out;
  std::string_view rest = spec.substr(colon + 1);
  if (rest.empty()) return invalid_argument("kv policy spec '" + std::string(spec) + "': nothing after ':'");
  while (true) {
    const size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == item.size())
      return invalid_argument("kv policy spec '" + std::string(spec) + "': parameter '" + std::string(item) +
                              "' is not key=value");
    std::string key(item.substr(0, eq));
    if (out.params.count(key) != 0)
      return invalid_argument("kv policy spec '" + std::string(spec) + "': parameter '" + key + "' given twice");
    out.params.emplace(std::move(key), std::string(item.substr(eq + 1)));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return out;
}

Result<std::unique_ptr<KvPolicy>> make_kv_policy(std::string_view spec) {
  CW_ASSIGN_OR_RETURN(PolicySpec parsed, parse_policy_spec(spec));
  for (const KvPolicyFactory* f : kv_policies())
    if (parsed.name == f->name) return f->create(parsed);
  return invalid_argument("unknown kv policy '" + parsed.name + "' (supported: " + supported_kv_policies() + ")");
}

}  // namespace cw::kv
