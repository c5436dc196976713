// The HTTP server skeleton (issue 15, first slice): every route's success shape, the tokenize ->
// detokenize round trip, each error status with the OpenAI error shape, concurrent clients, raw
// malformed / cut connections; no engine, so the generating routes are unknown (serve_cli_test.cc runs
// `chunkwise serve` as a process, completions_test.cc the generating endpoints).
#include "server/http_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "base/json.h"
#include "base/json_value.h"
#include "gguf/writer.h"
#include "support/spm_vocab.h"
#include "support/testing.h"
#include "tokenizer/tokenizer.h"

namespace cw::server {
namespace {

const tok::Tokenizer& vocab() {
  static const std::unique_ptr<tok::Tokenizer> t = [] {
    auto r = tok::Tokenizer::from_gguf(testing::small_spm_vocab_file());
    if (!r.is_ok()) {
      ADD_FAILURE() << r.status().to_string();
      std::abort();
    }
    return std::move(r).value();
  }();
  return *t;
}

JsonValue parse_json(const std::string& body) {
  auto j = JsonValue::parse(body);
  EXPECT_TRUE(j.is_ok()) << body;
  return j.is_ok() ? std::move(j).value() : JsonValue();
}

// Checks the OpenAI error shape {"error":{"message","type","code"}} and the status.
void expect_error(const httplib::Result& r, int status, const std::string& type, const std::string& needle = "") {
  ASSERT_TRUE(r) << "no response: " << httplib::to_string(r.error());
  EXPECT_EQ(r->status, status) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  const JsonValue j = parse_json(r->body);
  const JsonValue* e = j.get("error");
  ASSERT_TRUE(e != nullptr && e->is_object()) << r->body;
  ASSERT_TRUE(e->get("message") && e->get("message")->is_string()) << r->body;
  EXPECT_FALSE(e->get("message")->as_string().empty());
  ASSERT_TRUE(e->get("type") && e->get("type")->is_string()) << r->body;
  EXPECT_EQ(e->get("type")->as_string(), type) << r->body;
  ASSERT_TRUE(e->get("code") && e->get("code")->is_number()) << r->body;
  EXPECT_EQ(e->get("code")->as_number(), status);
  if (!needle.empty()) {
    EXPECT_NE(e->get("message")->as_string().find(needle), std::string::npos) << r->body;
  }
}

class ServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions o = {}) {
    o.model_id = "tiny-spm.gguf";
    server_ = std::make_unique<Server>(o, &vocab());
    const Status s = server_->start();
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    ASSERT_GT(server_->port(), 0);
  }
  httplib::Client client() {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_connection_timeout(5);
    c.set_read_timeout(10);
    return c;
  }
  httplib::Result post(const std::string& path, const std::string& body) {
    return client().Post(path.c_str(), body, "application/json");
  }
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, HealthAndModels) {
  start();
  auto h = client().Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(h->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(h->body, R"({"status":"ok"})");
  auto m = client().Get("/v1/models");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  EXPECT_EQ(m->body,
            R"({"object":"list","data":[{"id":"tiny-spm.gguf","object":"model","created":0,"owned_by":"chunkwise"}]})");
}

// The ids of a {"tokens":[...]} body.
std::vector<int32_t> token_list(const std::string& body) {
  const JsonValue j = parse_json(body);
  std::vector<int32_t> ids;
  const JsonValue* tokens = j.get("tokens");
  EXPECT_TRUE(tokens && tokens->is_array()) << body;
  if (tokens == nullptr) return ids;
  for (const JsonValue& t : tokens->items()) ids.push_back(static_cast<int32_t>(t.as_number()));
  return ids;
}

std::string tokens_body(const std::vector<int32_t>& ids) {
  std::string s = R"({"tokens":[)";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s.push_back(',');
    s.append(std::to_string(ids[i]));
  }
  s.append("]}");
  return s;
}

std::string content_of(const std::string& body) {
  const JsonValue j = parse_json(body);
  const JsonValue* c = j.get("content");
  EXPECT_TRUE(c && c->is_string()) << body;
  return c ? c->as_string() : std::string();
}

