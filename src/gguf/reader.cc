// GGUF parsing with every read bounds-checked. Layout (little endian):
//   "GGUF" u32 version u64 n_tensors u64 n_kv
//   n_kv × { string key, u32 value_type, value }      string = u64 length + bytes
//   n_tensors × { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset }
//   padding to `alignment`, then the data section; tensor offsets are relative to it.
#include "gguf/reader.h"

#include <cstring>
#include <limits>
#include <unordered_set>

namespace cw::gguf {

namespace {
constexpr uint32_t kMaxDims = 4;
constexpr int kMaxArrayDepth = 8;
constexpr uint64_t kMaxAlignment = 1u << 20;

size_t value_type_size(ValueType t) {
  switch (t) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kBool: return 1;
    case ValueType::kUint16:
    case ValueType::kInt16: return 2;
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kFloat32: return 4;
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kFloat64: return 8;
    default: return 0;  // string / array: variable
  }
}
}  // namespace

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::kUint8: return "u8";
    case ValueType::kInt8: return "i8";
    case ValueType::kUint16: return "u16";
    case ValueType::kInt16: return "i16";
    case ValueType::kUint32: return "u32";
    case ValueType::kInt32: return "i32";
    case ValueType::kFloat32: return "f32";
    case ValueType::kBool: return "bool";
    case ValueType::kString: return "string";
    case ValueType::kArray: return "array";
    case ValueType::kUint64: return "u64";
    case ValueType::kInt64: return "i64";
    case ValueType::kFloat64: return "f64";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------------------
// Value accessors

bool Value::is_integer() const {
  switch (type_) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kUint16:
    case ValueType::kInt16:
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kUint64:
    case ValueType::kInt64: return true;
    default: return false;
  }
}

static bool is_signed(ValueType t) {
  return t == ValueType::kInt8 || t == ValueType::kInt16 || t == ValueType::kInt32 || t == ValueType::kInt64;
}

