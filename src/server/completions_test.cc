// The generating endpoints of the server (issue 15) over a real cw::Engine on a generated tiny llama
// (random weights: what it says is not checked, that the server says what the engine says is): the
// non-streaming and streaming shapes, SSE events that concatenate to the greedy text, stop strings,
// max_tokens, usage and cached tokens, logprobs, every error status, 503 at the admission limit, a
// client that disconnects mid-stream or while a non-streaming request runs (its request cancelled),
// stop() with a stream in flight, /metrics, and greedy output equal to `chunkwise run --temp 0`.
#include <gtest/gtest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "base/json.h"
#include "base/json_value.h"
#include "chunkwise/engine.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "model/make_model.h"
#include "server/chat_template.h"
#include "server/http_server.h"
#include "support/spm_vocab.h"
#include "support/testing.h"
#include "tokenizer/tokenizer.h"

#ifndef CW_SOURCE_DIR
#define CW_SOURCE_DIR "."
#endif

namespace cw::server {
namespace {

const std::string& tiny_path() { return testing::tiny_llama_f32("completions-tiny.gguf", 11); }

std::unique_ptr<tok::Tokenizer> load_tokenizer(const std::string& path) {
  auto f = gguf::File::open(path);
  CW_CHECK_MSG(f.is_ok(), f.status().to_string());
  auto t = tok::Tokenizer::from_gguf(**f);
  CW_CHECK_MSG(t.is_ok(), t.status().to_string());
  return std::move(t).value();
}

std::unique_ptr<Engine> open_engine(const std::string& path, const std::string& kv_policy = "full") {
  EngineConfig c;
  c.model_path = path;
  c.threads = 1;
  c.parallel = 4;
  c.kv_policy = kv_policy;
  auto e = Engine::open(c);
  CW_CHECK_MSG(e.is_ok(), e.status().to_string());
  return std::move(e).value();
}

JsonValue parse_json(const std::string& body) {
  auto j = JsonValue::parse(body);
  EXPECT_TRUE(j.is_ok()) << body;
  return j.is_ok() ? std::move(j).value() : JsonValue();
}

// j[a][b]... for object keys and array indexes ("0", "1", ...); a null JsonValue when absent.
const JsonValue& at(const JsonValue& j, std::initializer_list<std::string> path) {
  static const JsonValue kNull;
  const JsonValue* v = &j;
  for (const std::string& k : path) {
    if (v->is_array()) {
      const size_t i = std::stoul(k);
      if (i >= v->items().size()) return kNull;
      v = &v->items()[i];
    } else {
      v = v->get(k);
      if (v == nullptr) return kNull;
    }
  }
  return *v;
}

std::string str(const JsonValue& j, std::initializer_list<std::string> path) {
  const JsonValue& v = at(j, path);
  EXPECT_TRUE(v.is_string()) << "not a string";
  return v.is_string() ? v.as_string() : std::string();
}

int64_t num(const JsonValue& j, std::initializer_list<std::string> path) {
  const JsonValue& v = at(j, path);
  EXPECT_TRUE(v.is_number()) << "not a number";
  return v.is_number() ? static_cast<int64_t>(v.as_number()) : -1;
}

void expect_error(const httplib::Result& r, int status, const std::string& type, const std::string& needle = "") {
  ASSERT_TRUE(r) << "no response: " << httplib::to_string(r.error());
  EXPECT_EQ(r->status, status) << r->body;
  const JsonValue j = parse_json(r->body);
  EXPECT_EQ(str(j, {"error", "type"}), type) << r->body;
  EXPECT_EQ(num(j, {"error", "code"}), status) << r->body;
  const std::string m = str(j, {"error", "message"});
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  if (!needle.empty()) {
    EXPECT_NE(m.find(needle), std::string::npos) << m;
  }
}

// The events of an SSE body: the payloads of its "data: " lines, comments (": ...") left out.
std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) end = body.size();
    const std::string ev = body.substr(pos, end - pos);
    pos = end + 2;
    if (ev.empty() || ev[0] == ':') continue;
    EXPECT_EQ(ev.rfind("data: ", 0), 0u) << ev;
    out.push_back(ev.substr(6));
  }
  return out;
}

// What the streamed events of one request say.
struct Streamed {
  std::string text;
  std::string finish_reason;
  bool done_last = false;
  bool role_first = false;
  int logprob_tokens = 0;
  JsonValue usage;
  std::vector<JsonValue> chunks;
};

Streamed read_stream(const std::string& body, bool chat) {
  Streamed s;
  const std::vector<std::string> events = sse_events(body);
  EXPECT_FALSE(events.empty());
  s.done_last = !events.empty() && events.back() == "[DONE]";
  for (size_t i = 0; i + 1 < events.size() || (i < events.size() && !s.done_last); ++i) {
    EXPECT_NE(events[i], "[DONE]") << "[DONE] before the last event";
    JsonValue j = parse_json(events[i]);
    EXPECT_EQ(str(j, {"object"}), chat ? "chat.completion.chunk" : "text_completion") << events[i];
    EXPECT_EQ(str(j, {"id"}).rfind(chat ? "chatcmpl-" : "cmpl-", 0), 0u);
    const JsonValue& choices = at(j, {"choices"});
    EXPECT_TRUE(choices.is_array());
    if (choices.is_array() && choices.items().empty()) {  // the usage chunk
      s.usage = at(j, {"usage"});
      continue;
    }
    if (chat && i == 0) s.role_first = at(j, {"choices", "0", "delta", "role"}).is_string();
    const JsonValue& text = chat ? at(j, {"choices", "0", "delta", "content"}) : at(j, {"choices", "0", "text"});
    if (text.is_string()) s.text += text.as_string();
    const JsonValue& fr = at(j, {"choices", "0", "finish_reason"});
    if (fr.is_string()) {
      EXPECT_TRUE(s.finish_reason.empty()) << "two finish reasons";
      s.finish_reason = fr.as_string();
    }
    const JsonValue& lp = chat ? at(j, {"choices", "0", "logprobs", "content"})
                               : at(j, {"choices", "0", "logprobs", "tokens"});
    if (lp.is_array()) s.logprob_tokens += static_cast<int>(lp.items().size());
    s.chunks.push_back(std::move(j));
  }
  return s;
}

