// The one path by which user-named files are read and written (inputs of every subcommand, outputs of
// chunk / batch / make-model and the GGUF writer).
//
// Reading (open_input, read_input, MappedFile::open):
//   - the file is opened with O_NONBLOCK, so naming a FIFO never blocks in open(); the descriptor, not the
//     name, is then checked with fstat;
//   - only regular files are read by name: directories, FIFOs, sockets and devices (/dev/zero, /dev/stdin)
//     are refused with a message saying what the path is, so no read can go on forever;
//   - standard input ("-", where the caller allows it) may be a pipe or a terminal; it is read up to a
//     cap (ReadOptions::max_stdin_bytes) and refused beyond it, so memory stays bounded;
//   - errors: kNotFound when the path does not exist, kInvalidArgument when it exists but cannot be read
//     as an input (permission, not a regular file, too large), kIoError for a read error. All name the path.
//
// Writing (OutputFile):
//   - a regular-file output is written to a temporary file in the same directory and renamed over the
//     target only by commit(); a failed, abandoned or killed run leaves the previous content intact (a
//     killed run may leave its ".<name>.tmp-XXXXXX" file behind; nothing else);
//   - an output that exists and is not a regular file (/dev/null, /dev/stdout, a FIFO) is written in place;
//     a directory is refused; a symbolic link is followed (the link's target is replaced, the link stays);
//   - `check_output_not_input` refuses an output that is the same file as one of the inputs.
//
// Thread-safety: the functions are reentrant; an OutputFile is used by one thread at a time.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace cw {

// Largest input read from standard input (or another stream) by default.
constexpr uint64_t kMaxStdinBytes = uint64_t{256} << 20;

struct ReadOptions {
  bool dash_is_stdin = false;               // "-" means standard input
  uint64_t max_stdin_bytes = kMaxStdinBytes;
};

// Opens a regular file for reading (see above). Returns the descriptor (the caller closes it) and its size.
struct OpenedInput {
  int fd = -1;
  uint64_t size = 0;
};
Result<OpenedInput> open_input(const std::string& path);

// Reads a whole input (a regular file by name, or standard input for "-" when allowed).
Result<std::string> read_input(const std::string& path, const ReadOptions& options = {});

// Refuses text that is evidently UTF-16 or UTF-32 (a byte-order mark, or NUL bytes in every other
// position of its start): tokenizers and chunkers take UTF-8. `name` is used in the message.
Status check_utf8_encoding(std::string_view text, const std::string& name);

// Removes a leading UTF-8 byte-order mark (EF BB BF), if any.
std::string_view strip_utf8_bom(std::string_view text);

// An output file written atomically (see above).
class OutputFile {
 public:
  OutputFile() = default;
  ~OutputFile();  // discards an uncommitted temporary file
  OutputFile(OutputFile&& other) noexcept;
  OutputFile& operator=(OutputFile&& other) noexcept;
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  // Errors: the target is a directory, its directory does not exist or is not writable (kInvalidArgument
  // / kNotFound naming the path), or the temporary file cannot be created (kIoError).
  static Result<OutputFile> create(const std::string& path);

  std::FILE* file() { return f_; }
  const std::string& path() const { return path_; }
  Status write(std::string_view bytes);
  // Flushes, syncs and renames the temporary file into place. Errors (disk full, ...) are kIoError and
  // leave the previous content of the target intact.
  Status commit();
  // Closes and removes the temporary file (no-op after commit()).
  void discard();

 private:
  std::FILE* f_ = nullptr;
  std::string path_;      // the target, as the user named it
  std::string final_;     // the target with symbolic links resolved
  std::string tmp_;       // empty when writing in place (a device or FIFO)
};

// Writes `data` to `path` atomically (OutputFile).
Status write_file(const std::string& path, const void* data, size_t size);

// kInvalidArgument when `output` names the same file as one of `inputs` (same device and inode; inputs
// that do not exist or are "-" are ignored). Call before creating the output.
Status check_output_not_input(const std::string& output, const std::vector<std::string>& inputs);

}  // namespace cw
