// The strict request parser: llhttp plus the checks llhttp leaves to the
// application. The only includer of <llhttp.h>.
//
// Flow: the method token is read here first (llhttp 8.1 refuses methods it
// does not know, which would cost the connection; for those it is given a
// stand-in, "GET", whose framing rules are the same), unless the input starts
// with a method llhttp parses itself and its SP, which llhttp then reads along
// with the rest of the request line. Then every llhttp
// callback that marks an event (head complete, body bytes, message complete)
// returns HPE_PAUSED, so llhttp_execute stops right after it; the bytes it
// consumed are read again by HeadCheck / ChunkedCheck, the head is validated
// (FinishHead) and the event cross-checked against the second reading
// (CheckEvent) before Execute hands it to the Connection; the next Execute
// resumes. While a head is being read, the input given to llhttp is clipped
// to what the remaining limit allows, so an over-long line or header section
// is refused without ever being buffered past its limit.
//
// llhttp's only relaxed check is the version number (LENIENT_VERSION, set
// on the parser struct: 8.1 has no setter): HTTP/1.2 to HTTP/1.9 are served
// as HTTP/1.1 (RFC 9112 §2.3) and every other version gets 505 here.
#include "http/parser.h"

#include <llhttp.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "http/etag.h"
#include "http/fast_head.h"
#include "http/router.h"
#include "http/spare_list.h"
#include "http/syntax.h"

namespace kingx::http {
namespace {

Method MethodOf(uint8_t llhttp_method) {
  switch (llhttp_method) {
    case HTTP_GET: return Method::kGet;
    case HTTP_HEAD: return Method::kHead;
    case HTTP_PUT: return Method::kPut;
    case HTTP_DELETE: return Method::kDelete;
    case HTTP_POST: return Method::kPost;
    case HTTP_OPTIONS: return Method::kOptions;
    default: return Method::kOther;
  }
}

// The methods llhttp parses itself: the ones we implement, plus CONNECT
// (refused 501 + close: it turns the connection into a tunnel) and PRI (the
// HTTP/2 preface, refused 505). Any other token is given to llhttp as
// kStandInMethod and answered 501.
bool LlhttpParsesMethod(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "PUT" || m == "DELETE" || m == "POST" || m == "OPTIONS" ||
         m == "CONNECT" || m == "PRI";
}
constexpr std::string_view kStandInMethod = "GET";

}  // namespace

struct Parser::Callbacks {
  static Parser* Self(llhttp_t* p) { return static_cast<Parser*>(p->data); }

