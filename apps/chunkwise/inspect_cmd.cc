// chunkwise inspect FILE.gguf [--json]: metadata (long arrays summarized) and the tensor table.
#include <cinttypes>
#include <cstdio>
#include <string>

#include "args.h"
#include "base/json.h"
#include "commands.h"
#include "gguf/reader.h"

namespace cw::app {
namespace {

constexpr size_t kArrayPreview = 8;

std::string shape_outermost_first(const gguf::TensorInfo& t) {
  std::string s = "[";
  for (size_t d = t.shape.size(); d-- > 0;) {
    s += std::to_string(t.shape[d]);
    if (d > 0) s += ", ";
  }
  return s + "]";
}

std::string scalar_text(const gguf::Value& v) {
  using gguf::ValueType;
  switch (v.type()) {
    case ValueType::kString: {
      std::string out;
      json_append_string(out, *v.as_string());
      return out;
    }
    case ValueType::kBool: return *v.as_bool() ? "true" : "false";
    case ValueType::kFloat32:
    case ValueType::kFloat64: {
      char buf[40];
      std::snprintf(buf, sizeof buf, "%.9g", *v.as_float());
      return buf;
    }
    default:
      if (auto i = v.as_int(); i.is_ok()) return std::to_string(*i);
      return std::to_string(*v.as_uint());
  }
}

// One-line text of a value; arrays show their type, size and first elements.
std::string value_text(const gguf::Value& v) {
  using gguf::ValueType;
  if (!v.is_array()) return scalar_text(v);
  std::string s = std::string("array<") + gguf::value_type_name(v.array_type()) + ">[" + std::to_string(v.array_size()) + "] [";
  size_t shown = std::min<uint64_t>(v.array_size(), kArrayPreview);
  for (size_t k = 0; k < shown; ++k) {
    if (k) s += ", ";
    if (v.array_type() == ValueType::kString) {
      json_append_string(s, v.strings()[k]);
    } else if (v.array_type() == ValueType::kArray) {
      s += value_text(v.arrays()[k]);
    } else if (v.array_type() == ValueType::kFloat32 || v.array_type() == ValueType::kFloat64) {
      char buf[40];
      std::snprintf(buf, sizeof buf, "%.6g", (*v.to_f32_vector())[k]);
      s += buf;
    } else {
      auto ints = v.to_i64_vector();
      s += ints.is_ok() ? std::to_string((*ints)[k]) : "?";
    }
  }
  if (v.array_size() > shown) s += ", …";
  return s + "]";
}

void value_json(JsonWriter& w, const gguf::Value& v) {
  using gguf::ValueType;
  if (!v.is_array()) {
    switch (v.type()) {
      case ValueType::kString: w.value(*v.as_string()); return;
      case ValueType::kBool: w.value(*v.as_bool()); return;
      case ValueType::kFloat32:
      case ValueType::kFloat64: w.value(*v.as_float()); return;
      default:
        if (auto i = v.as_int(); i.is_ok()) w.value(*i);
        else w.value(*v.as_uint());
        return;
    }
  }
  // Arrays are summarized: type, size, and the first elements.
  w.begin_object().key("type").value(std::string("array<") + gguf::value_type_name(v.array_type()) + ">");
  w.key("size").value(v.array_size()).key("head").begin_array();
  size_t shown = std::min<uint64_t>(v.array_size(), kArrayPreview);
  for (size_t k = 0; k < shown; ++k) {
    if (v.array_type() == ValueType::kString) w.value(v.strings()[k]);
    else if (v.array_type() == ValueType::kArray) value_json(w, v.arrays()[k]);
    else if (v.array_type() == ValueType::kFloat32 || v.array_type() == ValueType::kFloat64)
      w.value(static_cast<double>((*v.to_f32_vector())[k]));
    else if (auto ints = v.to_i64_vector(); ints.is_ok()) w.value((*ints)[k]);
    else w.null();
  }
  w.end_array().end_object();
}

}  // namespace

int inspect_main(int argc, char** argv) {
  bool json = false;
  std::vector<std::string> files;
  ArgParser p("inspect", "FILE.gguf [--json]",
              "Shows a GGUF file's header, metadata (long arrays summarized) and tensor table\n"
              "(name, type, shape outermost-first, bytes, offset into the data section).");
  p.flag("--json", &json, "print one JSON object instead of text");
  p.positionals(&files, "FILE.gguf", "the GGUF file to inspect");
  if (Status s = p.parse(argc, argv); !s.is_ok()) return report_error("inspect", s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }
  if (files.size() != 1) return report_error("inspect", invalid_argument("expected exactly one FILE.gguf (see --help)"));
  auto opened = gguf::File::open(files[0]);
  if (!opened.is_ok()) return report_error("inspect", opened.status());
  const gguf::File& f = **opened;

  uint64_t total_bytes = 0;
  for (const auto& t : f.tensors()) total_bytes += t.n_bytes;

  if (json) {
    JsonWriter w;
    w.begin_object().key("file").value(files[0]).key("version").value(uint64_t{f.version()});
    w.key("file_size").value(f.file_size()).key("alignment").value(f.alignment());
    w.key("data_offset").value(f.data_offset()).key("tensor_bytes").value(total_bytes);
    w.key("metadata").begin_object();
    for (const auto& kv : f.metadata()) {
      w.key(kv.key);
      value_json(w, kv.value);
    }
    w.end_object().key("tensors").begin_array();
    for (const auto& t : f.tensors()) {
      w.begin_object().key("name").value(t.name).key("type").value(gguf::type_traits(t.type).name);
      w.key("shape").begin_array();
      for (size_t d = t.shape.size(); d-- > 0;) w.value(t.shape[d]);
      w.end_array().key("bytes").value(t.n_bytes).key("offset").value(t.offset).end_object();
    }
    w.end_array().end_object();
    std::printf("%s\n", w.str().c_str());
    return kExitOk;
  }

  std::printf("file:        %s\n", files[0].c_str());
  std::printf("gguf:        v%u, %" PRIu64 " bytes, alignment %" PRIu64 ", data at %" PRIu64 "\n", f.version(),
              f.file_size(), f.alignment(), f.data_offset());
  std::printf("metadata:    %zu keys\n", f.metadata().size());
  for (const auto& kv : f.metadata())
    std::printf("  %-40.*s %s\n", static_cast<int>(kv.key.size()), kv.key.data(), value_text(kv.value).c_str());
  std::printf("tensors:     %zu, %" PRIu64 " bytes\n", f.tensors().size(), total_bytes);
  if (!f.tensors().empty()) {
    std::printf("  %-40s %-6s %-22s %14s %14s\n", "name", "type", "shape", "bytes", "offset");
    for (const auto& t : f.tensors())
      std::printf("  %-40.*s %-6s %-22s %14" PRIu64 " %14" PRIu64 "\n", static_cast<int>(t.name.size()), t.name.data(),
                  gguf::type_traits(t.type).name, shape_outermost_first(t).c_str(), t.n_bytes, t.offset);
  }
  return kExitOk;
}

}  // namespace cw::app