Result<int64_t> Value::as_int() const {
  if (!is_integer()) return invalid_argument(std::string("expected an integer, found ") + value_type_name(type_));
  if (is_signed(type_)) return i_;
  if (u_ > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return out_of_range("integer too large");
  return static_cast<int64_t>(u_);
}

Result<uint64_t> Value::as_uint() const {
  if (!is_integer()) return invalid_argument(std::string("expected an integer, found ") + value_type_name(type_));
  if (is_signed(type_)) {
    if (i_ < 0) return out_of_range("expected a non-negative integer, found " + std::to_string(i_));
    return static_cast<uint64_t>(i_);
  }
  return u_;
}

Result<double> Value::as_float() const {
  if (type_ == ValueType::kFloat32 || type_ == ValueType::kFloat64) return f_;
  if (is_integer()) return is_signed(type_) ? static_cast<double>(i_) : static_cast<double>(u_);
  return invalid_argument(std::string("expected a number, found ") + value_type_name(type_));
}

Result<bool> Value::as_bool() const {
  if (type_ != ValueType::kBool) return invalid_argument(std::string("expected a bool, found ") + value_type_name(type_));
  return u_ != 0;
}

Result<std::string_view> Value::as_string() const {
  if (type_ != ValueType::kString)
    return invalid_argument(std::string("expected a string, found ") + value_type_name(type_));
  return s_;
}

template <typename T>
static T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Reads element i of a numeric array as double / int64 (exact for integers).
static bool array_element(ValueType t, const uint8_t* p, double* f, int64_t* i, bool* is_int) {
  *is_int = true;
  switch (t) {
    case ValueType::kUint8: *i = load<uint8_t>(p); break;
    case ValueType::kInt8: *i = load<int8_t>(p); break;
    case ValueType::kUint16: *i = load<uint16_t>(p); break;
    case ValueType::kInt16: *i = load<int16_t>(p); break;
    case ValueType::kUint32: *i = load<uint32_t>(p); break;
    case ValueType::kInt32: *i = load<int32_t>(p); break;
    case ValueType::kBool: *i = load<uint8_t>(p) != 0; break;
    case ValueType::kInt64: *i = load<int64_t>(p); break;
    case ValueType::kUint64: {
      uint64_t u = load<uint64_t>(p);
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
      *i = static_cast<int64_t>(u);
      break;
    }
    case ValueType::kFloat32: *f = load<float>(p); *is_int = false; break;
    case ValueType::kFloat64: *f = load<double>(p); *is_int = false; break;
    default: return false;
  }
  if (*is_int) *f = static_cast<double>(*i);
  return true;
}

Result<std::vector<float>> Value::to_f32_vector() const {
  if (type_ != ValueType::kArray || value_type_size(array_type_) == 0)
    return invalid_argument("expected a numeric array");
  size_t es = value_type_size(array_type_);
  std::vector<float> out(array_size_);
  for (uint64_t k = 0; k < array_size_; ++k) {
    double f;
    int64_t i;
    bool is_int;
    if (!array_element(array_type_, raw_.data() + k * es, &f, &i, &is_int))
      return out_of_range("array element " + std::to_string(k) + " out of range");
    out[k] = static_cast<float>(f);
  }
  return out;
}

Result<std::vector<int64_t>> Value::to_i64_vector() const {
  if (type_ != ValueType::kArray || value_type_size(array_type_) == 0)
    return invalid_argument("expected a numeric array");
  size_t es = value_type_size(array_type_);
  std::vector<int64_t> out(array_size_);
  for (uint64_t k = 0; k < array_size_; ++k) {
    double f;
    int64_t i;
    bool is_int;
    if (!array_element(array_type_, raw_.data() + k * es, &f, &i, &is_int))
      return out_of_range("array element " + std::to_string(k) + " out of range");
    if (!is_int) return invalid_argument("expected an integer array, found " + std::string(value_type_name(array_type_)));
    out[k] = i;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Parser

class Parser {
 public:
  Parser(File& f) : f_(f), data_(f.bytes_.data()), size_(f.bytes_.size()) {}

  Status run() {
    if (size_ < 4 || std::memcmp(data_, "GGUF", 4) != 0) return err(0, "magic", "not a GGUF file (bad magic)");
    pos_ = 4;
    uint32_t version;
    CW_RETURN_IF_ERROR(u32("version", &version));
    if (version != 2 && version != 3)
      return Status(StatusCode::kUnimplemented,
                    where(4, "version") + "GGUF version " + std::to_string(version) + " is not supported (2 and 3 are)");
    f_.version_ = version;
    uint64_t n_tensors, n_kv;
    size_t at = pos_;
    CW_RETURN_IF_ERROR(u64("n_tensors", &n_tensors));
    // A tensor info takes at least 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset) bytes.
    if (n_tensors > remaining() / 24)
      return err(at, "n_tensors", "tensor count " + std::to_string(n_tensors) + " exceeds what the file can hold");
    at = pos_;
    CW_RETURN_IF_ERROR(u64("n_kv", &n_kv));
    // A key/value takes at least 8 (key length) + 4 (type) + 1 (smallest value) bytes.
    if (n_kv > remaining() / 13)
      return err(at, "n_kv", "metadata count " + std::to_string(n_kv) + " exceeds what the file can hold");

    f_.kvs_.reserve(n_kv);
    std::unordered_set<std::string_view> keys;
    for (uint64_t k = 0; k < n_kv; ++k) {
      KeyValue kv;
      kv.offset = pos_;
      std::string field = "metadata " + std::to_string(k);
      CW_RETURN_IF_ERROR(str(field + " key", &kv.key));
      if (kv.key.empty()) return err(kv.offset, field + " key", "empty key");
      field = "metadata '" + std::string(kv.key.substr(0, 64)) + "'";
      if (!keys.insert(kv.key).second) return err(kv.offset, field, "duplicate key");
      uint32_t type;
      size_t type_at = pos_;
      CW_RETURN_IF_ERROR(u32(field + " type", &type));
      if (type > static_cast<uint32_t>(ValueType::kFloat64))
        return err(type_at, field + " type", "unknown value type " + std::to_string(type));
      CW_RETURN_IF_ERROR(value(field, static_cast<ValueType>(type), &kv.value, 0));
      f_.kvs_.push_back(std::move(kv));
    }

    if (const Value* a = f_.find("general.alignment")) {
      auto v = a->as_uint();
      if (!v.is_ok() || *v == 0 || (*v & (*v - 1)) != 0 || *v > kMaxAlignment)
        return data_loss(f_.name_ + ": general.alignment must be a power of two <= " + std::to_string(kMaxAlignment));
      f_.alignment_ = *v;
    }

    f_.tensors_.reserve(n_tensors);
    std::unordered_set<std::string_view> names;
    for (uint64_t t = 0; t < n_tensors; ++t) {
      TensorInfo ti;
      size_t ti_at = pos_;
      std::string field = "tensor " + std::to_string(t);
      CW_RETURN_IF_ERROR(str(field + " name", &ti.name));
      field = "tensor '" + std::string(ti.name.substr(0, 96)) + "'";
      if (!names.insert(ti.name).second) return err(ti_at, field, "duplicate tensor name");
      uint32_t n_dims;
      size_t dims_at = pos_;
      CW_RETURN_IF_ERROR(u32(field + " n_dims", &n_dims));
      if (n_dims == 0 || n_dims > kMaxDims)
        return err(dims_at, field + " n_dims", std::to_string(n_dims) + " dimensions (1.." + std::to_string(kMaxDims) + " allowed)");
      ti.shape.resize(n_dims);
      uint64_t n_el = 1;
      for (uint32_t d = 0; d < n_dims; ++d) {
        size_t d_at = pos_;
        CW_RETURN_IF_ERROR(u64(field + " ne[" + std::to_string(d) + "]", &ti.shape[d]));
        if (ti.shape[d] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
            __builtin_mul_overflow(n_el, ti.shape[d], &n_el) ||
            n_el > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          return err(d_at, field + " shape", "element count overflows");
      }
      uint32_t type;
      size_t type_at = pos_;
      CW_RETURN_IF_ERROR(u32(field + " type", &type));
      auto traits = type_traits(type);
      if (!traits)
        return Status(StatusCode::kUnimplemented, where(type_at, field + " type") + "unknown tensor type " +
                                                      std::to_string(type) + " (supported: " + supported_type_names() + ")");
      ti.type = traits->type;
      if (ti.shape[0] % traits->block_size != 0)
        return err(type_at, field + " shape", "ne[0] = " + std::to_string(ti.shape[0]) + " is not a multiple of the " +
                                                  traits->name + " block size " + std::to_string(traits->block_size));
      ti.n_elements = n_el;
      if (__builtin_mul_overflow(n_el / traits->block_size, uint64_t{traits->block_bytes}, &ti.n_bytes))
        return err(type_at, field + " shape", "byte size overflows");
      size_t off_at = pos_;
      CW_RETURN_IF_ERROR(u64(field + " offset", &ti.offset));
      if (ti.offset % f_.alignment_ != 0)
        return err(off_at, field + " offset",
                   "offset " + std::to_string(ti.offset) + " is not a multiple of the alignment " + std::to_string(f_.alignment_));
      f_.tensors_.push_back(std::move(ti));
    }

    uint64_t data_offset = (pos_ + f_.alignment_ - 1) / f_.alignment_ * f_.alignment_;
    f_.data_offset_ = data_offset;
    if (!f_.tensors_.empty()) {
      if (data_offset > size_) return err(pos_, "data section", "file ends before the tensor data section (truncated?)");
      uint64_t data_size = size_ - data_offset;
      for (auto& ti : f_.tensors_) {
        if (ti.offset > data_size || ti.n_bytes > data_size - ti.offset)
          return data_loss(f_.name_ + ": tensor '" + std::string(ti.name.substr(0, 96)) + "': data [" + std::to_string(ti.offset) + ", +" +
                           std::to_string(ti.n_bytes) + ") runs past the end of the file (data section holds " +
                           std::to_string(data_size) + " bytes; truncated?)");
        ti.data = data_ + data_offset + ti.offset;
      }
    }
    return Status::ok();
  }

 private:
  size_t remaining() const { return size_ - pos_; }
  std::string where(size_t at, const std::string& field) const {
    return f_.name_ + ": " + field + " at offset " + std::to_string(at) + ": ";
  }
  Status err(size_t at, const std::string& field, const std::string& what) const {
    return data_loss(where(at, field) + what);
  }
  Status need(size_t n, const std::string& field) const {
    if (n > remaining())
      return err(pos_, field, "needs " + std::to_string(n) + " bytes but the file ends after " +
                                  std::to_string(remaining()) + " (truncated?)");
    return Status::ok();
  }
  Status u32(const std::string& field, uint32_t* v) {
    *v = 0;
    CW_RETURN_IF_ERROR(need(4, field));
    *v = load<uint32_t>(data_ + pos_);
    pos_ += 4;
    return Status::ok();
  }
  Status u64(const std::string& field, uint64_t* v) {
    *v = 0;
    CW_RETURN_IF_ERROR(need(8, field));
    *v = load<uint64_t>(data_ + pos_);
    pos_ += 8;
    return Status::ok();
  }
  Status str(const std::string& field, std::string_view* s) {
    uint64_t len = 0;
    size_t at = pos_;
    CW_RETURN_IF_ERROR(u64(field + " length", &len));
    if (len > remaining())
      return err(at, field, "string length " + std::to_string(len) + " exceeds the " + std::to_string(remaining()) +
                                " bytes left in the file");
    *s = std::string_view(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return Status::ok();
  }

  Status value(const std::string& field, ValueType type, Value* v, int depth) {
    v->type_ = type;
    size_t es = value_type_size(type);
    if (es != 0) {
      CW_RETURN_IF_ERROR(need(es, field));
      const uint8_t* p = data_ + pos_;
      switch (type) {
        case ValueType::kUint8: v->u_ = load<uint8_t>(p); break;
        case ValueType::kInt8: v->i_ = load<int8_t>(p); break;
        case ValueType::kUint16: v->u_ = load<uint16_t>(p); break;
        case ValueType::kInt16: v->i_ = load<int16_t>(p); break;
        case ValueType::kUint32: v->u_ = load<uint32_t>(p); break;
        case ValueType::kInt32: v->i_ = load<int32_t>(p); break;
        case ValueType::kUint64: v->u_ = load<uint64_t>(p); break;
        case ValueType::kInt64: v->i_ = load<int64_t>(p); break;
        case ValueType::kFloat32: v->f_ = load<float>(p); break;
        case ValueType::kFloat64: v->f_ = load<double>(p); break;
        case ValueType::kBool: {
          uint8_t b = load<uint8_t>(p);
          if (b > 1) return err(pos_, field, "bool value " + std::to_string(b) + " is neither 0 nor 1");
          v->u_ = b;
          break;
        }
        default: break;
      }
      pos_ += es;
      return Status::ok();
    }
    if (type == ValueType::kString) return str(field, &v->s_);
    // Array.
    if (depth >= kMaxArrayDepth) return err(pos_, field, "arrays nested deeper than " + std::to_string(kMaxArrayDepth));
    uint32_t et;
    size_t at = pos_;
    CW_RETURN_IF_ERROR(u32(field + " element type", &et));
    if (et > static_cast<uint32_t>(ValueType::kFloat64))
      return err(at, field + " element type", "unknown value type " + std::to_string(et));
    v->array_type_ = static_cast<ValueType>(et);
    at = pos_;
    uint64_t count;
    CW_RETURN_IF_ERROR(u64(field + " count", &count));
    v->array_size_ = count;
    size_t ees = value_type_size(v->array_type_);
    if (ees != 0) {
      if (count > remaining() / ees)
        return err(at, field + " count", "array of " + std::to_string(count) + " " + value_type_name(v->array_type_) +
                                             " exceeds the " + std::to_string(remaining()) + " bytes left in the file");
      v->raw_ = std::span<const uint8_t>(data_ + pos_, count * ees);
      if (v->array_type_ == ValueType::kBool) {
        for (uint64_t k = 0; k < count; ++k)
          if (data_[pos_ + k] > 1) return err(pos_ + k, field, "bool element is neither 0 nor 1");
      }
      pos_ += count * ees;
      return Status::ok();
    }
    if (v->array_type_ == ValueType::kString) {
      if (count > remaining() / 8)
        return err(at, field + " count", "array of " + std::to_string(count) + " strings exceeds the " +
                                             std::to_string(remaining()) + " bytes left in the file");
      v->strings_.resize(count);
      for (uint64_t k = 0; k < count; ++k) {
        // Hot path for vocabularies (100k+ strings): build the field name only on error.
        if (remaining() >= 8) {
          uint64_t len = load<uint64_t>(data_ + pos_);
          if (len <= remaining() - 8) {
            v->strings_[k] = std::string_view(reinterpret_cast<const char*>(data_ + pos_ + 8), len);
            pos_ += 8 + len;
            continue;
          }
        }
        CW_RETURN_IF_ERROR(str(field + "[" + std::to_string(k) + "]", &v->strings_[k]));
      }
      return Status::ok();
    }
    // Nested arrays: each needs at least 12 bytes (type + count).
    if (count > remaining() / 12)
      return err(at, field + " count", "array of " + std::to_string(count) + " arrays exceeds the " +
                                           std::to_string(remaining()) + " bytes left in the file");
    v->arrays_.resize(count);
    for (uint64_t k = 0; k < count; ++k)
      CW_RETURN_IF_ERROR(value(field + "[" + std::to_string(k) + "]", ValueType::kArray, &v->arrays_[k], depth + 1));
    return Status::ok();
  }

  File& f_;
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------------------------
// File

Result<std::unique_ptr<File>> File::open(const std::string& path) {
  CW_ASSIGN_OR_RETURN(MappedFile map, MappedFile::open(path));
  auto f = std::unique_ptr<File>(new File());
  f->bytes_ = std::span<const uint8_t>(map.data(), map.size());
  f->map_ = std::move(map);
  f->name_ = path;
  CW_RETURN_IF_ERROR(Parser(*f).run());
  return f;
}

Result<std::unique_ptr<File>> File::parse(std::span<const uint8_t> bytes, std::string name) {
  auto f = std::unique_ptr<File>(new File());
  f->bytes_ = bytes;
  f->name_ = std::move(name);
  CW_RETURN_IF_ERROR(Parser(*f).run());
  return f;
}

const Value* File::find(std::string_view key) const {
  for (const auto& kv : kvs_)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

template <typename T, typename Fn>
static Result<T> typed_get(const File& f, std::string_view key, Fn fn) {
  const Value* v = f.find(key);
  if (v == nullptr) return not_found(f.name() + ": metadata key '" + std::string(key) + "' is missing");
  auto r = fn(*v);
  if (!r.is_ok()) return Status(r.status().code(), f.name() + ": metadata '" + std::string(key) + "': " + r.status().message());
  return *r;
}

Result<std::string_view> File::get_string(std::string_view key) const {
  return typed_get<std::string_view>(*this, key, [](const Value& v) { return v.as_string(); });
}
Result<int64_t> File::get_int(std::string_view key) const {
  return typed_get<int64_t>(*this, key, [](const Value& v) { return v.as_int(); });
}
Result<uint64_t> File::get_uint(std::string_view key) const {
  return typed_get<uint64_t>(*this, key, [](const Value& v) { return v.as_uint(); });
}
Result<double> File::get_float(std::string_view key) const {
  return typed_get<double>(*this, key, [](const Value& v) { return v.as_float(); });
}
Result<bool> File::get_bool(std::string_view key) const {
  return typed_get<bool>(*this, key, [](const Value& v) { return v.as_bool(); });
}
Result<int64_t> File::get_int_or(std::string_view key, int64_t def) const {
  if (find(key) == nullptr) return def;
  return get_int(key);
}
Result<double> File::get_float_or(std::string_view key, double def) const {
  if (find(key) == nullptr) return def;
  return get_float(key);
}
Result<bool> File::get_bool_or(std::string_view key, bool def) const {
  if (find(key) == nullptr) return def;
  return get_bool(key);
}

}  // namespace cw::gguf