// One engine and tokenizer for the suite; a server per test.
class CompletionsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    engine_ = open_engine(tiny_path()).release();
    tok_ = load_tokenizer(tiny_path()).release();
  }
  static void TearDownTestSuite() {
    delete engine_;
    delete tok_;
  }
  void start(ServerOptions o = {}, Engine* engine = nullptr) {
    o.model_id = "tiny";
    if (o.threads < o.queue + 4) o.threads = static_cast<int>(o.queue + 4);
    server_ = std::make_unique<Server>(o, tok_, engine != nullptr ? engine : engine_);
    const Status s = server_->start();
    ASSERT_TRUE(s.is_ok()) << s.to_string();
  }
  httplib::Client client() {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_connection_timeout(5);
    c.set_read_timeout(60);
    return c;
  }
  httplib::Result post(const std::string& path, const std::string& body) {
    return client().Post(path.c_str(), body, "application/json");
  }
  // The engine's greedy answer for these prompt tokens (the oracle).
  static GenerationResult oracle(const std::vector<int32_t>& prompt, int64_t n, std::vector<std::string> stop = {}) {
    GenerationRequest g;
    g.prompt_tokens = prompt;
    g.n_predict = n;
    g.sampling.temperature = 0;
    g.stop = std::move(stop);
    auto id = engine_->submit(g);
    CW_CHECK_MSG(id.is_ok(), id.status().to_string());
    return engine_->wait(*id);
  }
  static std::vector<int32_t> completion_prompt(const std::string& text) { return tok_->encode(text, true, false); }
  static std::vector<int32_t> chat_prompt(const std::string& user) {
    const ChatMessage m[] = {{"system", "Be brief."}, {"user", user}};
    auto text = render_chat(ChatFamily::kChatml, m, true);
    CW_CHECK(text.is_ok());
    return tok_->encode(*text, true, true);
  }
  static std::string chat_body(const std::string& user, const std::string& extra) {
    JsonWriter w;
    w.begin_object().key("messages").begin_array();
    w.begin_object().key("role").value("system").key("content").value("Be brief.").end_object();
    w.begin_object().key("role").value("user").key("content").value(user).end_object();
    w.end_array().end_object();
    std::string s = w.str();
    s.pop_back();
    return s + extra + "}";
  }

  static Engine* engine_;
  static tok::Tokenizer* tok_;
  std::unique_ptr<Server> server_;
};
Engine* CompletionsTest::engine_ = nullptr;
tok::Tokenizer* CompletionsTest::tok_ = nullptr;

const std::string kPrompt = "w1 w2 w3 w4 w5";

