// Canonical key spelling: the encoder, the canonical check, and the router's
// 308 for every other spelling of a key.
#include "http/key_spelling.h"

#include <catch2/catch.hpp>

#include <cctype>
#include <cstdio>
#include <random>
#include <string>

#include "http/router.h"

namespace kingx::http {
namespace {

std::string Decoded(std::string_view spelling) {
  std::string out;
  REQUIRE(PercentDecode(spelling, &out));
  return out;
}

ParseError RouteTarget(std::string_view target, std::string* key) {
  Limits limits;
  Route route;
  ParseError error;
  if (RouteRequest(target, Method::kGet, limits, &route, key, &error)) error.status = 200;
  return error;
}

TEST_CASE("each byte has one canonical spelling: unreserved and '/' as themselves, the rest %XX uppercase",
          "[http][key_spelling]") {
  const std::string literal = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/";
  for (int b = 0; b < 256; ++b) {
    const std::string key(1, static_cast<char>(b));
    const std::string spelling = CanonicalKey(key);
    INFO("byte " << b << " -> " << spelling);
    if (literal.find(static_cast<char>(b)) != std::string::npos) {
      CHECK(spelling == key);
    } else {
      char expected[4];
      std::snprintf(expected, sizeof expected, "%%%02X", b);
      CHECK(spelling == expected);
    }
    CHECK(CanonicalKeyLength(key) == spelling.size());
    CHECK(IsCanonicalKeySpelling(spelling));
    CHECK(Decoded(spelling) == key);
  }
}

TEST_CASE("canonical spellings of whole keys", "[http][key_spelling]") {
  CHECK(CanonicalKey("dir/file.txt") == "dir/file.txt");
  CHECK(CanonicalKey("caf\xC3\xA9") == "caf%C3%A9");
  CHECK(CanonicalKey("a b+c") == "a%20b%2Bc");
  CHECK(CanonicalKey("user:42@x") == "user%3A42%40x");
  CHECK(CanonicalKey("100%") == "100%25");
  CHECK(CanonicalKey("q?x#y") == "q%3Fx%23y");
  CHECK(CanonicalKey(std::string("a\0b", 3)) == "a%00b");
  CHECK(CanonicalKey("") == "");
  std::string out = "/v1/kv/";
  AppendCanonicalKey("\xff/~", &out);
  CHECK(out == "/v1/kv/%FF/~");
}

TEST_CASE("every other spelling of a key is not canonical", "[http][key_spelling]") {
  for (const char* spelling : {
           "a%2Fb",     // escaped '/'
           "a%2fb",     // lowercase hex
           "%41",       // escaped unreserved byte
           "%7E",       // escaped '~'
           "%2E%2E",    // escaped dots
           "caf%c3%a9", // lowercase hex of non-literal bytes
           "caf\xC3\xA9",  // raw UTF-8
           "a+b", "a:b", "a@b", "a!b", "a=b", "a;b", "a,b", "a'b", "a(b", "a*b", "a$b", "a&b",
           "a b", "a\"b", "a<b", "a\\b", "a^b", "a`b", "a{b", "a|b",
           "%", "%4", "a%", "%G0", "%0g", "%%41",
       }) {
    INFO(spelling);
    CHECK_FALSE(IsCanonicalKeySpelling(spelling));
  }
  CHECK(IsCanonicalKeySpelling(""));
  CHECK(IsCanonicalKeySpelling("%00%FF%25"));
  CHECK(IsCanonicalKeySpelling("a//b/./../c"));
}

TEST_CASE("random binary keys: canonical, decodable, and the only spelling the check accepts",
          "[http][key_spelling]") {
  std::mt19937 rng(20261124);
  for (int i = 0; i < 2000; ++i) {
    std::string key(1 + rng() % 40, '\0');
    for (char& c : key) c = static_cast<char>(rng() % 5 == 0 ? "a/._~"[rng() % 5] : rng() % 256);
    const std::string spelling = CanonicalKey(key);
    REQUIRE(IsCanonicalKeySpelling(spelling));
    REQUIRE(Decoded(spelling) == key);
    // Lowercasing one escape, or escaping one literal byte, gives a spelling
    // of the same key that the check refuses.
    size_t pct = spelling.find('%');
    if (pct != std::string::npos && std::isalpha(static_cast<unsigned char>(spelling[pct + 1]))) {
      std::string lower = spelling;
      lower[pct + 1] = static_cast<char>(std::tolower(static_cast<unsigned char>(lower[pct + 1])));
      REQUIRE(Decoded(lower) == key);
      REQUIRE_FALSE(IsCanonicalKeySpelling(lower));
    }
    for (size_t j = 0; j < spelling.size(); ++j) {
      if (spelling[j] == '%') { j += 2; continue; }
      char escape[4];
      std::snprintf(escape, sizeof escape, "%%%02X", static_cast<unsigned char>(spelling[j]));
      std::string escaped = spelling.substr(0, j) + escape + spelling.substr(j + 1);
      REQUIRE(Decoded(escaped) == key);
      REQUIRE_FALSE(IsCanonicalKeySpelling(escaped));
      break;
    }
  }
}

TEST_CASE("the router serves the canonical spelling and redirects every other one to it (308)",
          "[http][key_spelling][router]") {
  std::string key;
  CHECK(RouteTarget("/v1/kv/dir/caf%C3%A9", &key).status == 200);
  CHECK(key == "dir/caf\xC3\xA9");

  struct Case { const char* target; const char* location; };
  for (const Case& c : {
           Case{"/v1/kv/dir%2Fcaf%c3%a9", "/v1/kv/dir/caf%C3%A9"},
           Case{"/v1/kv/dir%2fcaf\xC3\xA9", "/v1/kv/dir/caf%C3%A9"},
           Case{"/v1/kv/%6B", "/v1/kv/k"},
           Case{"/v1/kv/a+b?ttl=5&x=%zz", "/v1/kv/a%2Bb?ttl=5&x=%zz"},
           Case{"/v1/kv/a%00b%ff", "/v1/kv/a%00b%FF"},
           Case{"http://h:80/v1/kv/a:b?q", "/v1/kv/a%3Ab?q"},
       }) {
    INFO(c.target);
    key = "untouched";
    ParseError e = RouteTarget(c.target, &key);
    CHECK(e.status == 308);
    CHECK(e.location == c.location);
    CHECK(key == "untouched");  // nothing appended on refusal
    // The Location is itself canonical and routes to the same key.
    std::string again;
    CHECK(RouteTarget(e.location, &again).status == 200);
  }
  // Errors that make the key unreadable keep their own status.
  CHECK(RouteTarget("/v1/kv/a%2", &key).status == 400);
  CHECK(RouteTarget("/v1/kv/" + std::string(1025, 'a'), &key).status == 414);
}

}  // namespace
}  // namespace kingx::http
