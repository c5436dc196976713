#include "runtime/logprobs.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace cw::runtime {

void compute_logprobs(std::span<const float> row, int32_t token, int k, TokenLogprobs* out) {
  out->token = token;
  out->top.clear();
  if (row.empty()) {
    out->logprob = 0;
    return;
  }
  float max = row[0];
  for (float x : row) max = std::max(max, x);
  double sum = 0;
  for (float x : row) sum += std::exp(static_cast<double>(x) - max);
  const double log_z = static_cast<double>(max) + std::log(sum);
  auto lp = [&](size_t i) { return static_cast<float>(static_cast<double>(row[i]) - log_z); };
  out->logprob = token >= 0 && static_cast<size_t>(token) < row.size() ? lp(static_cast<size_t>(token)) : NAN;

  const size_t n = std::min(row.size(), static_cast<size_t>(std::max(k, 0)));
  if (n == 0) return;
  // Better first: higher logit, then lower id. One pass keeping the n best in a sorted vector (n <= 20).
  auto better = [&](size_t a, size_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); };
  std::vector<size_t> best;
  best.reserve(n + 1);
  for (size_t i = 0; i < row.size(); ++i) {
    if (best.size() == n && !better(i, best.back())) continue;
    best.insert(std::upper_bound(best.begin(), best.end(), i, better), i);
    if (best.size() > n) best.pop_back();
  }
  out->top.reserve(n);
  for (size_t i : best) out->top.push_back({static_cast<int32_t>(i), lp(i)});
}

}  // namespace cw::runtime
