# tree-sitter for the `code` chunker: the runtime from Debian's libtree-sitter-dev (0.20.x, language ABI
# 13..14) and grammars compiled from the generated parser.c (+ scanner.c) that tools/install-grammars.sh
# unpacks OUTSIDE the repository. Everything here is optional: without the runtime or a grammar the build
# still succeeds and the code chunker reports which language is missing and how to install it.
#
# Sets:
#   CW_HAVE_TREE_SITTER        ON when the runtime was found
#   CW_TREE_SITTER_LANGUAGES   list of "<name>;<c symbol>" pairs flattened as name=symbol entries
#   CW_TREE_SITTER_GRAMMAR_TARGETS  one static library per grammar found
# Cache:
#   CW_WITH_TREE_SITTER (ON)   turn the whole thing off
#   CW_GRAMMAR_DIR             where install-grammars.sh put the grammars (default: $CW_GRAMMAR_DIR, else
#                              ${XDG_CACHE_HOME:-$HOME/.cache}/chunkwise/grammars, the script's default)

option(CW_WITH_TREE_SITTER "Build the code chunker's tree-sitter support when libtree-sitter is found" ON)

if(DEFINED ENV{CW_GRAMMAR_DIR} AND NOT "$ENV{CW_GRAMMAR_DIR}" STREQUAL "")
  set(_cw_grammar_default "$ENV{CW_GRAMMAR_DIR}")
elseif(DEFINED ENV{XDG_CACHE_HOME} AND NOT "$ENV{XDG_CACHE_HOME}" STREQUAL "")
  set(_cw_grammar_default "$ENV{XDG_CACHE_HOME}/chunkwise/grammars")
else()
  set(_cw_home "$ENV{HOME}")
  if(_cw_home STREQUAL "")  # same fallback as tools/install-grammars.sh
    execute_process(COMMAND sh -c "getent passwd \"$(id -u)\" | cut -d: -f6"
                    OUTPUT_VARIABLE _cw_home OUTPUT_STRIP_TRAILING_WHITESPACE)
  endif()
  set(_cw_grammar_default "${_cw_home}/.cache/chunkwise/grammars")
endif()
set(CW_GRAMMAR_DIR "${_cw_grammar_default}" CACHE PATH "Directory of tree-sitter grammars (tools/install-grammars.sh)")

set(CW_HAVE_TREE_SITTER OFF)
set(CW_TREE_SITTER_LANGUAGES "")
set(CW_TREE_SITTER_GRAMMAR_TARGETS "")

if(CW_WITH_TREE_SITTER)
  pkg_check_modules(TREE_SITTER QUIET IMPORTED_TARGET tree-sitter)
  if(TREE_SITTER_FOUND)
    set(CW_HAVE_TREE_SITTER ON)
  else()
    message(STATUS "tree-sitter: libtree-sitter not found (apt-get install libtree-sitter-dev); "
                   "the code chunker is built without it")
  endif()
endif()

# cw_add_grammar(NAME SYMBOL SRC_DIR): one static library from SRC_DIR/parser.c (+ scanner.c).
function(cw_add_grammar name symbol src_dir)
  set(sources ${src_dir}/parser.c)
  if(EXISTS ${src_dir}/scanner.c)
    list(APPEND sources ${src_dir}/scanner.c)
  endif()
  if(EXISTS ${src_dir}/scanner.cc)
    message(STATUS "tree-sitter: ${name} has a C++ scanner (scanner.cc), not supported; skipped")
    return()
  endif()
  set(target cw_ts_grammar_${name})
  add_library(${target} STATIC ${sources})
  # Generated third-party code: its own tree_sitter/parser.h first, no warnings, and no sanitizers (with
  # CW_SANITIZE, UBSan aborts on e.g. tree-sitter-cpp's scanner.c passing NULL to memcpy with length 0 when
  # deserialising an empty state: harmless in practice and not ours to fix).
  target_include_directories(${target} PRIVATE ${src_dir})
  target_compile_options(${target} PRIVATE -w -fno-sanitize=all)
  set_target_properties(${target} PROPERTIES C_STANDARD 99 POSITION_INDEPENDENT_CODE ON)
  set(CW_TREE_SITTER_LANGUAGES ${CW_TREE_SITTER_LANGUAGES} "${name}=${symbol}" PARENT_SCOPE)
  set(CW_TREE_SITTER_GRAMMAR_TARGETS ${CW_TREE_SITTER_GRAMMAR_TARGETS} ${target} PARENT_SCOPE)
