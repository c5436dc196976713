// Oracles: what an exit-0 result of each subcommand must look like.
#include <cmath>
#include <filesystem>
#include <sstream>

#include "base/json_value.h"
#include "hostile/suite.h"

namespace cw::hostile {
namespace {

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  std::string l;
  while (std::getline(in, l)) v.push_back(l);
  return v;
}

// Parses `s` as exactly one JSON object on one line.
std::string one_object(const std::string& s, JsonValue* v) {
  if (s.empty()) return "stdout is empty";
  if (s.back() != '\n' || s.find('\n') != s.size() - 1) return "expected exactly one line of JSON on stdout";
  auto j = JsonValue::parse(std::string_view(s).substr(0, s.size() - 1));
  if (!j.is_ok()) return "stdout is not JSON: " + j.status().message();
  if (!j->is_object()) return "stdout is not a JSON object";
  *v = std::move(j).value();
  return "";
}

bool is_count(const JsonValue* v) {
  return v != nullptr && v->is_number() && v->as_number() >= 0 && v->as_number() == std::floor(v->as_number());
}

bool finite_number(const JsonValue* v) { return v != nullptr && v->is_number() && std::isfinite(v->as_number()); }

std::string int_array(const JsonValue* v, const char* name, size_t* n) {
  if (v == nullptr || !v->is_array()) return std::string("\"") + name + "\" is missing or not an array";
  for (const JsonValue& x : v->items())
    if (!is_count(&x)) return std::string("\"") + name + "\" holds a non-id";
  *n = v->items().size();
  return "";
}

}  // namespace

Check check_inspect(bool json) {
  return [json](const Outcome& o) -> std::string {
    if (!json) return o.out.empty() ? "stdout is empty" : "";
    JsonValue v;
    if (std::string e = one_object(o.out, &v); !e.empty()) return e;
    const JsonValue* t = v.get("tensors");
    if (t == nullptr || !t->is_array()) return "no \"tensors\" array";
    if (v.get("metadata") == nullptr) return "no \"metadata\"";
    return "";
  };
}

Check check_tokenize(const std::string& mode, bool refuse_nul_pieces, bool expect_tokens) {
  return [mode, refuse_nul_pieces, expect_tokens](const Outcome& o) -> std::string {
    const std::string none = "no tokens for a non-empty text";
    if (mode == "--ids") {
      if (o.out.empty() || o.out.back() != '\n' || o.out.find('\n') != o.out.size() - 1)
        return "--ids: expected exactly one line";
      std::istringstream in(o.out);
      std::string tok;
      size_t n = 0;
      while (in >> tok) {
        if (tok.find_first_not_of("0123456789") != std::string::npos) return "--ids: '" + tok + "' is not an id";
        ++n;
      }
      return expect_tokens && n == 0 ? none : "";
    }
    if (mode == "--json") {
      JsonValue v;
      if (std::string e = one_object(o.out, &v); !e.empty()) return e;
      size_t n_tokens = 0;
      if (std::string e = int_array(v.get("tokens"), "tokens", &n_tokens); !e.empty()) return e;
      if (expect_tokens && n_tokens == 0) return none;
      const JsonValue* pieces = v.get("pieces");
      if (pieces == nullptr || !pieces->is_array() || pieces->items().size() != n_tokens)
        return "\"pieces\" is missing or does not match \"tokens\"";
      if (refuse_nul_pieces) {
        size_t n_nul = 0;
        for (const JsonValue& p : pieces->items())
          if (!p.is_string() || p.as_string().find('\0') != std::string::npos) ++n_nul;
        if (n_nul > 0)
          return "UTF-16 text tokenized as bytes: " + std::to_string(n_nul) + " of " + std::to_string(n_tokens) +
                 " pieces hold a NUL (decode it or refuse it)";
      }
      return "";
    }
    const auto lines = lines_of(o.out);
    if (expect_tokens && lines.empty()) return none;
    for (const std::string& l : lines) {
      const size_t arrow = l.find(" -> '");
      if (arrow == std::string::npos || l.back() != '\'' ||
          l.substr(0, arrow).find_first_not_of(" 0123456789") != std::string::npos)
        return "line '" + l.substr(0, 60) + "' is not 'ID -> 'PIECE''";
    }
    return "";
  };
}

