#include "gguf/writer.h"

#include "base/file_io.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace cw::gguf {

namespace {
template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  const size_t n = out.size();
  out.resize(n + sizeof v);
  std::memcpy(out.data() + n, &v, sizeof v);
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

// Appends the payload of `v` (everything after its type tag). Values come from the reader, which has
// already validated them, so the typed accessors cannot fail here.
void put_value(std::vector<uint8_t>& out, const Value& v) {
  switch (v.type()) {
    case ValueType::kUint8: put<uint8_t>(out, static_cast<uint8_t>(*v.as_uint())); return;
    case ValueType::kInt8: put<int8_t>(out, static_cast<int8_t>(*v.as_int())); return;
    case ValueType::kUint16: put<uint16_t>(out, static_cast<uint16_t>(*v.as_uint())); return;
    case ValueType::kInt16: put<int16_t>(out, static_cast<int16_t>(*v.as_int())); return;
    case ValueType::kUint32: put<uint32_t>(out, static_cast<uint32_t>(*v.as_uint())); return;
    case ValueType::kInt32: put<int32_t>(out, static_cast<int32_t>(*v.as_int())); return;
    case ValueType::kUint64: put<uint64_t>(out, *v.as_uint()); return;
    case ValueType::kInt64: put<int64_t>(out, *v.as_int()); return;
    case ValueType::kFloat32: put<float>(out, static_cast<float>(*v.as_float())); return;
    case ValueType::kFloat64: put<double>(out, *v.as_float()); return;
    case ValueType::kBool: put<uint8_t>(out, *v.as_bool() ? 1 : 0); return;
    case ValueType::kString: put_str(out, *v.as_string()); return;
    case ValueType::kArray: break;
  }
  put<uint32_t>(out, static_cast<uint32_t>(v.array_type()));
  put<uint64_t>(out, v.array_size());
  if (v.array_type() == ValueType::kString) {
    for (std::string_view s : v.strings()) put_str(out, s);
  } else if (v.array_type() == ValueType::kArray) {
    for (const Value& inner : v.arrays()) put_value(out, inner);
  } else {
    const auto raw = v.raw_array_bytes();
    out.insert(out.end(), raw.begin(), raw.end());
  }
}

constexpr uint8_t kZeros[64] = {};

Status write_zeros(ByteSink& sink, uint64_t n) {
  while (n > 0) {
    const size_t k = static_cast<size_t>(std::min<uint64_t>(n, sizeof kZeros));
    CW_RETURN_IF_ERROR(sink.write(kZeros, k));
    n -= k;
  }
  return Status::ok();
}

// Counts what a producer writes and refuses to go past the tensor's size.
class CountingSink : public ByteSink {
 public:
  CountingSink(ByteSink& inner, const TensorDecl& decl) : inner_(inner), decl_(decl) {}
  Status write(const void* data, size_t n) override {
    if (n > decl_.n_bytes - written_)
      return invalid_argument("tensor '" + decl_.name + "': producer wrote more than its " +
                              std::to_string(decl_.n_bytes) + " bytes");
    CW_RETURN_IF_ERROR(inner_.write(data, n));
    written_ += n;
    return Status::ok();
  }
  uint64_t written() const { return written_; }

 private:
  ByteSink& inner_;
  const TensorDecl& decl_;
  uint64_t written_ = 0;
};

// A buffered file written atomically (base/file_io.h OutputFile): the target is replaced only by close();
// a failed or killed write leaves a previous file of that name intact. Errors carry the path.
class FileSink : public ByteSink {
 public:
  explicit FileSink(std::string path) : path_(std::move(path)) {}
  Status open() {
    CW_ASSIGN_OR_RETURN(out_, OutputFile::create(path_));
    std::setvbuf(out_.file(), nullptr, _IOFBF, 1 << 20);
    return Status::ok();
  }
  Status write(const void* data, size_t n) override {
    return out_.write(std::string_view(static_cast<const char*>(data), n));
  }
  Status close() { return out_.commit(); }
  void discard() { out_.discard(); }

 private:
  std::string path_;
  OutputFile out_;
};
}  // namespace

Status VectorSink::write(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  bytes_.insert(bytes_.end(), p, p + n);
  return Status::ok();
}

Writer& Writer::add_value(std::string_view key, const Value& v) {
  std::vector<uint8_t> p;
  put_value(p, v);
  return add_raw(key, v.type(), std::move(p));
}

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

