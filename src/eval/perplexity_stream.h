// Streaming perplexity (`perplexity --stream`, issue 12): one sequence that never restarts. A token stream
// of any length — a token vector repeated cyclically up to max_tokens — is fed through ONE KV policy in
// chunks of at most `ubatch` tokens with every row's logits, and every token after the first is scored:
// the logits at position t give the negative log-likelihood of token t+1 (nll_of: log-softmax in double,
// like perplexity()). Under a policy that acts (sink_window, window, ...) the sequence runs on a
// runtime::PolicySession, in constant memory, however long the stream; `full` runs on a plain
// model::Session and stops, without an error, after n_ctx_train positions (StreamResult::stopped says so).
//
// A stream of n tokens feeds positions [0, n - 1) (its last token is only a target) and scores n - 1
// tokens. Results come per segment of `segment` positions: segment k covers positions
// [k * segment, min((k + 1) * segment, n - 1)) — their logits, each scoring the next token — so the
// segments tile the positions fed and each scores end - begin tokens. Chunks never straddle a segment
// boundary, so each segment's time is exactly the time of its own forward passes and scoring.
//
// Thread-safety: a pure function of its arguments (the model is read-only); progress runs on the caller's
// thread.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/model.h"

namespace cw::eval {

struct StreamOptions {
  // Stream length in tokens (>= 2): the token vector is repeated cyclically up to this many tokens
  // (a prefix when it is shorter than the vector).
  int64_t max_tokens = 0;
  int64_t segment = 4096;  // stream positions per reported segment (>= 1)
  // Tokens per forward call (>= 1). Under a policy that acts, max_slots() + ubatch must fit the training
  // context (see default_ubatch in perplexity.h for the usual choice).
  int64_t ubatch = 256;
  model::KvType kv_type = model::KvType::kF16;
  int n_threads = 1;
  // KV policy spec (kv::make_kv_policy): empty or `full` = the plain Session path.
  std::string kv_policy;
  // Called after each chunk with (positions done, positions to feed = max_tokens - 1, running PPL). May be
  // empty.
  std::function<void(int64_t, int64_t, double)> progress;
};

struct StreamSegment {
  int64_t begin = 0, end = 0;  // stream positions [begin, end)
  int64_t n_scored = 0;        // end - begin
  double mean_nll = 0;
  double ppl = 0;              // exp(mean_nll)
  double seconds = 0;          // forward passes + scoring of this segment
  double tok_s = 0;            // positions fed per second: (end - begin) / seconds
  uint64_t rss_bytes = 0;      // resident set size of the process at the segment's end (VmRSS)
  uint64_t peak_rss_bytes = 0; // the process's peak resident set size so far (VmHWM), at the segment's end
};

struct StreamResult {
  std::string policy;          // the canonical spec (kv::KvPolicy::spec()), "full" for the plain Session
  std::vector<StreamSegment> segments;
  int64_t n_positions = 0;     // stream positions fed: max_tokens - 1, or where `full` stopped
  int64_t n_scored = 0;        // == n_positions
  double mean_nll = 0;
  double ppl = 0;
  double seconds = 0;
  double tok_s = 0;            // n_positions / seconds
  uint64_t peak_rss_bytes = 0; // the process's peak so far, at the end
  // Empty when the whole stream ran; else why it stopped early, e.g. "training context 2048 reached".
  std::string stopped;
  int64_t stopped_at = -1;     // the stream position where it stopped (-1: it did not)
};

// Errors (kInvalidArgument unless noted): segment < 1, max_tokens < 2, an empty token vector, ubatch < 1,
// n_threads < 1, a token id outside the vocabulary, a bad policy spec (runtime::make_acting_policy),
// runtime::PolicySession::create's errors (e.g. max_slots() + ubatch beyond the training context,
// kOutOfRange), the Session's errors (non-finite logits: kDataLoss).
Result<StreamResult> stream_perplexity(const model::Model& m, std::span<const int32_t> tokens, const StreamOptions& opt);

// Resident set size of this process now (VmRSS of /proc/self/status); 0 where unavailable.
uint64_t current_rss_bytes();

}  // namespace cw::eval
