// Wire format of response heads (internal to http/): reason phrases, the
// cached Date value, and serialization of a Response's status line and
// header fields.
//
// Thread-safety: the Date cache is thread_local, so any thread may call
// these functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http/response.h"

namespace kingx::http {

// "OK", "Not Found", ... ("Unknown" for codes we never send); static storage.
std::string_view ReasonPhrase(int status);

// The IMF-fixdate of the current wall-clock second ("Tue, 24 Nov 2026
// 03:39:45 GMT"), formatted at most once per second per thread. now_us: the
// monotonic clock now (MonotonicMicros, http/clock.h), which the caller
// usually has at hand; 0 reads it. The wall clock is read only when now_us
// reaches the monotonic time at which its next second begins (computed when
// it was last read), not per call: a step of the wall clock (settimeofday,
// an NTP step) shows in the Date within a second. The view is valid until
// the next call on this thread.
std::string_view CurrentHttpDate(uint64_t now_us = 0);

// How the core frames one response.
struct HeadFraming {
  bool keep_alive = true;         // else "Connection: close"
  bool http10 = false;            // HTTP/1.0 client: keep-alive must be explicit
  uint64_t keepalive_timeout_s = 0;  // Keep-Alive: timeout=N (0: not sent)
  bool send_length = true;        // Content-Length (never for 1xx/204)
  uint64_t content_length = 0;
  uint64_t now_us = 0;            // MonotonicMicros() now, for the Date (CurrentHttpDate); 0: read it
};

// Appends "HTTP/1.1 <status> <reason>\r\n", Date, the Response's headers,
// Content-Length, Connection/Keep-Alive and the final CRLF to *out.
// Header values must not contain CR or LF (asserted).
void AppendResponseHead(std::string* out, const Response& response, const HeadFraming& framing);

// The same head written in place: WriteResponseHead writes it at `out`,
// which must have ResponseHeadBound(response) bytes of room, and returns the
// bytes written (never more than the bound). The bytes are those
// AppendResponseHead appends.
size_t ResponseHeadBound(const Response& response);
size_t WriteResponseHead(char* out, const Response& response, const HeadFraming& framing);

// Appends the decimal form of v.
void AppendDecimal(std::string* out, uint64_t v);

}  // namespace kingx::http
