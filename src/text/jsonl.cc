#include "text/jsonl.h"

#include <charconv>

#include "base/json.h"

namespace cw::text {
namespace {

// Appends `key` (the comma, quoted name and colon) and then `v`.
void append_int_field(std::string& out, std::string_view key, int64_t v) {
  out += key;
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

}  // namespace

void append_chunk_jsonl(std::string& out, const Chunk& c, std::string_view input, bool with_text) {
  out += "{\"doc\":";
  json_append_string(out, c.doc);
  append_int_field(out, ",\"index\":", c.index);
  append_int_field(out, ",\"byte_begin\":", c.byte_begin);
  append_int_field(out, ",\"byte_end\":", c.byte_end);
  append_int_field(out, ",\"char_begin\":", c.char_begin);
  append_int_field(out, ",\"char_end\":", c.char_end);
  append_int_field(out, ",\"n_tokens\":", c.n_tokens);
  if (with_text) {
    out += ",\"text\":";
    json_append_string(out, c.text_in(input));
  }
  if (!c.headings.empty()) {
    out += ",\"headings\":[";
    for (size_t i = 0; i < c.headings.size(); ++i) {
      if (i) out.push_back(',');
      json_append_string(out, c.headings[i]);
    }
    out.push_back(']');
  }
  if (!c.kind.empty()) {
    out += ",\"kind\":";
    json_append_string(out, c.kind);
  }
  out += "}\n";
}

}  // namespace cw::text
