#include "model/encoder.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/ops_ref.h"
#include "model/weights.h"

namespace cw::model {
namespace {

constexpr int64_t kMaxDim = int64_t{1} << 20;

Result<int64_t> int_key(const gguf::File& f, const std::string& key, int64_t fallback, bool required) {
  const gguf::Value* v = f.find(key);
  if (v == nullptr) {
    if (required) return data_loss("metadata '" + key + "' is missing");
    return fallback;
  }
  auto x = v->as_int();
  if (!x.is_ok() || *x < 1 || *x > kMaxDim)
    return data_loss("metadata '" + key + "' must be an integer in [1, " + std::to_string(kMaxDim) + "]");
  return *x;
}

std::string tname(int64_t layer, const char* what) { return "blk." + std::to_string(layer) + "." + what; }

// y[i] = LayerNorm(x[i]) * w + b over rows of n (mean and variance in double).
void layer_norm(float* x, int64_t rows, int64_t n, const std::vector<float>& w, const std::vector<float>& b, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    float* v = x + r * n;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; ++i) mean += v[i];
    mean /= static_cast<double>(n);
    for (int64_t i = 0; i < n; ++i) var += (v[i] - mean) * (v[i] - mean);
    var /= static_cast<double>(n);
    const double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>((v[i] - mean) * inv) * w[static_cast<size_t>(i)] + b[static_cast<size_t>(i)];
  }
}

float gelu(float x) {  // the tanh approximation (BERT's, llama.cpp's ggml_gelu)
  constexpr float kC = 0.7978845608028654f;  // sqrt(2 / pi)
  return 0.5f * x * (1.0f + std::tanh(kC * (x + 0.044715f * x * x * x)));
}

}  // namespace

const char* pooling_name(Pooling p) {
  switch (p) {
    case Pooling::kMean: return "mean";
    case Pooling::kCls: return "cls";
    case Pooling::kLast: return "last";
  }
  return "?";
}

bool Encoder::is_encoder(const gguf::File& f) {
  const gguf::Value* a = f.find("general.architecture");
  if (a == nullptr) return false;
  auto s = a->as_string();
  return s.is_ok() && *s == "bert";
}

Result<std::unique_ptr<Encoder>> Encoder::load(const std::string& path) {
  CW_ASSIGN_OR_RETURN(std::unique_ptr<gguf::File> f, gguf::File::open(path));
  return from_file(std::move(f));
}

