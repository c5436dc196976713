// Small pieces shared by the server's handlers (internal to cw_server; includes httplib): OpenAI-style
// error bodies, JSON responses, and reading the request body as a JSON object.
#pragma once

#include <httplib.h>

#include <string_view>

#include "base/json.h"
#include "base/json_value.h"
#include "base/status.h"

namespace cw::server {

inline constexpr const char* kJsonType = "application/json";

// "authentication_error" (401), "not_found_error" (404), "server_error" (5xx except 503),
// "overloaded_error" (503), else "invalid_request_error".
const char* error_type(int status);

// The JSON text {"error":{"message":MESSAGE,"type":error_type(status),"code":status}}.
std::string error_json(int status, std::string_view message);

// Sets the response to that error body with `status`.
void set_error(httplib::Response& res, int status, std::string_view message);

// Sets a 200 JSON response.
void set_json(httplib::Response& res, const JsonWriter& w);

// The request body as a JSON object, or invalid_argument (one line) for a 400.
Result<JsonValue> parse_object(const httplib::Request& req);

}  // namespace cw::server
