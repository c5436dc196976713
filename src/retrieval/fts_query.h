// The FTS5 MATCH expression for a free-text BM25 query (internal to cw_retrieval).
//
// A question is split into words (maximal runs of ASCII letters/digits or non-ASCII bytes, ASCII
// lower-cased); English stop words are dropped (when anything else remains), duplicates removed, and the
// rest joined as quoted terms with OR: "biden" OR "fees" OR "pricing". Quoting makes every word a literal
// (no FTS5 operators or column filters can be injected); OR makes BM25 rank chunks that contain any of the
// words instead of requiring all (FTS5's implicit AND). Stop words carry almost no BM25 weight (their IDF
// is near zero) yet match nearly every chunk, so dropping them is what keeps a query on 100 MB fast.
// Returns "" when the query has no words.
#pragma once

#include <string>
#include <string_view>

namespace cw::retrieval {

std::string fts_match_expression(std::string_view query);

}  // namespace cw::retrieval
