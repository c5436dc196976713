// The filler grammar of the haystack generator (internal to src/eval; haystack.h is the interface).
//
// Closed-class words (determiners, pronouns, prepositions, conjunctions, speech verbs) are fixed lists
// written here; open-class slots (nouns, -ed verbs, adjectives, adverbs) are drawn from the WordList's
// suffix classes. A Grammar may exclude a few words (by index) so that the words a question relies on
// occur nowhere else in the document.
#pragma once

#include <string>
#include <vector>

#include "eval/haystack.h"

namespace cw::eval::detail {

class Grammar {
 public:
  // `excluded`: word indices never drawn (sorted or not; small).
  Grammar(const WordList& words, std::vector<uint32_t> excluded);

  // One filler sentence, capitalised, with its final punctuation; no digits, no upper-case words other
  // than the first letter (and "I" is never used). At most kMaxSentenceBytes bytes.
  std::string sentence(Rng& rng) const;

  // Open-class draws (never an excluded word), and their word indices.
  uint32_t noun_id(Rng& rng) const { return draw(rng, words_.nouns()); }
  uint32_t verb_id(Rng& rng) const { return draw(rng, words_.verbs()); }
  uint32_t adjective_id(Rng& rng) const { return draw(rng, words_.adjectives()); }
  const std::string& word(uint32_t id) const { return words_.words()[id]; }

  // "the <noun>" / "a <adj> <noun>" ... (determiner + optional adjective + noun).
  std::string noun_phrase(Rng& rng, bool allow_pronoun) const;
  std::string prepositional_phrase(Rng& rng) const;

 private:
  uint32_t draw(Rng& rng, const std::vector<uint32_t>& cls) const;
  std::string noun(Rng& rng) const { return word(noun_id(rng)); }
  std::string verb(Rng& rng) const { return word(verb_id(rng)); }
  std::string adjective(Rng& rng) const { return word(adjective_id(rng)); }
  std::string adverb(Rng& rng) const { return word(draw(rng, words_.adverbs())); }
  std::string clause(Rng& rng) const;

  const WordList& words_;
  std::vector<uint32_t> excluded_;  // sorted
};

constexpr size_t kMaxSentenceBytes = 400;

// "a" or "an" for the word that follows (a vowel letter heuristic).
const char* article_for(const std::string& next_word);

}  // namespace cw::eval::detail
