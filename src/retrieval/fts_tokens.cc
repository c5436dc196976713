#include "retrieval/fts_tokens.h"

#include <sqlite3.h>

#include <climits>
#include <cstring>
#include <new>

#include "retrieval/fts_replay.h"

namespace cw::retrieval {
namespace {

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// The buffer is only ever written by FtsTokenizer::tokenize (FtsTokens is opaque), so it is not re-validated.
uint64_t get_varint(const unsigned char*& p) {
  uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    const unsigned b = *p++;
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (b < 0x80) return v;
  }
}

struct PackState {
  std::string* buf;
  int n_text;
  int prev_start = 0;
  int64_t n_tokens = 0;
};

// xToken for FtsTokenizer::tokenize: appends one token. A token the format cannot hold (offsets going
// backwards or outside the text; porter never produces one) abandons the tokens: the store then tokenizes.
int pack_token(void* ctx, int tflags, const char* token, int n_token, int start, int end) {
  auto* s = static_cast<PackState*>(ctx);
  if (start < s->prev_start || end < start || end > s->n_text || n_token < 0) return SQLITE_ERROR;
  put_varint(*s->buf, (static_cast<uint64_t>(start - s->prev_start) << 1) | (tflags != 0 ? 1u : 0u));
  if (tflags != 0) put_varint(*s->buf, static_cast<uint32_t>(tflags));
  put_varint(*s->buf, static_cast<uint64_t>(end - start));
  put_varint(*s->buf, static_cast<uint64_t>(n_token));
  s->buf->append(token, static_cast<size_t>(n_token));
  s->prev_start = start;
  ++s->n_tokens;
  return SQLITE_OK;
}

fts5_api* fts5_api_of(sqlite3* db) {
  fts5_api* api = nullptr;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, nullptr) != SQLITE_OK) return nullptr;
  sqlite3_bind_pointer(st, 1, static_cast<void*>(&api), "fts5_api_ptr", nullptr);
  sqlite3_step(st);
  sqlite3_finalize(st);
  return api != nullptr && api->iVersion >= 2 ? api : nullptr;
}

}  // namespace

