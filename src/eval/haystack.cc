// The haystack recipes, document assembly, prompt format and JSON lines (haystack.h).
#include "eval/haystack.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <set>

#include "base/json.h"
#include "eval/haystack_grammar.h"
#include "tokenizer/tokenizer.h"

namespace cw::eval {
namespace {

using detail::Grammar;

// A needle before placement: its text, where the answer sits in it (asked needle only) and its depth.
struct Needle {
  std::string text;
  double depth = 0;
  bool asked = false;
  int64_t answer_offset = 0;
};

struct Plan {
  Recipe recipe = Recipe::kPasskey;
  std::vector<Needle> needles;  // in creation order; exactly one is asked
  std::string question, answer;
  std::vector<uint32_t> excluded;  // words the filler must not use
};

std::string number(Rng& rng, int digits) {
  std::string s(1, static_cast<char>('1' + rng.below(9)));
  for (int i = 1; i < digits; ++i) s += static_cast<char>('0' + rng.below(10));
  return s;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(c - 'a' + 'A');
  return s;
}

double draw_depth(const GenOptions& o, Rng& rng) { return o.depth >= 0 ? o.depth : rng.unit(); }

Plan plan_passkey(const GenOptions& o, Rng& rng) {
  Plan p;
  const std::string key = number(rng, static_cast<int>(rng.range(4, 7)));
  Needle n;
  n.text = "The pass key is " + key + ". Remember it. " + key + " is the pass key.";
  n.answer_offset = 16;
  n.asked = true;
  n.depth = draw_depth(o, rng);
  p.needles.push_back(std::move(n));
  p.question = "What is the pass key?";
  p.answer = key;
  return p;
}

// Distinct noun ids of 4..8 letters (keys), never repeating one already in `used`.
uint32_t fresh_noun(const WordList& w, Rng& rng, std::set<uint32_t>& used, size_t min_len, size_t max_len) {
  for (;;) {
    const uint32_t id = rng.pick(w.nouns());
    const size_t len = w.words()[id].size();
    if (len < min_len || len > max_len || used.count(id)) continue;
    used.insert(id);
    return id;
  }
}

Plan plan_kv(const GenOptions& o, Rng& rng, const WordList& w) {
  static const std::vector<std::string> kRelations = {"code", "value", "number", "password", "secret"};
  Plan p;
  const std::string rel = rng.pick(kRelations);
  const bool word_values = rng.chance(1, 2);
  std::set<uint32_t> used_words;
  std::set<std::string> keys, values;
  auto make_value = [&]() {
    for (;;) {
      std::string v = word_values ? w.words()[fresh_noun(w, rng, used_words, 5, 10)] : number(rng, 4);
      bool clash = values.count(v) > 0;
      for (const std::string& u : values) clash = clash || u.find(v) != std::string::npos || v.find(u) != std::string::npos;
      if (clash) continue;
      values.insert(v);
      return v;
    }
  };
  const uint32_t asked_word = fresh_noun(w, rng, used_words, 4, 8);
  const std::string asked_stem = upper(w.words()[asked_word]);
  const int64_t asked_num = rng.range(10, 99);
  const std::string asked_key = asked_stem + "-" + std::to_string(asked_num);
  keys.insert(asked_key);
  std::vector<std::pair<std::string, bool>> facts;  // key, asked
  facts.push_back({asked_key, true});
  for (int j = 1; j < o.needles; ++j) {
    std::string key;
    for (int tries = 0;; ++tries) {
      const int kind = (j - 1) % 3;
      if (kind == 0) {  // near miss: same word, another number
        key = asked_stem + "-" + std::to_string(rng.range(10, 99));
      } else if (kind == 1) {  // near miss: another word with the same first letter, same number
        uint32_t id = rng.pick(w.nouns());
        for (int t = 0; t < 400 && (w.words()[id][0] != w.words()[asked_word][0] || used_words.count(id) ||
                                    w.words()[id].size() < 4 || w.words()[id].size() > 8);
             ++t)
          id = rng.pick(w.nouns());
        key = upper(w.words()[id]) + "-" + std::to_string(asked_num);
      } else {  // another key
        const uint32_t id = rng.pick(w.nouns());  // two draws: one statement each (operand order is unspecified)
        key = upper(w.words()[id]) + "-" + std::to_string(rng.range(10, 99));
      }
      if (!keys.count(key) && key.size() <= 15) break;
    }
    keys.insert(key);
    facts.push_back({key, false});
  }
  for (auto& [key, asked] : facts) {
    const std::string value = make_value();
    Needle n;
    std::string prefix;
    if (rng.chance(1, 2)) {
      prefix = "The " + rel + " for " + key + " is ";
    } else {
      prefix = "For " + key + ", the " + rel + " is ";
    }
    n.text = prefix + value + ".";
    n.answer_offset = static_cast<int64_t>(prefix.size());
    n.asked = asked;
    n.depth = asked ? draw_depth(o, rng) : rng.unit();
    if (asked) p.answer = value;
    p.needles.push_back(std::move(n));
  }
  p.question = "What is the " + rel + " for " + asked_key + "?";
  p.excluded.assign(used_words.begin(), used_words.end());
  return p;
}

Plan plan_multi(const GenOptions& o, Rng& rng, const WordList& w) {
  Plan p;
  std::set<uint32_t> used_words;
  std::set<std::string> values;
  const int digits = static_cast<int>(rng.range(5, 7));
  const int asked = static_cast<int>(rng.below(static_cast<uint64_t>(o.needles)));
  for (int j = 0; j < o.needles; ++j) {
    const std::string key = w.words()[fresh_noun(w, rng, used_words, 4, 10)];
    std::string value;
    do value = number(rng, digits);
    while (values.count(value));
    values.insert(value);
    Needle n;
    const std::string prefix = "The special magic number for " + key + " is ";
    n.text = prefix + value + ".";
    n.answer_offset = static_cast<int64_t>(prefix.size());
    n.asked = j == asked;
    n.depth = n.asked ? draw_depth(o, rng) : rng.unit();
    if (n.asked) {
      p.answer = value;
      p.question = "What is the special magic number for " + key + "?";
    }
    p.needles.push_back(std::move(n));
  }
  p.excluded.assign(used_words.begin(), used_words.end());
  return p;
}

Plan plan_extract(const GenOptions& o, Rng& rng, const WordList& w) {
  static const std::vector<std::string> kPlaces = {"in", "near", "under", "behind", "beside", "beyond", "inside",
                                                   "across"};
  Plan p;
  const Grammar g(w, {});
  std::set<uint32_t> used;
  auto distinct = [&](uint32_t (Grammar::*draw)(Rng&) const) {
    for (;;) {
      const uint32_t id = (g.*draw)(rng);
      if (used.insert(id).second) return id;
    }
  };
  const uint32_t adj = distinct(&Grammar::adjective_id);
  const uint32_t subj = distinct(&Grammar::noun_id);
  const uint32_t verb = distinct(&Grammar::verb_id);
  const uint32_t adj2 = distinct(&Grammar::adjective_id);
  const uint32_t obj = distinct(&Grammar::noun_id);
  const uint32_t place = distinct(&Grammar::noun_id);
  const std::string prep = rng.pick(kPlaces);
  // "The <adj> <noun> <verb>ed the <adj2> <noun2> <prep> the <place>." — every content word occurs nowhere
  // else in the document (the filler excludes them), so each question below has one answer.
  const std::string who = w.words()[adj] + " " + w.words()[subj];
  const std::string what = w.words()[adj2] + " " + w.words()[obj];
  const std::string where = prep + " the " + w.words()[place];
  const std::string& v = w.words()[verb];
  Needle n;
  n.text = "The " + who + " " + v + " the " + what + " " + where + ".";
  n.asked = true;
  n.depth = draw_depth(o, rng);
  switch (rng.below(3)) {
    case 0:
      p.question = "Who " + v + " the " + what + " " + where + "?";
      p.answer = who;
      n.answer_offset = 4;
      break;
    case 1:
      p.question = "What was " + v + " by the " + who + " " + where + "?";
      p.answer = what;
      n.answer_offset = static_cast<int64_t>(4 + who.size() + 1 + v.size() + 5);
      break;
    default:
      p.question = "Where was the " + what + " " + v + " by the " + who + "?";
      p.answer = where;
      n.answer_offset = static_cast<int64_t>(4 + who.size() + 1 + v.size() + 5 + what.size() + 1);
      break;
  }
  p.needles.push_back(std::move(n));
  p.excluded.assign(used.begin(), used.end());
  return p;
}

// The quote recipe: reading-comprehension facts in a document, with the surface of real prose (capitalised
// names, years, counts with thousands separators) and questions that paraphrase their fact — a reordered,
// partly dropped subset of its words plus framing words the text does not have. Distractor facts of the
// same shapes share one anchor each with the asked fact (its actor, verb, object or place) and carry values
// of the asked kind, so only the fact sharing the most words with the question answers it.
std::string capitalised(std::string s) {
  s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

std::string with_commas(int64_t v) {
  std::string d = std::to_string(v), out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i > 0 && (d.size() - i) % 3 == 0) out += ',';
    out += d[i];
  }
  return out;
}

struct QuoteFact {
  std::string actor, actor_short;  // "Mercy Tollgate" / "Tollgate", or "the wistful abacus" / "the abacus"
  std::string verb;                // past tense
  std::string object, object_short;
  std::string place;               // "near the harbor"
  std::string year, count;         // "1987", "3,400"
  bool counted = false;            // "<count> <object noun>s" instead of the object
};

Plan plan_quote(const GenOptions& o, Rng& rng, const WordList& w) {
  static const std::vector<std::string> kPlaces = {"in", "near", "under", "behind", "beside", "beyond", "inside",
                                                   "across"};
  static const std::vector<std::string> kFrames = {"",
                                                   "According to the text, ",
                                                   "In the document, ",
                                                   "Based on the passage, ",
                                                   "As the record states, "};
  Plan p;
  const Grammar g(w, {});
  std::set<uint32_t> used;
  std::set<std::string> values;
  auto distinct = [&](uint32_t (Grammar::*draw)(Rng&) const) {
    for (;;) {
      const uint32_t id = (g.*draw)(rng);
      if (w.words()[id].size() >= 3 && used.insert(id).second) return id;
    }
  };
  auto fresh_value = [&](auto make) {  // no value is a substring of another (each answer occurs once)
    for (;;) {
      std::string v = make();
      bool clash = false;
      for (const std::string& u : values) clash = clash || u.find(v) != std::string::npos || v.find(u) != std::string::npos;
      if (clash) continue;
      values.insert(v);
      return v;
    }
  };
  auto year = [&] { return fresh_value([&] { return std::to_string(rng.range(1800, 2029)); }); };
  auto count = [&] { return fresh_value([&] { return with_commas(rng.range(1000, 99999)); }); };
  auto actor = [&](QuoteFact& f) {
    if (rng.chance(1, 2)) {
      const std::string first = capitalised(w.words()[distinct(&Grammar::noun_id)]);
      f.actor_short = capitalised(w.words()[distinct(&Grammar::noun_id)]);
      f.actor = first + " " + f.actor_short;
    } else {
      const std::string noun = w.words()[distinct(&Grammar::noun_id)];
      f.actor = "the " + w.words()[distinct(&Grammar::adjective_id)] + " " + noun;
      f.actor_short = "the " + noun;
    }
  };
  auto object = [&](QuoteFact& f) {
    const std::string noun = w.words()[distinct(&Grammar::noun_id)];
    f.object = "the " + w.words()[distinct(&Grammar::adjective_id)] + " " + noun;
    f.object_short = "the " + noun;
  };
  auto place = [&](QuoteFact& f) { f.place = rng.pick(kPlaces) + " the " + w.words()[distinct(&Grammar::noun_id)]; };
  // "In 1987, Mercy Tollgate harvested 3,400 gizmos near the harbor." or "The wistful abacus harvested the
  // brittle gizmo near the harbor in 1987." Offsets of the fields as written: actor, object (or count), place, year.
  struct Written {
    std::string text;
    std::array<std::pair<int64_t, int64_t>, 4> at;
  };
  auto text_of = [](const QuoteFact& f, bool year_first) {
    Written w;
    auto put = [&w](int field, const std::string& v) {
      w.at[static_cast<size_t>(field)] = {static_cast<int64_t>(w.text.size()), static_cast<int64_t>(v.size())};
      w.text += v;
    };
    if (year_first) {
      w.text = "In ";
      put(3, f.year);
      w.text += ", ";
      put(0, f.actor);
    } else {
      put(0, f.actor.compare(0, 4, "the ") == 0 ? "The " + f.actor.substr(4) : f.actor);
    }
    w.text += " " + f.verb + " ";
    if (f.counted) {
      put(1, f.count);
      w.text += " " + f.object_short.substr(4) + "s";
    } else {
      put(1, f.object);
    }
    w.text += " ";
    put(2, f.place);
    if (!year_first) {
      w.text += " in ";
      put(3, f.year);
    }
    w.text += ".";
    return w;
  };

  QuoteFact fact;
  actor(fact);
  fact.verb = w.words()[distinct(&Grammar::verb_id)];
  object(fact);
  place(fact);
  fact.year = year();
  fact.counted = rng.chance(1, 3);
  if (fact.counted) fact.count = count();
  // Asked: 0 actor, 1 object (or count), 2 place, 3 year.
  const auto slot = static_cast<int>(rng.below(4));
  auto keep = [&](const std::string& full, const std::string& shortened) { return rng.chance(1, 3) ? shortened : full; };
  const std::string what = fact.counted ? fact.object_short.substr(4) + "s" : keep(fact.object, fact.object_short);
  const std::string who = keep(fact.actor, fact.actor_short);
  const std::string where = rng.chance(1, 3) ? "" : " " + fact.place;
  std::string q;
  switch (slot) {
    case 0:
      q = "who " + fact.verb + " " + (fact.counted ? fact.count + " " + what : what) + where + "?";
      break;
    case 1:
      q = fact.counted ? "how many " + what + " were " + fact.verb + " by " + who + where + "?"
                       : "what was " + fact.verb + " by " + who + where + "?";
      break;
    case 2:
      q = "where " + std::string(fact.counted ? "were " : "was ") + what + " " + fact.verb +
          " by " + who + "?";
      break;
    default:
      q = "in what year " + std::string(fact.counted ? "were " : "was ") + what + " " + fact.verb + " by " + who +
          (where.empty() ? "" : where) + "?";
      break;
  }
  const std::string& frame = rng.pick(kFrames);
  p.question = frame.empty() ? capitalised(q) : frame + q;

  Needle n;
  const Written written = text_of(fact, rng.chance(1, 2));
  n.text = written.text;
  const auto [answer_at, answer_len] = written.at[static_cast<size_t>(slot)];
  n.answer_offset = answer_at;
  p.answer = n.text.substr(static_cast<size_t>(answer_at), static_cast<size_t>(answer_len));
  n.asked = true;
  n.depth = draw_depth(o, rng);
  p.needles.push_back(std::move(n));

  // Distractors: each shares exactly one anchor with the fact (never the asked one: its answer occurs once)
  // and has fresh values of every kind.
  std::vector<int> anchors;  // 0 actor, 1 verb, 2 object, 3 place
  for (int a = 0; a < 4; ++a)
    if (!(slot == 0 && a == 0) && !(slot == 1 && a == 2) && !(slot == 2 && a == 3)) anchors.push_back(a);
  const auto n_distractors = static_cast<int>(rng.range(3, 8));
  for (int j = 0; j < n_distractors; ++j) {
    QuoteFact d;
    actor(d);
    d.verb = w.words()[distinct(&Grammar::verb_id)];
    object(d);
    place(d);
    d.year = year();
    d.counted = rng.chance(1, 3);
    if (d.counted) d.count = count();
    switch (anchors[static_cast<size_t>(j) % anchors.size()]) {
      case 0: d.actor = fact.actor; d.actor_short = fact.actor_short; break;
      case 1: d.verb = fact.verb; break;
      case 2: d.object = fact.object; d.object_short = fact.object_short; d.counted = false; break;
      default: d.place = fact.place; break;
    }
    Needle dn;
    dn.text = text_of(d, rng.chance(1, 2)).text;
    dn.depth = rng.unit();
    p.needles.push_back(std::move(dn));
  }
  p.excluded.assign(used.begin(), used.end());
  return p;
}

struct Unit {
  std::string text;
  bool paragraph_start = false;
};

int64_t measure(const GenOptions& o, std::string_view text) {
  if (o.unit == LengthUnit::kChars) return static_cast<int64_t>(text.size());
  return static_cast<int64_t>(o.tokenizer->encode(text, false, false).size());
}

// Places the needles at sentence boundaries of the filler and joins everything.
void assemble(const std::vector<Unit>& filler, const Plan& plan, Sample& s) {
  std::vector<int64_t> boundary(filler.size() + 1, 0);  // filler-only offset of the boundary before unit k
  int64_t len = 0;
  for (size_t k = 0; k < filler.size(); ++k) {
    if (k > 0) boundary[k] = len;
    len += static_cast<int64_t>(filler[k].text.size()) + (k == 0 ? 0 : filler[k].paragraph_start ? 2 : 1);
  }
  boundary[filler.size()] = len;
  std::vector<size_t> slot(plan.needles.size());
  for (size_t i = 0; i < plan.needles.size(); ++i) {
    const double want = plan.needles[i].depth * static_cast<double>(len);
    size_t best = 0;
    for (size_t k = 1; k < boundary.size(); ++k)
      if (std::fabs(static_cast<double>(boundary[k]) - want) < std::fabs(static_cast<double>(boundary[best]) - want))
        best = k;
    slot[i] = best;
  }
  s.text.clear();
  s.needles.clear();
  auto emit = [&](const std::string& t, bool para) {
    if (!s.text.empty()) s.text += para ? "\n\n" : " ";
    const int64_t b = static_cast<int64_t>(s.text.size());
    s.text += t;
    return b;
  };
  for (size_t k = 0; k <= filler.size(); ++k) {
    for (size_t i = 0; i < plan.needles.size(); ++i) {
      if (slot[i] != k) continue;
      const Needle& n = plan.needles[i];
      const int64_t b = emit(n.text, false);
      if (n.asked) {
        s.asked = static_cast<int>(s.needles.size());
        s.answer_span = {b + n.answer_offset, b + n.answer_offset + static_cast<int64_t>(plan.answer.size())};
      }
      s.needles.push_back({b, b + static_cast<int64_t>(n.text.size())});
    }
    if (k < filler.size()) emit(filler[k].text, filler[k].paragraph_start && k > 0);
  }
}

// Whether the answer occurs outside the asked needle (the filler or another needle repeats it).
bool answer_ambiguous(const Sample& s) {
  const Span& n = s.needles[static_cast<size_t>(s.asked)];
  for (size_t at = s.text.find(s.answer); at != std::string::npos; at = s.text.find(s.answer, at + 1))
    if (static_cast<int64_t>(at) < n.begin || static_cast<int64_t>(at + s.answer.size()) > n.end) return true;
  return false;
}

}  // namespace

