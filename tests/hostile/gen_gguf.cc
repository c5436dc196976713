// Class "gguf": corrupt, truncated, bit-flipped, oversized and inconsistent GGUF files, fed to every
// subcommand that reads one (inspect, tokenize -m, run -m, perplexity -m, bench -m, batch -m,
// chunk --tokenizer, chunk semantic model=, make-model --vocab).
//
// Bases: a small SPM vocabulary written with the GGUF writer, tiny llama models from `make-model`, and the
// real tiny model and vocabularies of ../shared/data when present. Mutations:
//  - truncation at structural boundaries and random points (always an error);
//  - bit flips and byte bursts in the header / metadata / tensor-info region;
//  - field mutations: every count, length, type id, dimension and offset the walker below finds, set to
//    hostile values (0, 1, +-1, 2^31, 2^32, 2^63, 2^64-1, ...);
//  - rebuilt files: hyperparameters set to 0 / 1 / huge / wrong type / missing, tensors dropped, reshaped,
//    retyped, duplicated, NaN/Inf weights, broken tokenizer arrays and ids, hostile architecture names.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "hostile/suite.h"

namespace cw::hostile {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> read_bytes(const std::string& path) {
  const std::string s = slurp(path);
  return std::vector<uint8_t>(s.begin(), s.end());
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// ---- a minimal GGUF walker: where each count / length / type / dimension / offset field sits --------------

struct Field {
  uint64_t off;
  int width;  // bytes
  std::string what;
  uint64_t value;
};

struct Layout {
  std::vector<Field> fields;
  uint64_t header_end = 0;  // end of the tensor infos (0 when the walk failed)
};

class Walker {
 public:
  explicit Walker(const std::vector<uint8_t>& b) : b_(b) {}
  Layout walk() {
    Layout l;
    if (!field(4, "magic") || !field(4, "version")) return l;
    uint64_t n_tensors = 0, n_kv = 0;
    if (!field(8, "n_tensors", &n_tensors) || !field(8, "n_kv", &n_kv)) return l;
    if (n_tensors > 100000 || n_kv > 100000) return l;
    for (uint64_t i = 0; i < n_kv; ++i) {
      std::string key;
      if (!string("key length", &key)) return l;
      uint64_t type = 0;
      if (!field(4, "value type of " + key, &type)) return l;
      if (!value(static_cast<uint32_t>(type), key, 0)) return l;
    }
    for (uint64_t i = 0; i < n_tensors; ++i) {
      std::string name;
      if (!string("tensor name length", &name)) return l;
      uint64_t n_dims = 0;
      if (!field(4, "n_dims of " + name, &n_dims) || n_dims > 8) return l;
      for (uint64_t d = 0; d < n_dims; ++d)
        if (!field(8, "dim " + std::to_string(d) + " of " + name)) return l;
      if (!field(4, "type of " + name) || !field(8, "offset of " + name)) return l;
    }
    fields_[0].value = 0;  // magic: not mutated as a number
    l.fields = std::move(fields_);
    l.fields.erase(l.fields.begin());
    l.header_end = pos_;
    return l;
  }

 private:
  bool raw(int width, uint64_t* v) {
    if (pos_ + static_cast<uint64_t>(width) > b_.size()) return false;
    *v = 0;
    std::memcpy(v, b_.data() + pos_, static_cast<size_t>(width));
    pos_ += static_cast<uint64_t>(width);
    return true;
  }
  bool field(int width, const std::string& what, uint64_t* out = nullptr) {
    const uint64_t at = pos_;
    uint64_t v = 0;
    if (!raw(width, &v)) return false;
    if (record_) fields_.push_back({at, width, what, v});
    if (out != nullptr) *out = v;
    return true;
  }
  bool string(const std::string& what, std::string* s) {
    uint64_t n = 0;
    const uint64_t at = pos_;
    if (!raw(8, &n) || n > b_.size() - pos_) return false;
    s->assign(reinterpret_cast<const char*>(b_.data() + pos_), static_cast<size_t>(n));
    if (record_) fields_.push_back({at, 8, what + " (" + s->substr(0, 40) + ")", n});
    pos_ += n;
    return true;
  }
  bool value(uint32_t type, const std::string& key, int depth) {
    static const int kWidth[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type > 12) return false;
    if (type == 8) {
      std::string s;
      return string("string length of " + key, &s);
    }
    if (type == 9) {
      if (depth > 2) return false;
      uint64_t et = 0, n = 0;
      if (!field(4, "array type of " + key, &et) || !field(8, "array count of " + key, &n)) return false;
      if (et > 12 || n > b_.size()) return false;
      const bool keep = record_;
      for (uint64_t i = 0; i < n; ++i) {
        record_ = keep && (i < 2 || i + 1 == n);  // only a few element fields are worth mutating
        if (!value(static_cast<uint32_t>(et), key + "[" + std::to_string(i) + "]", depth + 1)) {
          record_ = keep;
          return false;
        }
      }
      record_ = keep;
      return true;
    }
    return field(kWidth[type], "value of " + key);
  }

