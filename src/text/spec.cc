// Spec strings: parsing, validation of the common keys, SpecParams getters, make_chunker.
#include <cerrno>
#include <cstdlib>
#include <unistd.h>

#include "text/chunker.h"

namespace cw::text {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Result<int64_t> parse_int(const std::string& key, const std::string& v, int64_t min, int64_t max) {
  errno = 0;
  char* end = nullptr;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || end != v.c_str() + v.size() || errno == ERANGE) {
    return invalid_argument(key + "=" + v + ": not an integer");
  }
  if (x < min || x > max) {
    return invalid_argument(key + "=" + v + ": must be in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return static_cast<int64_t>(x);
}

constexpr const char* kCommonKeys[] = {"size", "overlap", "unit", "tokenizer"};

std::string valid_keys(const MethodInfo& m) {
  std::string s;
  for (const char* k : kCommonKeys) s += std::string(s.empty() ? "" : ", ") + k;
  for (const MethodKey& k : m.keys) s += ", " + k.name;
  return s;
}

std::string method_names() {
  std::string s;
  for (const MethodInfo* m : chunker_methods()) s += std::string(s.empty() ? "" : ", ") + m->name;
  return s;
}

}  // namespace

std::string SpecParams::get(const std::string& key, const std::string& fallback) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? fallback : it->second;
}

Result<int64_t> SpecParams::get_int(const std::string& key, int64_t fallback, int64_t min, int64_t max) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) return fallback;
  return parse_int(key, it->second, min, max);
}

Result<double> SpecParams::get_double(const std::string& key, double fallback, double min, double max) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) return fallback;
  const std::string& v = it->second;
  errno = 0;
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || end != v.c_str() + v.size() || errno == ERANGE || x != x) {
    return invalid_argument(key + "=" + v + ": not a number");
  }
  if (x < min || x > max) {
    return invalid_argument(key + "=" + v + ": must be in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return x;
}

Result<std::string> SpecParams::get_choice(const std::string& key, const std::string& fallback,
                                           std::span<const std::string_view> choices) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) return fallback;
  std::string list;
  for (std::string_view c : choices) {
    if (it->second == c) return it->second;
    list += std::string(list.empty() ? "" : ", ") + std::string(c);
  }
  return invalid_argument(key + "=" + it->second + ": valid values are " + list);
}

Result<ParsedSpec> parse_spec(std::string_view spec) {
  ParsedSpec out;
  const size_t colon = spec.find(':');
  out.method = std::string(trim(spec.substr(0, colon)));
  if (out.method.empty()) {
    return invalid_argument("chunker spec '" + std::string(spec) + "': missing method (valid: " + method_names() + ")");
  }
  if (colon == std::string_view::npos) return out;
  std::string_view rest = spec.substr(colon + 1);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view item = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return invalid_argument("chunker spec '" + std::string(spec) + "': '" + std::string(item) + "' is not key=value");
    }
    const std::string key(trim(item.substr(0, eq)));
    const std::string value(trim(item.substr(eq + 1)));
    if (key.empty()) return invalid_argument("chunker spec '" + std::string(spec) + "': empty key");
    if (!out.kv.emplace(key, value).second) {
      return invalid_argument("chunker spec '" + std::string(spec) + "': key '" + key + "' given twice");
    }
  }
  return out;
}

const MethodInfo* find_method(std::string_view name) {
  for (const MethodInfo* m : chunker_methods()) {
    if (m->name == name) return m;
  }
  return nullptr;
}

Result<ChunkerConfig> make_config(const ParsedSpec& spec) {
  const MethodInfo* m = find_method(spec.method);
  if (m == nullptr) {
    return invalid_argument("unknown chunking method '" + spec.method + "' (valid: " + method_names() + ")");
  }
  ChunkerConfig cfg;
  cfg.method = m->name;
  std::map<std::string, std::string> own;
  std::string unit_s, tokenizer;
  for (const auto& [k, v] : spec.kv) {
    if (k == "size") {
      CW_ASSIGN_OR_RETURN(cfg.size, parse_int("size", v, 1, int64_t{1} << 40));
    } else if (k == "overlap") {
      CW_ASSIGN_OR_RETURN(cfg.overlap, parse_int("overlap", v, 0, int64_t{1} << 40));
    } else if (k == "unit") {
      unit_s = v;
    } else if (k == "tokenizer") {
      tokenizer = v;
      if (v.empty()) return invalid_argument("tokenizer= needs a GGUF file path");
    } else {
      bool known = false;
      for (const MethodKey& mk : m->keys) known |= mk.name == k;
      if (!known) {
        return invalid_argument("unknown key '" + k + "' for method " + m->name + " (valid keys: " + valid_keys(*m) + ")");
      }
      own.emplace(k, v);
    }
  }
  if (cfg.overlap >= cfg.size) {
    return invalid_argument("overlap=" + std::to_string(cfg.overlap) + " must be smaller than size=" +
                            std::to_string(cfg.size));
  }
  Unit unit = tokenizer.empty() ? Unit::kChars : Unit::kTokens;
  if (!unit_s.empty()) {
    CW_ASSIGN_OR_RETURN(unit, parse_unit(unit_s));
  }
  if (unit != Unit::kTokens && !tokenizer.empty()) {
    return invalid_argument(std::string("tokenizer= is only used with unit=tokens (unit=") + unit_name(unit) + ")");
  }
  if (unit == Unit::kTokens && !tokenizer.empty() && ::access(tokenizer.c_str(), R_OK) != 0) {
    return not_found("tokenizer '" + tokenizer + "': cannot read the file");
  }
  CW_ASSIGN_OR_RETURN(cfg.measure, SizeMeasure::create(unit, tokenizer));
  cfg.params = SpecParams(std::move(own));
  return cfg;
}

Result<std::unique_ptr<Chunker>> make_chunker(std::string_view spec) {
  CW_ASSIGN_OR_RETURN(ParsedSpec parsed, parse_spec(spec));
  CW_ASSIGN_OR_RETURN(ChunkerConfig cfg, make_config(parsed));
  const MethodInfo* m = find_method(cfg.method);
  return m->create(cfg);
}

}  // namespace cw::text