TEST_F(ServerTest, TokenizeMatchesTheLibrary) {
  start();
  const std::string text = "w1 w2 w17 w3";
  auto r = post("/tokenize", R"({"content":"w1 w2 w17 w3"})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  const std::vector<int32_t> got = token_list(r->body);
  EXPECT_EQ(got, vocab().encode(text, true, false));
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.front(), vocab().bos());  // add_special defaults to true

  auto plain = post("/tokenize", R"({"content":"w1 w2 w17 w3","add_special":false,"parse_special":true})");
  ASSERT_TRUE(plain);
  ASSERT_EQ(plain->status, 200) << plain->body;
  EXPECT_EQ(token_list(plain->body), vocab().encode(text, false, true));
  // parse_special: "<s>" in the text is BOS only when asked for.
  auto special = post("/tokenize", R"({"content":"<s>","add_special":false,"parse_special":true})");
  ASSERT_TRUE(special);
  EXPECT_EQ(token_list(special->body), std::vector<int32_t>{vocab().bos()});
  auto literal = post("/tokenize", R"({"content":"<s>","add_special":false})");
  ASSERT_TRUE(literal);
  EXPECT_EQ(token_list(literal->body), vocab().encode("<s>", false, false));

  auto d = post("/detokenize", tokens_body(got));
  ASSERT_TRUE(d);
  ASSERT_EQ(d->status, 200) << d->body;
  EXPECT_EQ(content_of(d->body), vocab().decode(got));

  auto empty = post("/detokenize", R"({"tokens":[]})");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 200);
  EXPECT_EQ(empty->body, R"({"content":""})");
  // A lone byte token decodes to an invalid UTF-8 byte: the JSON carries U+FFFD.
  auto lone = post("/detokenize", R"({"tokens":[)" + std::to_string(3 + 0xC3) + "]}");
  ASSERT_TRUE(lone);
  ASSERT_EQ(lone->status, 200);
  EXPECT_EQ(content_of(lone->body), "\xEF\xBF\xBD");
}

// A vocabulary in which "▁wN" are reachable by merges ("▁" + "w" -> "▁w", "▁w" + "1" -> "▁w1", ...) and
// "▁" is a token, so that any text round-trips exactly (other characters through byte tokens).
// support/spm_vocab.h's vocabulary has no "▁w" nor "▁": everything there falls back to byte tokens, and
// those decode to "▁" rather than a space.
const tok::Tokenizer& word_vocab() {
  static const std::unique_ptr<tok::Tokenizer> t = [] {
    std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
    std::vector<float> scores = {0, 0, 0};
    std::vector<int32_t> types = {2, 3, 3};
    for (int b = 0; b < 256; ++b) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<0x%02X>", b);
      tokens.emplace_back(buf);
      scores.push_back(0);
      types.push_back(6);
    }
    for (const char* piece : {"\xE2\x96\x81", "\xE2\x96\x81w"}) {  // "▁" (a space), "▁w"
      tokens.emplace_back(piece);
      scores.push_back(1);
      types.push_back(1);
    }
    for (int i = 0; i < 300; ++i) {
      tokens.push_back("\xE2\x96\x81w" + std::to_string(i));
      scores.push_back(-static_cast<float>(i));
      types.push_back(1);
    }
    gguf::Writer w;
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_string_array("tokenizer.ggml.tokens", tokens);
    w.add_f32_array("tokenizer.ggml.scores", scores);
    w.add_i32_array("tokenizer.ggml.token_type", types);
    w.add_u32("tokenizer.ggml.bos_token_id", 1);
    w.add_u32("tokenizer.ggml.eos_token_id", 2);
    static const std::vector<uint8_t> image = w.bytes();
    auto file = gguf::File::parse(image, "word-vocab");
    if (!file.is_ok()) std::abort();
    auto r = tok::Tokenizer::from_gguf(**file);
    if (!r.is_ok()) std::abort();
    return std::move(r).value();
  }();
  return *t;
}

TEST(ServerRoundTrip, TokenizeThenDetokenizeGivesTheText) {
  ServerOptions o;
  Server srv(o, &word_vocab());
  ASSERT_TRUE(srv.start().is_ok());
  httplib::Client c("127.0.0.1", srv.port());
  for (const std::string& text : {std::string("w1 w2 w17 w3"), std::string("w299"), std::string("w5  w6"),
                                  std::string("w1 h\xc3\xa9 \xf0\x9f\x98\x80 w2"), std::string("")}) {
    SCOPED_TRACE(text);
    JsonWriter body;
    body.begin_object().key("content").value(text).key("add_special").value(false).end_object();
    auto t = c.Post("/tokenize", body.str(), "application/json");
    ASSERT_TRUE(t);
    ASSERT_EQ(t->status, 200) << t->body;
    const std::vector<int32_t> ids = token_list(t->body);
    if (text == "w1 w2 w17 w3") {
      EXPECT_EQ(ids.size(), 4u);  // whole words, not bytes
    }
    auto d = c.Post("/detokenize", tokens_body(ids), "application/json");
    ASSERT_TRUE(d);
    ASSERT_EQ(d->status, 200) << d->body;
    EXPECT_EQ(content_of(d->body), text);
  }
}