TEST_F(CompletionsTest, CompletionShapeUsageAndLength) {
  start();
  const std::vector<int32_t> p = completion_prompt(kPrompt);
  const GenerationResult want = oracle(p, 6);
  ASSERT_EQ(want.finish_reason, FinishReason::kLength) << "the tiny model said eos early; pick another prompt";
  auto r = post("/v1/completions", R"({"model":"tiny","prompt":"w1 w2 w3 w4 w5","max_tokens":6,"temperature":0})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  const JsonValue j = parse_json(r->body);
  EXPECT_EQ(str(j, {"object"}), "text_completion");
  EXPECT_EQ(str(j, {"id"}).rfind("cmpl-", 0), 0u);
  EXPECT_EQ(str(j, {"model"}), "tiny");
  EXPECT_GT(num(j, {"created"}), 1600000000);
  EXPECT_EQ(at(j, {"choices"}).items().size(), 1u);
  EXPECT_EQ(num(j, {"choices", "0", "index"}), 0);
  EXPECT_EQ(str(j, {"choices", "0", "text"}), parse_json([&] {
              JsonWriter w;
              w.value(want.text);
              return w.str();
            }()).as_string());
  EXPECT_TRUE(at(j, {"choices", "0", "logprobs"}).is_null());
  EXPECT_EQ(str(j, {"choices", "0", "finish_reason"}), "length");
  EXPECT_EQ(num(j, {"usage", "prompt_tokens"}), static_cast<int64_t>(p.size()));
  EXPECT_EQ(num(j, {"usage", "completion_tokens"}), 6);
  EXPECT_EQ(num(j, {"usage", "total_tokens"}), static_cast<int64_t>(p.size()) + 6);
  EXPECT_GE(num(j, {"usage", "prompt_tokens_details", "cached_tokens"}), 0);
}

TEST_F(CompletionsTest, CachedTokensOnARepeatedPrompt) {
  start();
  std::string prompt;
  for (int i = 0; i < 60; ++i) prompt.append("w").append(std::to_string(i % 50)).append(" ");
  JsonWriter w;
  w.begin_object().key("prompt").value(prompt).key("max_tokens").value(2).key("temperature").value(0).end_object();
  auto a = post("/v1/completions", w.str());
  auto b = post("/v1/completions", w.str());
  ASSERT_TRUE(a && b);
  ASSERT_EQ(b->status, 200) << b->body;
  const JsonValue jb = parse_json(b->body);
  EXPECT_GE(num(jb, {"usage", "prompt_tokens_details", "cached_tokens"}), 32) << b->body;
  EXPECT_LT(num(jb, {"usage", "prompt_tokens_details", "cached_tokens"}), num(jb, {"usage", "prompt_tokens"}));
  EXPECT_EQ(str(parse_json(a->body), {"choices", "0", "text"}), str(jb, {"choices", "0", "text"}));
}

TEST_F(CompletionsTest, ChatShape) {
  start();
  const GenerationResult want = oracle(chat_prompt("w7 w8"), 5, {"<|im_end|>"});
  auto r = post("/v1/chat/completions", chat_body("w7 w8", R"(,"max_tokens":5,"temperature":0,"model":"tiny")"));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const JsonValue j = parse_json(r->body);
  EXPECT_EQ(str(j, {"object"}), "chat.completion");
  EXPECT_EQ(str(j, {"id"}).rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(str(j, {"choices", "0", "message", "role"}), "assistant");
  JsonWriter want_json;
  want_json.value(want.text);
  EXPECT_EQ(str(j, {"choices", "0", "message", "content"}), parse_json(want_json.str()).as_string());
  EXPECT_EQ(str(j, {"choices", "0", "finish_reason"}), openai_finish_reason(want.finish_reason));
  EXPECT_EQ(num(j, {"usage", "prompt_tokens"}), want.prompt_tokens);
  EXPECT_EQ(num(j, {"usage", "completion_tokens"}), static_cast<int64_t>(want.tokens.size()));
  // max_completion_tokens is chat's newer name for max_tokens; content parts are joined.
  auto parts = post("/v1/chat/completions",
                    R"({"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[)"
                    R"({"type":"text","text":"w7"},{"type":"text","text":" w8"}]}],"max_completion_tokens":5,)"
                    R"("temperature":0})");
  ASSERT_TRUE(parts);
  ASSERT_EQ(parts->status, 200) << parts->body;
  EXPECT_EQ(str(parse_json(parts->body), {"choices", "0", "message", "content"}),
            str(j, {"choices", "0", "message", "content"}));
}

TEST_F(CompletionsTest, StreamingConcatenatesToTheGreedyText) {
  start();
  for (bool chat : {false, true}) {
    SCOPED_TRACE(chat ? "chat" : "completions");
    const std::string path = chat ? "/v1/chat/completions" : "/v1/completions";
    const std::string base = chat ? chat_body("w3 w9", R"(,"max_tokens":24,"temperature":0)")
                                  : R"({"prompt":"w3 w9","max_tokens":24,"temperature":0)";
    auto plain = post(path, chat ? base : base + "}");
    ASSERT_TRUE(plain);
    ASSERT_EQ(plain->status, 200) << plain->body;
    const JsonValue pj = parse_json(plain->body);
    const std::string want = chat ? str(pj, {"choices", "0", "message", "content"}) : str(pj, {"choices", "0", "text"});

    const std::string streamed_body =
        chat ? base.substr(0, base.size() - 1) + R"(,"stream":true,"stream_options":{"include_usage":true}})"
             : base + R"(,"stream":true,"stream_options":{"include_usage":true}})";
    auto r = post(path, streamed_body);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
    const Streamed s = read_stream(r->body, chat);
    EXPECT_TRUE(s.done_last) << r->body;
    EXPECT_EQ(s.text, want);
    EXPECT_EQ(s.finish_reason, str(pj, {"choices", "0", "finish_reason"}));
    if (chat) {
      EXPECT_TRUE(s.role_first);
    }
    EXPECT_GE(s.chunks.size(), 2u);
    ASSERT_TRUE(s.usage.is_object()) << r->body;
    EXPECT_EQ(num(s.usage, {"completion_tokens"}), num(pj, {"usage", "completion_tokens"}));
    EXPECT_EQ(num(s.usage, {"prompt_tokens"}), num(pj, {"usage", "prompt_tokens"}));
  }
}

TEST_F(CompletionsTest, StopStrings) {
  start();
  const std::vector<int32_t> p = completion_prompt("w11 w12");
  const GenerationResult full = oracle(p, 16);
  // A stop string: the text of a generated token past the first two (printable ASCII, so valid UTF-8).
  std::string stop;
  for (size_t i = 2; i < full.tokens.size() && stop.empty(); ++i) {
    const std::string piece = engine_->token_piece(full.tokens[i]);
    bool ascii = !piece.empty();
    for (unsigned char c : piece) ascii = ascii && c >= 0x20 && c < 0x7f;
    if (ascii && full.text.find(piece) != std::string::npos) stop = piece;
  }
  ASSERT_FALSE(stop.empty()) << "no printable token in " << full.text;
  const GenerationResult want = oracle(p, 16, {stop});
  ASSERT_EQ(want.finish_reason, FinishReason::kStop);
  ASSERT_EQ(want.text, full.text.substr(0, full.text.find(stop)));
  JsonWriter body;
  body.begin_object().key("prompt").value("w11 w12").key("max_tokens").value(16).key("temperature").value(0);
  body.key("stop").begin_array().value("\xE2\x96\x81never").value(stop).end_array().end_object();
  auto r = post("/v1/completions", body.str());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const JsonValue j = parse_json(r->body);
  JsonWriter want_json;
  want_json.value(want.text);
  EXPECT_EQ(str(j, {"choices", "0", "text"}), parse_json(want_json.str()).as_string());
  EXPECT_EQ(str(j, {"choices", "0", "finish_reason"}), "stop");
  // Streamed: the same text, and no event holds any of the stop string.
  std::string sbody = body.str();
  sbody.pop_back();
  auto s = post("/v1/completions", sbody + R"(,"stream":true})");
  ASSERT_TRUE(s);
  const Streamed st = read_stream(s->body, false);
  EXPECT_EQ(st.text, str(j, {"choices", "0", "text"}));
  EXPECT_EQ(st.finish_reason, "stop");
  EXPECT_EQ(st.text.find(stop), std::string::npos);
  // A single string works too.
  JsonWriter one;
  one.begin_object().key("prompt").value("w11 w12").key("max_tokens").value(16).key("temperature").value(0);
  one.key("stop").value(stop).end_object();
  auto o = post("/v1/completions", one.str());
  ASSERT_TRUE(o);
  EXPECT_EQ(str(parse_json(o->body), {"choices", "0", "finish_reason"}), "stop");
}

TEST_F(CompletionsTest, Logprobs) {
  start();
  auto c = post("/v1/chat/completions",
                chat_body("w2", R"(,"max_tokens":4,"temperature":0,"logprobs":true,"top_logprobs":3)"));
  ASSERT_TRUE(c);
  ASSERT_EQ(c->status, 200) << c->body;
  const JsonValue j = parse_json(c->body);
  const JsonValue& content = at(j, {"choices", "0", "logprobs", "content"});
  ASSERT_TRUE(content.is_array()) << c->body;
  EXPECT_EQ(static_cast<int64_t>(content.items().size()), num(j, {"usage", "completion_tokens"}));
  for (const JsonValue& t : content.items()) {
    ASSERT_EQ(at(t, {"top_logprobs"}).items().size(), 3u);
    // Greedy without penalties: the token is the most likely one.
    EXPECT_EQ(str(t, {"token"}), str(t, {"top_logprobs", "0", "token"}));
    EXPECT_FLOAT_EQ(at(t, {"logprob"}).as_number(), at(t, {"top_logprobs", "0", "logprob"}).as_number());
    EXPECT_LE(at(t, {"logprob"}).as_number(), 0.0);
    EXPECT_TRUE(at(t, {"bytes"}).is_array());
  }
  auto p = post("/v1/completions", R"({"prompt":"w2","max_tokens":4,"temperature":0,"logprobs":2})");
  ASSERT_TRUE(p);
  ASSERT_EQ(p->status, 200) << p->body;
  const JsonValue pj = parse_json(p->body);
  EXPECT_EQ(static_cast<int64_t>(at(pj, {"choices", "0", "logprobs", "tokens"}).items().size()),
            num(pj, {"usage", "completion_tokens"}));
  EXPECT_EQ(at(pj, {"choices", "0", "logprobs", "top_logprobs", "0"}).members().size(), 2u) << p->body;
  EXPECT_EQ(num(pj, {"choices", "0", "logprobs", "text_offset", "0"}), 0);
  // Streamed: one logprob entry per generated token across the chunks.
  auto s = post("/v1/chat/completions",
                chat_body("w2", R"(,"max_tokens":4,"temperature":0,"logprobs":true,"top_logprobs":1,"stream":true)"));
  ASSERT_TRUE(s);
  const Streamed st = read_stream(s->body, true);
  EXPECT_EQ(st.logprob_tokens, num(j, {"usage", "completion_tokens"}));
  EXPECT_EQ(st.text, str(j, {"choices", "0", "message", "content"}));
}

TEST_F(CompletionsTest, SampledRequestsWithASeedRepeat) {
  start();
  const std::string body = R"({"prompt":"w4","max_tokens":8,"temperature":1.5,"top_p":0.9,"seed":1234,)"
                           R"("presence_penalty":0.5,"frequency_penalty":0.25})";
  auto a = post("/v1/completions", body);
  auto b = post("/v1/completions", body);
  ASSERT_TRUE(a && b);
  ASSERT_EQ(a->status, 200) << a->body;
  EXPECT_EQ(str(parse_json(a->body), {"choices", "0", "text"}), str(parse_json(b->body), {"choices", "0", "text"}));
}

TEST_F(CompletionsTest, BadRequestsAre400NamingTheField) {
  start();
  for (const auto& [path, body, needle] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"/v1/completions", "", "empty"},
           {"/v1/completions", "{", "malformed JSON"},
           {"/v1/completions", "[1]", "must be a JSON object"},
           {"/v1/completions", "{}", "missing field \"prompt\""},
           {"/v1/completions", R"({"prompt":5})", "\"prompt\" must be a string"},
           {"/v1/completions", R"({"prompt":[])", "malformed JSON"},
           {"/v1/completions", R"({"prompt":[]})", "\"prompt\" is an empty array"},
           {"/v1/completions", R"({"prompt":["a","b"]})", "several strings"},
           {"/v1/completions", R"({"prompt":[1,-1]})", "\"prompt\"[1] must be a token id"},
           {"/v1/completions", R"({"prompt":[1,1e9]})", "\"prompt\"[1] must be a token id"},
           {"/v1/completions", R"({"prompt":"x","model":7})", "\"model\" must be a string"},
           {"/v1/completions", R"({"prompt":"x","max_tokens":-1})", "\"max_tokens\" must be an integer"},
           {"/v1/completions", R"({"prompt":"x","max_tokens":1.5})", "\"max_tokens\""},
           {"/v1/completions", R"({"prompt":"x","max_tokens":1e300})", "\"max_tokens\""},
           {"/v1/completions", R"({"prompt":"x","max_tokens":"10"})", "\"max_tokens\" must be an integer"},
           {"/v1/completions", R"({"prompt":"x","temperature":"hot"})", "\"temperature\" must be a number"},
           {"/v1/completions", R"({"prompt":"x","temperature":-0.1})", "\"temperature\""},
           {"/v1/completions", R"({"prompt":"x","temperature":1e400})", ""},
           {"/v1/completions", R"({"prompt":"x","top_p":1.5})", "\"top_p\""},
           {"/v1/completions", R"({"prompt":"x","top_k":-3})", "\"top_k\""},
           {"/v1/completions", R"({"prompt":"x","min_p":2})", "\"min_p\""},
           {"/v1/completions", R"({"prompt":"x","repeat_penalty":0})", "\"repeat_penalty\""},
           {"/v1/completions", R"({"prompt":"x","presence_penalty":3})", "\"presence_penalty\""},
           {"/v1/completions", R"({"prompt":"x","frequency_penalty":[1]})", "\"frequency_penalty\""},
           {"/v1/completions", R"({"prompt":"x","seed":0.5})", "\"seed\""},
           {"/v1/completions", R"({"prompt":"x","seed":1e30})", "\"seed\""},
           {"/v1/completions", R"({"prompt":"x","stop":42})", "\"stop\" must be a string"},
           {"/v1/completions", R"({"prompt":"x","stop":["a","b","c","d","e"]})", "at most 4"},
           {"/v1/completions", R"({"prompt":"x","stop":["a",1]})", "\"stop\"[1]"},
           {"/v1/completions", R"({"prompt":"x","stop":[""]})", "stop"},
           {"/v1/completions", R"({"prompt":"x","n":2})", "\"n\" must be 1"},
           {"/v1/completions", R"({"prompt":"x","n":0})", "\"n\" must be 1"},
           {"/v1/completions", R"({"prompt":"x","best_of":3})", "\"best_of\""},
           {"/v1/completions", R"({"prompt":"x","echo":true})", "\"echo\""},
           {"/v1/completions", R"({"prompt":"x","logprobs":21})", "\"logprobs\""},
           {"/v1/completions", R"({"prompt":"x","logprobs":true})", "\"logprobs\""},
           {"/v1/completions", R"({"prompt":"x","stream":"yes"})", "\"stream\" must be a boolean"},
           {"/v1/completions", R"({"prompt":"x","stream_options":{"include_usage":true}})", "\"stream\": true"},
           {"/v1/completions", R"({"prompt":"x","stream":true,"stream_options":5})", "\"stream_options\""},
           {"/v1/chat/completions", "{}", "missing field \"messages\""},
           {"/v1/chat/completions", R"({"messages":[]})", "\"messages\" is empty"},
           {"/v1/chat/completions", R"({"messages":"hi"})", "\"messages\" must be an array"},
           {"/v1/chat/completions", R"({"messages":[5]})", "\"messages\"[0] must be an object"},
           {"/v1/chat/completions", R"({"messages":[{"role":"robot","content":"x"}]})", "\"messages\"[0].role"},
           {"/v1/chat/completions", R"({"messages":[{"content":"x"}]})", "\"messages\"[0].role"},
           {"/v1/chat/completions", R"({"messages":[{"role":"user"}]})", "\"messages\"[0].content is missing"},
           {"/v1/chat/completions", R"({"messages":[{"role":"user","content":7}]})", "\"messages\"[0].content"},
           {"/v1/chat/completions", R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})",
            "only text"},
           {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"logprobs":2})", "\"logprobs\""},
           {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":2})",
            "needs \"logprobs\": true"},
           {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":21})",
            "\"top_logprobs\""},
           {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"n":2})", "\"n\" must be 1"},
       }) {
    SCOPED_TRACE(path + " " + body);
    expect_error(post(path, body), 400, "invalid_request_error", needle);
  }
  // The server is fine afterwards.
  auto ok = post("/v1/completions", R"({"prompt":"x","max_tokens":1})");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
}

