// Forward pass against llama.cpp's references in ../shared/data/reference (skips when absent).
#include "model/model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "base/json_value.h"
#include "support/testing.h"

namespace cw::model {
namespace {

struct RefStep {
  int32_t token;
  std::vector<std::pair<int32_t, float>> top;
};
struct RefCase {
  std::vector<int32_t> prompt;
  std::vector<RefStep> steps;
};

std::vector<RefCase> load_reference(const std::string& path) {
  std::ifstream in(path);
  std::vector<RefCase> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = JsonValue::parse(line);
    EXPECT_TRUE(j.is_ok()) << j.status().to_string();
    if (!j.is_ok()) continue;
    RefCase c;
    for (const auto& t : j->get("prompt_tokens")->items()) c.prompt.push_back(static_cast<int32_t>(t.as_number()));
    for (const auto& s : j->get("steps")->items()) {
      RefStep st;
      st.token = static_cast<int32_t>(s.get("token")->as_number());
      for (const auto& p : s.get("top")->items())
        st.top.emplace_back(static_cast<int32_t>(p.items()[0].as_number()), static_cast<float>(p.items()[1].as_number()));
      c.steps.push_back(std::move(st));
    }
    out.push_back(std::move(c));
  }
  return out;
}

int32_t argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// Teacher-forced comparison: feeds the reference tokens and compares the reference's top-5 logits at every
// step, and the greedy choice wherever the reference's top-2 margin exceeds `margin`.
struct CompareStats {
  float max_err = 0;
  int64_t n_logits = 0, n_within = 0;  // top-5 logits compared / within the tolerance
  int n_argmax_checked = 0, n_argmax_mismatch = 0;
};

CompareStats compare_with_reference(const Model& m, const std::vector<RefCase>& cases, float tol, float margin) {
  CompareStats st;
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const RefCase& c = cases[ci];
    Session s(m, 512);
    std::vector<float> logits;
    EXPECT_TRUE(s.eval(c.prompt, false, &logits).is_ok());
    for (size_t k = 0; k < c.steps.size(); ++k) {
      const RefStep& step = c.steps[k];
      for (const auto& [id, ref] : step.top) {
        const float err = std::fabs(logits[static_cast<size_t>(id)] - ref);
        st.max_err = std::max(st.max_err, err);
        ++st.n_logits;
        st.n_within += err <= tol;
      }
      if (step.top.size() >= 2 && step.top[0].second - step.top[1].second > margin) {
        ++st.n_argmax_checked;
        if (argmax(logits) != step.token) {
          ++st.n_argmax_mismatch;
          ADD_FAILURE() << "case " << ci << " step " << k << ": greedy " << argmax(logits) << " != " << step.token;
        }
      }
      EXPECT_TRUE(s.eval(std::span<const int32_t>(&step.token, 1), false, &logits).is_ok());
    }
  }
  return st;
}

// llama.cpp keeps K/V in fp16: a one-ulp difference in a cached fp16 value (from a different fp32
// summation order upstream) moves later logits by ~1e-3, and these differences grow along the 128 steps.
// Measured here: early steps agree to ~1e-5, the worst step to ~1e-2. We assert what holds robustly: every
// greedy token identical, >= 65% of the top-5 logits within 1e-3, all within 2e-2. (Issue 3 asks for all
// within 1e-3: open, see the issue note.)
TEST(Stories260K, GreedyMatchesLlamaCpp) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = Model::load(dir + "/models/stories260K.gguf");
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  auto cases = load_reference(dir + "/reference/stories260K-greedy.jsonl");
  ASSERT_EQ(cases.size(), 10u);
  CompareStats st = compare_with_reference(**m, cases, 1e-3f, 0.0f);
  std::printf("stories260K vs llama.cpp: max |logit diff| %.3g, %.2f%% of %lld top-5 logits within 1e-3, "
              "%d/%d greedy tokens identical\n",
              st.max_err, 100.0 * static_cast<double>(st.n_within) / static_cast<double>(st.n_logits),
              static_cast<long long>(st.n_logits), st.n_argmax_checked - st.n_argmax_mismatch, st.n_argmax_checked);
  EXPECT_EQ(st.n_argmax_mismatch, 0);
  EXPECT_GE(static_cast<double>(st.n_within), 0.65 * static_cast<double>(st.n_logits));
  EXPECT_LE(st.max_err, 2e-2f);
}

