#include "support/ref_forward.h"

#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>

#include <deque>

#include "gguf/writer.h"
#include "kernels/cpu/ops_ref.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::testing {
namespace {

using Vec = std::vector<double>;

Vec dequant_row(const model::WeightRef& w, int64_t row) {
  std::vector<float> f(static_cast<size_t>(w.n_in));
  kernels::get_row_ref(w.data, w.type, w.n_in, row, f.data());
  return Vec(f.begin(), f.end());
}

bool g_round = false;

// x rounded through the activation type of weights of type w_type (quantize + dequantize in fp32).
Vec round_activations(uint32_t w_type, const Vec& x) {
  const uint32_t a_type = kernels::activation_type(w_type);
  if (a_type == kernels::kTypeF32) return x;
  const kernels::QuantTraits* t = kernels::quant_traits(a_type);
  std::vector<float> f(x.begin(), x.end()), back(x.size());
  std::vector<uint8_t> buf(static_cast<size_t>(kernels::quant_row_bytes(*t, static_cast<int64_t>(x.size()))));
  t->quantize(f.data(), buf.data(), static_cast<int64_t>(x.size()));
  t->dequantize(buf.data(), back.data(), static_cast<int64_t>(x.size()));
  return Vec(back.begin(), back.end());
}

// y = W x (+ b), W [n_out, n_in].
Vec matvec(const model::WeightRef& w, const Vec& x_in, const std::vector<float>& bias) {
  const Vec x = g_round ? round_activations(w.type, x_in) : x_in;
  Vec y(static_cast<size_t>(w.n_out));
  for (int64_t o = 0; o < w.n_out; ++o) {
    Vec row = dequant_row(w, o);
    double acc = 0;
    for (int64_t i = 0; i < w.n_in; ++i) acc += row[static_cast<size_t>(i)] * x[static_cast<size_t>(i)];
    y[static_cast<size_t>(o)] = acc + (bias.empty() ? 0.0 : bias[static_cast<size_t>(o)]);
  }
  return y;
}

Vec rms_norm(const Vec& x, const std::vector<float>& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double scale = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * scale * w[i];
  return y;
}

void rope(Vec& x, int64_t n_heads, const model::HParams& hp, double pos, const std::vector<float>& factors) {
  const int64_t half = hp.n_rot / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    double* v = &x[static_cast<size_t>(h * hp.head_dim)];
    for (int64_t i = 0; i < half; ++i) {
      double inv_freq = std::pow(hp.rope_freq_base, -2.0 * static_cast<double>(i) / static_cast<double>(hp.n_rot));
      if (!factors.empty()) inv_freq /= factors[static_cast<size_t>(i)];
      const double theta = pos * hp.rope_freq_scale * inv_freq;
      const bool neox = hp.rope_style == kernels::RopeStyle::kNeox;
      const int64_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
      const double x0 = v[a], x1 = v[b];
      v[a] = x0 * std::cos(theta) - x1 * std::sin(theta);
      v[b] = x0 * std::sin(theta) + x1 * std::cos(theta);
    }
  }
}

}  // namespace

