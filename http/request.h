// Request: what the HTTP core hands to a Handler once a request head has been
// parsed, validated and routed.
//
// The Request and every string_view in it point into storage owned by the
// Connection and stay valid until the handler calls Connection::Respond for
// it (a Response may still reference them: Respond serializes the head
// before it moves on) or Handler::OnAbort is called. Do not use them after
// Respond returns: the next pipelined request may already be parsed over
// them. A PUT waiting for durability may keep the views until it responds.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace kingx::http {

// Methods the core distinguishes. Any other method token is kOther: a method
// this server implements for no resource, always answered 501 by the core
// (the method as received is in Request::method_name).
enum class Method : uint8_t { kGet, kHead, kPut, kDelete, kPost, kOptions, kOther };
inline constexpr size_t kMethodCount = 7;
// "GET", "HEAD", ... ("OTHER" for kOther); static storage.
const char* MethodName(Method method);

// The routes the core recognises. The handler only ever sees a request whose
// (route, method) pair is allowed:
//   kKv           /v1/kv/{key}    GET HEAD PUT DELETE
//   kKvList       /v1/kv/         GET HEAD  (listing; the query is parsed by
//                                        the handler, http/list_api.h)
//   kHealthz      /healthz        GET HEAD
//   kReadyz       /readyz         GET HEAD
//   kMetrics      /metrics        GET HEAD
//   kAdminCompact /admin/compact  POST  (admin listener only)
//   kAdminBackup  /admin/backup   GET HEAD  (admin listener only; a HEAD
//                                        takes no backup slot and no cut)
// Unknown path → 404, known path with another method → 405 + Allow, a method
// implemented nowhere → 501, "OPTIONS *" → 200 + Allow are answered by the
// core without calling the handler.
enum class Route : uint8_t { kKv, kKvList, kHealthz, kReadyz, kMetrics, kAdminCompact, kAdminBackup };

// Which resources a listening socket serves (Connection::SetListener). A path
// a listener does not serve is 404, whatever the method, as any unknown path.
enum class Listener : uint8_t {
  kMain,   // the key-value API, /healthz, /readyz, /metrics; none of /admin/*
  kAdmin,  // /admin/*, /healthz, /readyz, /metrics; not the key-value API
};

// When Handler::OnKeyHint is told the key of a GET or HEAD of /v1/kv/{key}
// (connection.h): as soon as the request-target was read, and again once the
// whole head was read, before it is validated and handed to OnRequest.
enum class KeyHintStage : uint8_t { kTarget, kHead };

// One entity tag from If-Match / If-None-Match. Our ETags are strong and of
// the form "<decimal seq>"; a tag of any other form can never match one of
// ours and is kept only as `foreign`.
struct EntityTag {
  uint64_t seq = 0;      // valid when !foreign
  bool weak = false;     // W/"..."
  bool foreign = false;  // not "<decimal uint64>": matches nothing of ours
};

// A parsed If-Match or If-None-Match header (all occurrences combined).
// A syntactically invalid list is rejected by the core with 400 before the
// handler sees the request, so a handler never mistakes a typo for "no
// condition".
struct Precondition {
  enum class Kind : uint8_t {
    kNone,  // header absent
    kAny,   // "*"
    kList,  // one or more entity tags in `tags`
  };
  Kind kind = Kind::kNone;
  std::vector<EntityTag> tags;

  bool present() const { return kind != Kind::kNone; }
  // RFC 9110 §8.8.3.2 strong comparison (If-Match): true when `*`, or a
  // non-weak tag of ours equals current_seq. current_seq 0 means "the key
  // does not exist": then nothing matches, not even `*`. For kNone: false.
  bool MatchesStrong(uint64_t current_seq) const;
  // Weak comparison (If-None-Match): like MatchesStrong but W/ tags count.
  // current_seq 0 (absent key) matches nothing.
  bool MatchesWeak(uint64_t current_seq) const;
};

struct Request {
  Route route = Route::kKv;
  Method method = Method::kGet;
  // The method token as received ("GET", "PROPFIND"), for logs.
  std::string_view method_name;
  // Route kKv: the percent-decoded key, 1..Limits::max_key_bytes bytes, any
  // byte value (binary-safe, may contain '\0' and '/'). Empty for other routes.
  std::string_view key;
  // Raw request-target as received (path and query), for logs.
  std::string_view target;
  // Header values as received (OWS trimmed); empty when absent.
  std::string_view content_type;
  std::string_view host;
  std::string_view user_agent;
  std::string_view referer;
  std::string_view x_request_id;
  std::string_view x_forwarded_for;  // all occurrences joined with ", "
  Precondition if_match;
  Precondition if_none_match;
  // Body framing, already validated: at most one of the two is in effect.
  // A request with neither has no body (content_length 0, chunked false).
  uint64_t content_length = 0;  // valid when !chunked
  bool chunked = false;         // Transfer-Encoding: chunked (exactly)
  // Expect: 100-continue on an HTTP/1.1 request. The core sends
  // "100 Continue" itself once OnRequest returns without answering.
  bool expect_continue = false;
  // Whether the connection stays open after this response (HTTP/1.1 default
  // unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive").
  bool keep_alive = true;
  // HTTP/1.<minor>: 0 or 1 (HTTP/1.2 .. 1.9 are served as 1.1).
  uint8_t http_minor = 1;
  // When the head was complete: on the clock passed to Feed (ms), and on
  // MonotonicMicros (http/clock.h), where this request's latency starts
  // (LatencyStartMicros: the reading that clock came from, when known).
  uint64_t start_ms = 0;
  uint64_t start_us = 0;
  // Bytes of this request's head (request line + headers), for logs.
  uint64_t head_bytes = 0;
};

}  // namespace kingx::http
