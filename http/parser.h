// Parser: the strict HTTP/1.1 request parser (internal to http/).
//
// Wraps llhttp (the only includer of <llhttp.h> is parser.cc; of its lenient
// flags only the version check is relaxed, and the version is checked here
// instead) and adds what llhttp does not check: limits, the method token
// (read here, so that a method llhttp does not know is answered 501 with the
// connection kept), Host and request-target syntax, the protocol name, the
// HTTP/0.9 form, Connection options, Transfer-Encoding rules, Expect,
// preconditions and routing. Every byte llhttp consumes is also read by
// FramingCheck (framing_check.h), which closes the message-boundary holes of
// llhttp 8.1; the two readings must agree on every line end, every body byte
// and the message end, or the request fails (400, close).
//
// It is pull-style: Execute parses until the next event and returns it with
// the number of bytes consumed, so the Connection's state machine decides
// when to go on (one request at a time).
//
// Ownership: the Parser owns the Request it fills and the storage its views
// point into; both stay valid until the next call to Execute after kMessageEnd
// (i.e. until the next request begins). One thread at a time.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "http/framing_check.h"
#include "http/http_limits.h"
#include "http/request.h"

namespace kingx::http {

// Why the core refuses a request, before or instead of the handler (or, with
// status 200, the core's own answer to "OPTIONS *").
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

  // `listener`: which routes exist (see Listener).
  explicit Parser(const Limits& limits, Listener listener = Listener::kMain);
  ~Parser();
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  // A parser in the state of a new one for `limits` (which must outlive it)
  // and `listener`: a spare one of the calling thread's (see spare_list.h)
  // when it has one built for the same Limits object and listener, else a
  // new one.
  static std::unique_ptr<Parser> Take(const Limits& limits, Listener listener = Listener::kMain);
  // Keeps `parser` as a spare of the calling thread (or frees it when the
  // thread keeps kSpareParsers already). Only between requests: !InHead(),
  // !InBody(), no error.
  static void GiveBack(std::unique_ptr<Parser> parser);
  // Spare parsers kept for the calling thread now.
  static size_t Spares();
  // The bound is a group commit's answers, not a handful: durable writes
  // are answered all at once when their fdatasync returns (tens to a few
  // hundred connections), and each gives its parser back as it goes idle,
  // just before its client's next request takes one again. (A thread holds
  // that many only after that many of its requests were in progress at once.)
  static constexpr size_t kSpareParsers = 256;

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
  bool InBody() const { return head_done_ && (!message_done_ || end_pending_); }
  // Memory held beyond sizeof(Parser); ReleaseMemory frees it between
  // requests (call only when !InHead() && !InBody()).
  size_t HeapBytes() const;
  void ReleaseMemory();

  // True when the head just returned by kHead is refused (or, for
  // "OPTIONS *", answered) at request level (404, 405, 501, 400 bad key,
  // target or precondition, 414 key, 417, 200 OPTIONS): error() says why.
  // The framing is intact, so the body (if any) follows as kBody events and
  // the connection can go on after it.
  bool rejected() const { return rejected_; }
  // What is known of the current request line, also before its head is
  // complete (for logging a refusal): the method token as received ("" until
  // it is complete) and the request-target bytes received so far. Views
  // into the Parser, valid until the next Execute.
  std::string_view method_token() const { return std::string_view(method_, method_done_ ? method_len_ : 0); }
  std::string_view target_so_far() const { return View(url_); }
  // "HTTP/1.0" or "HTTP/1.1" once the request line's version was read, else "".
  std::string_view protocol_so_far() const;
  // The method token is complete and is "HEAD": a refusal must carry no body.
  bool head_method() const { return method_done_ && method_token() == "HEAD"; }
  // Early hints of the key a request is about (Handler::OnKeyHint): fn(ctx,
  // key, stage) is called from inside Execute for a GET or HEAD whose
  // request-target is "/v1/kv/" followed by a key with no '%' escape (up to
  // any '?'), at KeyHintStage::kTarget when the target was read and kHead
  // when the head was read, before the head is checked: the key may belong
  // to a request that is refused after all. The view is valid during the
  // call only; fn must not call back into the Parser. Null fn: no hints.
  // GiveBack clears it: set it after every Take.
  using KeyHintFn = void (*)(void* ctx, std::string_view key, KeyHintStage stage);
  // The key the kTarget hint would name for a request whose bytes start
  // `input` (the method token, SP and the target up to SP or '?' are all
  // there), or empty. Reads no further; the request may still be refused.
  // For a caller that wants to hint many requests' keys before parsing any.
  // Pure; any thread.
  static std::string_view PeekKey(std::span<const char> input);
  void SetKeyHints(KeyHintFn fn, void* ctx) {
    hint_fn_ = fn;
    hint_ctx_ = ctx;
  }

  // Whether a head that starts at the beginning of the input given to
  // Execute, lies whole in it and is in the strict canonical GET/HEAD/PUT
  // grammar (fast_head.h) is read by that recogniser instead of llhttp (and
  // a PUT's body, framed by its Content-Length, is then delivered without
  // llhttp too). On by default; the outcome (events, consumed bytes,
  // request, errors, state for the next request) is the same either way,
  // which the differential tests check by running both. Survives
  // Take/GiveBack: set it after Take.
  void SetFastHeads(bool on) { fast_heads_ = on; }
  // Heads the recogniser read since this Parser was built (tests).
  uint64_t fast_heads_taken() const { return fast_heads_taken_; }

