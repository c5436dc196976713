// make-model: random-weight models load, follow llama.cpp's type mix, are deterministic and give peaked
// next-token distributions; the streaming GGUF writer equals the in-memory image and reports I/O errors.
// Most tests use a small vocabulary built in memory; the ones against ../shared/data skip when it is absent.
#include "model/make_model.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "base/mapped_file.h"
#include "gguf/writer.h"
#include "model/model.h"
#include "support/spm_vocab.h"
#include "support/testing.h"

namespace cw::model {
namespace {

using gguf::TensorType;

// An SPM-like vocabulary of 512 tokens plus assorted metadata types (copied by make_model).
std::vector<uint8_t> small_vocab_image() {
  gguf::Writer w;
  w.add_string("general.architecture", "llama");  // not copied: only tokenizer.* is
  testing::add_small_spm_vocab(w);
  w.add_bool("tokenizer.ggml.add_bos_token", true);
  w.add_u8("tokenizer.test.u8", 200);
  w.add_i8("tokenizer.test.i8", -5);
  w.add_i16("tokenizer.test.i16", -300);
  w.add_u16("tokenizer.test.u16", 60000);
  w.add_i64("tokenizer.test.i64", -(int64_t{1} << 40));
  w.add_u64("tokenizer.test.u64", ~uint64_t{0});
  w.add_f64("tokenizer.test.f64", 0.1);
  w.add_f32("tokenizer.test.f32", 1.5f);
  w.add_i32_array_array("tokenizer.test.nested", {{1, 2}, {}, {3}});
  w.add_string("tokenizer.chat_template", "{{ messages }}");
  return w.bytes();
}

struct Vocab {
  std::vector<uint8_t> image = small_vocab_image();
  std::unique_ptr<gguf::File> file;
  Vocab() {
    auto f = gguf::File::parse(image, "small-vocab");
    CW_CHECK(f.is_ok());
    file = std::move(f).value();
  }
};
const gguf::File& small_vocab() {
  static const Vocab* v = new Vocab();
  return *v->file;
}

std::string tmp(const std::string& name) { return cw::testing::temp_dir() + "/" + name; }

std::vector<uint8_t> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

Result<MakeModelResult> make(const std::string& arch, const std::string& type, uint64_t seed, const std::string& out,
                             int threads = 2) {
  MakeModelOptions o;
  o.arch = arch;
  o.shape = "tiny";
  o.type = type;
  o.seed = seed;
  o.n_threads = threads;
  return make_model(o, small_vocab(), out);
}

// Mean top-1 probability over the positions of a prompt; every logit must be finite.
double mean_top1(const Model& m, int n_tokens) {
  const int64_t V = m.hparams().n_vocab;
  std::vector<int32_t> prompt;
  for (int i = 0; i < n_tokens; ++i) prompt.push_back(static_cast<int32_t>(1 + (i * 131) % (V - 1)));
  Session s(m, 64);
  std::vector<float> logits;
  EXPECT_TRUE(s.eval(prompt, true, &logits).is_ok());
  double sum = 0;
  for (int t = 0; t < n_tokens; ++t) {
    const float* l = logits.data() + static_cast<size_t>(t) * static_cast<size_t>(V);
    float mx = -INFINITY;
    for (int64_t v = 0; v < V; ++v) {
      EXPECT_TRUE(std::isfinite(l[v])) << "position " << t << " token " << v;
      mx = std::max(mx, l[v]);
    }
    double z = 0;
    for (int64_t v = 0; v < V; ++v) z += std::exp(static_cast<double>(l[v] - mx));
    sum += 1.0 / z;
  }
  return sum / n_tokens;
}

void expect_same_value(const gguf::Value& a, const gguf::Value& b, const std::string& key) {
  ASSERT_EQ(a.type(), b.type()) << key;
  if (!a.is_array()) {
    switch (a.type()) {
      case gguf::ValueType::kString: EXPECT_EQ(*a.as_string(), *b.as_string()) << key; break;
      case gguf::ValueType::kBool: EXPECT_EQ(*a.as_bool(), *b.as_bool()) << key; break;
      case gguf::ValueType::kFloat32:
      case gguf::ValueType::kFloat64: EXPECT_EQ(*a.as_float(), *b.as_float()) << key; break;
      case gguf::ValueType::kUint64: EXPECT_EQ(*a.as_uint(), *b.as_uint()) << key; break;
      default: EXPECT_EQ(*a.as_int(), *b.as_int()) << key; break;
    }
    return;
  }
  ASSERT_EQ(a.array_type(), b.array_type()) << key;
  ASSERT_EQ(a.array_size(), b.array_size()) << key;
  if (a.array_type() == gguf::ValueType::kString) {
    for (size_t i = 0; i < a.array_size(); ++i) EXPECT_EQ(a.strings()[i], b.strings()[i]) << key << "[" << i << "]";
  } else if (a.array_type() == gguf::ValueType::kArray) {
    for (size_t i = 0; i < a.array_size(); ++i) expect_same_value(a.arrays()[i], b.arrays()[i], key);
  } else {
    EXPECT_TRUE(std::equal(a.raw_array_bytes().begin(), a.raw_array_bytes().end(), b.raw_array_bytes().begin(),
                           b.raw_array_bytes().end()))
        << key;
  }
}

// ---- names and errors -------------------------------------------------------------------------------------

TEST(MakeModel, NamesAreCaseInsensitiveAndUnknownOnesListTheSupported) {
  EXPECT_EQ(*file_type_from_name("q4_k_m"), FileType::kQ4_K_M);
  EXPECT_EQ(*file_type_from_name("BF16"), FileType::kBF16);
  EXPECT_EQ(static_cast<uint32_t>(*file_type_from_name("f32")), 0u);
  EXPECT_EQ(all_file_types().size(), 17u);
  auto bad = file_type_from_name("q4_k_x");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("q5_k_m"), std::string::npos) << bad.status().message();
  EXPECT_TRUE(model_shape("1B").is_ok());
  EXPECT_NE(model_shape("2b").status().message().find("0.5b"), std::string::npos);
  EXPECT_NE(check_make_arch("gpt2").message().find("qwen2"), std::string::npos);

