// See http_util.h.
#include "server/http_util.h"

#include <utility>

namespace cw::server {

const char* error_type(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 503: return "overloaded_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

std::string error_json(int status, std::string_view message) {
  JsonWriter w;
  w.begin_object().key("error").begin_object();
  w.key("message").value(message).key("type").value(error_type(status)).key("code").value(status);
  w.end_object().end_object();
  return w.str();
}

void set_error(httplib::Response& res, int status, std::string_view message) {
  res.status = status;
  res.set_content(error_json(status, message), kJsonType);
}

void set_json(httplib::Response& res, const JsonWriter& w) {
  res.status = 200;
  res.set_content(w.str(), kJsonType);
}

Result<JsonValue> parse_object(const httplib::Request& req) {
  if (req.body.empty()) return invalid_argument("the request body is empty; expected a JSON object");
  auto parsed = JsonValue::parse(req.body);
  if (!parsed.is_ok()) return invalid_argument("malformed JSON in the request body: " + parsed.status().message());
  if (!parsed->is_object()) return invalid_argument("the request body must be a JSON object");
  return std::move(parsed).value();
}

}  // namespace cw::server