Status Writer::check_tensor(std::string_view name, TensorType type, const std::vector<uint64_t>& shape,
                            uint64_t* n_bytes) const {
  if (shape.empty() || shape.size() > 4) return invalid_argument("tensor '" + std::string(name) + "': 1..4 dimensions");
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  const TypeTraits& t = type_traits(type);
  if (shape[0] % t.block_size != 0)
    return invalid_argument("tensor '" + std::string(name) + "': ne[0] not a multiple of the block size of " + t.name);
  for (const auto& existing : tensors_)
    if (existing.decl.name == name) return invalid_argument("duplicate tensor '" + std::string(name) + "'");
  *n_bytes = n / t.block_size * t.block_bytes;
  return Status::ok();
}

Status Writer::add_tensor(std::string_view name, TensorType type, std::vector<uint64_t> shape, std::vector<uint8_t> data) {
  uint64_t bytes = 0;
  CW_RETURN_IF_ERROR(check_tensor(name, type, shape, &bytes));
  if (bytes != data.size())
    return invalid_argument("tensor '" + std::string(name) + "': expected " + std::to_string(bytes) + " bytes, got " +
                            std::to_string(data.size()));
  tensors_.push_back(Tensor{TensorDecl{std::string(name), type, std::move(shape), bytes}, true, std::move(data)});
  return Status::ok();
}

Status Writer::declare_tensor(std::string_view name, TensorType type, std::vector<uint64_t> shape) {
  uint64_t bytes = 0;
  CW_RETURN_IF_ERROR(check_tensor(name, type, shape, &bytes));
  tensors_.push_back(Tensor{TensorDecl{std::string(name), type, std::move(shape), bytes}, false, {}});
  return Status::ok();
}

std::vector<TensorDecl> Writer::tensor_table() const {
  std::vector<TensorDecl> out;
  out.reserve(tensors_.size());
  for (const auto& t : tensors_) out.push_back(t.decl);
  return out;
}

std::vector<uint8_t> Writer::header_bytes() const {
  std::vector<uint8_t> out(4);
  std::memcpy(out.data(), "GGUF", 4);
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, n_kv_);
  out.insert(out.end(), kv_bytes_.begin(), kv_bytes_.end());
  auto align = [this](uint64_t x) { return (x + alignment_ - 1) / alignment_ * alignment_; };
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_str(out, t.decl.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.decl.shape.size()));
    for (uint64_t d : t.decl.shape) put<uint64_t>(out, d);
    put<uint32_t>(out, static_cast<uint32_t>(t.decl.type));
    put<uint64_t>(out, offset);
    offset = align(offset + t.decl.n_bytes);
  }
  if (!tensors_.empty()) out.resize(align(out.size()), 0);
  return out;
}

uint64_t Writer::file_size() const {
  auto align = [this](uint64_t x) { return (x + alignment_ - 1) / alignment_ * alignment_; };
  uint64_t size = header_bytes().size();
  for (const auto& t : tensors_) size = align(size + t.decl.n_bytes);
  return size;
}

Status Writer::write_to(ByteSink& sink, const TensorProducer& produce) const {
  for (const auto& t : tensors_)
    if (!t.has_data && !produce)
      return invalid_argument("tensor '" + t.decl.name + "' was declared without data and no producer was given");
  const std::vector<uint8_t> header = header_bytes();
  CW_RETURN_IF_ERROR(sink.write(header.data(), header.size()));
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const Tensor& t = tensors_[i];
    if (t.has_data) {
      CW_RETURN_IF_ERROR(sink.write(t.data.data(), t.data.size()));
    } else {
      CountingSink counted(sink, t.decl);
      CW_RETURN_IF_ERROR(produce(i, t.decl, counted));
      if (counted.written() != t.decl.n_bytes)
        return invalid_argument("tensor '" + t.decl.name + "': producer wrote " + std::to_string(counted.written()) +
                                " of its " + std::to_string(t.decl.n_bytes) + " bytes");
    }
    const uint64_t pad = (alignment_ - t.decl.n_bytes % alignment_) % alignment_;
    CW_RETURN_IF_ERROR(write_zeros(sink, pad));
  }
  return Status::ok();
}

std::vector<uint8_t> Writer::bytes() const {
  for (const auto& t : tensors_) CW_CHECK_MSG(t.has_data, "bytes(): tensor '" + t.decl.name + "' has no data");
  VectorSink sink;
  Status s = write_to(sink);
  CW_CHECK_MSG(s.is_ok(), s.to_string());
  return std::move(sink.bytes());
}

Status Writer::write(const std::string& path) const { return write_streaming(path, {}); }

Status Writer::write_streaming(const std::string& path, const TensorProducer& produce) const {
  FileSink file(path);
  CW_RETURN_IF_ERROR(file.open());
  Status s = write_to(file, produce);
  if (s.is_ok()) s = file.close();
  if (!s.is_ok()) file.discard();
  return s;
}

}  // namespace cw::gguf