Result<std::unique_ptr<Encoder>> Encoder::from_file(std::unique_ptr<gguf::File> file) {
  if (!is_encoder(*file)) return invalid_argument("'" + file->name() + "' is not a bert (encoder) model");
  auto e = std::unique_ptr<Encoder>(new Encoder());
  e->file_ = std::move(file);
  const gguf::File& f = *e->file_;
  EncoderHParams& hp = e->hp_;
  CW_ASSIGN_OR_RETURN(hp.n_ctx_train, int_key(f, "bert.context_length", 0, true));
  CW_ASSIGN_OR_RETURN(hp.n_embd, int_key(f, "bert.embedding_length", 0, true));
  CW_ASSIGN_OR_RETURN(hp.n_layer, int_key(f, "bert.block_count", 0, true));
  CW_ASSIGN_OR_RETURN(hp.n_head, int_key(f, "bert.attention.head_count", 0, true));
  CW_ASSIGN_OR_RETURN(hp.n_ff, int_key(f, "bert.feed_forward_length", 0, true));
  CW_ASSIGN_OR_RETURN(hp.n_token_types, int_key(f, "tokenizer.ggml.token_type_count", 2, false));
  CW_ASSIGN_OR_RETURN(const int64_t pooling, int_key(f, "bert.pooling_type", 1, false));
  if (pooling < 1 || pooling > 3)
    return unimplemented("bert.pooling_type " + std::to_string(pooling) + " is not supported (supported: 1 mean, 2 cls, 3 last)");
  hp.pooling = static_cast<Pooling>(pooling);
  if (const gguf::Value* eps = f.find("bert.attention.layer_norm_epsilon"); eps != nullptr) {
    auto x = eps->as_float();
    if (!x.is_ok() || !(*x > 0) || *x > 1) return data_loss("metadata 'bert.attention.layer_norm_epsilon' must be in (0, 1]");
    hp.norm_eps = static_cast<float>(*x);
  }
  if (const gguf::Value* c = f.find("bert.attention.causal"); c != nullptr) {
    auto causal = c->as_bool();
    if (causal.is_ok() && *causal) return unimplemented("a causal bert model is not supported");
  }
  if (hp.n_embd % hp.n_head != 0)
    return data_loss("bert.embedding_length " + std::to_string(hp.n_embd) + " is not a multiple of the head count " +
                     std::to_string(hp.n_head));
  hp.head_dim = hp.n_embd / hp.n_head;
  const gguf::TensorInfo* te = f.find_tensor("token_embd.weight");
  if (te == nullptr || te->shape.size() != 2) return data_loss("tensor 'token_embd.weight' is missing or not 2-D");
  hp.n_vocab = static_cast<int64_t>(te->shape[1]);
  const int64_t E = hp.n_embd;
  CW_RETURN_IF_ERROR(bind_matrix(f, "token_embd.weight", E, hp.n_vocab, &e->tok_embd_));
  CW_RETURN_IF_ERROR(bind_matrix(f, "position_embd.weight", E, hp.n_ctx_train, &e->pos_embd_));
  CW_RETURN_IF_ERROR(bind_matrix(f, "token_types.weight", E, hp.n_token_types, &e->type_embd_));
  CW_RETURN_IF_ERROR(read_vector(f, "token_embd_norm.weight", E, &e->embd_norm_w_));
  CW_RETURN_IF_ERROR(read_vector(f, "token_embd_norm.bias", E, &e->embd_norm_b_));
  e->layers_.resize(static_cast<size_t>(hp.n_layer));
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    Layer& L = e->layers_[static_cast<size_t>(l)];
    CW_RETURN_IF_ERROR(bind_matrix(f, tname(l, "attn_q.weight"), E, E, &L.wq));
    CW_RETURN_IF_ERROR(bind_matrix(f, tname(l, "attn_k.weight"), E, E, &L.wk));
    CW_RETURN_IF_ERROR(bind_matrix(f, tname(l, "attn_v.weight"), E, E, &L.wv));
    CW_RETURN_IF_ERROR(bind_matrix(f, tname(l, "attn_output.weight"), E, E, &L.wo));
    CW_RETURN_IF_ERROR(bind_matrix(f, tname(l, "ffn_up.weight"), E, hp.n_ff, &L.up));
    CW_RETURN_IF_ERROR(bind_matrix(f, tname(l, "ffn_down.weight"), hp.n_ff, E, &L.down));
    CW_RETURN_IF_ERROR(read_vector(f, tname(l, "attn_q.bias"), E, &L.bq));
    CW_RETURN_IF_ERROR(read_vector(f, tname(l, "attn_k.bias"), E, &L.bk));
    CW_RETURN_IF_ERROR(read_vector(f, tname(l, "attn_v.bias"), E, &L.bv));
    CW_RETURN_IF_ERROR(read_vector(f, tname(l, "attn_output.bias"), E, &L.bo));
    CW_RETURN_IF_ERROR(read_vector(f, tname(l, "ffn_up.bias"), hp.n_ff, &L.b_up));
    CW_RETURN_IF_ERROR(read_vector(f, tname(l, "ffn_down.bias"), E, &L.b_down));
    CW_RETURN_IF_ERROR(read_vector(f, tname(l, "attn_output_norm.weight"), E, &L.attn_norm_w));
    CW_RETURN_IF_ERROR(read_vector(f, tname(l, "attn_output_norm.bias"), E, &L.attn_norm_b));
    CW_RETURN_IF_ERROR(read_vector(f, tname(l, "layer_output_norm.weight"), E, &L.out_norm_w));
    CW_RETURN_IF_ERROR(read_vector(f, tname(l, "layer_output_norm.bias"), E, &L.out_norm_b));
  }
  return e;
}

