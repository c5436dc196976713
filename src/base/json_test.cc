#include "base/json.h"

#include <gtest/gtest.h>

namespace cw {
namespace {

TEST(Json, EscapesAndNests) {
  JsonWriter w;
  w.begin_object().key("a").value("x\"y\n\x01").key("n").value(int64_t{-3}).key("l").begin_array();
  w.value(1).value(true).null().end_array().key("f").value(0.5).end_object();
  EXPECT_EQ(w.str(), R"({"a":"x\"y\n\u0001","n":-3,"l":[1,true,null],"f":0.5})");
}

TEST(Json, InvalidUtf8BecomesReplacementChar) {
  std::string out;
  json_append_string(out, std::string("a\xff" "b\xe2\x82", 5));
  EXPECT_EQ(out, "\"a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD\"");
}

}  // namespace
}  // namespace cw

#include "base/json_value.h"

namespace cw {
namespace {

TEST(JsonValue, ParsesDocuments) {
  auto r = JsonValue::parse(R"( {"a": [1, -2.5e1, true, null], "s": "x\u00e9\ud83d\ude00\n", "o": {}} )");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const JsonValue& v = *r;
  ASSERT_TRUE(v.is_object());
  const JsonValue* a = v.get("a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->items().size(), 4u);
  EXPECT_EQ(a->items()[1].as_number(), -25.0);
  EXPECT_TRUE(a->items()[2].as_bool());
  EXPECT_TRUE(a->items()[3].is_null());
  EXPECT_EQ(v.get("s")->as_string(), "x\xC3\xA9\xF0\x9F\x98\x80\n");
  EXPECT_TRUE(v.get("o")->is_object());
  EXPECT_EQ(v.get("missing"), nullptr);
}

TEST(JsonValue, RejectsMalformedInput) {
  for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "\"abc", "01x", "[1] 2", "\"\\ud800\"", "nul", "\"\x01\"", "007", "-01", "[00]", "1.", "-"}) {
    auto r = JsonValue::parse(bad);
    EXPECT_FALSE(r.is_ok()) << bad;
  }
  for (const char* good : {"0", "-0", "0.5", "10", "-0e3", "1E+2"}) EXPECT_TRUE(JsonValue::parse(good).is_ok()) << good;
  std::string deep(1000, '[');
  EXPECT_FALSE(JsonValue::parse(deep).is_ok());
}

}  // namespace
}  // namespace cw
