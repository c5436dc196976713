#include "kv/policy.h"

#include <limits>

namespace cw::kv {

// The registry: one line per policy (the factories live in policies/<name>.cc).
extern const KvPolicyFactory kFullPolicy;
extern const KvPolicyFactory kSinkWindowPolicy;
extern const KvPolicyFactory kWindowPolicy;
extern const KvPolicyFactory kRecomputeWindowPolicy;
extern const KvPolicyFactory kChunkSelectPolicy;
extern const KvPolicyFactory kCompressPolicy;
extern const KvPolicyFactory kRetainPolicy;

const std::vector<const KvPolicyFactory*>& kv_policies() {
  static const std::vector<const KvPolicyFactory*> kAll = {&kFullPolicy, &kSinkWindowPolicy, &kWindowPolicy,
                                                              &kRecomputeWindowPolicy, &kChunkSelectPolicy,
                                                              &kCompressPolicy, &kRetainPolicy};
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

Placement KvPolicy::place_reused(const ReusedChunk& chunk) const {
  Placement p;
  p.reuse = chunk.src_position == chunk.dst_position;
  return p;
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

Result<int64_t> int_param(const PolicySpec& spec, const std::string& key, int64_t fallback, int64_t lo, int64_t hi) {
  const auto it = spec.params.find(key);
  if (it == spec.params.end()) return fallback;
  const std::string& v = it->second;
  const std::string range = "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  int64_t x = 0;
  for (char c : v) {
    if (c < '0' || c > '9' || x > (std::numeric_limits<int64_t>::max() - 9) / 10)
      return invalid_argument("kv policy '" + spec.name + "': " + key + " must be an integer in " + range + ", got '" +
                              v + "'");
    x = x * 10 + (c - '0');
  }
  if (x < lo || x > hi)
    return invalid_argument("kv policy '" + spec.name + "': " + key + " must be in " + range + ", got " + v);
  return x;
}

Status only_keys(const PolicySpec& spec, std::initializer_list<const char*> keys) {
  for (const auto& [k, v] : spec.params) {
    bool known = false;
    std::string allowed;
    for (const char* key : keys) {
      known = known || k == key;
      allowed += (allowed.empty() ? "" : ", ") + std::string(key);
    }
    if (!known)
      return invalid_argument("kv policy '" + spec.name + "': unknown parameter '" + k + "' (allowed: " + allowed + ")");
  }
  return Status::ok();
}

Result<std::unique_ptr<KvPolicy>> make_kv_policy(std::string_view spec) {
  CW_ASSIGN_OR_RETURN(PolicySpec parsed, parse_policy_spec(spec));
  for (const KvPolicyFactory* f : kv_policies())
    if (parsed.name == f->name) return f->create(parsed);
  return invalid_argument("unknown kv policy '" + parsed.name + "' (supported: " + supported_kv_policies() + ")");
}

}  // namespace cw::kv
