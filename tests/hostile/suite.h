// The hostile-input suite: cases (a command line against the chunkwise binary plus an oracle), the case
// classes with their peak-RSS bounds, the generators, and the runner that judges and summarises them.
//
// A case passes when the child is not killed by a signal, finishes within its timeout, stays under its
// class's RSS bound, and either
//  - exits 0 with a result its `ok_check` accepts (when the case allows success), or
//  - exits 2 (or 1, for output I/O errors) with exactly one non-empty line on stderr, "chunkwise ...",
//    (when the case allows failure), accepted by `err_check` if any,
// and its postconditions (`post`: files left intact, devices still devices, ...) hold.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hostile/runner.h"

namespace cw::hostile {

enum class Expect {
  kAny,          // exit 0 with a correct result, or exit 2 with one line
  kError,        // must be refused: exit 2 with one line
  kOk,           // must succeed: exit 0 with a correct result
  kOutputError,  // must fail writing: exit 1 or 2 with one line, never 0
};

struct Outcome {
  ChildResult r;
  std::string out, err;  // captured (out capped at 256 MiB)
  uint64_t out_bytes = 0;
};

// "" when fine, else what is wrong.
using Check = std::function<std::string(const Outcome&)>;

// A file made only when a case that needs it is about to run, and deleted after its last user (keeps the
// disk use of ~1,000 mutated models small).
struct LazyFile {
  std::string path;
  std::function<void(const std::string& path)> make;
  int users = 0;
  bool made = false;
  void ensure();
  void release();
};
using LazyRef = std::shared_ptr<LazyFile>;

struct Case {
  std::string cls;   // case class (one of kClasses)
  std::string cmd;   // subcommand
  std::string what;  // what is hostile about it
  std::vector<std::string> args;  // after the binary
  std::string cwd;                // "" = the suite's scratch folder
  std::string stdin_path = "/dev/null";
  std::string stdout_path;        // "" = captured to a file (a device path to test write errors)
  Expect expect = Expect::kAny;
  Check ok_check;                 // judges an exit-0 result (none = any)
  Check err_check;                // extra check of an error result (e.g. a misleading message)
  // Postconditions: called twice, once just before the run (to take snapshots; its result is ignored) and
  // once after it ("" = all hold). See file_unchanged().
  std::function<std::string()> post;
  std::vector<LazyRef> inputs;    // lazily made input files
  double timeout_s = 10;
  uint64_t input_bytes = 0;       // size of the largest input (the text class bound scales with it)
  bool heavy = false;             // multi-MB inputs: full set only
  bool fast = false;              // always in the fast subset
};

// A case class and its peak-RSS bound: base + per_input_byte x the case's input_bytes.
struct ClassInfo {
  const char* name;
  const char* description;
  int64_t rss_base_kb;
  double rss_per_input_byte;
};
extern const std::vector<ClassInfo> kClasses;
const ClassInfo& class_info(const std::string& name);
int64_t rss_bound_kb(const Case& c);

// Files the generators build on: small valid GGUFs written here (vocabulary with the GGUF writer, models
// with `chunkwise make-model`), texts, prompts, special files; the real tiny models of ../shared when present.
struct Fixtures {
  std::string bin;      // chunkwise binary
  std::string dir;      // scratch folder (removed at the end)
  bool full = false;    // whole set (heavy inputs included)
  bool root = false;    // running as root: permission cases are skipped
  uint64_t seed = 0;
  std::optional<std::string> shared;  // ../shared/data

  std::string vocab;    // small SPM vocabulary (512 tokens)
  std::string model;    // make-model llama tiny F32 on `vocab`
  std::string model_q;  // make-model llama tiny Q4_K_M on `vocab`
  std::string text;     // a few hundred tokens of plain English
  std::string md;       // a small markdown document
  std::string prompts;  // a valid JSONL file of 3 prompts
  std::string dir_input;   // a directory
  std::string fifo;        // a FIFO nobody writes
  std::string loop;        // a symlink loop
  std::string missing;     // a path that does not exist
  std::string unreadable;  // mode 000 ("" when root)
  std::string dangling;    // a symlink to nothing
  std::string full_dev;    // a char device that fails writes with ENOSPC (like /dev/full; "" if none safe)

  int counter = 0;
  std::string path(const std::string& stem);  // a fresh unique path in `dir`
  std::string write(const std::string& stem, const std::string& bytes);
  LazyRef lazy(const std::string& stem, std::function<void(const std::string&)> make);
};

// Builds the fixtures (ASSERTs inside: call from a test body and check HasFatalFailure()).
void make_fixtures(Fixtures* fx);
// Removes the scratch folder (kept when $CW_HOSTILE_KEEP is set).
void remove_fixtures(const Fixtures& fx);

// The generators, one per class; each appends its cases.
void gen_gguf(Fixtures& fx, std::vector<Case>& out);
void gen_special(Fixtures& fx, std::vector<Case>& out);
void gen_text(Fixtures& fx, std::vector<Case>& out);
void gen_flags(Fixtures& fx, std::vector<Case>& out);
void gen_jsonl(Fixtures& fx, std::vector<Case>& out);
void gen_output(Fixtures& fx, std::vector<Case>& out);
std::vector<Case> generate_all(Fixtures& fx);

// Oracles shared by the generators (each returns a Check for exit-0 results).
Check check_inspect(bool json);
// mode: "", "--ids", "--json"; expect_tokens: the text is not empty, so no tokens at all is wrong.
Check check_tokenize(const std::string& mode, bool refuse_nul_pieces = false, bool expect_tokens = false);
Check check_json_object(const char* key);  // one JSON object on one line, holding `key`
Check check_run(bool json, int64_t n_predict);
Check check_batch(size_t expected_lines);
Check check_perplexity(bool json);
Check check_bench(bool json);
Check check_make_model(const std::string& bin, const std::string& out_path);
struct ChunkDoc {
  std::string id;
  uint64_t bytes;  // kUnknownSize: not checked against the size (special files)
};
constexpr uint64_t kUnknownSize = ~uint64_t{0};
Check check_chunk(std::vector<ChunkDoc> docs, int64_t size, bool tiles);
std::string one_line_error(const Outcome& o);  // "" when stderr is exactly one non-empty "chunkwise" line

// Postconditions.
std::function<std::string()> file_unchanged(const std::string& path);  // snapshot now, compare later
std::function<std::string()> is_char_device(const std::string& path);
std::function<std::string()> dir_unchanged(const std::string& dir);  // no file added or removed (no stray temp)
// Judges the file at `path` (e.g. a -o output) with `check` instead of stdout.
Check on_file(const std::string& path, Check check);
std::function<std::string()> all_of(std::vector<std::function<std::string()>> posts);

struct Verdict {
  bool pass = false;
  std::string kind;    // ok, refused | crash, hang, rss, exit, stderr, result, accepted, refused-valid, post, setup
  std::string detail;
};
Verdict judge(const Case& c, const Outcome& o);

struct RunOptions {
  bool fast = false;
  std::string summary_path;   // written when non-empty
  std::string failures_path;
  std::string filter;         // run only cases whose class/cmd/what contain it
};
struct SuiteResult {
  size_t n_cases = 0, n_failed = 0;
  std::string summary;        // the table
  std::string failures;       // one block per failing case
};
SuiteResult run_suite(Fixtures& fx, std::vector<Case>& cases, const RunOptions& opt);

// The fast subset: every case marked `fast` plus a few per (class, subcommand), chosen deterministically.
std::vector<Case> fast_subset(std::vector<Case> all);

// Deterministic PRNG (splitmix64).
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }
};

}  // namespace cw::hostile
