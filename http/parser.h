// Parser: the strict HTTP/1.1 request parser (internal to http/).
//
// Wraps llhttp (the only includer of <llhttp.h> is parser.cc; lenient flags
// stay off) and adds what llhttp does not check: limits, Host rules, the
// HTTP/0.9 form, obs-fold, Transfer-Encoding rules, Expect, preconditions
// and routing. It is pull-style: Execute parses until the next event and
// returns it with the number of bytes consumed, so the Connection's state
// machine decides when to go on (one request at a time).
//
// Ownership: the Parser owns the Request it fills and the storage its views
// point into; both stay valid until the next call to Execute after kMessageEnd
// (i.e. until the next request begins). One thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "http/http_limits.h"
#include "http/request.h"

namespace kingx::http {

// Why the core refuses a request, before or instead of the handler.
struct ParseError {
  int status = 400;
  std::string_view detail;       // static text for problem+json "detail"
  uint64_t limit = 0;            // the limit's value when has_limit
  bool has_limit = false;
  std::string_view allow;        // for 405: the Allow header value
  std::string location;          // for 308: the Location header value
};

class Parser {
 public:
  enum class Event : uint8_t {
    kNeedMore,    // all input consumed, no event; feed more bytes
    kHead,        // request() is a valid routed head; body (if any) follows
    kBody,        // body bytes in Step::body: a view of the input passed to
                  // this Execute call, any length (the Connection slices it)
    kMessageEnd,  // the current request's body (if any) is complete
    kError,       // error(): framing/validation failure. Terminal: the
                  // connection must answer and close; Execute stays kError.
  };
  struct Step {
    Event event = Event::kNeedMore;
    size_t consumed = 0;           // input bytes consumed by this call
    std::span<const char> body;    // kBody only
  };

  explicit Parser(const Limits& limits);
  ~Parser();
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  // Parses `data` up to and including the next event. Bytes not consumed
  // must be passed again (followed by new ones) on the next call.
  Step Execute(std::span<const char> data);
  // The peer sent EOF. Returns true when that is a clean end (between
  // requests); false when a request was cut short.
  bool Finish();

  const Request& request() const { return request_; }
  const ParseError& error() const { return error_; }
  // True once any byte of the next/current request head was consumed and
  // the head is not complete yet.
  bool InHead() const { return head_started_ && !head_done_; }
  // True between kHead and kMessageEnd.
  bool InBody() const { return head_done_ && !message_done_; }
  // Memory held beyond sizeof(Parser); ReleaseMemory frees it between
  // requests (call only when !InHead() && !InBody()).
  size_t HeapBytes() const;
  void ReleaseMemory();

  // True when the head just returned by kHead is refused at request level
  // (404, 405, 400 bad key or precondition, 414 key, 417): error() says
  // why. The framing is intact, so the body (if any) follows as kBody
  // events and the connection can go on after it.
  bool rejected() const { return rejected_; }
  // The Connection records timing in the Request it dispatches.
  Request& mutable_request() { return request_; }

  // llhttp callbacks (parser.cc); public only so the C trampolines reach them.
  struct Callbacks;
  static constexpr size_t kLlhttpBytes = 96;

 private:
  friend struct Callbacks;
  // Header fields the parser keeps (index into spans_/counts_).
  enum Field : uint8_t {
    kNoField, kContentType, kHost, kUserAgent, kReferer, kXRequestId, kXForwardedFor,
    kTransferEncoding, kExpect, kIfMatch, kIfNoneMatch, kFieldCount
  };
  struct Span { uint32_t off = 0, len = 0; };

  void ResetForNextMessage();
  int Fail(int status, std::string_view detail);
  int FailLimit(int status, std::string_view detail, uint64_t limit);
  void Reject(int status, std::string_view detail);
  int OnHeaderFieldComplete();
  int OnHeaderValueComplete();
  int OnHeadersComplete();
  int OnChunkHeader();
  std::string_view View(Span span) const { return std::string_view(store_).substr(span.off, span.len); }
  Step ErrorStep(Step step);

  alignas(8) unsigned char llhttp_[kLlhttpBytes];
  const Limits& limits_;
  Request request_;
  ParseError error_;
  std::string store_;           // header values and the decoded key, back to back
  Span url_;
  Span spans_[kFieldCount];
  uint16_t counts_[kFieldCount] = {};
  char field_name_[24];         // lower-cased name of the header being read
  uint8_t field_name_len_ = 0;
  bool field_name_long_ = false;
  size_t field_name_bytes_ = 0;  // bytes of the current field name (empty is refused)
  Field current_ = kNoField;    // where the current header value goes
  bool has_version_ = false;    // the request line had an HTTP-version
  bool line_done_ = false;      // the request line is complete
  bool prev_lf_ = false;        // obs-fold scan: previous head byte was LF
  bool obs_fold_ = false;
  bool head_started_ = false;
  bool head_done_ = false;
  bool message_done_ = false;
  bool failed_ = false;
  bool rejected_ = false;
  size_t head_bytes_ = 0;       // bytes of the current head so far
  size_t fields_ = 0;           // header (and trailer) fields so far
  size_t trailer_bytes_ = 0;    // chunk extensions and trailer fields so far
  uint64_t body_declared_ = 0;  // chunked: sum of chunk sizes so far
  Event pending_ = Event::kNeedMore;  // set by callbacks, returned by Execute
  std::span<const char> pending_body_;
};

}  // namespace kingx::http
