#include "tokenizer/special_tokens.h"

#include <algorithm>

namespace cw::tok {
namespace {

inline bool ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

}  // namespace

void SpecialMatcher::build(const Vocab& v, const std::vector<uint8_t>& lstrip, const std::vector<uint8_t>& rstrip) {
  cands_.clear();
  any_always_ = false;
  for (int32_t id = 0; id < v.n_vocab(); ++id) {
    const TokenType t = v.types[id];
    if (t != TokenType::kControl && t != TokenType::kUnknown && t != TokenType::kUserDefined) continue;
    if (v.texts[id].empty()) continue;
    Cand c;
    c.id = id;
    c.text = v.texts[id];
    c.always = t == TokenType::kUserDefined;
    c.lstrip = !lstrip.empty() && lstrip[id];
    c.rstrip = !rstrip.empty() && rstrip[id];
    any_always_ |= c.always;
    cands_.push_back(c);
  }
  std::stable_sort(cands_.begin(), cands_.end(),
                   [](const Cand& a, const Cand& b) { return a.text.size() > b.text.size(); });
  single_.assign(256, {});
  first_byte_.assign(256, 0);
  for (const Cand& c : cands_) first_byte_[static_cast<unsigned char>(c.text[0])] = 1;
  std::vector<uint32_t> counts(65536, 0);
  for (uint32_t k = 0; k < cands_.size(); ++k) {
    const auto* p = reinterpret_cast<const unsigned char*>(cands_[k].text.data());
    if (cands_[k].text.size() == 1) {
      single_[p[0]].push_back(k);
    } else {
      ++counts[(p[0] << 8) | p[1]];
    }
  }
  bucket_begin_.assign(65537, 0);
  for (size_t key = 0; key < 65536; ++key) bucket_begin_[key + 1] = bucket_begin_[key] + counts[key];
  bucket_items_.assign(bucket_begin_[65536], 0);
  std::vector<uint32_t> fill(bucket_begin_.begin(), bucket_begin_.end() - 1);
  for (uint32_t k = 0; k < cands_.size(); ++k) {
    if (cands_[k].text.size() < 2) continue;
    const auto* p = reinterpret_cast<const unsigned char*>(cands_[k].text.data());
    bucket_items_[fill[(p[0] << 8) | p[1]]++] = k;
  }
}

void SpecialMatcher::partition(std::string_view text, bool parse_special, std::vector<Fragment>& out) const {
  out.clear();
  if (text.empty()) return;
  out.push_back(Fragment{-1, 0, text.size()});
  if (cands_.empty() || (!parse_special && !any_always_)) return;

  // Pass 1: which candidates occur at all.
  thread_local std::vector<uint8_t> present;
  present.assign(cands_.size(), 0);
  size_t n_present = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  auto consider = [&](uint32_t k, size_t i) {
    const Cand& c = cands_[k];
    if (present[k] || (!parse_special && !c.always)) return;
    if (c.text.size() <= n - i && std::equal(c.text.begin(), c.text.end(), text.begin() + i)) {
      present[k] = 1;
      ++n_present;
    }
  };
  const uint8_t* first = first_byte_.data();
  for (size_t i = 0; i < n; ++i) {
    if (!first[p[i]]) continue;
    for (uint32_t k : single_[p[i]]) consider(k, i);
    if (i + 1 < n) {
      const uint32_t key = (static_cast<uint32_t>(p[i]) << 8) | p[i + 1];
      for (uint32_t j = bucket_begin_[key]; j < bucket_begin_[key + 1]; ++j) consider(bucket_items_[j], i);
    }
  }
  if (n_present == 0) return;

  // Pass 2: apply the present candidates in priority order, as llama.cpp does.
  thread_local std::vector<Fragment> next;
  for (size_t k = 0; k < cands_.size(); ++k) {
    if (!present[k]) continue;
    const Cand& c = cands_[k];
    next.clear();
    for (const Fragment& f : out) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      const std::string_view window = text.substr(0, f.end);
      size_t cur = f.begin;
      while (cur < f.end) {
        const size_t m = window.find(c.text, cur);
        if (m == std::string_view::npos) break;
        size_t left_end = m;
        if (c.lstrip) {
          while (left_end > cur && ascii_space(text[left_end - 1])) --left_end;
        }
        if (left_end > cur) next.push_back(Fragment{-1, cur, left_end});
        next.push_back(Fragment{c.id, m, m + c.text.size()});
        cur = m + c.text.size();
        if (c.rstrip) {
          while (cur < f.end && ascii_space(text[cur])) ++cur;
        }
      }
      if (cur < f.end) next.push_back(Fragment{-1, cur, f.end});
    }
    out.swap(next);
  }
}

}  // namespace cw::tok