Check check_run(bool json, int64_t n_predict) {
  return [json, n_predict](const Outcome& o) -> std::string {
    if (!json) return "";
    JsonValue v;
    if (std::string e = one_object(o.out, &v); !e.empty()) return e;
    size_t n_prompt = 0, n_tokens = 0;
    if (std::string e = int_array(v.get("prompt_tokens"), "prompt_tokens", &n_prompt); !e.empty()) return e;
    if (n_prompt == 0) return "no prompt tokens";
    if (std::string e = int_array(v.get("tokens"), "tokens", &n_tokens); !e.empty()) return e;
    if (static_cast<int64_t>(n_tokens) > n_predict)
      return std::to_string(n_tokens) + " tokens generated for -n " + std::to_string(n_predict);
    const JsonValue* text = v.get("text");
    if (text == nullptr || !text->is_string()) return "no \"text\"";
    return "";
  };
}

Check check_batch(size_t expected_lines) {
  return [expected_lines](const Outcome& o) -> std::string {
    const auto lines = lines_of(o.out);
    if (lines.size() != expected_lines)
      return std::to_string(lines.size()) + " output lines for " + std::to_string(expected_lines) + " prompts";
    if (!o.out.empty() && o.out.back() != '\n') return "last output line is not terminated";
    for (size_t i = 0; i < lines.size(); ++i) {
      auto j = JsonValue::parse(lines[i]);
      if (!j.is_ok() || !j->is_object()) return "output line " + std::to_string(i + 1) + " is not a JSON object";
      size_t n = 0;
      if (j->get("id") == nullptr) return "output line " + std::to_string(i + 1) + " has no id";
      if (std::string e = int_array(j->get("tokens"), "tokens", &n); !e.empty()) return e;
      const JsonValue* text = j->get("text");
      if (text == nullptr || !text->is_string()) return "output line " + std::to_string(i + 1) + " has no text";
      if (j->get("error") != nullptr) return "exit 0 with an \"error\" on line " + std::to_string(i + 1);
    }
    return "";
  };
}

Check check_perplexity(bool json) {
  return [json](const Outcome& o) -> std::string {
    double ppl = 0;
    if (json) {
      JsonValue v;
      if (std::string e = one_object(o.out, &v); !e.empty()) return e;
      const JsonValue* p = v.get("ppl");
      if (p == nullptr || !p->is_number()) return "no numeric \"ppl\" (" + o.out.substr(0, 80) + ")";
      ppl = p->as_number();
    } else {
      const size_t at = o.out.find("PPL = ");
      if (at == std::string::npos) return "no 'PPL = ' line";
      ppl = std::strtod(o.out.c_str() + at + 6, nullptr);
      if (o.out.compare(at + 6, 3, "nan") == 0 || o.out.compare(at + 6, 4, "-nan") == 0) ppl = NAN;
    }
    if (!std::isfinite(ppl) || ppl < 1) return "perplexity " + std::to_string(ppl) + " with exit 0";
    return "";
  };
}

Check check_bench(bool json) {
  return [json](const Outcome& o) -> std::string {
    if (!json) return o.out.empty() ? "stdout is empty" : "";
    JsonValue v;
    if (std::string e = one_object(o.out, &v); !e.empty()) return e;
    for (const char* k : {"prefill_tok_s", "decode_tok_s"})
      if (!finite_number(v.get(k)) || v.get(k)->as_number() < 0) return std::string("\"") + k + "\" is not a rate";
    return "";
  };
}

Check check_json_object(const char* key) {
  return [key](const Outcome& o) -> std::string {
    JsonValue v;
    if (std::string e = one_object(o.out, &v); !e.empty()) return e;
    return v.get(key) == nullptr ? std::string("no \"") + key + "\" in the JSON" : "";
  };
}

