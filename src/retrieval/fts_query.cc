#include "retrieval/fts_query.h"

#include <algorithm>
#include <unordered_set>
#include <vector>

namespace cw::retrieval {
namespace {

const std::unordered_set<std::string_view>& stop_words() {
  static const std::unordered_set<std::string_view> kWords = {
      "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at",
      "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could",
      "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has",
      "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if",
      "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor",
      "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out",
      "over", "own", "s", "same", "she", "should", "so", "some", "such", "t", "than", "that", "the",
      "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those",
      "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where",
      "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself",
      "yourselves"};
  return kWords;
}

}  // namespace

std::string fts_match_expression(std::string_view query) {
  std::vector<std::string> words;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) words.push_back(std::move(cur));
    cur.clear();
  };
  for (char ch : query) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80) {
      cur += ch;
    } else if (c >= 'A' && c <= 'Z') {
      cur += static_cast<char>(c - 'A' + 'a');
    } else {
      flush();
    }
  }
  flush();
  std::vector<std::string> kept;
  for (const std::string& w : words)
    if (stop_words().count(w) == 0 && std::find(kept.begin(), kept.end(), w) == kept.end()) kept.push_back(w);
  if (kept.empty())
    for (const std::string& w : words)
      if (std::find(kept.begin(), kept.end(), w) == kept.end()) kept.push_back(w);
  std::string out;
  for (const std::string& w : kept) {
    if (!out.empty()) out += " OR ";
    out += '"' + w + '"';
  }
  return out;
}

}  // namespace cw::retrieval
