// Response head serialization. Built with appends into one reused buffer:
// no allocation per header, no printf on the hot path.
#include "http/wire.h"

#include <time.h>

#include <cassert>
#include <charconv>

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

std::string_view CurrentHttpDate() {
  static constexpr char kDays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr char kMonths[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  thread_local time_t cached_second = -1;
  thread_local char buf[32];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  if (ts.tv_sec != cached_second) {
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    auto two = [](char* p, int v) {
      p[0] = static_cast<char>('0' + v / 10);
      p[1] = static_cast<char>('0' + v % 10);
    };
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    char* p = buf;
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
    for (char c : std::string_view(" GMT")) *p++ = c;
    cached_second = ts.tv_sec;
  }
  return std::string_view(buf, 29);
}

void AppendDecimal(std::string* out, uint64_t v) {
  char digits[20];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), v);
  (void)ec;
  out->append(digits, static_cast<size_t>(end - digits));
}

namespace {

void AppendHeader(std::string* out, std::string_view name, std::string_view value) {
  assert(value.find_first_of("\r\n") == std::string_view::npos && "header value with CR/LF");
  out->append(name);
  out->append(": ");
  out->append(value);
  out->append("\r\n");
}

}  // namespace

void AppendResponseHead(std::string* out, const Response& r, const HeadFraming& f) {
  out->append("HTTP/1.1 ");
  AppendDecimal(out, static_cast<uint64_t>(r.status));
  out->push_back(' ');
  out->append(ReasonPhrase(r.status));
  out->append("\r\nDate: ");
  out->append(CurrentHttpDate());
  out->append("\r\n");
  if (!r.content_type.empty()) AppendHeader(out, "Content-Type", r.content_type);
  if (f.send_length) {
    out->append("Content-Length: ");
    AppendDecimal(out, f.content_length);
    out->append("\r\n");
  }
  if (r.etag_seq) {
    char etag[kMaxEtagChars];
    size_t n = FormatEtag(*r.etag_seq, etag);
    AppendHeader(out, "ETag", std::string_view(etag, n));
  }
  if (!r.location.empty()) AppendHeader(out, "Location", r.location);
  if (!r.allow.empty()) AppendHeader(out, "Allow", r.allow);
  if (r.retry_after_s) {
    out->append("Retry-After: ");
    AppendDecimal(out, *r.retry_after_s);
    out->append("\r\n");
  }
  for (size_t i = 0; i < r.extra_count; ++i) AppendHeader(out, r.extra[i].name, r.extra[i].value);
  if (!f.keep_alive) {
    out->append("Connection: close\r\n");
  } else {
    if (f.http10) out->append("Connection: keep-alive\r\n");
    if (f.keepalive_timeout_s > 0) {
      out->append("Keep-Alive: timeout=");
      AppendDecimal(out, f.keepalive_timeout_s);
      out->append("\r\n");
    }
  }
  out->append("\r\n");
}

}  // namespace kingx::http
