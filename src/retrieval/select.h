// Chunk selectors: which of a ranked hit list go into the answer. Made from a spec string:
//   topk:k=K                         the K best (default K = 5)
//   gradient[:min=M,max=K]           SAGE's cut: among the first K hits (default 10), keep the first c, where
//                                    c in [M, K-1] (default M = 1) maximises the score drop hits[c-1] - hits[c]
//                                    (the first such c on ties); fewer than M+1 hits are kept as they are
//   budget:tokens=T[,candidates=N]   greedy by score: walk the N best hits (default 50) in rank order and take
//                                    each whose ChunkRow::n_tokens still fits in T (CORAG's cost-constrained
//                                    view, greedy first); a chunk larger than T is skipped
//   neighbors:n=N[,base=SPEC]        the hits the base selector keeps (default topk:k=5), each expanded with the
//                                    N chunks before and after it in its document (in document order, with the
//                                    hit's score), no chunk twice; base= must be the last key
// Output hits keep the input's scores. Errors are one line that lists the valid specs or keys.
// Thread-safety: a Selector is immutable; select() may run concurrently (the Store serialises its calls).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "retrieval/store.h"

namespace cw::retrieval {

class Selector {
 public:
  virtual ~Selector() = default;
  // hits: ranked best first (as the Store returns them).
  virtual Result<std::vector<Hit>> select(const std::vector<Hit>& hits, const Store& store) const = 0;
  // How many ranked hits the selector wants to see (retrieve at least this many).
  virtual int64_t candidates() const = 0;
  virtual std::string spec() const = 0;  // canonical spec with every key
};

Result<std::unique_ptr<Selector>> make_selector(std::string_view spec);

// The one-line summary of valid specs used in errors and --help.
const char* selector_specs_help();

}  // namespace cw::retrieval