  const std::string out = tmp("never.gguf");
  for (auto [arch, shape, type] : {std::tuple{"mamba", "tiny", "f16"}, std::tuple{"llama", "70b", "f16"},
                                   std::tuple{"llama", "tiny", "q4_k_x"}}) {
    MakeModelOptions o;
    o.arch = arch;
    o.shape = shape;
    o.type = type;
    auto r = make_model(o, small_vocab(), out);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("supported"), std::string::npos);
  }
  EXPECT_FALSE(exists(out));
}

TEST(MakeModel, VocabularyWithoutTokensIsAnError) {
  gguf::Writer w;
  w.add_string("tokenizer.ggml.model", "llama");
  const auto image = w.bytes();
  auto f = gguf::File::parse(image);
  ASSERT_TRUE(f.is_ok());
  auto r = make_model(MakeModelOptions{}, **f, tmp("novocab.gguf"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("tokenizer.ggml.tokens"), std::string::npos);
}

// ---- the type mix ---------------------------------------------------------------------------------------

std::map<std::string, TensorType> types_of(const std::vector<PlannedTensor>& plan) {
  std::map<std::string, TensorType> m;
  for (const auto& t : plan) m[t.name] = t.type;
  return m;
}

TEST(MakeModel, Q4KMixFollowsLlamaCppAtRealLayerCounts) {
  // 1b: 16 layers; more_bits = first/last 2 layers and (i - 2) % 3 == 2.
  auto m = types_of(plan_tensors("llama", *model_shape("1b"), FileType::kQ4_K_M, 1000));
  const std::vector<int> more = {0, 1, 4, 7, 10, 13, 14, 15};
  for (int i = 0; i < 16; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    const bool mb = std::find(more.begin(), more.end(), i) != more.end();
    EXPECT_EQ(m[p + "attn_v.weight"], mb ? TensorType::kQ6_K : TensorType::kQ4_K) << i;
    EXPECT_EQ(m[p + "ffn_down.weight"], mb ? TensorType::kQ6_K : TensorType::kQ4_K) << i;
    for (const char* n : {"attn_q.weight", "attn_k.weight", "attn_output.weight", "ffn_gate.weight", "ffn_up.weight"})
      EXPECT_EQ(m[p + n], TensorType::kQ4_K) << p << n;
    EXPECT_EQ(m[p + "attn_norm.weight"], TensorType::kF32);
    EXPECT_EQ(m[p + "ffn_norm.weight"], TensorType::kF32);
  }
  EXPECT_EQ(m["output.weight"], TensorType::kQ6_K);
  EXPECT_EQ(m["token_embd.weight"], TensorType::kQ4_K);
  EXPECT_EQ(m["output_norm.weight"], TensorType::kF32);

  // Q3_K_M at 32 layers: attn_v Q5_K in layers 0-1, ffn_down Q5_K in the first 32/16 = 2, attn_output Q4_K.
  m = types_of(plan_tensors("llama", *model_shape("8b"), FileType::kQ3_K_M, 1000));
  EXPECT_EQ(m["blk.1.attn_v.weight"], TensorType::kQ5_K);
  EXPECT_EQ(m["blk.2.attn_v.weight"], TensorType::kQ4_K);
  EXPECT_EQ(m["blk.1.ffn_down.weight"], TensorType::kQ5_K);
  EXPECT_EQ(m["blk.2.ffn_down.weight"], TensorType::kQ4_K);
  EXPECT_EQ(m["blk.9.attn_output.weight"], TensorType::kQ4_K);
  EXPECT_EQ(m["blk.9.attn_q.weight"], TensorType::kQ3_K);
  // Q4_K_S: attn_v Q5_K in layers 0-3, ffn_down Q5_K in the first 32/8 = 4.
  m = types_of(plan_tensors("llama", *model_shape("8b"), FileType::kQ4_K_S, 1000));
  EXPECT_EQ(m["blk.3.attn_v.weight"], TensorType::kQ5_K);
  EXPECT_EQ(m["blk.4.attn_v.weight"], TensorType::kQ4_K);
  EXPECT_EQ(m["blk.3.ffn_down.weight"], TensorType::kQ5_K);
  EXPECT_EQ(m["blk.4.ffn_down.weight"], TensorType::kQ4_K);
  // Q2_K: attn_v Q4_K when n_gqa >= 4 (8b: 4), Q3_K otherwise (3b: 3).
  EXPECT_EQ(types_of(plan_tensors("llama", *model_shape("8b"), FileType::kQ2_K, 1000))["blk.0.attn_v.weight"],
            TensorType::kQ4_K);
  EXPECT_EQ(types_of(plan_tensors("llama", *model_shape("3b"), FileType::kQ2_K, 1000))["blk.0.attn_v.weight"],
            TensorType::kQ3_K);
  // Legacy types: only output.weight changes.
  m = types_of(plan_tensors("llama", *model_shape("1b"), FileType::kQ4_0, 1000));
  EXPECT_EQ(m["output.weight"], TensorType::kQ6_K);
  EXPECT_EQ(m["blk.0.attn_v.weight"], TensorType::kQ4_0);
  EXPECT_EQ(types_of(plan_tensors("llama", *model_shape("1b"), FileType::kQ8_0, 1000))["output.weight"],
            TensorType::kQ8_0);
  EXPECT_EQ(types_of(plan_tensors("llama", *model_shape("1b"), FileType::kF16, 1000))["output.weight"],
            TensorType::kF16);
}

TEST(MakeModel, RowsNotMultipleOf256FallBackLikeLlamaCpp) {
  // 0.5b: n_embd 896 = 3.5 * 256, n_ff 4864 = 19 * 256.
  auto m = types_of(plan_tensors("qwen2", *model_shape("0.5b"), FileType::kQ4_K_M, 1000));
  EXPECT_EQ(m["token_embd.weight"], TensorType::kQ5_0);
  EXPECT_EQ(m["output.weight"], TensorType::kQ8_0);
  EXPECT_EQ(m["blk.5.attn_q.weight"], TensorType::kQ5_0);
  EXPECT_EQ(m["blk.0.attn_v.weight"], TensorType::kQ8_0);   // Q6_K -> Q8_0
  EXPECT_EQ(m["blk.6.attn_v.weight"], TensorType::kQ5_0);   // 24 layers: more_bits(6) is false
  EXPECT_EQ(m["blk.0.ffn_down.weight"], TensorType::kQ6_K);  // rows of n_ff fit
  EXPECT_EQ(m["blk.6.ffn_down.weight"], TensorType::kQ4_K);
  EXPECT_EQ(m["blk.0.attn_q.bias"], TensorType::kF32);
  m = types_of(plan_tensors("qwen2", *model_shape("0.5b"), FileType::kQ2_K, 1000));
  EXPECT_EQ(m["blk.0.attn_q.weight"], TensorType::kQ4_0);
  EXPECT_EQ(m["blk.0.attn_output.weight"], TensorType::kQ4_1);
  m = types_of(plan_tensors("qwen2", *model_shape("0.5b"), FileType::kQ5_K_S, 1000));
  EXPECT_EQ(m["blk.0.attn_q.weight"], TensorType::kQ5_1);
}

// The tiny shape is the one of ../shared/data/models/synth-tiny (quantized by llama.cpp): same types.
TEST(MakeModel, TinyMixMatchesLlamaCppQuantizedFiles) {
  CW_REQUIRE_SHARED_DATA(dir);
  int n_files = 0;
  for (FileType ft : all_file_types()) {
    const std::string path = dir + "/models/synth-tiny/seed1-" + file_type_name(ft) + ".gguf";
    if (!exists(path)) continue;
    ++n_files;
    auto f = gguf::File::open(path);
    ASSERT_TRUE(f.is_ok()) << f.status().to_string();
    const auto plan = plan_tensors("llama", *model_shape("tiny"), ft, static_cast<int64_t>((*f)->find_tensor("token_embd.weight")->shape[1]));
    EXPECT_EQ((*f)->tensors().size(), plan.size()) << path;
    for (const auto& t : plan) {
      const gguf::TensorInfo* ti = (*f)->find_tensor(t.name);
      ASSERT_NE(ti, nullptr) << path << ": " << t.name;
      EXPECT_EQ(ti->type, t.type) << path << ": " << t.name << " is " << gguf::type_traits(ti->type).name << ", we chose "
                                  << gguf::type_traits(t.type).name;
      EXPECT_EQ(ti->shape, t.shape) << path << ": " << t.name;
    }
    EXPECT_EQ(*(*f)->get_uint("general.file_type"), static_cast<uint64_t>(ft)) << path;
  }
  EXPECT_GE(n_files, 10);
}

// ---- whole models ---------------------------------------------------------------------------------------

TEST(MakeModel, EveryTypeLoadsFollowsThePlanAndGivesPeakedLogits) {
  for (FileType ft : all_file_types()) {
    SCOPED_TRACE(file_type_name(ft));
    const std::string out = tmp(std::string("tiny-") + file_type_name(ft) + ".gguf");
    auto r = make(ft == FileType::kQ4_K_M ? "qwen2" : "llama", file_type_name(ft), 7, out);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ(r->n_vocab, 512);
    auto m = Model::load(out);
    ASSERT_TRUE(m.is_ok()) << m.status().to_string();
    const gguf::File& f = (*m)->file();
    EXPECT_EQ(f.file_size(), r->file_bytes);
    EXPECT_EQ(*f.get_uint("general.file_type"), static_cast<uint64_t>(ft));
    const bool quantized = ft != FileType::kAllF32 && ft != FileType::kF16 && ft != FileType::kBF16;
    EXPECT_EQ(f.find("general.quantization_version") != nullptr, quantized);
    const auto plan = plan_tensors(*f.get_string("general.architecture"), *model_shape("tiny"), ft, 512);
    ASSERT_EQ(f.tensors().size(), plan.size());
    for (size_t i = 0; i < plan.size(); ++i) {
      EXPECT_EQ(f.tensors()[i].name, plan[i].name);
      EXPECT_EQ(f.tensors()[i].type, plan[i].type) << plan[i].name;
    }
    if (quantized) {
      EXPECT_EQ(f.find_tensor("output.weight")->type, ft == FileType::kQ8_0 ? TensorType::kQ8_0 : TensorType::kQ6_K);
    }
    const double top1 = mean_top1(**m, 24);
    std::printf("%-7s mean top-1 probability %.3f (uniform %.4f)\n", file_type_name(ft), top1, 1.0 / 512);
    EXPECT_GT(top1, 20.0 / 512);
  }
}

TEST(MakeModel, HyperParametersAndTokenizerMetadata) {
  const std::string out = tmp("qwen2-q8.gguf");
  ASSERT_TRUE(make("qwen2", "q8_0", 3, out).is_ok());
  auto m = Model::load(out);
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  const HParams& hp = (*m)->hparams();
  EXPECT_EQ(hp.arch, "qwen2");
  EXPECT_EQ(hp.n_embd, 256);
  EXPECT_EQ(hp.n_layer, 2);
  EXPECT_EQ(hp.n_head, 4);
  EXPECT_EQ(hp.n_head_kv, 2);
  EXPECT_EQ(hp.n_ff, 512);
  EXPECT_EQ(hp.n_rot, 64);
  EXPECT_EQ(hp.n_ctx_train, 2048);
  EXPECT_EQ(hp.rope_freq_base, 1e6);
  EXPECT_FLOAT_EQ(hp.rms_eps, 1e-6f);
  EXPECT_TRUE(hp.qkv_bias);
  EXPECT_EQ((*m)->layers()[1].bk.size(), 128u);
  EXPECT_EQ((*m)->file().find_tensor("blk.1.attn_k.bias")->type, TensorType::kF32);
  EXPECT_EQ((*m)->layers()[0].attn_norm, std::vector<float>(256, 1.0f));
  EXPECT_EQ(*(*m)->file().get_string("general.architecture"), "qwen2");
  EXPECT_EQ((*m)->file().find("general.name") != nullptr, true);

  // Every tokenizer.* key is copied with its type and value; nothing else from the vocabulary file.
  int n_copied = 0;
  for (const auto& kv : small_vocab().metadata()) {
    const gguf::Value* v = (*m)->file().find(kv.key);
    if (kv.key.substr(0, 10) != "tokenizer.") continue;
    ASSERT_NE(v, nullptr) << kv.key;
    expect_same_value(kv.value, *v, std::string(kv.key));
    ++n_copied;
  }
  EXPECT_EQ(n_copied, 17);
  EXPECT_EQ(*(*m)->file().get_uint("qwen2.context_length"), 2048u);
}

TEST(MakeModel, SameSeedSameBytesAnyThreadCountOtherSeedOtherWeights) {
  const std::string a = tmp("det-a.gguf"), b = tmp("det-b.gguf"), c = tmp("det-c.gguf");
  ASSERT_TRUE(make("llama", "q4_k_m", 11, a, 1).is_ok());
  ASSERT_TRUE(make("llama", "q4_k_m", 11, b, 3).is_ok());
  ASSERT_TRUE(make("llama", "q4_k_m", 12, c, 2).is_ok());
  const auto ba = slurp(a), bb = slurp(b), bc = slurp(c);
  EXPECT_EQ(ba, bb);
  ASSERT_EQ(ba.size(), bc.size());
  auto fa = gguf::File::parse(ba), fc = gguf::File::parse(bc);
  ASSERT_TRUE(fa.is_ok() && fc.is_ok());
  for (const auto& t : (*fa)->tensors()) {
    const gguf::TensorInfo* u = (*fc)->find_tensor(t.name);
    const bool same = std::memcmp(t.data, u->data, t.n_bytes) == 0;
    EXPECT_EQ(same, t.name.find("norm") != std::string_view::npos) << t.name;
  }
}

TEST(MakeModel, WeightsHaveTheIntendedScale) {
  const std::string out = tmp("scale.gguf");
  ASSERT_TRUE(make("llama", "f32", 5, out).is_ok());
  auto f = gguf::File::open(out);
  ASSERT_TRUE(f.is_ok());
  auto stats = [&](const std::string& name) {
    const gguf::TensorInfo* t = (*f)->find_tensor(name);
    const auto* x = reinterpret_cast<const float*>(t->data);
    double s = 0, s2 = 0;
    for (uint64_t i = 0; i < t->n_elements; ++i) {
      s += x[i];
      s2 += static_cast<double>(x[i]) * x[i];
    }
    const double n = static_cast<double>(t->n_elements);
    return std::pair{s / n, std::sqrt(s2 / n - (s / n) * (s / n))};
  };
  auto [m0, s0] = stats("token_embd.weight");
  EXPECT_NEAR(m0, 0, 0.01);
  EXPECT_NEAR(s0, 1.0, 0.01);
  auto [m1, s1] = stats("blk.0.ffn_down.weight");
  EXPECT_NEAR(m1, 0, 0.01 / std::sqrt(512.0));
  EXPECT_NEAR(s1, 1 / std::sqrt(512.0), 0.01 / std::sqrt(512.0));
  auto [m2, s2] = stats("blk.1.attn_q.weight");
  EXPECT_NEAR(s2, 1 / 16.0, 0.01 / 16);
}

TEST(MakeModel, UnwritableOutputIsAnError) {
  // A missing directory is the user's path (not found: exit 2); a full disk is an I/O error (exit 1).
  auto r = make("llama", "q8_0", 1, "/nonexistent-dir/out.gguf");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("/nonexistent-dir/out.gguf"), std::string::npos);
  if (exists("/dev/full")) {  // disk full
    auto full = make("llama", "q8_0", 1, "/dev/full");
    ASSERT_FALSE(full.is_ok());
    EXPECT_EQ(full.status().code(), StatusCode::kIoError) << full.status().to_string();
    EXPECT_TRUE(exists("/dev/full"));
  }
}