Status Encoder::embed(std::span<const int32_t> tokens, std::vector<float>* out, ThreadPool& pool,
                      EncoderScratch& s) const {
  const int64_t n = static_cast<int64_t>(tokens.size()), E = hp_.n_embd, H = hp_.n_head, D = hp_.head_dim;
  if (n == 0) return invalid_argument("embed: no tokens");
  if (n > hp_.n_ctx_train)
    return out_of_range("a text of " + std::to_string(n) + " tokens exceeds the embedding model's context of " +
                        std::to_string(hp_.n_ctx_train) + " tokens");
  for (int64_t t = 0; t < n; ++t)
    if (tokens[static_cast<size_t>(t)] < 0 || tokens[static_cast<size_t>(t)] >= hp_.n_vocab)
      return invalid_argument("token id " + std::to_string(tokens[static_cast<size_t>(t)]) + " is outside the vocabulary");
  const auto sz = [](int64_t a, int64_t b) { return static_cast<size_t>(a * b); };
  s.x.resize(sz(n, E));
  s.q.resize(sz(n, E));
  s.k.resize(sz(n, E));
  s.v.resize(sz(n, E));
  s.attn.resize(sz(n, E));
  s.proj.resize(sz(n, E));
  s.ff.resize(sz(n, hp_.n_ff));
  std::vector<float> row(static_cast<size_t>(E)), type0(static_cast<size_t>(E));
  kernels::get_row_ref(type_embd_.data, type_embd_.type, E, 0, type0.data());
  for (int64_t t = 0; t < n; ++t) {
    float* x = &s.x[sz(t, E)];
    kernels::get_row_ref(tok_embd_.data, tok_embd_.type, E, tokens[static_cast<size_t>(t)], x);
    kernels::get_row_ref(pos_embd_.data, pos_embd_.type, E, t, row.data());
    for (int64_t i = 0; i < E; ++i) x[i] += type0[static_cast<size_t>(i)] + row[static_cast<size_t>(i)];
  }
  layer_norm(s.x.data(), n, E, embd_norm_w_, embd_norm_b_, hp_.norm_eps);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  for (const Layer& L : layers_) {
    kernels::matmul(L.wq.data, L.wq.type, E, E, s.x.data(), n, s.q.data(), L.bq.data(), pool, s.mm);
    kernels::matmul(L.wk.data, L.wk.type, E, E, s.x.data(), n, s.k.data(), L.bk.data(), pool, s.mm);
    kernels::matmul(L.wv.data, L.wv.type, E, E, s.x.data(), n, s.v.data(), L.bv.data(), pool, s.mm);
    // Bidirectional attention, one (head, query row) per task: softmax over all n keys in fp32.
    pool.parallel_for(H * n, [&](int64_t b, int64_t e, int) {
      std::vector<float> p(static_cast<size_t>(n));
      for (int64_t task = b; task < e; ++task) {
        const int64_t h = task / n, i = task % n;
        const float* qi = &s.q[sz(i, E) + static_cast<size_t>(h * D)];
        float mx = -INFINITY;
        for (int64_t j = 0; j < n; ++j) {
          const float* kj = &s.k[sz(j, E) + static_cast<size_t>(h * D)];
          float d = 0;
          for (int64_t c = 0; c < D; ++c) d += qi[c] * kj[c];
          p[static_cast<size_t>(j)] = d * scale;
          mx = std::max(mx, p[static_cast<size_t>(j)]);
        }
        float sum = 0;
        for (int64_t j = 0; j < n; ++j) sum += p[static_cast<size_t>(j)] = std::exp(p[static_cast<size_t>(j)] - mx);
        float* o = &s.attn[sz(i, E) + static_cast<size_t>(h * D)];
        std::fill(o, o + D, 0.0f);
        for (int64_t j = 0; j < n; ++j) {
          const float w = p[static_cast<size_t>(j)] / sum;
          const float* vj = &s.v[sz(j, E) + static_cast<size_t>(h * D)];
          for (int64_t c = 0; c < D; ++c) o[c] += w * vj[c];
        }
      }
    });
    kernels::matmul(L.wo.data, L.wo.type, E, E, s.attn.data(), n, s.proj.data(), L.bo.data(), pool, s.mm);
    for (size_t i = 0; i < s.x.size(); ++i) s.x[i] += s.proj[i];
    layer_norm(s.x.data(), n, E, L.attn_norm_w, L.attn_norm_b, hp_.norm_eps);
    kernels::matmul(L.up.data, L.up.type, E, hp_.n_ff, s.x.data(), n, s.ff.data(), L.b_up.data(), pool, s.mm);
    for (float& f : s.ff) f = gelu(f);
    kernels::matmul(L.down.data, L.down.type, hp_.n_ff, E, s.ff.data(), n, s.proj.data(), L.b_down.data(), pool, s.mm);
    for (size_t i = 0; i < s.x.size(); ++i) s.x[i] += s.proj[i];
    layer_norm(s.x.data(), n, E, L.out_norm_w, L.out_norm_b, hp_.norm_eps);
  }
  out->assign(static_cast<size_t>(E), 0.0f);
  if (hp_.pooling == Pooling::kMean) {
    std::vector<double> acc(static_cast<size_t>(E), 0.0);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < E; ++i) acc[static_cast<size_t>(i)] += s.x[sz(t, E) + static_cast<size_t>(i)];
    for (int64_t i = 0; i < E; ++i) (*out)[static_cast<size_t>(i)] = static_cast<float>(acc[static_cast<size_t>(i)] / static_cast<double>(n));
  } else {
    const int64_t t = hp_.pooling == Pooling::kCls ? 0 : n - 1;
    std::copy_n(&s.x[sz(t, E)], E, out->begin());
  }
  double norm = 0;
  for (float v : *out) norm += static_cast<double>(v) * v;
  if (!std::isfinite(norm)) return data_loss("the embedding became non-finite (NaN/Inf): the model's weights are corrupt");
  if (norm > 0)
    for (float& v : *out) v = static_cast<float>(v / std::sqrt(norm));
  return Status::ok();
}

}  // namespace cw::model