  static int OnMessageBegin(llhttp_t* p) {
    Parser* self = Self(p);
    self->head_started_ = true;
    self->ll_between_messages_ = false;
    return 0;
  }
  static int OnUrl(llhttp_t* p, const char* at, size_t n) {
    Parser* self = Self(p);
    // llhttp 8.1 lets HTAB and FF through in a request-target; nginx (and
    // RFC 9112 §3.2) accept no whitespace or control character there.
    if (HasSpaceOrControl(std::string_view(at, n))) {
      return self->Fail(400, "The request target contains a space, a tab or a control character.");
    }
    if (self->url_.len == 0) self->url_.off = static_cast<uint32_t>(self->store_.size());
    self->store_.append(at, n);
    self->url_.len += static_cast<uint32_t>(n);
    return 0;
  }
  static int OnUrlComplete(llhttp_t* p) {
    Self(p)->HintKey(KeyHintStage::kTarget);
    return 0;
  }
  static int OnVersion(llhttp_t* p, const char*, size_t) {
    Self(p)->has_version_ = true;
    return 0;
  }
  static int OnVersionComplete(llhttp_t* p) {
    Self(p)->line_done_ = true;
    return 0;
  }
  static int OnHeaderField(llhttp_t* p, const char* at, size_t n) {
    Parser* self = Self(p);
    for (size_t i = 0; i < n; ++i) {
      if (!IsTchar(static_cast<unsigned char>(at[i]))) {
        return self->Fail(400, "A header field name contains a character that is not allowed.");
      }
    }
    self->field_name_bytes_ += n;
    if (self->head_done_) {  // trailer field name: not kept, but bounded
      self->trailer_bytes_ += n;
      if (self->trailer_bytes_ > self->limits_.max_header_bytes) {
        return self->FailLimit(431, "The chunked trailer section is larger than the header limit.",
                               self->limits_.max_header_bytes);
      }
      return 0;
    }
    for (size_t i = 0; i < n; ++i) {
      if (self->field_name_len_ == sizeof(self->field_name_)) {
        self->field_name_long_ = true;
        break;
      }
      char c = at[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      self->field_name_[self->field_name_len_++] = c;
    }
    return 0;
  }
  static int OnHeaderFieldComplete(llhttp_t* p) { return Self(p)->OnHeaderFieldComplete(); }
  // Chunk extensions are parsed and ignored, but llhttp puts no bound on
  // them: count their bytes against the header limit.
  static int OnChunkExtension(llhttp_t* p, const char*, size_t n) {
    Parser* self = Self(p);
    self->trailer_bytes_ += n;
    if (self->trailer_bytes_ > self->limits_.max_header_bytes) {
      return self->FailLimit(400, "Chunk extensions are longer than allowed.", self->limits_.max_header_bytes);
    }
    return 0;
  }
  static int OnHeaderValue(llhttp_t* p, const char* at, size_t n) {
    Parser* self = Self(p);
    if (self->head_done_) {  // trailer field: not kept, but bounded
      self->trailer_bytes_ += n;
      if (self->trailer_bytes_ > self->limits_.max_header_bytes) {
        return self->FailLimit(431, "The chunked trailer section is larger than the header limit.",
                               self->limits_.max_header_bytes);
      }
      return 0;
    }
    if (self->current_ != kNoField) {
      self->store_.append(at, n);
      self->spans_[self->current_].len += static_cast<uint32_t>(n);
    }
    return 0;
  }
  static int OnHeaderValueComplete(llhttp_t* p) { return Self(p)->OnHeaderValueComplete(); }
  // The head is validated by FinishHead once HeadCheck has read the same
  // bytes: stop here.
  static int OnHeadersComplete(llhttp_t* p) {
    Parser* self = Self(p);
    self->head_done_ = true;
    self->pending_ = Event::kHead;
    if (self->hint_.len > 0) self->HintKey(KeyHintStage::kHead);
    // A request without a body (no Content-Length, no Transfer-Encoding, no
    // upgrade) ends with its head: llhttp reads its end at once, without a
    // byte more, and OnMessageComplete keeps it for the Execute after the
    // head's. Saves an llhttp_execute per such request.
    if (p->upgrade == 0 && (p->flags & (F_CHUNKED | F_TRANSFER_ENCODING | F_CONTENT_LENGTH)) == 0) return 0;
    return HPE_PAUSED;
  }
  static int OnChunkHeader(llhttp_t* p) { return Self(p)->OnChunkHeader(); }
  static int OnBody(llhttp_t* p, const char* at, size_t n) {
    // llhttp flushes an open span at the end of every execute call, also
    // when it is empty: pausing on that would stop the parser for nothing.
    if (n == 0) return 0;
    Parser* self = Self(p);
    self->pending_ = Event::kBody;
    self->pending_body_ = std::span<const char>(at, n);
    return HPE_PAUSED;
  }
  static int OnMessageComplete(llhttp_t* p) {
    Parser* self = Self(p);
    self->message_done_ = true;
    // What llhttp does next (llhttp__after_message_complete): back to the
    // start of a message when the connection persists, to its closed state
    // when not; an upgrade stops it (HPE_PAUSED_UPGRADE) until resumed.
    self->ll_between_messages_ = llhttp_should_keep_alive(p) != 0 && p->upgrade == 0;
    if (self->pending_ == Event::kHead) {
      self->end_pending_ = true;  // read with its head (above): the head's event goes first
    } else {
      self->pending_ = Event::kMessageEnd;
    }
    return HPE_PAUSED;
  }

  static const llhttp_settings_t* Settings() {
    static const llhttp_settings_t settings = [] {
      llhttp_settings_t s;
      llhttp_settings_init(&s);
      s.on_message_begin = OnMessageBegin;
      s.on_url = OnUrl;
      s.on_url_complete = OnUrlComplete;
      s.on_version = OnVersion;
      s.on_version_complete = OnVersionComplete;
      s.on_header_field = OnHeaderField;
      s.on_header_field_complete = OnHeaderFieldComplete;
      s.on_header_value = OnHeaderValue;
      s.on_header_value_complete = OnHeaderValueComplete;
      s.on_headers_complete = OnHeadersComplete;
      s.on_chunk_header = OnChunkHeader;
      s.on_chunk_extension_name = OnChunkExtension;
      s.on_chunk_extension_value = OnChunkExtension;
      s.on_body = OnBody;
      s.on_message_complete = OnMessageComplete;
      return s;
    }();
    return &settings;
  }
};

namespace {
llhttp_t* Ll(unsigned char* storage) { return reinterpret_cast<llhttp_t*>(storage); }
}  // namespace

Parser::Parser(const Limits& limits, Listener listener) : limits_(limits), listener_(listener) {
  static_assert(sizeof(llhttp_t) <= kLlhttpBytes, "grow Parser::kLlhttpBytes");
  static_assert(alignof(llhttp_t) <= 8);
  llhttp_t* ll = new (llhttp_) llhttp_t;
  llhttp_init(ll, HTTP_REQUEST, Callbacks::Settings());
  ll->data = this;
  // The version number only; FinishHead checks it (see the file comment).
  ll->lenient_flags |= LENIENT_VERSION;
  // One allocation that fits a typical head's kept values and key, instead
  // of a few growth steps per request (a Parser lives for one busy period).
  store_.reserve(256);
}

Parser::~Parser() { Ll(llhttp_)->~llhttp_t(); }

namespace {
SpareList<std::unique_ptr<Parser>>& SpareParsers() {
  thread_local SpareList<std::unique_ptr<Parser>> spares(Parser::kSpareParsers);
  return spares;
}
}  // namespace

std::unique_ptr<Parser> Parser::Take(const Limits& limits, Listener listener) {
  std::unique_ptr<Parser> p = SpareParsers().Take();
  if (p && &p->limits_ == &limits && p->listener_ == listener) {
    p->Restart();
    return p;
  }
  return std::make_unique<Parser>(limits, listener);
}

void Parser::GiveBack(std::unique_ptr<Parser> parser) {
  if (!parser || parser->InHead() || parser->InBody() || parser->failed_) return;  // freed
  parser->SetKeyHints(nullptr, nullptr);  // its owner may be gone before the next Take
  SpareParsers().Give(std::move(parser));
}

size_t Parser::Spares() { return SpareParsers().size(); }

// Back to the state of a new Parser, keeping the capacity of store_ and of
// the entity-tag lists. llhttp is initialised again only when its last
// message did not leave it at the start of the next one: a parser whose
// last request ended keep-alive (no upgrade) goes on exactly as it would
// have on that request's own connection, which every pipelined request
// already does.
void Parser::Restart() {
  ResetForNextMessage();
  if (!ll_between_messages_) {
    llhttp_t* ll = Ll(llhttp_);
    llhttp_init(ll, HTTP_REQUEST, Callbacks::Settings());
    ll->data = this;
    ll->lenient_flags |= LENIENT_VERSION;
    ll_between_messages_ = true;
  }
  failed_ = false;
  pending_ = Event::kNeedMore;
  pending_body_ = {};
}

void Parser::ResetForNextMessage() {
  std::vector<EntityTag> if_match = std::move(request_.if_match.tags);
  std::vector<EntityTag> if_none_match = std::move(request_.if_none_match.tags);
  // Built in place: an assignment from Request{} builds and copies a
  // temporary of the whole struct.
  request_.~Request();
  new (&request_) Request{};
  if_match.clear();
  if_none_match.clear();
  request_.if_match.tags = std::move(if_match);
  request_.if_none_match.tags = std::move(if_none_match);
  // Every Fail and Reject writes error_ whole; only its heap is dropped here.
  if (error_.location.capacity() > 15) std::string().swap(error_.location);
  store_.clear();
  url_ = Span{};
  hint_ = Span{};
  for (Span& s : spans_) s = Span{};
  std::fill(std::begin(counts_), std::end(counts_), 0);
  field_name_len_ = 0;
  field_name_bytes_ = 0;
  field_name_long_ = false;
  current_ = kNoField;
  has_version_ = line_done_ = false;
  head_started_ = head_done_ = message_done_ = rejected_ = fast_head_ = fast_body_ = false;
  fast_body_left_ = 0;
  head_bytes_ = fields_ = trailer_bytes_ = 0;
  body_declared_ = 0;
  head_check_.Reset();
  chunk_check_.Reset();
  body_delivered_ = 0;
  method_len_ = 0;
  method_done_ = method_known_ = false;
  end_pending_ = false;
}

// The key is found once, when the target is complete; the head stage
// repeats it. Only the plain form is hinted: a key with escapes would have to
// be decoded twice, and a wrong hint only costs a wasted prefetch.
namespace {
constexpr std::string_view kHintPrefix = "/v1/kv/";

// The length of a hintable key at the start of `rest` (the target past
// kHintPrefix): it ends at '?' or the target's end; an escape is not hinted.
size_t HintableKeyBytes(const char* key, size_t rest) {
  size_t n = 0;
  for (; n < rest && key[n] != '?'; ++n) {
    if (key[n] == '%') return 0;
  }
  return n;
}
}  // namespace

std::string_view Parser::PeekKey(std::span<const char> input) {
  const char* p = input.data();
  const size_t size = input.size();
  size_t key = 0;
  if (size >= 4 && std::memcmp(p, "GET ", 4) == 0) {
    key = 4;
  } else if (size >= 5 && std::memcmp(p, "HEAD ", 5) == 0) {
    key = 5;
  } else {
    return {};
  }
  if (size - key < kHintPrefix.size() || std::memcmp(p + key, kHintPrefix.data(), kHintPrefix.size()) != 0) return {};
  key += kHintPrefix.size();
  // The target ends at SP and the key at '?' (as HintableKeyBytes); a key
  // whose end is not in input yet is not named.
  for (size_t i = key; i < size; ++i) {
    if (p[i] == ' ' || p[i] == '?') return std::string_view(p + key, i - key);
    if (p[i] == '%') return {};
  }
  return {};
}

void Parser::HintKey(KeyHintStage stage) {
  if (hint_fn_ == nullptr) return;
  if (stage == KeyHintStage::kTarget) {
    constexpr std::string_view kPrefix = kHintPrefix;
    if (!method_done_ || !((method_len_ == 3 && std::memcmp(method_, "GET", 3) == 0) ||
                           (method_len_ == 4 && std::memcmp(method_, "HEAD", 4) == 0))) {
      return;
    }
    if (url_.len <= kPrefix.size() || std::memcmp(store_.data() + url_.off, kPrefix.data(), kPrefix.size()) != 0) {
      return;
    }
    // One pass over the key: it ends at '?'; an escape is not hinted.
    const char* key = store_.data() + url_.off + kPrefix.size();
    const size_t n = HintableKeyBytes(key, url_.len - kPrefix.size());
    if (n == 0) return;
    hint_ = Span{url_.off + static_cast<uint32_t>(kPrefix.size()), static_cast<uint32_t>(n)};
  }
  if (hint_.len > 0) hint_fn_(hint_ctx_, View(hint_), stage);
}

int Parser::Fail(int status, std::string_view detail) {
  if (!failed_) {
    error_ = ParseError{};
    error_.status = status;
    error_.detail = detail;
    failed_ = true;
  }
  return -1;
}

int Parser::FailLimit(int status, std::string_view detail, uint64_t limit) {
  if (!failed_) {
    Fail(status, detail);
    error_.limit = limit;
    error_.has_limit = true;
  }
  return -1;
}

void Parser::Reject(int status, std::string_view detail) {
  if (rejected_) return;  // the first reason wins
  rejected_ = true;
  error_ = ParseError{};
  error_.status = status;
  error_.detail = detail;
}

int Parser::OnHeaderFieldComplete() {
  if (++fields_ > limits_.max_header_fields) {
    return FailLimit(431, "The request has more header fields than allowed.", limits_.max_header_fields);
  }
  if (field_name_bytes_ == 0) return Fail(400, "A header field has an empty name.");
  field_name_bytes_ = 0;
  std::string_view name(field_name_, field_name_len_);
  field_name_len_ = 0;
  bool too_long = field_name_long_;
  field_name_long_ = false;
  current_ = kNoField;
  if (head_done_ || too_long) return 0;  // a trailer field, or a name we do not keep

  Field field = kNoField;
  if (name == "host") field = kHost;
  else if (name == "content-type") field = kContentType;
  else if (name == "transfer-encoding") field = kTransferEncoding;
  else if (name == "if-match") field = kIfMatch;
  else if (name == "if-none-match") field = kIfNoneMatch;
  else if (name == "expect") field = kExpect;
  else if (name == "user-agent") field = kUserAgent;
  else if (name == "referer") field = kReferer;
  else if (name == "x-request-id") field = kXRequestId;
  else if (name == "x-forwarded-for") field = kXForwardedFor;
  else if (name == "connection") field = kConnection;
  else if (name == "content-encoding") field = kContentEncoding;
  if (field == kNoField) return 0;

  if (counts_[field]++ > 0) {
    // Singletons: a second Host is a framing problem (RFC 9112 §3.2), a
    // second Transfer-Encoding or Content-Type is refused below; their
    // values are not kept twice. Lists: combine into one comma-separated
    // value at the end of store_ (RFC 9110 §5.3).
    if (field == kHost || field == kTransferEncoding || field == kContentType) return 0;
    Span old = spans_[field];
    if (store_.size() + old.len + 2 > 2 * limits_.max_header_bytes + 64) {
      return FailLimit(431, "The request header section is larger than allowed.", limits_.max_header_bytes);
    }
    std::string copy = store_.substr(old.off, old.len);
    spans_[field].off = static_cast<uint32_t>(store_.size());
    store_.append(copy);
    store_.append(", ");
    spans_[field].len = old.len + 2;
  } else {
    spans_[field].off = static_cast<uint32_t>(store_.size());
    spans_[field].len = 0;
  }
  current_ = field;
  return 0;
}

int Parser::OnHeaderValueComplete() {
  if (current_ != kNoField) {
    // llhttp skips leading whitespace; trailing OWS is not part of the value.
    Span& s = spans_[current_];
    while (s.len > 0 && (store_[s.off + s.len - 1] == ' ' || store_[s.off + s.len - 1] == '\t')) {
      --s.len;
      store_.pop_back();
    }
  }
  current_ = kNoField;
  return 0;
}

int Parser::OnChunkHeader() {
  uint64_t chunk = Ll(llhttp_)->content_length;
  if (chunk > limits_.max_body_bytes || body_declared_ > limits_.max_body_bytes - chunk) {
    return FailLimit(413, "The chunked request body is larger than the maximum value size.",
                     limits_.max_body_bytes);
  }
  body_declared_ += chunk;
  return 0;
}

// The head is complete and HeadCheck agrees with llhttp about its bytes.
// Framing problems fail the request (close); request-level ones Reject it
// (answered by the core, connection kept).
// ValidHost, remembering the last host it accepted (validity depends on
// the bytes alone): a keep-alive client names the same host in every request.
bool Parser::HostIsValid(std::string_view host) {
  if (!host.empty() && host.size() == valid_host_len_ && std::memcmp(host.data(), valid_host_, host.size()) == 0) {
    return true;
  }
  if (!ValidHost(host)) return false;
  if (host.size() <= sizeof(valid_host_)) {
    std::memcpy(valid_host_, host.data(), host.size());
    valid_host_len_ = static_cast<uint8_t>(host.size());
  }
  return true;
}

bool Parser::FinishHead() {
  llhttp_t* ll = Ll(llhttp_);
  HeadFacts f;
  f.protocol_is_http = head_check_.protocol_is_http();
  f.http_major = ll->http_major;
  f.http_minor = ll->http_minor;
  f.connect = method_known_ && ll->method == HTTP_CONNECT;
  f.method = method_known_ ? MethodOf(ll->method) : Method::kOther;
  f.chunked = (ll->flags & F_CHUNKED) != 0;
  f.has_length = (ll->flags & F_CONTENT_LENGTH) != 0;
  f.content_length = ll->content_length;
  // A message that ended with its head had llhttp's answer taken at its end
  // (OnMessageComplete: no upgrade there), in the same llhttp state.
  f.ll_keep_alive = end_pending_ ? ll_between_messages_ : llhttp_should_keep_alive(ll) != 0;
  return FinishHeadWith(f);
}

bool Parser::FinishHeadWith(const HeadFacts& f) {
  // --- framing: any failure here closes the connection ---
  if (!has_version_) {
    Fail(400, "HTTP/0.9-style request lines (no HTTP version) are not supported.");
    return false;
  }
  if (!f.protocol_is_http) {
    Fail(400, "The protocol of the request line is not HTTP.");
    return false;
  }
  if (f.http_major != 1) {
    Fail(505, "Only HTTP/1.x is supported (1.0 and 1.1; a higher 1.x minor version is served as 1.1).");
    return false;
  }
  const uint8_t minor = f.http_minor == 0 ? 0 : 1;
  if (counts_[kHost] > 1) {
    Fail(400, "The request has more than one Host header field.");
    return false;
  }
  if (minor == 1 && counts_[kHost] == 0) {
    Fail(400, "An HTTP/1.1 request must carry a Host header field.");
    return false;
  }
  if (counts_[kHost] == 1 && !HostIsValid(View(spans_[kHost]))) {
    Fail(400, "The Host header field is not a valid host name.");
    return false;
  }
  // CONNECT turns the connection into a tunnel in the client's mind: what
  // follows is not HTTP, so it cannot be answered and skipped.
  if (f.connect) {
    Fail(501, "CONNECT is not supported.");
    return false;
  }
  if (counts_[kTransferEncoding] > 0) {
    if (minor == 0) {
      Fail(400, "Transfer-Encoding is not allowed in an HTTP/1.0 request.");
      return false;
    }
    if (counts_[kTransferEncoding] > 1) {
      Fail(400, "The request has more than one Transfer-Encoding field.");
      return false;
    }
    if (!EqualsIgnoreCase(View(spans_[kTransferEncoding]), "chunked")) {
      Fail(501, "The only supported transfer coding is exactly \"chunked\".");
      return false;
    }
  }
  const bool chunked = f.chunked;
  const bool has_length = f.has_length;
  if (has_length && f.content_length > limits_.max_body_bytes) {
    FailLimit(413, "The request body is larger than the maximum value size.", limits_.max_body_bytes);
    return false;
  }

  // --- the request as the handler will see it ---
  Request& r = request_;
  r.method = f.method;
  r.method_name = method_token();
  r.http_minor = minor;
  // Connection options are read here (llhttp 8.1 misses "close" followed by
  // a tab); llhttp must agree that the connection may persist.
  const ConnectionOptions options = ParseConnection(View(spans_[kConnection]));
  const bool persistent = minor == 1 ? !options.close : (options.keep_alive && !options.close);
  r.keep_alive = persistent && f.ll_keep_alive;
  r.chunked = chunked;
  r.content_length = (has_length && !chunked) ? f.content_length : 0;

  // --- request-level checks: answered by the core, framing stays intact ---
  if (r.method == Method::kOther) Reject(501, "This request method is not implemented by this server.");
  const bool asterisk = View(url_) == "*";
  if (asterisk && r.method != Method::kOptions) {
    Reject(400, "The asterisk-form request target (\"*\") is only valid for OPTIONS.");
  }
  if (minor == 1 && counts_[kExpect] > 0) {
    if (EqualsIgnoreCase(View(spans_[kExpect]), "100-continue")) {
      r.expect_continue = true;
    } else {
      Reject(417, "The only supported expectation is \"100-continue\".");
    }
  }
  if (counts_[kContentType] > 1) Reject(400, "The request has more than one Content-Type field.");
  if (counts_[kIfMatch] > 0 && !ParseEntityTags(View(spans_[kIfMatch]), &r.if_match)) {
    Reject(400, "The If-Match header field is not a valid entity-tag list.");
  }
  if (counts_[kIfNoneMatch] > 0 && !ParseEntityTags(View(spans_[kIfNoneMatch]), &r.if_none_match)) {
    Reject(400, "The If-None-Match header field is not a valid entity-tag list.");
  }
  if (asterisk && !rejected_) {
    // OPTIONS * (RFC 9110 §9.3.7): what the server as a whole implements.
    rejected_ = true;
    error_ = ParseError{};
    error_.status = 200;
    error_.allow = kServerMethods;
  }
  // The decoded key is appended to store_, which also holds the target it
  // is decoded from: reserve first so the append cannot move the source
  // (a decoded key is never longer than its encoded form).
  store_.reserve(store_.size() + url_.len);
  size_t key_off = store_.size();
  if (!rejected_) {
    // RouteRequest fills the error it returns from a fresh ParseError.
    if (!RouteRequest(View(url_), r.method, limits_, &r.route, &store_, &error_, listener_)) rejected_ = true;
  }
  if (!rejected_ && r.route == Route::kKv && r.method == Method::kPut) {
    // A PUT with no framing at all has, by RFC 9112 §6.3, an empty body; but
    // a client or proxy that lost the header would then overwrite a value
    // with nothing, so it must say how long its value is (RFC 9110 §15.5.12),
    // as nginx's DAV module and S3 require. The request carries no body, so
    // the connection stays usable.
    // A stored value is served back as stored: a content coding we would
    // drop is refused before the body (RFC 9110 §15.5.16).
    const std::string_view coding = TrimOws(View(spans_[kContentEncoding]));
    if (!has_length && !chunked) {
      Reject(411, "A PUT must carry Content-Length (0 for an empty value) or Transfer-Encoding: chunked.");
    } else if (counts_[kContentEncoding] > 0 && !EqualsIgnoreCase(coding, "identity")) {
      Reject(415, "Content-Encoding is not supported on PUT: send the value as it is to be stored.");
    } else if (spans_[kContentType].len > limits_.max_content_type_bytes) {
      Reject(431, "The Content-Type field is longer than a stored Content-Type may be.");
      error_.limit = limits_.max_content_type_bytes;
      error_.has_limit = true;
    }
  }
  // Views last: store_ no longer grows for this message.
  if (!rejected_ && r.route == Route::kKv) r.key = std::string_view(store_).substr(key_off);
  r.target = View(url_);
  r.content_type = View(spans_[kContentType]);
  r.host = View(spans_[kHost]);
  r.user_agent = View(spans_[kUserAgent]);
  r.referer = View(spans_[kReferer]);
  r.x_request_id = View(spans_[kXRequestId]);
  r.x_forwarded_for = View(spans_[kXForwardedFor]);
  return true;
}

Parser::Step Parser::ErrorStep(Step step) {
  step.event = Event::kError;
  step.body = {};
  return step;
}

// The common start of a message: no byte of its method read yet (empty
// lines before it may have been) and the input begins with a method llhttp
// parses itself followed by its SP. Then the token is noted here without
// consuming it: llhttp reads it with the rest of the request line, and
// HeadCheck with everything llhttp consumed, in one call each instead of
// three. Both readings are independent of how the input is split; a framing
// error HeadCheck finds replaces whatever a callback reported in the same
// llhttp call; and llhttp's state after the last message (closed, or
// stopped by an upgrade) shows at the first byte, which Execute's loop
// handles as ReadMethod does. So the outcome (request, errors, head bytes)
// is the one of the byte-wise path. Returns false when this is not that
// case (nothing changed then).
bool Parser::NoteLeadingMethod(std::span<const char> data) {
  if (method_len_ != 0) return false;
  size_t n = 0;
  for (std::string_view m : {std::string_view("GET "), std::string_view("HEAD "), std::string_view("PUT "),
                             std::string_view("DELETE ")}) {
    if (data.size() >= m.size() && std::memcmp(data.data(), m.data(), m.size()) == 0) {
      n = m.size() - 1;
      break;
    }
  }
  if (n == 0) return false;
  std::memcpy(method_, data.data(), n);
  method_len_ = static_cast<uint8_t>(n);
  method_done_ = method_known_ = true;
  head_started_ = true;
  return true;
}

// Reads the method token (and the empty lines before it) from data[*pos..]
// until the SP after it, then starts llhttp on the token (or its stand-in).
// Returns false when the request failed.
bool Parser::ReadMethod(std::span<const char> data, size_t* pos) {
  // The token's bytes after its first go to HeadCheck in one piece, when
  // the token or the input ends: HeadCheck objects only to a byte after a
  // CR, and each of them follows a token byte. Every other byte (empty
  // lines, the first token byte, a byte refused below) it reads on its own
  // first, so errors come in the order of the bytes.
  size_t unscanned = *pos;  // data[unscanned, *pos): token bytes HeadCheck has not read
  const auto scan = [&](size_t to) {
    const bool ok = to == unscanned || head_check_.Scan(data.subspan(unscanned, to - unscanned));
    unscanned = to;
    if (!ok) Fail(400, head_check_.error());
    return ok;
  };
  while (*pos < data.size()) {
    const char c = data[*pos];
    if (c == ' ' && method_len_ > 0) {
      if (!scan(*pos)) return false;
      // The SP itself goes to llhttp with the rest of the request line.
      method_done_ = true;
      const std::string_view token(method_, method_len_);
      method_known_ = LlhttpParsesMethod(token);
      const std::string_view fed = method_known_ ? token : kStandInMethod;
      llhttp_t* ll = Ll(llhttp_);
      llhttp_errno_t err = llhttp_execute(ll, fed.data(), fed.size());
      if (err == HPE_PAUSED_UPGRADE) {
        // The previous request asked for an Upgrade, which is ignored: this
        // is the next HTTP/1.1 request (llhttp stopped before its first byte).
        llhttp_resume_after_upgrade(ll);
        err = llhttp_execute(ll, fed.data(), fed.size());
      }
      if (err != HPE_OK) {
        Fail(400, "Malformed HTTP/1.1 request.");
        return false;
      }
      return true;
    }
    const bool empty_line = method_len_ == 0 && (c == '\r' || c == '\n');
    if (method_len_ == 0 || !IsMethodChar(c)) {
      if (!scan(*pos) || !scan(*pos + 1)) return false;
    }
    ++*pos;
    ++head_bytes_;
    request_.head_bytes = head_bytes_;
    if (empty_line) {
      if (head_bytes_ > limits_.max_request_line_bytes) {
        FailLimit(400, "Too many empty lines before the request line.", limits_.max_request_line_bytes);
        return false;
      }
      continue;
    }
    if (!IsMethodChar(c)) {
      Fail(400, "The request line does not start with a method token (capital letters, '-' and '_').");
      return false;
    }
    if (method_len_ == kMaxMethodBytes) {
      Fail(400, "The request method token is longer than any method this server knows.");
      return false;
    }
    method_[method_len_++] = c;
    head_started_ = true;
  }
  return scan(*pos);
}

// Gives the bytes llhttp just consumed to the second reading. Returns false
// when the request failed. A framing error found here replaces one a
// callback reported during the same llhttp_execute: llhttp stops at a
// callback's error, so the bytes read here all come before it, and the
// error reported is the first in the byte stream however the input is split.
bool Parser::CheckConsumed(std::span<const char> bytes, bool in_head) {
  if (in_head) {
    if (!head_check_.Scan(bytes)) {
      failed_ = false;
      Fail(400, head_check_.error());
      return false;
    }
    if (head_check_.longest_field_line() > limits_.max_header_line_bytes) {
      failed_ = false;
      FailLimit(431, "A header field line is longer than allowed.", limits_.max_header_line_bytes);
      return false;
    }
    return true;
  }
  if (request_.chunked && !chunk_check_.Scan(bytes)) {
    failed_ = false;
    Fail(400, chunk_check_.error());
    return false;
  }
  return true;
}

// Both readings of a chunked body must put the body bytes and the message
// end at the same offsets. Returns false when the request failed.
bool Parser::CheckEvent() {
  if (!request_.chunked) return true;
  constexpr std::string_view kDisagree =
      "The chunked body's framing is ambiguous (its data and its end cannot be told apart).";
  if (pending_ == Event::kBody) {
    const size_t n = pending_body_.size();
    if (chunk_check_.trailing_data() < n || chunk_check_.data_bytes() != body_delivered_ + n) {
      Fail(400, kDisagree);
      return false;
    }
    body_delivered_ += n;
  } else if (pending_ == Event::kMessageEnd) {
    if (!chunk_check_.done() || chunk_check_.data_bytes() != body_delivered_) {
      Fail(400, kDisagree);
      return false;
    }
  }
  return true;
}

Parser::Step Parser::Execute(std::span<const char> data) {
  Step step;
  if (failed_) return ErrorStep(step);
  if (end_pending_) {
    // The end of a message without a body, read with its head.
    end_pending_ = false;
    step.event = Event::kMessageEnd;
    return step;
  }
  if (message_done_) ResetForNextMessage();
  if (fast_body_) return FastBodyStep(data);
  llhttp_t* ll = Ll(llhttp_);
  // llhttp marks an open span (body, header value) by a non-null start
  // pointer that it restarts at each call's first byte: a null `data` would
  // silently close the span and the next span callback would get a null
  // start. Never pass one.
  static const char kNothing[1] = {0};
  if (data.data() == nullptr) data = std::span<const char>(kNothing, 0);
  if (fast_heads_ && ll_between_messages_ && !head_started_ && head_bytes_ == 0 && TakeFastHead(data, &step)) {
    return step;
  }
  size_t pos = 0;
  if (!method_done_ && !NoteLeadingMethod(data)) {
    const bool ok = ReadMethod(data, &pos);
    step.consumed = pos;
    if (!ok) return ErrorStep(step);
    if (!method_done_) return step;  // all consumed, the token goes on
  }
  for (;;) {
    const char* base = data.data() + pos;
    size_t len = data.size() - pos;
    bool clipped = false;
    const bool in_head = !head_done_;
    if (in_head) {
      // Offer llhttp at most what the applicable limit still allows: the
      // request line's own limit until it is complete (llhttp reports the
      // version complete on its last digit), then the whole head's.
      size_t limit = line_done_ ? limits_.max_header_bytes
                                : std::min(limits_.max_request_line_bytes, limits_.max_header_bytes);
      size_t room = head_bytes_ < limit ? limit - head_bytes_ : 0;
      if (len > room) {
        len = room;
        clipped = true;
      }
    }
    pending_ = Event::kNeedMore;
    llhttp_errno_t err = llhttp_execute(ll, base, len);
    size_t used = len;
    if (err != HPE_OK) {
      const char* at = llhttp_get_error_pos(ll);
      used = at ? static_cast<size_t>(at - base) : 0;
    }
    if (in_head) {
      // Until the head completes (llhttp pauses right there), every byte
      // consumed is a head byte.
      head_bytes_ += used;
      request_.head_bytes = head_bytes_;
    }
    pos += used;
    step.consumed = pos;
    if (!CheckConsumed(std::span<const char>(base, used), in_head)) return ErrorStep(step);
    if (in_head && err != HPE_OK && err != HPE_PAUSED && used < len) {
      // llhttp refused the byte at `used`: if the second reading refuses it
      // too (a bare CR ending the request line), say so rather than
      // whatever llhttp's state made of it.
      if (!head_check_.Scan(std::span<const char>(base + used, 1))) {
        Fail(400, head_check_.error());
        return ErrorStep(step);
      }
    }
    switch (err) {
      case HPE_OK:
        if (failed_) return ErrorStep(step);
        if (!clipped) return step;  // all input consumed, no event
        // The limit's worth of bytes is consumed and the line or head is
        // still not complete: one more byte would exceed it.
        if (!line_done_ && head_bytes_ >= limits_.max_request_line_bytes) {
          FailLimit(414, "The request line is longer than allowed.", limits_.max_request_line_bytes);
          return ErrorStep(step);
        }
        if (head_bytes_ >= limits_.max_header_bytes) {
          FailLimit(431, "The request header section is larger than allowed.", limits_.max_header_bytes);
          return ErrorStep(step);
        }
        continue;  // the request line ended inside the clipped part: go on with the header limit
      case HPE_PAUSED:
        llhttp_resume(ll);
        if (pending_ == Event::kHead && !FinishHead()) return ErrorStep(step);
        if (!CheckEvent()) return ErrorStep(step);
        step.event = pending_;
        step.body = pending_ == Event::kBody ? pending_body_ : std::span<const char>();
        return step;
      case HPE_PAUSED_UPGRADE:
        // Upgrade is ignored (RFC 9110 §7.8: a server may ignore it); what
        // follows is the next HTTP/1.1 request.
        llhttp_resume_after_upgrade(ll);
        continue;
      case HPE_PAUSED_H2_UPGRADE:
        Fail(505, "HTTP/2 is not supported on this port (HTTP/1.1 only).");
        return ErrorStep(step);
      case HPE_INVALID_VERSION:
        Fail(505, "Only HTTP/1.x is supported (1.0 and 1.1; a higher 1.x minor version is served as 1.1).");
        return ErrorStep(step);
      case HPE_INVALID_TRANSFER_ENCODING:
        if (head_done_) {
          Fail(400, "Transfer-Encoding is not allowed in the trailer section.");
        } else {
          Fail(501, "The only supported transfer coding is exactly \"chunked\".");
        }
        return ErrorStep(step);
      case HPE_UNEXPECTED_CONTENT_LENGTH:
        Fail(400, "Content-Length is duplicated or combined with Transfer-Encoding.");
        return ErrorStep(step);
      case HPE_INVALID_CONTENT_LENGTH:
        Fail(400, "The Content-Length field is not a valid length.");
        return ErrorStep(step);
      case HPE_INVALID_CHUNK_SIZE:
        Fail(400, "Malformed chunked body framing.");
        return ErrorStep(step);
      default:
        Fail(400, "Malformed HTTP/1.1 request.");
        return ErrorStep(step);
    }
  }
}

// A head the recogniser read: the state that llhttp and its callbacks leave
// after reading the same bytes (they end a request without a body right at
// its head: kHead now, kMessageEnd on the next call), with llhttp itself
// still at the start of a message, where a persistent message's end puts it.
// The values go to store_ in the order the callbacks would append them.
bool Parser::TakeFastHead(std::span<const char> data, Step* step) {
  const size_t max_bytes =
      std::min({limits_.max_request_line_bytes, limits_.max_header_bytes, limits_.max_header_line_bytes});
  FastHead fh;
  const std::string_view in(data.data(), data.size());
  if (!RecogniseFastHead(in, max_bytes, limits_.max_header_fields, &fh)) return false;
  ++fast_heads_taken_;
  fast_head_ = true;
  const bool put = fh.verb == FastHead::Verb::kPut;
  const std::string_view method = fh.verb == FastHead::Verb::kHead ? "HEAD" : put ? "PUT" : "GET";
  std::memcpy(method_, method.data(), method.size());
  method_len_ = static_cast<uint8_t>(method.size());
  method_done_ = method_known_ = true;
  head_started_ = true;
  url_ = Span{static_cast<uint32_t>(store_.size()), fh.target_len};
  store_.append(in.substr(fh.target_off, fh.target_len));
  HintKey(KeyHintStage::kTarget);
  has_version_ = line_done_ = true;
  for (size_t i = 0; i < fh.value_count; ++i) {
    const FastHead::Value& v = fh.values[i];
    Field field = kNoField;
    switch (v.field) {
      case FastHead::Field::kHost: field = kHost; break;
      case FastHead::Field::kUserAgent: field = kUserAgent; break;
      case FastHead::Field::kReferer: field = kReferer; break;
      case FastHead::Field::kXRequestId: field = kXRequestId; break;
      case FastHead::Field::kXForwardedFor: field = kXForwardedFor; break;
      case FastHead::Field::kConnection: field = kConnection; break;
      case FastHead::Field::kContentType: field = kContentType; break;
    }
    spans_[field] = Span{static_cast<uint32_t>(store_.size()), v.len};
    store_.append(in.substr(v.off, v.len));
    counts_[field] = 1;
  }
  fields_ = fh.field_lines;
  head_bytes_ = fh.head_bytes;
  request_.head_bytes = head_bytes_;
  head_done_ = true;
  // A message without a body ends with its head, as llhttp reads it
  // (OnHeadersComplete); a PUT's body follows (FastBodyStep), and one of
  // length 0 ends at once, as llhttp's does.
  fast_body_ = put && fh.content_length > 0;
  fast_body_left_ = fh.content_length;
  message_done_ = end_pending_ = !fast_body_;
  if (hint_.len > 0) HintKey(KeyHintStage::kHead);
  step->consumed = fh.head_bytes;
  HeadFacts f;
  f.method = fh.verb == FastHead::Verb::kHead ? Method::kHead : put ? Method::kPut : Method::kGet;
  f.has_length = put;
  f.content_length = fh.content_length;
  if (!FinishHeadWith(f)) {
    *step = ErrorStep(*step);
    return true;
  }
  step->event = Event::kHead;
  return true;
}

// The body after a PUT head the recogniser read, framed by its
// Content-Length: the events llhttp gives for it (kBody with what arrived of
// it, kNeedMore while nothing did, then kMessageEnd consuming nothing), so
// that pipelined bytes after it are left for the next request.
Parser::Step Parser::FastBodyStep(std::span<const char> data) {
  Step step;
  if (fast_body_left_ == 0) {
    fast_body_ = false;
    message_done_ = true;
    step.event = Event::kMessageEnd;
    return step;
  }
  const size_t n = static_cast<size_t>(std::min<uint64_t>(fast_body_left_, data.size()));
  if (n == 0) return step;
  fast_body_left_ -= n;
  step.consumed = n;
  step.event = Event::kBody;
  step.body = data.first(n);
  return step;
}

std::string_view Parser::protocol_so_far() const {
  if (fast_head_) return "HTTP/1.1";
  const llhttp_t* ll = reinterpret_cast<const llhttp_t*>(llhttp_);
  if (!line_done_ || ll->http_major != 1) return "";
  return ll->http_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
}

bool Parser::Finish() { return !failed_ && !InHead() && !InBody(); }

size_t Parser::HeapBytes() const {
  size_t bytes = store_.capacity() > 15 ? store_.capacity() + 1 : 0;
  bytes += request_.if_match.tags.capacity() * sizeof(EntityTag);
  bytes += request_.if_none_match.tags.capacity() * sizeof(EntityTag);
  return bytes;
}

void Parser::ReleaseMemory() {
  std::string().swap(store_);
  std::vector<EntityTag>().swap(request_.if_match.tags);
  std::vector<EntityTag>().swap(request_.if_none_match.tags);
}

}  // namespace kingx::http