  const std::vector<uint8_t>& b_;
  uint64_t pos_ = 0;
  bool record_ = true;
  std::vector<Field> fields_;
};

// Hostile replacement values for a field of `width` bytes holding `v`.
std::vector<uint64_t> hostile_values(int width, uint64_t v) {
  if (width == 8)
    return {0, 1, v + 1, v - 1, uint64_t{1} << 31, uint64_t{1} << 32, uint64_t{1} << 62, uint64_t{1} << 63,
            ~uint64_t{0}, v << 20};
  if (width == 4) return {0, 1, v + 1, 13, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000};
  if (width == 2) return {0, 0xFFFF, v + 1};
  return {0, 0xFF, v + 1};
}

// ---- consumers ----------------------------------------------------------------------------------------------

enum Consumer { kInspect, kInspectJson, kRun, kPerplexity, kBench, kBatch, kTokenize, kChunk, kMakeModel, kSemantic };

const std::vector<Consumer> kModelLoaders = {kRun, kPerplexity, kBench, kBatch, kTokenize, kChunk, kMakeModel, kSemantic};
const std::vector<Consumer> kVocabLoaders = {kTokenize, kChunk, kMakeModel, kRun};

Case consumer_case(Fixtures& fx, Consumer k, const std::string& path, Expect e) {
  Case c;
  c.cls = "gguf";
  c.expect = e;
  switch (k) {
    case kInspect:
    case kInspectJson:
      c.cmd = "inspect";
      c.args = {"inspect", path};
      if (k == kInspectJson) c.args.insert(c.args.begin() + 1, "--json");
      c.ok_check = check_inspect(k == kInspectJson);
      break;
    case kRun:
      c.cmd = "run";
      c.args = {"run", "-m", path, "-p", "Once upon a time", "-n", "4", "--temp", "0", "--json"};
      c.ok_check = check_run(true, 4);
      break;
    case kPerplexity:
      c.cmd = "perplexity";
      c.args = {"perplexity", "-m", path, "-f", fx.text, "-c", "16", "-q", "--json"};
      c.ok_check = check_perplexity(true);
      break;
    case kBench:
      c.cmd = "bench";
      c.args = {"bench", "-m", path, "-p", "8", "-n", "4", "-r", "1", "-t", "1", "--json"};
      c.ok_check = check_bench(true);
      break;
    case kBatch:
      c.cmd = "batch";
      c.args = {"batch", "-m", path, "-f", fx.prompts, "-n", "4", "--temp", "0", "--no-progress"};
      c.ok_check = check_batch(3);
      break;
    case kTokenize:
      c.cmd = "tokenize";
      c.args = {"tokenize", "-m", path, "-p", "Hello world, once upon a time", "--json"};
      c.ok_check = check_tokenize("--json");
      break;
    case kChunk:
      c.cmd = "chunk";
      c.args = {"chunk", "--tokenizer", path, "--size", "16", fx.text};
      c.ok_check = check_chunk({{fx.text, fs::file_size(fx.text)}}, 16, true);
      break;
    case kSemantic:
      c.cmd = "chunk";
      c.args = {"chunk", "--spec", "semantic:model=" + path + ",ctx=64", "--unit", "chars", "--size", "200", fx.text};
      c.ok_check = check_chunk({{fx.text, fs::file_size(fx.text)}}, 200, true);
      break;
    case kMakeModel: {
      c.cmd = "make-model";
      const std::string out = fx.path("made.gguf");
      c.args = {"make-model", "--arch", "llama", "--shape", "tiny", "--type", "q8_0", "--vocab", path, "-o", out,
                "-q", "--threads", "1"};
      c.ok_check = check_make_model(fx.bin, out);
      c.post = [out]() {
        std::error_code ec;
        fs::remove(out, ec);
        return std::string();
      };
      break;
    }
  }
  return c;
}

struct Base {
  std::string name;
  std::string path;
  bool is_model;
};

// Adds the cases of one mutated file: inspect (text or JSON, alternating) plus `n_loaders` loaders, rotating.
void add_consumers(Fixtures& fx, std::vector<Case>& out, const Base& base, const LazyRef& file, const std::string& what,
                   Expect e, int n_loaders, size_t* rot) {
  const auto& loaders = base.is_model ? kModelLoaders : kVocabLoaders;
  std::vector<Consumer> ks = {(*rot & 1) ? kInspectJson : kInspect};
  for (int i = 0; i < n_loaders; ++i) ks.push_back(loaders[(*rot + static_cast<size_t>(i) * 3) % loaders.size()]);
  ++*rot;
  for (Consumer k : ks) {
    Case c = consumer_case(fx, k, file->path, e);
    // `run` on a vocabulary (no tensors) can never succeed.
    if (!base.is_model && k == kRun) c.expect = Expect::kError;
    c.what = base.name + ": " + what;
    c.inputs.push_back(file);
    out.push_back(std::move(c));
  }
}

// ---- rebuilt (semantically broken) files --------------------------------------------------------------------

using KvHook = std::function<bool(std::string_view key, gguf::Writer& w)>;            // true: handled
using TensorHook = std::function<bool(const gguf::TensorInfo& t, gguf::Writer& w)>;  // true: handled

void rebuild(const std::string& base, const std::string& out, const KvHook& on_kv, const TensorHook& on_tensor,
             const std::function<void(gguf::Writer&)>& extra = {}) {
  auto f = gguf::File::open(base);
  if (!f.is_ok()) return;
  gguf::Writer w;
  for (const gguf::KeyValue& kv : (*f)->metadata()) {
    if (kv.key == "general.alignment") continue;
    if (on_kv && on_kv(kv.key, w)) continue;
    w.add_value(kv.key, kv.value);
  }
  if (extra) extra(w);
  for (const gguf::TensorInfo& t : (*f)->tensors()) {
    if (on_tensor && on_tensor(t, w)) continue;
    (void)w.add_tensor(t.name, t.type, t.shape, std::vector<uint8_t>(t.data, t.data + t.n_bytes));
  }
  write_bytes(out, w.bytes());
}

std::vector<uint8_t> f32_fill(uint64_t n, float v) {
  std::vector<uint8_t> b(n * 4);
  for (uint64_t i = 0; i < n; ++i) std::memcpy(b.data() + i * 4, &v, 4);
  return b;
}

struct Edit {
  Edit(std::string w, KvHook kv, TensorHook t = {}, std::function<void(gguf::Writer&)> x = {}, bool nf = false)
      : what(std::move(w)), on_kv(std::move(kv)), on_tensor(std::move(t)), extra(std::move(x)), non_finite(nf) {}
  std::string what;
  KvHook on_kv;
  TensorHook on_tensor;
  std::function<void(gguf::Writer&)> extra;
  bool non_finite = false;  // NaN / Inf weights: generation and perplexity must refuse
};

KvHook set_key(const std::string& key, std::function<void(gguf::Writer&)> put) {
  return [key, put](std::string_view k, gguf::Writer& w) {
    if (k != key) return false;
    if (put) put(w);
    return true;
  };
}

std::vector<Edit> hparam_edits() {
  std::vector<Edit> v;
  for (const char* k : {"llama.context_length", "llama.embedding_length", "llama.block_count",
                        "llama.feed_forward_length", "llama.attention.head_count", "llama.attention.head_count_kv",
                        "llama.rope.dimension_count", "llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon"}) {
    const std::string key = k;
    v.push_back({key + " = u32 0", set_key(key, [key](gguf::Writer& w) { w.add_u32(key, 0); }), {}});
    v.push_back({key + " = u32 1", set_key(key, [key](gguf::Writer& w) { w.add_u32(key, 1); }), {}});
    v.push_back({key + " = u32 3", set_key(key, [key](gguf::Writer& w) { w.add_u32(key, 3); }), {}});
    v.push_back({key + " = u32 2^32-1", set_key(key, [key](gguf::Writer& w) { w.add_u32(key, 0xFFFFFFFFu); }), {}});
    v.push_back({key + " = u64 2^40", set_key(key, [key](gguf::Writer& w) { w.add_u64(key, uint64_t{1} << 40); }), {}});
    v.push_back({key + " = i32 -1", set_key(key, [key](gguf::Writer& w) { w.add_i32(key, -1); }), {}});
    v.push_back({key + " = string \"8\"", set_key(key, [key](gguf::Writer& w) { w.add_string(key, "8"); }), {}});
    v.push_back({key + " = f32 NaN", set_key(key, [key](gguf::Writer& w) { w.add_f32(key, std::nanf("")); }), {}});
    v.push_back({key + " = f32 -inf",
                 set_key(key, [key](gguf::Writer& w) { w.add_f32(key, -std::numeric_limits<float>::infinity()); }), {}});
    v.push_back({key + " missing", set_key(key, nullptr), {}});
  }
  return v;
}

TensorHook on_named(const std::string& name, std::function<void(const gguf::TensorInfo&, gguf::Writer&)> f) {
  return [name, f](const gguf::TensorInfo& t, gguf::Writer& w) {
    if (t.name != name) return false;
    if (f) f(t, w);
    return true;
  };
}

std::vector<Edit> tensor_edits() {
  std::vector<Edit> v;
  for (const char* n : {"output_norm.weight", "blk.1.ffn_down.weight", "token_embd.weight", "blk.0.attn_k.weight"})
    v.push_back({std::string("tensor ") + n + " missing", {}, on_named(n, nullptr)});
  v.push_back({"token_embd shape transposed", {}, on_named("token_embd.weight", [](const gguf::TensorInfo& t, gguf::Writer& w) {
                 (void)w.add_tensor(t.name, t.type, {t.shape[1], t.shape[0]}, std::vector<uint8_t>(t.data, t.data + t.n_bytes));
               })});
  v.push_back({"attn_q reshaped [128, 512]", {}, on_named("blk.0.attn_q.weight", [](const gguf::TensorInfo& t, gguf::Writer& w) {
                 (void)w.add_tensor(t.name, t.type, {t.shape[0] / 2, t.shape[1] * 2}, std::vector<uint8_t>(t.data, t.data + t.n_bytes));
               })});
  v.push_back({"attn_norm with 3 dims", {}, on_named("blk.0.attn_norm.weight", [](const gguf::TensorInfo& t, gguf::Writer& w) {
                 (void)w.add_tensor(t.name, t.type, {t.shape[0], 1, 1}, std::vector<uint8_t>(t.data, t.data + t.n_bytes));
               })});
  v.push_back({"output_norm retyped F16 (same bytes, twice the elements)", {},
               on_named("output_norm.weight", [](const gguf::TensorInfo& t, gguf::Writer& w) {
                 (void)w.add_tensor(t.name, gguf::TensorType::kF16, {t.shape[0] * 2}, std::vector<uint8_t>(t.data, t.data + t.n_bytes));
               })});
  v.push_back({"output_norm retyped I32", {}, on_named("output_norm.weight", [](const gguf::TensorInfo& t, gguf::Writer& w) {
                 (void)w.add_tensor(t.name, gguf::TensorType::kI32, {t.shape[0]}, std::vector<uint8_t>(t.data, t.data + t.n_bytes));
               })});
  v.push_back({"duplicate tensor output_norm", {}, on_named("output_norm.weight", [](const gguf::TensorInfo& t, gguf::Writer& w) {
                 (void)w.add_tensor(t.name, t.type, t.shape, std::vector<uint8_t>(t.data, t.data + t.n_bytes));
                 (void)w.add_tensor(t.name, t.type, t.shape, std::vector<uint8_t>(t.data, t.data + t.n_bytes));
               })});
  v.push_back({"extra tensor blk.7.attn_q (past block_count)", {}, on_named("output_norm.weight", [](const gguf::TensorInfo& t, gguf::Writer& w) {
                 (void)w.add_tensor(t.name, t.type, t.shape, std::vector<uint8_t>(t.data, t.data + t.n_bytes));
                 (void)w.add_tensor("blk.7.attn_q.weight", t.type, t.shape, std::vector<uint8_t>(t.data, t.data + t.n_bytes));
               })});
  v.push_back({"all weights of output_norm NaN", {}, on_named("output_norm.weight", [](const gguf::TensorInfo& t, gguf::Writer& w) {
                 (void)w.add_tensor(t.name, t.type, t.shape, f32_fill(t.n_elements, std::nanf("")));
               }), {}, true});
  v.push_back({"all weights of token_embd +Inf", {}, on_named("token_embd.weight", [](const gguf::TensorInfo& t, gguf::Writer& w) {
                 (void)w.add_tensor(t.name, t.type, t.shape, f32_fill(t.n_elements, std::numeric_limits<float>::infinity()));
               }), {}, true});
  // One NaN weight must reach the logits too: no kernel may absorb it (the SIMD exp passes NaN lanes
  // through, activation quantizers give a NaN block scale), so it is refused like the files above.
  v.push_back({"one NaN in blk.0.attn_q", {}, on_named("blk.0.attn_q.weight", [](const gguf::TensorInfo& t, gguf::Writer& w) {
                 std::vector<uint8_t> d(t.data, t.data + t.n_bytes);
                 const float nan = std::nanf("");
                 std::memcpy(d.data() + 4 * 17, &nan, 4);
                 (void)w.add_tensor(t.name, t.type, t.shape, std::move(d));
               }), {}, true});
  v.push_back({"one NaN in blk.0.attn_norm", {}, on_named("blk.0.attn_norm.weight", [](const gguf::TensorInfo& t, gguf::Writer& w) {
                 std::vector<uint8_t> d(t.data, t.data + t.n_bytes);
                 const float nan = std::nanf("");
                 std::memcpy(d.data() + 4 * 3, &nan, 4);
                 (void)w.add_tensor(t.name, t.type, t.shape, std::move(d));
               }), {}, true});
  v.push_back({"all weights of output.weight -Inf", {}, on_named("output.weight", [](const gguf::TensorInfo& t, gguf::Writer& w) {
                 (void)w.add_tensor(t.name, t.type, t.shape, f32_fill(t.n_elements, -std::numeric_limits<float>::infinity()));
               }), {}, true});
  v.push_back({"all weights zero (valid, degenerate)", {}, [](const gguf::TensorInfo& t, gguf::Writer& w) {
                 (void)w.add_tensor(t.name, t.type, t.shape, std::vector<uint8_t>(t.n_bytes, 0));
                 return true;
               }});
  return v;
}

std::vector<Edit> tokenizer_edits() {
  std::vector<Edit> v;
  auto tokens = [](std::vector<std::string> toks) {
    return set_key("tokenizer.ggml.tokens", [toks](gguf::Writer& w) { w.add_string_array("tokenizer.ggml.tokens", toks); });
  };
  v.push_back({"tokens: empty array", tokens({})});
  v.push_back({"tokens: 3 entries (scores / types / embeddings disagree)", tokens({"<unk>", "<s>", "</s>"})});
  {
    std::vector<std::string> t(512, "");
    v.push_back({"tokens: 512 empty strings", tokens(t)});
    std::vector<std::string> d(512, "\xe2\x96\x81w");
    v.push_back({"tokens: 512 duplicates", tokens(d)});
  }
  {
    std::vector<std::string> t = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 256; ++i) t.push_back("<0x" + std::string(1, "0123456789ABCDEF"[i / 16]) + "0123456789ABCDEF"[i % 16] + ">");
    while (t.size() < 512) t.push_back(std::string("\xe2\x96\x81w") + std::string(1, '\0') + std::to_string(t.size()));
    v.push_back({"tokens: NUL inside every word piece", tokens(t)});
    std::vector<std::string> big = t;
    big[300] = std::string(1 << 20, 'x');
    v.push_back({"tokens: one 1 MiB token", tokens(big)});
    std::vector<std::string> bad = t;
    for (size_t i = 259; i < bad.size(); ++i) bad[i] = "\xff\xfe" + std::to_string(i);
    v.push_back({"tokens: invalid UTF-8 pieces", tokens(bad)});
  }
  v.push_back({"scores: 10 entries", set_key("tokenizer.ggml.scores", [](gguf::Writer& w) {
                 w.add_f32_array("tokenizer.ggml.scores", std::vector<float>(10, 0.f));
               })});
  v.push_back({"scores: all NaN", set_key("tokenizer.ggml.scores", [](gguf::Writer& w) {
                 w.add_f32_array("tokenizer.ggml.scores", std::vector<float>(512, std::nanf("")));
               })});
  v.push_back({"scores: a string", set_key("tokenizer.ggml.scores", [](gguf::Writer& w) { w.add_string("tokenizer.ggml.scores", "x"); })});
  v.push_back({"scores missing", set_key("tokenizer.ggml.scores", nullptr)});
  v.push_back({"token_type: 10 entries", set_key("tokenizer.ggml.token_type", [](gguf::Writer& w) {
                 w.add_i32_array("tokenizer.ggml.token_type", std::vector<int32_t>(10, 1));
               })});
  v.push_back({"token_type: all 999", set_key("tokenizer.ggml.token_type", [](gguf::Writer& w) {
                 w.add_i32_array("tokenizer.ggml.token_type", std::vector<int32_t>(512, 999));
               })});
  v.push_back({"token_type: all -1", set_key("tokenizer.ggml.token_type", [](gguf::Writer& w) {
                 w.add_i32_array("tokenizer.ggml.token_type", std::vector<int32_t>(512, -1));
               })});
  v.push_back({"token_type: all control (3)", set_key("tokenizer.ggml.token_type", [](gguf::Writer& w) {
                 w.add_i32_array("tokenizer.ggml.token_type", std::vector<int32_t>(512, 3));
               })});
  for (const char* id : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"}) {
    const std::string k = id;
    v.push_back({k + " = 100000", set_key(k, [k](gguf::Writer& w) { w.add_u32(k, 100000); })});
    v.push_back({k + " = u32 2^32-1", set_key(k, [k](gguf::Writer& w) { w.add_u32(k, 0xFFFFFFFFu); })});
    v.push_back({k + " = i32 -1", set_key(k, [k](gguf::Writer& w) { w.add_i32(k, -1); })});
    v.push_back({k + " = string", set_key(k, [k](gguf::Writer& w) { w.add_string(k, "<s>"); })});
  }
  for (const char* m : {"gpt2", "bert", "no-such-tokenizer", ""}) {
    const std::string name = m;
    v.push_back({"tokenizer.ggml.model = \"" + name + "\"", set_key("tokenizer.ggml.model", [name](gguf::Writer& w) {
                   w.add_string("tokenizer.ggml.model", name);
                 })});
  }
  v.push_back({"tokenizer.ggml.model missing", set_key("tokenizer.ggml.model", nullptr)});
  v.push_back({"tokenizer.ggml.tokens missing", set_key("tokenizer.ggml.tokens", nullptr)});
  v.push_back({"duplicate key tokenizer.ggml.model", {}, {}, [](gguf::Writer& w) { w.add_string("tokenizer.ggml.model", "gpt2"); }});
  return v;
}

std::vector<Edit> arch_edits() {
  std::vector<Edit> v;
  for (const std::string& a : {std::string(""), std::string("llama\0junk", 10), std::string("no-such-arch"),
                               std::string(4096, 'l'), std::string("LLAMA"), std::string("llama\n")}) {
    std::string shown = a.size() > 20 ? std::to_string(a.size()) + " chars" : a;
    for (char& ch : shown)
      if (ch == '\0' || ch == '\n') ch = '?';
    v.push_back({"general.architecture = \"" + shown + "\"",
                 set_key("general.architecture", [a](gguf::Writer& w) { w.add_string("general.architecture", a); })});
  }
  v.push_back({"general.architecture is a u32", set_key("general.architecture", [](gguf::Writer& w) { w.add_u32("general.architecture", 1); })});
  v.push_back({"general.architecture missing", set_key("general.architecture", nullptr)});
  v.push_back({"general.alignment = 0", {}, {}, [](gguf::Writer& w) { w.add_u32("general.alignment", 0); }});
  v.push_back({"general.alignment = 3", {}, {}, [](gguf::Writer& w) { w.add_u32("general.alignment", 3); }});
  v.push_back({"general.alignment = 2^31", {}, {}, [](gguf::Writer& w) { w.add_u32("general.alignment", 0x80000000u); }});
  return v;
}

void add_byte_mutations(Fixtures& fx, std::vector<Case>& out, const Base& base, Rng& rng, int n_fields, int n_flips,
                        size_t* rot) {
  const auto bytes = std::make_shared<std::vector<uint8_t>>(read_bytes(base.path));
  const Layout layout = Walker(*bytes).walk();
  const uint64_t header_end = layout.header_end > 0 ? layout.header_end : std::min<uint64_t>(bytes->size(), 4096);
  // End of the last byte that matters: the last tensor's data, or the metadata when there are no tensors
  // (the alignment padding after it may be cut without harm).
  uint64_t data_end = header_end;
  if (auto f = gguf::File::parse(*bytes); f.is_ok())
    for (const gguf::TensorInfo& t : (*f)->tensors()) data_end = std::max(data_end, (*f)->data_offset() + t.offset + t.n_bytes);
  data_end = std::min<uint64_t>(data_end, bytes->size());

  // Truncations: structural boundaries and random points, all short of the last byte of tensor data.
  std::vector<uint64_t> cuts = {0, 1, 3, 4, 7, 8, 16, 23, 24, 25, header_end - 1, header_end, data_end - 1};
  for (const Field& f : layout.fields)
    if (rng.below(8) == 0) cuts.push_back(f.off + 1);
  for (int i = 0; i < 4; ++i) cuts.push_back(rng.below(data_end));
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  for (uint64_t n : cuts) {
    if (n >= data_end) continue;
    auto file = fx.lazy("trunc.gguf", [bytes, n](const std::string& p) {
      write_bytes(p, std::vector<uint8_t>(bytes->begin(), bytes->begin() + static_cast<std::ptrdiff_t>(n)));
    });
    add_consumers(fx, out, base, file, "truncated to " + std::to_string(n) + " of " + std::to_string(bytes->size()) + " bytes",
                  Expect::kError, 1, rot);
  }

  // Bit flips and bursts in the header / metadata / tensor-info region.
  for (int i = 0; i < n_flips; ++i) {
    const int mode = static_cast<int>(rng.below(3));
    std::vector<std::pair<uint64_t, uint8_t>> edits;  // offset, xor mask (or value for bursts)
    std::string what;
    if (mode == 0) {
      const uint64_t at = rng.below(header_end);
      edits.push_back({at, static_cast<uint8_t>(1u << rng.below(8))});
      what = "1 bit flipped at byte " + std::to_string(at);
    } else if (mode == 1) {
      for (int k = 0; k < 8; ++k) edits.push_back({rng.below(header_end), static_cast<uint8_t>(1u << rng.below(8))});
      what = "8 random bits flipped in the first " + std::to_string(header_end) + " bytes";
    } else {
      const uint64_t at = rng.below(header_end);
      for (uint64_t k = 0; k < 16 && at + k < bytes->size(); ++k) edits.push_back({at + k, static_cast<uint8_t>(rng.next())});
      what = "16 random bytes xored at byte " + std::to_string(at);
    }
    auto file = fx.lazy("flip.gguf", [bytes, edits](const std::string& p) {
      auto b = *bytes;
      for (auto [at, m] : edits) b[at] ^= m;
      write_bytes(p, b);
    });
    add_consumers(fx, out, base, file, what, Expect::kAny, 1, rot);
  }

  // Field mutations: a sample of the fields, one hostile value each.
  std::vector<Field> fields = layout.fields;
  for (size_t i = fields.size(); i > 1; --i) std::swap(fields[i - 1], fields[rng.below(i)]);
  if (fields.size() > static_cast<size_t>(n_fields)) fields.resize(static_cast<size_t>(n_fields));
  for (const Field& f : fields) {
    const auto vals = hostile_values(f.width, f.value);
    const uint64_t nv = vals[rng.below(vals.size())];
    auto file = fx.lazy("field.gguf", [bytes, f, nv](const std::string& p) {
      auto b = *bytes;
      std::memcpy(b.data() + f.off, &nv, static_cast<size_t>(f.width));
      write_bytes(p, b);
    });
    add_consumers(fx, out, base, file, f.what + " = " + std::to_string(nv) + " (was " + std::to_string(f.value) + ")",
                  Expect::kAny, 1, rot);
  }
  // Whole-file oddities.
  auto bad_magic = fx.lazy("magic.gguf", [bytes](const std::string& p) {
    auto b = *bytes;
    std::memcpy(b.data(), "GGML", 4);
    write_bytes(p, b);
  });
  add_consumers(fx, out, base, bad_magic, "magic GGML", Expect::kError, 2, rot);
  for (uint32_t version : {0u, 1u, 4u, 0xFFFFFFFFu}) {
    auto f = fx.lazy("version.gguf", [bytes, version](const std::string& p) {
      auto b = *bytes;
      std::memcpy(b.data() + 4, &version, 4);
      write_bytes(p, b);
    });
    add_consumers(fx, out, base, f, "version " + std::to_string(version), Expect::kError, 1, rot);
  }
  auto appended = fx.lazy("appended.gguf", [bytes](const std::string& p) {
    auto b = *bytes;
    b.insert(b.end(), 1 << 16, 0xAB);
    write_bytes(p, b);
  });
  add_consumers(fx, out, base, appended, "64 KiB of junk appended", Expect::kAny, 1, rot);
}

void add_edits(Fixtures& fx, std::vector<Case>& out, const Base& base, const std::vector<Edit>& edits, size_t* rot) {
  for (const Edit& e : edits) {
    const std::string src = base.path;
    auto file = fx.lazy("edit.gguf", [src, e](const std::string& p) { rebuild(src, p, e.on_kv, e.on_tensor, e.extra); });
    if (e.non_finite) {
      // NaN / Inf weights: the commands that compute logits must stop with an error; the others may run.
      for (Consumer k : {kRun, kPerplexity, kBatch, kBench, kInspect}) {
        Case c = consumer_case(fx, k, file->path, k == kBench || k == kInspect ? Expect::kAny : Expect::kError);
        c.what = base.name + ": " + e.what;
        c.inputs.push_back(file);
        c.fast = k == kRun;
        out.push_back(std::move(c));
      }
      continue;
    }
    add_consumers(fx, out, base, file, e.what, Expect::kAny, 2, rot);
  }
}

}  // namespace

