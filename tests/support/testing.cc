#include "support/testing.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace cw::testing {

static bool is_dir(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::optional<std::string> shared_data_dir() {
  if (const char* env = std::getenv("CW_SHARED_DIR")) {
    std::string d = std::string(env) + "/data";
    if (is_dir(d)) return d;
    return std::nullopt;
  }
  for (const char* cand : {"../shared/data", "../../shared/data", "../../../shared/data"}) {
    if (is_dir(cand)) return std::string(cand);
  }
  return std::nullopt;
}

std::string temp_dir() {
  static std::string dir = [] {
    std::string tmpl = "/tmp/cw_test_XXXXXX";
    char* p = mkdtemp(tmpl.data());
    if (p == nullptr) std::abort();
    return std::string(p);
  }();
  return dir;
}

std::string chunkwise_binary() {
  if (const char* env = std::getenv("CW_BINARY")) return env;
#ifdef CW_BINARY
  return CW_BINARY;
#else
  return "chunkwise";
#endif
}

CommandResult run_command(const std::string& cmdline) {
  static int counter = 0;
  std::string base = temp_dir() + "/cmd" + std::to_string(getpid()) + "_" + std::to_string(counter++);
  std::string full = "(" + cmdline + ") >" + base + ".out 2>" + base + ".err";
  int rc = std::system(full.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  auto slurp = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  r.out = slurp(base + ".out");
  r.err = slurp(base + ".err");
  std::remove((base + ".out").c_str());
  std::remove((base + ".err").c_str());
  return r;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  return out + "'";
}

}  // namespace cw::testing

namespace cw::testing {

GuardedText::GuardedText(std::string_view text) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t data_pages = (text.size() + page - 1) / page;
  length_ = (data_pages + 1) * page;
  base_ = ::mmap(nullptr, length_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base_ == MAP_FAILED) {
    base_ = nullptr;
    ADD_FAILURE() << "mmap failed";
    return;
  }
  char* guard = static_cast<char*>(base_) + data_pages * page;
  char* begin = guard - text.size();
  if (!text.empty()) std::memcpy(begin, text.data(), text.size());
  if (::mprotect(guard, page, PROT_NONE) != 0) ADD_FAILURE() << "mprotect failed";
  view_ = std::string_view(begin, text.size());
}

GuardedText::~GuardedText() {
  if (base_ != nullptr) ::munmap(base_, length_);
}

}  // namespace cw::testing