const char* recipe_name(Recipe r) {
  switch (r) {
    case Recipe::kPasskey: return "passkey";
    case Recipe::kKv: return "kv";
    case Recipe::kMulti: return "multi";
    case Recipe::kExtract: return "extract";
    case Recipe::kMix: return "mix";
    case Recipe::kQuote: return "quote";
  }
  return "?";
}

Result<Recipe> parse_recipe(std::string_view name) {
  for (Recipe r : {Recipe::kPasskey, Recipe::kKv, Recipe::kMulti, Recipe::kExtract, Recipe::kQuote, Recipe::kMix})
    if (name == recipe_name(r)) return r;
  return invalid_argument("unknown recipe '" + std::string(name) + "' (passkey, kv, multi, extract, quote, mix)");
}

Status validate(const GenOptions& o) {
  if (o.lengths.empty()) return invalid_argument("no target length given");
  for (int64_t l : o.lengths)
    if (l < 1 || l > (int64_t{1} << 32)) return invalid_argument("target length " + std::to_string(l) + " is not in 1..2^32");
  if (!(o.depth <= 1.0) || std::isnan(o.depth)) return invalid_argument("depth must be in 0..1 (or random)");
  if (o.needles < 1 || o.needles > 64) return invalid_argument("needles must be in 1..64");
  if (o.unit == LengthUnit::kTokens && o.tokenizer == nullptr)
    return invalid_argument("lengths in tokens need a tokenizer (a GGUF vocabulary)");
  return Status::ok();
}

