// TextStream: turns a request's token pieces into the text a client may see as it is generated, with
// stop strings (DESIGN.md §3, issue 15).
//
//   - The text ends at the first occurrence of any stop string (the stop string itself and anything after
//     it are left out); push() reports the token that completed it.
//   - Released text never contains any part of a stop string: a tail that could still become one is held
//     back until it no longer can (or the stream ends).
//   - Released text never splits a UTF-8 character: the trailing bytes of a character that later bytes
//     could complete are held back (byte-level tokens carry parts of characters). Bytes that no
//     continuation can make valid are released as they are.
//   - The pieces take_ready() and finish() return concatenate to text().
//
// Thread-safety: none (one request's pieces, one thread at a time).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace cw::runtime {

// The limits of GenerationRequest::stop (OpenAI's): at most 4 strings, each non-empty, at most 256
// bytes, valid UTF-8. Errors: kInvalidArgument naming the string.
constexpr size_t kMaxStopStrings = 4;
constexpr size_t kMaxStopBytes = 256;
Status validate_stop_strings(const std::vector<std::string>& stop);

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stop = {});

  // Appends one token's piece. True when the text now contains a stop string (then and afterwards: later
  // pieces are ignored).
  bool push(std::string_view piece);
  // The text that became final since the last call (possibly empty).
  std::string take_ready();
  // Ends the stream: everything not yet released (up to the stop string, if one was found).
  std::string finish();

  bool stopped() const { return stop_at_ != std::string::npos; }
  // The text so far: up to the stop string when stopped(), else every piece (held-back bytes included).
  std::string_view text() const;

 private:
  void advance_ready();

  std::vector<std::string> stop_;
  size_t max_stop_ = 0;
  std::string text_;
  size_t released_ = 0;            // bytes handed out
  size_t ready_ = 0;               // bytes final, not yet handed out: [released_, ready_)
  size_t stop_at_ = std::string::npos;
};

}  // namespace cw::runtime
