#include "args.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "base/file_io.h"
#include "base/utf8.h"

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

void ArgParser::option(const std::string& names, std::vector<std::string>* out, const std::string& metavar,
                       const std::string& help) {
  option(names, static_cast<std::string*>(nullptr), metavar, help);
  opts_.back().set = [out](const std::string& v) {
    out->push_back(v);
    return Status::ok();
  };
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
    if (v.empty() || *end != '\0')
      return invalid_argument(n + " expects an integer, got '" + v + "'");
    if (errno == ERANGE || x < min || x > max)
      return out_of_range(n + " must be in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " + v);
    *out = x;
    return Status::ok();
  };
  opts_.push_back(std::move(o));
}

void ArgParser::option(const std::string& names, uint64_t* out, const std::string& metavar,
                       const std::string& help) {
  Opt o;
  o.names = split_names(names);
  o.metavar = metavar;
  o.help = help;
  std::string n = o.names.back();
  o.set = [out, n](const std::string& v) {
    errno = 0;
    char* end = nullptr;
    const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || v.find('-') != std::string::npos || v.find('+') != std::string::npos ||
        v.find_first_of(" \t") != std::string::npos)
      return invalid_argument(n + " expects an unsigned integer, got '" + v + "'");
    if (errno == ERANGE) return out_of_range(n + " must be in [0, 18446744073709551615], got " + v);
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
    std::string help = o.help;  // continuation lines indented like the first
    for (size_t k = help.find('\n'); k != std::string::npos; k = help.find('\n', k + 7)) help.insert(k + 1, "      ");
    ss << "  " << left << "\n      " << help << "\n";
  }
  ss << "  -h, --help\n      show this help\n";
  return ss.str();
}

Result<std::string> read_input_file(const std::string& path, bool dash_is_stdin) {
  ReadOptions o;
  o.dash_is_stdin = dash_is_stdin;
  CW_ASSIGN_OR_RETURN(std::string text, read_input(path, o));
  CW_RETURN_IF_ERROR(check_utf8_encoding(text, path == "-" && dash_is_stdin ? "standard input" : "'" + path + "'"));
  return text;
}

std::string printable(std::string_view text, bool escape_quotes) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    const size_t n = utf8_valid_prefix_len(text.substr(i));
    if (n > 1) {
      out.append(text.substr(i, n));
      i += n;
      continue;
    }
    ++i;
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (escape_quotes && (c == '\\' || c == '\'')) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (n == 1 && c >= 0x20 && c != 0x7F) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

int report_error(const std::string& command, const Status& status) {
  const std::string line = "chunkwise " + command + ": " + printable(status.message(), /*escape_quotes=*/false) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
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