std::vector<double> reference_forward_f64(const model::Model& m, const std::vector<int32_t>& tokens, double pos_offset,
                                          bool round_activations) {
  g_round = round_activations;
  const model::HParams& hp = m.hparams();
  const int64_t n = static_cast<int64_t>(tokens.size()), D = hp.head_dim, group = hp.n_head / hp.n_head_kv;
  std::vector<Vec> x(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) x[static_cast<size_t>(t)] = dequant_row(m.tok_embd(), tokens[static_cast<size_t>(t)]);
  for (const model::LayerWeights& L : m.layers()) {
    std::vector<Vec> q(x.size()), k(x.size()), v(x.size());
    for (int64_t t = 0; t < n; ++t) {
      Vec h = rms_norm(x[static_cast<size_t>(t)], L.attn_norm, hp.rms_eps);
      q[static_cast<size_t>(t)] = matvec(L.wq, h, L.bq);
      k[static_cast<size_t>(t)] = matvec(L.wk, h, L.bk);
      v[static_cast<size_t>(t)] = matvec(L.wv, h, L.bv);
      rope(q[static_cast<size_t>(t)], hp.n_head, hp, pos_offset + static_cast<double>(t), m.rope_freq_factors());
      rope(k[static_cast<size_t>(t)], hp.n_head_kv, hp, pos_offset + static_cast<double>(t), m.rope_freq_factors());
    }
    for (int64_t t = 0; t < n; ++t) {
      Vec attn(static_cast<size_t>(hp.n_head * D), 0.0);
      for (int64_t h = 0; h < hp.n_head; ++h) {
        const int64_t kvh = h / group;
        Vec s(static_cast<size_t>(t + 1));
        double mx = -INFINITY;
        for (int64_t j = 0; j <= t; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += q[static_cast<size_t>(t)][static_cast<size_t>(h * D + d)] * k[static_cast<size_t>(j)][static_cast<size_t>(kvh * D + d)];
          s[static_cast<size_t>(j)] = dot / std::sqrt(static_cast<double>(D));
          mx = std::max(mx, s[static_cast<size_t>(j)]);
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int64_t j = 0; j <= t; ++j)
          for (int64_t d = 0; d < D; ++d)
            attn[static_cast<size_t>(h * D + d)] += s[static_cast<size_t>(j)] / sum * v[static_cast<size_t>(j)][static_cast<size_t>(kvh * D + d)];
      }
      Vec o = matvec(L.wo, attn, {});
      for (size_t i = 0; i < o.size(); ++i) x[static_cast<size_t>(t)][i] += o[i];
    }
    for (int64_t t = 0; t < n; ++t) {
      Vec h = rms_norm(x[static_cast<size_t>(t)], L.ffn_norm, hp.rms_eps);
      Vec g = matvec(L.ffn_gate, h, {}), u = matvec(L.ffn_up, h, {});
      for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      Vec d = matvec(L.ffn_down, g, {});
      for (size_t i = 0; i < d.size(); ++i) x[static_cast<size_t>(t)][i] += d[i];
    }
  }
  std::vector<double> logits;
  logits.reserve(static_cast<size_t>(n * hp.n_vocab));
  for (int64_t t = 0; t < n; ++t) {
    Vec h = rms_norm(x[static_cast<size_t>(t)], m.output_norm(), hp.rms_eps);
    Vec l = matvec(m.output(), h, {});
    logits.insert(logits.end(), l.begin(), l.end());
  }
  return logits;
}

