#include "text/segment.h"

#include <unicode/brkiter.h>
#include <unicode/locid.h>
#include <unicode/utext.h>

#include <cstdint>
#include <algorithm>
#include <map>
#include <memory>
#include <mutex>

namespace cw::text {
namespace {

// One prototype iterator per locale; callers clone it (clone() under the mutex).
Result<std::unique_ptr<icu::BreakIterator>> clone_iterator(const std::string& locale) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<icu::BreakIterator>> protos;
  for (char c : locale) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '@' || c == '=' || c == ';';
    if (!ok) return invalid_argument("locale '" + locale + "': unexpected character");
  }
  if (locale.empty()) return invalid_argument("empty locale");
  std::lock_guard<std::mutex> lock(mu);
  auto it = protos.find(locale);
  if (it == protos.end()) {
    icu::Locale loc(locale.c_str());
    if (loc.isBogus()) return invalid_argument("locale '" + locale + "' is not a valid ICU locale id");
    UErrorCode st = U_ZERO_ERROR;
    std::unique_ptr<icu::BreakIterator> bi(icu::BreakIterator::createSentenceInstance(loc, st));
    if (U_FAILURE(st) || !bi) {
      return invalid_argument("locale '" + locale + "': ICU sentence iterator: " + u_errorName(st));
    }
    it = protos.emplace(locale, std::move(bi)).first;
  }
  std::unique_ptr<icu::BreakIterator> copy(it->second->clone());
  if (!copy) return resource_exhausted("ICU: cannot clone the sentence iterator");
  return copy;
}

}  // namespace

Status validate_sentence_locale(const std::string& locale) {
  auto r = clone_iterator(locale);
  return r.is_ok() ? Status::ok() : r.status();
}

Status sentence_cuts(const DocText& doc, int64_t b, int64_t e, const std::string& locale, std::vector<int64_t>& cuts) {
  if (e - b <= 0) return Status::ok();
  if (e - b > INT32_MAX) return invalid_argument("sentence segmentation: a document over 2 GiB");
  CW_ASSIGN_OR_RETURN(std::unique_ptr<icu::BreakIterator> bi, clone_iterator(locale));
  UErrorCode st = U_ZERO_ERROR;
  UText* ut = utext_openUTF8(nullptr, doc.text().data() + b, e - b, &st);
  if (U_FAILURE(st)) return internal_error(std::string("ICU utext_openUTF8: ") + u_errorName(st));
  bi->setText(ut, st);
  if (U_FAILURE(st)) {
    utext_close(ut);
    return internal_error(std::string("ICU setText: ") + u_errorName(st));
  }
  // A segment holding only whitespace (ICU ends a sentence at each line break) joins the sentence before it.
  const std::string_view t = doc.text();
  auto blank = [&](int64_t from, int64_t to) {
    for (int64_t i = from; i < to; ++i) {
      const char c = t[static_cast<size_t>(i)];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t' && c != '\f' && c != '\v') return false;
    }
    return true;
  };
  int64_t last = b;
  const size_t first = cuts.size();
  for (int32_t p = bi->next(); p != icu::BreakIterator::DONE; p = bi->next()) {
    const int64_t c = std::min(e, doc.floor_boundary(b + static_cast<int64_t>(p)));
    if (c <= last) continue;
    if (blank(last, c) && cuts.size() > first) {
      cuts.back() = c;  // extend the previous sentence over the blank segment
    } else {
      cuts.push_back(c);
    }
    last = c;
  }
  if (cuts.size() > first && cuts.back() >= e) cuts.pop_back();
  // The iterator holds a pointer to ut: release it before closing.
  bi.reset();
  utext_close(ut);
  return Status::ok();
}

}  // namespace cw::text
