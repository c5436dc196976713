#include "runtime/text_stream.h"

#include <algorithm>

#include "base/utf8.h"

namespace cw::runtime {

Status validate_stop_strings(const std::vector<std::string>& stop) {
  if (stop.size() > kMaxStopStrings)
    return invalid_argument("at most " + std::to_string(kMaxStopStrings) + " stop strings are allowed, got " +
                            std::to_string(stop.size()));
  for (size_t i = 0; i < stop.size(); ++i) {
    const std::string& s = stop[i];
    const std::string which = "stop string " + std::to_string(i + 1);
    if (s.empty()) return invalid_argument(which + " is empty");
    if (s.size() > kMaxStopBytes)
      return invalid_argument(which + " has " + std::to_string(s.size()) + " bytes; at most " +
                              std::to_string(kMaxStopBytes) + " are allowed");
    for (size_t j = 0; j < s.size();) {
      const size_t n = utf8_valid_prefix_len(std::string_view(s).substr(j));
      if (n == 0) return invalid_argument(which + " is not valid UTF-8 (byte " + std::to_string(j) + ")");
      j += n;
    }
  }
  return Status::ok();
}

TextStream::TextStream(std::vector<std::string> stop) : stop_(std::move(stop)) {
  for (const std::string& s : stop_) max_stop_ = std::max(max_stop_, s.size());
}

bool TextStream::push(std::string_view piece) {
  if (stopped()) return true;
  const size_t old = text_.size();
  text_.append(piece);
  // A match ends in the new bytes, so it starts at most max_stop_ - 1 bytes before them; never before the
  // released text (no released byte can be part of a stop string).
  for (const std::string& s : stop_) {
    const size_t from = std::max(released_, old >= s.size() - 1 ? old - (s.size() - 1) : size_t{0});
    const size_t at = text_.find(s, from);
    if (at != std::string::npos) stop_at_ = std::min(stop_at_, at);
  }
  if (stopped()) {
    ready_ = stop_at_;
    return true;
  }
  advance_ready();
  return false;
}

void TextStream::advance_ready() {
  size_t end = text_.size();
  // Hold back the longest tail that is a proper prefix of a stop string (the earliest such start).
  const size_t first = std::max(ready_, text_.size() >= max_stop_ ? text_.size() - max_stop_ + 1 : size_t{0});
  for (size_t i = first; i < text_.size() && end == text_.size(); ++i) {
    const std::string_view tail = std::string_view(text_).substr(i);
    for (const std::string& s : stop_) {
      if (tail.size() < s.size() && s.compare(0, tail.size(), tail) == 0) {
        end = i;
        break;
      }
    }
  }
  end -= utf8_incomplete_suffix_len(std::string_view(text_).substr(ready_, end - ready_));
  ready_ = std::max(ready_, end);
}

std::string TextStream::take_ready() {
  std::string out = text_.substr(released_, ready_ - released_);
  released_ = ready_;
  return out;
}

std::string TextStream::finish() {
  ready_ = stopped() ? stop_at_ : text_.size();
  return take_ready();
}

std::string_view TextStream::text() const {
  return stopped() ? std::string_view(text_).substr(0, stop_at_) : std::string_view(text_);
}

}  // namespace cw::runtime
