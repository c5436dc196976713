#include "text/embedder_model.h"

#include <algorithm>
#include <cmath>

#include "base/thread_pool.h"
#include "model/encoder.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace cw::text {

ModelEmbedder::~ModelEmbedder() = default;

Result<std::unique_ptr<ModelEmbedder>> ModelEmbedder::load(const std::string& gguf_path,
                                                           const ModelEmbedderOptions& options) {
  if (options.ctx < 1 || options.ctx > (int64_t{1} << 20)) {
    return invalid_argument("embedder: ctx must be in [1, 1048576], got " + std::to_string(options.ctx));
  }
  if (options.threads < 1 || options.threads > 1024) {
    return invalid_argument("embedder: threads must be in [1, 1024], got " + std::to_string(options.threads));
  }
  std::unique_ptr<ModelEmbedder> e(new ModelEmbedder());
  e->path_ = gguf_path;
  CW_ASSIGN_OR_RETURN(std::unique_ptr<gguf::File> file, gguf::File::open(gguf_path));
  if (model::Encoder::is_encoder(*file)) {
    CW_ASSIGN_OR_RETURN(e->encoder_, model::Encoder::from_file(std::move(file)));
  } else {
    CW_ASSIGN_OR_RETURN(e->model_, model::Model::from_file(std::move(file)));
  }
  const gguf::File& f = e->encoder_ ? e->encoder_->file() : e->model_->file();
  Result<std::unique_ptr<tok::Tokenizer>> tok = tok::Tokenizer::from_gguf(f);
  if (!tok.is_ok()) {
    return Status(tok.status().code(), "embedder: " + gguf_path + ": " + tok.status().message());
  }
  e->tokenizer_ = std::move(tok).value();
  e->ctx_ = options.ctx;
  const int64_t train = e->encoder_ ? e->encoder_->hparams().n_ctx_train : e->model_->hparams().n_ctx_train;
  if (train > 0) e->ctx_ = std::min(e->ctx_, train);
  if (e->encoder_) {
    e->pool_ = std::make_unique<ThreadPool>(cap_threads(options.threads));
    e->scratch_ = std::make_unique<model::EncoderScratch>();
    return e;
  }
  CW_ASSIGN_OR_RETURN(e->session_,
                      model::Session::create(*e->model_, e->ctx_, model::KvType::kF32, options.threads));
  return e;
}

int64_t ModelEmbedder::dim() const { return encoder_ ? encoder_->hparams().n_embd : model_->hparams().n_embd; }

std::string ModelEmbedder::pooling() const {
  return encoder_ ? model::pooling_name(encoder_->hparams().pooling) : "mean";
}

Status ModelEmbedder::embed_encoder(const std::vector<int32_t>& tokens, float* row) const {
  const size_t n_embd = static_cast<size_t>(dim());
  std::vector<double> sum(n_embd, 0.0);
  std::vector<float> one;
  for (size_t b = 0; b < tokens.size(); b += static_cast<size_t>(ctx_)) {
    const size_t n = std::min(tokens.size() - b, static_cast<size_t>(ctx_));
    CW_RETURN_IF_ERROR(encoder_->embed(std::span<const int32_t>(tokens.data() + b, n), &one, *pool_, *scratch_));
    for (size_t d = 0; d < n_embd; ++d) sum[d] += one[d];
  }
  double norm = 0;
  for (double v : sum) norm += v * v;
  if (norm > 0)
    for (size_t d = 0; d < n_embd; ++d) row[d] = static_cast<float>(sum[d] / std::sqrt(norm));
  return Status::ok();
}

Status ModelEmbedder::embed(std::span<const std::string_view> texts, std::vector<float>* out) const {
  const size_t n_embd = static_cast<size_t>(dim());
  out->assign(texts.size() * n_embd, 0.0f);
  std::vector<float> hidden;
  std::vector<double> sum(n_embd);
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t t = 0; t < texts.size(); ++t) {
    const std::vector<int32_t> tokens = tokenizer_->encode(texts[t], /*add_special=*/true, /*parse_special=*/false);
    if (encoder_) {  // an empty text is a zero row, though [CLS] [SEP] alone would give a vector
      if (!texts[t].empty()) CW_RETURN_IF_ERROR(embed_encoder(tokens, out->data() + t * n_embd));
      continue;
    }
    std::fill(sum.begin(), sum.end(), 0.0);
    for (size_t b = 0; b < tokens.size(); b += static_cast<size_t>(ctx_)) {
      const size_t n = std::min(tokens.size() - b, static_cast<size_t>(ctx_));
      session_->reset();
      CW_RETURN_IF_ERROR(session_->eval_hidden(std::span<const int32_t>(tokens.data() + b, n), &hidden));
      if (hidden.size() != n * n_embd) return internal_error("embedder: hidden state size mismatch");
      for (size_t i = 0; i < n; ++i) {
        const float* h = hidden.data() + i * n_embd;
        for (size_t d = 0; d < n_embd; ++d) sum[d] += h[d];
      }
    }
    session_->reset();
    if (tokens.empty()) continue;
    double norm = 0;
    for (size_t d = 0; d < n_embd; ++d) norm += sum[d] * sum[d];
    if (!std::isfinite(norm)) {
      return internal_error("embedder: " + path_ + " produced non-finite hidden states for text " +
                            std::to_string(t));
    }
    if (norm <= 0) continue;  // all-zero states: no information
    const double inv = 1.0 / std::sqrt(norm);
    float* row = out->data() + t * n_embd;
    for (size_t d = 0; d < n_embd; ++d) row[d] = static_cast<float>(sum[d] * inv);
  }
  return Status::ok();
}

}  // namespace cw::text