TEST(MakeModel, WithTheSharedSpmVocabulary) {
  CW_REQUIRE_SHARED_DATA(dir);
  MakeModelOptions o;
  o.type = "Q4_K_M";
  size_t last_done = 0, n_calls = 0;
  o.on_progress = [&](const MakeModelProgress& p) {
    EXPECT_GE(p.tensors_done, last_done);
    EXPECT_LE(p.bytes_done, p.bytes_total);
    last_done = p.tensors_done;
    ++n_calls;
  };
  const std::string out = tmp("spm-q4km.gguf");
  auto r = make_model(o, dir + "/vocab/ggml-vocab-llama-spm.gguf", out);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->n_vocab, 32000);
  EXPECT_EQ(last_done, r->n_tensors);
  EXPECT_GE(n_calls, r->n_tensors);
  auto m = Model::load(out);
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  EXPECT_EQ((*m)->hparams().n_vocab, 32000);
  EXPECT_EQ((*m)->file().find("tokenizer.ggml.tokens")->array_size(), 32000u);
  const double top1 = mean_top1(**m, 8);
  std::printf("llama-spm vocab: mean top-1 probability %.3f (uniform %.6f)\n", top1, 1.0 / 32000);
  EXPECT_GT(top1, 100.0 / 32000);
}

