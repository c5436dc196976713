// GGUF v3 writer: metadata + tensors, aligned per `general.alignment` (default 32). Used by tests,
// tools and `make-model`.
//
// Two ways to supply tensor bytes, freely mixed in one file:
//  - add_tensor(): the bytes are handed over up front and kept in memory (small test models);
//  - declare_tensor(): only name, type and shape are given; the bytes are produced at write time, tensor
//    by tensor in declaration order, by a TensorProducer writing into a ByteSink (streaming: a 16 GB
//    model never needs to be in memory, since every offset is known from the shapes alone).
// bytes() builds the image in memory; write_to()/write_streaming() stream it to any sink / a file.
//
// Failure: malformed tensor declarations and producer mistakes (wrong byte count) are invalid_argument;
// I/O failures (unwritable path, disk full) are errors naming the path. Files are written to a temporary
// name and renamed into place on success (base/file_io.h): a failed or killed write leaves any previous
// file of that name intact.
//
// Thread-safety: none (build on one thread); write_to() is const and may run while nothing mutates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gguf/reader.h"
#include "gguf/types.h"

namespace cw::gguf {

// Destination of a serialized image. write() either consumes all n bytes or fails with a Status.
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual Status write(const void* data, size_t n) = 0;
};

// Collects the bytes in memory.
class VectorSink : public ByteSink {
 public:
  Status write(const void* data, size_t n) override;
  std::vector<uint8_t>& bytes() { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

// A tensor of the table, as the producer sees it.
struct TensorDecl {
  std::string name;
  TensorType type = TensorType::kF32;
  std::vector<uint64_t> shape;  // GGUF order (ne[0] first)
  uint64_t n_bytes = 0;         // exact bytes the tensor's data occupies (before alignment padding)
};

// Produces the bytes of one declared tensor: called once per declare_tensor()'d tensor, in table order,
// with `index` its position in the tensor table. Must write exactly decl.n_bytes bytes to `sink` (checked:
// invalid_argument otherwise) or return an error, which aborts the write and is returned as is. The
// writer adds the alignment padding.
using TensorProducer = std::function<Status(size_t index, const TensorDecl& decl, ByteSink& sink)>;

class Writer {
 public:
  Writer& set_alignment(uint32_t alignment);  // also written as general.alignment when != 32

  Writer& add_u8(std::string_view key, uint8_t v);
  Writer& add_i8(std::string_view key, int8_t v);
  Writer& add_u16(std::string_view key, uint16_t v);
  Writer& add_i16(std::string_view key, int16_t v);
  Writer& add_u32(std::string_view key, uint32_t v);
  Writer& add_i32(std::string_view key, int32_t v);
  Writer& add_u64(std::string_view key, uint64_t v);
  Writer& add_i64(std::string_view key, int64_t v);
  Writer& add_f32(std::string_view key, float v);
  Writer& add_f64(std::string_view key, double v);
  Writer& add_bool(std::string_view key, bool v);
  Writer& add_string(std::string_view key, std::string_view v);
  Writer& add_string_array(std::string_view key, const std::vector<std::string>& v);
  Writer& add_f32_array(std::string_view key, const std::vector<float>& v);
  Writer& add_i32_array(std::string_view key, const std::vector<int32_t>& v);
  // A nested array: array of arrays of int32 (exercises the nested-array path of readers).
  Writer& add_i32_array_array(std::string_view key, const std::vector<std::vector<int32_t>>& v);
  // Copies a value read by the reader (any type, including string arrays and nested arrays), keeping its
  // exact type and bits: used to carry metadata from one file to another.
  Writer& add_value(std::string_view key, const Value& v);

  // Adds a tensor. `shape` is GGUF order (ne[0] first). `data` must hold exactly the bytes of the tensor
  // for `type` (checked: invalid_argument otherwise).
  Status add_tensor(std::string_view name, TensorType type, std::vector<uint64_t> shape,
                    std::vector<uint8_t> data);

  // Declares a tensor whose bytes come from the TensorProducer at write time (same checks as add_tensor).
  Status declare_tensor(std::string_view name, TensorType type, std::vector<uint64_t> shape);

  // The tensor table in file order.
  std::vector<TensorDecl> tensor_table() const;
  // Size of the whole file (header, metadata, tensor infos, aligned data), known before writing.
  uint64_t file_size() const;

  // Serialized file image. Every tensor must have been added with add_tensor() (checked).
  std::vector<uint8_t> bytes() const;
  // Writes the image to `path` (every tensor added with add_tensor()).
  Status write(const std::string& path) const;
  // Streams the image to `sink`; declared tensors are produced by `produce` (required when any tensor was
  // declared: invalid_argument otherwise).
  Status write_to(ByteSink& sink, const TensorProducer& produce = {}) const;
  // The same into a file created (truncated) at `path`; removes the partial file on failure.
  Status write_streaming(const std::string& path, const TensorProducer& produce) const;

 private:
  struct Tensor {
    TensorDecl decl;
    bool has_data = false;
    std::vector<uint8_t> data;
  };
  Writer& add_raw(std::string_view key, ValueType type, std::vector<uint8_t> payload);
  Status check_tensor(std::string_view name, TensorType type, const std::vector<uint64_t>& shape,
                      uint64_t* n_bytes) const;
  std::vector<uint8_t> header_bytes() const;  // everything before the data section, padded
  uint32_t alignment_ = 32;
  uint64_t n_kv_ = 0;
  std::vector<uint8_t> kv_bytes_;
  std::vector<Tensor> tensors_;
};

}  // namespace cw::gguf