  // The Connection records timing in the Request it dispatches.
  Request& mutable_request() { return request_; }

  // llhttp callbacks (parser.cc); public only so the C trampolines reach them.
  struct Callbacks;
  static constexpr size_t kLlhttpBytes = 96;
  // Longest method token accepted (longer: 400 and close).
  static constexpr size_t kMaxMethodBytes = 24;

 private:
  friend struct Callbacks;
  // Header fields the parser keeps (index into spans_/counts_).
  enum Field : uint8_t {
    kNoField, kContentType, kHost, kUserAgent, kReferer, kXRequestId, kXForwardedFor,
    kTransferEncoding, kExpect, kIfMatch, kIfNoneMatch, kConnection, kContentEncoding, kFieldCount
  };
  struct Span { uint32_t off = 0, len = 0; };

  // What FinishHead needs to know of the request line and framing, from
  // llhttp's state or from the fast recogniser.
  struct HeadFacts {
    bool protocol_is_http = true;
    uint8_t http_major = 1;
    uint8_t http_minor = 1;
    bool connect = false;        // the method is CONNECT (parsed by llhttp)
    Method method = Method::kGet;
    bool chunked = false;
    bool has_length = false;
    uint64_t content_length = 0;
    bool ll_keep_alive = true;   // llhttp would let the connection persist
  };

  void ResetForNextMessage();
  void Restart();
  bool TakeFastHead(std::span<const char> data, Step* step);
  Step FastBodyStep(std::span<const char> data);
  int Fail(int status, std::string_view detail);
  int FailLimit(int status, std::string_view detail, uint64_t limit);
  void Reject(int status, std::string_view detail);
  int OnHeaderFieldComplete();
  int OnHeaderValueComplete();
  bool FinishHead();
  bool FinishHeadWith(const HeadFacts& facts);
  int OnChunkHeader();
  // The bytes of a span of store_, clamped to store_ (spans only ever index
  // bytes already stored). Inline, without substr's throwing path, which the
  // compiler leaves as a call: a request views a dozen spans.
  std::string_view View(Span span) const {
    const size_t off = std::min<size_t>(span.off, store_.size());
    return std::string_view(store_.data() + off, std::min<size_t>(span.len, store_.size() - off));
  }
  Step ErrorStep(Step step);
  bool HostIsValid(std::string_view host);
  bool NoteLeadingMethod(std::span<const char> data);
  bool ReadMethod(std::span<const char> data, size_t* pos);
  bool CheckConsumed(std::span<const char> bytes, bool in_head);
  bool CheckEvent();
  void HintKey(KeyHintStage stage);

  alignas(8) unsigned char llhttp_[kLlhttpBytes];
  const Limits& limits_;
  const Listener listener_;
  Request request_;
  ParseError error_;            // meaningful once failed_ or rejected_ (each writer resets it whole first)
  HeadCheck head_check_;
  ChunkedCheck chunk_check_;
  uint64_t body_delivered_ = 0;  // chunked: body bytes llhttp handed out so far
  char method_[kMaxMethodBytes] = {};  // the method token as received
  uint8_t method_len_ = 0;
  bool method_done_ = false;     // the method token ended (its SP was seen)
  bool method_known_ = false;    // llhttp is parsing this method itself
  std::string store_;           // header values and the decoded key, back to back
  Span url_;
  Span hint_;                   // the hinted key within url_ (len 0: none)
  KeyHintFn hint_fn_ = nullptr;
  void* hint_ctx_ = nullptr;
  Span spans_[kFieldCount];
  uint16_t counts_[kFieldCount] = {};
  char field_name_[24];         // lower-cased name of the header being read
  char valid_host_[48];         // the last Host value ValidHost accepted (kept across requests)
  uint8_t valid_host_len_ = 0;  // its length; 0: none
  uint8_t field_name_len_ = 0;
  bool field_name_long_ = false;
  size_t field_name_bytes_ = 0;  // bytes of the current field name (empty is refused)
  Field current_ = kNoField;    // where the current header value goes
  bool has_version_ = false;    // the request line had an HTTP-version
  bool line_done_ = false;      // the request line is complete
  bool head_started_ = false;
  bool head_done_ = false;
  bool message_done_ = false;
  bool end_pending_ = false;    // message_done_ with its head, kMessageEnd not returned yet
  bool failed_ = false;
  bool rejected_ = false;
  bool fast_heads_ = true;
  bool fast_head_ = false;      // the current head was read by the recogniser
  // The recogniser read a PUT head whose body is not complete yet: Execute
  // delivers the next fast_body_left_ bytes (then the message end) itself.
  bool fast_body_ = false;
  uint64_t fast_body_left_ = 0;
  uint64_t fast_heads_taken_ = 0;
  // llhttp is at the start of a message, as after llhttp_init: it was just
  // initialised, or its last message completed keep-alive without upgrade
  // and no byte of another was read since.
  bool ll_between_messages_ = true;
  size_t head_bytes_ = 0;       // bytes of the current head so far
  size_t fields_ = 0;           // header (and trailer) fields so far
  size_t trailer_bytes_ = 0;    // chunk extensions and trailer fields so far
  uint64_t body_declared_ = 0;  // chunked: sum of chunk sizes so far
  Event pending_ = Event::kNeedMore;  // set by callbacks, returned by Execute
  std::span<const char> pending_body_;
};

}  // namespace kingx::http
