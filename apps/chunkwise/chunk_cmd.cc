// chunkwise chunk [--method M] [--size N] [--overlap N] [--unit U] [--tokenizer GGUF] [--spec SPEC]
//                 [--lang L] [FILES... | -] [-o out.jsonl] [--threads N]
// Chunks documents (one per file, or stdin) and writes one JSON line per chunk, in input order.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "args.h"
#include "base/file_io.h"
#include "base/mapped_file.h"
#include "base/thread_pool.h"
#include "commands.h"
#include "threads_flag.h"
#include "text/chunker.h"
#include "text/jsonl.h"
#include "text/measure.h"

namespace cw::app {
namespace {

constexpr const char* kCmd = "chunk";

std::string describe_methods() {
  std::string s =
      "Splits each input document into chunks that never exceed --size units and writes JSON lines\n"
      "{\"doc\",\"index\",\"byte_begin\",\"byte_end\",\"char_begin\",\"char_end\",\"n_tokens\",\"text\"} (+\"headings\",\n"
      "\"kind\" where known) in input order. byte_* index the file's bytes exactly, char_* count code points;\n"
      "n_tokens is the chunk's own size in the unit. With --overlap 0 the chunks tile each document exactly.\n"
      "Invalid UTF-8 bytes are kept (one unit each) and shown as U+FFFD in \"text\".\n\n"
      "A spec string sets everything at once, e.g. --spec recursive:size=512,overlap=64,preset=markdown;\n"
      "flags given on the command line override its keys.\n\nmethods (method-specific spec keys indented):\n";
  for (const text::MethodInfo* m : text::chunker_methods()) {
    s += "  " + m->name + std::string(m->name.size() < 10 ? 10 - m->name.size() : 1, ' ') + m->summary + "\n";
    for (const text::MethodKey& k : m->keys) s += "      " + k.name + "=  " + k.help + "\n";
  }
  s += "\nexit codes: 0 ok, 2 bad flags / unreadable input / a unit larger than --size, 1 output error.";
  return s;
}

struct Input {
  std::string path;  // "-" = stdin
  std::string id;
};

bool stderr_is_tty() { return ::isatty(2) == 1; }

}  // namespace

int chunk_main(int argc, char** argv) {
  std::string method, unit, tokenizer, spec, lang, output;
  bool no_text = false;
  int64_t size = 512, overlap = 0;
  int64_t threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::string> files;
  ArgParser p(kCmd,
              "[--method M] [--size N] [--overlap N] [--unit tokens|chars|bytes|words] [--tokenizer GGUF] "
              "[--spec SPEC] [FILES... | -] [-o out.jsonl] [--threads N] [--no-text]",
              describe_methods());
  p.option("-m,--method", &method, "M", "chunking method (default recursive; see above)");
  p.option("-s,--size", &size, "N", "largest chunk size in the unit (default 512)", 1, int64_t{1} << 40);
  p.option("--overlap", &overlap, "N", "units of the previous chunk repeated at the start of the next (default 0)", 0,
           int64_t{1} << 40);
  p.option("-u,--unit", &unit, "U", "tokens | chars | bytes | words (default tokens with --tokenizer, else chars)");
  p.option("--tokenizer", &tokenizer, "GGUF", "GGUF file whose vocabulary counts tokens (unit tokens)");
  p.option("--spec", &spec, "SPEC", "METHOD:key=value,... (see above)");
  p.option("--lang", &lang, "L", "language for methods that take one (spec key lang=)");
  p.option("-o,--output", &output, "FILE", "write the JSON lines to FILE instead of stdout");
  p.flag("--no-text", &no_text, "leave \"text\" out of each line (offsets only; the input stays the reference)");
  p.option("-t,--threads", &threads, "N", "documents chunked in parallel (default: all cores)", 1, 1024);
  p.positionals(&files, "FILES...", "documents to chunk (one document per file); none or '-' reads stdin");
  if (Status s = p.parse(argc, argv); !s.is_ok()) return report_error(kCmd, s);
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return kExitOk;
  }

  // The spec: --spec first, then flags override its keys.
  text::ParsedSpec parsed;
  if (p.given("--spec")) {
    auto r = text::parse_spec(spec);
    if (!r.is_ok()) return report_error(kCmd, r.status());
    parsed = std::move(r).value();
  } else {
    parsed.method = "recursive";
  }
  if (p.given("--method")) parsed.method = method;
  if (p.given("--size")) parsed.kv["size"] = std::to_string(size);
  if (p.given("--overlap")) parsed.kv["overlap"] = std::to_string(overlap);
  if (p.given("--unit")) parsed.kv["unit"] = unit;
  if (p.given("--tokenizer")) parsed.kv["tokenizer"] = tokenizer;
  if (p.given("--lang")) parsed.kv["lang"] = lang;
  auto cfg = text::make_config(parsed);
  if (!cfg.is_ok()) return report_error(kCmd, cfg.status());
  auto made = text::find_method(cfg->method)->create(*cfg);
  if (!made.is_ok()) return report_error(kCmd, made.status());
  const text::Chunker& chunker = **made;

