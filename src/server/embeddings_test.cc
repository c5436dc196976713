// POST /v1/embeddings (issue 15) over the deterministic hashing embedder: the OpenAI shape, values equal
// to the embedder's, base64 decoding to the same floats, usage, each error, admission, and the route
// being unknown without an embedder.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "base/json.h"
#include "base/json_value.h"
#include "server/embeddings.h"
#include "server/http_server.h"
#include "support/spm_vocab.h"
#include "text/embedder.h"
#include "tokenizer/tokenizer.h"

namespace cw::server {
namespace {

const tok::Tokenizer& vocab() {
  static const std::unique_ptr<tok::Tokenizer> t = [] {
    auto r = tok::Tokenizer::from_gguf(testing::small_spm_vocab_file());
    CW_CHECK_MSG(r.is_ok(), r.status().to_string());
    return std::move(r).value();
  }();
  return *t;
}

JsonValue parse_json(const std::string& body) {
  auto j = JsonValue::parse(body);
  EXPECT_TRUE(j.is_ok()) << body;
  return j.is_ok() ? std::move(j).value() : JsonValue();
}

std::vector<uint8_t> base64_decode(const std::string& s) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
  };
  std::vector<uint8_t> out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    const int v = value(c);
    if (v < 0) break;  // '='
    acc = acc << 6 | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

TEST(Base64, KnownVectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\x00\x80", 3)), "/wCA");
}

class EmbeddingsTest : public ::testing::Test {
 protected:
  void start(ServerOptions o = {}) {
    o.model_id = "emb";
    server_ = std::make_unique<Server>(o, &vocab(), nullptr, &embedder_);
    ASSERT_TRUE(server_->start().is_ok());
  }
  httplib::Result post(const std::string& body) {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(30);
    return c.Post("/v1/embeddings", body, "application/json");
  }
  std::vector<float> direct(const std::vector<std::string_view>& texts) {
    std::vector<float> out;
    EXPECT_TRUE(embedder_.embed(texts, &out).is_ok());
    return out;
  }
  text::HashEmbedder embedder_{64, 3};
  std::unique_ptr<Server> server_;
};

TEST_F(EmbeddingsTest, FloatsEqualTheEmbedders) {
  start();
  auto r = post(R"({"model":"emb","input":["w1 w2 w3","the harbour is quiet"]})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const JsonValue j = parse_json(r->body);
  EXPECT_EQ(j.get("object")->as_string(), "list");
  EXPECT_EQ(j.get("model")->as_string(), "emb");
  const auto& data = j.get("data")->items();
  ASSERT_EQ(data.size(), 2u);
  const std::vector<float> want = direct({"w1 w2 w3", "the harbour is quiet"});
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(data[i].get("object")->as_string(), "embedding");
    EXPECT_EQ(data[i].get("index")->as_number(), static_cast<double>(i));
    const auto& e = data[i].get("embedding")->items();
    ASSERT_EQ(e.size(), 64u);
    for (size_t k = 0; k < 64; ++k) EXPECT_EQ(static_cast<float>(e[k].as_number()), want[i * 64 + k]) << i << " " << k;
  }
  const int64_t tokens = static_cast<int64_t>(vocab().encode("w1 w2 w3", true, false).size() +
                                              vocab().encode("the harbour is quiet", true, false).size());
  EXPECT_EQ(j.get("usage")->get("prompt_tokens")->as_number(), static_cast<double>(tokens));
  EXPECT_EQ(j.get("usage")->get("total_tokens")->as_number(), static_cast<double>(tokens));
  // One string, and dimensions equal to the model's.
  auto one = post(R"({"input":"w1 w2 w3","dimensions":64})");
  ASSERT_TRUE(one);
  ASSERT_EQ(one->status, 200) << one->body;
  EXPECT_EQ(parse_json(one->body).get("data")->items().size(), 1u);
}

TEST_F(EmbeddingsTest, Base64IsTheLittleEndianFloats) {
  start();
  auto r = post(R"({"input":["w5 w6"],"encoding_format":"base64"})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const JsonValue j = parse_json(r->body);
  const std::vector<uint8_t> bytes = base64_decode(j.get("data")->items()[0].get("embedding")->as_string());
  ASSERT_EQ(bytes.size(), 64u * 4);
  const std::vector<float> want = direct({"w5 w6"});
  for (size_t k = 0; k < 64; ++k) {
    const uint32_t u = bytes[4 * k] | bytes[4 * k + 1] << 8 | bytes[4 * k + 2] << 16 | uint32_t{bytes[4 * k + 3]} << 24;
    float f;
    std::memcpy(&f, &u, sizeof f);
    EXPECT_EQ(f, want[k]) << k;
  }
}

TEST_F(EmbeddingsTest, ErrorsAre400Or404) {
  start();
  std::string many = R"({"input":[)";
  for (int i = 0; i < 2049; ++i) many += std::string(i ? "," : "") + "\"x\"";
  many += "]}";
  for (const auto& [body, status, needle] : std::vector<std::tuple<std::string, int, std::string>>{
           {"", 400, "empty"},
           {"{", 400, "malformed JSON"},
           {"{}", 400, "missing field \"input\""},
           {R"({"input":null})", 400, "missing field \"input\""},
           {R"({"input":5})", 400, "\"input\" must be a string"},
           {R"({"input":""})", 400, "\"input\" is an empty string"},
           {R"({"input":["a",""]})", 400, "\"input\"[1] is an empty string"},
           {R"({"input":[]})", 400, "empty array"},
           {R"({"input":["a",{}]})", 400, "\"input\"[1] must be a string"},
           {R"({"input":[1,2,3]})", 400, "token ids"},
           {R"({"input":[[1,2]]})", 400, "token ids"},
           {many, 400, "at most 2048"},
           {R"({"input":"a","encoding_format":"int8"})", 400, "\"encoding_format\""},
           {R"({"input":"a","encoding_format":5})", 400, "\"encoding_format\""},
           {R"({"input":"a","dimensions":32})", 400, "\"dimensions\" must be 64"},
           {R"({"input":"a","dimensions":"64"})", 400, "\"dimensions\""},
           {R"({"input":"a","model":5})", 400, "\"model\" must be a string"},
           {R"({"input":"a","model":"text-embedding-3-small"})", 404, "does not exist"},
       }) {
    SCOPED_TRACE(body.substr(0, 80));
    auto r = post(body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, status) << r->body;
    const JsonValue j = parse_json(r->body);
    ASSERT_TRUE(j.get("error") != nullptr) << r->body;
    EXPECT_NE(j.get("error")->get("message")->as_string().find(needle), std::string::npos) << r->body;
  }
}

TEST_F(EmbeddingsTest, TheKeyIsRequired) {
  ServerOptions o;
  o.api_key = "sk-embed-key";
  start(o);
  auto r = post(R"({"input":"a"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
}

TEST(EmbeddingsRoute, UnknownWithoutAnEmbedder) {
  Server srv(ServerOptions{}, &vocab());
  ASSERT_TRUE(srv.start().is_ok());
  httplib::Client c("127.0.0.1", srv.port());
  auto r = c.Post("/v1/embeddings", R"({"input":"a"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_NE(r->body.find("unknown route"), std::string::npos) << r->body;
}

}  // namespace
}  // namespace cw::server
