// See openai_request.h.
#include "server/openai_request.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <string_view>
#include <utility>

namespace cw::server {
namespace {

constexpr double kMaxInt32 = 2147483647.0;

std::string quoted(std::string_view key) {
  std::string s = "\"";
  s.append(key).append("\"");
  return s;
}

std::string fmt(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

const char* kind_name(const JsonValue& v) {
  switch (v.kind()) {
    case JsonValue::Kind::kNull: return "null";
    case JsonValue::Kind::kBool: return "a boolean";
    case JsonValue::Kind::kNumber: return "a number";
    case JsonValue::Kind::kString: return "a string";
    case JsonValue::Kind::kArray: return "an array";
    case JsonValue::Kind::kObject: return "an object";
  }
  return "a value";
}

// The member, or nullptr when absent or null.
const JsonValue* field(const JsonValue& body, std::string_view key) {
  const JsonValue* v = body.get(key);
  return v == nullptr || v->is_null() ? nullptr : v;
}

// A number in [lo, hi] (the JSON reader gives no NaN; infinities and out-of-range values are refused).
Result<std::optional<double>> number(const JsonValue& body, std::string_view key, double lo, double hi) {
  const JsonValue* v = field(body, key);
  if (v == nullptr) return std::optional<double>();
  const std::string range = "a number in [" + fmt(lo) + ", " + fmt(hi) + "]";
  if (!v->is_number()) return invalid_argument(quoted(key) + " must be " + range + ", got " + kind_name(*v));
  const double x = v->as_number();
  if (!std::isfinite(x) || x < lo || x > hi)
    return invalid_argument(quoted(key) + " must be " + range + ", got " + fmt(x));
  return std::optional<double>(x);
}

// An integer-valued number in [lo, hi].
Result<std::optional<int64_t>> integer(const JsonValue& body, std::string_view key, double lo, double hi) {
  const JsonValue* v = field(body, key);
  if (v == nullptr) return std::optional<int64_t>();
  const std::string range = "an integer in [" + fmt(lo) + ", " + fmt(hi) + "]";
  if (!v->is_number()) return invalid_argument(quoted(key) + " must be " + range + ", got " + kind_name(*v));
  const double x = v->as_number();
  if (!std::isfinite(x) || std::floor(x) != x || x < lo || x > hi)
    return invalid_argument(quoted(key) + " must be " + range + ", got " + fmt(x));
  return std::optional<int64_t>(static_cast<int64_t>(x));
}

Result<std::optional<bool>> boolean(const JsonValue& body, std::string_view key) {
  const JsonValue* v = field(body, key);
  if (v == nullptr) return std::optional<bool>();
  if (v->kind() != JsonValue::Kind::kBool)
    return invalid_argument(quoted(key) + " must be a boolean, got " + kind_name(*v));
  return std::optional<bool>(v->as_bool());
}

Status read_prompt(const JsonValue& body, int64_t n_vocab, OpenAiRequest& r) {
  const JsonValue* p = field(body, "prompt");
  if (p == nullptr) return invalid_argument("missing field \"prompt\" (a string)");
  if (p->is_string()) {
    r.prompt = p->as_string();
    return Status::ok();
  }
  if (!p->is_array())
    return invalid_argument(std::string("\"prompt\" must be a string or an array of token ids, got ") + kind_name(*p));
  const auto& items = p->items();
  if (items.size() == 1 && items[0].is_string()) {
    r.prompt = items[0].as_string();
    return Status::ok();
  }
  if (items.empty()) return invalid_argument("\"prompt\" is an empty array");
  if (items[0].is_string())
    return invalid_argument("\"prompt\" holds several strings; one prompt per request (n = 1)");
  r.prompt_ids.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const JsonValue& t = items[i];
    const double x = t.is_number() ? t.as_number() : -1;
    if (!t.is_number() || !std::isfinite(x) || std::floor(x) != x || x < 0 || x >= static_cast<double>(n_vocab))
      return invalid_argument("\"prompt\"[" + std::to_string(i) + "] must be a token id in [0, " +
                              std::to_string(n_vocab) + ")");
    r.prompt_ids.push_back(static_cast<int32_t>(x));
  }
  return Status::ok();
}

Status read_messages(const JsonValue& body, OpenAiRequest& r) {
  const JsonValue* m = field(body, "messages");
  if (m == nullptr) return invalid_argument("missing field \"messages\" (an array of {\"role\", \"content\"})");
  if (!m->is_array()) return invalid_argument(std::string("\"messages\" must be an array, got ") + kind_name(*m));
  if (m->items().empty()) return invalid_argument("\"messages\" is empty");
  for (size_t i = 0; i < m->items().size(); ++i) {
    const JsonValue& msg = m->items()[i];
    const std::string where = "\"messages\"[" + std::to_string(i) + "]";
    if (!msg.is_object()) return invalid_argument(where + " must be an object {\"role\", \"content\"}");
    const JsonValue* role = msg.get("role");
    if (role == nullptr || !role->is_string()) return invalid_argument(where + ".role must be a string");
    ChatMessage out;
    out.role = role->as_string();
    if (out.role != "system" && out.role != "user" && out.role != "assistant")
      return invalid_argument(where + ".role must be \"system\", \"user\" or \"assistant\"");
    const JsonValue* content = msg.get("content");
    if (content == nullptr || content->is_null()) {
      if (out.role != "assistant") return invalid_argument(where + ".content is missing");
    } else if (content->is_string()) {
      out.content = content->as_string();
    } else if (content->is_array()) {
      for (size_t k = 0; k < content->items().size(); ++k) {
        const JsonValue& part = content->items()[k];
        const std::string pw = where + ".content[" + std::to_string(k) + "]";
        const JsonValue* type = part.is_object() ? part.get("type") : nullptr;
        const JsonValue* text = part.is_object() ? part.get("text") : nullptr;
        if (type == nullptr || !type->is_string() || type->as_string() != "text" || text == nullptr ||
            !text->is_string())
          return invalid_argument(pw + " must be {\"type\": \"text\", \"text\": STRING} (only text is supported)");
        out.content += text->as_string();
      }
    } else {
      return invalid_argument(where + ".content must be a string or an array of text parts");
    }
    r.messages.push_back(std::move(out));
  }
  return Status::ok();
}

Status read_stop(const JsonValue& body, OpenAiRequest& r) {
  const JsonValue* s = field(body, "stop");
  if (s == nullptr) return Status::ok();
  if (s->is_string()) {
    r.stop.push_back(s->as_string());
    return Status::ok();
  }
  if (!s->is_array()) return invalid_argument(std::string("\"stop\" must be a string or an array of strings, got ") + kind_name(*s));
  if (s->items().size() > 4)
    return invalid_argument("\"stop\" has " + std::to_string(s->items().size()) + " strings; at most 4");
  for (size_t i = 0; i < s->items().size(); ++i) {
    if (!s->items()[i].is_string()) return invalid_argument("\"stop\"[" + std::to_string(i) + "] must be a string");
    r.stop.push_back(s->items()[i].as_string());
  }
  return Status::ok();
}

}  // namespace

Result<OpenAiRequest> parse_openai_request(const JsonValue& body, bool chat, int64_t n_vocab) {
  OpenAiRequest r;
  r.chat = chat;
  if (const JsonValue* m = field(body, "model")) {
    if (!m->is_string()) return invalid_argument(std::string("\"model\" must be a string, got ") + kind_name(*m));
    r.model = m->as_string();
  }
  if (chat) {
    CW_RETURN_IF_ERROR(read_messages(body, r));
  } else {
    CW_RETURN_IF_ERROR(read_prompt(body, n_vocab, r));
  }

  CW_ASSIGN_OR_RETURN(auto n, integer(body, "n", -kMaxInt32, kMaxInt32));
  if (n && *n != 1) return invalid_argument("\"n\" must be 1 (one choice per request), got " + std::to_string(*n));
  if (!chat) {
    CW_ASSIGN_OR_RETURN(auto best_of, integer(body, "best_of", -kMaxInt32, kMaxInt32));
    if (best_of && *best_of != 1) return invalid_argument("\"best_of\" must be 1, got " + std::to_string(*best_of));
    CW_ASSIGN_OR_RETURN(auto echo, boolean(body, "echo"));
    if (echo && *echo) return invalid_argument("\"echo\": true is not supported");
  }

  CW_ASSIGN_OR_RETURN(auto max_tokens, integer(body, "max_tokens", 0, kMaxInt32));
  if (chat && !max_tokens) {
    CW_ASSIGN_OR_RETURN(max_tokens, integer(body, "max_completion_tokens", 0, kMaxInt32));
  }
  r.max_tokens = max_tokens;

  SamplingConfig& s = r.sampling;
  s.temperature = 1.0f;  // OpenAI's defaults: no truncation unless asked for
  s.top_k = 0;
  s.top_p = 1.0f;
  s.min_p = 0.0f;
  CW_ASSIGN_OR_RETURN(auto temperature, number(body, "temperature", 0, 2));
  if (temperature) s.temperature = static_cast<float>(*temperature);
  CW_ASSIGN_OR_RETURN(auto top_p, number(body, "top_p", 0, 1));
  if (top_p) s.top_p = static_cast<float>(*top_p);
  CW_ASSIGN_OR_RETURN(auto top_k, integer(body, "top_k", 0, kMaxInt32));
  if (top_k) s.top_k = static_cast<int>(*top_k);
  CW_ASSIGN_OR_RETURN(auto min_p, number(body, "min_p", 0, 1));
  if (min_p) s.min_p = static_cast<float>(*min_p);
  CW_ASSIGN_OR_RETURN(auto repeat_penalty, number(body, "repeat_penalty", 0, 10));
  if (repeat_penalty) {
    if (*repeat_penalty <= 0) return invalid_argument("\"repeat_penalty\" must be a number in (0, 10], got 0");
    s.repeat_penalty = static_cast<float>(*repeat_penalty);
  }
  CW_ASSIGN_OR_RETURN(auto presence, number(body, "presence_penalty", -2, 2));
  if (presence) s.presence_penalty = static_cast<float>(*presence);
  CW_ASSIGN_OR_RETURN(auto frequency, number(body, "frequency_penalty", -2, 2));
  if (frequency) s.frequency_penalty = static_cast<float>(*frequency);
  // Seeds: any integer a client's int64 or uint64 holds (a double rounds beyond 2^53, harmlessly).
  CW_ASSIGN_OR_RETURN(auto seed, number(body, "seed", -9223372036854775808.0, 18446744073709551615.0));
  if (seed) {
    if (std::floor(*seed) != *seed) return invalid_argument("\"seed\" must be an integer, got " + fmt(*seed));
    r.seed_given = true;
    s.seed = *seed < 0 ? static_cast<uint64_t>(static_cast<int64_t>(*seed))
             : *seed >= 18446744073709551615.0 ? std::numeric_limits<uint64_t>::max()
                                               : static_cast<uint64_t>(*seed);
  }

  CW_RETURN_IF_ERROR(read_stop(body, r));

  if (chat) {
    CW_ASSIGN_OR_RETURN(auto logprobs, boolean(body, "logprobs"));
    CW_ASSIGN_OR_RETURN(auto top, integer(body, "top_logprobs", 0, kMaxTopLogprobs));
    r.logprobs = logprobs.value_or(false);
    if (top && *top > 0 && !r.logprobs) return invalid_argument("\"top_logprobs\" needs \"logprobs\": true");
    r.top_logprobs = static_cast<int>(top.value_or(0));
  } else {
    CW_ASSIGN_OR_RETURN(auto logprobs, integer(body, "logprobs", 0, kMaxTopLogprobs));
    r.logprobs = logprobs.has_value();
    r.top_logprobs = static_cast<int>(logprobs.value_or(0));
  }

  CW_ASSIGN_OR_RETURN(auto stream, boolean(body, "stream"));
  r.stream = stream.value_or(false);
  if (const JsonValue* so = field(body, "stream_options")) {
    if (!so->is_object())
      return invalid_argument(std::string("\"stream_options\" must be an object, got ") + kind_name(*so));
    CW_ASSIGN_OR_RETURN(auto usage, boolean(*so, "include_usage"));
    if (usage.has_value() && !r.stream)
      return invalid_argument("\"stream_options\" needs \"stream\": true");
    r.include_usage = usage.value_or(false);
  }
  return r;
}

}  // namespace cw::server
