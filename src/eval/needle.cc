#include "eval/needle.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>
#include <thread>

#include "kv/policy.h"
#include "pipelines/ask.h"
#include "pipelines/index.h"  // kDefaultChunker
#include "retrieval/store.h"
#include "text/chunker.h"
#include "runtime/kv_executor.h"  // make_acting_policy
#include "tokenizer/tokenizer.h"

namespace cw::eval {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

uint64_t needle_trial_seed(uint64_t seed, int64_t length, double depth) {
  uint64_t s = seed;
  uint64_t a = splitmix64(s) ^ static_cast<uint64_t>(length) * 0x9E3779B97F4A7C15ull;
  const auto d = static_cast<uint64_t>(std::llround(std::clamp(depth, 0.0, 1.0) * 1e6));
  a ^= splitmix64(a) + d * 0xC2B2AE3D27D4EB4Full;
  return splitmix64(a);
}

Status validate(const NeedleOptions& o) {
  if (o.recipe == Recipe::kMix) return invalid_argument("eval needle takes one recipe (passkey, kv, multi, extract, quote), not mix");
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
  if (o.jobs < 1 || o.jobs > 1024) return invalid_argument("jobs must be in [1, 1024], got " + std::to_string(o.jobs));
  if (!o.ask_mode.empty() && o.ask_mode != "retrieval" && o.ask_mode != "attention")
    return invalid_argument("the ask mode must be retrieval or attention, got '" + o.ask_mode + "'");
  return Status::ok();
}

namespace {

// One haystack through `ask` (NeedleOptions::ask_mode): an in-memory index of the document, the question.
Result<pipelines::AskResult> ask_haystack(const model::Model& m, const tok::Tokenizer& tok, const Sample& s,
                                          const std::string& policy, const NeedleOptions& o) {
  CW_ASSIGN_OR_RETURN(std::unique_ptr<text::Chunker> chunker, text::make_chunker(pipelines::kDefaultChunker));
  CW_ASSIGN_OR_RETURN(std::vector<text::Chunk> chunks, chunker->chunk("haystack", s.text));
  CW_ASSIGN_OR_RETURN(std::unique_ptr<retrieval::Store> store, retrieval::Store::open(":memory:", true));
  retrieval::DocumentInput doc;
  doc.path = "haystack";
  doc.text = s.text;
  doc.chunker = pipelines::kDefaultChunker;
  for (const text::Chunk& ch : chunks)
    doc.chunks.push_back({ch.index, ch.byte_begin, ch.byte_end, ch.char_begin, ch.char_end, ch.n_tokens});
  CW_RETURN_IF_ERROR(store->ingest(doc).status());
  pipelines::AskOptions ao;
  const bool attention = o.ask_mode == "attention";
  ao.mode = attention ? pipelines::AskMode::kAttention : pipelines::AskMode::kRetrieval;
  ao.kv_policy = policy == "full" ? std::string() : policy;
  ao.max_answer_tokens = o.max_answer_tokens;
  ao.ubatch = o.ubatch;
  ao.n_threads = o.n_threads;
  return pipelines::ask(m, tok, *store, s.question, ao);
}

}  // namespace

Result<NeedleReport> run_needle(const model::Model& m, const tok::Tokenizer& tok, const HaystackGenerator& gen,
                                const NeedleOptions& o) {
  CW_RETURN_IF_ERROR(validate(o));
  NeedleReport rep;
  rep.recipe = recipe_name(o.recipe);
  rep.n_ctx_train = m.hparams().n_ctx_train;
  const auto t_all = Clock::now();
  const int64_t total = static_cast<int64_t>(o.policies.size() * o.lengths.size() * o.depths.size()) * o.trials;
  int64_t done = 0;
  pipelines::GreedyOptions greedy;
  greedy.max_tokens = o.max_answer_tokens;
  greedy.ubatch = o.ubatch;
  greedy.kv_type = o.kv_type;
  greedy.n_threads = o.n_threads;
  for (const std::string& spec : o.policies) {
    CW_ASSIGN_OR_RETURN(std::unique_ptr<kv::KvPolicy> acting, runtime::make_acting_policy(spec));
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
        // Trials run on o.jobs workers (each its own session; the model, tokenizer and generator are shared
        // read-only); outcomes are gathered in trial order, so the cell does not depend on the job count.
        struct Outcome {
          Status status;
          std::string expected, got;
          double prompt_tokens = 0;
        };
        std::vector<Outcome> out(static_cast<size_t>(o.trials));
        std::atomic<int> next{0};
        std::mutex progress_mu;
        auto worker = [&] {
          for (int t; (t = next.fetch_add(1)) < o.trials;) {
            Outcome& r = out[static_cast<size_t>(t)];
            Result<Sample> s = gen.generate(g, seed, t);
            if (!s.is_ok()) {
              r.status = s.status();
              next = o.trials;
              break;
            }
            r.expected = s->answer;
            if (!o.ask_mode.empty()) {
              Result<pipelines::AskResult> a = ask_haystack(m, tok, *s, spec, o);
              if (!a.is_ok()) {
                r.status = a.status();
                next = o.trials;
                break;
              }
              r.prompt_tokens = static_cast<double>(a->prompt_tokens);
              r.got = a->answer;
            } else {
              const std::vector<int32_t> prompt =
                  tok.encode(format_prompt(*s), /*add_special=*/true, /*parse_special=*/false);
              r.prompt_tokens = static_cast<double>(prompt.size());
              Result<pipelines::GreedyAnswer> ans = pipelines::greedy_answer(m, tok, acting.get(), prompt, greedy);
              if (!ans.is_ok()) {
                r.status = ans.status();
                next = o.trials;
                break;
              }
              r.got = pipelines::answer_text(ans->generated);
            }
            std::lock_guard<std::mutex> lock(progress_mu);
            ++done;
            if (o.progress) o.progress(done, total);
          }
        };
        std::vector<std::thread> pool;
        for (int j = 1; j < std::min(o.jobs, o.trials); ++j) pool.emplace_back(worker);
        worker();
        for (std::thread& th : pool) th.join();
        double prompt_tokens = 0;
        for (int t = 0; t < o.trials; ++t) {
          const Outcome& r = out[static_cast<size_t>(t)];
          CW_RETURN_IF_ERROR(r.status);
          prompt_tokens += r.prompt_tokens;
          if (r.got == r.expected) {
            ++cell.correct;
          } else if (cell.misses.size() < 3) {
            cell.misses.push_back({t, r.expected, r.got});
          }
          ++cell.trials;
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