TEST_F(CompletionsTest, PromptOverTheContextIs400WithTheCounts) {
  start();
  std::string big;
  for (int i = 0; i < 2100; ++i) big.append("w").append(std::to_string(i % 200)).append(" ");
  const int64_t n = static_cast<int64_t>(completion_prompt(big).size());
  ASSERT_GT(n, 2048);
  JsonWriter w;
  w.begin_object().key("prompt").value(big).end_object();
  expect_error(post("/v1/completions", w.str()), 400, "invalid_request_error",
               "the prompt has " + std::to_string(n) + " tokens; the context holds 2048");
  const int64_t small = static_cast<int64_t>(completion_prompt("w1 w2").size());
  expect_error(post("/v1/completions", R"({"prompt":"w1 w2","max_tokens":2047})"), 400, "invalid_request_error",
               "the prompt (" + std::to_string(small) + " tokens) + max_tokens (2047) = " +
                   std::to_string(small + 2047) + " tokens exceed the context of 2048 tokens");
  JsonWriter chat;
  chat.begin_object().key("messages").begin_array().begin_object().key("role").value("user").key("content").value(big);
  chat.end_object().end_array().end_object();
  expect_error(post("/v1/chat/completions", chat.str()), 400, "invalid_request_error", "the context holds 2048");
  // Exactly at the limit is fine.
  auto fits = post("/v1/completions",
                   R"({"prompt":"w1 w2","max_tokens":)" + std::to_string(2048 - small) + R"(,"temperature":0,"stop":"w"})");
  ASSERT_TRUE(fits);
  EXPECT_EQ(fits->status, 200) << fits->body;
}