endfunction()

if(CW_HAVE_TREE_SITTER)
  # name | C symbol | directory under CW_GRAMMAR_DIR
  set(_cw_grammars
    "c|tree_sitter_c|tree-sitter-c/src"
    "cpp|tree_sitter_cpp|tree-sitter-cpp/src"
    "python|tree_sitter_python|tree-sitter-python/src"
    "javascript|tree_sitter_javascript|tree-sitter-javascript/src"
    "typescript|tree_sitter_typescript|tree-sitter-typescript/typescript/src"
    "tsx|tree_sitter_tsx|tree-sitter-typescript/tsx/src"
    "go|tree_sitter_go|tree-sitter-go/src"
    "rust|tree_sitter_rust|tree-sitter-rust/src"
    "java|tree_sitter_java|tree-sitter-java/src")
  set(_cw_missing "")
  set(_cw_stamps "")
  foreach(entry IN LISTS _cw_grammars)
    string(REPLACE "|" ";" parts "${entry}")
    list(GET parts 0 name)
    list(GET parts 1 symbol)
    list(GET parts 2 sub)
    set(src_dir "${CW_GRAMMAR_DIR}/${sub}")
    if(NOT EXISTS "${src_dir}/parser.c")
      list(APPEND _cw_missing ${name})
      continue()
    endif()
    file(STRINGS "${src_dir}/parser.c" _abi_line REGEX "^#define LANGUAGE_VERSION [0-9]+" LIMIT_COUNT 1
         LIMIT_INPUT 65536)  # defined in the first lines of a generated parser
    string(REGEX REPLACE "^#define LANGUAGE_VERSION ([0-9]+).*" "\\1" _abi "${_abi_line}")
    if(NOT _abi MATCHES "^[0-9]+$" OR _abi LESS 13 OR _abi GREATER 14)
      message(WARNING "tree-sitter: ${src_dir}/parser.c has language ABI '${_abi}'; libtree-sitter 0.20 "
                      "loads 13..14 only. Skipped; reinstall with tools/install-grammars.sh")
      list(APPEND _cw_missing ${name})
      continue()
    endif()
    cw_add_grammar(${name} ${symbol} "${src_dir}")
    # Re-configure when the grammar is reinstalled at another version.
    get_filename_component(_pkg_dir "${src_dir}" DIRECTORY)
    foreach(_stamp "${_pkg_dir}/.cw-version" "${_pkg_dir}/../.cw-version")
      get_filename_component(_stamp "${_stamp}" ABSOLUTE)
      if(EXISTS "${_stamp}")
        list(APPEND _cw_stamps "${_stamp}")
      endif()
    endforeach()
  endforeach()
  if(_cw_stamps)
    list(REMOVE_DUPLICATES _cw_stamps)
    set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_cw_stamps})
  endif()
  list(LENGTH CW_TREE_SITTER_GRAMMAR_TARGETS _n)
  if(_cw_missing)
    message(STATUS "tree-sitter: ${_n} grammars from ${CW_GRAMMAR_DIR}; missing: ${_cw_missing} "
                   "(run tools/install-grammars.sh, then re-run cmake)")
  else()
    message(STATUS "tree-sitter: ${_n} grammars from ${CW_GRAMMAR_DIR}")
  endif()
endif()
