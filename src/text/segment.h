// Sentence segmentation with ICU's BreakIterator (rule-based, multilingual), run directly over UTF-8 so that
// boundaries are byte offsets of the original text.
//
// Thread-safety: sentence_cuts may be called concurrently (each call clones a cached iterator per locale).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "text/measure.h"

namespace cw::text {

// Default locale: English rules with ICU's abbreviation suppressions ("Mr. Smith" stays one sentence).
inline constexpr const char* kDefaultSentenceLocale = "en@ss=standard";

// Appends to `cuts`, ascending, every sentence boundary strictly inside (b, e) of `doc` (each a code point
// boundary: a sentence includes its trailing spaces and line breaks; a whitespace-only segment joins the
// sentence before it). Errors: invalid_argument for a
// malformed locale id or when ICU cannot create the iterator.
Status sentence_cuts(const DocText& doc, int64_t b, int64_t e, const std::string& locale, std::vector<int64_t>& cuts);

// Checks a locale id ("en", "de_CH", "ja", "en@ss=standard") without segmenting anything.
Status validate_sentence_locale(const std::string& locale);

}  // namespace cw::text