TEST_F(CompletionsTest, UnknownModelIs404AndTheKeyIsRequired) {
  ServerOptions o;
  o.api_key = "sk-1";
  start(o);
  auto c = client();
  expect_error(c.Post("/v1/completions", R"({"prompt":"x"})", "application/json"), 401, "authentication_error");
  expect_error(c.Post("/v1/chat/completions", R"({"messages":[]})", "application/json"), 401,
               "authentication_error");
  expect_error(c.Get("/metrics"), 401, "authentication_error");
  c.set_bearer_token_auth("sk-1");
  expect_error(c.Post("/v1/completions", R"({"prompt":"x","model":"gpt-4o"})", "application/json"), 404,
               "not_found_error", "the model 'gpt-4o' does not exist");
  expect_error(c.Post("/v1/chat/completions", R"({"model":"nope","messages":[{"role":"user","content":"x"}]})",
                      "application/json"),
               404, "not_found_error", "'nope'");
  auto ok = c.Post("/v1/completions", R"({"prompt":"x","model":"tiny","max_tokens":1})", "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  auto wrong_method = c.Get("/v1/completions");
  expect_error(wrong_method, 405, "invalid_request_error", "use POST");
}

// A streaming request on a raw socket: the client reads as little as it likes and can vanish.
class RawStream {
 public:
  RawStream(int port, const std::string& path, const std::string& body) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{20, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    const std::string req = "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    (void)!write(fd_, req.data(), req.size());
  }
  ~RawStream() { close_now(); }
  // Reads until `n` "data: " events arrived (or the stream ended); true when they did.
  bool read_events(int n) {
    char buf[4096];
    while (count("data: ") < n) {
      const ssize_t k = read(fd_, buf, sizeof buf);
      if (k <= 0) return false;
      got_.append(buf, static_cast<size_t>(k));
    }
    return true;
  }
  // Reads to the end of the response.
  void read_all() {
    char buf[4096];
    for (ssize_t k; (k = read(fd_, buf, sizeof buf)) > 0;) got_.append(buf, static_cast<size_t>(k));
  }
  void close_now() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  // Closes with a TCP reset (SO_LINGER 0) instead of an orderly FIN.
  void reset_now() {
    if (fd_ >= 0) {
      linger l{1, 0};
      setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close_now();
  }
  const std::string& got() const { return got_; }

 private:
  int count(const std::string& s) const {
    int n = 0;
    for (size_t p = got_.find(s); p != std::string::npos; p = got_.find(s, p + 1)) ++n;
    return n;
  }
  int fd_ = -1;
  std::string got_;
};

// Waits up to `seconds` for pred().
template <typename F>
bool eventually(F pred, double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

// A tiny llama whose vocabulary has no eos (support/spm_vocab.h's without tokenizer.ggml.eos_token_id),
// run under a KV policy that lifts the context limit: a request with a huge max_tokens runs until it is
// cancelled.
const std::string& endless_model_path() {
  return testing::tiny_llama_f32("completions-no-eos.gguf", 5, /*with_eos=*/false);
}

class EndlessTest : public CompletionsTest {
 protected:
  static void SetUpTestSuite() {
    CompletionsTest::SetUpTestSuite();
    endless_ = open_engine(endless_model_path(), "sink_window:sinks=4,window=60").release();
    endless_tok_ = load_tokenizer(endless_model_path()).release();
  }
  static void TearDownTestSuite() {
    delete endless_;
    delete endless_tok_;
    CompletionsTest::TearDownTestSuite();
  }
  void start_endless(int64_t queue) {
    ServerOptions o;
    o.queue = queue;
    o.threads = 8;
    o.model_id = "tiny";
    server_ = std::make_unique<Server>(o, endless_tok_, endless_);
    const Status s = server_->start();
    ASSERT_TRUE(s.is_ok()) << s.to_string();
  }
  static constexpr const char* kEndless =
      R"({"prompt":"w1 w2 w3","max_tokens":100000000,"temperature":0,"stream":true})";
  static Engine* endless_;
  static tok::Tokenizer* endless_tok_;
};
Engine* EndlessTest::endless_ = nullptr;
tok::Tokenizer* EndlessTest::endless_tok_ = nullptr;

TEST_F(EndlessTest, QueueFullIs503AndADisconnectCancels) {
  start_endless(1);
  RawStream held(server_->port(), "/v1/completions", kEndless);
  ASSERT_TRUE(held.read_events(3)) << held.got();
  EXPECT_EQ(held.got().rfind("HTTP/1.1 200", 0), 0u) << held.got();
  EXPECT_EQ(endless_->counters().running, 1);
  // The one slot is taken: 503 at once, with Retry-After.
  const auto t0 = std::chrono::steady_clock::now();
  auto busy = post("/v1/completions", R"({"prompt":"x","max_tokens":1})");
  expect_error(busy, 503, "overloaded_error", "busy");
  EXPECT_EQ(busy->get_header_value("Retry-After"), "1");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  auto m = client().Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("chunkwise_requests_admitted 1\n"), std::string::npos) << m->body;
  EXPECT_NE(m->body.find("chunkwise_requests_running 1\n"), std::string::npos) << m->body;
  // The client goes away: its request is cancelled, its KV freed, the slot is free again.
  held.close_now();
  EXPECT_TRUE(eventually([&] { return endless_->counters().running == 0; }, 5.0));
  EXPECT_TRUE(eventually(
      [&] {
        auto mm = client().Get("/metrics");
        return mm && mm->body.find("chunkwise_requests_admitted 0\n") != std::string::npos;
      },
      5.0));
  const EngineInfo info = endless_->info();
  const EngineCounters c = endless_->counters();
  EXPECT_EQ(c.free_blocks + c.cached_blocks, info.kv_blocks);  // nothing held
  auto ok = post("/v1/completions", R"({"prompt":"x","max_tokens":1})");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
}

TEST_F(EndlessTest, AClientThatStopsReadingIsCancelledToo) {
  start_endless(2);
  {
    RawStream idle(server_->port(), "/v1/completions", kEndless);
    ASSERT_TRUE(idle.read_events(2)) << idle.got();
  }  // closed after two events, with more unread in the socket
  EXPECT_TRUE(eventually([&] { return endless_->counters().running == 0; }, 5.0));
}

// A non-streaming request writes nothing until it is done, so no failing write tells that its client left:
// the server polls the client's socket, cancels the request within a few steps and frees its KV.
TEST_F(EndlessTest, ANonStreamingClientThatDisconnectsIsCancelled) {
  start_endless(1);
  for (bool reset : {false, true}) {
    SCOPED_TRACE(reset ? "reset" : "close");
    RawStream held(server_->port(), "/v1/completions",
                   R"({"prompt":"w1 w2 w3","max_tokens":100000000,"temperature":0})");
    ASSERT_TRUE(eventually([&] { return endless_->counters().running == 1; }, 5.0));
    const int64_t steps_before = endless_->counters().steps;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_GT(endless_->counters().steps, steps_before) << "the request is not generating";
    const auto t0 = std::chrono::steady_clock::now();
    if (reset) {
      held.reset_now();
    } else {
      held.close_now();
    }
    EXPECT_TRUE(eventually([&] { return endless_->counters().running == 0; }, 5.0));
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(ms, 500) << "cancelled after " << ms << " ms";
    std::printf("non-streaming request cancelled %.1f ms after its client %s\n", ms, reset ? "reset" : "closed");
    EXPECT_TRUE(eventually(
        [&] {
          auto mm = client().Get("/metrics");
          return mm && mm->body.find("chunkwise_requests_admitted 0\n") != std::string::npos &&
                 mm->body.find("chunkwise_kv_blocks_used 0\n") != std::string::npos;
        },
        5.0));
  }
  auto m = client().Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find(R"(chunkwise_requests_total{endpoint="/v1/completions",status="499"} 2)"),
            std::string::npos) << m->body;
  // The slot is free: a request that the client waits for is answered.
  auto ok = post("/v1/completions", R"({"prompt":"x","max_tokens":2})");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
}

// A client that resets its connection right after sending: the reset comes before httplib asks for the
// peer's address (the request has none) or before the server first looks for the socket (getpeername fails
// on it) -- both mean gone, and the request must not run on.
TEST_F(EndlessTest, ANonStreamingRequestResetRightAfterSendingIsCancelled) {
  start_endless(1);
  for (int i = 0; i < 30; ++i) {
    SCOPED_TRACE(i);
    {
      RawStream gone(server_->port(), "/v1/completions",
                     R"({"prompt":"w1 w2 w3","max_tokens":100000000,"temperature":0})");
      if (i % 3 != 0) std::this_thread::sleep_for(std::chrono::microseconds(300 * (i % 3)));
      gone.reset_now();
    }
    // The slot is taken until the request (if httplib read it) ends.
    ASSERT_TRUE(eventually(
        [&] {
          auto mm = client().Get("/metrics");
          return mm && mm->body.find("chunkwise_requests_admitted 0\n") != std::string::npos &&
                 endless_->counters().running == 0;
        },
        2.0));
  }
}

TEST_F(EndlessTest, StopEndsStreamsInFlight) {
  start_endless(4);
  RawStream a(server_->port(), "/v1/completions", kEndless);
  ASSERT_TRUE(a.read_events(2));
  const auto t0 = std::chrono::steady_clock::now();
  server_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  a.read_all();
  EXPECT_NE(a.got().find("\"type\":\"overloaded_error\""), std::string::npos) << a.got().substr(a.got().size() - 300);
  EXPECT_NE(a.got().find("data: [DONE]"), std::string::npos);
  EXPECT_TRUE(eventually([&] { return endless_->counters().running == 0; }, 5.0));
}

// The chat reply stops at the template's end of turn even when it is not the eos: here "</s>" (zephyr) is
// a control token of a vocabulary without eos, which the random model samples sooner or later (seeded).
TEST_F(EndlessTest, ChatStopsAtTheEndOfTurnText) {
  const ChatMessage m[] = {{"user", "w1 w2"}};
  auto text = render_chat(ChatFamily::kZephyr, m, true);
  ASSERT_TRUE(text.is_ok());
  // The first seed whose sampled reply (as the server samples it: these fields, no stop) writes "</s>".
  GenerationResult free_run;
  size_t at = std::string::npos;
  uint64_t seed = 0;
  for (seed = 1; seed <= 20 && at == std::string::npos; ++seed) {
    GenerationRequest g;
    g.prompt_tokens = endless_tok_->encode(*text, true, true);
    g.n_predict = 1500;
    g.sampling.temperature = 1.5f;
    g.sampling.top_k = 0;
    g.sampling.top_p = 1;
    g.sampling.min_p = 0;
    g.sampling.seed = seed;
    auto id = endless_->submit(g);
    ASSERT_TRUE(id.is_ok());
    free_run = endless_->wait(*id);
    at = free_run.text.find("</s>");
  }
  --seed;
  if (at == std::string::npos) GTEST_SKIP() << "no seed made the model write </s>";
  ServerOptions o;
  o.queue = 2;
  o.threads = 8;
  o.model_id = "tiny";
  o.chat_family = ChatFamily::kZephyr;
  server_ = std::make_unique<Server>(o, endless_tok_, endless_);
  ASSERT_TRUE(server_->start().is_ok());
  auto r = post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"w1 w2"}],"max_tokens":1500,)"
                                        R"("temperature":1.5,"seed":)" + std::to_string(seed) + "}");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const JsonValue j = parse_json(r->body);
  EXPECT_EQ(str(j, {"choices", "0", "finish_reason"}), "stop");
  JsonWriter want;
  want.value(free_run.text.substr(0, at));
  EXPECT_EQ(str(j, {"choices", "0", "message", "content"}), parse_json(want.str()).as_string());
  EXPECT_LT(num(j, {"usage", "completion_tokens"}), 1500);
}

