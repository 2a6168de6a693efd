// Wire format: reason phrases, the Date value, response head framing.
#include "http/wire.h"

#include <catch2/catch.hpp>

#include <ctime>

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

TEST_CASE("reason phrases", "[http][wire]") {
  CHECK(ReasonPhrase(413) == "Content Too Large");
  CHECK(ReasonPhrase(431) == "Request Header Fields Too Large");
  CHECK(ReasonPhrase(308) == "Permanent Redirect");  // a non-canonical key spelling
  CHECK(ReasonPhrase(299) == "Unknown");
}

}  // namespace
}  // namespace kingx::http
