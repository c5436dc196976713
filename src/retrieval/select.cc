#include "retrieval/select.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <unordered_map>

namespace cw::retrieval {
namespace {

constexpr int64_t kMaxCount = 100000;

struct Params {
  std::string method;
  std::map<std::string, std::string> kv;
};

Result<Params> parse(std::string_view spec) {
  Params p;
  const size_t colon = spec.find(':');
  p.method = std::string(spec.substr(0, colon));
  if (p.method.empty()) return invalid_argument(std::string("empty selector spec (") + selector_specs_help() + ")");
  if (colon == std::string_view::npos) return p;
  std::string_view rest = spec.substr(colon + 1);
  while (!rest.empty()) {
    const size_t eq = rest.find('=');
    if (eq == std::string_view::npos || eq == 0)
      return invalid_argument("selector '" + std::string(spec) + "': expected key=value, got '" + std::string(rest) + "'");
    std::string key(rest.substr(0, eq));
    std::string_view value;
    if (key == "base") {  // takes the rest of the spec (it may hold commas)
      value = rest.substr(eq + 1);
      rest = {};
    } else {
      const size_t comma = rest.find(',', eq);
      value = rest.substr(eq + 1, comma == std::string_view::npos ? std::string_view::npos : comma - eq - 1);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
    if (p.kv.count(key) != 0)
      return invalid_argument("selector '" + std::string(spec) + "': key '" + key + "' given twice");
    p.kv[key] = std::string(value);
  }
  return p;
}

Status check_keys(const Params& p, std::initializer_list<const char*> keys) {
  for (const auto& [k, v] : p.kv) {
    bool known = false;
    for (const char* allowed : keys) known = known || k == allowed;
    if (!known) {
      std::string list;
      for (const char* allowed : keys) list += (list.empty() ? "" : ", ") + std::string(allowed);
      return invalid_argument("selector '" + p.method + "' has no key '" + k + "' (keys: " +
                              (list.empty() ? "none" : list) + ")");
    }
  }
  return Status::ok();
}

Result<int64_t> get_int(const Params& p, const char* key, int64_t fallback, int64_t lo, int64_t hi) {
  auto it = p.kv.find(key);
  if (it == p.kv.end()) return fallback;
  int64_t v = 0;
  const char* b = it->second.data();
  const char* e = b + it->second.size();
  auto [ptr, ec] = std::from_chars(b, e, v);
  if (ec != std::errc() || ptr != e || v < lo || v > hi)
    return invalid_argument("selector '" + p.method + "': " + key + " must be an integer in [" + std::to_string(lo) +
                            ", " + std::to_string(hi) + "], got '" + it->second + "'");
  return v;
}

class TopK final : public Selector {
 public:
  explicit TopK(int64_t k) : k_(k) {}
  Result<std::vector<Hit>> select(const std::vector<Hit>& hits, const Store&) const override {
    return std::vector<Hit>(hits.begin(), hits.begin() + std::min<int64_t>(k_, static_cast<int64_t>(hits.size())));
  }
  int64_t candidates() const override { return k_; }
  std::string spec() const override { return "topk:k=" + std::to_string(k_); }

 private:
  int64_t k_;
};

class Gradient final : public Selector {
 public:
  Gradient(int64_t min, int64_t max) : min_(min), max_(max) {}
  Result<std::vector<Hit>> select(const std::vector<Hit>& hits, const Store&) const override {
    const int64_t n = std::min<int64_t>(max_, static_cast<int64_t>(hits.size()));
    int64_t keep = n;
    if (n > min_) {
      double best = -1;
      for (int64_t c = min_; c <= n - 1; ++c) {
        const double drop = hits[static_cast<size_t>(c - 1)].score - hits[static_cast<size_t>(c)].score;
        if (drop > best) {
          best = drop;
          keep = c;
        }
      }
    }
    return std::vector<Hit>(hits.begin(), hits.begin() + keep);
  }
  int64_t candidates() const override { return max_; }
  std::string spec() const override {
    return "gradient:min=" + std::to_string(min_) + ",max=" + std::to_string(max_);
  }

 private:
  int64_t min_, max_;
};

class Budget final : public Selector {
 public:
  Budget(int64_t tokens, int64_t candidates) : tokens_(tokens), candidates_(candidates) {}
  Result<std::vector<Hit>> select(const std::vector<Hit>& hits, const Store& store) const override {
    std::vector<Hit> out;
    int64_t used = 0;
    const size_t n = std::min<size_t>(hits.size(), static_cast<size_t>(candidates_));
    for (size_t i = 0; i < n && used < tokens_; ++i) {
      CW_ASSIGN_OR_RETURN(ChunkRow row, store.chunk(hits[i].chunk_id));
      if (used + row.n_tokens > tokens_) continue;
      used += row.n_tokens;
      out.push_back(hits[i]);
    }
    return out;
  }
  int64_t candidates() const override { return candidates_; }
  std::string spec() const override {
    return "budget:tokens=" + std::to_string(tokens_) + ",candidates=" + std::to_string(candidates_);
  }

 private:
  int64_t tokens_, candidates_;
};

class Neighbors final : public Selector {
 public:
  Neighbors(int64_t n, std::unique_ptr<Selector> base) : n_(n), base_(std::move(base)) {}
  Result<std::vector<Hit>> select(const std::vector<Hit>& hits, const Store& store) const override {
    CW_ASSIGN_OR_RETURN(std::vector<Hit> kept, base_->select(hits, store));
    std::vector<Hit> out;
    std::set<int64_t> seen;
    for (const Hit& h : kept) {
      CW_ASSIGN_OR_RETURN(ChunkRow row, store.chunk(h.chunk_id));
      CW_ASSIGN_OR_RETURN(std::vector<ChunkRow> around,
                          store.chunk_range(row.path, row.index - n_, row.index + n_));
      for (const ChunkRow& r : around)
        if (seen.insert(r.chunk_id).second) out.push_back({r.chunk_id, h.score});
    }
    return out;
  }
  int64_t candidates() const override { return base_->candidates(); }
  std::string spec() const override { return "neighbors:n=" + std::to_string(n_) + ",base=" + base_->spec(); }

 private:
  int64_t n_;
  std::unique_ptr<Selector> base_;
};

}  // namespace

const char* selector_specs_help() {
  return "selectors: topk:k=K, gradient[:min=M,max=K], budget:tokens=T[,candidates=N], "
         "neighbors:n=N[,base=SPEC]";
}

Result<std::unique_ptr<Selector>> make_selector(std::string_view spec) {
  CW_ASSIGN_OR_RETURN(Params p, parse(spec));
  if (p.method == "topk") {
    CW_RETURN_IF_ERROR(check_keys(p, {"k"}));
    CW_ASSIGN_OR_RETURN(int64_t k, get_int(p, "k", 5, 1, kMaxCount));
    return std::unique_ptr<Selector>(new TopK(k));
  }
  if (p.method == "gradient") {
    CW_RETURN_IF_ERROR(check_keys(p, {"min", "max"}));
    CW_ASSIGN_OR_RETURN(int64_t max, get_int(p, "max", 10, 1, kMaxCount));
    CW_ASSIGN_OR_RETURN(int64_t min, get_int(p, "min", 1, 1, kMaxCount));
    if (min > max)
      return invalid_argument("selector 'gradient': min (" + std::to_string(min) + ") must be <= max (" +
                              std::to_string(max) + ")");
    return std::unique_ptr<Selector>(new Gradient(min, max));
  }
  if (p.method == "budget") {
    CW_RETURN_IF_ERROR(check_keys(p, {"tokens", "candidates"}));
    if (p.kv.count("tokens") == 0) return invalid_argument("selector 'budget' needs tokens=T (budget:tokens=T)");
    CW_ASSIGN_OR_RETURN(int64_t tokens, get_int(p, "tokens", 0, 1, int64_t{1} << 40));
    CW_ASSIGN_OR_RETURN(int64_t candidates, get_int(p, "candidates", 50, 1, kMaxCount));
    return std::unique_ptr<Selector>(new Budget(tokens, candidates));
  }
  if (p.method == "neighbors") {
    CW_RETURN_IF_ERROR(check_keys(p, {"n", "base"}));
    CW_ASSIGN_OR_RETURN(int64_t n, get_int(p, "n", 1, 0, kMaxCount));
    auto it = p.kv.find("base");
    const std::string base_spec = it == p.kv.end() ? "topk:k=5" : it->second;
    if (base_spec.rfind("neighbors", 0) == 0) return invalid_argument("selector 'neighbors': base cannot be neighbors");
    auto base = make_selector(base_spec);
    if (!base.is_ok()) return invalid_argument("selector 'neighbors': base: " + base.status().message());
    return std::unique_ptr<Selector>(new Neighbors(n, std::move(base).value()));
  }
  return invalid_argument("unknown selector '" + p.method + "' (" + selector_specs_help() + ")");
}

}  // namespace cw::retrieval
