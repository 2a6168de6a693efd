// Request syntax helpers: Host (nginx's rules), Connection options, tokens.
#include "http/syntax.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

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

// nginx's host rules byte by byte, as ValidHost states them: the model its
// table-driven loop must match.
bool HostModel(std::string_view h) {
  bool literal = false, rest = false;
  size_t dot_pos = h.size(), host_len = h.size();
  for (size_t i = 0; i < h.size(); ++i) {
    const auto c = static_cast<unsigned char>(h[i]);
    if (c == '/' || c <= 0x20 || c == 0x7f) return false;
    if (c == '.') {
      if (i > 0 && dot_pos == i - 1) return false;
      dot_pos = i;
    } else if (c == ':' && !literal && !rest) {
      host_len = i;
      rest = true;
    } else if (c == '[' && i == 0 && !rest) {
      literal = true;
    } else if (c == ']' && literal && !rest) {
      host_len = i + 1;
      rest = true;
    }
  }
  if (host_len > 0 && dot_pos == host_len - 1) --host_len;
  return host_len > 0;
}

TEST_CASE("ValidHost agrees with the byte-wise host rules on random hosts", "[http][syntax]") {
  static const std::string kAlphabet = std::string(".:[]/ \ta1\x7f\x80-") + '\0';
  uint64_t state = 0x2545f4914f6cdd1du;
  for (int round = 0; round < 20000; ++round) {
    std::string h;
    const size_t n = static_cast<size_t>(state % 9);
    for (size_t i = 0; i < n; ++i) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      h.push_back(kAlphabet[state % kAlphabet.size()]);
    }
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    INFO(::Catch::Detail::stringify(h));
    REQUIRE(ValidHost(h) == HostModel(h));
  }
}

TEST_CASE("HasSpaceOrControl finds a space, control byte or DEL of any value at any position", "[http][syntax]") {
  // Lengths around the eight-byte steps; every byte value at every position,
  // in a string of bytes that are allowed, including bytes above 0x7f.
  for (size_t len : {size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{12}, size_t{15}, size_t{16}, size_t{17},
                     size_t{23}}) {
    for (char fill : {'a', '~', static_cast<char>(0x80), static_cast<char>(0xff), '!'}) {
      std::string s(len, fill);
      CHECK_FALSE(HasSpaceOrControl(s));
      for (size_t at = 0; at < len; ++at) {
        for (int b = 0; b < 256; ++b) {
          std::string t = s;
          t[at] = static_cast<char>(b);
          const bool expected = b <= 0x20 || b == 0x7f;
          if (HasSpaceOrControl(t) != expected) FAIL("len " << len << " at " << at << " byte " << b);
        }
      }
    }
  }
  CHECK_FALSE(HasSpaceOrControl(""));
  CHECK(HasSpaceOrControl(std::string("/v1/kv/") + "	"));
}

TEST_CASE("IsTchar is RFC 9110's tchar for every byte", "[http][syntax]") {
  const std::string_view kSpecials = "!#$%&'*+-.^_`|~";
  for (int c = 0; c < 256; ++c) {
    const bool expected = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c < 128 && kSpecials.find(static_cast<char>(c)) != std::string_view::npos);
    INFO(c);
    CHECK(IsTchar(static_cast<unsigned char>(c)) == expected);
  }
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
