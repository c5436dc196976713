// cw::text — document chunkers with exact offsets and sizes that never exceed their limit.
//
// A Chunker is made from a spec string (make_chunker): "METHOD[:key=value,key=value...]", e.g.
//   recursive:size=512,overlap=64,unit=tokens,tokenizer=FILE.gguf
// Keys common to every method (the same names as the `chunkwise chunk` flags):
//   size=N       limit per chunk in the unit (>= 1, default 512)
//   overlap=N    0 <= N < size (default 0): each chunk after the first starts with at most N units of the
//                end of the previous chunk, aligned to the method's pieces (sentences, blocks, tokens: see
//                pack.h) or, for recursive, to a word start
//   unit=U       tokens | chars | bytes | words (default: tokens when tokenizer= is given, else chars)
//   tokenizer=F  a GGUF file whose vocabulary measures unit=tokens (required for it, readable)
// Methods add their own keys (MethodInfo::keys); unknown keys and bad values are invalid_argument errors that
// list the valid keys. Methods are registered in registry.cc: one file per method + one line there.
//
// Guarantees of every chunker (tested by the data-driven cases and the property test):
//   - offsets index the ORIGINAL input: the chunk's text is input.substr(byte_begin, byte_end - byte_begin);
//     char_begin/char_end count code points of the same input (see "Invalid UTF-8" below);
//   - chunks are in input order and cover it: with overlap=0 they tile the input exactly (the concatenation of
//     the chunks is the input, whitespace included); with overlap > 0 each chunk starts at or before the end
//     of the previous one and after its start; an empty input gives no chunks;
//   - n_tokens is the size of the chunk's text measured ALONE in the unit (a BPE/SPM count of a concatenation
//     is not the sum of its parts: chunks are verified on their own text) and n_tokens <= size;
//   - no chunk boundary falls inside a valid UTF-8 sequence.
// When even a single indivisible unit (one code point, which may need several byte-fallback tokens, or
// 2-4 bytes with unit=bytes) measures more than `size`, chunk() fails with out_of_range naming its byte
// offset: a chunk over the limit is never produced.
//
// Invalid UTF-8 is never an error: each byte that does not start a well-formed sequence is a unit of its
// own (one "char", as base/utf8.h counts), kept in the chunk's bytes; the JSONL writer shows it as U+FFFD in
// "text" while the offsets stay exact.
//
// Thread-safety: a Chunker is immutable after creation; chunk() may be called concurrently from any number
// of threads (one document per call).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "text/measure.h"

namespace cw::text {

struct Chunk {
  std::string doc;                    // document id given to chunk() (a file path in the CLI)
  int64_t index = 0;                  // 0-based position among the document's chunks
  int64_t byte_begin = 0, byte_end = 0;  // [begin, end) into the original UTF-8 bytes
  int64_t char_begin = 0, char_end = 0;  // the same range in code points
  int64_t n_tokens = 0;               // size of the chunk's own text in the chunker's unit (<= size)
  std::vector<std::string> headings;  // enclosing heading path, outermost first (markdown, code); may be empty
  std::string kind;                   // what the chunk holds ("text", "code", "table", "function_definition"...)

  std::string_view text_in(std::string_view input) const {
    return input.substr(static_cast<size_t>(byte_begin), static_cast<size_t>(byte_end - byte_begin));
  }
};

// Method-specific key=value pairs of a spec (common keys removed). Getters validate and name the key.
class SpecParams {
 public:
  SpecParams() = default;
  explicit SpecParams(std::map<std::string, std::string> kv) : kv_(std::move(kv)) {}
  bool has(const std::string& key) const { return kv_.count(key) != 0; }
  std::string get(const std::string& key, const std::string& fallback) const;
  // Integer in [min, max]; fallback when absent. invalid_argument names the key and the range.
  Result<int64_t> get_int(const std::string& key, int64_t fallback, int64_t min, int64_t max) const;
  Result<double> get_double(const std::string& key, double fallback, double min, double max) const;
  // One of `choices`; fallback when absent.
  Result<std::string> get_choice(const std::string& key, const std::string& fallback,
                                 std::span<const std::string_view> choices) const;
  const std::map<std::string, std::string>& all() const { return kv_; }

 private:
  std::map<std::string, std::string> kv_;
};

// Everything a method's factory receives: validated common keys and the method's own keys.
struct ChunkerConfig {
  std::string method;
  int64_t size = 512;
  int64_t overlap = 0;
  std::shared_ptr<const SizeMeasure> measure;  // never null
  SpecParams params;                           // only keys listed in the method's MethodInfo::keys
};

class Chunker {
 public:
  explicit Chunker(ChunkerConfig config) : config_(std::move(config)) {}
  virtual ~Chunker() = default;
  Chunker(const Chunker&) = delete;
  Chunker& operator=(const Chunker&) = delete;

  // Chunks one document. `doc` is its id (copied into each Chunk::doc; methods may read a file extension
  // from it). Errors: out_of_range when a single indivisible unit exceeds the size; method-specific errors
  // (e.g. a missing grammar). Never aborts on any input bytes.
  virtual Result<std::vector<Chunk>> chunk(std::string_view doc, std::string_view text) const = 0;

  const ChunkerConfig& config() const { return config_; }

 private:
  ChunkerConfig config_;
};

// A registered method.
struct MethodKey {
  std::string name;
  std::string help;  // one line, shown by `chunkwise chunk --help` and in errors
};
struct MethodInfo {
  std::string name;
  std::string summary;
  std::vector<MethodKey> keys;  // method-specific keys (the common keys are implied)
  Result<std::unique_ptr<Chunker>> (*create)(const ChunkerConfig& config);
};

// All registered methods, in registration order (registry.cc).
std::span<const MethodInfo* const> chunker_methods();
const MethodInfo* find_method(std::string_view name);

// "METHOD:k=v,..." split into method and raw pairs. Errors: empty method, malformed pair, duplicate key.
struct ParsedSpec {
  std::string method;
  std::map<std::string, std::string> kv;
};
Result<ParsedSpec> parse_spec(std::string_view spec);

// Validates a parsed spec (method known, keys valid, size/overlap/unit/tokenizer) into a config; loads the
// tokenizer (cached process-wide by path).
Result<ChunkerConfig> make_config(const ParsedSpec& spec);

// parse_spec + make_config + the method's create().
Result<std::unique_ptr<Chunker>> make_chunker(std::string_view spec);

}  // namespace cw::text
