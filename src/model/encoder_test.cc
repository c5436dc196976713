// model::Encoder (bert) against a plain fp64 scalar reference of the same recipe (encoder.h), on random
// bert models written by make_model with the bge WordPiece vocabulary (../shared; skipped without it).
#include "model/encoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/cpu/ops_ref.h"
#include "model/make_model.h"
#include "support/testing.h"
#include "text/embedder_model.h"

namespace cw::model {
namespace {

std::vector<double> row_of(const gguf::File& f, const std::string& name, int64_t row) {
  const gguf::TensorInfo* t = f.find_tensor(name);
  EXPECT_NE(t, nullptr) << name;
  const auto n = static_cast<int64_t>(t->shape[0]);
  std::vector<float> r(static_cast<size_t>(n));
  kernels::get_row_ref(t->data, static_cast<uint32_t>(t->type), n, row, r.data());
  return {r.begin(), r.end()};
}

// y[o] = sum_i W[o][i] x[i] + b[o], W from GGUF shape {n_in, n_out}.
std::vector<double> linear(const gguf::File& f, const std::string& w, const std::string& b, const std::vector<double>& x) {
  const gguf::TensorInfo* t = f.find_tensor(w);
  const auto n_out = static_cast<int64_t>(t->shape[1]);
  const std::vector<double> bias = row_of(f, b, 0);
  std::vector<double> y(static_cast<size_t>(n_out));
  for (int64_t o = 0; o < n_out; ++o) {
    const std::vector<double> wr = row_of(f, w, o);
    double s = bias[static_cast<size_t>(o)];
    for (size_t i = 0; i < x.size(); ++i) s += wr[i] * x[i];
    y[static_cast<size_t>(o)] = s;
  }
  return y;
}

void layer_norm(std::vector<double>& v, const std::vector<double>& w, const std::vector<double>& b, double eps) {
  double mean = 0, var = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  for (double x : v) var += (x - mean) * (x - mean);
  var /= static_cast<double>(v.size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = (v[i] - mean) / std::sqrt(var + eps) * w[i] + b[i];
}

std::vector<double> reference(const gguf::File& f, const EncoderHParams& hp, const std::vector<int32_t>& tokens) {
  const size_t n = tokens.size(), E = static_cast<size_t>(hp.n_embd), D = static_cast<size_t>(hp.head_dim);
  std::vector<std::vector<double>> x(n);
  const std::vector<double> type0 = row_of(f, "token_types.weight", 0);
  for (size_t t = 0; t < n; ++t) {
    x[t] = row_of(f, "token_embd.weight", tokens[t]);
    const std::vector<double> pos = row_of(f, "position_embd.weight", static_cast<int64_t>(t));
    for (size_t i = 0; i < E; ++i) x[t][i] += type0[i] + pos[i];
    layer_norm(x[t], row_of(f, "token_embd_norm.weight", 0), row_of(f, "token_embd_norm.bias", 0), hp.norm_eps);
  }
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    std::vector<std::vector<double>> q(n), k(n), v(n);
    for (size_t t = 0; t < n; ++t) {
      q[t] = linear(f, p + "attn_q.weight", p + "attn_q.bias", x[t]);
      k[t] = linear(f, p + "attn_k.weight", p + "attn_k.bias", x[t]);
      v[t] = linear(f, p + "attn_v.weight", p + "attn_v.bias", x[t]);
    }
    for (size_t i = 0; i < n; ++i) {
      std::vector<double> attn(E, 0.0);
      for (int64_t h = 0; h < hp.n_head; ++h) {
        std::vector<double> s(n);
        double mx = -1e300, sum = 0;
        for (size_t j = 0; j < n; ++j) {
          double d = 0;
          for (size_t c = 0; c < D; ++c) d += q[i][h * D + c] * k[j][h * D + c];
          s[j] = d / std::sqrt(static_cast<double>(D));
          mx = std::max(mx, s[j]);
        }
        for (double& e : s) sum += e = std::exp(e - mx);
        for (size_t j = 0; j < n; ++j)
          for (size_t c = 0; c < D; ++c) attn[h * D + c] += s[j] / sum * v[j][h * D + c];
      }
      const std::vector<double> o = linear(f, p + "attn_output.weight", p + "attn_output.bias", attn);
      for (size_t c = 0; c < E; ++c) attn[c] = x[i][c] + o[c];
      layer_norm(attn, row_of(f, p + "attn_output_norm.weight", 0), row_of(f, p + "attn_output_norm.bias", 0), hp.norm_eps);
      std::vector<double> up = linear(f, p + "ffn_up.weight", p + "ffn_up.bias", attn);
      for (double& u : up) u = 0.5 * u * (1 + std::tanh(std::sqrt(2 / M_PI) * (u + 0.044715 * u * u * u)));
      const std::vector<double> down = linear(f, p + "ffn_down.weight", p + "ffn_down.bias", up);
      for (size_t c = 0; c < E; ++c) attn[c] += down[c];
      layer_norm(attn, row_of(f, p + "layer_output_norm.weight", 0), row_of(f, p + "layer_output_norm.bias", 0), hp.norm_eps);
      q[i] = attn;  // the new x of row i (x itself is still read by later rows' attention inputs: done above)
    }
    for (size_t i = 0; i < n; ++i) x[i] = q[i];
  }
  std::vector<double> pooled(E, 0.0);
  if (hp.pooling == Pooling::kMean) {
    for (size_t t = 0; t < n; ++t)
      for (size_t c = 0; c < E; ++c) pooled[c] += x[t][c] / static_cast<double>(n);
  } else {
    pooled = x[hp.pooling == Pooling::kCls ? 0 : n - 1];
  }
  double norm = 0;
  for (double v : pooled) norm += v * v;
  for (double& v : pooled) v /= std::sqrt(norm);
  return pooled;
}

std::string make_bert(const std::string& dir, const std::string& type, uint32_t pooling) {
  MakeModelOptions o;
  o.arch = "bert";
  o.shape = "tiny";
  o.type = type;
  o.pooling = pooling;
  o.n_threads = 2;
  const std::string out = testing::temp_dir() + "/bert-tiny-" + type + "-p" + std::to_string(pooling) + ".gguf";
  auto r = make_model(o, dir + "/vocab/ggml-vocab-bert-bge.gguf", out);
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return out;
}

TEST(Encoder, EqualsTheFp64ReferenceForEachPooling) {
  CW_REQUIRE_SHARED_DATA(dir);
  for (uint32_t pooling : {1u, 2u, 3u}) {
    auto e = Encoder::load(make_bert(dir, "f32", pooling));
    ASSERT_TRUE(e.is_ok()) << e.status().message();
    EXPECT_EQ(static_cast<uint32_t>((*e)->hparams().pooling), pooling);
    EXPECT_EQ((*e)->hparams().n_ctx_train, 512);
    ThreadPool pool(2);
    EncoderScratch scratch;
    for (const std::vector<int32_t>& tokens :
         {std::vector<int32_t>{101, 102}, std::vector<int32_t>{101, 7592, 2088, 1010, 2023, 2003, 1037, 3231, 102}}) {
      std::vector<float> got;
      ASSERT_TRUE((*e)->embed(tokens, &got, pool, scratch).is_ok());
      const std::vector<double> want = reference((*e)->file(), (*e)->hparams(), tokens);
      ASSERT_EQ(got.size(), want.size());
      double worst = 0;
      for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
      std::printf("[ encoder  ] pooling %s, %zu tokens: max |diff| vs fp64 reference %.3g\n",
                  pooling_name((*e)->hparams().pooling), tokens.size(), worst);
      EXPECT_LE(worst, 1e-4) << "pooling " << pooling;
    }
  }
}

TEST(Encoder, RefusesBadInputWithOneLine) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto e = Encoder::load(make_bert(dir, "f16", 1));
  ASSERT_TRUE(e.is_ok()) << e.status().message();
  ThreadPool pool(1);
  EncoderScratch scratch;
  std::vector<float> out;
  EXPECT_EQ((*e)->embed({}, &out, pool, scratch).code(), StatusCode::kInvalidArgument);
  const std::vector<int32_t> too_long(513, 1000);
  const Status st = (*e)->embed(too_long, &out, pool, scratch);
  EXPECT_EQ(st.code(), StatusCode::kOutOfRange);
  EXPECT_EQ(st.message(), "a text of 513 tokens exceeds the embedding model's context of 512 tokens");
  EXPECT_EQ((*e)->embed(std::vector<int32_t>{101, 40000}, &out, pool, scratch).code(), StatusCode::kInvalidArgument);
  auto llama = Encoder::load(dir + "/models/stories260K.gguf");
  ASSERT_FALSE(llama.is_ok());
  EXPECT_NE(llama.status().message().find("not a bert"), std::string::npos) << llama.status().message();
}

// The text-layer embedder picks the encoder for a bert file: long texts run in windows, rows are unit
// length, similar texts are closer than unrelated ones is NOT asserted (random weights).
TEST(Encoder, ModelEmbedderRunsBertFiles) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto emb = text::ModelEmbedder::load(make_bert(dir, "q8_0", 2), {.ctx = 64, .threads = 2});
  ASSERT_TRUE(emb.is_ok()) << emb.status().message();
  EXPECT_EQ((*emb)->dim(), 256);
  EXPECT_EQ((*emb)->pooling(), "cls");
  std::string long_text;
  for (int i = 0; i < 100; ++i) long_text += "the quick brown fox jumps over the lazy dog. ";
  const std::vector<std::string_view> texts = {"hello world", long_text, ""};
  std::vector<float> out;
  ASSERT_TRUE((*emb)->embed(texts, &out).is_ok());
  ASSERT_EQ(out.size(), 3u * 256u);
  for (int r = 0; r < 2; ++r) {
    double norm = 0;
    for (int i = 0; i < 256; ++i) norm += static_cast<double>(out[r * 256 + i]) * out[r * 256 + i];
    EXPECT_NEAR(norm, 1.0, 1e-5) << "row " << r;
  }
  for (int i = 0; i < 256; ++i) EXPECT_EQ(out[2 * 256 + i], 0.0f);
}

}  // namespace
}  // namespace cw::model
