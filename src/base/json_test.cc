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