TEST(Stories260K, ChunkedPrefillEqualsOneShot) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = Model::load(dir + "/models/stories260K.gguf");
  ASSERT_TRUE(m.is_ok());
  std::vector<int32_t> prompt;
  for (int i = 0; i < 300; ++i) prompt.push_back(3 + (i * 37) % 500);
  Session one(**m, 512, KvType::kF32);
  std::vector<float> ref;
  ASSERT_TRUE(one.eval(prompt, true, &ref).is_ok());
  const int64_t V = (*m)->hparams().n_vocab;
  for (int ub : {1, 7, 32, 512}) {
    Session s(**m, 512, KvType::kF32);
    float max_diff = 0;
    for (size_t p = 0; p < prompt.size(); p += static_cast<size_t>(ub)) {
      size_t len = std::min(prompt.size() - p, static_cast<size_t>(ub));
      std::vector<float> logits;
      ASSERT_TRUE(s.eval(std::span<const int32_t>(prompt.data() + p, len), true, &logits).is_ok());
      for (size_t i = 0; i < logits.size(); ++i)
        max_diff = std::max(max_diff, std::fabs(logits[i] - ref[p * static_cast<size_t>(V) + i]));
    }
    EXPECT_LE(max_diff, 1e-4f) << "ubatch " << ub;
  }
}

TEST(Session, RejectsBadTokensAndOverflow) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = Model::load(dir + "/models/stories260K.gguf");
  ASSERT_TRUE(m.is_ok());
  Session s(**m, 8);
  std::vector<float> logits;
  std::vector<int32_t> bad = {1, 100000};
  EXPECT_EQ(s.eval(bad, false, &logits).code(), StatusCode::kInvalidArgument);
  std::vector<int32_t> long_prompt(9, 5);
  EXPECT_EQ(s.eval(long_prompt, false, &logits).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(s.n_past(), 0);
}

}  // namespace
}  // namespace cw::model

namespace cw::model {
namespace {

// synth-tiny: the same random model in 13 weight types, teacher-forced on llama.cpp's greedy tokens.
// llama.cpp quantizes activations to 8 bits inside quantized dot products; the reference forward keeps
// activations through the same types (kernels::activation_type), but an activation that lands on the
// other side of a rounding boundary (from fp32 summation-order noise upstream) flips one code, so
// agreement is to rounding noise, not bit-exact. Tolerances are absolute logit errors; the logit range of
// these files is ~40, so 0.8 is 2% of it. Measured maxima: F32 0.007, F16 0.014, BF16 0.09, quantized
// 0.30-0.62. llama.cpp itself, run on this machine, is 0.007 / 0.014 / 0.066 away from these files for
// F32 / F16 / BF16 (they were generated on another CPU): see docs/perf.md, "Correctness".
struct SynthCase {
  const char* type;
  float tol;
};

class SynthTiny : public ::testing::TestWithParam<SynthCase> {};

TEST_P(SynthTiny, TeacherForcedLogitsMatchLlamaCpp) {
  CW_REQUIRE_SHARED_DATA(dir);
  const SynthCase& p = GetParam();
  auto m = Model::load(dir + "/models/synth-tiny/seed1-" + p.type + ".gguf");
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  auto cases = load_reference(dir + "/reference/synth-tiny-seed1-" + p.type + "-greedy.jsonl");
  ASSERT_FALSE(cases.empty());
  CompareStats st = compare_with_reference(**m, cases, p.tol, p.tol);
  std::printf("synth-tiny %-7s: max |logit diff| %.4f (tol %.3f), %d/%d greedy tokens identical (margin > tol)\n",
              p.type, st.max_err, p.tol, st.n_argmax_checked - st.n_argmax_mismatch, st.n_argmax_checked);
  EXPECT_LE(st.max_err, p.tol);
  EXPECT_EQ(st.n_logits, st.n_within);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, SynthTiny,
                         ::testing::Values(SynthCase{"F32", 1e-2f}, SynthCase{"F16", 2e-2f}, SynthCase{"BF16", 0.15f},
                                           SynthCase{"Q8_0", 0.8f}, SynthCase{"Q4_0", 0.8f}, SynthCase{"Q4_1", 0.8f},
                                           SynthCase{"Q5_0", 0.8f}, SynthCase{"Q5_1", 0.8f}, SynthCase{"Q2_K", 0.8f},
                                           SynthCase{"Q3_K_M", 0.8f}, SynthCase{"Q4_K_M", 0.8f},
                                           SynthCase{"Q5_K_M", 0.8f}, SynthCase{"Q6_K", 0.8f}),
                         [](const auto& info) { return std::string(info.param.type); });

}  // namespace
}  // namespace cw::model

#include "support/ref_forward.h"