TEST_F(ServerTest, BadRequestsAre400) {
  start();
  for (const auto& [path, body, needle] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"/tokenize", "", "empty"},
           {"/tokenize", "{", "malformed JSON"},
           {"/tokenize", "{\"content\": \"x\",}", "malformed JSON"},
           {"/tokenize", "[1,2]", "must be a JSON object"},
           {"/tokenize", "\"text\"", "must be a JSON object"},
           {"/tokenize", "{}", "missing field \"content\""},
           {"/tokenize", R"({"content":5})", "\"content\" must be a string"},
           {"/tokenize", R"({"content":null})", "\"content\" must be a string"},
           {"/tokenize", R"({"content":"x","add_special":"yes"})", "\"add_special\" must be a boolean"},
           {"/tokenize", R"({"content":"x","parse_special":1})", "\"parse_special\" must be a boolean"},
           {"/detokenize", "nope", "malformed JSON"},
           {"/detokenize", "{}", "missing field \"tokens\""},
           {"/detokenize", R"({"tokens":"1 2"})", "must be an array"},
           {"/detokenize", R"({"tokens":[1,"2"]})", "\"tokens\"[1] must be an integer"},
           {"/detokenize", R"({"tokens":[1.5]})", "\"tokens\"[0] must be an integer"},
           {"/detokenize", R"({"tokens":[null]})", "must be an integer"},
           {"/detokenize", R"({"tokens":[[1]]})", "must be an integer"},
           {"/detokenize", R"({"tokens":[1e400]})", ""},  // out of double range: malformed or not finite
       }) {
    SCOPED_TRACE(path + " " + body);
    expect_error(post(path, body), 400, "invalid_request_error", needle);
  }
}

TEST_F(ServerTest, TokenIdsOutsideTheVocabularyAre400) {
  start();
  const int32_t n = vocab().n_vocab();
  for (const std::string& bad : {std::to_string(n), std::string("-1"), std::string("1e12"),
                                 std::string("9223372036854775807"), std::string("2147483648")}) {
    SCOPED_TRACE(bad);
    expect_error(post("/detokenize", R"({"tokens":[1,)" + bad + "]}"), 400, "invalid_request_error",
                 "outside the vocabulary [0, " + std::to_string(n) + ")");
  }
  auto last = post("/detokenize", R"({"tokens":[)" + std::to_string(n - 1) + "]}");
  ASSERT_TRUE(last);
  EXPECT_EQ(last->status, 200) << last->body;
}

TEST_F(ServerTest, ApiKeyIsRequiredEverywhereButHealth) {
  ServerOptions o;
  o.api_key = "sk-test-123";
  start(o);
  auto h = client().Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  // No key, a wrong key, a key of the right length, a non-Bearer scheme: 401 on every other route.
  for (const std::string& auth : {std::string(), std::string("Bearer wrong"), std::string("Bearer sk-test-124"),
                                  std::string("Basic sk-test-123"), std::string("Bearer ")}) {
    SCOPED_TRACE(auth);
    httplib::Headers headers;
    if (!auth.empty()) headers.emplace("Authorization", auth);
    expect_error(client().Get("/v1/models", headers), 401, "authentication_error", "API key");
    expect_error(client().Post("/tokenize", headers, R"({"content":"w1"})", "application/json"), 401,
                 "authentication_error");
    expect_error(client().Post("/detokenize", headers, R"({"tokens":[1]})", "application/json"), 401,
                 "authentication_error");
    expect_error(client().Get("/no/such/route", headers), 401, "authentication_error");
  }
  auto c = client();
  c.set_bearer_token_auth("sk-test-123");
  auto m = c.Get("/v1/models");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200) << m->body;
  auto t = c.Post("/tokenize", R"({"content":"w1"})", "application/json");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->status, 200) << t->body;
  expect_error(c.Get("/no/such/route"), 404, "not_found_error");
  httplib::Headers lower{{"Authorization", "bearer sk-test-123"}};  // the scheme is case-insensitive
  auto l = client().Get("/v1/models", lower);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->status, 200);
}

TEST_F(ServerTest, UnknownRoutesAre404AndWrongMethods405) {
  start();
  expect_error(client().Get("/"), 404, "not_found_error", "unknown route GET /");
  expect_error(client().Get("/v1/completionz"), 404, "not_found_error");
  expect_error(client().Post("/v1/chat/completions", "{}", "application/json"), 404, "not_found_error");
  expect_error(client().Get("/health/"), 404, "not_found_error");
  auto r = client().Post("/health", "{}", "application/json");
  expect_error(r, 405, "invalid_request_error", "method POST is not allowed on /health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->get_header_value("Allow"), "GET, HEAD");
  auto t = client().Get("/tokenize");
  expect_error(t, 405, "invalid_request_error", "use POST");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->get_header_value("Allow"), "POST");
  expect_error(client().Delete("/v1/models"), 405, "invalid_request_error");
  expect_error(client().Put("/detokenize", "{}", "application/json"), 405, "invalid_request_error");
  // Query strings do not change the route.
  auto q = client().Get("/health?x=1");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->status, 200);
}

