// convert_safetensors (issue 14 step 4): a random tiny llama's weights written as safetensors (PyTorch layout,
// F32 and BF16) convert back bit for bit and give identical logits; F16 / Q8_0 conversions give close logits;
// every malformed input is a one-line error and writes nothing.
#include "model/convert.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "kernels/cpu/fp16.h"
#include "model/model.h"
#include "support/spm_vocab.h"
#include "support/testing.h"

namespace cw::model {
namespace {

std::string tmp(const std::string& name) { return cw::testing::temp_dir() + "/" + name; }

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file: the 8-byte length, `header`, then `data`.
std::string safetensors_image(const std::string& header, const std::string& data) {
  std::string s(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) s[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return s + header + data;
}

std::string shape_json(const std::vector<uint64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(s[i]);
  }
  return out + "]";
}

// Writes every tensor of an F32 GGUF model as safetensors with PyTorch's (reversed) shapes, in reverse table
// order, as F32 or BF16. Optionally drops / renames / reshapes one tensor.
struct StOptions {
  bool bf16 = false;
  std::string drop;
  std::string extra;  // name of an extra 1-element tensor
  std::string reshape;  // tensor whose shape is written transposed
};
void write_model_as_safetensors(const gguf::File& f, const std::string& path, const StOptions& o = {}) {
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  std::string data;
  std::vector<const gguf::TensorInfo*> ts;
  for (const auto& t : f.tensors()) ts.push_back(&t);
  std::reverse(ts.begin(), ts.end());
  for (const auto* t : ts) {
    if (t->name == o.drop) continue;
    EXPECT_EQ(t->type, gguf::TensorType::kF32);
    std::vector<uint64_t> shape(t->shape.rbegin(), t->shape.rend());
    if (t->name == o.reshape) std::reverse(shape.begin(), shape.end());
    const size_t begin = data.size();
    if (o.bf16) {
      for (uint64_t i = 0; i < t->n_elements; ++i) {
        float v;
        std::memcpy(&v, t->data + i * 4, 4);
        const uint16_t h = kernels::fp32_to_bf16(v);
        data.append(reinterpret_cast<const char*>(&h), 2);
      }
    } else {
      data.append(reinterpret_cast<const char*>(t->data), t->n_bytes);
    }
    header += ",\"" + std::string(t->name) + "\":{\"dtype\":\"" + (o.bf16 ? "BF16" : "F32") +
              "\",\"shape\":" + shape_json(shape) + ",\"data_offsets\":[" + std::to_string(begin) + "," +
              std::to_string(data.size()) + "]}";
  }
  if (!o.extra.empty()) {
    header += ",\"" + o.extra + "\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[" + std::to_string(data.size()) +
              "," + std::to_string(data.size() + 4) + "]}";
    data.append(4, '\0');
  }
  header += "}";
  write_bytes(path, safetensors_image(header, data));
}

constexpr const char* kTinyConfig =
    R"({"arch":"llama","n_embd":256,"n_layer":2,"n_head":4,"n_head_kv":2,"n_ff":512,"n_ctx":2048,)"
    R"("rope_freq_base":10000,"rms_eps":1e-5})";

const std::string& vocab_path() {
  static const std::string p = [] {
    gguf::Writer w;
    cw::testing::add_small_spm_vocab(w);
    const std::string path = tmp("convert_vocab.gguf");
    const Status s = w.write(path);
    CW_CHECK_MSG(s.is_ok(), s.to_string());
    return path;
  }();
  return p;
}

const std::string& config_path() {
  static const std::string p = [] {
    const std::string path = tmp("convert_config.json");
    write_bytes(path, kTinyConfig);
    return path;
  }();
  return p;
}

Result<ConvertResult> convert(const std::string& st, const std::string& type, const std::string& out,
                              const std::string& config = config_path()) {
  ConvertOptions o;
  o.safetensors_path = st;
  o.config_path = config;
  o.vocab_path = vocab_path();
  o.type = type;
  o.out_path = out;
  return convert_safetensors(o);
}

std::vector<float> logits_of(const std::string& path) {
  auto m = Model::load(path);
  EXPECT_TRUE(m.is_ok()) << m.status().to_string();
  if (!m.is_ok()) return {};
  std::vector<int32_t> prompt;
  for (int i = 0; i < 24; ++i) prompt.push_back(static_cast<int32_t>(3 + (i * 37) % 500));
  Session s(**m, 64);
  std::vector<float> logits;
  EXPECT_TRUE(s.eval(prompt, true, &logits).is_ok());
  return logits;
}

const std::string& source_model() { return cw::testing::tiny_llama_f32("convert_src.gguf", 11); }

TEST(Convert, F32RoundTripIsExact) {
  auto src = gguf::File::open(source_model());
  ASSERT_TRUE(src.is_ok());
  const std::string st = tmp("convert_f32.safetensors"), out = tmp("convert_f32.gguf");
  write_model_as_safetensors(**src, st);
  auto r = convert(st, "f32", out);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->n_tensors, (*src)->tensors().size());
  auto got = gguf::File::open(out);
  ASSERT_TRUE(got.is_ok());
  ASSERT_EQ((*got)->tensors().size(), (*src)->tensors().size());
  for (const auto& t : (*src)->tensors()) {
    const gguf::TensorInfo* g = (*got)->find_tensor(t.name);
    ASSERT_NE(g, nullptr) << t.name;
    EXPECT_EQ(g->type, t.type) << t.name;
    EXPECT_EQ(g->shape, t.shape) << t.name;
    ASSERT_EQ(g->n_bytes, t.n_bytes) << t.name;
    EXPECT_EQ(std::memcmp(g->data, t.data, t.n_bytes), 0) << t.name;
  }
  // The same llama.* hyper-parameters as make_model wrote.
  for (const char* k : {"llama.context_length", "llama.embedding_length", "llama.block_count",
                        "llama.feed_forward_length", "llama.attention.head_count", "llama.attention.head_count_kv",
                        "llama.rope.dimension_count"})
    EXPECT_EQ(*(*got)->get_int(k), *(*src)->get_int(k)) << k;
  EXPECT_EQ(*(*got)->get_float("llama.rope.freq_base"), *(*src)->get_float("llama.rope.freq_base"));
  EXPECT_EQ(*(*got)->get_float("llama.attention.layer_norm_rms_epsilon"),
            *(*src)->get_float("llama.attention.layer_norm_rms_epsilon"));
  const std::vector<float> a = logits_of(source_model()), b = logits_of(out);
  ASSERT_FALSE(a.empty());
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
}

TEST(Convert, Bf16ConvertsExactly) {
  auto src = gguf::File::open(source_model());
  ASSERT_TRUE(src.is_ok());
  const std::string st = tmp("convert_bf16.safetensors"), out = tmp("convert_bf16.gguf");
  StOptions o;
  o.bf16 = true;
  write_model_as_safetensors(**src, st, o);
  auto r = convert(st, "f32", out);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  auto got = gguf::File::open(out);
  ASSERT_TRUE(got.is_ok());
  for (const auto& t : (*src)->tensors()) {
    const gguf::TensorInfo* g = (*got)->find_tensor(t.name);
    ASSERT_NE(g, nullptr) << t.name;
    ASSERT_EQ(g->n_bytes, t.n_bytes);
    for (uint64_t i = 0; i < t.n_elements; ++i) {
      float v, w;
      std::memcpy(&v, t.data + i * 4, 4);
      std::memcpy(&w, g->data + i * 4, 4);
      const float want = kernels::bf16_to_fp32(kernels::fp32_to_bf16(v));
      ASSERT_EQ(std::memcmp(&w, &want, 4), 0) << t.name << " element " << i;
    }
  }
}

TEST(Convert, F16AndQ8_0AreClose) {
  auto src = gguf::File::open(source_model());
  ASSERT_TRUE(src.is_ok());
  const std::string st = tmp("convert_q.safetensors");
  write_model_as_safetensors(**src, st);
  const std::vector<float> ref = logits_of(source_model());
  ASSERT_FALSE(ref.empty());
  double ref_sq = 0;
  for (float v : ref) ref_sq += static_cast<double>(v) * v;
  const double ref_rms = std::sqrt(ref_sq / static_cast<double>(ref.size()));
  // Measured on this tiny model (24 positions x 512 logits, logit rms 4.0): F16 max |diff| 0.016,
  // Q8_0 0.30 (weights and, in the Q8_0 matmuls, activations quantized); the bounds leave ~2-3x headroom.
  for (const auto& [type, tol, mean_tol] :
       {std::tuple<std::string, double, double>{"f16", 0.05, 0.005}, {"q8_0", 0.75, 0.12}}) {
    const std::string out = tmp("convert_" + type + ".gguf");
    auto r = convert(st, type, out);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    auto got = gguf::File::open(out);
    ASSERT_TRUE(got.is_ok());
    for (const auto& t : (*got)->tensors()) {
      if (t.shape.size() == 1) EXPECT_EQ(t.type, gguf::TensorType::kF32) << t.name;
      else EXPECT_EQ(t.type, type == "f16" ? gguf::TensorType::kF16 : gguf::TensorType::kQ8_0) << t.name;
    }
    const std::vector<float> l = logits_of(out);
    ASSERT_EQ(l.size(), ref.size());
    double max_diff = 0, sum_diff = 0;
    for (size_t i = 0; i < l.size(); ++i) {
      const double d = std::fabs(static_cast<double>(l[i]) - ref[i]);
      max_diff = std::max(max_diff, d);
      sum_diff += d;
    }
    const double mean_diff = sum_diff / static_cast<double>(l.size());
    std::printf("%s: max |logit diff| %.3g, mean %.3g (logit rms %.3g)\n", type.c_str(), max_diff, mean_diff, ref_rms);
    EXPECT_LT(max_diff, tol) << type;
    EXPECT_LT(mean_diff, mean_tol) << type;
  }
}

TEST(Convert, TiedOutputIsOptional) {
  auto src = gguf::File::open(source_model());
  ASSERT_TRUE(src.is_ok());
  const std::string st = tmp("convert_tied.safetensors"), out = tmp("convert_tied.gguf");
  StOptions o;
  o.drop = "output.weight";
  write_model_as_safetensors(**src, st, o);
  auto r = convert(st, "q8_0", out);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  auto got = gguf::File::open(out);
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ((*got)->find_tensor("output.weight"), nullptr);
  EXPECT_FALSE(logits_of(out).empty());
}

void expect_one_line_error(const Status& s, const std::string& needle) {
  EXPECT_FALSE(s.is_ok()) << needle;
  EXPECT_EQ(s.message().find('\n'), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(needle), std::string::npos) << "'" << s.message() << "' lacks '" << needle << "'";
}

TEST(Convert, MalformedSafetensors) {
  const std::string good_t = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string data(16, '\0');
  struct Case {
    std::string name, image, needle;
  };
  std::string big_len = safetensors_image("{}", "");
  big_len[0] = static_cast<char>(0xFF);
  const std::vector<Case> cases = {
      {"short", "abc", "no 8-byte header length"},
      {"header_past_end", big_len, "exceeds the file"},
      {"bad_json", safetensors_image("{\"a\":", data), "header JSON"},
      {"not_object", safetensors_image("[1,2]", data), "not a JSON object"},
      {"out_of_range", safetensors_image(R"({"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}})", data),
       "out of range"},
      {"reversed", safetensors_image(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", data), "out of range"},
      {"overlap", safetensors_image("{" + good_t + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", data),
       "overlap"},
      {"size", safetensors_image(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}})", data), "needs 4"},
      {"duplicate", safetensors_image("{" + good_t + "," + good_t + "}", data), "duplicate"},
      {"dtype", safetensors_image(R"({"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", data),
       "unsupported dtype"},
      {"neg_shape", safetensors_image(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data),
       "non-negative integers"},
      {"frac_offset", safetensors_image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0.5,8]}})", data),
       "non-negative integers"},
      {"no_dtype", safetensors_image(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", data), "dtype"},
      {"entry", safetensors_image(R"({"a":3})", data), "not an object"},
  };
  for (const auto& c : cases) {
    const std::string path = tmp("bad_" + c.name + ".safetensors");
    write_bytes(path, c.image);
    auto r = SafetensorsFile::open(path);
    expect_one_line_error(r.status(), c.needle);
    const std::string out = tmp("bad_" + c.name + ".gguf");
    expect_one_line_error(convert(path, "f16", out).status(), c.needle);
    EXPECT_FALSE(exists(out)) << c.name;
  }
  // A valid tiny file parses.
  const std::string ok = tmp("ok.safetensors");
  write_bytes(ok, safetensors_image("{" + good_t + R"(,"__metadata__":{"x":"y"}})", data));
  auto r = SafetensorsFile::open(ok);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_EQ(r->tensors().size(), 1u);
  EXPECT_EQ(r->tensors()[0].shape, std::vector<uint64_t>{2});
}

