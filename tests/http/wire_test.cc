// Wire format: reason phrases, the Date value, response head framing.
#include "http/wire.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "http/clock.h"

namespace kingx::http {
namespace {

TEST_CASE("the Date value is an IMF-fixdate of now", "[http][wire]") {
  std::string date(CurrentHttpDate());
  REQUIRE(date.size() == 29);  // "Sun, 06 Nov 1994 08:49:37 GMT"
  CHECK(date.substr(3, 2) == ", ");
  CHECK(date.substr(25) == " GMT");
  struct tm tm{};
  REQUIRE(strptime(date.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) != nullptr);
  time_t parsed = timegm(&tm);
  time_t now = time(nullptr);
  CHECK(parsed <= now);
  CHECK(parsed >= now - 2);
}

TEST_CASE("the Date is re-read from the wall clock only when the monotonic time given reaches its next second",
          "[http][wire][clock]") {
  const uint64_t t0 = MonotonicMicros();
  const std::string first(CurrentHttpDate(t0));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  // t0 says the second has not ended: the Date formatted then, without a
  // look at the wall clock (which has moved on by now).
  CHECK(std::string(CurrentHttpDate(t0)) == first);
  // Now, past the second's end: the wall clock's new second.
  const std::string later(CurrentHttpDate(MonotonicMicros()));
  CHECK(later != first);
  struct tm tm{};
  REQUIRE(strptime(later.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) != nullptr);
  const time_t parsed = timegm(&tm);
  const time_t now = time(nullptr);
  CHECK(parsed <= now);
  CHECK(parsed >= now - 1);
}

TEST_CASE("response heads carry the framing the core chose", "[http][wire]") {
  Response r;
  r.status = 503;
  r.content_type = "text/plain";
  r.etag_seq = 12;
  r.retry_after_s = 1;
  r.allow = "GET";
  r.location = "/v1/kv/a";
  r.AddHeader("X-Request-Id", "abc");
  HeadFraming f;
  f.keep_alive = true;
  f.keepalive_timeout_s = 75;
  f.content_length = 10;
  std::string out;
  AppendResponseHead(&out, r, f);
  std::string expected_tail =
      "Content-Type: text/plain\r\nContent-Length: 10\r\nETag: \"12\"\r\nLocation: /v1/kv/a\r\nAllow: GET\r\n"
      "Retry-After: 1\r\nX-Request-Id: abc\r\nKeep-Alive: timeout=75\r\n\r\n";
  CHECK(out.rfind("HTTP/1.1 503 Service Unavailable\r\nDate: ", 0) == 0);
  CHECK(out.substr(out.size() - expected_tail.size()) == expected_tail);

  std::string closing;
  f.keep_alive = false;
  f.send_length = false;
  AppendResponseHead(&closing, Response{}, f);
  CHECK(closing.find("Content-Length") == std::string::npos);
  CHECK(closing.substr(closing.size() - 21) == "Connection: close\r\n\r\n");

  std::string http10;
  f.keep_alive = true;
  f.http10 = true;
  AppendResponseHead(&http10, Response{}, f);
  CHECK(http10.find("Connection: keep-alive\r\nKeep-Alive: timeout=75\r\n") != std::string::npos);
}

TEST_CASE("a head written in place is the head AppendResponseHead appends, within its bound", "[http][wire]") {
  std::vector<Response> responses(5);
  responses[0].status = 200;  // the common case: status line and Date from the per-second cache
  responses[0].content_type = "application/octet-stream";
  responses[0].etag_seq = 18446744073709551615ull;
  responses[0].AddHeader("X-Request-Id", std::string_view("0123456789abcdef0123456789abcdef"));
  responses[1].status = 404;
  responses[2].status = 503;
  responses[2].retry_after_s = 4294967295u;
  responses[2].allow = "GET, HEAD, PUT, DELETE";
  responses[2].location = "/v1/kv/a";
  responses[3].status = 204;
  const std::string long_value(128, 'v');
  for (size_t i = 0; i < Response::kMaxExtraHeaders; ++i) responses[4].AddHeader("X-Extra-Header-Name", long_value);
  for (const Response& r : responses) {
    for (int variant = 0; variant < 4; ++variant) {
      HeadFraming f;
      f.keep_alive = variant != 1;
      f.http10 = variant == 2;
      f.keepalive_timeout_s = variant == 3 ? 0 : 75;
      f.send_length = variant != 3;
      f.content_length = 18446744073709551615ull;
      std::string appended;
      AppendResponseHead(&appended, r, f);
      const size_t bound = ResponseHeadBound(r);
      std::string in_place(bound + 16, '#');
      const size_t n = WriteResponseHead(in_place.data(), r, f);
      CHECK(n <= bound);
      CHECK(in_place.substr(n) == std::string(bound + 16 - n, '#'));  // nothing past the head
      std::string head = in_place.substr(0, n);
      // The two may straddle a second: compare with the Date values aligned.
      const size_t date_at = head.find("\r\nDate: ") + 8;
      REQUIRE(date_at == appended.find("\r\nDate: ") + 8);
      head.replace(date_at, 29, appended.substr(date_at, 29));
      CHECK(head == appended);
      CHECK(head.rfind("HTTP/1.1 " + std::to_string(r.status) + " " + std::string(ReasonPhrase(r.status)) + "\r\nDate: ", 0) == 0);
    }
  }
}

TEST_CASE("a 200 head carries the current Date", "[http][wire]") {
  Response r;
  HeadFraming f;
  std::string head(ResponseHeadBound(r), '\0');
  const std::string before(CurrentHttpDate());
  head.resize(WriteResponseHead(head.data(), r, f));
  const std::string after(CurrentHttpDate());
  REQUIRE(head.rfind("HTTP/1.1 200 OK\r\nDate: ", 0) == 0);
  const std::string date = head.substr(23, 29);
  CHECK((date == before || date == after));
  CHECK(head.substr(52, 2) == "\r\n");
}

TEST_CASE("reason phrases", "[http][wire]") {
  CHECK(ReasonPhrase(413) == "Content Too Large");
  CHECK(ReasonPhrase(431) == "Request Header Fields Too Large");
  CHECK(ReasonPhrase(308) == "Permanent Redirect");  // a non-canonical key spelling
  CHECK(ReasonPhrase(299) == "Unknown");
}

}  // namespace
}  // namespace kingx::http
