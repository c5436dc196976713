// The chunking methods. Adding one: write <name>_chunker.cc defining `const MethodInfo& <name>_method()`,
// add it to src/text/CMakeLists.txt, and add ONE line X(<name>_method) below (docs/howto/add_chunker.md).
#include "text/chunker.h"

#define CW_CHUNKER_METHODS(X) \
  X(token_method)             \
  X(sentence_method)          \
  X(recursive_method)         \
  X(markdown_method)          \
  X(code_method)              \
  X(semantic_method)

namespace cw::text {

#define CW_DECLARE_METHOD(fn) const MethodInfo& fn();
CW_CHUNKER_METHODS(CW_DECLARE_METHOD)
#undef CW_DECLARE_METHOD

std::span<const MethodInfo* const> chunker_methods() {
#define CW_METHOD_ENTRY(fn) &fn(),
  static const MethodInfo* const kMethods[] = {CW_CHUNKER_METHODS(CW_METHOD_ENTRY)};
#undef CW_METHOD_ENTRY
  return kMethods;
}

}  // namespace cw::text
