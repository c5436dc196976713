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

void capitalise(std::string& s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
}

// Appends the pieces with single spaces between them. Every draw from the Rng happens in its own statement
// before this is called: the operands of + and the arguments of a call are evaluated in an unspecified
// order, which would make the output depend on the compiler.
void add(std::string& s, std::initializer_list<std::string_view> pieces) {
  for (std::string_view p : pieces) {
    if (!s.empty() && !p.empty()) s += ' ';
    s.append(p.data(), p.size());
  }
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
  std::string rest;
  if (rng.chance(2, 5)) rest = adjective(rng) + " ";
  rest += noun(rng);
  if (det == "a") det = article_for(rest);
  std::string s = det;
  add(s, {rest});
  return s;
}

std::string Grammar::prepositional_phrase(Rng& rng) const {
  std::string s = rng.pick(kPrepositions);
  add(s, {noun_phrase(rng, false)});
  return s;
}

// subject [adverb] verb object [pp | time]
std::string Grammar::clause(Rng& rng) const {
  std::string s = noun_phrase(rng, true);
  if (rng.chance(1, 5)) add(s, {rng.chance(1, 2) ? rng.pick(kAdverbs) : adverb(rng)});
  add(s, {verb(rng)});
  add(s, {noun_phrase(rng, false)});
  const uint64_t tail = rng.below(6);
  if (tail < 3) add(s, {prepositional_phrase(rng)});
  else if (tail == 3) add(s, {rng.pick(kTimes)});
  return s;
}

// Each template: the pieces are drawn one statement at a time, left to right (see add()).
std::string Grammar::sentence(Rng& rng) const {
  std::string s;
  switch (rng.below(16)) {
    case 0: case 1: case 2: case 3:
      s = clause(rng) + ".";
      break;
    case 4: {
      s = clause(rng) + ",";
      add(s, {rng.pick(kCoordinators)});
      add(s, {clause(rng)});
      s += ".";
      break;
    }
    case 5:
      s = prepositional_phrase(rng) + ",";
      add(s, {clause(rng)});
      s += ".";
      break;
    case 6:
      s = noun_phrase(rng, true);
      add(s, {rng.pick(kCopulas)});
      add(s, {adjective(rng)});
      if (rng.chance(1, 2)) add(s, {"and", adjective(rng)});
      s += ".";
      break;
    case 7:
      s = clause(rng);
      add(s, {rng.pick(kSubordinators)});
      add(s, {clause(rng)});
      s += ".";
      break;
    case 8:
      s = rng.pick(kSubordinators);
      add(s, {clause(rng) + ","});
      add(s, {clause(rng) + "."});
      break;
    case 9: {
      std::string quoted = clause(rng);
      capitalise(quoted);
      s = "\"" + quoted + ",\"";
      add(s, {rng.pick(kSpeech)});
      add(s, {noun_phrase(rng, false) + "."});
      break;
    }
    case 10:
      s = "was";
      add(s, {noun_phrase(rng, false)});
      add(s, {adjective(rng) + "?"});
      break;
    case 11: {
      const std::string a = adjective(rng);
      const std::string n = noun(rng);
      s = "what";
      add(s, {article_for(a), a, n + "!"});
      break;
    }
    case 12: {
      std::string np;
      if (rng.chance(1, 2)) np = adjective(rng) + " ";
      np += noun(rng);
      s = "there was";
      add(s, {article_for(np), np});
      add(s, {prepositional_phrase(rng) + "."});
      break;
    }
    case 13:
      s = clause(rng) + ";";
      add(s, {clause(rng) + "."});
      break;
    case 14:
      s = noun_phrase(rng, false) + ",";
      add(s, {adjective(rng)});
      add(s, {"and", adjective(rng) + ","});
      add(s, {verb(rng)});
      add(s, {noun_phrase(rng, false)});
      add(s, {prepositional_phrase(rng) + "."});
      break;
    default:
      s = clause(rng) + ":";
      add(s, {noun_phrase(rng, false) + ","});
      add(s, {noun_phrase(rng, false)});
      add(s, {"and", noun_phrase(rng, false) + "."});
      break;
  }
  capitalise(s);
  CW_CHECK(s.size() <= kMaxSentenceBytes);
  return s;
}

}  // namespace cw::eval::detail
