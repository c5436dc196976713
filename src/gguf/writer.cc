#include "gguf/writer.h"

#include <cstring>

#include "base/mapped_file.h"

namespace cw::gguf {

namespace {
template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof v);
  out.insert(out.end(), b, b + sizeof b);
}
void put_str(std::vector<uint8_t>& out, std::string_view s) {
  put<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}
template <typename T>
std::vector<uint8_t> scalar(T v) {
  std::vector<uint8_t> out;
  put(out, v);
  return out;
}
}  // namespace

Writer& Writer::add_raw(std::string_view key, ValueType type, std::vector<uint8_t> payload) {
  put_str(kv_bytes_, key);
  put<uint32_t>(kv_bytes_, static_cast<uint32_t>(type));
  kv_bytes_.insert(kv_bytes_.end(), payload.begin(), payload.end());
  ++n_kv_;
  return *this;
}

Writer& Writer::set_alignment(uint32_t alignment) {
  CW_CHECK(alignment > 0 && (alignment & (alignment - 1)) == 0);
  alignment_ = alignment;
  if (alignment != 32) add_u32("general.alignment", alignment);
  return *this;
}

Writer& Writer::add_u8(std::string_view k, uint8_t v) { return add_raw(k, ValueType::kUint8, scalar(v)); }
Writer& Writer::add_i8(std::string_view k, int8_t v) { return add_raw(k, ValueType::kInt8, scalar(v)); }
Writer& Writer::add_u16(std::string_view k, uint16_t v) { return add_raw(k, ValueType::kUint16, scalar(v)); }
Writer& Writer::add_i16(std::string_view k, int16_t v) { return add_raw(k, ValueType::kInt16, scalar(v)); }
Writer& Writer::add_u32(std::string_view k, uint32_t v) { return add_raw(k, ValueType::kUint32, scalar(v)); }
Writer& Writer::add_i32(std::string_view k, int32_t v) { return add_raw(k, ValueType::kInt32, scalar(v)); }
Writer& Writer::add_u64(std::string_view k, uint64_t v) { return add_raw(k, ValueType::kUint64, scalar(v)); }
Writer& Writer::add_i64(std::string_view k, int64_t v) { return add_raw(k, ValueType::kInt64, scalar(v)); }
Writer& Writer::add_f32(std::string_view k, float v) { return add_raw(k, ValueType::kFloat32, scalar(v)); }
Writer& Writer::add_f64(std::string_view k, double v) { return add_raw(k, ValueType::kFloat64, scalar(v)); }
Writer& Writer::add_bool(std::string_view k, bool v) { return add_raw(k, ValueType::kBool, scalar<uint8_t>(v ? 1 : 0)); }

Writer& Writer::add_string(std::string_view k, std::string_view v) {
  std::vector<uint8_t> p;
  put_str(p, v);
  return add_raw(k, ValueType::kString, std::move(p));
}

Writer& Writer::add_string_array(std::string_view k, const std::vector<std::string>& v) {
  std::vector<uint8_t> p;
  put<uint32_t>(p, static_cast<uint32_t>(ValueType::kString));
  put<uint64_t>(p, v.size());
  for (const auto& s : v) put_str(p, s);
  return add_raw(k, ValueType::kArray, std::move(p));
}

Writer& Writer::add_f32_array(std::string_view k, const std::vector<float>& v) {
  std::vector<uint8_t> p;
  put<uint32_t>(p, static_cast<uint32_t>(ValueType::kFloat32));
  put<uint64_t>(p, v.size());
  for (float x : v) put(p, x);
  return add_raw(k, ValueType::kArray, std::move(p));
}

Writer& Writer::add_i32_array(std::string_view k, const std::vector<int32_t>& v) {
  std::vector<uint8_t> p;
  put<uint32_t>(p, static_cast<uint32_t>(ValueType::kInt32));
  put<uint64_t>(p, v.size());
  for (int32_t x : v) put(p, x);
  return add_raw(k, ValueType::kArray, std::move(p));
}

Writer& Writer::add_i32_array_array(std::string_view k, const std::vector<std::vector<int32_t>>& v) {
  std::vector<uint8_t> p;
  put<uint32_t>(p, static_cast<uint32_t>(ValueType::kArray));
  put<uint64_t>(p, v.size());
  for (const auto& inner : v) {
    put<uint32_t>(p, static_cast<uint32_t>(ValueType::kInt32));
    put<uint64_t>(p, inner.size());
    for (int32_t x : inner) put(p, x);
  }
  return add_raw(k, ValueType::kArray, std::move(p));
}

Status Writer::add_tensor(std::string_view name, TensorType type, std::vector<uint64_t> shape, std::vector<uint8_t> data) {
  if (shape.empty() || shape.size() > 4) return invalid_argument("tensor '" + std::string(name) + "': 1..4 dimensions");
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  const TypeTraits& t = type_traits(type);
  if (shape[0] % t.block_size != 0)
    return invalid_argument("tensor '" + std::string(name) + "': ne[0] not a multiple of the block size of " + t.name);
  uint64_t bytes = n / t.block_size * t.block_bytes;
  if (bytes != data.size())
    return invalid_argument("tensor '" + std::string(name) + "': expected " + std::to_string(bytes) + " bytes, got " +
                            std::to_string(data.size()));
  for (const auto& existing : tensors_)
    if (existing.name == name) return invalid_argument("duplicate tensor '" + std::string(name) + "'");
  tensors_.push_back(Tensor{std::string(name), type, std::move(shape), std::move(data)});
  return Status::ok();
}

std::vector<uint8_t> Writer::bytes() const {
  std::vector<uint8_t> out;
  out.insert(out.end(), {'G', 'G', 'U', 'F'});
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, n_kv_);
  out.insert(out.end(), kv_bytes_.begin(), kv_bytes_.end());
  auto align = [this](uint64_t x) { return (x + alignment_ - 1) / alignment_ * alignment_; };
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_str(out, t.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.shape.size()));
    for (uint64_t d : t.shape) put<uint64_t>(out, d);
    put<uint32_t>(out, static_cast<uint32_t>(t.type));
    put<uint64_t>(out, offset);
    offset = align(offset + t.data.size());
  }
  if (!tensors_.empty()) {
    out.resize(align(out.size()), 0);
    for (const auto& t : tensors_) {
      out.insert(out.end(), t.data.begin(), t.data.end());
      out.resize(align(out.size()), 0);
    }
  }
  return out;
}

Status Writer::write(const std::string& path) const {
  std::vector<uint8_t> b = bytes();
  return write_file(path, b.data(), b.size());
}

}  // namespace cw::gguf