TEST(Convert, TensorSetIsChecked) {
  auto src = gguf::File::open(source_model());
  ASSERT_TRUE(src.is_ok());
  struct Case {
    StOptions o;
    std::string needle;
  };
  std::vector<Case> cases(3);
  cases[0].o.drop = "blk.1.ffn_up.weight";
  cases[0].needle = "missing tensor 'blk.1.ffn_up.weight'";
  cases[1].o.extra = "blk.2.attn_norm.weight";
  cases[1].needle = "unknown tensor 'blk.2.attn_norm.weight'";
  cases[2].o.reshape = "blk.0.attn_k.weight";
  cases[2].needle = "'blk.0.attn_k.weight' has shape [256, 128], expected [128, 256]";
  int i = 0;
  for (const auto& c : cases) {
    const std::string st = tmp("set_" + std::to_string(i) + ".safetensors"), out = tmp("set_" + std::to_string(i) + ".gguf");
    ++i;
    write_model_as_safetensors(**src, st, c.o);
    expect_one_line_error(convert(st, "f16", out).status(), c.needle);
    EXPECT_FALSE(exists(out));
  }
}

TEST(Convert, BadConfigAndType) {
  auto src = gguf::File::open(source_model());
  ASSERT_TRUE(src.is_ok());
  const std::string st = tmp("convert_cfg.safetensors"), out = tmp("convert_cfg.gguf");
  write_model_as_safetensors(**src, st);
  const std::vector<std::pair<std::string, std::string>> configs = {
      {"{", "config"},
      {R"({"arch":"llama"})", "missing \"n_embd\""},
      {R"({"arch":"gpt9","n_embd":256})", "unsupported arch"},
      {R"({"n_vocab":3,)" + std::string(kTinyConfig + 1), "unknown key 'n_vocab'"},
      {R"({"arch":"llama","n_embd":256,"n_layer":2,"n_head":3,"n_head_kv":1,"n_ff":512,"n_ctx":2048,"rope_freq_base":10000,"rms_eps":1e-5})",
       "not a multiple of n_head"},
      {R"({"arch":"llama","n_embd":256,"n_layer":2,"n_head":4,"n_head_kv":2,"n_ff":512,"n_ctx":2048,"rope_freq_base":10000,"rms_eps":2})",
       "rms_eps"},
      {R"({"arch":"llama","n_embd":256,"n_layer":3,"n_head":4,"n_head_kv":2,"n_ff":512,"n_ctx":2048,"rope_freq_base":10000,"rms_eps":1e-5})",
       "missing tensor 'blk.2.attn_norm.weight'"},
  };
  int i = 0;
  for (const auto& [json, needle] : configs) {
    const std::string cfg = tmp("cfg_" + std::to_string(i++) + ".json");
    write_bytes(cfg, json);
    expect_one_line_error(convert(st, "f16", out, cfg).status(), needle);
    EXPECT_FALSE(exists(out));
  }
  expect_one_line_error(convert(st, "q4_0", out).status(), "unsupported type 'q4_0'");
  expect_one_line_error(convert(st, "zz", out).status(), "unknown type 'zz'");
  expect_one_line_error(convert(tmp("no_such.safetensors"), "f16", out).status(), "no_such.safetensors");
}

}  // namespace
}  // namespace cw::model
