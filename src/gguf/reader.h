// GGUF v2/v3 reader. The file is memory-mapped; metadata is parsed once at open and tensor data is used
// in place (zero copy). Every count, length, offset, shape and type read from the file is checked against
// the file size and sane limits before use: a malformed file gives a Status naming the field and the byte
// offset, never an abort and never an allocation sized by an unchecked value.
//
// Thread-safety: a File is immutable after open(); concurrent readers are fine.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/mapped_file.h"
#include "base/status.h"
#include "gguf/types.h"

namespace cw::gguf {

enum class ValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};
const char* value_type_name(ValueType t);

// A metadata value. Strings and string arrays are views into the mapping (valid while the File lives).
// Arrays of numbers keep a pointer to their (possibly unaligned) bytes in the mapping.
class Value {
 public:
  ValueType type() const { return type_; }
  bool is_integer() const;
  bool is_array() const { return type_ == ValueType::kArray; }

  // Scalar accessors: a Status when the type does not fit (integers are range-checked on conversion).
  Result<int64_t> as_int() const;
  Result<uint64_t> as_uint() const;
  Result<double> as_float() const;  // any numeric type
  Result<bool> as_bool() const;
  Result<std::string_view> as_string() const;

  // Arrays.
  ValueType array_type() const { return array_type_; }
  uint64_t array_size() const { return array_size_; }
  // Element i of a string array.
  std::span<const std::string_view> strings() const { return strings_; }
  // Nested arrays (array_type() == kArray).
  const std::vector<Value>& arrays() const { return arrays_; }
  // Numeric arrays converted to the requested element type (checked: a Status if not numeric / out of range).
  Result<std::vector<float>> to_f32_vector() const;
  Result<std::vector<int64_t>> to_i64_vector() const;
  // Raw bytes of a numeric array (array_size() * element size).
  std::span<const uint8_t> raw_array_bytes() const { return raw_; }

 private:
  friend class Parser;
  ValueType type_ = ValueType::kUint8;
  uint64_t u_ = 0;        // unsigned / bool / bit pattern of signed
  int64_t i_ = 0;         // signed integers
  double f_ = 0;          // floats
  std::string_view s_;    // string
  ValueType array_type_ = ValueType::kUint8;
  uint64_t array_size_ = 0;
  std::vector<std::string_view> strings_;
  std::vector<Value> arrays_;
  std::span<const uint8_t> raw_;
};

struct KeyValue {
  std::string_view key;
  Value value;
  uint64_t offset = 0;  // file offset of the key
};

struct TensorInfo {
  std::string_view name;
  std::vector<uint64_t> shape;  // GGUF order: ne[0] (innermost, contiguous) first
  TensorType type = TensorType::kF32;
  uint64_t offset = 0;          // relative to the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the mapping
};

class File {
 public:
  // Maps and parses `path`. Errors: kNotFound / kIoError for the file, kDataLoss for malformed contents
  // (message names the field and byte offset), kUnimplemented for unknown versions or tensor types.
  static Result<std::unique_ptr<File>> open(const std::string& path);
  // Parses an in-memory image (used by the fuzzer and tests). `bytes` must outlive the File.
  static Result<std::unique_ptr<File>> parse(std::span<const uint8_t> bytes, std::string name = "<memory>");

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return bytes_.size(); }
  const std::string& name() const { return name_; }

  const std::vector<KeyValue>& metadata() const { return kvs_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

  // nullptr when absent.
  const Value* find(std::string_view key) const;
  const TensorInfo* find_tensor(std::string_view name) const;

  // Typed getters: not_found if absent, a Status naming the key if the type does not fit.
  Result<std::string_view> get_string(std::string_view key) const;
  Result<int64_t> get_int(std::string_view key) const;
  Result<uint64_t> get_uint(std::string_view key) const;
  Result<double> get_float(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  // The same with a default when the key is absent (a wrong type is still an error).
  Result<int64_t> get_int_or(std::string_view key, int64_t def) const;
  Result<double> get_float_or(std::string_view key, double def) const;
  Result<bool> get_bool_or(std::string_view key, bool def) const;

 private:
  friend class Parser;
  MappedFile map_;
  std::span<const uint8_t> bytes_;
  std::string name_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<KeyValue> kvs_;
  std::vector<TensorInfo> tensors_;
};

}  // namespace cw::gguf