namespace cw::model {
namespace {

// Session (fp32, fp32 KV) against the fp64 reference, at position 0 and at offset 1,000,000: RoPE angles
// come from the exact position, so long-range positions lose nothing.
TEST(ReferenceF64, Stories260KAtPositionZeroAndOneMillion) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = Model::load(dir + "/models/stories260K.gguf");
  ASSERT_TRUE(m.is_ok());
  std::vector<int32_t> tokens = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426};
  for (double offset : {0.0, 1e6}) {
    std::vector<double> ref = testing::reference_forward_f64(**m, tokens, offset);
    Session s(**m, 64, KvType::kF32);
    s.set_position_offset(offset);
    std::vector<float> logits;
    ASSERT_TRUE(s.eval(tokens, true, &logits).is_ok());
    ASSERT_EQ(logits.size(), ref.size());
    double max_diff = 0;
    for (size_t i = 0; i < ref.size(); ++i) max_diff = std::max(max_diff, std::fabs(logits[i] - ref[i]));
    std::printf("stories260K vs fp64 reference at offset %.0f: max |diff| = %.3g\n", offset, max_diff);
    EXPECT_LE(max_diff, 1e-3) << "offset " << offset;
  }
}

}  // namespace
}  // namespace cw::model

#include <fstream>

#include "gguf/writer.h"