  // Inputs: check up front so that a bad path fails before any output.
  std::vector<Input> inputs;
  if (files.empty()) files.push_back("-");
  int n_stdin = 0;
  for (const std::string& f : files) {
    if (f == "-") {
      if (++n_stdin > 1) return report_error(kCmd, invalid_argument("stdin ('-') given more than once"));
      inputs.push_back({"-", "-"});
      continue;
    }
    auto opened = open_input(f);  // refuses missing files, directories, FIFOs, devices
    if (!opened.is_ok()) return report_error(kCmd, opened.status());
    ::close(opened->fd);
    inputs.push_back({f, f});
  }

  // The output is written to a temporary file and renamed into place only when every document succeeded:
  // a failed or killed run leaves an existing output as it was. An output that is an input is refused.
  FILE* out = stdout;
  OutputFile out_file;
  if (p.given("--output")) {
    if (Status s = check_output_not_input(output, files); !s.is_ok()) return report_error(kCmd, s);
    auto created = OutputFile::create(output);
    if (!created.is_ok()) return report_error(kCmd, created.status());
    out_file = std::move(created).value();
    out = out_file.file();
  }

  // Documents are chunked in parallel (each pool thread takes the next document), and whichever thread
  // completes the document that is next in input order writes every consecutive finished output. Threads
  // run at most `window` documents ahead of the writer, which bounds memory.
  const int n_threads = static_cast<int>(std::min<int64_t>(capped_threads_flag(kCmd, "--threads", threads),
                                                            static_cast<int64_t>(inputs.size())));
  ThreadPool pool(std::max(1, n_threads));
  const bool progress = stderr_is_tty();
  const size_t n_docs = inputs.size();
  const size_t window = static_cast<size_t>(4 * std::max(1, n_threads));
  struct Slot {
    std::string out;
    Status error;
    int64_t bytes = 0, chunks = 0;
    bool done = false;
  };
  std::vector<Slot> slots(n_docs);
  std::atomic<size_t> next_doc{0};
  std::mutex mu;
  std::condition_variable cv;
  size_t next_write = 0;  // guarded by mu
  bool failed = false;    // guarded by mu: stop taking documents
  bool write_failed = false;
  int64_t total_bytes = 0, total_chunks = 0;
  auto chunk_one = [&](size_t k) {
    Slot& slot = slots[k];
    const Input& in = inputs[k];
    std::string data;
    std::string_view text;
    MappedFile mapped;
    if (in.path == "-") {
      ReadOptions o;
      o.dash_is_stdin = true;
      auto r = read_input("-", o);
      if (!r.is_ok()) {
        slot.error = r.status();
        return;
      }
      data = std::move(r).value();
      text = data;
    } else {
      auto m = MappedFile::open(in.path);
      if (!m.is_ok()) {
        slot.error = m.status();
        return;
      }
      mapped = std::move(m).value();
      text = std::string_view(reinterpret_cast<const char*>(mapped.data()), mapped.size());
    }
    if (Status s = check_utf8_encoding(text, in.path == "-" ? "standard input" : "'" + in.path + "'"); !s.is_ok()) {
      slot.error = s;
      return;
    }
    auto r = chunker.chunk(in.id, text);
    if (!r.is_ok()) {
      slot.error = Status(r.status().code(), "'" + in.id + "': " + r.status().message());
      return;
    }
    slot.out.reserve((no_text ? 0 : text.size()) + r->size() * 160);
    for (const text::Chunk& c : *r) text::append_chunk_jsonl(slot.out, c, text, !no_text);
    slot.bytes = static_cast<int64_t>(text.size());
    slot.chunks = static_cast<int64_t>(r->size());
  };
  pool.parallel_for(pool.size(), [&](int64_t, int64_t, int) {
    for (;;) {
      const size_t k = next_doc.fetch_add(1);
      if (k >= n_docs) return;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return failed || k < next_write + window; });
        if (failed) return;
      }
      chunk_one(k);
      std::unique_lock<std::mutex> lock(mu);
      slots[k].done = true;
      // Write every finished document that is next in order (outside the lock would reorder writers).
      while (!failed && next_write < n_docs && slots[next_write].done) {
        Slot& w = slots[next_write];
        if (!w.error.is_ok()) {
          failed = true;
          break;
        }
        if (std::fwrite(w.out.data(), 1, w.out.size(), out) != w.out.size()) {
          failed = write_failed = true;
          break;
        }
        total_bytes += w.bytes;
        total_chunks += w.chunks;
        std::string().swap(w.out);
        ++next_write;
        if (progress) {
          std::fprintf(stderr, "\rchunk: %zu/%zu documents, %.1f MB, %lld chunks", next_write, n_docs,
                       static_cast<double>(total_bytes) / 1e6, static_cast<long long>(total_chunks));
        }
      }
      cv.notify_all();
    }
  });
  if (failed) {
    if (progress) std::fputc('\n', stderr);
    if (write_failed) {
      std::fprintf(stderr, "chunkwise %s: cannot write the output\n", kCmd);
      return kExitFailure;
    }
    return report_error(kCmd, slots[next_write].error);
  }
  if (progress) std::fputc('\n', stderr);
  if (out_file.file() != nullptr) {
    if (Status s = out_file.commit(); !s.is_ok()) return report_error(kCmd, s);
  } else if (std::fflush(out) != 0) {
    std::fprintf(stderr, "chunkwise %s: cannot write the output\n", kCmd);
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace cw::app