Check check_make_model(const std::string& bin, const std::string& out_path) {
  return [bin, out_path](const Outcome& o) -> std::string {
    if (o.out.rfind("wrote ", 0) != 0) return "stdout does not say what was written";
    std::error_code ec;
    if (!std::filesystem::is_regular_file(out_path, ec)) return "exit 0 but no output file";
    ChildSpec s;
    s.argv = {bin, "run", "-m", out_path, "-p", "Once upon a time", "-n", "2", "--temp", "0", "--json"};
    s.stdout_path = out_path + ".run.out";
    s.stderr_path = out_path + ".run.err";
    s.timeout_s = 20;
    s.rss_kill_kb = 1 << 20;
    const ChildResult r = run_child(s);
    const std::string err = slurp(s.stderr_path, 400);
    std::filesystem::remove(s.stdout_path, ec);
    std::filesystem::remove(s.stderr_path, ec);
    std::filesystem::remove(out_path, ec);
    if (!r.exited || r.exit_code != 0)
      return "make-model wrote a model that `run` then refuses (" +
             (r.exited ? "exit " + std::to_string(r.exit_code) : std::string("killed/crashed")) + ": " +
             err.substr(0, err.find('\n')) + ")";
    return "";
  };
}

Check check_chunk(std::vector<ChunkDoc> docs, int64_t size, bool tiles) {
  return [docs, size, tiles](const Outcome& o) -> std::string {
    const auto lines = lines_of(o.out);
    size_t li = 0;
    for (const ChunkDoc& d : docs) {
      int64_t index = 0;
      double prev_byte = 0, prev_char = 0, prev_begin = 0;
      for (; li < lines.size(); ++li) {
        auto j = JsonValue::parse(lines[li]);
        if (!j.is_ok() || !j->is_object()) return "line " + std::to_string(li + 1) + " is not a JSON object";
        const JsonValue* doc = j->get("doc");
        if (doc == nullptr || !doc->is_string()) return "line " + std::to_string(li + 1) + " has no doc";
        if (doc->as_string() != d.id) break;
        if (index > 0 && is_count(j->get("index")) && j->get("index")->as_number() == 0) break;  // same name again
        for (const char* k : {"index", "byte_begin", "byte_end", "char_begin", "char_end", "n_tokens"})
          if (!is_count(j->get(k))) return "line " + std::to_string(li + 1) + ": \"" + k + "\" is not a count";
        const double bb = j->get("byte_begin")->as_number(), be = j->get("byte_end")->as_number();
        const double cb = j->get("char_begin")->as_number(), ce = j->get("char_end")->as_number();
        const std::string at = "doc '" + d.id.substr(d.id.rfind('/') + 1) + "' chunk " + std::to_string(index) + ": ";
        if (j->get("index")->as_number() != static_cast<double>(index)) return at + "index out of sequence";
        const bool known = d.bytes != kUnknownSize;
        if (bb > be || (known && be > static_cast<double>(d.bytes)) || cb > ce)
          return at + "bad range [" + std::to_string(static_cast<int64_t>(bb)) + ", " +
                 std::to_string(static_cast<int64_t>(be)) + ") of " + std::to_string(d.bytes) + " bytes";
        if (j->get("n_tokens")->as_number() > static_cast<double>(size))
          return at + "size " + std::to_string(static_cast<int64_t>(j->get("n_tokens")->as_number())) +
                 " > --size " + std::to_string(size);
        if (tiles) {
          if (bb != prev_byte || cb != prev_char) return at + "does not start where the previous one ended";
          if (bb == be) return at + "is empty";
        } else if (bb < prev_begin) {
          return at + "starts before the previous chunk";
        }
        prev_begin = bb;
        prev_byte = be;
        prev_char = ce;
        ++index;
      }
      if (!tiles && index == 0 && d.bytes != kUnknownSize && d.bytes > 0)
        return "doc '" + d.id.substr(d.id.rfind('/') + 1) + "' of " + std::to_string(d.bytes) + " bytes has no chunks";
      if (tiles && d.bytes != kUnknownSize && prev_byte != static_cast<double>(d.bytes))
        return "doc '" + d.id.substr(d.id.rfind('/') + 1) + "': chunks cover " +
               std::to_string(static_cast<int64_t>(prev_byte)) + " of " + std::to_string(d.bytes) + " bytes";
    }
    if (li != lines.size()) return "line " + std::to_string(li + 1) + ": unexpected doc or order";
    return "";
  };
}

Check on_file(const std::string& path, Check check) {
  return [path, check](const Outcome& o) -> std::string {
    Outcome f = o;
    f.out = slurp(path, uint64_t{256} << 20, &f.out_bytes);
    if (!o.out.empty()) return "-o given, yet " + std::to_string(o.out.size()) + " bytes went to stdout";
    return check ? check(f) : "";
  };
}

}  // namespace cw::hostile
