// A small command-line parser shared by the subcommands: long/short options, typed values with range
// checks, repeated positionals, generated --help. Parse errors are Statuses (exit code 2), never aborts.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace cw::app {

class ArgParser {
 public:
  ArgParser(std::string command, std::string synopsis, std::string description);

  // names: "-m,--model". A flag takes no value.
  void flag(const std::string& names, bool* out, const std::string& help);
  void option(const std::string& names, std::string* out, const std::string& metavar, const std::string& help);
  void option(const std::string& names, int64_t* out, const std::string& metavar, const std::string& help,
              int64_t min, int64_t max);
  // A repeatable option: every occurrence appends its value, in order.
  void option(const std::string& names, std::vector<std::string>* out, const std::string& metavar,
              const std::string& help);
  // Any unsigned 64-bit integer (seeds).
  void option(const std::string& names, uint64_t* out, const std::string& metavar, const std::string& help);
  void option(const std::string& names, double* out, const std::string& metavar, const std::string& help,
              double min, double max);
  // Collects positional arguments; without this call, positionals are an error.
  void positionals(std::vector<std::string>* out, const std::string& metavar, const std::string& help);

  // Parses argv[first..argc). Sets help_requested() for -h/--help (returns ok).
  Status parse(int argc, char** argv, int first = 2);
  bool help_requested() const { return help_requested_; }
  // True when the option named by its long name was given on the command line.
  bool given(const std::string& long_name) const;
  std::string help() const;

 private:
  struct Opt {
    std::vector<std::string> names;
    std::string metavar;  // empty for flags
    std::string help;
    std::function<Status(const std::string&)> set;
    bool is_flag = false;
    bool seen = false;
  };
  Opt* find(const std::string& name);
  std::string command_, synopsis_, description_;
  std::vector<Opt> opts_;
  std::vector<std::string>* positionals_ = nullptr;
  std::string positionals_metavar_, positionals_help_;
  bool help_requested_ = false;
};

// Reads a whole text input named on the command line ("-" is standard input when `dash_is_stdin`)
// through base/file_io.h (regular files only, standard input capped) and refuses UTF-16/UTF-32 text.
// Errors name the path: kNotFound when it does not exist, kInvalidArgument when it cannot be read.
Result<std::string> read_input_file(const std::string& path, bool dash_is_stdin);

// `text` made printable on one line: valid UTF-8 kept; \n \t \r and other control or invalid bytes escaped
// (\xNN); with `escape_quotes`, also \\ and \'. Error messages and token pieces are shown this way.
std::string printable(std::string_view text, bool escape_quotes);

// Exit codes shared by all subcommands.
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // the work itself failed (I/O error while writing output, ...)
constexpr int kExitBadInput = 2;  // usage errors, unreadable or malformed input

// Prints "chunkwise <command>: <status message>" on stderr and returns the matching exit code.
int report_error(const std::string& command, const Status& status);

}  // namespace cw::app
