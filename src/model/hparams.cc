#include "model/hparams.h"

#include <vector>

namespace cw::model {

extern const ArchSpec kArchLlama;
extern const ArchSpec kArchQwen2;

const std::vector<const ArchSpec*>& architectures() {
  static const std::vector<const ArchSpec*> kAll = {
      &kArchLlama,
      &kArchQwen2,
  };
  return kAll;
}

std::string supported_architectures() {
  std::string s;
  for (const ArchSpec* a : architectures()) s += (s.empty() ? "" : ", ") + std::string(a->name);
  return s;
}

namespace {
constexpr int64_t kMaxDim = int64_t{1} << 20;

constexpr int64_t kMaxHeads = 4096;

Status positive(const std::string& key, int64_t v, int64_t max = kMaxDim) {
  if (v <= 0 || v > max)
    return data_loss("metadata '" + key + "' = " + std::to_string(v) + " is out of range [1, " + std::to_string(max) + "]");
  return Status::ok();
}

// Rows (GGUF shape[1]) of a 2-D tensor; 0 when absent or not 2-D (the weight binding reports those).
int64_t tensor_rows(const gguf::File& f, const std::string& name) {
  const gguf::TensorInfo* t = f.find_tensor(name);
  return t != nullptr && t->shape.size() == 2 ? static_cast<int64_t>(t->shape[1]) : 0;
}

// Head counts: n_head and n_head_kv in [1, kMaxHeads] (checked by the caller); here, that they agree with
// each other (n_head a multiple of n_head_kv), with embedding_length (when the head dim derives from it)
// and with layer 0's attn_q / attn_k rows (n_head * head_dim, n_head_kv * head_dim). When they do not,
// the tensors decide which key is wrong: each of head_count, head_count_kv and (when given) key_length is
// tried alone at the value the tensors imply; the keys whose change alone makes everything agree are
// named. rope.dimension_count (`n_rot`, 0 when absent) breaks a tie: it usually equals the head dim.
Status check_heads(const gguf::File& f, const std::string& p, const HParams& hp, bool key_length_given, int64_t n_rot) {
  const std::string k_head = p + "attention.head_count", k_kv = p + "attention.head_count_kv",
                    k_len = p + "attention.key_length", k_embd = p + "embedding_length";
  const int64_t q_rows = tensor_rows(f, "blk.0.attn_q.weight"), k_rows = tensor_rows(f, "blk.0.attn_k.weight");
  struct Heads {
    int64_t h, kv, d;
  };
  // Whether (h, kv, d) agrees with everything known; d derives from h when key_length is absent.
  const auto fits = [&](const Heads& c) {
    if (c.h < 1 || c.h > kMaxHeads || c.kv < 1 || c.kv > c.h || c.h % c.kv != 0 || c.d < 1) return false;
    if (!key_length_given && (hp.n_embd % c.h != 0 || c.d != hp.n_embd / c.h)) return false;
    return (q_rows == 0 || q_rows == c.h * c.d) && (k_rows == 0 || k_rows == c.kv * c.d);
  };
  const Heads now{hp.n_head, hp.n_head_kv, hp.head_dim};
  if (fits(now)) return Status::ok();
  const std::string tensors =
      q_rows > 0 && k_rows > 0
          ? " (tensor 'blk.0.attn_q.weight' has " + std::to_string(q_rows) + " rows = head_count x head dim, "
                "'blk.0.attn_k.weight' " + std::to_string(k_rows) + " rows = head_count_kv x head dim" +
                (key_length_given ? "" : ", head dim = " + k_embd + " " + std::to_string(hp.n_embd) + " / head_count") +
                ")"
          : "";
  // Single-key explanations.
  struct Candidate {
    std::string key;
    int64_t value;
    Heads heads;
  };
  std::vector<Candidate> found;
  if (q_rows > 0 && k_rows > 0) {
    if (key_length_given) {
      if (q_rows % hp.head_dim == 0) {
        const int64_t h = q_rows / hp.head_dim;
        found.push_back({k_head, h, {h, hp.n_head_kv, hp.head_dim}});
      }
    } else if (k_rows % hp.n_head_kv == 0 && k_rows / hp.n_head_kv > 0 && hp.n_embd % (k_rows / hp.n_head_kv) == 0) {
      const int64_t d = k_rows / hp.n_head_kv;
      found.push_back({k_head, hp.n_embd / d, {hp.n_embd / d, hp.n_head_kv, d}});
    }
    if (hp.head_dim > 0 && k_rows % hp.head_dim == 0)
      found.push_back({k_kv, k_rows / hp.head_dim, {hp.n_head, k_rows / hp.head_dim, hp.head_dim}});
    if (key_length_given && q_rows % hp.n_head == 0)
      found.push_back({k_len, q_rows / hp.n_head, {hp.n_head, hp.n_head_kv, q_rows / hp.n_head}});
    std::erase_if(found, [&](const Candidate& c) { return !fits(c.heads); });
    if (found.size() > 1 && n_rot > 0) {
      std::vector<Candidate> same_rot;
      for (const Candidate& c : found)
        if (c.heads.d == n_rot) same_rot.push_back(c);
      if (same_rot.size() == 1) found = same_rot;
    }
  }
  if (found.size() == 1) {
    const Candidate& c = found[0];
    const int64_t was = c.key == k_head ? hp.n_head : c.key == k_kv ? hp.n_head_kv : hp.head_dim;
    return data_loss("metadata '" + c.key + "' = " + std::to_string(was) + " does not match the attention tensors" +
                     tensors + "; they fit '" + c.key + "' = " + std::to_string(c.value));
  }
  if (found.size() > 1) {
    std::string keys, fixes;
    for (size_t i = 0; i < found.size(); ++i) {
      const Candidate& c = found[i];
      const int64_t was = c.key == k_head ? hp.n_head : c.key == k_kv ? hp.n_head_kv : hp.head_dim;
      keys += (i == 0 ? "" : i + 1 == found.size() ? " or " : ", ") + ("'" + c.key + "' = " + std::to_string(was));
      fixes += (i == 0 ? "" : i + 1 == found.size() ? " or " : ", ") + ("'" + c.key + "' = " + std::to_string(c.value));
    }
    return data_loss("metadata " + keys + " is wrong: the head counts do not match the attention tensors" + tensors +
                     "; " + fixes + " would fit");
  }
  // No single key explains it (or the tensors are missing): say which relation fails.
  if (!key_length_given && hp.n_embd % hp.n_head != 0)
    return data_loss("metadata '" + k_head + "' = " + std::to_string(hp.n_head) + " does not divide '" + k_embd +
                     "' = " + std::to_string(hp.n_embd) + " (the head dim is " + k_embd + " / head_count)");
  if (hp.n_head_kv > hp.n_head || hp.n_head % hp.n_head_kv != 0)
    return data_loss("metadata '" + k_kv + "' = " + std::to_string(hp.n_head_kv) + " does not divide '" + k_head +
                     "' = " + std::to_string(hp.n_head) + " (each key/value head serves a whole group of query heads)" +
                     tensors);
  return data_loss("metadata '" + k_head + "' = " + std::to_string(hp.n_head) + ", '" + k_kv + "' = " +
                   std::to_string(hp.n_head_kv) + " and head dim " + std::to_string(hp.head_dim) +
                   " do not match the attention tensors" + tensors);
}
}  // namespace

Result<HParams> read_hparams(const gguf::File& f) {
  HParams hp;
  CW_ASSIGN_OR_RETURN(std::string_view arch, f.get_string("general.architecture"));
  const ArchSpec* spec = nullptr;
  for (const ArchSpec* a : architectures())
    if (arch == a->name) spec = a;
  if (spec == nullptr)
    return unimplemented("architecture '" + std::string(arch) + "' is not supported (supported: " +
                         supported_architectures() + ")");
  hp.arch = spec->name;
  hp.rope_style = spec->rope_style;
  hp.qkv_bias = spec->qkv_bias;
  const std::string p = hp.arch + ".";
  CW_ASSIGN_OR_RETURN(hp.n_embd, f.get_int(p + "embedding_length"));
  CW_RETURN_IF_ERROR(positive(p + "embedding_length", hp.n_embd));
  CW_ASSIGN_OR_RETURN(hp.n_layer, f.get_int(p + "block_count"));
  CW_RETURN_IF_ERROR(positive(p + "block_count", hp.n_layer, 4096));
  CW_ASSIGN_OR_RETURN(hp.n_ff, f.get_int(p + "feed_forward_length"));
  CW_RETURN_IF_ERROR(positive(p + "feed_forward_length", hp.n_ff));
  CW_ASSIGN_OR_RETURN(hp.n_head, f.get_int(p + "attention.head_count"));
  CW_RETURN_IF_ERROR(positive(p + "attention.head_count", hp.n_head, kMaxHeads));
  CW_ASSIGN_OR_RETURN(hp.n_head_kv, f.get_int_or(p + "attention.head_count_kv", hp.n_head));
  CW_RETURN_IF_ERROR(positive(p + "attention.head_count_kv", hp.n_head_kv, kMaxHeads));
  const bool key_length_given = f.find(p + "attention.key_length") != nullptr;
  CW_ASSIGN_OR_RETURN(hp.head_dim, f.get_int_or(p + "attention.key_length", hp.n_embd / hp.n_head));
  if (key_length_given) CW_RETURN_IF_ERROR(positive(p + "attention.key_length", hp.head_dim, 4096));
  const bool rot_given = f.find(p + "rope.dimension_count") != nullptr;
  CW_ASSIGN_OR_RETURN(hp.n_rot, f.get_int_or(p + "rope.dimension_count", hp.head_dim));
  CW_RETURN_IF_ERROR(check_heads(f, p, hp, key_length_given, rot_given ? hp.n_rot : 0));
  CW_ASSIGN_OR_RETURN(int64_t v_len, f.get_int_or(p + "attention.value_length", hp.head_dim));
  if (v_len != hp.head_dim) return unimplemented("attention.value_length != key_length is not supported");
  CW_RETURN_IF_ERROR(positive(p + "rope.dimension_count", hp.n_rot, hp.head_dim));
  if (hp.n_rot % 2 != 0) return data_loss("rope.dimension_count must be even, got " + std::to_string(hp.n_rot));
  CW_ASSIGN_OR_RETURN(hp.n_ctx_train, f.get_int_or(p + "context_length", 2048));
  CW_RETURN_IF_ERROR(positive(p + "context_length", hp.n_ctx_train, int64_t{1} << 24));
  CW_ASSIGN_OR_RETURN(hp.rope_freq_base, f.get_float_or(p + "rope.freq_base", 10000.0));
  if (!(hp.rope_freq_base > 1.0)) return data_loss("rope.freq_base must be > 1");
  CW_ASSIGN_OR_RETURN(double eps, f.get_float_or(p + "attention.layer_norm_rms_epsilon", 1e-5));
  if (!(eps > 0 && eps < 1)) return data_loss("attention.layer_norm_rms_epsilon out of range");
  hp.rms_eps = static_cast<float>(eps);
  // Rope scaling: linear scaling divides positions by the factor; "none" and absent mean 1.
  std::string scaling = "none";
  if (f.find(p + "rope.scaling.type") != nullptr) {
    CW_ASSIGN_OR_RETURN(std::string_view st, f.get_string(p + "rope.scaling.type"));
    scaling = std::string(st);
  }
  CW_ASSIGN_OR_RETURN(double factor, f.get_float_or(p + "rope.scaling.factor", 1.0));
  if (scaling == "linear" && factor > 0) {
    hp.rope_freq_scale = 1.0 / factor;
  } else if (scaling != "none" && scaling != "linear") {
    return unimplemented("rope scaling type '" + scaling + "' is not supported (none, linear)");
  }
  if (const gguf::TensorInfo* emb = f.find_tensor("token_embd.weight"); emb != nullptr && emb->shape.size() == 2) {
    hp.n_vocab = static_cast<int64_t>(emb->shape[1]);
  } else {
    return data_loss("tensor 'token_embd.weight' is missing or not 2-D");
  }
  return hp;
}

Status check_context(const HParams& hp, int64_t n_prompt, int64_t n_predict) {
  CW_CHECK(n_prompt >= 0 && n_predict >= 0);
  if (n_prompt + n_predict <= hp.n_ctx_train) return Status::ok();
  const std::string what =
      n_predict > 0 ? "the prompt (" + std::to_string(n_prompt) + " tokens) + " + std::to_string(n_predict) +
                          " tokens to generate = " + std::to_string(n_prompt + n_predict)
                    : "the prompt (" + std::to_string(n_prompt) + " tokens)";
  return out_of_range(what + " exceeds the model's training context of " + std::to_string(hp.n_ctx_train) + " tokens");
}

Status check_context_size(const HParams& hp, int64_t n_ctx) {
  if (n_ctx <= hp.n_ctx_train) return Status::ok();
  return out_of_range("a context of " + std::to_string(n_ctx) + " tokens exceeds the model's training context of " +
                      std::to_string(hp.n_ctx_train) + " tokens");
}

}  // namespace cw::model
