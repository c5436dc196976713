// cw-loadgen: a bounded loopback load generator for OpenAI-compatible servers (issue 15): `chunkwise serve`
// and llama.cpp's `llama-server` alike. N clients each send streaming completions back to back for a fixed
// time; it reports requests/s, generated tokens/s (SSE events carrying text), time to first token p50/p99,
// errors, lost requests and — with --pid — the server's RSS after warm-up.
//
//   cw-loadgen --url http://127.0.0.1:8080 --clients 64 --duration 60 --max-tokens 64 [--pid PID] [--json]
//
// A request is an error when the status is not 200, an event is not JSON, or the stream ends without
// `data: [DONE]`; it is lost when it has not finished --grace seconds after the run's end (its client thread
// is then abandoned: the report is printed and the process exits). Memory is bounded: per-request state is
// a few counters, latencies are kept per request (at most clients × duration × 1000 / min request time).
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/json.h"
#include "base/json_value.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string url = "http://127.0.0.1:8080";
  std::string path = "/v1/completions";
  std::string model;  // empty: the first id of GET /v1/models
  std::string prompt = "Once upon a time, there was a little girl who";
  std::string api_key;
  int clients = 64;
  double duration_s = 60;
  double warmup_s = 10;
  double grace_s = 30;
  int max_tokens = 64;
  double temperature = 0;
  long pid = 0;
  bool json = false;
  bool keep_alive = false;  // reuse each client's connection (off: one connection per request)
};

struct Stats {
  std::mutex mu;
  std::vector<double> ttft_ms;
  int64_t requests = 0, errors = 0, tokens = 0;
  std::string first_error;
  void error(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu);
    ++errors;
    if (first_error.empty()) first_error = what;
  }
};

void usage() {
  std::fprintf(stderr,
               "usage: cw-loadgen [--url URL] [--path /v1/completions] [--model ID (default: /v1/models' first)] [--prompt TEXT]\n"
               "                  [--clients N] [--duration S] [--warmup S] [--grace S] [--max-tokens N]\n"
               "                  [--temperature T] [--api-key KEY] [--pid SERVER_PID] [--keep-alive] [--json]\n"
               "N clients send streaming completions back to back for S seconds and report requests/s,\n"
               "tokens/s, time-to-first-token p50/p99, errors, lost requests and (with --pid) the server's\n"
               "RSS range after the warm-up. Works with any OpenAI-compatible server (chunkwise serve,\n"
               "llama-server). Tokens are the usage.completion_tokens a stream reports (stream_options.\n"
               "include_usage), else its text events. One connection per request unless --keep-alive.\n");
}

bool parse_args(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "cw-loadgen: %s needs a value\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    auto number = [&](const char* name, double lo, double hi) {
      const char* v = next(name);
      char* end = nullptr;
      const double d = std::strtod(v, &end);
      if (end == v || *end != '\0' || !(d >= lo && d <= hi)) {
        std::fprintf(stderr, "cw-loadgen: %s must be a number in [%g, %g], got '%s'\n", name, lo, hi, v);
        std::exit(2);
      }
      return d;
    };
    if (a == "--url") o.url = next("--url");
    else if (a == "--path") o.path = next("--path");
    else if (a == "--model") o.model = next("--model");
    else if (a == "--prompt") o.prompt = next("--prompt");
    else if (a == "--api-key") o.api_key = next("--api-key");
    else if (a == "--clients") o.clients = static_cast<int>(number("--clients", 1, 4096));
    else if (a == "--duration") o.duration_s = number("--duration", 0.1, 86400);
    else if (a == "--warmup") o.warmup_s = number("--warmup", 0, 86400);
    else if (a == "--grace") o.grace_s = number("--grace", 0, 3600);
    else if (a == "--max-tokens") o.max_tokens = static_cast<int>(number("--max-tokens", 1, 1 << 20));
    else if (a == "--temperature") o.temperature = number("--temperature", 0, 100);
    else if (a == "--pid") o.pid = static_cast<long>(number("--pid", 1, 1e9));
    else if (a == "--json") o.json = true;
    else if (a == "--keep-alive") o.keep_alive = true;
    else if (a == "-h" || a == "--help") {
      usage();
      std::exit(0);
    } else {
      std::fprintf(stderr, "cw-loadgen: unknown argument '%s' (see --help)\n", a.c_str());
      return false;
    }
  }
  return true;
}

