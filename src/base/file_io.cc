#include "base/file_io.h"

#include <fcntl.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace cw {
namespace {

std::string quoted(const std::string& path) { return "'" + path + "'"; }

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a pipe (FIFO)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "a special file";
}

Status open_error(const std::string& what, const std::string& path, int e) {
  if (e == ENOENT || e == ENOTDIR) return not_found("cannot " + what + " " + quoted(path) + ": " + std::strerror(e));
  return invalid_argument("cannot " + what + " " + quoted(path) + ": " + std::strerror(e));
}

// Reads `fd` to its end, at most `max_bytes` (more is an error naming `name`).
Status read_all(int fd, const std::string& name, uint64_t max_bytes, uint64_t size_hint, std::string* out) {
  if (size_hint > 0) out->reserve(static_cast<size_t>(size_hint));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) return Status::ok();
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {  // a non-blocking descriptor with nothing yet: wait for it
        fd_set set;
        FD_ZERO(&set);
        FD_SET(fd, &set);
        (void)::select(fd + 1, &set, nullptr, nullptr, nullptr);
        continue;
      }
      return io_error("cannot read " + name + ": " + std::strerror(errno));
    }
    if (out->size() + static_cast<uint64_t>(n) > max_bytes) {
      return invalid_argument(name + " holds more than " + std::to_string(max_bytes) +
                              " bytes, the limit for a streamed input; pass a regular file instead");
    }
    out->append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

Result<OpenedInput> open_input(const std::string& path) {
  if (path.empty()) return invalid_argument("an empty file name was given");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return open_error("open", path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return io_error("cannot stat " + quoted(path) + ": " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    const char* kind = file_kind(st.st_mode);
    ::close(fd);
    return invalid_argument(quoted(path) + " is " + kind + ", not a regular file");
  }
  // Back to blocking reads for the regular file.
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return OpenedInput{fd, static_cast<uint64_t>(st.st_size)};
}

Result<std::string> read_input(const std::string& path, const ReadOptions& options) {
  std::string text;
  if (options.dash_is_stdin && path == "-") {
    CW_RETURN_IF_ERROR(read_all(0, "standard input", options.max_stdin_bytes, 0, &text));
    return text;
  }
  CW_ASSIGN_OR_RETURN(OpenedInput in, open_input(path));
  // A regular file's size bounds the read (a file that grows while read is cut at twice its size).
  const uint64_t cap = in.size > (UINT64_MAX / 4) ? UINT64_MAX : 2 * in.size + (1 << 20);
  Status s = read_all(in.fd, quoted(path), cap, in.size, &text);
  ::close(in.fd);
  CW_RETURN_IF_ERROR(s);
  return text;
}

Status check_utf8_encoding(std::string_view text, const std::string& name) {
  auto refuse = [&](const char* encoding, const char* why) {
    return invalid_argument(name + " looks like " + encoding + " text (" + why +
                            "); convert it to UTF-8, e.g. with iconv -f " + encoding + " -t UTF-8");
  };
  auto starts = [&](std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; };
  if (starts(std::string_view("\xFF\xFE\0\0", 4)) || starts(std::string_view("\0\0\xFE\xFF", 4)))
    return refuse("UTF-32", "it starts with a UTF-32 byte-order mark");
  if (starts("\xFF\xFE") || starts("\xFE\xFF")) return refuse("UTF-16", "it starts with a UTF-16 byte-order mark");
  // Without a mark: UTF-16 of mostly ASCII has a NUL in every other byte. Look at the first 4 KiB.
  const size_t n = std::min<size_t>(text.size(), 4096) & ~size_t{1};
  if (n >= 16) {  // 8 pairs: fewer is too little evidence
    size_t zero_even = 0, zero_odd = 0;
    for (size_t i = 0; i < n; i += 2) {
      zero_even += text[i] == '\0';
      zero_odd += text[i + 1] == '\0';
    }
    const size_t pairs = n / 2;
    // Most pairs have the NUL on one side and (almost) none on the other.
    if ((zero_odd * 4 >= pairs * 3 && zero_even * 16 <= pairs) || (zero_even * 4 >= pairs * 3 && zero_odd * 16 <= pairs))
      return refuse("UTF-16", "NUL bytes in every other position");
  }
  return Status::ok();
}

std::string_view strip_utf8_bom(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  return text;
}

// ---------------------------------------------------------------------------------------------------------
// OutputFile

OutputFile::~OutputFile() { discard(); }

OutputFile::OutputFile(OutputFile&& o) noexcept
    : f_(o.f_), path_(std::move(o.path_)), final_(std::move(o.final_)), tmp_(std::move(o.tmp_)) {
  o.f_ = nullptr;
  o.tmp_.clear();
}

OutputFile& OutputFile::operator=(OutputFile&& o) noexcept {
  if (this != &o) {
    discard();
    f_ = o.f_;
    path_ = std::move(o.path_);
    final_ = std::move(o.final_);
    tmp_ = std::move(o.tmp_);
    o.f_ = nullptr;
    o.tmp_.clear();
  }
  return *this;
}

Result<OutputFile> OutputFile::create(const std::string& path) {
  if (path.empty()) return invalid_argument("an empty output file name was given");
  OutputFile out;
  out.path_ = path;
  out.final_ = path;
  struct stat st {};
  mode_t mode = 0666;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return invalid_argument("cannot write " + quoted(path) + ": it is a directory");
    if (!S_ISREG(st.st_mode)) {
      // A device or FIFO: written in place (renaming over /dev/null would replace the device).
      out.f_ = std::fopen(path.c_str(), "wb");
      if (out.f_ == nullptr) return open_error("write", path, errno);
      return out;
    }
    if (::access(path.c_str(), W_OK) != 0) return open_error("write", path, errno);
    mode = st.st_mode & 07777;
    char resolved[PATH_MAX];
    if (::realpath(path.c_str(), resolved) != nullptr) out.final_ = resolved;
  } else {
    const mode_t mask = ::umask(0);
    ::umask(mask);
    mode = 0666 & ~mask;
  }
  const size_t slash = out.final_.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : out.final_.substr(0, slash));
  const std::string base = slash == std::string::npos ? out.final_ : out.final_.substr(slash + 1);
  std::string tmpl = (dir == "." && slash == std::string::npos ? "" : dir + "/") + "." + base + ".tmp-XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  const int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    if (e == ENOENT || e == ENOTDIR) return not_found("cannot write " + quoted(path) + ": its directory does not exist");
    if (e == EACCES || e == EROFS || e == EPERM || e == ENAMETOOLONG)
      return invalid_argument("cannot write " + quoted(path) + ": " + std::strerror(e));
    return io_error("cannot create a temporary file next to " + quoted(path) + ": " + std::strerror(e));
  }
  (void)::fchmod(fd, mode);
  out.tmp_ = name.data();
  out.f_ = ::fdopen(fd, "wb");
  if (out.f_ == nullptr) {
    const int e = errno;
    ::close(fd);
    ::unlink(out.tmp_.c_str());
    out.tmp_.clear();
    return io_error("cannot open a temporary file next to " + quoted(path) + ": " + std::strerror(e));
  }
  return out;
}

