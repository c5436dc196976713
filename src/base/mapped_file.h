// Read-only file mapping (mmap). The mapping lives as long as the MappedFile; moving transfers it.
// Opened through open_input (base/file_io.h): only regular files; failure (missing file, directory, FIFO,
// device, permission, mmap error) is a Status, never an abort.
//
// A mapping ends exactly at the file's last byte: nothing may read past data() + size() (when the size
// is a multiple of the page size, the next byte is unmapped).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/status.h"

namespace cw {

class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // Maps the whole file. An empty file gives size() == 0 and data() == nullptr.
  static Result<MappedFile> open(const std::string& path);

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void reset();
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};


}  // namespace cw
