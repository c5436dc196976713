#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

namespace cw::runtime {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

std::string fmt(double v) {
  std::ostringstream ss;
  ss << v;
  return ss.str();
}

Status bad_range(const char* name, double v, const char* range) {
  return out_of_range(std::string(name) + " must be " + range + ", got " + fmt(v));
}

}  // namespace

Status validate(const SamplerParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0) return bad_range("temperature", p.temperature, ">= 0 (0 = greedy)");
  if (p.top_k < 0) return bad_range("top_k", p.top_k, ">= 0 (0 = off)");
  if (!(p.top_p >= 0 && p.top_p <= 1)) return bad_range("top_p", p.top_p, "in [0, 1] (1 = off)");
  if (!(p.min_p >= 0 && p.min_p <= 1)) return bad_range("min_p", p.min_p, "in [0, 1] (0 = off)");
  if (!std::isfinite(p.repeat_penalty) || p.repeat_penalty <= 0)
    return bad_range("repeat_penalty", p.repeat_penalty, "> 0 (1 = off)");
  if (!std::isfinite(p.presence_penalty))
    return bad_range("presence_penalty", p.presence_penalty, "a finite number (0 = off)");
  if (!std::isfinite(p.frequency_penalty))
    return bad_range("frequency_penalty", p.frequency_penalty, "a finite number (0 = off)");
  if (p.penalty_last_n < 0 || p.penalty_last_n > (1 << 20))
    return bad_range("penalty_last_n", p.penalty_last_n, "in [0, 1048576] (0 = penalties off)");
  return Status::ok();
}

Sampler::Sampler(SamplerParams params, int32_t n_vocab) : params_(params), n_vocab_(n_vocab) {
  CW_CHECK(n_vocab > 0);
  CW_CHECK_MSG(validate(params).is_ok(), validate(params).message());
  cur_.reserve(static_cast<size_t>(n_vocab));
  reset();
}

void Sampler::reset() {
  history_.clear();
  uint64_t s = params_.seed;
  for (uint64_t& r : rng_) r = splitmix64(s);
}

// xoshiro256** (Blackman & Vigna), top 53 bits as a double in [0, 1).
double Sampler::next_uniform() {
  const uint64_t result = rotl(rng_[1] * 5, 7) * 9;
  const uint64_t t = rng_[1] << 17;
  rng_[2] ^= rng_[0];
  rng_[3] ^= rng_[1];
  rng_[1] ^= rng_[2];
  rng_[0] ^= rng_[3];
  rng_[2] ^= t;
  rng_[3] = rotl(rng_[3], 45);
  return static_cast<double>(result >> 11) * 0x1.0p-53;
}

void Sampler::accept(int32_t token) {
  if (token < 0 || token >= n_vocab_ || params_.penalty_last_n == 0) return;
  history_.push_back(token);
  while (history_.size() > static_cast<size_t>(params_.penalty_last_n)) history_.pop_front();
}

bool Sampler::penalties_on() const {
  return !history_.empty() &&
         (params_.repeat_penalty != 1.0f || params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f);
}

// cur_ is in id order here.
void Sampler::apply_penalties() {
  scratch_ids_.assign(history_.begin(), history_.end());
  std::sort(scratch_ids_.begin(), scratch_ids_.end());
  for (size_t i = 0; i < scratch_ids_.size();) {
    size_t j = i;
    while (j < scratch_ids_.size() && scratch_ids_[j] == scratch_ids_[i]) ++j;
    const auto count = static_cast<float>(j - i);
    float& l = cur_[static_cast<size_t>(scratch_ids_[i])].logit;
    if (l <= 0) {
      l *= params_.repeat_penalty;
    } else {
      l /= params_.repeat_penalty;
    }
    l -= count * params_.frequency_penalty + params_.presence_penalty;
    if (std::isnan(l)) l = kNegInf;
    i = j;
  }
}

