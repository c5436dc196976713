#include "model/model.h"

#include <cmath>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops_ref.h"
#include "kernels/cpu/quant_ref.h"
#include "model/weights.h"

namespace cw::model {
namespace {

std::string tname(int64_t layer, const char* what) { return "blk." + std::to_string(layer) + "." + what; }

}  // namespace

Result<std::unique_ptr<Model>> Model::load(const std::string& path) {
  CW_ASSIGN_OR_RETURN(std::unique_ptr<gguf::File> f, gguf::File::open(path));
  return from_file(std::move(f));
}

Result<std::unique_ptr<Model>> Model::from_file(std::unique_ptr<gguf::File> file) {
  auto m = std::unique_ptr<Model>(new Model());
  m->file_ = std::move(file);
  const gguf::File& f = *m->file_;
  CW_ASSIGN_OR_RETURN(m->hp_, read_hparams(f));
  const HParams& hp = m->hp_;
  const int64_t q_dim = hp.n_head * hp.head_dim, kv_dim = hp.n_head_kv * hp.head_dim;
  CW_RETURN_IF_ERROR(bind_matrix(f, "token_embd.weight", hp.n_embd, hp.n_vocab, &m->tok_embd_));
  if (f.find_tensor("output.weight") != nullptr) {
    CW_RETURN_IF_ERROR(bind_matrix(f, "output.weight", hp.n_embd, hp.n_vocab, &m->output_));
  } else {
    m->output_ = m->tok_embd_;  // tied embeddings
  }
  CW_RETURN_IF_ERROR(read_vector(f, "output_norm.weight", hp.n_embd, &m->output_norm_));
  if (f.find_tensor("rope_freqs.weight") != nullptr)
    CW_RETURN_IF_ERROR(read_vector(f, "rope_freqs.weight", hp.n_rot / 2, &m->rope_freqs_));
  m->layers_.resize(static_cast<size_t>(hp.n_layer));
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    LayerWeights& L = m->layers_[static_cast<size_t>(l)];
    CW_RETURN_IF_ERROR(read_vector(f, tname(l, "attn_norm.weight"), hp.n_embd, &L.attn_norm));
    CW_RETURN_IF_ERROR(read_vector(f, tname(l, "ffn_norm.weight"), hp.n_embd, &L.ffn_norm));
    CW_RETURN_IF_ERROR(bind_matrix(f, tname(l, "attn_q.weight"), hp.n_embd, q_dim, &L.wq));
    CW_RETURN_IF_ERROR(bind_matrix(f, tname(l, "attn_k.weight"), hp.n_embd, kv_dim, &L.wk));
    CW_RETURN_IF_ERROR(bind_matrix(f, tname(l, "attn_v.weight"), hp.n_embd, kv_dim, &L.wv));
    CW_RETURN_IF_ERROR(bind_matrix(f, tname(l, "attn_output.weight"), q_dim, hp.n_embd, &L.wo));
    CW_RETURN_IF_ERROR(bind_matrix(f, tname(l, "ffn_gate.weight"), hp.n_embd, hp.n_ff, &L.ffn_gate));
    CW_RETURN_IF_ERROR(bind_matrix(f, tname(l, "ffn_up.weight"), hp.n_embd, hp.n_ff, &L.ffn_up));
    CW_RETURN_IF_ERROR(bind_matrix(f, tname(l, "ffn_down.weight"), hp.n_ff, hp.n_embd, &L.ffn_down));
    if (hp.qkv_bias) {
      CW_RETURN_IF_ERROR(read_vector(f, tname(l, "attn_q.bias"), q_dim, &L.bq));
      CW_RETURN_IF_ERROR(read_vector(f, tname(l, "attn_k.bias"), kv_dim, &L.bk));
      CW_RETURN_IF_ERROR(read_vector(f, tname(l, "attn_v.bias"), kv_dim, &L.bv));
    }
  }
  return m;
}

std::string find_non_finite_tensor(const Model& m) {
  std::vector<float> row;
  for (const gguf::TensorInfo& t : m.file().tensors()) {
    const kernels::QuantTraits* traits = kernels::quant_traits(static_cast<uint32_t>(t.type));
    if (traits == nullptr || t.shape.empty() || t.shape[0] == 0) continue;
    const auto n_in = static_cast<int64_t>(t.shape[0]);
    if (n_in % traits->block_size != 0) continue;
    const int64_t row_bytes = kernels::quant_row_bytes(*traits, n_in);
    const auto n_rows = static_cast<int64_t>(t.n_elements / static_cast<uint64_t>(n_in));
    if (static_cast<uint64_t>(row_bytes * n_rows) > t.n_bytes) continue;  // cannot happen for a loaded model
    row.resize(static_cast<size_t>(n_in));
    for (int64_t r = 0; r < n_rows; ++r) {
      traits->dequantize(t.data + r * row_bytes, row.data(), n_in);
      for (float v : row)
        if (!std::isfinite(v)) return std::string(t.name);
    }
  }
  return {};
}

Status non_finite_output_error(const std::string& bad_tensor, const char* what, int64_t position) {
  if (!bad_tensor.empty())
    return data_loss("the model's weights are corrupt: tensor '" + bad_tensor + "' holds NaN/Inf values");
  return data_loss(std::string("the ") + what + " became non-finite (NaN/Inf) at token position " +
                   std::to_string(position));
}

}  // namespace cw::model