// Resident set size of a process in KiB from /proc (0 when unreadable).
long rss_kib(long pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return 0;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) - (p > 0 ? 1 : 0);
  return v[std::min(i, v.size() - 1)];
}

// One streaming request. Returns false (and counts an error) when it failed.
void one_request(httplib::Client& cli, const Options& o, const std::string& body, Stats& st) {
  const auto t0 = Clock::now();
  std::string buf;
  bool done = false, first = true, bad = false;
  int64_t tokens = 0, usage_tokens = -1;
  double ttft = -1;
  httplib::Request req;
  req.method = "POST";
  req.path = o.path;
  req.headers = {{"Accept", "text/event-stream"}};
  if (!o.api_key.empty()) req.headers.emplace("Authorization", "Bearer " + o.api_key);
  req.set_header("Content-Type", "application/json");
  req.body = body;
  std::string bad_what;
  std::string head;  // the first bytes of the body, for error messages
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (head.size() < 200) head.append(data, std::min(n, 200 - head.size()));
    buf.append(data, n);
    for (size_t nl; (nl = buf.find('\n')) != std::string::npos;) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.rfind("data: ", 0) != 0) continue;
      const std::string payload = line.substr(6);
      if (payload == "[DONE]") {
        done = true;
        continue;
      }
      auto j = cw::JsonValue::parse(payload);
      if (!j.is_ok() || !j->is_object()) {
        bad = true;
        bad_what = "an event is not a JSON object: " + payload.substr(0, 120);
        continue;
      }
      if (const cw::JsonValue* u = j->get("usage"); u != nullptr && u->is_object()) {
        if (const cw::JsonValue* ct = u->get("completion_tokens"); ct != nullptr && ct->is_number())
          usage_tokens = static_cast<int64_t>(ct->as_number());
      }
      const cw::JsonValue* choices = j->get("choices");
      if (choices == nullptr || !choices->is_array() || choices->items().empty()) continue;
      const cw::JsonValue& c = choices->items()[0];
      const cw::JsonValue* text = c.get("text");
      if (text == nullptr) {
        const cw::JsonValue* delta = c.get("delta");
        if (delta != nullptr) text = delta->get("content");
      }
      if (text != nullptr && text->is_string() && !text->as_string().empty()) {
        ++tokens;
        if (first) {
          ttft = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
          first = false;
        }
      }
    }
    return true;
  };
  auto res = cli.send(req);
  if (!res) {
    st.error("transport: " + httplib::to_string(res.error()));
    return;
  }
  if (res->status != 200) {
    st.error("HTTP " + std::to_string(res->status) + ": " + head);
    return;
  }
  if (bad) {
    st.error(bad_what);
    return;
  }
  if (!done) {
    st.error("the stream ended without data: [DONE]");
    return;
  }
  std::lock_guard<std::mutex> lock(st.mu);
  ++st.requests;
  st.tokens += usage_tokens >= 0 ? usage_tokens : tokens;
  if (ttft >= 0) st.ttft_ms.push_back(ttft);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse_args(argc, argv, o)) return 2;
  {  // Reachable at all? One clear line instead of N identical errors. And which model it serves.
    httplib::Client probe(o.url);
    probe.set_connection_timeout(5);
    httplib::Headers h;
    if (!o.api_key.empty()) h.emplace("Authorization", "Bearer " + o.api_key);
    auto r = probe.Get("/v1/models", h);
    if (!r) {
      std::fprintf(stderr, "cw-loadgen: cannot reach %s: %s\n", o.url.c_str(), httplib::to_string(r.error()).c_str());
      return 1;
    }
    if (o.model.empty()) {
      auto j = cw::JsonValue::parse(r->body);
      const cw::JsonValue* data = j.is_ok() && j->is_object() ? j->get("data") : nullptr;
      const cw::JsonValue* id = data != nullptr && data->is_array() && !data->items().empty() ? data->items()[0].get("id") : nullptr;
      if (id == nullptr || !id->is_string()) {
        std::fprintf(stderr, "cw-loadgen: GET /v1/models gave no model id (HTTP %d); pass --model\n", r->status);
        return 1;
      }
      o.model = id->as_string();
    }
  }
  cw::JsonWriter w;
  w.begin_object().key("model").value(o.model).key("stream").value(true).key("max_tokens").value(int64_t{o.max_tokens});
  w.key("stream_options").begin_object().key("include_usage").value(true).end_object();
  w.key("temperature").value(o.temperature);
  if (o.path.find("chat") != std::string::npos) {
    w.key("messages").begin_array().begin_object().key("role").value("user").key("content").value(o.prompt);
    w.end_object().end_array();
  } else {
    w.key("prompt").value(o.prompt);
  }
  w.end_object();
  const std::string body = w.str();

  Stats st;
  std::atomic<int64_t> started{0}, finished{0};
  const auto t_start = Clock::now();
  const auto t_end = t_start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_s));
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(o.clients));
  for (int c = 0; c < o.clients; ++c) {
    threads.emplace_back([&] {
      httplib::Client cli(o.url);
      cli.set_read_timeout(static_cast<time_t>(o.duration_s + o.grace_s + 1));
      cli.set_keep_alive(o.keep_alive);
      while (Clock::now() < t_end) {
        ++started;
        one_request(cli, o, body, st);
        ++finished;
      }
    });
  }
  long rss_min = 0, rss_max = 0, rss_first = 0;
  const auto t_warm = t_start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup_s));
  while (Clock::now() < t_end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    if (o.pid > 0 && Clock::now() >= t_warm) {
      const long r = rss_kib(o.pid);
      if (r > 0) {
        if (rss_first == 0) rss_first = rss_min = rss_max = r;
        rss_min = std::min(rss_min, r);
        rss_max = std::max(rss_max, r);
      }
    }
  }
  const auto t_grace = t_end + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.grace_s));
  while (finished.load() < started.load() && Clock::now() < t_grace) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const int64_t lost = started.load() - finished.load();
  const double wall = std::chrono::duration<double>(Clock::now() - t_start).count();
  std::lock_guard<std::mutex> lock(st.mu);
  const double p50 = percentile(st.ttft_ms, 0.5), p99 = percentile(st.ttft_ms, 0.99);
  const double rss_spread = rss_first > 0 ? 100.0 * static_cast<double>(rss_max - rss_min) / static_cast<double>(rss_first) : 0;
  if (o.json) {
    cw::JsonWriter j;
    j.begin_object().key("clients").value(int64_t{o.clients}).key("duration_s").value(o.duration_s);
    j.key("requests").value(st.requests).key("errors").value(st.errors).key("lost").value(lost);
    j.key("requests_per_s").value(static_cast<double>(st.requests) / o.duration_s);
    j.key("tokens_per_s").value(static_cast<double>(st.tokens) / o.duration_s);
    j.key("ttft_ms_p50").value(p50).key("ttft_ms_p99").value(p99);
    j.key("rss_kib_min").value(int64_t{rss_min}).key("rss_kib_max").value(int64_t{rss_max});
    j.key("rss_spread_pct").value(rss_spread).key("first_error").value(st.first_error).key("wall_s").value(wall);
    j.end_object();
    std::printf("%s\n", j.str().c_str());
  } else {
    std::printf("%d clients, %.0f s: %" PRId64 " requests (%.1f/s), %" PRId64 " tokens (%.0f/s), TTFT p50 %.0f ms p99 %.0f ms, "
                "%" PRId64 " errors, %" PRId64 " lost\n",
                o.clients, o.duration_s, st.requests, static_cast<double>(st.requests) / o.duration_s, st.tokens,
                static_cast<double>(st.tokens) / o.duration_s, p50, p99, st.errors, lost);
    if (o.pid > 0) std::printf("server RSS after warm-up: %ld..%ld KiB (spread %.1f%% of %ld)\n", rss_min, rss_max, rss_spread, rss_first);
    if (!st.first_error.empty()) std::printf("first error: %s\n", st.first_error.c_str());
  }
  std::fflush(stdout);
  if (lost > 0) std::_Exit(st.errors > 0 || lost > 0 ? 1 : 0);  // abandoned client threads: do not join them
  for (std::thread& t : threads) t.join();
  return st.errors > 0 ? 1 : 0;
}
