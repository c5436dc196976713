// Slow and cut clients against the generating server (issue 15's fuzz acceptance: "cut connections, slow clients
// never crash or stall the server"): slowloris clients trickling their requests a byte at a time, clients
// that go silent mid-request, clients that read a stream very slowly, and connections cut at random points
// (mid headers, mid body, mid response, mid stream; FIN or RST) in a seeded loop. Throughout, a probe client
// asks /health and a greedy completion and must be answered within a bound; afterwards /metrics shows no
// request running or admitted and no KV block held, and the greedy completion says what it said before.
// (Malformed JSON, huge numbers and wrong types are CompletionsTest.MangledBodiesNeverHurtTheServer's.)
//
// The model is a tiny llama without eos under a sink+window KV policy, so a request with a huge max_tokens
// runs until it is cancelled: a cut that the server missed would leave it running.
#include <gtest/gtest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/json_value.h"
#include "chunkwise/engine.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "model/make_model.h"
#include "server/http_server.h"
#include "support/spm_vocab.h"
#include "support/testing.h"
#include "tokenizer/tokenizer.h"

namespace cw::server {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// A tiny llama whose vocabulary has no eos (as completions_test.cc's EndlessTest uses).
const std::string& endless_model_path() {
  return testing::tiny_llama_f32("slow-cut-no-eos.gguf", 5, /*with_eos=*/false);
}

// A seeded generator (the same cuts on every run; the timing around them is the machine's).
struct Rng {
  uint64_t s;
  uint64_t next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return s >> 33;
  }
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(next() % n); }
};

// --- raw sockets -----------------------------------------------------------------------------------------

