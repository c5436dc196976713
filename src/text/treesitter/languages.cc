#include "text/treesitter/languages.h"

#include <algorithm>
#include <cctype>
#include <utility>

#if CW_HAVE_TREE_SITTER
#include <tree_sitter/api.h>
#endif

namespace cw::text::ts {
namespace {

#if CW_HAVE_TREE_SITTER
#define CW_TS_LANGUAGE(name, symbol) extern "C" const TSLanguage* symbol(void);
#include "cw_ts_languages.inc"
#undef CW_TS_LANGUAGE

struct BuiltLanguage {
  const char* name;
  const TSLanguage* (*get)(void);
};

constexpr BuiltLanguage kBuilt[] = {
#define CW_TS_LANGUAGE(name, symbol) {name, &symbol},
#include "cw_ts_languages.inc"
#undef CW_TS_LANGUAGE
    {nullptr, nullptr},
};
#endif

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

}  // namespace

bool runtime_available() { return CW_HAVE_TREE_SITTER != 0; }

const std::vector<std::string>& known_languages() {
  static const std::vector<std::string> kKnown = {"c",  "cpp",  "python", "javascript", "typescript",
                                                  "tsx", "go", "rust",   "java"};
  return kKnown;
}

std::vector<std::string> built_languages() {
  std::vector<std::string> out;
#if CW_HAVE_TREE_SITTER
  for (const BuiltLanguage& b : kBuilt) {
    if (b.name != nullptr) out.emplace_back(b.name);
  }
#endif
  return out;
}

Result<std::string> canonical_language(std::string_view name) {
  static const std::pair<const char*, const char*> kAliases[] = {
      {"c++", "cpp"},        {"cxx", "cpp"},         {"cc", "cpp"},         {"js", "javascript"},
      {"jsx", "javascript"}, {"node", "javascript"}, {"ts", "typescript"},  {"py", "python"},
      {"python3", "python"}, {"rs", "rust"},         {"golang", "go"},
  };
  const std::string l = lower(name);
  for (const std::string& k : known_languages()) {
    if (l == k) return k;
  }
  for (const auto& [alias, canon] : kAliases) {
    if (l == alias) return std::string(canon);
  }
  return invalid_argument("code chunker: unknown language '" + std::string(name) +
                          "' (known: " + join(known_languages()) + ")");
}

Result<std::string> language_for_path(std::string_view path) {
  static const std::pair<const char*, const char*> kExt[] = {
      {".c", "c"},           {".h", "cpp"},         {".cc", "cpp"},         {".cpp", "cpp"},
      {".cxx", "cpp"},       {".c++", "cpp"},       {".hh", "cpp"},         {".hpp", "cpp"},
      {".hxx", "cpp"},       {".h++", "cpp"},       {".ipp", "cpp"},        {".inl", "cpp"},
      {".py", "python"},     {".pyi", "python"},    {".js", "javascript"},  {".mjs", "javascript"},
      {".cjs", "javascript"}, {".jsx", "javascript"}, {".ts", "typescript"}, {".mts", "typescript"},
      {".cts", "typescript"}, {".tsx", "tsx"},       {".go", "go"},          {".rs", "rust"},
      {".java", "java"},
  };
  const size_t slash = path.find_last_of("/\\");
  const std::string_view base = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const size_t dot = base.find_last_of('.');
  if (dot != std::string_view::npos && dot > 0) {
    const std::string ext = lower(base.substr(dot));
    for (const auto& [e, lang] : kExt) {
      if (ext == e) return std::string(lang);
    }
  }
  return not_found("code chunker: cannot tell the language of '" + std::string(path) +
                   "' from its extension; pass lang=<" + join(known_languages()) + ">");
}

Result<const TSLanguage*> language(std::string_view canonical_name) {
  const std::string how =
      "install the grammars with tools/install-grammars.sh (npm; into $CW_GRAMMAR_DIR or "
      "~/.cache/chunkwise/grammars), then re-run cmake and rebuild";
#if CW_HAVE_TREE_SITTER
  for (const BuiltLanguage& b : kBuilt) {
    if (b.name == nullptr || canonical_name != b.name) continue;
    const TSLanguage* lang = b.get();
    const uint32_t abi = ts_language_version(lang);
    if (abi < TREE_SITTER_MIN_COMPATIBLE_LANGUAGE_VERSION || abi > TREE_SITTER_LANGUAGE_VERSION) {
      return unimplemented("code chunker: the " + std::string(canonical_name) + " grammar has language ABI " +
                           std::to_string(abi) + ", this libtree-sitter loads " +
                           std::to_string(TREE_SITTER_MIN_COMPATIBLE_LANGUAGE_VERSION) + ".." +
                           std::to_string(TREE_SITTER_LANGUAGE_VERSION) + "; " + how);
    }
    return lang;
  }
  const std::vector<std::string> built = built_languages();
  return not_found("code chunker: no tree-sitter grammar for '" + std::string(canonical_name) +
                   "' in this build (built: " + (built.empty() ? std::string("none") : join(built)) + "); " +
                   how);
#else
  return not_found("code chunker: this build has no tree-sitter support, so no grammar for '" +
                   std::string(canonical_name) + "'; apt-get install libtree-sitter-dev, then " + how);
#endif
}

}  // namespace cw::text::ts