TEST_F(EndlessTest, AStreamFallingTooFarBehindIsCancelled) {
  ServerOptions o;
  o.queue = 2;
  o.threads = 8;
  o.model_id = "tiny";
  o.stream_buffer_bytes = 1;  // any piece of two bytes or more that waits overflows
  server_ = std::make_unique<Server>(o, endless_tok_, endless_);
  ASSERT_TRUE(server_->start().is_ok());
  auto r = post("/v1/completions", kEndless);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const std::vector<std::string> events = sse_events(r->body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_NE(events[events.size() - 2].find("fell behind"), std::string::npos) << events[events.size() - 2];
  EXPECT_TRUE(eventually([&] { return endless_->counters().running == 0; }, 5.0));
}

TEST_F(CompletionsTest, ConcurrentClientsEachGetTheirGreedyText) {
  ServerOptions o;
  o.queue = 16;
  start(o);
  constexpr int kClients = 8, kRequests = 4;
  // The expected texts, one request at a time.
  std::vector<std::string> want(kClients);
  for (int c = 0; c < kClients; ++c) {
    auto r = post("/v1/completions", R"({"prompt":"w)" + std::to_string(c + 20) + R"( w3","max_tokens":12,"temperature":0})");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    want[c] = str(parse_json(r->body), {"choices", "0", "text"});
  }
  std::atomic<int> ok{0}, bad{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client cli("127.0.0.1", server_->port());
      cli.set_read_timeout(60);
      const std::string base = R"({"prompt":"w)" + std::to_string(c + 20) + R"( w3","max_tokens":12,"temperature":0)";
      for (int i = 0; i < kRequests; ++i) {
        const bool stream = (i + c) % 2 == 0;
        auto r = cli.Post("/v1/completions", base + (stream ? R"(,"stream":true})" : "}"), "application/json");
        if (!r || r->status != 200) {
          ++bad;
          continue;
        }
        const std::string text =
            stream ? read_stream(r->body, false).text : str(parse_json(r->body), {"choices", "0", "text"});
        if (text == want[c]) {
          ++ok;
        } else {
          ++bad;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(ok.load(), kClients * kRequests);
}

// Random damage to valid bodies (cut, bytes replaced, values swapped for other JSON types / huge numbers):
// every answer is a well-formed 200 or a 4xx error, and the server stays up.
TEST_F(CompletionsTest, MangledBodiesNeverHurtTheServer) {
  start();
  const std::vector<std::string> seeds = {
      R"({"prompt":"w1 w2","max_tokens":3,"temperature":0.5,"top_p":0.9,"seed":7,"stop":["w9"],"logprobs":2})",
      R"({"messages":[{"role":"user","content":"w1"}],"max_tokens":3,"logprobs":true,"top_logprobs":2,"stream":true})",
  };
  const std::vector<std::string> swaps = {"null", "true", "-1", "1e308", "-1e308", "1e999", R"("")", "[]", "{}",
                                          "[[[[[[[[]]]]]]]]", "9007199254740993", "0.0000001", R"("\ud800")"};
  uint64_t rng = 12345;
  auto next = [&] {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<size_t>(rng >> 33);
  };
  auto c = client();
  for (int i = 0; i < 300; ++i) {
    const bool chat = i % 2 == 1;
    std::string body = seeds[i % 2];
    switch (next() % 3) {
      case 0: body.resize(next() % body.size()); break;
      case 1:
        for (int k = 0; k < 3; ++k) body[next() % body.size()] = static_cast<char>(next() % 256);
        break;
      default: {
        // Replace one value (what follows a ':') with another JSON value.
        size_t colon = body.find(':', next() % body.size());
        if (colon == std::string::npos) colon = body.find(':');
        size_t end = colon + 1;
        int depth = 0;
        while (end < body.size() && !(depth == 0 && (body[end] == ',' || body[end] == '}'))) {
          if (body[end] == '[' || body[end] == '{') ++depth;
          if (body[end] == ']' || body[end] == '}') --depth;
          ++end;
        }
        body = body.substr(0, colon + 1) + swaps[next() % swaps.size()] + body.substr(end);
      }
    }
    SCOPED_TRACE(body);
    auto r = c.Post(chat ? "/v1/chat/completions" : "/v1/completions", body, "application/json");
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    if (r->status == 200) continue;
    EXPECT_TRUE(r->status == 400 || r->status == 404) << r->status << " " << r->body;
    const JsonValue j = parse_json(r->body);
    EXPECT_FALSE(str(j, {"error", "message"}).empty()) << r->body;
  }
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
}

TEST_F(CompletionsTest, MetricsHaveTheDocumentedNamesAndCount) {
  start();
  auto before = client().Get("/metrics");
  ASSERT_TRUE(before);
  ASSERT_EQ(before->status, 200);
  EXPECT_EQ(before->get_header_value("Content-Type"), "text/plain; version=0.0.4");
  for (const char* name :
       {"chunkwise_requests_total", "chunkwise_prompt_tokens_total", "chunkwise_generated_tokens_total",
        "chunkwise_cached_tokens_total", "chunkwise_requests_admitted", "chunkwise_requests_admitted_limit",
        "chunkwise_requests_running", "chunkwise_requests_waiting", "chunkwise_kv_blocks_total",
        "chunkwise_kv_blocks_used", "chunkwise_kv_blocks_free", "chunkwise_kv_blocks_cached",
        "chunkwise_kv_block_size_tokens", "chunkwise_engine_steps_total", "chunkwise_engine_busy_seconds_total",
        "chunkwise_engine_preemptions_total"}) {
    EXPECT_NE(before->body.find(std::string("# TYPE ") + name + " "), std::string::npos) << name;
  }
  auto value = [](const std::string& body, const std::string& line_prefix) -> double {
    const size_t at = body.find("\n" + line_prefix + " ");
    if (at == std::string::npos) return 0;
    return std::stod(body.substr(at + line_prefix.size() + 2));
  };
  auto r = post("/v1/completions", R"({"prompt":"w6","max_tokens":3,"temperature":0})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  expect_error(post("/v1/completions", R"({"prompt":"w6","n":3})"), 400, "invalid_request_error");
  const std::string ok200 = R"(chunkwise_requests_total{endpoint="/v1/completions",status="200"})";
  const std::string bad400 = R"(chunkwise_requests_total{endpoint="/v1/completions",status="400"})";
  // Responses are counted once written, which the client may see first: poll briefly.
  std::string after;
  eventually(
      [&] {
        auto m = client().Get("/metrics");
        after = m ? m->body : std::string();
        return value(after, bad400) == value(before->body, bad400) + 1 &&
               value(after, ok200) == value(before->body, ok200) + 1;
      },
      5.0);
  EXPECT_EQ(value(after, ok200), value(before->body, ok200) + 1) << after;
  EXPECT_EQ(value(after, bad400), value(before->body, bad400) + 1) << after;
  EXPECT_EQ(value(after, "chunkwise_generated_tokens_total"),
            value(before->body, "chunkwise_generated_tokens_total") +
                num(parse_json(r->body), {"usage", "completion_tokens"}));
  EXPECT_GT(value(after, "chunkwise_engine_steps_total"), value(before->body, "chunkwise_engine_steps_total"));
  EXPECT_GT(value(after, "chunkwise_kv_blocks_total"), 0);
  EXPECT_NE(after.find(R"(chunkwise_requests_total{endpoint="/metrics",status="200"})"), std::string::npos);
}

// Greedy server output == `chunkwise run --temp 0` (the same prompt tokenization and generation path).
void expect_same_as_run(const std::string& model, const std::vector<std::string>& prompts) {
  std::unique_ptr<Engine> engine = open_engine(model);
  std::unique_ptr<tok::Tokenizer> tok = load_tokenizer(model);
  ServerOptions o;
  o.model_id = "m";
  Server srv(o, tok.get(), engine.get());
  ASSERT_TRUE(srv.start().is_ok());
  httplib::Client c("127.0.0.1", srv.port());
  c.set_read_timeout(120);
  for (const std::string& prompt : prompts) {
    SCOPED_TRACE(prompt);
    auto run = testing::run_command(testing::chunkwise_binary() + " run -m " + testing::shell_quote(model) + " -p " +
                                    testing::shell_quote(prompt) + " -n 24 --temp 0 --json");
    ASSERT_EQ(run.exit_code, 0) << run.err;
    const std::string want = str(parse_json(run.out), {"text"});
    JsonWriter w;
    w.begin_object().key("prompt").value(prompt).key("max_tokens").value(24).key("temperature").value(0).end_object();
    auto r = c.Post("/v1/completions", w.str(), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(str(parse_json(r->body), {"choices", "0", "text"}), want);
    std::string streamed = w.str();
    streamed.pop_back();
    auto s = c.Post("/v1/completions", streamed + R"(,"stream":true})", "application/json");
    ASSERT_TRUE(s);
    EXPECT_EQ(read_stream(s->body, false).text, want);
  }
}

TEST(CompletionsVsRun, GreedyTextEqualsChunkwiseRun) {
  expect_same_as_run(tiny_path(), {"w1 w2 w3", "w40 w41 w42 w43 w44 w45", "hello there"});
}

TEST(CompletionsVsRun, ShippedModelGreedyTextEqualsChunkwiseRun) {
  const std::string shipped = std::string(CW_SOURCE_DIR) + "/models/chunkwise-tiny-q8_0.gguf";
  if (!std::filesystem::exists(shipped)) GTEST_SKIP() << shipped << " is absent";
  expect_same_as_run(shipped, {"The harbour is quiet in winter.", "Once upon a time"});
}

}  // namespace
}  // namespace cw::server