int FtsTokens::replay(void* ctx, int (*x_token)(void*, int, const char*, int, int, int)) const {
  const auto* p = reinterpret_cast<const unsigned char*>(buf_.data()) + source_size_;
  int start = 0;
  for (int64_t i = 0; i < n_tokens_; ++i) {
    const uint64_t head = get_varint(p);
    const int flags = (head & 1) != 0 ? static_cast<int>(get_varint(p)) : 0;
    start += static_cast<int>(head >> 1);
    const int end = start + static_cast<int>(get_varint(p));
    const int n = static_cast<int>(get_varint(p));
    const char* token = reinterpret_cast<const char*>(p);
    p += n;
    if (const int rc = x_token(ctx, flags, token, n, start, end); rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

struct FtsTokenizer::Impl {
  fts5_tokenizer methods;   // the real porter tokenizer's
  Fts5Tokenizer* instance;  // a porter instance over unicode61, this tokenizer's own
  ~Impl() { methods.xDelete(instance); }
};

FtsTokenizer::~FtsTokenizer() { delete impl_; }

FtsTokens FtsTokenizer::tokenize(std::string_view text) {
  FtsTokens out;
  if (text.size() > static_cast<size_t>(INT_MAX)) return out;
  // The copy of the text, then the tokens: ~1.3x the text for prose (a token every ~6 bytes, ~3 bytes of
  // header and ~4.5 of token each).
  out.buf_.reserve(text.size() + text.size() * 3 / 2 + 16);
  const char* data = text.empty() ? "" : text.data();
  out.buf_.append(data, text.size());
  PackState state{&out.buf_, static_cast<int>(text.size())};
  const int rc = impl_->methods.xTokenize(impl_->instance, &state, FTS5_TOKENIZE_DOCUMENT, data,
                                          static_cast<int>(text.size()), pack_token);
  if (rc != SQLITE_OK) return FtsTokens();
  if (out.buf_.capacity() > out.buf_.size() + out.buf_.size() / 4) out.buf_.shrink_to_fit();
  out.source_size_ = text.size();
  out.n_tokens_ = state.n_tokens;
  out.ready_ = true;
  return out;
}

// The tokenizer registered as "porter" on the store's connection. Its instances are FTS5's handles
// (Fts5Tokenizer*, an opaque type FTS5 never looks into).
struct TokenReplay::Wrapper {
  TokenReplay* owner;
  Fts5Tokenizer* real;  // the real porter instance it delegates to
  bool replayable;      // created with the arguments FtsTokenizer uses, so pre-computed tokens are its tokens

  static int create(void* ctx, const char** args, int n_args, Fts5Tokenizer** out) {
    auto* owner = static_cast<TokenReplay*>(ctx);
    Fts5Tokenizer* real = nullptr;
    const int rc = owner->real_->xCreate(owner->real_context_, args, n_args, &real);
    if (rc != SQLITE_OK) return rc;
    auto* w = new (std::nothrow) Wrapper{owner, real, n_args == 1 && std::strcmp(args[0], kPorterBase) == 0};
    if (w == nullptr) {
      owner->real_->xDelete(real);
      return SQLITE_NOMEM;
    }
    *out = reinterpret_cast<Fts5Tokenizer*>(w);
    return SQLITE_OK;
  }

  static void destroy(Fts5Tokenizer* p) {
    auto* w = reinterpret_cast<Wrapper*>(p);
    w->owner->real_->xDelete(w->real);
    delete w;
  }

  static int tokenize(Fts5Tokenizer* p, void* ctx, int flags, const char* text, int n_text,
                      int (*x_token)(void*, int, const char*, int, int, int)) {
    auto* w = reinterpret_cast<Wrapper*>(p);
    const FtsTokens* pending = w->owner->pending_;
    if (pending != nullptr && w->replayable && flags == FTS5_TOKENIZE_DOCUMENT && pending->matches(text, n_text)) {
      w->owner->replayed_.fetch_add(1, std::memory_order_relaxed);
      return pending->replay(ctx, x_token);
    }
    return w->owner->real_->xTokenize(w->real, ctx, flags, text, n_text, x_token);
  }
};

TokenReplay::TokenReplay() : real_(std::make_unique<fts5_tokenizer>()) {}
TokenReplay::~TokenReplay() = default;

Result<std::unique_ptr<TokenReplay>> TokenReplay::install(sqlite3* db) {
  fts5_api* api = fts5_api_of(db);
  if (api == nullptr) return unimplemented("this SQLite has no FTS5 (version 2 API)");
  std::unique_ptr<TokenReplay> r(new TokenReplay());
  if (api->xFindTokenizer(api, "porter", &r->real_context_, r->real_.get()) != SQLITE_OK)
    return unimplemented("this SQLite's FTS5 has no porter tokenizer");
  static fts5_tokenizer kWrapper = {Wrapper::create, Wrapper::destroy, Wrapper::tokenize};
  // No destructor for the context: the Store owns it and closes the connection first.
  if (api->xCreateTokenizer(api, "porter", r.get(), &kWrapper, nullptr) != SQLITE_OK)
    return internal_error("cannot register the FTS5 tokenizer wrapper");
  return r;
}

Result<std::unique_ptr<FtsTokenizer>> TokenReplay::make_tokenizer() {
  const char* args[] = {kPorterBase};
  Fts5Tokenizer* instance = nullptr;
  if (real_->xCreate(real_context_, args, 1, &instance) != SQLITE_OK)
    return internal_error("cannot create an FTS5 porter tokenizer");
  return std::make_unique<FtsTokenizer>(new FtsTokenizer::Impl{*real_, instance});
}

}  // namespace cw::retrieval