int connect_to(int port, int rcvbuf = 0) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);  // before connect: the window
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Closes with an orderly FIN, or with a TCP reset (SO_LINGER 0).
void close_socket(int fd, bool reset) {
  if (reset) {
    linger l{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  close(fd);
}

// Reads what arrives until end of file, `limit` bytes, or `seconds` without end of file; `eof` says whether
// the server closed. At most `chunk` bytes per read, `pause_ms` after each (a slow reader).
std::string read_some(int fd, double seconds, size_t limit = SIZE_MAX, bool* eof = nullptr, size_t chunk = 4096,
                      int pause_ms = 0) {
  std::string got;
  if (eof != nullptr) *eof = false;
  const auto until = Clock::now() + std::chrono::duration<double>(seconds);
  std::vector<char> buf(chunk);
  while (got.size() < limit) {
    const int left = static_cast<int>(std::chrono::duration<double, std::milli>(until - Clock::now()).count());
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, left) <= 0) break;
    const ssize_t n = recv(fd, buf.data(), std::min(chunk, limit - got.size()), 0);
    if (n <= 0) {
      if (eof != nullptr) *eof = true;
      break;
    }
    got.append(buf.data(), static_cast<size_t>(n));
    if (pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
  }
  return got;
}

std::string post_bytes(const std::string& path, const std::string& body, bool keep_alive = false) {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + (keep_alive ? "" : "Connection: close\r\n") + "\r\n" + body;
}

std::string get_bytes(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
}

// The body of a raw HTTP/1.1 response, chunked transfer coding undone.
std::string response_body(const std::string& raw) {
  const size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return "";
  const std::string head = raw.substr(0, end);
  std::string rest = raw.substr(end + 4);
  if (head.find("Transfer-Encoding: chunked") == std::string::npos) return rest;
  std::string body;
  size_t pos = 0;
  while (pos < rest.size()) {
    const size_t eol = rest.find("\r\n", pos);
    if (eol == std::string::npos) break;
    const size_t n = std::strtoul(rest.c_str() + pos, nullptr, 16);
    if (n == 0 || eol + 2 + n > rest.size()) break;
    body.append(rest, eol + 2, n);
    pos = eol + 2 + n + 2;
  }
  return body;
}

// The concatenated "text" of a completions SSE body's chunks; `done` says whether it ended with [DONE].
std::string streamed_text(const std::string& sse, bool* done) {
  std::string text;
  *done = false;
  size_t pos = 0;
  while ((pos = sse.find("data: ", pos)) != std::string::npos) {
    const size_t end = sse.find("\n\n", pos);
    if (end == std::string::npos) break;
    const std::string payload = sse.substr(pos + 6, end - pos - 6);
    pos = end + 2;
    if (payload == "[DONE]") {
      *done = true;
      continue;
    }
    auto j = JsonValue::parse(payload);
    if (!j.is_ok()) continue;
    const JsonValue* choices = j->get("choices");
    if (choices == nullptr || !choices->is_array() || choices->items().empty()) continue;
    const JsonValue* t = choices->items()[0].get("text");
    if (t != nullptr && t->is_string()) text += t->as_string();
  }
  return text;
}

std::string completion_text(const std::string& json) {
  auto j = JsonValue::parse(json);
  if (!j.is_ok() || j->get("choices") == nullptr || !j->get("choices")->is_array() ||
      j->get("choices")->items().empty())
    return "<no completion in " + json.substr(0, 200) + ">";
  const JsonValue* t = j->get("choices")->items()[0].get("text");
  return t != nullptr && t->is_string() ? t->as_string() : "<no text>";
}

// The value of a Prometheus line "NAME VALUE" (-1 when absent).
double metric(const std::string& page, const std::string& name) {
  const size_t at = page.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::strtod(page.c_str() + at + name.size() + 2, nullptr);
}

const std::string kGreedy = R"({"prompt":"w1 w2 w3","max_tokens":16,"temperature":0})";
const std::string kGreedy48 = R"({"prompt":"w1 w2 w3","max_tokens":48,"temperature":0})";
const std::string kEndless = R"({"prompt":"w1 w2 w3","max_tokens":100000000,"temperature":0})";
const std::string kEndlessStream = R"({"prompt":"w1 w2 w3","max_tokens":100000000,"temperature":0,"stream":true})";

// A well-behaved client on its own thread while the hostile ones do their worst: /health and the greedy
// completion, alternately, each on a new connection, every 50 ms; records the slowest answer and anything
// wrong (no answer, not 200, another text).
class Prober {
 public:
  Prober(int port, std::string want, int timeout_s = 20)
      : port_(port), want_(std::move(want)), timeout_s_(timeout_s), thread_([this] { loop(); }) {}
  ~Prober() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  double max_health_ms() const { return max_health_ms_; }
  double max_completion_ms() const { return max_completion_ms_; }
  int probes() const { return probes_; }
  const std::vector<std::string>& failures() const { return failures_; }

 private:
  void loop() {
    for (int i = 0; !stop_; ++i) {
      httplib::Client c("127.0.0.1", port_);
      c.set_connection_timeout(timeout_s_);
      c.set_read_timeout(timeout_s_);  // a stall shows as a slow answer or a failure, not a hang
      const auto t0 = Clock::now();
      const bool health = i % 2 == 0;
      auto r = health ? c.Get("/health") : c.Post("/v1/completions", kGreedy, "application/json");
      const double ms = ms_since(t0);
      ++probes_;
      (health ? max_health_ms_ : max_completion_ms_) = std::max(health ? max_health_ms_ : max_completion_ms_, ms);
      if (!r) {
        failures_.push_back(std::string(health ? "/health" : "completion") + ": " + httplib::to_string(r.error()));
      } else if (r->status != 200) {
        failures_.push_back("status " + std::to_string(r->status) + ": " + r->body);
      } else if (!health && completion_text(r->body) != want_) {
        failures_.push_back("the greedy completion changed: " + completion_text(r->body));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  int port_;
  std::string want_;
  int timeout_s_;
  std::atomic<bool> stop_{false};
  double max_health_ms_ = 0, max_completion_ms_ = 0;
  int probes_ = 0;
  std::vector<std::string> failures_;
  std::thread thread_;  // last: starts after the members above exist
};

// The bound on a probe's answer: no stall (httplib's read timeout is 5 s, a stalled server never answers),
// with room for a 2-core machine that is busy with the hostile clients and other tests.
constexpr double kProbeBoundMs = 2000;

class SlowAndCutClientsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    signal(SIGPIPE, SIG_IGN);  // as `chunkwise serve` does: a write to a vanished peer is an error, not death
    EngineConfig c;
    c.model_path = endless_model_path();
    c.threads = 1;
    c.parallel = 8;
    c.kv_policy = "sink_window:sinks=4,window=60";
    auto e = Engine::open(c);
    CW_CHECK_MSG(e.is_ok(), e.status().to_string());
    engine_ = std::move(e).value().release();
    auto f = gguf::File::open(endless_model_path());
    CW_CHECK_MSG(f.is_ok(), f.status().to_string());
    auto t = tok::Tokenizer::from_gguf(**f);
    CW_CHECK_MSG(t.is_ok(), t.status().to_string());
    tok_ = std::move(t).value().release();
  }
  static void TearDownTestSuite() {
    delete engine_;
    delete tok_;
  }
  void SetUp() override {
    ServerOptions o;
    o.model_id = "tiny";
    o.queue = 32;
    o.threads = 48;  // as `serve` sizes it: more than the admission limit
    start_server(o);
  }

  void start_server(const ServerOptions& o) {
    server_ = std::make_unique<Server>(o, tok_, engine_);
    ASSERT_TRUE(server_->start().is_ok());
    port_ = server_->port();
    httplib::Client c("127.0.0.1", port_);
    auto r = c.Post("/v1/completions", kGreedy, "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    greedy_ = completion_text(r->body);
    ASSERT_FALSE(greedy_.empty());
  }

  void expect_probe_ok(Prober& p) {
    p.stop();
    std::printf("probe: %d answers, slowest /health %.0f ms, slowest greedy completion %.0f ms\n", p.probes(),
                p.max_health_ms(), p.max_completion_ms());
    EXPECT_GE(p.probes(), 4);
    EXPECT_TRUE(p.failures().empty()) << p.failures().size() << " failures, the first: " << p.failures()[0];
    EXPECT_LT(p.max_health_ms(), kProbeBoundMs);
    EXPECT_LT(p.max_completion_ms(), kProbeBoundMs);
  }

  // After the hostile clients: the server answers, nothing is left running, admitted or holding KV, and
  // the greedy completion is unchanged.
  void expect_recovered() {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(10);
    auto h = c.Get("/health");
    ASSERT_TRUE(h) << httplib::to_string(h.error());
    EXPECT_EQ(h->status, 200);
    std::string page;
    const auto t0 = Clock::now();
    while (ms_since(t0) < 5000) {
      auto m = c.Get("/metrics");
      ASSERT_TRUE(m);
      page = m->body;
      if (metric(page, "chunkwise_requests_running") == 0 && metric(page, "chunkwise_requests_waiting") == 0 &&
          metric(page, "chunkwise_requests_admitted") == 0 && metric(page, "chunkwise_kv_blocks_used") == 0)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::printf("idle %.0f ms after the last hostile client\n", ms_since(t0));
    EXPECT_EQ(metric(page, "chunkwise_requests_running"), 0) << page;
    EXPECT_EQ(metric(page, "chunkwise_requests_waiting"), 0) << page;
    EXPECT_EQ(metric(page, "chunkwise_requests_admitted"), 0) << page;
    EXPECT_EQ(metric(page, "chunkwise_kv_blocks_used"), 0) << page;
    EXPECT_EQ(metric(page, "chunkwise_kv_blocks_free") + metric(page, "chunkwise_kv_blocks_cached"),
              metric(page, "chunkwise_kv_blocks_total"))
        << page;
    auto r = c.Post("/v1/completions", kGreedy, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(completion_text(r->body), greedy_);
  }

  static Engine* engine_;
  static tok::Tokenizer* tok_;
  std::unique_ptr<Server> server_;
  int port_ = 0;
  std::string greedy_;
};
Engine* SlowAndCutClientsTest::engine_ = nullptr;
tok::Tokenizer* SlowAndCutClientsTest::tok_ = nullptr;

// Six clients send whole requests a byte every 15 ms (2-3 s each) and must get their answers; four send part
// of a request that way and then go silent: httplib's timeouts must drop them (their connection threads
// come back). Meanwhile the probe is answered as usual. (Slow clients each hold a connection thread, as
// every connection does, until the whole-request deadline: RequestDeadlineTest has more of them than threads.)
TEST_F(SlowAndCutClientsTest, SlowlorisClientsAreServedSilentOnesDroppedOthersNotDelayed) {
  Prober probe(port_, greedy_);
  const std::vector<std::string> whole = {
      post_bytes("/v1/completions", kGreedy), get_bytes("/health"), post_bytes("/tokenize", R"({"content":"w1 w2"})"),
      post_bytes("/v1/chat/completions", R"({"messages":[{"role":"user","content":"w4"}],"max_tokens":6,"stream":true})"),
      post_bytes("/v1/completions", kGreedy), get_bytes("/metrics")};
  const std::string body_cut = post_bytes("/v1/completions", kEndless);
  const std::vector<std::string> partial = {
      get_bytes("/health").substr(0, 12),                   // mid request line
      post_bytes("/v1/completions", kGreedy).substr(0, 60),  // mid headers
      body_cut.substr(0, body_cut.size() - 20),             // mid body
      "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n",        // the headers never end
  };
  std::vector<std::string> answers(whole.size());
  std::vector<double> dropped_after_ms(partial.size(), -1);
  std::vector<std::thread> clients;
  auto trickle = [](int fd, const std::string& bytes) {
    for (char ch : bytes) {
      if (!send_all(fd, std::string_view(&ch, 1))) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(15));
    }
    return true;
  };
  for (size_t i = 0; i < whole.size(); ++i) {
    clients.emplace_back([&, i] {
      const int fd = connect_to(port_);
      if (fd < 0) return;
      if (trickle(fd, whole[i])) answers[i] = read_some(fd, 10);
      close_socket(fd, false);
    });
  }
  for (size_t i = 0; i < partial.size(); ++i) {
    clients.emplace_back([&, i] {
      const int fd = connect_to(port_);
      if (fd < 0) return;
      trickle(fd, partial[i]);
      const auto silent = Clock::now();
      bool eof = false;
      read_some(fd, 14, SIZE_MAX, &eof);
      if (eof) dropped_after_ms[i] = ms_since(silent);
      close_socket(fd, false);
    });
  }
  for (auto& t : clients) t.join();
  expect_probe_ok(probe);
  for (size_t i = 0; i < whole.size(); ++i) {
    SCOPED_TRACE(whole[i]);
    EXPECT_EQ(answers[i].rfind("HTTP/1.1 200", 0), 0u) << answers[i].substr(0, 300);
  }
  EXPECT_EQ(completion_text(response_body(answers[0])), greedy_);
  EXPECT_NE(response_body(answers[3]).find("data: [DONE]"), std::string::npos) << answers[3];
  for (size_t i = 0; i < partial.size(); ++i) {
    SCOPED_TRACE(partial[i]);
    EXPECT_GE(dropped_after_ms[i], 0) << "the server kept a silent client for 14 s";
    // The 5 s read timeout gives up on them (cut in the headers or body, with a 400), and the connection is
    // closed at once: a failed read leaves nothing parsable. (The 10 s request deadline comes later.)
    EXPECT_LT(dropped_after_ms[i], 12000);
    std::printf("silent client %zu dropped %.0f ms after its last byte\n", i, dropped_after_ms[i]);
  }
  expect_recovered();
}

// Three clients read a 48-token stream through a 1 KiB receive window, 64 bytes every 10 ms: each gets the
// whole stream, equal to the greedy text. A fourth reads an endless stream that way for 2 s and leaves:
// its request is cancelled. The probe is not delayed by any of them.
TEST_F(SlowAndCutClientsTest, SlowStreamReadersGetEverythingAndDoNotDelayOthers) {
  httplib::Client c("127.0.0.1", port_);
  auto want = c.Post("/v1/completions", kGreedy48, "application/json");
  ASSERT_TRUE(want);
  ASSERT_EQ(want->status, 200);
  const std::string want_text = completion_text(want->body);
  std::string streamed = kGreedy48;
  streamed.pop_back();
  streamed += R"(,"stream":true})";

  Prober probe(port_, greedy_);
  std::vector<std::string> got(3);
  std::vector<char> ended(3, 0);  // not vector<bool>: its elements share bytes across threads
  std::vector<std::thread> readers;
  for (size_t i = 0; i < got.size(); ++i) {
    readers.emplace_back([&, i] {
      const int fd = connect_to(port_, /*rcvbuf=*/1024);
      if (fd < 0) return;
      if (send_all(fd, post_bytes("/v1/completions", streamed))) {
        bool eof = false;
        got[i] = read_some(fd, 15, SIZE_MAX, &eof, /*chunk=*/64, /*pause_ms=*/10);
        ended[i] = eof;
      }
      close_socket(fd, false);
    });
  }
  size_t endless_bytes = 0;
  readers.emplace_back([&] {
    const int fd = connect_to(port_, /*rcvbuf=*/1024);
    if (fd < 0) return;
    if (send_all(fd, post_bytes("/v1/completions", kEndlessStream)))
      endless_bytes = read_some(fd, 2.0, SIZE_MAX, nullptr, 64, 10).size();
    close_socket(fd, false);
  });
  for (auto& t : readers) t.join();
  expect_probe_ok(probe);
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_TRUE(ended[i]) << "the stream did not end within 15 s";
    EXPECT_EQ(got[i].rfind("HTTP/1.1 200", 0), 0u) << got[i].substr(0, 300);
    bool done = false;
    EXPECT_EQ(streamed_text(response_body(got[i]), &done), want_text);
    EXPECT_TRUE(done);
  }
  EXPECT_GT(endless_bytes, 1000u) << "the endless stream did not flow";
  expect_recovered();
}

// Four clients, each 80 seeded rounds: a request (generating or not, streaming or not, some endless) cut
// mid headers, mid body, at once after it, after a random part of the response (mid stream), or with a
// second pipelined request cut short; closed with FIN or RST. Every part of the server that reads or
// writes a socket meets a peer that vanished.
TEST_F(SlowAndCutClientsTest, ConnectionsCutAtRandomPointsLeaveNothingBehind) {
  const std::vector<std::string> requests = {
      post_bytes("/v1/completions", kEndless),
      post_bytes("/v1/completions", kEndlessStream),
      post_bytes("/v1/chat/completions", R"({"messages":[{"role":"user","content":"w4 w5"}],"max_tokens":40,"stream":true})"),
      post_bytes("/v1/chat/completions", R"({"messages":[{"role":"user","content":"w4 w5"}],"max_tokens":40})"),
      post_bytes("/v1/completions", kGreedy),
      post_bytes("/tokenize", R"({"content":"w1 w2 w3"})"),
      get_bytes("/metrics"),
      post_bytes("/v1/completions", kEndless, /*keep_alive=*/true),
  };
  Prober probe(port_, greedy_);
  std::atomic<int> answered{0}, malformed{0};
  std::mutex mu;
  std::string first_malformed;
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      Rng rng{0x5eedull + static_cast<uint64_t>(t) * 7919};
      for (int round = 0; round < 80; ++round) {
        const std::string& req = requests[rng.below(requests.size())];
        const size_t head = req.find("\r\n\r\n") + 4;
        const int how = static_cast<int>(rng.below(5));
        const bool reset = rng.below(2) == 1;
        const int fd = connect_to(port_);
        if (fd < 0) continue;
        switch (how) {
          case 0: send_all(fd, req.substr(0, rng.below(head))); break;  // mid request line / headers
          case 1:                                                        // mid body (or all headers)
            send_all(fd, req.substr(0, head + rng.below(req.size() - head)));
            break;
          case 2: send_all(fd, req); break;  // the whole request, then gone at once
          case 3: {                          // a random part of the response, within a random time
            send_all(fd, req);
            const std::string got = read_some(fd, static_cast<double>(rng.below(300)) / 1000.0, rng.below(6000));
            if (got.size() >= 12) {
              ++answered;
              if (got.rfind("HTTP/1.1 200", 0) != 0) {
                ++malformed;
                std::lock_guard<std::mutex> lock(mu);
                if (first_malformed.empty()) first_malformed = got.substr(0, 300);
              }
            }
            break;
          }
          default:  // a second request pipelined behind the first, cut short
            send_all(fd, req + requests[rng.below(requests.size())].substr(0, rng.below(120)));
            read_some(fd, static_cast<double>(rng.below(200)) / 1000.0, rng.below(3000));
        }
        close_socket(fd, reset);
      }
    });
  }
  for (auto& c : clients) c.join();
  expect_probe_ok(probe);
  std::printf("320 cut connections; %d answers read in part, all 200: %s\n", answered.load(),
              malformed == 0 ? "yes" : "no");
  EXPECT_EQ(malformed.load(), 0) << first_malformed;
  expect_recovered();
}