std::vector<double> reference_streaming_f64(const model::Model& m, const std::vector<int32_t>& tokens, int64_t sinks,
                                            int64_t window, int64_t block, int* n_slides) {
  g_round = false;
  const model::HParams& hp = m.hparams();
  const int64_t D = hp.head_dim, group = hp.n_head / hp.n_head_kv;
  const size_t n_layers = m.layers().size();
  // Per layer, the retained slots' unrotated keys and values.
  std::vector<std::vector<Vec>> keys(n_layers), values(n_layers);
  int64_t pos_offset = 0;
  int slides = 0;
  std::vector<double> logits;
  logits.reserve(tokens.size() * static_cast<size_t>(hp.n_vocab));
  for (int32_t token : tokens) {
    Vec x = dequant_row(m.tok_embd(), token);
    for (size_t li = 0; li < n_layers; ++li) {
      const model::LayerWeights& L = m.layers()[li];
      Vec h = rms_norm(x, L.attn_norm, hp.rms_eps);
      Vec q = matvec(L.wq, h, L.bq);
      keys[li].push_back(matvec(L.wk, h, L.bk));
      values[li].push_back(matvec(L.wv, h, L.bv));
      const int64_t n_slots = static_cast<int64_t>(keys[li].size());
      rope(q, hp.n_head, hp, static_cast<double>(pos_offset + n_slots - 1), m.rope_freq_factors());
      std::vector<Vec> k(keys[li]);
      for (int64_t j = 0; j < n_slots; ++j)
        rope(k[static_cast<size_t>(j)], hp.n_head_kv, hp, static_cast<double>(pos_offset + j), m.rope_freq_factors());
      const std::vector<Vec>& v = values[li];
      Vec attn(static_cast<size_t>(hp.n_head * D), 0.0);
      for (int64_t hd = 0; hd < hp.n_head; ++hd) {
        const int64_t kvh = hd / group;
        Vec s(static_cast<size_t>(n_slots));
        double mx = -INFINITY;
        for (int64_t j = 0; j < n_slots; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += q[static_cast<size_t>(hd * D + d)] * k[static_cast<size_t>(j)][static_cast<size_t>(kvh * D + d)];
          s[static_cast<size_t>(j)] = dot / std::sqrt(static_cast<double>(D));
          mx = std::max(mx, s[static_cast<size_t>(j)]);
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int64_t j = 0; j < n_slots; ++j)
          for (int64_t d = 0; d < D; ++d)
            attn[static_cast<size_t>(hd * D + d)] += s[static_cast<size_t>(j)] / sum * v[static_cast<size_t>(j)][static_cast<size_t>(kvh * D + d)];
      }
      Vec o = matvec(L.wo, attn, {});
      for (size_t i = 0; i < o.size(); ++i) x[i] += o[i];
      Vec hf = rms_norm(x, L.ffn_norm, hp.rms_eps);
      Vec g = matvec(L.ffn_gate, hf, {}), u = matvec(L.ffn_up, hf, {});
      for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      Vec dn = matvec(L.ffn_down, g, {});
      for (size_t i = 0; i < dn.size(); ++i) x[i] += dn[i];
    }
    Vec hn = rms_norm(x, m.output_norm(), hp.rms_eps);
    Vec l = matvec(m.output(), hn, {});
    logits.insert(logits.end(), l.begin(), l.end());
    // The slide (sink_window.cc's after_append): drop k whole blocks right after the sinks.
    const int64_t n_slots = n_layers > 0 ? static_cast<int64_t>(keys[0].size()) : 0;
    const int64_t over = n_slots - sinks - window;
    if (block > 0 && over >= block) {
      const int64_t drop = over / block * block;
      for (size_t li = 0; li < n_layers; ++li) {
        keys[li].erase(keys[li].begin() + sinks, keys[li].begin() + sinks + drop);
        values[li].erase(values[li].begin() + sinks, values[li].begin() + sinks + drop);
      }
      pos_offset += drop;
      ++slides;
    }
  }
  if (n_slides) *n_slides = slides;
  return logits;
}

std::unique_ptr<model::Model> first_layers(const std::string& path, int n_layers) {
  auto f = gguf::File::open(path);
  EXPECT_TRUE(f.is_ok()) << f.status().message();
  if (!f.is_ok()) return nullptr;
  gguf::Writer w;
  for (const gguf::KeyValue& kv : (*f)->metadata()) {
    if (kv.key.ends_with(".block_count")) w.add_u32(kv.key, static_cast<uint32_t>(n_layers));
    else w.add_value(kv.key, kv.value);
  }
  for (const gguf::TensorInfo& t : (*f)->tensors()) {
    if (t.name.starts_with("blk.")) {
      const int layer = std::stoi(std::string(t.name.substr(4)));
      if (layer >= n_layers) continue;
    }
    EXPECT_TRUE(w.add_tensor(t.name, t.type, t.shape, std::vector<uint8_t>(t.data, t.data + t.n_bytes)).is_ok());
  }
  static std::deque<std::vector<uint8_t>> images;  // each parsed file points into its image
  images.push_back(w.bytes());
  auto g = gguf::File::parse(images.back());
  EXPECT_TRUE(g.is_ok()) << g.status().message();
  if (!g.is_ok()) return nullptr;
  auto m = model::Model::from_file(std::move(g).value());
  EXPECT_TRUE(m.is_ok()) << m.status().message();
  if (!m.is_ok()) return nullptr;
  return std::move(m).value();
}

}  // namespace cw::testing
