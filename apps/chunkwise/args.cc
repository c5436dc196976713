#include "args.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace cw::app {

static std::vector<std::string> split_names(const std::string& names) {
  std::vector<std::string> out;
  std::stringstream ss(names);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

ArgParser::ArgParser(std::string command, std::string synopsis, std::string description)
    : command_(std::move(command)), synopsis_(std::move(synopsis)), description_(std::move(description)) {}

void ArgParser::flag(const std::string& names, bool* out, const std::string& help) {
  Opt o;
  o.names = split_names(names);
  o.help = help;
  o.is_flag = true;
  o.set = [out](const std::string&) {
    *out = true;
    return Status::ok();
  };
  opts_.push_back(std::move(o));
}

void ArgParser::option(const std::string& names, std::string* out, const std::string& metavar,
                       const std::string& help) {
  Opt o;
  o.names = split_names(names);
  o.metavar = metavar;
  o.help = help;
  o.set = [out](const std::string& v) {
    *out = v;
    return Status::ok();
  };
  opts_.push_back(std::move(o));
}

void ArgParser::option(const std::string& names, int64_t* out, const std::string& metavar, const std::string& help,
                       int64_t min, int64_t max) {
  Opt o;
  o.names = split_names(names);
  o.metavar = metavar;
  o.help = help;
  std::string n = o.names.back();
  o.set = [out, min, max, n](const std::string& v) {
    errno = 0;
    char* end = nullptr;
    long long x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno == ERANGE)
      return invalid_argument(n + " expects an integer, got '" + v + "'");
    if (x < min || x > max)
      return out_of_range(n + " must be in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " + v);
    *out = x;
    return Status::ok();
  };
  opts_.push_back(std::move(o));
}

void ArgParser::option(const std::string& names, double* out, const std::string& metavar, const std::string& help,
                       double min, double max) {
  Opt o;
  o.names = split_names(names);
  o.metavar = metavar;
  o.help = help;
  std::string n = o.names.back();
  o.set = [out, min, max, n](const std::string& v) {
    errno = 0;
    char* end = nullptr;
    double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || errno == ERANGE || x != x)
      return invalid_argument(n + " expects a number, got '" + v + "'");
    if (x < min || x > max) {
      std::ostringstream ss;
      ss << n << " must be in [" << min << ", " << max << "], got " << v;
      return out_of_range(ss.str());
    }
    *out = x;
    return Status::ok();
  };
  opts_.push_back(std::move(o));
}

void ArgParser::positionals(std::vector<std::string>* out, const std::string& metavar, const std::string& help) {
  positionals_ = out;
  positionals_metavar_ = metavar;
  positionals_help_ = help;
}

ArgParser::Opt* ArgParser::find(const std::string& name) {
  for (auto& o : opts_)
    for (auto& n : o.names)
      if (n == name) return &o;
  return nullptr;
}

bool ArgParser::given(const std::string& long_name) const {
  for (const auto& o : opts_)
    for (const auto& n : o.names)
      if (n == long_name) return o.seen;
  return false;
}

Status ArgParser::parse(int argc, char** argv, int first) {
  bool only_positionals = false;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (!only_positionals && (a == "-h" || a == "--help")) {
      help_requested_ = true;
      return Status::ok();
    }
    if (!only_positionals && a == "--") {
      only_positionals = true;
      continue;
    }
    if (!only_positionals && a.size() > 1 && a[0] == '-') {
      std::string name = a, value;
      bool has_inline = false;
      if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
        name = a.substr(0, eq);
        value = a.substr(eq + 1);
        has_inline = true;
      }
      Opt* o = find(name);
      if (o == nullptr) return invalid_argument("unknown option '" + name + "' (see chunkwise " + command_ + " --help)");
      o->seen = true;
      if (o->is_flag) {
        if (has_inline) return invalid_argument("option '" + name + "' takes no value");
        CW_RETURN_IF_ERROR(o->set(""));
        continue;
      }
      if (!has_inline) {
        if (i + 1 >= argc) return invalid_argument("option '" + name + "' needs a value (" + o->metavar + ")");
        value = argv[++i];
      }
      CW_RETURN_IF_ERROR(o->set(value));
      continue;
    }
    if (positionals_ == nullptr) return invalid_argument("unexpected argument '" + a + "'");
    positionals_->push_back(a);
  }
  return Status::ok();
}

std::string ArgParser::help() const {
  std::ostringstream ss;
  ss << "usage: chunkwise " << command_ << " " << synopsis_ << "\n\n" << description_ << "\n";
  if (positionals_ != nullptr) ss << "\n  " << positionals_metavar_ << "\n      " << positionals_help_ << "\n";
  ss << "\noptions:\n";
  for (const auto& o : opts_) {
    std::string left;
    for (size_t k = 0; k < o.names.size(); ++k) left += (k ? ", " : "") + o.names[k];
    if (!o.is_flag) left += " " + o.metavar;
    ss << "  " << left << "\n      " << o.help << "\n";
  }
  ss << "  -h, --help\n      show this help\n";
  return ss.str();
}

Result<std::string> read_input_file(const std::string& path, bool dash_is_stdin) {
  const bool from_stdin = dash_is_stdin && path == "-";
  std::FILE* f = from_stdin ? stdin : std::fopen(path.c_str(), "rb");
  if (f == nullptr) return not_found("cannot open '" + path + "': " + std::strerror(errno));
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  if (!from_stdin) std::fclose(f);
  if (failed) return invalid_argument("cannot read '" + path + "': " + std::strerror(err));
  return text;
}

int report_error(const std::string& command, const Status& status) {
  std::fprintf(stderr, "chunkwise %s: %s\n", command.c_str(), status.message().c_str());
  switch (status.code()) {
    case StatusCode::kIoError:
    case StatusCode::kInternal:
    case StatusCode::kResourceExhausted:
      return kExitFailure;
    default:
      return kExitBadInput;
  }
}

}  // namespace cw::app
