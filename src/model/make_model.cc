#include "model/make_model.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <thread>

#include "gguf/writer.h"
#include "kernels/cpu/quant_ref.h"
#include "tokenizer/tokenizer.h"

namespace cw::model {

namespace {

using gguf::TensorType;

// ---- names -----------------------------------------------------------------------------------------------

struct FileTypeInfo {
  FileType ft;
  const char* name;
  TensorType base;
};

constexpr FileTypeInfo kFileTypes[] = {
    {FileType::kAllF32, "F32", TensorType::kF32},     {FileType::kF16, "F16", TensorType::kF16},
    {FileType::kBF16, "BF16", TensorType::kBF16},     {FileType::kQ8_0, "Q8_0", TensorType::kQ8_0},
    {FileType::kQ4_0, "Q4_0", TensorType::kQ4_0},     {FileType::kQ4_1, "Q4_1", TensorType::kQ4_1},
    {FileType::kQ5_0, "Q5_0", TensorType::kQ5_0},     {FileType::kQ5_1, "Q5_1", TensorType::kQ5_1},
    {FileType::kQ2_K, "Q2_K", TensorType::kQ2_K},     {FileType::kQ3_K_S, "Q3_K_S", TensorType::kQ3_K},
    {FileType::kQ3_K_M, "Q3_K_M", TensorType::kQ3_K}, {FileType::kQ3_K_L, "Q3_K_L", TensorType::kQ3_K},
    {FileType::kQ4_K_S, "Q4_K_S", TensorType::kQ4_K}, {FileType::kQ4_K_M, "Q4_K_M", TensorType::kQ4_K},
    {FileType::kQ5_K_S, "Q5_K_S", TensorType::kQ5_K}, {FileType::kQ5_K_M, "Q5_K_M", TensorType::kQ5_K},
    {FileType::kQ6_K, "Q6_K", TensorType::kQ6_K},
};

const FileTypeInfo& info(FileType ft) {
  for (const auto& i : kFileTypes)
    if (i.ft == ft) return i;
  CW_CHECK_MSG(false, "unknown FileType " + std::to_string(static_cast<uint32_t>(ft)));
  return kFileTypes[0];
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Shapes: (n_embd, n_layer, n_head, n_head_kv, n_ff), context length.
const ModelShape kShapes[] = {
    {"tiny", 256, 2, 4, 2, 512, 2048},
    {"0.5b", 896, 24, 14, 2, 4864, 4096},   // Qwen2.5-0.5B-like
    {"1b", 2048, 16, 32, 8, 8192, 4096},    // Llama-3.2-1B-like
    {"3b", 3072, 28, 24, 8, 8192, 4096},    // Llama-3.2-3B-like
    {"8b", 4096, 32, 32, 8, 14336, 4096},   // Llama-3.1-8B-like
    {"minilm", 384, 6, 12, 12, 1536, 512},  // all-MiniLM-L6-like (for --arch bert)
};

const char* const kArchs[] = {"llama", "qwen2", "bert"};

struct ArchDefaults {
  double rope_freq_base;
  double rms_eps;
  bool qkv_bias;
};
ArchDefaults arch_defaults(std::string_view arch) {
  if (arch == "qwen2") return {1000000.0, 1e-6, true};
  return {10000.0, 1e-5, false};
}

bool is_quantized(TensorType t) {
  return t != TensorType::kF32 && t != TensorType::kF16 && t != TensorType::kBF16;
}

uint64_t block_size(TensorType t) { return gguf::type_traits(t).block_size; }

// ---- weights ---------------------------------------------------------------------------------------------

// Output projection gain: with std 1/sqrt(n_embd) the logits have std ~1 and, over a 32k vocabulary, the
// top-1 probability averages ~0.1%; a gain of 4 (logit std ~4) gives peaked distributions (tens of percent),
// closer to what trained models produce and what greedy / sampling tests need.
constexpr float kOutputGain = 4.0f;
constexpr float kBiasStd = 0.1f;

uint64_t mix64(uint64_t z) {  // splitmix64's finalizer
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001B3ull;
  }
  return h;
}

// Fills row `row` of a tensor with approximate N(0, stddev^2) values. The stream of a row depends only on
// (seed, tensor name, row): identical whatever the thread count or chunking. Each value is an Irwin-Hall
// sum of four 16-bit uniforms from one splitmix64 output, rescaled to unit variance (support +-3.46): a
// smooth, cheap stand-in for a normal (a Box-Muller draw costs ~10x more and 8B models have 8e9 values).
void fill_row(uint64_t seed, uint64_t name_hash, uint64_t row, float stddev, float* out, int64_t n) {
  uint64_t state = mix64(mix64(seed + 0x9E3779B97F4A7C15ull) ^ name_hash) ^ mix64(row * 0xD1B54A32D192ED03ull + 1);
  const double scale = std::sqrt(3.0) * stddev;
  for (int64_t i = 0; i < n; ++i) {
    state += 0x9E3779B97F4A7C15ull;
    const uint64_t r = mix64(state);
    const uint64_t sum = (r & 0xFFFF) + ((r >> 16) & 0xFFFF) + ((r >> 32) & 0xFFFF) + (r >> 48);
    const double u = (static_cast<double>(sum) + 2.0) / 65536.0;  // sum of four U(0,1): mean 2, variance 1/3
    out[i] = static_cast<float>((u - 2.0) * scale);
  }
}

constexpr size_t kChunkBytes = size_t{16} << 20;  // output bytes per chunk of rows

// Streams one planned tensor: chunks of rows are generated and quantized by n_threads workers (rows are
// handed out through an atomic counter), then written in order.
Status produce_tensor(const PlannedTensor& t, uint64_t seed, int n_threads, gguf::ByteSink& sink,
                      const std::function<void(uint64_t)>& on_chunk) {
  const kernels::QuantTraits* q = kernels::quant_traits(static_cast<uint32_t>(t.type));
  CW_CHECK_MSG(q != nullptr && q->quantize != nullptr, "no quantizer for " + std::string(gguf::type_traits(t.type).name));
  const auto ne0 = static_cast<int64_t>(t.shape[0]);
  const int64_t n_rows = t.shape.size() > 1 ? static_cast<int64_t>(t.shape[1]) : 1;
  const auto row_bytes = static_cast<size_t>(kernels::quant_row_bytes(*q, ne0));
  const int64_t rows_per_chunk = std::clamp<int64_t>(static_cast<int64_t>(kChunkBytes / row_bytes), 1, n_rows);
  std::vector<uint8_t> buffer(static_cast<size_t>(rows_per_chunk) * row_bytes);
  const uint64_t name_hash = fnv1a(t.name);

  auto make_rows = [&](int64_t r0, int64_t nr, std::atomic<int64_t>* next) {
    std::vector<float> row(static_cast<size_t>(ne0));
    for (int64_t r = next->fetch_add(1); r < nr; r = next->fetch_add(1)) {
      if (t.stddev == 0) {
        std::fill(row.begin(), row.end(), t.fill);
      } else {
        fill_row(seed, name_hash, static_cast<uint64_t>(r0 + r), t.stddev, row.data(), ne0);
      }
      q->quantize(row.data(), buffer.data() + static_cast<size_t>(r) * row_bytes, ne0);
    }
  };

  for (int64_t r0 = 0; r0 < n_rows; r0 += rows_per_chunk) {
    const int64_t nr = std::min(rows_per_chunk, n_rows - r0);
    std::atomic<int64_t> next{0};
    // Small chunks are not worth a thread start (~tens of microseconds).
    const int64_t n_work = std::min<int64_t>(n_threads, std::max<int64_t>(1, nr * ne0 / 65536));
    std::vector<std::thread> workers;
    for (int64_t w = 1; w < n_work; ++w) workers.emplace_back(make_rows, r0, nr, &next);
    make_rows(r0, nr, &next);
    for (auto& w : workers) w.join();
    const size_t n = static_cast<size_t>(nr) * row_bytes;
    CW_RETURN_IF_ERROR(sink.write(buffer.data(), n));
    if (on_chunk) on_chunk(n);
  }
  return Status::ok();
}

}  // namespace

// ---- names -----------------------------------------------------------------------------------------------

const std::vector<FileType>& all_file_types() {
  static const std::vector<FileType> kAll = [] {
    std::vector<FileType> v;
    for (const auto& i : kFileTypes) v.push_back(i.ft);
    return v;
  }();
  return kAll;
}

Result<FileType> file_type_from_name(std::string_view name) {
  for (const auto& i : kFileTypes)
    if (iequals(name, i.name)) return i.ft;
  return invalid_argument("unknown type '" + std::string(name) + "' (supported: " + supported_file_types() + ")");
}

const char* file_type_name(FileType t) { return info(t).name; }

std::string supported_file_types() {
  std::string s;
  for (const auto& i : kFileTypes) s += (s.empty() ? "" : ", ") + lower(i.name);
  return s;
}

TensorType base_tensor_type(FileType t) { return info(t).base; }

Result<ModelShape> model_shape(std::string_view name) {
  for (const auto& s : kShapes)
    if (iequals(name, s.name)) return s;
  return invalid_argument("unknown shape '" + std::string(name) + "' (supported: " + supported_shapes() + ")");
}

std::string supported_shapes() {
  std::string s;
  for (const auto& sh : kShapes) s += (s.empty() ? "" : ", ") + sh.name;
  return s;
}

Status check_make_arch(std::string_view arch) {
  for (const char* a : kArchs)
    if (arch == a) return Status::ok();
  return invalid_argument("unknown architecture '" + std::string(arch) + "' (supported: " + supported_make_archs() + ")");
}

std::string supported_make_archs() {
  std::string s;
  for (const char* a : kArchs) s += (s.empty() ? "" : ", ") + std::string(a);
  return s;
}

// ---- type rules ------------------------------------------------------------------------------------------
//
// These follow llama.cpp's quantizer (llama_tensor_get_type, for dense llama/qwen2 models without an
// importance matrix), restated:
//  - F32 / F16 / BF16 files: every 2-D weight has the base type (as convert_hf_to_gguf writes them).
//  - norms and biases (1-D) are always F32.
//  - quantized files:
//    output.weight: Q8_0 if ne0 is not a multiple of the base type's block, else Q6_K (Q8_0 stays Q8_0).
//    token_embd.weight: the base type.
//    attn_v:  Q2_K -> Q4_K if n_head/n_head_kv >= 4 else Q3_K;  Q3_K_M -> Q5_K in layers 0-1, else Q4_K;
//             Q3_K_L -> Q5_K;  Q4_K_M, Q5_K_M -> Q6_K where more_bits(layer);  Q4_K_S -> Q5_K in layers 0-3.
//    ffn_down: Q2_K -> Q3_K;  Q3_K_M -> Q5_K in the first n_layer/16 layers, else Q4_K;  Q3_K_L -> Q5_K;
//             Q4_K_M, Q5_K_M -> Q6_K where more_bits(layer);  Q4_K_S -> Q5_K in the first n_layer/8 layers.
//    attn_output: Q2_K -> Q3_K;  Q3_K_M -> Q4_K;  Q3_K_L -> Q5_K.
//    everything else (attn_q, attn_k, ffn_gate, ffn_up): the base type.
//    more_bits(i) = i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2   (first/last eighth, every third between)
//  - fallback when ne0 is not a multiple of the chosen type's block (e.g. n_embd 896 of the 0.5b shape
//    with 256-element k-quant blocks): Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0 as llama.cpp does;
//    Q2_K -> Q4_0 and Q3_K -> Q4_1 as llama.cpp did before IQ4_NL existed (today it picks IQ4_NL, which
//    chunkwise does not implement); F16 if even that does not fit.
// Not reproduced (no effect on these shapes/architectures): the 70B attn_v bump, MoE and Falcon rules,
// the imatrix-only rules, and the IQ* file types.
TensorType tensor_type_for(FileType ft, TensorRole role, int64_t layer, int64_t n_layer, int64_t n_gqa, int64_t ne0) {
  switch (role) {
    case TensorRole::kOutputNorm:
    case TensorRole::kAttnNorm:
    case TensorRole::kFfnNorm:
    case TensorRole::kBias: return TensorType::kF32;
    default: break;
  }
  TensorType t = base_tensor_type(ft);
  if (!is_quantized(t)) return t;
  const auto more_bits = [&] {
    return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
  };
  using F = FileType;
  switch (role) {
    case TensorRole::kOutput:
      if (static_cast<uint64_t>(ne0) % block_size(t) != 0) t = TensorType::kQ8_0;
      else if (t != TensorType::kQ8_0) t = TensorType::kQ6_K;
      break;
    case TensorRole::kAttnV:
      if (ft == F::kQ2_K) t = n_gqa >= 4 ? TensorType::kQ4_K : TensorType::kQ3_K;
      else if (ft == F::kQ3_K_M) t = layer < 2 ? TensorType::kQ5_K : TensorType::kQ4_K;
      else if (ft == F::kQ3_K_L) t = TensorType::kQ5_K;
      else if ((ft == F::kQ4_K_M || ft == F::kQ5_K_M) && more_bits()) t = TensorType::kQ6_K;
      else if (ft == F::kQ4_K_S && layer < 4) t = TensorType::kQ5_K;
      break;
    case TensorRole::kFfnDown:
      if (ft == F::kQ2_K) t = TensorType::kQ3_K;
      else if (ft == F::kQ3_K_M) t = layer < n_layer / 16 ? TensorType::kQ5_K : TensorType::kQ4_K;
      else if (ft == F::kQ3_K_L) t = TensorType::kQ5_K;
      else if ((ft == F::kQ4_K_M || ft == F::kQ5_K_M) && more_bits()) t = TensorType::kQ6_K;
      else if (ft == F::kQ4_K_S && layer < n_layer / 8) t = TensorType::kQ5_K;
      break;
    case TensorRole::kAttnOut:
      if (ft == F::kQ2_K) t = TensorType::kQ3_K;
      else if (ft == F::kQ3_K_M) t = TensorType::kQ4_K;
      else if (ft == F::kQ3_K_L) t = TensorType::kQ5_K;
      break;
    default: break;
  }
  if (static_cast<uint64_t>(ne0) % block_size(t) != 0) {
    switch (t) {
      case TensorType::kQ2_K: t = TensorType::kQ4_0; break;
      case TensorType::kQ3_K: t = TensorType::kQ4_1; break;
      case TensorType::kQ4_K: t = TensorType::kQ5_0; break;
      case TensorType::kQ5_K: t = TensorType::kQ5_1; break;
      case TensorType::kQ6_K: t = TensorType::kQ8_0; break;
      default: t = TensorType::kF16; break;
    }
    if (static_cast<uint64_t>(ne0) % block_size(t) != 0) t = TensorType::kF16;
  }
  return t;
}

std::vector<PlannedTensor> plan_tensors(std::string_view arch, const ModelShape& s, FileType ft, int64_t n_vocab) {
  const ArchDefaults ad = arch_defaults(arch);
  const int64_t head_dim = s.n_embd / s.n_head;
  const int64_t n_embd_kv = head_dim * s.n_head_kv;
  const int64_t n_gqa = s.n_head / s.n_head_kv;
  const auto inv_sqrt = [](int64_t n) { return static_cast<float>(1.0 / std::sqrt(static_cast<double>(n))); };
  std::vector<PlannedTensor> out;
  auto add = [&](std::string name, TensorRole role, int64_t layer, int64_t ne0, int64_t ne1, float stddev) {
    PlannedTensor t;
    t.name = std::move(name);
    t.role = role;
    t.type = tensor_type_for(ft, role, layer, s.n_layer, n_gqa, ne0);
    t.shape = ne1 > 0 ? std::vector<uint64_t>{static_cast<uint64_t>(ne0), static_cast<uint64_t>(ne1)}
                      : std::vector<uint64_t>{static_cast<uint64_t>(ne0)};
    t.stddev = stddev;
    t.fill = stddev == 0 ? 1.0f : 0.0f;
    out.push_back(std::move(t));
  };
  add("token_embd.weight", TensorRole::kTokEmbd, 0, s.n_embd, n_vocab, 1.0f);
  for (int64_t i = 0; i < s.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    add(p + "attn_norm.weight", TensorRole::kAttnNorm, i, s.n_embd, 0, 0.0f);
    add(p + "attn_q.weight", TensorRole::kAttnQ, i, s.n_embd, s.n_embd, inv_sqrt(s.n_embd));
    add(p + "attn_k.weight", TensorRole::kAttnK, i, s.n_embd, n_embd_kv, inv_sqrt(s.n_embd));
    add(p + "attn_v.weight", TensorRole::kAttnV, i, s.n_embd, n_embd_kv, inv_sqrt(s.n_embd));
    if (ad.qkv_bias) {
      add(p + "attn_q.bias", TensorRole::kBias, i, s.n_embd, 0, kBiasStd);
      add(p + "attn_k.bias", TensorRole::kBias, i, n_embd_kv, 0, kBiasStd);
      add(p + "attn_v.bias", TensorRole::kBias, i, n_embd_kv, 0, kBiasStd);
    }
    add(p + "attn_output.weight", TensorRole::kAttnOut, i, s.n_embd, s.n_embd, inv_sqrt(s.n_embd));
    add(p + "ffn_norm.weight", TensorRole::kFfnNorm, i, s.n_embd, 0, 0.0f);
    add(p + "ffn_gate.weight", TensorRole::kFfnGate, i, s.n_embd, s.n_ff, inv_sqrt(s.n_embd));
    add(p + "ffn_up.weight", TensorRole::kFfnUp, i, s.n_embd, s.n_ff, inv_sqrt(s.n_embd));
    add(p + "ffn_down.weight", TensorRole::kFfnDown, i, s.n_ff, s.n_embd, inv_sqrt(s.n_ff));
  }
  add("output_norm.weight", TensorRole::kOutputNorm, 0, s.n_embd, 0, 0.0f);
  add("output.weight", TensorRole::kOutput, 0, s.n_embd, n_vocab, kOutputGain * inv_sqrt(s.n_embd));
  return out;
}

// A bert encoder (model/encoder.h): embeddings (token, position, token type) and their LayerNorm, then per
// layer q/k/v/output with biases, the attention-output LayerNorm, ffn_up/ffn_down with biases and the
// layer-output LayerNorm (llama.cpp's tensor names). LayerNorm weights are 1, biases small and random.
std::vector<PlannedTensor> plan_bert_tensors(const ModelShape& s, FileType ft, int64_t n_vocab) {
  const auto inv_sqrt = [](int64_t n) { return static_cast<float>(1.0 / std::sqrt(static_cast<double>(n))); };
  std::vector<PlannedTensor> out;
  auto add = [&](std::string name, TensorRole role, int64_t layer, int64_t ne0, int64_t ne1, float stddev) {
    PlannedTensor t;
    t.name = std::move(name);
    t.role = role;
    t.type = tensor_type_for(ft, role, layer, s.n_layer, 1, ne0);
    t.shape = ne1 > 0 ? std::vector<uint64_t>{static_cast<uint64_t>(ne0), static_cast<uint64_t>(ne1)}
                      : std::vector<uint64_t>{static_cast<uint64_t>(ne0)};
    t.stddev = stddev;
    t.fill = stddev == 0 ? 1.0f : 0.0f;
    out.push_back(std::move(t));
  };
  const int64_t E = s.n_embd;
  add("token_embd.weight", TensorRole::kTokEmbd, 0, E, n_vocab, 1.0f);
  add("token_types.weight", TensorRole::kBias, 0, E, 2, 0.5f);  // F32, as converters write it (llama.cpp adds it as is)
  add("position_embd.weight", TensorRole::kTokEmbd, 0, E, s.n_ctx, 0.5f);
  add("token_embd_norm.weight", TensorRole::kAttnNorm, 0, E, 0, 0.0f);
  add("token_embd_norm.bias", TensorRole::kBias, 0, E, 0, kBiasStd);
  for (int64_t i = 0; i < s.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    for (const char* w : {"attn_q", "attn_k", "attn_v"}) {
      add(p + w + ".weight", std::string(w) == "attn_v" ? TensorRole::kAttnV : TensorRole::kAttnQ, i, E, E, inv_sqrt(E));
      add(p + w + ".bias", TensorRole::kBias, i, E, 0, kBiasStd);
    }
    add(p + "attn_output.weight", TensorRole::kAttnOut, i, E, E, inv_sqrt(E));
    add(p + "attn_output.bias", TensorRole::kBias, i, E, 0, kBiasStd);
    add(p + "attn_output_norm.weight", TensorRole::kAttnNorm, i, E, 0, 0.0f);
    add(p + "attn_output_norm.bias", TensorRole::kBias, i, E, 0, kBiasStd);
    add(p + "ffn_up.weight", TensorRole::kFfnUp, i, E, s.n_ff, inv_sqrt(E));
    add(p + "ffn_up.bias", TensorRole::kBias, i, s.n_ff, 0, kBiasStd);
    add(p + "ffn_down.weight", TensorRole::kFfnDown, i, s.n_ff, E, inv_sqrt(s.n_ff));
    add(p + "ffn_down.bias", TensorRole::kBias, i, E, 0, kBiasStd);
    add(p + "layer_output_norm.weight", TensorRole::kFfnNorm, i, E, 0, 0.0f);
    add(p + "layer_output_norm.bias", TensorRole::kBias, i, E, 0, kBiasStd);
  }
  return out;
}

// ---- the file --------------------------------------------------------------------------------------------

Result<int64_t> vocab_size(const gguf::File& vocab) {
  const gguf::Value* tokens = vocab.find("tokenizer.ggml.tokens");
  if (tokens == nullptr || !tokens->is_array() || tokens->array_type() != gguf::ValueType::kString ||
      tokens->array_size() == 0)
    return invalid_argument("vocabulary '" + vocab.name() + "' has no tokenizer.ggml.tokens string array");
  if (tokens->array_size() > (uint64_t{1} << 31) - 1)
    return invalid_argument("vocabulary '" + vocab.name() + "' has too many tokens");
  // A model is only as usable as its vocabulary: refuse one the tokenizer would refuse at load time.
  if (auto t = tok::Tokenizer::from_gguf(vocab); !t.is_ok())
    return Status(t.status().code(), "vocabulary '" + vocab.name() + "' is not usable: " + t.status().message());
  return static_cast<int64_t>(tokens->array_size());
}

void add_model_metadata(gguf::Writer& w, const ModelMetadata& md, const gguf::File& vocab) {
  const std::string a = md.arch + ".";
  const ModelShape& shape = md.shape;
  w.add_string("general.architecture", md.arch);
  w.add_string("general.name", md.name);
  w.add_u32(a + "context_length", static_cast<uint32_t>(shape.n_ctx));
  w.add_u32(a + "embedding_length", static_cast<uint32_t>(shape.n_embd));
  w.add_u32(a + "block_count", static_cast<uint32_t>(shape.n_layer));
  w.add_u32(a + "feed_forward_length", static_cast<uint32_t>(shape.n_ff));
  w.add_u32(a + "attention.head_count", static_cast<uint32_t>(shape.n_head));
  if (md.arch == "bert") {
    w.add_f32(a + "attention.layer_norm_epsilon", 1e-12f);
    w.add_bool(a + "attention.causal", false);
    w.add_u32(a + "pooling_type", md.pooling);
  } else {
    w.add_u32(a + "attention.head_count_kv", static_cast<uint32_t>(shape.n_head_kv));
    w.add_u32(a + "rope.dimension_count", static_cast<uint32_t>(shape.n_embd / shape.n_head));
    w.add_f32(a + "rope.freq_base", static_cast<float>(md.rope_freq_base));
    w.add_f32(a + "attention.layer_norm_rms_epsilon", static_cast<float>(md.rms_eps));
  }
  w.add_u32("general.file_type", static_cast<uint32_t>(md.file_type));
  if (is_quantized(base_tensor_type(md.file_type))) w.add_u32("general.quantization_version", 2);
  for (const auto& kv : vocab.metadata())
    if (kv.key.substr(0, 10) == "tokenizer.") w.add_value(kv.key, kv.value);
}

Result<MakeModelResult> make_model(const MakeModelOptions& opts, const gguf::File& vocab, const std::string& out_path) {
  CW_RETURN_IF_ERROR(check_make_arch(opts.arch));
  CW_ASSIGN_OR_RETURN(ModelShape shape, model_shape(opts.shape));
  CW_ASSIGN_OR_RETURN(FileType ft, file_type_from_name(opts.type));
  if (opts.arch == "bert" && (opts.pooling < 1 || opts.pooling > 3))
    return invalid_argument("pooling must be 1 (mean), 2 (cls) or 3 (last)");
  CW_ASSIGN_OR_RETURN(const int64_t n_vocab, vocab_size(vocab));
  const ArchDefaults ad = arch_defaults(opts.arch);
  const bool bert = opts.arch == "bert";
  if (bert) shape.n_ctx = std::min<int64_t>(shape.n_ctx, 512);  // BERT's absolute position table

  gguf::Writer w;
  ModelMetadata md;
  md.arch = opts.arch;
  md.name = "chunkwise-random-" + opts.arch + "-" + shape.name + "-seed" + std::to_string(opts.seed);
  md.shape = shape;
  md.rope_freq_base = ad.rope_freq_base;
  md.rms_eps = ad.rms_eps;
  md.pooling = opts.pooling;
  md.file_type = ft;
  add_model_metadata(w, md, vocab);

  const std::vector<PlannedTensor> plan =
      bert ? plan_bert_tensors(shape, ft, n_vocab) : plan_tensors(opts.arch, shape, ft, n_vocab);
  MakeModelResult result;
  result.n_tensors = plan.size();
  result.n_vocab = n_vocab;
  result.file_type = ft;
  for (const auto& t : plan) {
    CW_RETURN_IF_ERROR(w.declare_tensor(t.name, t.type, t.shape));
    int64_t n = 1;
    for (uint64_t d : t.shape) n *= static_cast<int64_t>(d);
    result.n_params += n;
  }
  result.file_bytes = w.file_size();

  MakeModelProgress progress;
  progress.n_tensors = plan.size();
  for (const auto& d : w.tensor_table()) progress.bytes_total += d.n_bytes;
  const int n_threads =
      opts.n_threads > 0 ? opts.n_threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  auto on_chunk = [&](uint64_t n) {
    progress.bytes_done += n;
    if (opts.on_progress) opts.on_progress(progress);
  };
  CW_RETURN_IF_ERROR(w.write_streaming(out_path, [&](size_t index, const gguf::TensorDecl&, gguf::ByteSink& sink) {
    CW_RETURN_IF_ERROR(produce_tensor(plan[index], opts.seed, n_threads, sink, on_chunk));
    ++progress.tensors_done;
    if (opts.on_progress) opts.on_progress(progress);
    return Status::ok();
  }));
  return result;
}

Result<MakeModelResult> make_model(const MakeModelOptions& opts, const std::string& vocab_path,
                                   const std::string& out_path) {
  // Check the cheap arguments before opening (and parsing) a possibly large vocabulary.
  CW_RETURN_IF_ERROR(check_make_arch(opts.arch));
  CW_RETURN_IF_ERROR(model_shape(opts.shape).status());
  CW_RETURN_IF_ERROR(file_type_from_name(opts.type).status());
  CW_ASSIGN_OR_RETURN(std::unique_ptr<gguf::File> vocab, gguf::File::open(vocab_path));
  return make_model(opts, *vocab, out_path);
}

}  // namespace cw::model
