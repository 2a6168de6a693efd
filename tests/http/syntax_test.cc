// Request syntax helpers: Host (nginx's rules), Connection options, tokens.
#include "http/syntax.h"

#include <catch2/catch.hpp>

namespace kingx::http {
namespace {

TEST_CASE("ValidHost follows nginx's host check", "[http][syntax]") {
  for (const char* ok : {"h", "example.com", "example.com.", "example.com:8080", "[::1]", "[::1]:80",
                         "my_host", "10.0.0.1:1", "xn--bcher-kva.example", "h:"}) {
    INFO(ok);
    CHECK(ValidHost(ok));
  }
  for (const char* bad : {"", ".", ":80", "a..b", "a/b", "a b", "a\tb", "a\x01", "a\x7f", "..",
                          "/", "[::1]/x"}) {
    INFO(bad);
    CHECK_FALSE(ValidHost(bad));
  }
  CHECK_FALSE(ValidHost(std::string_view("a\0b", 3)));
}

TEST_CASE("ParseConnection reads the close and keep-alive options of a list", "[http][syntax]") {
  CHECK(ParseConnection("close").close);
  CHECK(ParseConnection("Close").close);
  CHECK(ParseConnection("close\t").close);
  CHECK(ParseConnection("  close  ").close);
  CHECK(ParseConnection("te, close").close);
  CHECK(ParseConnection("te,\tclose\t,foo").close);
  CHECK_FALSE(ParseConnection("closed").close);
  CHECK_FALSE(ParseConnection("clo se").close);
  CHECK_FALSE(ParseConnection("").close);
  CHECK(ParseConnection("keep-alive").keep_alive);
  CHECK(ParseConnection("Keep-Alive, Upgrade").keep_alive);
  ConnectionOptions both = ParseConnection("keep-alive, close");
  CHECK(both.close);
  CHECK(both.keep_alive);
}

TEST_CASE("tokens: tchar, method characters, OWS", "[http][syntax]") {
  CHECK(IsTchar('a'));
  CHECK(IsTchar('~'));
  CHECK_FALSE(IsTchar(' '));
  CHECK_FALSE(IsTchar(':'));
  CHECK_FALSE(IsTchar(0xc3));
  CHECK(IsMethodChar('G'));
  CHECK(IsMethodChar('-'));
  CHECK(IsMethodChar('_'));
  CHECK_FALSE(IsMethodChar('g'));
  CHECK_FALSE(IsMethodChar('1'));
  CHECK(TrimOws(" \t a b \t") == "a b");
  CHECK(EqualsIgnoreCase("Chunked", "chUNKed"));
  CHECK_FALSE(EqualsIgnoreCase("chunked", "chunked "));
}

}  // namespace
}  // namespace kingx::http