namespace cw::model {
namespace {

TEST(ModelLoad, UnknownArchitectureListsSupported) {
  gguf::Writer w;
  w.add_string("general.architecture", "gptj");
  auto bytes = w.bytes();
  auto f = gguf::File::parse(bytes);
  ASSERT_TRUE(f.is_ok());
  auto m = Model::from_file(std::move(*f));
  ASSERT_FALSE(m.is_ok());
  EXPECT_EQ(m.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(m.status().message().find("gptj"), std::string::npos);
  EXPECT_NE(m.status().message().find("llama, qwen2"), std::string::npos) << m.status().message();
}

TEST(ModelLoad, MissingMetadataAndTensorsAreErrors) {
  gguf::Writer w;
  w.add_string("general.architecture", "llama").add_u32("llama.embedding_length", 64);
  auto bytes = w.bytes();
  auto m = Model::from_file(std::move(*gguf::File::parse(bytes)));
  ASSERT_FALSE(m.is_ok());
  EXPECT_NE(m.status().message().find("block_count"), std::string::npos) << m.status().message();
}

TEST(ModelLoad, TruncatedModelIsAnError) {
  CW_REQUIRE_SHARED_DATA(dir);
  std::ifstream in(dir + "/models/stories260K.gguf", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t keep : {bytes.size() / 2, bytes.size() - 1, size_t{100}}) {
    std::string path = testing::temp_dir() + "/truncated.gguf";
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(keep));
    auto m = Model::load(path);
    ASSERT_FALSE(m.is_ok()) << keep;
    EXPECT_EQ(m.status().code(), StatusCode::kDataLoss) << m.status().to_string();
  }
}

// A llama header with layer 0's attention tensors (zero bytes; only their shapes matter to read_hparams):
// n_embd 64, attn_q 64 rows (8 heads of 8), attn_k 32 rows (4 kv heads of 8).
Result<HParams> heads_hparams(int64_t head_count, int64_t head_count_kv, bool with_rope_dims,
                              bool with_tensors = true) {
  gguf::Writer w;
  w.add_string("general.architecture", "llama").add_u32("llama.embedding_length", 64);
  w.add_u32("llama.block_count", 1).add_u32("llama.feed_forward_length", 128);
  w.add_u32("llama.attention.head_count", static_cast<uint32_t>(head_count));
  w.add_u32("llama.attention.head_count_kv", static_cast<uint32_t>(head_count_kv));
  if (with_rope_dims) w.add_u32("llama.rope.dimension_count", 8);
  const auto add = [&](const char* name, uint64_t n_in, uint64_t n_out) {
    const Status s = w.add_tensor(name, gguf::TensorType::kF32, {n_in, n_out}, std::vector<uint8_t>(n_in * n_out * 4));
    EXPECT_TRUE(s.is_ok()) << s.to_string();
  };
  add("token_embd.weight", 64, 16);
  if (with_tensors) {
    add("blk.0.attn_q.weight", 64, 64);
    add("blk.0.attn_k.weight", 64, 32);
  }
  static std::vector<uint8_t> image;  // the File views it
  image = w.bytes();
  auto f = gguf::File::parse(image);
  if (!f.is_ok()) return f.status();
  return read_hparams(**f);
}

// Issue 11: a wrong head_count was blamed on head_count_kv. The attention tensors decide which key is
// wrong, and the message names it with the value that would fit.
TEST(HParamsHeads, TheWrongKeyIsBlamed) {
  auto ok = heads_hparams(8, 4, true);
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(ok->head_dim, 8);
  struct Case {
    int64_t head_count, head_count_kv;
    bool rope_dims;
    std::string blamed, fix;
  };
  const std::vector<Case> cases = {
      {2, 4, true, "'llama.attention.head_count' = 2", "'llama.attention.head_count' = 8"},  // kv > head_count
      {7, 4, false, "'llama.attention.head_count' = 7", "'llama.attention.head_count' = 8"},  // 7 does not divide 64
      {4, 4, true, "'llama.attention.head_count' = 4", "'llama.attention.head_count' = 8"},
      {8, 3, false, "'llama.attention.head_count_kv' = 3", "'llama.attention.head_count_kv' = 4"},
      {8, 16, true, "'llama.attention.head_count_kv' = 16", "'llama.attention.head_count_kv' = 4"},
  };
  for (const Case& c : cases) {
    auto r = heads_hparams(c.head_count, c.head_count_kv, c.rope_dims);
    ASSERT_FALSE(r.is_ok()) << c.head_count << "/" << c.head_count_kv;
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    const std::string& msg = r.status().message();
    EXPECT_EQ(msg.rfind("metadata " + c.blamed + " does not match the attention tensors", 0), 0u) << msg;
    EXPECT_NE(msg.find("they fit " + c.fix), std::string::npos) << msg;
  }
  // Two single-key fixes and no rope dimension count to choose: both are named.
  auto both = heads_hparams(2, 4, false);
  ASSERT_FALSE(both.is_ok());
  EXPECT_NE(both.status().message().find(
                "'llama.attention.head_count' = 8 or 'llama.attention.head_count_kv' = 1 would fit"),
            std::string::npos)
      << both.status().message();
  // Without the tensors to decide: the failing relation, naming the key on each side.
  auto indivisible = heads_hparams(7, 7, false, /*with_tensors=*/false);
  ASSERT_FALSE(indivisible.is_ok());
  EXPECT_EQ(indivisible.status().message(),
            "metadata 'llama.attention.head_count' = 7 does not divide 'llama.embedding_length' = 64 (the head dim is "
            "llama.embedding_length / head_count)");
  auto kv_over = heads_hparams(4, 8, false, /*with_tensors=*/false);
  ASSERT_FALSE(kv_over.is_ok());
  EXPECT_EQ(kv_over.status().message().rfind("metadata 'llama.attention.head_count_kv' = 8 does not divide "
                                             "'llama.attention.head_count' = 4",
                                             0),
            0u)
      << kv_over.status().message();
}

TEST(ModelLoad, WrongTensorShapeIsAnError) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto f = gguf::File::open(dir + "/models/stories260K.gguf");
  ASSERT_TRUE(f.is_ok());
  // Re-write the model with one layer's attn_q transposed to the wrong shape.
  gguf::Writer w;
  for (const auto& kv : (*f)->metadata()) {
    if (kv.value.is_array()) continue;  // not needed for loading weights
    if (auto s = kv.value.as_string(); s.is_ok()) w.add_string(kv.key, *s);
    else if (auto i = kv.value.as_int(); i.is_ok()) w.add_i64(kv.key, *i);
    else if (auto d = kv.value.as_float(); d.is_ok()) w.add_f32(kv.key, static_cast<float>(*d));
  }
  for (const auto& t : (*f)->tensors()) {
    std::vector<uint64_t> shape = t.shape;
    if (t.name == "blk.2.attn_q.weight") shape = {shape[0] / 2, shape[1] * 2};
    ASSERT_TRUE(w.add_tensor(t.name, t.type, shape, std::vector<uint8_t>(t.data, t.data + t.n_bytes)).is_ok());
  }
  auto bytes = w.bytes();
  auto m = Model::from_file(std::move(*gguf::File::parse(bytes)));
  ASSERT_FALSE(m.is_ok());
  EXPECT_NE(m.status().message().find("blk.2.attn_q.weight"), std::string::npos) << m.status().message();
}

}  // namespace
}  // namespace cw::model

namespace cw::model {
namespace {

TEST(SessionCreate, RejectsContextsThatCannotFit) {
  CW_REQUIRE_SHARED_DATA(dir);
  auto m = Model::load(dir + "/models/stories260K.gguf");
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ(Session::create(**m, 0).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(Session::create(**m, (int64_t{1} << 24) + 1).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(Session::create(**m, 64, KvType::kF16, 0).status().code(), StatusCode::kOutOfRange);
  auto ok = Session::create(**m, 64, KvType::kF16, 2);
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ((*ok)->n_ctx(), 64);
  // 5 layers x 4 kv heads x 8 dims x 2 (K, V) x 2 bytes per position.
  EXPECT_EQ(Session::kv_bytes((*m)->hparams(), 64, KvType::kF16), 64u * 5 * 4 * 8 * 2 * 2);
}

}  // namespace
}  // namespace cw::model