Result<Sample> HaystackGenerator::generate(const GenOptions& o, uint64_t seed, int64_t index) const {
  CW_RETURN_IF_ERROR(validate(o));
  Rng rng = Rng::for_sample(seed, static_cast<uint64_t>(index));
  Recipe recipe = o.recipe;
  if (recipe == Recipe::kMix) recipe = static_cast<Recipe>(rng.below(4));
  Plan plan;
  switch (recipe) {
    case Recipe::kPasskey: plan = plan_passkey(o, rng); break;
    case Recipe::kKv: plan = plan_kv(o, rng, words_); break;
    case Recipe::kMulti: plan = plan_multi(o, rng, words_); break;
    case Recipe::kQuote: plan = plan_quote(o, rng, words_); break;
    default: plan = plan_extract(o, rng, words_); break;
  }
  Sample s;
  s.recipe = recipe;
  s.seed = seed;
  s.index = index;
  s.target_length = o.lengths[static_cast<size_t>(index) % o.lengths.size()];
  s.question = plan.question;
  s.answer = plan.answer;
  for (const Needle& n : plan.needles)
    if (n.asked) s.depth = n.depth;

  const Grammar g(words_, plan.excluded);
  const int64_t target = s.target_length;
  // What the needles add: their text and one separator each (see assemble()).
  int64_t needles_cost = 0;
  for (const Needle& n : plan.needles) needles_cost += measure(o, " " + n.text);

  for (int attempt = 0;; ++attempt) {
    // Filler: sentences in paragraphs of 3..7, while the estimate stays within the target. A sentence that
    // does not fit is redrawn a few times (a shorter one may), then the filler ends.
    std::vector<Unit> filler;
    int64_t cost = needles_cost;
    int left_in_paragraph = static_cast<int>(rng.range(3, 7));
    for (int misses = 0; misses < 16;) {
      Unit u;
      u.text = g.sentence(rng);
      u.paragraph_start = !filler.empty() && left_in_paragraph == 0;
      const char* sep = filler.empty() ? "" : u.paragraph_start ? "\n\n" : " ";
      const int64_t c = o.unit == LengthUnit::kChars ? static_cast<int64_t>(u.text.size() + std::string_view(sep).size())
                                                     : measure(o, sep + u.text);
      if (cost + c > target) {
        ++misses;
        continue;
      }
      cost += c;
      if (u.paragraph_start) left_in_paragraph = static_cast<int>(rng.range(3, 7));
      --left_in_paragraph;
      filler.push_back(std::move(u));
    }
    assemble(filler, plan, s);
    s.length = measure(o, s.text);
    // Token counts of pieces need not add up exactly: drop filler from the end until the document fits.
    while (s.length > target && !filler.empty()) {
      filler.pop_back();
      assemble(filler, plan, s);
      s.length = measure(o, s.text);
    }
    if (recipe == Recipe::kPasskey || !answer_ambiguous(s) || attempt >= 16) break;
  }
  CW_CHECK(s.text.compare(static_cast<size_t>(s.answer_span.begin),
                          static_cast<size_t>(s.answer_span.end - s.answer_span.begin), s.answer) == 0);
  return s;
}