Status OutputFile::write(std::string_view bytes) {
  CW_CHECK(f_ != nullptr);
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f_) != bytes.size())
    return io_error("cannot write " + quoted(path_) + ": " + std::strerror(errno));
  return Status::ok();
}

Status OutputFile::commit() {
  CW_CHECK(f_ != nullptr);
  std::FILE* f = f_;
  f_ = nullptr;
  int e = 0;
  if (std::fflush(f) != 0 || std::ferror(f) != 0) e = errno != 0 ? errno : EIO;  // ferror: an earlier write failed
  if (e == 0 && !tmp_.empty() && ::fsync(fileno(f)) != 0) e = errno;
  if (std::fclose(f) != 0 && e == 0) e = errno;
  if (e == 0 && !tmp_.empty() && std::rename(tmp_.c_str(), final_.c_str()) != 0) e = errno;
  if (e != 0) {
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
    tmp_.clear();
    return io_error("cannot write " + quoted(path_) + ": " + std::strerror(e));
  }
  tmp_.clear();
  return Status::ok();
}

void OutputFile::discard() {
  if (f_ != nullptr) {
    std::fclose(f_);
    f_ = nullptr;
  }
  if (!tmp_.empty()) {
    ::unlink(tmp_.c_str());
    tmp_.clear();
  }
}

Status write_file(const std::string& path, const void* data, size_t size) {
  CW_ASSIGN_OR_RETURN(OutputFile out, OutputFile::create(path));
  CW_RETURN_IF_ERROR(out.write(std::string_view(static_cast<const char*>(data), size)));
  return out.commit();
}

Status check_output_not_input(const std::string& output, const std::vector<std::string>& inputs) {
  struct stat out {};
  if (output.empty() || output == "-" || ::stat(output.c_str(), &out) != 0) return Status::ok();
  if (!S_ISREG(out.st_mode)) return Status::ok();  // /dev/null etc. may appear anywhere
  for (const std::string& in : inputs) {
    struct stat st {};
    if (in == "-" || ::stat(in.c_str(), &st) != 0) continue;
    if (st.st_dev == out.st_dev && st.st_ino == out.st_ino)
      return invalid_argument("the output " + quoted(output) + " is the input " + quoted(in) +
                              "; writing it would destroy the input: choose another output file");
  }
  return Status::ok();
}

}  // namespace cw
