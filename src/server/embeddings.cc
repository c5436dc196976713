// See embeddings.h.
#include "server/embeddings.h"

#include <cmath>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "base/json.h"
#include "server/http_util.h"

namespace cw::server {
namespace {

constexpr size_t kMaxInputs = 2048;

}  // namespace

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                       static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Embeddings::Embeddings(const text::Embedder* embedder, const tok::Tokenizer* tokenizer,
                       std::shared_ptr<Admission> admission, std::string model_id)
    : embedder_(embedder), tokenizer_(tokenizer), admission_(std::move(admission)), model_id_(std::move(model_id)) {}

void Embeddings::handle(const httplib::Request& req, httplib::Response& res) {
  auto body = parse_object(req);
  if (!body.is_ok()) return set_error(res, 400, body.status().message());
  const JsonValue* model = body->get("model");
  if (model != nullptr && !model->is_null()) {
    if (!model->is_string()) return set_error(res, 400, "\"model\" must be a string");
    if (model->as_string() != model_id_)
      return set_error(res, 404, "the model '" + model->as_string() + "' does not exist (this server serves '" +
                                     model_id_ + "')");
  }
  const JsonValue* input = body->get("input");
  if (input == nullptr || input->is_null())
    return set_error(res, 400, "missing field \"input\" (a string or an array of strings)");
  std::vector<std::string_view> texts;
  if (input->is_string()) {
    texts.push_back(input->as_string());
  } else if (input->is_array()) {
    if (input->items().empty()) return set_error(res, 400, "\"input\" is an empty array");
    if (input->items().size() > kMaxInputs)
      return set_error(res, 400, "\"input\" has " + std::to_string(input->items().size()) + " items; at most " +
                                     std::to_string(kMaxInputs));
    for (size_t i = 0; i < input->items().size(); ++i) {
      const JsonValue& t = input->items()[i];
      if (t.is_number() || t.is_array())
        return set_error(res, 400, "\"input\" holds token ids; send text (token-id inputs are not supported)");
      if (!t.is_string()) return set_error(res, 400, "\"input\"[" + std::to_string(i) + "] must be a string");
      texts.push_back(t.as_string());
    }
  } else {
    return set_error(res, 400, "\"input\" must be a string or an array of strings");
  }
  for (size_t i = 0; i < texts.size(); ++i)
    if (texts[i].empty())
      return set_error(res, 400, input->is_string() ? std::string("\"input\" is an empty string")
                                                    : "\"input\"[" + std::to_string(i) + "] is an empty string");
  bool base64 = false;
  if (const JsonValue* f = body->get("encoding_format"); f != nullptr && !f->is_null()) {
    if (!f->is_string() || (f->as_string() != "float" && f->as_string() != "base64"))
      return set_error(res, 400, "\"encoding_format\" must be \"float\" or \"base64\"");
    base64 = f->as_string() == "base64";
  }
  const int64_t dim = embedder_->dim();
  if (const JsonValue* d = body->get("dimensions"); d != nullptr && !d->is_null()) {
    if (!d->is_number() || d->as_number() != static_cast<double>(dim))
      return set_error(res, 400, "\"dimensions\" must be " + std::to_string(dim) + ", this model's dimension");
  }

  if (!admission_->try_enter()) {
    res.set_header("Retry-After", "1");
    return set_error(res, 503, "the server is busy: " + std::to_string(admission_->limit()) +
                                   " requests are in flight; retry later");
  }
  std::vector<float> out;
  const Status s = embedder_->embed(texts, &out);
  admission_->leave();
  if (!s.is_ok()) return set_error(res, s.code() == StatusCode::kInvalidArgument ? 400 : 500, s.message());
  if (out.size() != texts.size() * static_cast<size_t>(dim))
    return set_error(res, 500, "the embedder returned " + std::to_string(out.size()) + " values for " +
                                   std::to_string(texts.size()) + " inputs of dimension " + std::to_string(dim));
  int64_t tokens = 0;
  for (std::string_view t : texts) tokens += static_cast<int64_t>(tokenizer_->encode(t, true, false).size());

  JsonWriter w;
  w.begin_object().key("object").value("list").key("data").begin_array();
  for (size_t i = 0; i < texts.size(); ++i) {
    const float* row = out.data() + i * static_cast<size_t>(dim);
    w.begin_object().key("object").value("embedding").key("index").value(static_cast<int64_t>(i));
    w.key("embedding");
    if (base64) {
      std::string bytes(static_cast<size_t>(dim) * sizeof(float), '\0');
      for (int64_t k = 0; k < dim; ++k) {  // little-endian float32
        uint32_t u;
        std::memcpy(&u, &row[k], sizeof u);
        for (int b = 0; b < 4; ++b) bytes[static_cast<size_t>(k) * 4 + b] = static_cast<char>((u >> (8 * b)) & 0xFF);
      }
      w.value(base64_encode(bytes));
    } else {
      w.begin_array();
      for (int64_t k = 0; k < dim; ++k) w.value(static_cast<double>(row[k]));
      w.end_array();
    }
    w.end_object();
  }
  w.end_array().key("model").value(model_id_);
  w.key("usage").begin_object().key("prompt_tokens").value(tokens).key("total_tokens").value(tokens).end_object();
  w.end_object();
  set_json(res, w);
}

}  // namespace cw::server
