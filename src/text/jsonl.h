// JSON Lines output of chunks:
//   {"doc":..,"index":..,"byte_begin":..,"byte_end":..,"char_begin":..,"char_end":..,"n_tokens":..,
//    "text":..[,"headings":[..]][,"kind":..]}
// Strings are escaped by cw::json_append_string (base/json.h): RFC 8259, an invalid UTF-8 byte in the
// text is written as U+FFFD (the offsets still index the original bytes).
#pragma once

#include <string>
#include <string_view>

#include "text/chunker.h"

namespace cw::text {

// Appends one line (with '\n') for chunk `c` of the document `input`. with_text = false leaves out "text"
// (offsets only: the chunk is input[byte_begin, byte_end)).
void append_chunk_jsonl(std::string& out, const Chunk& c, std::string_view input, bool with_text = true);

}  // namespace cw::text
