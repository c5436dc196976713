// Minimal streaming JSON writer (output only). Strings are escaped per RFC 8259; invalid UTF-8 bytes
// are written as U+FFFD so the output is always valid JSON.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cw {

// Appends `s` as a quoted JSON string to `out` (RFC 8259 escapes, other control bytes as \u00xx; each
// byte that does not start a valid UTF-8 sequence is written as U+FFFD).
void json_append_string(std::string& out, std::string_view s);

// A builder with automatic commas. Not thread-safe. Misuse (key outside an object) is a bug: CW_CHECK.
class JsonWriter {
 public:
  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view k);
  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(int64_t v);
  JsonWriter& value(uint64_t v);
  JsonWriter& value(int v) { return value(static_cast<int64_t>(v)); }
  JsonWriter& value(double v);
  JsonWriter& value(bool v);
  JsonWriter& null();
  const std::string& str() const { return out_; }

 private:
  void before_value();
  std::string out_;
  std::vector<bool> first_;  // per open container: no element written yet
  bool after_key_ = false;
};

}  // namespace cw
