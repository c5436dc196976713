// `code` chunker: splits source code along its syntax tree (tree-sitter) so that functions, classes and
// methods stay whole when they fit the limit.
//
// Spec: code[:lang=L][,size=N,overlap=N,unit=U,tokenizer=F]
//   lang=L   c | cpp | python | javascript | typescript | tsx | go | rust | java (aliases: c++, js, ts, py,
//            rs, golang). Without it the language comes from the document id's extension (.c .h .cc .cpp
//            .hpp .py .js .mjs .jsx .ts .tsx .go .rs .java ...; `.h` is parsed as C++). A document whose
//            language cannot be told is an invalid_argument error naming it.
//
// Algorithm: the document is parsed once; starting at the root (which owns the whole input, leading and
// trailing whitespace included) a node whose text fits the limit becomes one piece; a larger node is cut
// into its children, each child owning the text up to the next child's cut. Cuts fall at line starts
// where possible: a child that does not begin its line (a return type's declarator, a trailing comment)
// stays in one group with the siblings before it on that line, and a comment directly above a sibling (no
// blank line between) travels with it; such a group is kept together when it fits and taken apart member
// by member otherwise. A node too large for one chunk starts a new chunk (its first piece is a hard break
// for packing), so a split function begins with its head. A leaf that is still too large (a huge string
// or comment) is split with the recursive "code" separator preset, then at the unit's atoms. The pieces,
// which tile the input, are then packed greedily (pack.h): small adjacent siblings are merged up to the
// limit, a piece that fits is never split. The walk uses an explicit stack (no recursion on tree depth).
//
// Bounds (hostile input): documents that are not valid UTF-8, larger than 32 MiB, or whose parse exceeds
// 1 s + 0.2 s per MiB are not parsed; they are chunked with the recursive "code" separator preset (kind
// "code", no headings). Tree-sitter's error recovery on non-code text costs ~17 us and ~270 bytes per byte.
//
// Chunk::kind: for a chunk that holds the head of a split definition (the part before its body), that
// definition's node type ("function_definition", "class_declaration", ...; not for namespaces and modules,
// which only wrap others); otherwise the node type of the chunk's largest piece. Chunk::headings is the path of enclosing named definitions shared by all of the
// chunk's pieces (e.g. {"Stack", "push"} for a part of method push of class Stack that was too large to
// keep whole; the head of push itself is inside push, so it carries {"Stack", "push"} too).
// Syntax errors never fail: tree-sitter's ERROR nodes are chunked like any other node.
// Errors: unknown language, grammar not in this build (message says how to install it: tools/install-
// grammars.sh), document larger than 4 GiB, a single atom over the limit (pack.h).
// Thread-safety: as every Chunker; each chunk() call uses its own tree-sitter parser.
#pragma once

#include <memory>

#include "base/status.h"
#include "text/chunker.h"

namespace cw::text {

// The registry's factory for "code". Validates lang= (known name) but not whether its grammar is built in:
// that is reported by chunk(), so that the registry and --help work in builds without grammars.
Result<std::unique_ptr<Chunker>> create_code_chunker(const ChunkerConfig& config);

// Method description for the registry (name "code", its keys).
const MethodInfo& code_method();

}  // namespace cw::text
