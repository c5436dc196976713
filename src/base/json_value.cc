#include "base/json_value.h"

#include <cstdlib>
#include <cstring>

#include "base/utf8.h"

namespace cw {

class JsonParser {
 public:
  explicit JsonParser(std::string_view s) : s_(s) {}

  Status parse_document(JsonValue* out) {
    CW_RETURN_IF_ERROR(value(out, 0));
    skip_ws();
    if (i_ != s_.size()) return error("trailing characters");
    return Status::ok();
  }

 private:
  static constexpr int kMaxDepth = 256;

  Status error(const std::string& what) const {
    return invalid_argument("JSON: " + what + " at byte " + std::to_string(i_));
  }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool consume(std::string_view lit) {
    if (s_.substr(i_, lit.size()) != lit) return false;
    i_ += lit.size();
    return true;
  }

  Status value(JsonValue* v, int depth) {
    if (depth > kMaxDepth) return error("nesting too deep");
    skip_ws();
    if (i_ >= s_.size()) return error("unexpected end of input");
    char c = s_[i_];
    if (c == '{') return object(v, depth);
    if (c == '[') return array(v, depth);
    if (c == '"') {
      v->kind_ = JsonValue::Kind::kString;
      return string(&v->str_);
    }
    if (consume("null")) return Status::ok();
    if (consume("true")) {
      v->kind_ = JsonValue::Kind::kBool;
      v->b_ = true;
      return Status::ok();
    }
    if (consume("false")) {
      v->kind_ = JsonValue::Kind::kBool;
      return Status::ok();
    }
    return number(v);
  }

  Status number(JsonValue* v) {
    size_t start = i_;
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    auto digits = [&] {
      size_t b = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      return i_ > b;
    };
    const size_t int_begin = i_;
    if (!digits()) return error("invalid value");
    if (i_ - int_begin > 1 && s_[int_begin] == '0') return error("invalid number (leading zero)");  // RFC 8259
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (!digits()) return error("invalid number");
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!digits()) return error("invalid number");
    }
    std::string tmp(s_.substr(start, i_ - start));
    v->kind_ = JsonValue::Kind::kNumber;
    v->num_ = std::strtod(tmp.c_str(), nullptr);
    return Status::ok();
  }

  Status hex4(uint32_t* out) {
    if (i_ + 4 > s_.size()) return error("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
      else return error("bad \\u escape");
    }
    *out = v;
    return Status::ok();
  }

  Status string(std::string* out) {
    ++i_;  // opening quote
    while (true) {
      if (i_ >= s_.size()) return error("unterminated string");
      unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return Status::ok();
      }
      if (c < 0x20) return error("control character in string");
      if (c == '\\') {
        if (++i_ >= s_.size()) return error("unterminated escape");
        char e = s_[i_++];
        switch (e) {
          case '"': out->push_back('"'); break;
          case '\\': out->push_back('\\'); break;
          case '/': out->push_back('/'); break;
          case 'b': out->push_back('\b'); break;
          case 'f': out->push_back('\f'); break;
          case 'n': out->push_back('\n'); break;
          case 'r': out->push_back('\r'); break;
          case 't': out->push_back('\t'); break;
          case 'u': {
            uint32_t cp = 0;
            CW_RETURN_IF_ERROR(hex4(&cp));
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              uint32_t lo = 0;
              if (!consume("\\u")) return error("unpaired surrogate");
              CW_RETURN_IF_ERROR(hex4(&lo));
              if (lo < 0xDC00 || lo > 0xDFFF) return error("unpaired surrogate");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
              return error("unpaired surrogate");
            }
            utf8_append(*out, cp);
            break;
          }
          default: return error("bad escape");
        }
        continue;
      }
      size_t len = utf8_valid_prefix_len(s_.substr(i_));
      if (len == 0) return error("invalid UTF-8 in string");
      out->append(s_.substr(i_, len));
      i_ += len;
    }
  }

  Status array(JsonValue* v, int depth) {
    v->kind_ = JsonValue::Kind::kArray;
    ++i_;
    skip_ws();
    if (i_ < s_.size() && s_[i_] == ']') {
      ++i_;
      return Status::ok();
    }
    while (true) {
      v->items_.emplace_back();
      CW_RETURN_IF_ERROR(value(&v->items_.back(), depth + 1));
      skip_ws();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        return Status::ok();
      }
      return error("expected ',' or ']'");
    }
  }

  Status object(JsonValue* v, int depth) {
    v->kind_ = JsonValue::Kind::kObject;
    ++i_;
    skip_ws();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      return Status::ok();
    }
    while (true) {
      skip_ws();
      if (i_ >= s_.size() || s_[i_] != '"') return error("expected a key");
      std::string key;
      CW_RETURN_IF_ERROR(string(&key));
      skip_ws();
      if (i_ >= s_.size() || s_[i_] != ':') return error("expected ':'");
      ++i_;
      v->members_.emplace_back(std::move(key), JsonValue());
      CW_RETURN_IF_ERROR(value(&v->members_.back().second, depth + 1));
      skip_ws();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < s_.size() && s_[i_] == '}') {
        ++i_;
        return Status::ok();
      }
      return error("expected ',' or '}'");
    }
  }

  std::string_view s_;
  size_t i_ = 0;
};

Result<JsonValue> JsonValue::parse(std::string_view text) {
  JsonValue v;
  CW_RETURN_IF_ERROR(JsonParser(text).parse_document(&v));
  return v;
}

const JsonValue* JsonValue::get(std::string_view key) const {
  for (const auto& [k, v] : members_)
    if (k == key) return &v;
  return nullptr;
}

}  // namespace cw