void gen_gguf(Fixtures& fx, std::vector<Case>& out) {
  Rng rng(fx.seed ^ 0x6767756600000000ull);
  size_t rot = 0;
  const Base vocab{"small SPM vocab", fx.vocab, false};
  const Base model{"tiny llama Q4_K_M", fx.model_q, true};
  const Base model_f32{"tiny llama F32", fx.model, true};
  add_byte_mutations(fx, out, vocab, rng, fx.full ? 60 : 12, fx.full ? 40 : 8, &rot);
  add_byte_mutations(fx, out, model, rng, fx.full ? 120 : 20, fx.full ? 50 : 8, &rot);
  auto hp = hparam_edits();
  if (!fx.full) hp.erase(hp.begin() + 12, hp.end());
  add_edits(fx, out, model_f32, hp, &rot);
  add_edits(fx, out, model_f32, tensor_edits(), &rot);
  add_edits(fx, out, model_f32, arch_edits(), &rot);
  add_edits(fx, out, vocab, tokenizer_edits(), &rot);
  add_edits(fx, out, vocab, arch_edits(), &rot);
  if (fx.shared) {
    const std::string d = *fx.shared;
    for (const Base& b : {Base{"stories260K", d + "/models/stories260K.gguf", true},
                          Base{"gpt-2 vocab", d + "/vocab/ggml-vocab-gpt-2.gguf", false},
                          Base{"bert-bge vocab", d + "/vocab/ggml-vocab-bert-bge.gguf", false},
                          Base{"llama-spm vocab", d + "/vocab/ggml-vocab-llama-spm.gguf", false}}) {
      std::error_code ec;
      if (!fs::exists(b.path, ec)) continue;
      add_byte_mutations(fx, out, b, rng, fx.full ? 20 : 4, fx.full ? 12 : 3, &rot);
      // The untouched file through every consumer: the baseline must work (or refuse cleanly).
      for (Consumer k : b.is_model ? std::vector<Consumer>{kInspectJson, kRun, kPerplexity, kBench, kBatch, kTokenize, kChunk}
                                   : std::vector<Consumer>{kInspectJson, kTokenize, kChunk, kMakeModel}) {
        Case c = consumer_case(fx, k, b.path, Expect::kAny);
        c.what = b.name + ": unmodified";
        out.push_back(std::move(c));
      }
    }
  }
}

}  // namespace cw::hostile