// ---- the streaming writer -----------------------------------------------------------------------------------

std::vector<uint8_t> pattern(size_t n, uint8_t salt) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 31 + salt);
  return v;
}

void add_common_metadata(gguf::Writer& w) {
  w.add_string("general.architecture", "llama");
  w.add_string_array("tokenizer.ggml.tokens", {"a", "b", "c"});
  w.add_f32("x.f", 0.25f);
}

TEST(GgufWriterStreaming, StreamedImageEqualsBytes) {
  // Three tensors whose sizes are not multiples of the alignment (padding in between).
  const std::vector<std::tuple<std::string, TensorType, std::vector<uint64_t>>> ts = {
      {"a", TensorType::kF32, {5}}, {"b", TensorType::kQ8_0, {64, 3}}, {"c", TensorType::kF16, {7, 2}}};
  gguf::Writer in_memory, streamed;
  add_common_metadata(in_memory);
  add_common_metadata(streamed);
  std::vector<std::vector<uint8_t>> data;
  for (size_t i = 0; i < ts.size(); ++i) {
    const auto& [name, type, shape] = ts[i];
    uint64_t n = 1;
    for (uint64_t d : shape) n *= d;
    data.push_back(pattern(n / gguf::type_traits(type).block_size * gguf::type_traits(type).block_bytes,
                           static_cast<uint8_t>(i)));
    ASSERT_TRUE(in_memory.add_tensor(name, type, shape, data.back()).is_ok());
    // The middle tensor is given up front, the others are produced while writing.
    if (i == 1) ASSERT_TRUE(streamed.add_tensor(name, type, shape, data.back()).is_ok());
    else ASSERT_TRUE(streamed.declare_tensor(name, type, shape).is_ok());
  }
  const std::vector<uint8_t> image = in_memory.bytes();
  EXPECT_EQ(image.size(), in_memory.file_size());
  EXPECT_EQ(streamed.file_size(), image.size());

  std::vector<size_t> produced;
  auto producer = [&](size_t index, const gguf::TensorDecl& decl, gguf::ByteSink& sink) -> Status {
    produced.push_back(index);
    EXPECT_EQ(decl.n_bytes, data[index].size());
    // In uneven pieces.
    for (size_t off = 0; off < data[index].size(); off += 3)
      CW_RETURN_IF_ERROR(sink.write(data[index].data() + off, std::min<size_t>(3, data[index].size() - off)));
    return Status::ok();
  };
  gguf::VectorSink mem;
  ASSERT_TRUE(streamed.write_to(mem, producer).is_ok());
  EXPECT_EQ(mem.bytes(), image);
  EXPECT_EQ(produced, (std::vector<size_t>{0, 2}));

  const std::string path = tmp("streamed.gguf");
  ASSERT_TRUE(streamed.write_streaming(path, producer).is_ok());
  EXPECT_EQ(slurp(path), image);
  ASSERT_TRUE(in_memory.write(tmp("in-memory.gguf")).is_ok());
  EXPECT_EQ(slurp(tmp("in-memory.gguf")), image);
  auto f = gguf::File::parse(image);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ(std::vector<uint8_t>(f.value()->tensors()[2].data, f.value()->tensors()[2].data + data[2].size()), data[2]);
}

