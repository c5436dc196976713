// Test support for the scheduler and engine tests (not part of cw_runtime): a fake StepExecutor that keeps a
// token id in every KV slot (instead of K/V vectors) and derives each output row's logits from the tokens
// it reads back through the block table, plus the single-sequence oracle over the same function. A wrong
// block table, a missing copy-on-write, a bad prefix match or a row fed at the wrong slot changes the
// logits, so every request's output must equal the oracle's.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <span>
#include <thread>
#include <vector>

#include "runtime/sampler.h"
#include "runtime/scheduler.h"

namespace cw::runtime::fake {

constexpr int32_t kVocab = 61;

// Pseudo-logits of the next token after `ctx` (depends on every token and its position).
inline void fake_logits(std::span<const int32_t> ctx, float* out) {
  uint64_t h = 1469598103934665603ull;
  for (int32_t t : ctx) h = (h ^ static_cast<uint64_t>(t + 1)) * 1099511628211ull;
  for (int32_t v = 0; v < kVocab; ++v) {
    uint64_t x = h + 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(v + 1);
    x = (x ^ (x >> 31)) * 0xbf58476d1ce4e5b9ull;
    x ^= x >> 29;
    out[v] = static_cast<float>(x % 4096) / 256.0f;
  }
}

class FakeExecutor : public StepExecutor {
 public:
  FakeExecutor(int32_t n_blocks, int32_t block_size)
      : bs_(block_size), slots_(static_cast<size_t>(n_blocks) * static_cast<size_t>(block_size), -1) {}

  Status execute(const StepPlan& plan, std::vector<float>* logits) override {
    ++calls_;
    if (sleep_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
    if (fail_at_call_ == calls_) return internal_error("injected executor failure");
    max_rows_ = std::max<int64_t>(max_rows_, static_cast<int64_t>(plan.batch.tokens.size()));
    for (const KvOp& op : plan.kv_ops) {
      if (const auto* c = std::get_if<kv::BlockCopy>(&op)) {
        std::copy_n(slots_.begin() + c->src * bs_, bs_, slots_.begin() + c->dst * bs_);
      } else if (const auto* r = std::get_if<RowCopy>(&op)) {
        std::copy_n(slots_.begin() + r->src * bs_ + r->src_slot, r->n, slots_.begin() + r->dst * bs_ + r->dst_slot);
      } else if (std::holds_alternative<KeyRotate>(op)) {
        // a rotation keeps each slot's token (positions are not modelled here)
      } else {  // a key move keeps each slot's token (positions are not modelled here)
        const auto& k = std::get<KeyMove>(op);
        for (int64_t s = 0; s < k.n; ++s)
          slots_[static_cast<size_t>(k.blocks[static_cast<size_t>(s / bs_)] * bs_ + s % bs_)] =
              slots_[static_cast<size_t>(k.origin[static_cast<size_t>(s / bs_)] * bs_ + s % bs_)];
      }
    }
    const std::vector<int32_t> before = slots_;  // other sequences' writes in this batch are not visible
    logits->assign(static_cast<size_t>(plan.n_output_rows) * kVocab, 0.0f);
    size_t out = 0;
    int64_t covered = 0;
    for (const model::BatchSeq& s : plan.batch.seqs) {
      if (s.first != covered || s.count < 1) return internal_error("rows do not tile the batch");
      covered += s.count;
      const int64_t need_blocks = (s.n_past + s.count + bs_ - 1) / bs_;
      if (static_cast<int64_t>(s.block_table.size()) < need_blocks) return internal_error("block table too short");
      std::vector<int32_t> ctx;
      for (int64_t j = 0; j < s.n_past; ++j) {
        const int32_t t = before[slot(s.block_table, j)];
        if (t < 0) return internal_error("read an unwritten slot");
        ctx.push_back(t);
      }
      for (int64_t r = 0; r < s.count; ++r) {
        const int32_t t = plan.batch.tokens[static_cast<size_t>(s.first + r)];
        slots_[slot(s.block_table, s.n_past + r)] = t;
        ctx.push_back(t);
      }
      if (s.output == model::OutputMode::kLast) fake_logits(ctx, logits->data() + (out++) * kVocab);
    }
    if (covered != static_cast<int64_t>(plan.batch.tokens.size())) return internal_error("rows left over");
    return Status::ok();
  }

  int sleep_ms_ = 0;  // per step (engine tests)
  int fail_at_call_ = -1;
  int calls_ = 0;
  int64_t max_rows_ = 0;

 private:
  size_t slot(std::span<const int32_t> table, int64_t j) const {
    return static_cast<size_t>(table[static_cast<size_t>(j / bs_)]) * static_cast<size_t>(bs_) +
           static_cast<size_t>(j % bs_);
  }
  int64_t bs_;
  std::vector<int32_t> slots_;
};

inline std::vector<int32_t> oracle(const SeqRequest& r, std::vector<float>* kept = nullptr) {
  Sampler sampler(r.sampling, kVocab);
  for (int32_t t : r.prompt) sampler.accept(t);
  std::vector<int32_t> ctx = r.prompt, out;
  std::vector<float> logits(kVocab);
  for (int64_t i = 0; i < std::max<int64_t>(r.n_predict, 1); ++i) {
    fake_logits(ctx, logits.data());
    if (kept) kept->insert(kept->end(), logits.begin(), logits.end());
    if (r.n_predict == 0) break;
    const int32_t t = sampler.sample(logits);
    sampler.accept(t);
    out.push_back(t);
    ctx.push_back(t);
    if (t == r.eos) break;
  }
  return out;
}

}  // namespace cw::runtime::fake
