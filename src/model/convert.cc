#include "model/convert.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "base/file_io.h"
#include "base/json_value.h"
#include "gguf/writer.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/quant_ref.h"

namespace cw::model {

namespace {

constexpr double kMaxExactInt = 9007199254740992.0;  // 2^53: JSON numbers are doubles

bool as_u64(const JsonValue& v, uint64_t* out) {
  if (!v.is_number()) return false;
  const double d = v.as_number();
  if (!(d >= 0 && d <= kMaxExactInt) || std::floor(d) != d) return false;
  *out = static_cast<uint64_t>(d);
  return true;
}

uint64_t dtype_size(StDtype d) { return d == StDtype::kF32 ? 4 : 2; }

std::string shape_str(const std::vector<uint64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

// ---- safetensors -----------------------------------------------------------------------------------------

Result<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  CW_ASSIGN_OR_RETURN(f.map_, MappedFile::open(path));
  const std::string where = "safetensors '" + path + "': ";
  const uint8_t* base = f.map_.data();
  const uint64_t size = f.map_.size();
  if (size < 8) return data_loss(where + "file of " + std::to_string(size) + " bytes has no 8-byte header length");
  uint64_t n_header = 0;
  for (int i = 7; i >= 0; --i) n_header = (n_header << 8) | base[i];
  if (n_header > size - 8)
    return data_loss(where + "header length " + std::to_string(n_header) + " exceeds the file (" +
                     std::to_string(size) + " bytes)");
  const std::string_view header(reinterpret_cast<const char*>(base + 8), static_cast<size_t>(n_header));
  auto json = JsonValue::parse(header);
  if (!json.is_ok()) return data_loss(where + "header JSON: " + json.status().message());
  if (!json->is_object()) return data_loss(where + "header is not a JSON object");
  const uint8_t* data = base + 8 + n_header;
  const uint64_t data_size = size - 8 - n_header;

  std::set<std::string> names;
  std::vector<std::pair<std::pair<uint64_t, uint64_t>, size_t>> spans;
  for (const auto& [name, v] : json->members()) {
    if (!names.insert(name).second) return data_loss(where + "duplicate tensor name '" + name + "'");
    if (name == "__metadata__") {
      if (!v.is_object()) return data_loss(where + "__metadata__ is not an object");
      continue;
    }
    const std::string tw = where + "tensor '" + name + "': ";
    if (!v.is_object()) return data_loss(tw + "entry is not an object");
    for (const auto& [k, _] : v.members())
      if (k != "dtype" && k != "shape" && k != "data_offsets") return data_loss(tw + "unknown field '" + k + "'");
    const JsonValue* dt = v.get("dtype");
    const JsonValue* sh = v.get("shape");
    const JsonValue* off = v.get("data_offsets");
    if (dt == nullptr || !dt->is_string()) return data_loss(tw + "missing string 'dtype'");
    if (sh == nullptr || !sh->is_array()) return data_loss(tw + "missing array 'shape'");
    if (off == nullptr || !off->is_array() || off->items().size() != 2)
      return data_loss(tw + "'data_offsets' must be an array [begin, end]");
    SafetensorsTensor t;
    t.name = name;
    if (dt->as_string() == "F32") {
      t.dtype = StDtype::kF32;
    } else if (dt->as_string() == "F16") {
      t.dtype = StDtype::kF16;
    } else if (dt->as_string() == "BF16") {
      t.dtype = StDtype::kBF16;
    } else {
      return invalid_argument(tw + "unsupported dtype '" + dt->as_string() + "' (supported: F32, F16, BF16)");
    }
    if (sh->items().size() > 4) return data_loss(tw + "more than 4 dimensions");
    t.n_elements = 1;
    for (const auto& d : sh->items()) {
      uint64_t n = 0;
      if (!as_u64(d, &n)) return data_loss(tw + "shape entries must be non-negative integers");
      if (n != 0 && t.n_elements > (uint64_t{1} << 48) / n) return data_loss(tw + "shape too large");
      t.n_elements *= n;
      t.shape.push_back(n);
    }
    uint64_t begin = 0, end = 0;
    if (!as_u64(off->items()[0], &begin) || !as_u64(off->items()[1], &end))
      return data_loss(tw + "data_offsets must be non-negative integers");
    if (begin > end || end > data_size)
      return data_loss(tw + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                       "] out of range (data section of " + std::to_string(data_size) + " bytes)");
    t.n_bytes = end - begin;
    if (t.n_bytes != t.n_elements * dtype_size(t.dtype))
      return data_loss(tw + std::to_string(t.n_bytes) + " bytes of data, shape " + shape_str(t.shape) + " x " +
                       dt->as_string() + " needs " + std::to_string(t.n_elements * dtype_size(t.dtype)));
    t.data = data + begin;
    spans.push_back({{begin, end}, f.tensors_.size()});
    f.tensors_.push_back(std::move(t));
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) {
    const auto& a = spans[i - 1];
    const auto& b = spans[i];
    if (b.first.first < a.first.second && b.first.first != b.first.second && a.first.first != a.first.second)
      return data_loss(where + "tensors '" + f.tensors_[a.second].name + "' and '" + f.tensors_[b.second].name +
                       "' overlap");
  }
  return f;
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

float SafetensorsFile::element(const SafetensorsTensor& t, uint64_t i) {
  if (t.dtype == StDtype::kF32) {
    float v;
    std::memcpy(&v, t.data + i * 4, 4);
    return v;
  }
  uint16_t h;
  std::memcpy(&h, t.data + i * 2, 2);
  return t.dtype == StDtype::kF16 ? kernels::fp16_to_fp32(h) : kernels::bf16_to_fp32(h);
}

// ---- config ----------------------------------------------------------------------------------------------

Result<ConvertConfig> parse_convert_config(std::string_view text, const std::string& file_name) {
  const std::string where = "config '" + file_name + "': ";
  auto json = JsonValue::parse(text);
  if (!json.is_ok()) return invalid_argument(where + json.status().message());
  if (!json->is_object()) return invalid_argument(where + "not a JSON object");
  static const char* const kInts[] = {"n_embd", "n_layer", "n_head", "n_head_kv", "n_ff", "n_ctx"};
  static const char* const kAll[] = {"arch",  "name",  "n_embd", "n_layer",        "n_head",
                                     "n_head_kv", "n_ff", "n_ctx", "rope_freq_base", "rms_eps"};
  std::set<std::string> seen;
  for (const auto& [k, _] : json->members()) {
    if (std::find_if(std::begin(kAll), std::end(kAll), [&](const char* a) { return k == a; }) == std::end(kAll))
      return invalid_argument(where + "unknown key '" + k + "'");
    if (!seen.insert(k).second) return invalid_argument(where + "duplicate key '" + k + "'");
  }
  ConvertConfig c;
  const JsonValue* arch = json->get("arch");
  if (arch == nullptr || !arch->is_string()) return invalid_argument(where + "missing string \"arch\"");
  c.arch = arch->as_string();
  if (c.arch != "llama" && c.arch != "qwen2")
    return invalid_argument(where + "unsupported arch '" + c.arch + "' (supported: llama, qwen2)");
  if (const JsonValue* n = json->get("name"); n != nullptr) {
    if (!n->is_string()) return invalid_argument(where + "\"name\" must be a string");
    c.name = n->as_string();
  }
  int64_t v[6];
  for (int i = 0; i < 6; ++i) {
    const JsonValue* x = json->get(kInts[i]);
    uint64_t u = 0;
    if (x == nullptr) return invalid_argument(where + "missing \"" + kInts[i] + "\"");
    if (!as_u64(*x, &u) || u == 0 || u > (uint64_t{1} << 24))
      return invalid_argument(where + "\"" + kInts[i] + "\" must be an integer in 1..16777216");
    v[i] = static_cast<int64_t>(u);
  }
  c.shape.name = "config";
  c.shape.n_embd = v[0];
  c.shape.n_layer = v[1];
  c.shape.n_head = v[2];
  c.shape.n_head_kv = v[3];
  c.shape.n_ff = v[4];
  c.shape.n_ctx = v[5];
  if (c.shape.n_embd % c.shape.n_head != 0)
    return invalid_argument(where + "n_embd " + std::to_string(c.shape.n_embd) + " is not a multiple of n_head " +
                            std::to_string(c.shape.n_head));
  if ((c.shape.n_embd / c.shape.n_head) % 2 != 0) return invalid_argument(where + "head dim must be even (RoPE)");
  if (c.shape.n_head % c.shape.n_head_kv != 0)
    return invalid_argument(where + "n_head " + std::to_string(c.shape.n_head) + " is not a multiple of n_head_kv " +
                            std::to_string(c.shape.n_head_kv));
  const JsonValue* rb = json->get("rope_freq_base");
  const JsonValue* eps = json->get("rms_eps");
  if (rb == nullptr || !rb->is_number() || !(rb->as_number() > 1.0 && rb->as_number() < 1e12))
    return invalid_argument(where + "\"rope_freq_base\" must be a number > 1");
  if (eps == nullptr || !eps->is_number() || !(eps->as_number() > 0 && eps->as_number() < 1))
    return invalid_argument(where + "\"rms_eps\" must be a number in (0, 1)");
  c.rope_freq_base = rb->as_number();
  c.rms_eps = eps->as_number();
  return c;
}

// ---- conversion ------------------------------------------------------------------------------------------

Result<ConvertResult> convert_safetensors(const ConvertOptions& opts) {
  CW_ASSIGN_OR_RETURN(FileType ft, file_type_from_name(opts.type));
  if (ft != FileType::kAllF32 && ft != FileType::kF16 && ft != FileType::kQ8_0)
    return invalid_argument("unsupported type '" + opts.type + "' for convert (supported: f32, f16, q8_0)");
  CW_ASSIGN_OR_RETURN(std::string config_text, read_input(opts.config_path));
  CW_ASSIGN_OR_RETURN(ConvertConfig cfg, parse_convert_config(config_text, opts.config_path));
  CW_ASSIGN_OR_RETURN(std::unique_ptr<gguf::File> vocab, gguf::File::open(opts.vocab_path));
  CW_ASSIGN_OR_RETURN(const int64_t n_vocab, vocab_size(*vocab));
  CW_ASSIGN_OR_RETURN(SafetensorsFile st, SafetensorsFile::open(opts.safetensors_path));
  const std::string where = "safetensors '" + opts.safetensors_path + "': ";

  // The expected tensor table (make_model's plan, which carries the per-tensor type rules); output.weight is
  // optional (tied embeddings).
  std::vector<PlannedTensor> plan = plan_tensors(cfg.arch, cfg.shape, ft, n_vocab);
  std::vector<const SafetensorsTensor*> src;
  std::vector<PlannedTensor> kept;
  std::set<std::string> expected;
  for (auto& p : plan) {
    expected.insert(p.name);
    const SafetensorsTensor* t = st.find(p.name);
    if (t == nullptr) {
      if (p.name == "output.weight") continue;
      return invalid_argument(where + "missing tensor '" + p.name + "'");
    }
    const std::vector<uint64_t> want(p.shape.rbegin(), p.shape.rend());  // PyTorch order
    if (t->shape != want)
      return invalid_argument(where + "tensor '" + p.name + "' has shape " + shape_str(t->shape) + ", expected " +
                              shape_str(want) + " from the config and vocabulary");
    src.push_back(t);
    kept.push_back(std::move(p));
  }
  for (const auto& t : st.tensors())
    if (expected.count(t.name) == 0) return invalid_argument(where + "unknown tensor '" + t.name + "'");

  gguf::Writer w;
  ModelMetadata md;
  md.arch = cfg.arch;
  md.name = cfg.name.empty() ? "chunkwise-converted-" + cfg.arch : cfg.name;
  md.shape = cfg.shape;
  md.rope_freq_base = cfg.rope_freq_base;
  md.rms_eps = cfg.rms_eps;
  md.file_type = ft;
  add_model_metadata(w, md, *vocab);

  ConvertResult result;
  result.n_tensors = kept.size();
  result.n_vocab = n_vocab;
  result.file_type = ft;
  for (const auto& p : kept) {
    CW_RETURN_IF_ERROR(w.declare_tensor(p.name, p.type, p.shape));
    result.n_params += static_cast<int64_t>(src[&p - kept.data()]->n_elements);
  }
  result.file_bytes = w.file_size();

  CW_RETURN_IF_ERROR(w.write_streaming(opts.out_path, [&](size_t index, const gguf::TensorDecl&, gguf::ByteSink& sink) {
    const PlannedTensor& p = kept[index];
    const SafetensorsTensor& t = *src[index];
    const kernels::QuantTraits* q = kernels::quant_traits(static_cast<uint32_t>(p.type));
    CW_CHECK_MSG(q != nullptr && q->quantize != nullptr, "no quantizer for " + p.name);
    const auto ne0 = static_cast<int64_t>(p.shape[0]);
    const int64_t n_rows = static_cast<int64_t>(t.n_elements) / ne0;
    std::vector<float> row(static_cast<size_t>(ne0));
    std::vector<uint8_t> out(static_cast<size_t>(kernels::quant_row_bytes(*q, ne0)));
    for (int64_t r = 0; r < n_rows; ++r) {
      const uint64_t o = static_cast<uint64_t>(r) * static_cast<uint64_t>(ne0);
      for (int64_t i = 0; i < ne0; ++i) row[static_cast<size_t>(i)] = SafetensorsFile::element(t, o + i);
      q->quantize(row.data(), out.data(), ne0);
      CW_RETURN_IF_ERROR(sink.write(out.data(), out.size()));
    }
    return Status::ok();
  }));
  return result;
}

}  // namespace cw::model