TEST_F(ServerTest, BodyOverTheLimitIs413) {
  ServerOptions o;
  o.max_body_bytes = 1024;
  start(o);
  const std::string fits = R"({"content":")" + std::string(1000, 'a') + "\"}";
  ASSERT_LE(fits.size(), 1024u);
  auto ok = post("/tokenize", fits);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  const std::string over = R"({"content":")" + std::string(2000, 'a') + "\"}";
  expect_error(post("/tokenize", over), 413, "invalid_request_error", "limit of 1024 bytes");
  // The server is still healthy afterwards.
  auto h = client().Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
}

TEST_F(ServerTest, ConcurrentClients) {
  ServerOptions o;
  o.threads = 4;
  start(o);
  constexpr int kClients = 8, kRequests = 25;
  std::atomic<int> ok{0}, bad{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      httplib::Client cli("127.0.0.1", server_->port());
      cli.set_read_timeout(20);
      for (int i = 0; i < kRequests; ++i) {
        std::string text = "w";
        text.append(std::to_string(c)).append(" w").append(std::to_string(i));
        JsonWriter body;
        body.begin_object().key("content").value(text).key("add_special").value(false).end_object();
        auto r = cli.Post("/tokenize", body.str(), "application/json");
        if (!r || r->status != 200) {
          ++bad;
          continue;
        }
        const std::vector<int32_t> ids = token_list(r->body);
        auto d = cli.Post("/detokenize", tokens_body(ids), "application/json");
        auto h = cli.Get("/health");
        if (d && d->status == 200 && content_of(d->body) == vocab().decode(ids) && !ids.empty() && h &&
            h->status == 200) {
          ++ok;
        } else {
          ++bad;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(ok.load(), kClients * kRequests);
}

// Raw bytes on a socket: one request and its response.
std::string raw_exchange(int port, const std::string& bytes, bool half_close) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "connect failed";
  }
  (void)!write(fd, bytes.data(), bytes.size());
  if (half_close) shutdown(fd, SHUT_WR);
  // Reads until the server closes or one whole response (headers + Content-Length bytes) has arrived.
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) {
    out.append(buf, static_cast<size_t>(n));
    const size_t end = out.find("\r\n\r\n");
    if (end == std::string::npos) continue;
    const size_t cl = out.find("Content-Length: ");
    const size_t length = cl < end ? std::strtoull(out.c_str() + cl + 16, nullptr, 10) : 0;
    if (out.size() >= end + 4 + length) break;
  }
  close(fd);
  return out;
}

TEST_F(ServerTest, MalformedAndCutConnectionsDoNotHurtTheServer) {
  start();
  const std::string garbage = raw_exchange(server_->port(), "GARBAGE\r\n\r\n", false);
  EXPECT_EQ(garbage.rfind("HTTP/1.1 400", 0), 0u) << garbage;
  EXPECT_NE(garbage.find(R"("type":"invalid_request_error")"), std::string::npos) << garbage;
  // A body shorter than its Content-Length, then the client goes away.
  raw_exchange(server_->port(), "POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"con", true);
  // A request line cut in the middle.
  raw_exchange(server_->port(), "GET /hea", true);
  // A huge Content-Length, no body.
  raw_exchange(server_->port(), "POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
               true);
  const std::string ok =
      raw_exchange(server_->port(), "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false);
  EXPECT_EQ(ok.rfind("HTTP/1.1 200", 0), 0u) << ok;
  EXPECT_NE(ok.find(R"({"status":"ok"})"), std::string::npos) << ok;
}

TEST(Server, OptionErrorsAndBusyPorts) {
  ServerOptions bad_port;
  bad_port.port = 70000;
  Server a(bad_port, &vocab());
  Status s = a.start();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("70000"), std::string::npos) << s.message();

  Server first(ServerOptions{}, &vocab());
  ASSERT_TRUE(first.start().is_ok());
  ServerOptions same;
  same.port = first.port();
  Server second(same, &vocab());
  s = second.start();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("cannot listen on 127.0.0.1:" + std::to_string(first.port())), std::string::npos)
      << s.message();

  ServerOptions bad_host;
  bad_host.host = "256.1.2.3";
  Server third(bad_host, &vocab());
  EXPECT_FALSE(third.start().is_ok());
  for (int ms : {0, 3600001}) {
    ServerOptions bad_timeout;
    bad_timeout.request_timeout_ms = ms;
    Server t(bad_timeout, &vocab());
    s = t.start();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("request timeout " + std::to_string(ms)), std::string::npos) << s.message();
  }
  // stop() is idempotent and start-stop cycles do not hang.
  first.stop();
  first.stop();
  for (int i = 0; i < 5; ++i) {
    Server quick(ServerOptions{}, &vocab());
    ASSERT_TRUE(quick.start().is_ok());
    quick.stop();
  }
}

}  // namespace
}  // namespace cw::server
