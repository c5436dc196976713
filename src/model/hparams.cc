#include "model/hparams.h"

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

Status positive(const std::string& key, int64_t v, int64_t max = kMaxDim) {
  if (v <= 0 || v > max)
    return data_loss("metadata '" + key + "' = " + std::to_string(v) + " is out of range [1, " + std::to_string(max) + "]");
  return Status::ok();
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
  CW_RETURN_IF_ERROR(positive(p + "attention.head_count", hp.n_head, 4096));
  CW_ASSIGN_OR_RETURN(hp.n_head_kv, f.get_int_or(p + "attention.head_count_kv", hp.n_head));
  CW_RETURN_IF_ERROR(positive(p + "attention.head_count_kv", hp.n_head_kv, hp.n_head));
  if (hp.n_head % hp.n_head_kv != 0)
    return data_loss("head_count " + std::to_string(hp.n_head) + " is not a multiple of head_count_kv " +
                     std::to_string(hp.n_head_kv));
  CW_ASSIGN_OR_RETURN(hp.head_dim, f.get_int_or(p + "attention.key_length", hp.n_embd / hp.n_head));
  CW_RETURN_IF_ERROR(positive(p + "attention.key_length", hp.head_dim, 4096));
  CW_ASSIGN_OR_RETURN(int64_t v_len, f.get_int_or(p + "attention.value_length", hp.head_dim));
  if (v_len != hp.head_dim) return unimplemented("attention.value_length != key_length is not supported");
  CW_ASSIGN_OR_RETURN(hp.n_rot, f.get_int_or(p + "rope.dimension_count", hp.head_dim));
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

}  // namespace cw::model