namespace {

// Total order: higher logit first, then lower id.
struct Before {
  template <typename C>
  bool operator()(const C& a, const C& b) const {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
};

}  // namespace

void Sampler::top_k(int k) {
  std::partial_sort(cur_.begin(), cur_.begin() + k, cur_.end(), Before());
  cur_.resize(static_cast<size_t>(k));
}

// Top-p then min-p on probabilities at temperature 1 over the current candidates. Both keep a prefix of
// the sorted order, so min-p is applied first (O(n), no sort) while top-p uses the normaliser of the
// candidates it would have seen first. cur_ may be sorted (after top-k) or in id order.
void Sampler::top_p_min_p() {
  const bool sorted = std::is_sorted(cur_.begin(), cur_.end(), Before());
  float max_l = kNegInf;
  for (const Candidate& c : cur_) max_l = std::max(max_l, c.logit);

  double z = 0;
  const bool use_top_p = params_.top_p < 1.0f;
  if (use_top_p) {
    for (const Candidate& c : cur_) z += std::exp(static_cast<double>(c.logit) - max_l);
  }
  if (params_.min_p > 0.0f) {
    const double threshold = static_cast<double>(max_l) + std::log(static_cast<double>(params_.min_p));
    cur_.erase(std::remove_if(cur_.begin(), cur_.end(), [&](const Candidate& c) { return c.logit < threshold; }),
               cur_.end());  // keeps the order of the survivors
  }
  if (!use_top_p) return;

  // Sort progressively: only as many candidates as the cumulative mass needs.
  size_t sorted_upto = sorted ? cur_.size() : 0;
  size_t chunk = 64;
  double cum = 0;
  const double target = params_.top_p;
  for (size_t i = 0; i < cur_.size(); ++i) {
    if (i == sorted_upto) {
      const size_t next = std::min(cur_.size(), sorted_upto + chunk);
      std::partial_sort(cur_.begin() + static_cast<ptrdiff_t>(sorted_upto), cur_.begin() + static_cast<ptrdiff_t>(next),
                        cur_.end(), Before());
      sorted_upto = next;
      chunk *= 4;
    }
    cum += std::exp(static_cast<double>(cur_[i].logit) - max_l) / z;
    if (cum >= target) {
      cur_.resize(i + 1);
      return;
    }
  }
}

int32_t Sampler::draw() {
  float max_l = kNegInf;
  for (const Candidate& c : cur_) max_l = std::max(max_l, c.logit);
  const double inv_t = 1.0 / static_cast<double>(params_.temperature);
  double total = 0;
  for (const Candidate& c : cur_) total += std::exp((static_cast<double>(c.logit) - max_l) * inv_t);
  const double u = next_uniform() * total;
  double cum = 0;
  for (const Candidate& c : cur_) {
    cum += std::exp((static_cast<double>(c.logit) - max_l) * inv_t);
    if (u < cum) return c.id;
  }
  // Rounding left u at the very end: the last candidate with non-zero weight.
  for (size_t i = cur_.size(); i-- > 0;) {
    if (std::exp((static_cast<double>(cur_[i].logit) - max_l) * inv_t) > 0) return cur_[i].id;
  }
  return cur_.front().id;
}

int32_t Sampler::sample(std::span<const float> logits) {
  CW_CHECK(logits.size() == static_cast<size_t>(n_vocab_));
  cur_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    cur_[i] = {std::isnan(logits[i]) ? kNegInf : logits[i], static_cast<int32_t>(i)};
  }
  if (penalties_on()) apply_penalties();

  // Greedy (and the degenerate case where nothing has a finite logit): lowest id among the maxima.
  size_t best = 0;
  for (size_t i = 1; i < cur_.size(); ++i) {
    if (cur_[i].logit > cur_[best].logit) best = i;
  }
  if (params_.temperature == 0.0f || !std::isfinite(cur_[best].logit)) return cur_[best].id;

  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < cur_.size()) top_k(params_.top_k);
  top_p_min_p();
  return draw();
}

std::vector<std::pair<int32_t, float>> top_logits(std::span<const float> logits, int k) {
  struct C {
    float logit;
    int32_t id;
  };
  std::vector<C> c(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) c[i] = {std::isnan(logits[i]) ? kNegInf : logits[i], static_cast<int32_t>(i)};
  const size_t n = std::min(c.size(), static_cast<size_t>(std::max(k, 0)));
  std::partial_sort(c.begin(), c.begin() + static_cast<ptrdiff_t>(n), c.end(), Before());
  std::vector<std::pair<int32_t, float>> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.emplace_back(c[i].id, c[i].logit);
  return out;
}

}  // namespace cw::runtime