// --- the whole-request deadline ----------------------------------------------------------------------------

// Sends `head` at once, then `rest` a byte every `interval_ms`, until the server answers or closes (or
// `max_s` passes, or `stop`). Returns the milliseconds from the connect to the server's first answer byte
// or end of file (-1: neither came); `answer` gets what the server sent until it closed (at most 2 s more).
double trickle_until_answered(int fd, const std::string& head, const std::string& rest, int interval_ms, double max_s,
                              std::string* answer = nullptr, const std::atomic<bool>* stop = nullptr) {
  const auto t0 = Clock::now();
  if (!head.empty() && !send_all(fd, head)) return ms_since(t0);
  for (size_t i = 0; ms_since(t0) < max_s * 1000 && (stop == nullptr || !*stop); ++i) {
    // A send to a connection the server shut down fails (EPIPE / ECONNRESET): closed.
    if (i < rest.size() && !send_all(fd, std::string_view(&rest[i], 1))) return ms_since(t0);
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, interval_ms) > 0) {
      const double at = ms_since(t0);
      const std::string got = read_some(fd, 2.0);
      if (answer != nullptr) *answer = got;
      return at;
    }
  }
  return -1;
}

// A whole raw response (head and Content-Length body) read from a keep-alive connection; "" on none.
std::string read_response(int fd, double seconds) {
  std::string got;
  const auto until = Clock::now() + std::chrono::duration<double>(seconds);
  char buf[4096];
  while (Clock::now() < until) {
    const size_t end = got.find("\r\n\r\n");
    if (end != std::string::npos) {
      const size_t cl = got.find("Content-Length: ");
      if (cl != std::string::npos && cl < end &&
          got.size() >= end + 4 + std::strtoul(got.c_str() + cl + 16, nullptr, 10))
        return got;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// Four connection threads and a 2 s whole-request deadline: few enough threads that slow clients could
// take them all.
class RequestDeadlineTest : public SlowAndCutClientsTest {
 protected:
  static constexpr int kThreads = 4;
  static constexpr int kTimeoutMs = 2000;
  void SetUp() override {
    ServerOptions o;
    o.model_id = "tiny";
    o.queue = 32;
    o.threads = kThreads;
    o.request_timeout_ms = kTimeoutMs;
    start_server(o);
  }
};

// Twelve slowloris clients (three times the connection threads) send a request whose headers never end, a
// byte a second, and reconnect whenever the server drops them. Without a whole-request deadline they hold
// every thread for good (each byte comes well within the 5 s read timeout) and nobody else is answered.
// With it each is dropped 2 s after its thread took it up, and the probe's connection, queued behind at
// most all twelve, is served within 3 rounds of 2 s.
TEST_F(RequestDeadlineTest, MoreSlowlorisClientsThanThreadsDoNotStallTheServer) {
  constexpr int kSlow = 12;
  std::string endless_head = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (int i = 0; i < 200; ++i) endless_head += "X-Slow-" + std::to_string(i) + ": 1\r\n";
  std::atomic<bool> stop{false};
  std::vector<int> drops(kSlow, 0);
  std::vector<std::string> first_answer(kSlow);
  std::vector<std::thread> slow;
  for (int i = 0; i < kSlow; ++i) {
    slow.emplace_back([&, i] {
      while (!stop) {
        const int fd = connect_to(port_);
        if (fd < 0) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          continue;
        }
        std::string answer;
        if (trickle_until_answered(fd, "", endless_head, 1000, 60, &answer, &stop) >= 0) {
          if (drops[i]++ == 0) first_answer[i] = answer;
        }
        close_socket(fd, false);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the slow ones take every thread first
  Prober probe(port_, greedy_, /*timeout_s=*/10);
  std::this_thread::sleep_for(std::chrono::seconds(10));
  stop = true;
  for (auto& t : slow) t.join();
  probe.stop();
  std::printf("probe: %d answers, slowest /health %.0f ms, slowest greedy completion %.0f ms\n", probe.probes(),
              probe.max_health_ms(), probe.max_completion_ms());
  EXPECT_GE(probe.probes(), 2);
  EXPECT_TRUE(probe.failures().empty()) << probe.failures().size() << " failures, the first: " << probe.failures()[0];
  const double bound = kTimeoutMs * ((kSlow + kThreads - 1) / kThreads) + 2000.0;
  EXPECT_LT(probe.max_health_ms(), bound);
  EXPECT_LT(probe.max_completion_ms(), bound);
  int total = 0;
  for (int i = 0; i < kSlow; ++i) {
    SCOPED_TRACE(i);
    total += drops[i];
    EXPECT_GE(drops[i], 1) << "the server never dropped this slow client in 10 s";
    if (drops[i] > 0) {
      EXPECT_EQ(first_answer[i].rfind("HTTP/1.1 408", 0), 0u) << first_answer[i].substr(0, 300);
    }
  }
  std::printf("%d slow connections dropped\n", total);
  expect_recovered();
}

// A request cut off mid body (its bytes keep coming, slower than the deadline allows) is answered 408 and
// closed at the deadline; one cut mid headers likewise.
TEST_F(RequestDeadlineTest, AnIncompleteRequestIsAnswered408AtTheDeadline) {
  const std::string body = R"({"prompt":"w1 w2 w3","max_tokens":4,"temperature":0}                                )";
  const std::string req = post_bytes("/v1/completions", body);
  const size_t head = req.find("\r\n\r\n") + 4;
  for (const auto& [sent, trickled] : std::vector<std::pair<std::string, std::string>>{
           {req.substr(0, head + 10), req.substr(head + 10)},  // mid body
           {req.substr(0, 40), req.substr(40)},                // mid headers
       }) {
    const int fd = connect_to(port_);
    ASSERT_GE(fd, 0);
    std::string answer;
    const double ms = trickle_until_answered(fd, sent, trickled, 400, 8, &answer);
    close_socket(fd, false);
    std::printf("answered after %.0f ms: %s\n", ms, answer.substr(0, answer.find("\r\n")).c_str());
    EXPECT_GE(ms, kTimeoutMs - 100);
    EXPECT_LT(ms, kTimeoutMs + 1500);
    EXPECT_EQ(answer.rfind("HTTP/1.1 408", 0), 0u) << answer;
    EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
    EXPECT_NE(response_body(answer).find("\"code\":408"), std::string::npos) << answer;
  }
  expect_recovered();
}

// Header lines without end, sent as fast as the server reads them: cut at 64 KiB of head with a 431.
TEST_F(RequestDeadlineTest, AnOversizedHeadIsAnswered431) {
  std::string head = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (int i = 0; head.size() < (size_t{80} << 10); ++i) head += "X-Many-" + std::to_string(i) + ": 1\r\n";
  const int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  send_all(fd, head);  // may fail part way: the server closed after its answer
  bool eof = false;
  const std::string answer = read_some(fd, 5, SIZE_MAX, &eof);
  close_socket(fd, false);
  EXPECT_EQ(answer.rfind("HTTP/1.1 431", 0), 0u) << answer.substr(0, 300);
  EXPECT_NE(response_body(answer).find("\"code\":431"), std::string::npos) << answer;
  EXPECT_TRUE(eof);
  expect_recovered();
}

// The deadline bounds receiving a request, not answering it: an endless stream flows for longer than the
// deadline, and an endless non-streaming generation keeps running past it, until its client leaves.
TEST_F(RequestDeadlineTest, GenerationsLongerThanTheTimeoutAreNotCut) {
  const int s = connect_to(port_);
  ASSERT_GE(s, 0);
  ASSERT_TRUE(send_all(s, post_bytes("/v1/completions", kEndlessStream)));
  const int n = connect_to(port_);
  ASSERT_GE(n, 0);
  ASSERT_TRUE(send_all(n, post_bytes("/v1/completions", kEndless)));
  const std::string early = read_some(s, kTimeoutMs / 1000.0 + 0.5);
  bool eof = false;
  const std::string late = read_some(s, 1.0, SIZE_MAX, &eof);
  EXPECT_EQ(early.rfind("HTTP/1.1 200", 0), 0u) << early.substr(0, 300);
  EXPECT_GT(late.size(), 100u) << "the stream stopped flowing after the deadline";
  EXPECT_FALSE(eof) << "the server closed the stream";
  EXPECT_EQ(late.find("[DONE]"), std::string::npos);
  // The non-streaming one: nothing written yet (it has not finished), not closed, still running.
  pollfd p{n, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0) << "the non-streaming generation was answered or closed";
  httplib::Client c("127.0.0.1", port_);
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(metric(m->body, "chunkwise_requests_running"), 2) << m->body;
  close_socket(s, false);
  close_socket(n, false);
  expect_recovered();
}

// On a keep-alive connection the deadline starts again when a response has been written: a second request
// 1 s later is served on the same connection; idle longer than the deadline, it is closed.
TEST_F(RequestDeadlineTest, KeepAliveConnectionsIdleLongerThanTheTimeoutAreClosed) {
  const std::string get = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  const int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, get));
  const std::string first = read_response(fd, 5);
  EXPECT_EQ(first.rfind("HTTP/1.1 200", 0), 0u) << first;
  std::this_thread::sleep_for(std::chrono::milliseconds(kTimeoutMs / 2));
  ASSERT_TRUE(send_all(fd, get));
  const std::string second = read_response(fd, 5);
  EXPECT_EQ(second.rfind("HTTP/1.1 200", 0), 0u) << "the connection was not reused: " << second;
  const auto idle = Clock::now();
  bool eof = false;
  const std::string more = read_some(fd, 8, SIZE_MAX, &eof);
  const double closed_ms = ms_since(idle);
  close_socket(fd, false);
  std::printf("idle keep-alive connection closed after %.0f ms\n", closed_ms);
  EXPECT_TRUE(eof);
  EXPECT_TRUE(more.empty()) << more;  // nothing was asked: closed without an answer
  EXPECT_GE(closed_ms, kTimeoutMs - 100);
  EXPECT_LT(closed_ms, kTimeoutMs + 1500);
}

}  // namespace
}  // namespace cw::server
