// The filler grammar (haystack_grammar.h): a handful of sentence templates over closed-class words
// written here and open-class words from the word list's suffix classes.
#include "eval/haystack_grammar.h"

#include <algorithm>

namespace cw::eval::detail {
namespace {

using List = std::vector<std::string>;

const List kDeterminers = {"the", "the", "the", "the", "a", "a", "this", "that", "every", "each", "some",
                           "one", "another", "no", "my", "our", "their", "his", "her", "its", "your"};
const List kPronouns = {"he", "she", "it", "they", "we", "you", "someone", "nobody", "everyone"};
const List kPrepositions = {"in", "on", "near", "under", "above", "behind", "beside", "across", "through",
                            "along", "beyond", "around", "over", "inside", "outside", "against", "toward",
                            "past", "below", "within", "without"};
const List kCoordinators = {"and", "but", "so", "yet", "and then"};
const List kSubordinators = {"because", "although", "while", "when", "since", "after", "before", "until",
                             "though", "as soon as"};
const List kCopulas = {"was", "seemed", "became", "remained", "looked", "felt"};
const List kSpeech = {"said", "asked", "whispered", "replied", "added", "insisted", "admitted"};
const List kAdverbs = {"often", "never", "always", "soon", "again", "perhaps", "still", "rarely", "already",
                       "once", "quietly", "slowly", "suddenly", "finally"};
const List kTimes = {"that morning", "at noon", "by evening", "last winter", "the next day", "at dawn",
                     "years later", "every spring", "that night", "in the end"};

std::string capitalised(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

}  // namespace

const char* article_for(const std::string& next_word) {
  return !next_word.empty() && std::string_view("aeiou").find(next_word[0]) != std::string_view::npos ? "an"
                                                                                                     : "a";
}

Grammar::Grammar(const WordList& words, std::vector<uint32_t> excluded)
    : words_(words), excluded_(std::move(excluded)) {
  std::sort(excluded_.begin(), excluded_.end());
}

uint32_t Grammar::draw(Rng& rng, const std::vector<uint32_t>& cls) const {
  for (;;) {
    const uint32_t id = cls[rng.below(cls.size())];
    if (!std::binary_search(excluded_.begin(), excluded_.end(), id)) return id;
  }
}

std::string Grammar::noun_phrase(Rng& rng, bool allow_pronoun) const {
  if (allow_pronoun && rng.chance(1, 6)) return rng.pick(kPronouns);
  std::string det = rng.pick(kDeterminers);
  std::string rest = rng.chance(2, 5) ? adjective(rng) + " " + noun(rng) : noun(rng);
  if (det == "a") det = article_for(rest);
  return det + " " + rest;
}

std::string Grammar::prepositional_phrase(Rng& rng) const {
  return rng.pick(kPrepositions) + " " + noun_phrase(rng, false);
}

// subject [adverb] verb object [pp | time]
std::string Grammar::clause(Rng& rng) const {
  std::string s = noun_phrase(rng, true);
  if (rng.chance(1, 5)) s += " " + (rng.chance(1, 2) ? rng.pick(kAdverbs) : adverb(rng));
  s += " " + verb(rng) + " " + noun_phrase(rng, false);
  const uint64_t tail = rng.below(6);
  if (tail < 3) s += " " + prepositional_phrase(rng);
  else if (tail == 3) s += " " + rng.pick(kTimes);
  return s;
}

std::string Grammar::sentence(Rng& rng) const {
  std::string s;
  switch (rng.below(16)) {
    case 0: case 1: case 2: case 3:
      s = clause(rng) + ".";
      break;
    case 4:
      s = clause(rng) + ", " + rng.pick(kCoordinators) + " " + clause(rng) + ".";
      break;
    case 5:
      s = prepositional_phrase(rng) + ", " + clause(rng) + ".";
      break;
    case 6: {
      s = noun_phrase(rng, true) + " " + rng.pick(kCopulas) + " " + adjective(rng);
      if (rng.chance(1, 2)) s += " and " + adjective(rng);
      s += ".";
      break;
    }
    case 7:
      s = clause(rng) + " " + rng.pick(kSubordinators) + " " + clause(rng) + ".";
      break;
    case 8:
      s = rng.pick(kSubordinators) + " " + clause(rng) + ", " + clause(rng) + ".";
      break;
    case 9:
      s = "\"" + capitalised(clause(rng)) + ",\" " + rng.pick(kSpeech) + " " + noun_phrase(rng, false) + ".";
      break;
    case 10:
      s = "was " + noun_phrase(rng, false) + " " + adjective(rng) + "?";
      break;
    case 11: {
      const std::string a = adjective(rng), n = noun(rng);
      s = std::string("what ") + article_for(a) + " " + a + " " + n + "!";
      break;
    }
    case 12: {
      std::string np = rng.chance(1, 2) ? adjective(rng) + " " + noun(rng) : noun(rng);
      s = std::string("there was ") + article_for(np) + " " + np + " " + prepositional_phrase(rng) + ".";
      break;
    }
    case 13:
      s = clause(rng) + "; " + clause(rng) + ".";
      break;
    case 14:
      s = noun_phrase(rng, false) + ", " + adjective(rng) + " and " + adjective(rng) + ", " + verb(rng) + " " +
          noun_phrase(rng, false) + " " + prepositional_phrase(rng) + ".";
      break;
    default:
      s = clause(rng) + ": " + noun_phrase(rng, false) + ", " + noun_phrase(rng, false) + " and " +
          noun_phrase(rng, false) + ".";
      break;
  }
  s = capitalised(std::move(s));
  CW_CHECK(s.size() <= kMaxSentenceBytes);
  return s;
}

}  // namespace cw::eval::detail