TEST(GgufWriterStreaming, ProducerMistakesAndFailuresAreStatuses) {
  gguf::Writer w;
  add_common_metadata(w);
  ASSERT_TRUE(w.declare_tensor("t", TensorType::kF32, {8}).is_ok());
  EXPECT_EQ(w.declare_tensor("t", TensorType::kF32, {8}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w.declare_tensor("q", TensorType::kQ4_K, {100}).code(), StatusCode::kInvalidArgument);
  gguf::VectorSink sink;
  EXPECT_EQ(w.write_to(sink).code(), StatusCode::kInvalidArgument);  // declared, no producer
  auto short_writer = [](size_t, const gguf::TensorDecl&, gguf::ByteSink& s) { return s.write("abcd", 4); };
  EXPECT_EQ(w.write_to(sink, short_writer).code(), StatusCode::kInvalidArgument);
  auto long_writer = [](size_t, const gguf::TensorDecl&, gguf::ByteSink& s) {
    std::vector<uint8_t> b(40);
    return s.write(b.data(), b.size());
  };
  EXPECT_EQ(w.write_to(sink, long_writer).code(), StatusCode::kInvalidArgument);

  // A failing producer aborts the write and its partial file is removed.
  const std::string path = tmp("failed.gguf");
  auto failing = [](size_t, const gguf::TensorDecl&, gguf::ByteSink& s) -> Status {
    CW_RETURN_IF_ERROR(s.write("abcd", 4));
    return internal_error("generator failed");
  };
  Status s = w.write_streaming(path, failing);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "generator failed");
  EXPECT_FALSE(exists(path));

  auto ok = [](size_t, const gguf::TensorDecl&, gguf::ByteSink& s) {
    std::vector<uint8_t> b(32);
    return s.write(b.data(), b.size());
  };
  Status bad_path = w.write_streaming("/nonexistent-dir/x.gguf", ok);
  EXPECT_EQ(bad_path.code(), StatusCode::kNotFound);
  if (exists("/dev/full")) {
    EXPECT_EQ(w.write_streaming("/dev/full", ok).code(), StatusCode::kIoError);
  }
}

