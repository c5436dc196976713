#include "eval/needle.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include "kv/policy.h"
#include "pipelines/ask.h"
#include "runtime/kv_executor.h"
#include "tokenizer/tokenizer.h"

namespace cw::eval {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int32_t argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// One sequence under one policy: feed the prompt, then greedy tokens.
class Runner {
 public:
  virtual ~Runner() = default;
  virtual Status eval(std::span<const int32_t> tokens, std::vector<float>* logits) = 0;
};

class PlainRunner : public Runner {
 public:
  PlainRunner(std::unique_ptr<model::Session> s, int64_t ubatch) : s_(std::move(s)), ubatch_(ubatch) {}
  Status eval(std::span<const int32_t> tokens, std::vector<float>* logits) override {
    for (size_t i = 0; i < tokens.size(); i += static_cast<size_t>(ubatch_)) {
      const size_t n = std::min(tokens.size() - i, static_cast<size_t>(ubatch_));
      CW_RETURN_IF_ERROR(s_->eval(tokens.subspan(i, n), false, logits));
    }
    return Status::ok();
  }

 private:
  std::unique_ptr<model::Session> s_;
  int64_t ubatch_;
};

class PolicyRunner : public Runner {
 public:
  explicit PolicyRunner(std::unique_ptr<runtime::PolicySession> s) : s_(std::move(s)) {}
  Status eval(std::span<const int32_t> tokens, std::vector<float>* logits) override {
    return s_->eval(tokens, false, logits);
  }

 private:
  std::unique_ptr<runtime::PolicySession> s_;
};

constexpr int32_t kBlock = 16;

// A fresh runner for a sequence of `n_total` tokens at most (prompt + answer).
Result<std::unique_ptr<Runner>> make_runner(const model::Model& m, const kv::KvPolicy* acting, int64_t n_total,
                                            const NeedleOptions& o) {
  if (acting != nullptr) {
    CW_ASSIGN_OR_RETURN(const int64_t ub, runtime::PolicySession::fit_ubatch(m, *acting, o.ubatch, kBlock));
    CW_ASSIGN_OR_RETURN(std::unique_ptr<runtime::PolicySession> ps,
                        runtime::PolicySession::create(m, *acting, ub, o.kv_type, o.n_threads, kBlock));
    return std::unique_ptr<Runner>(new PolicyRunner(std::move(ps)));
  }
  const int64_t n_ctx_train = m.hparams().n_ctx_train;
  std::unique_ptr<model::Session> s;
  if (n_ctx_train <= 0 || n_total <= n_ctx_train) {
    CW_ASSIGN_OR_RETURN(s, model::Session::create(m, n_total, o.kv_type, o.n_threads));
  } else {  // full attention past the training context: a paged session has no context rule
    const int64_t blocks = (n_total + kBlock - 1) / kBlock;
    CW_ASSIGN_OR_RETURN(s, model::Session::create_paged(m, static_cast<int32_t>(blocks), kBlock, o.kv_type, o.n_threads));
  }
  return std::unique_ptr<Runner>(new PlainRunner(std::move(s), o.ubatch));
}

}  // namespace

uint64_t needle_trial_seed(uint64_t seed, int64_t length, double depth) {
  uint64_t s = seed;
  uint64_t a = splitmix64(s) ^ static_cast<uint64_t>(length) * 0x9E3779B97F4A7C15ull;
  const auto d = static_cast<uint64_t>(std::llround(std::clamp(depth, 0.0, 1.0) * 1e6));
  a ^= splitmix64(a) + d * 0xC2B2AE3D27D4EB4Full;
  return splitmix64(a);
}

