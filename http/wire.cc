// Response head serialization. Built with appends into one reused buffer:
// no allocation per header, no printf on the hot path.
#include "http/wire.h"

#include <time.h>

#include <cassert>
#include <charconv>
#include <cstring>

#include "http/clock.h"
#include "http/etag.h"

namespace kingx::http {

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
  }
}

namespace {

constexpr std::string_view kStatusLine200 = "HTTP/1.1 200 OK\r\nDate: ";
constexpr size_t kDateBytes = 29;

// The current second's Date value and, built with it, the start of a 200
// head ("HTTP/1.1 200 OK\r\nDate: <date>\r\n"), which most heads then copy
// whole: formatted at most once per second per thread, and the wall clock
// read only then (CurrentHttpDate in wire.h).
struct DateCache {
  time_t second = -1;
  uint64_t next_second_us = 0;  // monotonic time (µs) at which the wall clock's next second begins
  char line200[kStatusLine200.size() + kDateBytes + 2];
  std::string_view date() const { return std::string_view(line200 + kStatusLine200.size(), kDateBytes); }
  std::string_view status_line_and_date_200() const { return std::string_view(line200, sizeof(line200)); }
};

const DateCache& Now(uint64_t now_us) {
  static constexpr char kDays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr char kMonths[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  thread_local DateCache cache;
  if (now_us == 0) now_us = MonotonicMicros();
  if (now_us < cache.next_second_us) return cache;
  // Both clocks, back to back: the wall clock's second, and when (on the
  // monotonic clock) the next one begins.
  const uint64_t mono_us = MonotonicMicros();
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  cache.next_second_us = mono_us + (1000000 - static_cast<uint64_t>(ts.tv_nsec) / 1000);
  if (ts.tv_sec != cache.second) {
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    auto two = [](char* p, int v) {
      p[0] = static_cast<char>('0' + v / 10);
      p[1] = static_cast<char>('0' + v % 10);
    };
    std::memcpy(cache.line200, kStatusLine200.data(), kStatusLine200.size());
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    char* p = cache.line200 + kStatusLine200.size();
    for (int i = 0; i < 3; ++i) *p++ = kDays[tm.tm_wday][i];
    *p++ = ',';
    *p++ = ' ';
    two(p, tm.tm_mday);
    p += 2;
    *p++ = ' ';
    for (int i = 0; i < 3; ++i) *p++ = kMonths[tm.tm_mon][i];
    *p++ = ' ';
    int year = tm.tm_year + 1900;
    two(p, year / 100);
    two(p + 2, year % 100);
    p += 4;
    *p++ = ' ';
    two(p, tm.tm_hour);
    p[2] = ':';
    two(p + 3, tm.tm_min);
    p[5] = ':';
    two(p + 6, tm.tm_sec);
    p += 8;
    for (char c : std::string_view(" GMT\r\n")) *p++ = c;
    cache.second = ts.tv_sec;
  }
  return cache;
}

}  // namespace

std::string_view CurrentHttpDate(uint64_t now_us) { return Now(now_us).date(); }

void AppendDecimal(std::string* out, uint64_t v) {
  char digits[20];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), v);
  (void)ec;
  out->append(digits, static_cast<size_t>(end - digits));
}

namespace {

// Writes a head into bytes reserved at the end of the output string: one
// size check for the whole head instead of one per piece.
class HeadWriter {
 public:
  explicit HeadWriter(char* at) : p_(at) {}
  void Put(std::string_view s) {
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  void Decimal(uint64_t v) { p_ = std::to_chars(p_, p_ + kMaxDecimal, v).ptr; }
  void Header(std::string_view name, std::string_view value) {
    assert(value.find('\r') == std::string_view::npos && value.find('\n') == std::string_view::npos &&
           "header value with CR/LF");
    Put(name);
    Put(": ");
    Put(value);
    Put("\r\n");
  }
  char* end() const { return p_; }
  static constexpr size_t kMaxDecimal = 20;

 private:
  char* p_;
};

// Bytes of every fixed piece of a head, with room to spare: status line,
// Date, the header names and separators, three decimals and the ETag.
constexpr size_t kFixedHeadBytes = 384;

}  // namespace

size_t ResponseHeadBound(const Response& r) {
  size_t bound = kFixedHeadBytes + r.content_type.size() + r.location.size() + r.allow.size();
  for (size_t i = 0; i < r.extra_count; ++i) bound += r.extra[i].name.size() + r.extra[i].value.size() + 4;
  return bound;
}

void AppendResponseHead(std::string* out, const Response& r, const HeadFraming& f) {
  const size_t start = out->size();
  out->resize(start + ResponseHeadBound(r));
  const size_t used = WriteResponseHead(out->data() + start, r, f);
  out->resize(start + used);
}

size_t WriteResponseHead(char* out, const Response& r, const HeadFraming& f) {
  HeadWriter w(out);
  const DateCache& now = Now(f.now_us);
  if (r.status == 200) {
    w.Put(now.status_line_and_date_200());
  } else {
    w.Put("HTTP/1.1 ");
    w.Decimal(static_cast<uint64_t>(r.status));
    w.Put(" ");
    w.Put(ReasonPhrase(r.status));
    w.Put("\r\nDate: ");
    w.Put(now.date());
    w.Put("\r\n");
  }
  if (!r.content_type.empty()) w.Header("Content-Type", r.content_type);
  if (f.send_length) {
    w.Put("Content-Length: ");
    w.Decimal(f.content_length);
    w.Put("\r\n");
  }
  if (r.etag_seq) {
    char etag[kMaxEtagChars];
    const size_t n = FormatEtag(*r.etag_seq, etag);
    w.Header("ETag", std::string_view(etag, n));
  }
  if (!r.location.empty()) w.Header("Location", r.location);
  if (!r.allow.empty()) w.Header("Allow", r.allow);
  if (r.retry_after_s) {
    w.Put("Retry-After: ");
    w.Decimal(*r.retry_after_s);
    w.Put("\r\n");
  }
  for (size_t i = 0; i < r.extra_count; ++i) w.Header(r.extra[i].name, r.extra[i].value);
  if (!f.keep_alive) {
    w.Put("Connection: close\r\n");
  } else {
    if (f.http10) w.Put("Connection: keep-alive\r\n");
    if (f.keepalive_timeout_s > 0) {
      w.Put("Keep-Alive: timeout=");
      w.Decimal(f.keepalive_timeout_s);
      w.Put("\r\n");
    }
  }
  w.Put("\r\n");
  const size_t used = static_cast<size_t>(w.end() - out);
  assert(used <= ResponseHeadBound(r) && "response head bound too small");
  return used;
}

}  // namespace kingx::http
