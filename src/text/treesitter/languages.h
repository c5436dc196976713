// tree-sitter languages compiled into this build (the `code` chunker's grammars).
//
// Which grammars exist is decided at configure time (cmake/CwTreeSitter.cmake): tools/install-grammars.sh
// unpacks pinned npm tree-sitter-<lang> packages outside the repository and CMake compiles the ones it
// finds. Every function here is thread-safe (the table is immutable; TSLanguage objects are read-only).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

struct TSLanguage;  // tree_sitter/api.h

namespace cw::text::ts {

// True when the build links libtree-sitter (CW_HAVE_TREE_SITTER).
bool runtime_available();

// Every language name the code chunker knows ("c", "cpp", "python", "javascript", "typescript", "tsx",
// "go", "rust", "java"), whether or not its grammar is built in.
const std::vector<std::string>& known_languages();

// The languages whose grammar is compiled into this build.
std::vector<std::string> built_languages();

// Canonical language name for a user-given name or alias ("c++" -> "cpp", "js" -> "javascript",
// "ts" -> "typescript", "py" -> "python", "rs" -> "rust", "golang" -> "go"), case-insensitive.
// InvalidArgument naming the known languages when the name is unknown.
Result<std::string> canonical_language(std::string_view name);

// Language for a file name by its extension (".cc" -> "cpp", ".h" -> "cpp", ".py" -> "python", ...).
// NotFound when the extension is not a known source extension.
Result<std::string> language_for_path(std::string_view path);

// The grammar of a canonical language name. NotFound with instructions when the runtime or the grammar
// is not in this build; Unimplemented when the grammar's language ABI is outside what the runtime loads
// (cannot happen with tools/install-grammars.sh, which pins ABI 14 grammars).
Result<const TSLanguage*> language(std::string_view canonical_name);

}  // namespace cw::text::ts