TEST(GgufWriterStreaming, AddValueCopiesEveryType) {
  const auto& v = small_vocab();
  gguf::Writer w;
  for (const auto& kv : v.metadata()) w.add_value(kv.key, kv.value);
  const auto image = w.bytes();
  auto f = gguf::File::parse(image);
  ASSERT_TRUE(f.is_ok());
  ASSERT_EQ((*f)->metadata().size(), v.metadata().size());
  for (size_t i = 0; i < v.metadata().size(); ++i) {
    EXPECT_EQ((*f)->metadata()[i].key, v.metadata()[i].key);
    expect_same_value(v.metadata()[i].value, (*f)->metadata()[i].value, std::string(v.metadata()[i].key));
  }
  // Byte-identical metadata section: the vocabulary image has no tensors, so the whole file matches.
  EXPECT_EQ(image, small_vocab_image());
}

}  // namespace
}  // namespace cw::model

#include <limits>
#include <span>

#include "kernels/cpu/dispatch.h"
#include "support/ref_forward.h"

namespace cw::model {
namespace {

// The optimised forward pass (every ISA available here, 1 and 2 threads, fp32 KV, prompt fed in two
// chunks) against the fp64 reference forward with the same activation rounding, on generated tiny models
// of every architecture and file type.
TEST(ReferenceF64, GeneratedModelsEveryArchTypeAndIsa) {
  std::vector<int32_t> tokens;
  for (int i = 0; i < 12; ++i) tokens.push_back(3 + (i * 97) % 500);
  const kernels::Isa detected = kernels::detected_isa();
  double worst = 0, worst_mean = 0;
  for (const char* arch : {"llama", "qwen2"}) {
    for (FileType ft : all_file_types()) {
      const std::string type = file_type_name(ft);
      const std::string out = tmp(std::string("ref_") + arch + "_" + type + ".gguf");
      auto made = make(arch, type, 5, out);
      ASSERT_TRUE(made.is_ok()) << made.status().to_string();
      auto m = Model::load(out);
      ASSERT_TRUE(m.is_ok()) << m.status().to_string();
      const std::vector<double> ref = cw::testing::reference_forward_f64(**m, tokens, 0, /*round_activations=*/true);
      double ref_scale = 0;
      for (double v : ref) ref_scale = std::max(ref_scale, std::fabs(v));
      for (int isa = 0; isa <= static_cast<int>(detected); ++isa) {
        kernels::set_isa(static_cast<kernels::Isa>(isa));
        for (int threads : {1, 2}) {
          Session s(**m, 64, KvType::kF32, threads);
          std::vector<float> a, b;
          ASSERT_TRUE(s.eval(std::span<const int32_t>(tokens.data(), 5), true, &a).is_ok());
          ASSERT_TRUE(s.eval(std::span<const int32_t>(tokens.data() + 5, tokens.size() - 5), true, &b).is_ok());
          a.insert(a.end(), b.begin(), b.end());
          ASSERT_EQ(a.size(), ref.size());
          double max_diff = 0, sum_diff = 0;
          for (size_t i = 0; i < a.size(); ++i) {
            max_diff = std::max(max_diff, std::fabs(a[i] - ref[i]));
            sum_diff += std::fabs(a[i] - ref[i]);
          }
          const double mean_diff = sum_diff / static_cast<double>(a.size());
          worst = std::max(worst, max_diff / ref_scale);
          worst_mean = std::max(worst_mean, mean_diff / ref_scale);
          // The engine rounds activations in fp32, the reference from fp64: where a value sits exactly on a
          // rounding tie of the 8/16-bit activation type (dequantized embeddings make exact ties common),
          // the two round apart and that position's logits move by ~1-2% of their scale. Wiring bugs (layer
          // order, RoPE, GQA, biases, chunking, threading) move them by far more. Kernel exactness is tested
          // separately against matmul_ref to 1e-5.
          EXPECT_LE(max_diff, 5e-2 * ref_scale) << arch << " " << type << " " << kernels::isa_name(static_cast<kernels::Isa>(isa))
                                                << " threads " << threads;
          EXPECT_LE(mean_diff, 5e-3 * ref_scale) << arch << " " << type << " " << kernels::isa_name(static_cast<kernels::Isa>(isa))
                                                 << " threads " << threads;
        }
      }
      kernels::set_isa(detected);
    }
  }
  std::printf("forward vs fp64 reference over all archs, types, ISAs: worst max |diff| %.3g, worst mean |diff| %.3g "
              "(of the logit scale)\n", worst, worst_mean);
}

// A NaN (or inf) in an F32 norm weight of a quantized model: the normed activations are non-finite, and the
// activation quantizers (Q8_0 for q8_0, Q8_K for the Q4_K mix) must carry that into the dot products (d =
// NaN) instead of turning it into finite codes, so that the logits check stops the run naming the tensor,
// on every ISA, for a prefill (GEMM) and a one-token (GEMV) step.
TEST(NonFinite, NaNInANormWeightOfAQuantizedModelReachesTheLogits) {
  const std::string tensor = "blk.0.attn_norm.weight";
  const std::string want = "the model's weights are corrupt: tensor '" + tensor + "' holds NaN/Inf values";
  const kernels::Isa detected = kernels::detected_isa();
  for (const char* type : {"q8_0", "q4_k_m"}) {
    for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
      SCOPED_TRACE(std::string(type) + (std::isnan(bad) ? " NaN" : " inf"));
      const std::string clean = tmp(std::string("nonfinite_") + type + ".gguf");
      auto made = make("llama", type, 3, clean);
      ASSERT_TRUE(made.is_ok()) << made.status().to_string();
      std::vector<uint8_t> bytes = slurp(clean);
      {
        auto f = gguf::File::parse(bytes, "tiny");
        ASSERT_TRUE(f.is_ok()) << f.status().to_string();
        const gguf::TensorInfo* t = (*f)->find_tensor(tensor);
        ASSERT_NE(t, nullptr);
        ASSERT_EQ(t->type, gguf::TensorType::kF32);
        std::memcpy(bytes.data() + (t->data - bytes.data()) + 7 * sizeof(float), &bad, sizeof(float));
      }
      const std::string patched = tmp(std::string("nonfinite_") + type + "_patched.gguf");
      std::ofstream(patched, std::ios::binary)
          .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
      auto m = Model::load(patched);
      ASSERT_TRUE(m.is_ok()) << m.status().to_string();
      const std::vector<int32_t> prompt = {1, 300, 301, 302};
      for (int isa = 0; isa <= static_cast<int>(detected); ++isa) {
        kernels::set_isa(static_cast<kernels::Isa>(isa));
        SCOPED_TRACE(kernels::isa_name(static_cast<kernels::Isa>(isa)));
        Session s(**m, 64);
        std::vector<float> logits;
        const Status prefill = s.eval(prompt, false, &logits);
        EXPECT_EQ(prefill.code(), StatusCode::kDataLoss);
        EXPECT_EQ(prefill.message(), want);
        Session one(**m, 64);
        const Status step = one.eval(std::span<const int32_t>(prompt.data(), 1), false, &logits);
        EXPECT_EQ(step.code(), StatusCode::kDataLoss);
        EXPECT_EQ(step.message(), want);
      }
      kernels::set_isa(detected);
    }
  }
}

}  // namespace
}  // namespace cw::model