std::string format_prompt(const Sample& s) { return s.text + "\nQuestion: " + s.question + "\nAnswer:"; }

std::string format_answer(const Sample& s) { return " " + s.answer + "\n"; }

void append_sample_jsonl(std::string& out, const Sample& s, LengthUnit unit, const std::string& fingerprint,
                         const tok::Tokenizer* tokenizer) {
  JsonWriter j;
  j.begin_object();
  j.key("recipe").value(recipe_name(s.recipe));
  j.key("seed").value(s.seed);
  j.key("index").value(s.index);
  j.key("unit").value(unit == LengthUnit::kChars ? "chars" : "tokens");
  j.key("target_length").value(s.target_length);
  j.key("length").value(s.length);
  j.key("depth").value(s.depth);
  j.key("text").value(s.text);
  j.key("question").value(s.question);
  j.key("answer").value(s.answer);
  j.key("answer_begin").value(s.answer_span.begin);
  j.key("answer_end").value(s.answer_span.end);
  j.key("needles").begin_array();
  for (const Span& n : s.needles) j.begin_object().key("begin").value(n.begin).key("end").value(n.end).end_object();
  j.end_array();
  j.key("asked").value(s.asked);
  j.key("words_fingerprint").value(fingerprint);
  if (tokenizer != nullptr) {
    j.key("prompt_tokens").begin_array();
    for (int32_t t : tokenizer->encode(format_prompt(s), true, false)) j.value(static_cast<int64_t>(t));
    j.end_array();
    j.key("answer_tokens").begin_array();
    for (int32_t t : tokenizer->encode(format_answer(s), false, false)) j.value(static_cast<int64_t>(t));
    j.end_array();
  }
  j.end_object();
  out += j.str();
  out += '\n';
}

}  // namespace cw::eval