Status validate(const NeedleOptions& o) {
  if (o.recipe == Recipe::kMix) return invalid_argument("eval needle takes one recipe (passkey, kv, multi, extract), not mix");
  if (o.lengths.empty()) return invalid_argument("no lengths to test");
  for (int64_t l : o.lengths)
    if (l < 1 || l > (int64_t{1} << 24)) return invalid_argument("lengths must be in [1, 16777216] tokens, got " + std::to_string(l));
  if (o.depths.empty()) return invalid_argument("no depths to test");
  for (double d : o.depths)
    if (!(d >= 0.0 && d <= 1.0)) return invalid_argument("depths must be in [0, 1], got " + std::to_string(d));
  if (o.needles < 1 || o.needles > 64) return invalid_argument("needles must be in [1, 64], got " + std::to_string(o.needles));
  if (o.trials < 1 || o.trials > 1000000) return invalid_argument("trials must be in [1, 1000000], got " + std::to_string(o.trials));
  if (o.policies.empty()) return invalid_argument("no KV policy to test");
  for (const std::string& p : o.policies) CW_RETURN_IF_ERROR(kv::make_kv_policy(p).status());
  if (o.max_answer_tokens < 1 || o.max_answer_tokens > 4096)
    return invalid_argument("max answer tokens must be in [1, 4096], got " + std::to_string(o.max_answer_tokens));
  if (o.ubatch < 1) return invalid_argument("the micro-batch size must be >= 1");
  if (o.n_threads < 1) return invalid_argument("the thread count must be >= 1");
  return Status::ok();
}

Result<NeedleReport> run_needle(const model::Model& m, const tok::Tokenizer& tok, const HaystackGenerator& gen,
                                const NeedleOptions& o) {
  CW_RETURN_IF_ERROR(validate(o));
  NeedleReport rep;
  rep.recipe = recipe_name(o.recipe);
  rep.n_ctx_train = m.hparams().n_ctx_train;
  const auto t_all = Clock::now();
  const int64_t total = static_cast<int64_t>(o.policies.size() * o.lengths.size() * o.depths.size()) * o.trials;
  int64_t done = 0;
  const int32_t eos = tok.eos();
  std::vector<float> logits;
  for (const std::string& spec : o.policies) {
    CW_ASSIGN_OR_RETURN(std::unique_ptr<kv::KvPolicy> acting, runtime::make_acting_policy(spec, kBlock));
    std::string canonical;
    {
      CW_ASSIGN_OR_RETURN(std::unique_ptr<kv::KvPolicy> p, kv::make_kv_policy(spec));
      canonical = p->spec();
    }
    for (int64_t length : o.lengths) {
      for (double depth : o.depths) {
        NeedleCell cell;
        cell.policy = canonical;
        cell.length = length;
        cell.depth = depth;
        GenOptions g;
        g.recipe = o.recipe;
        g.lengths = {length};
        g.unit = LengthUnit::kTokens;
        g.depth = depth;
        g.needles = o.needles;
        g.tokenizer = &tok;
        const uint64_t seed = needle_trial_seed(o.seed, length, depth);
        const auto t_cell = Clock::now();
        double prompt_tokens = 0;
        for (int t = 0; t < o.trials; ++t) {
          CW_ASSIGN_OR_RETURN(Sample s, gen.generate(g, seed, t));
          const std::vector<int32_t> prompt = tok.encode(format_prompt(s), /*add_special=*/true, /*parse_special=*/false);
          prompt_tokens += static_cast<double>(prompt.size());
          CW_ASSIGN_OR_RETURN(std::unique_ptr<Runner> r,
                              make_runner(m, acting.get(), static_cast<int64_t>(prompt.size()) + o.max_answer_tokens, o));
          CW_RETURN_IF_ERROR(r->eval(prompt, &logits));
          std::string out;
          for (int64_t i = 0; i < o.max_answer_tokens; ++i) {
            const int32_t next = argmax(logits);
            if (next == eos) break;
            out += tok.token_to_piece(next);
            if (out.find('\n') != std::string::npos || i + 1 == o.max_answer_tokens) break;
            const int32_t one[1] = {next};
            CW_RETURN_IF_ERROR(r->eval(one, &logits));
          }
          const std::string got = pipelines::answer_text(out);
          if (got == s.answer) {
            ++cell.correct;
          } else if (cell.misses.size() < 3) {
            cell.misses.push_back({t, s.answer, got});
          }
          ++cell.trials;
          ++done;
          if (o.progress) o.progress(done, total);
        }
        cell.accuracy = static_cast<double>(cell.correct) / cell.trials;
        cell.mean_prompt_tokens = prompt_tokens / cell.trials;
        cell.seconds = seconds_since(t_cell);
        rep.cells.push_back(std::move(cell));
      }
    }
  }
  rep.seconds = seconds_since(t_all);
  return rep;
}

}  // namespace cw::eval
