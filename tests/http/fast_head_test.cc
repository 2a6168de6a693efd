// The strict GET/HEAD/PUT head recogniser: what it accepts and leaves to the
// full parser, and that a Parser with it reads every input exactly as the
// same Parser without it (the smuggling corpus and a deterministic generator
// of mutated heads; request_vectors_test.cc runs the vector table the same way).
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "http/fast_head.h"
#include "tests/http/parser_trace.h"

namespace kingx::http {
namespace {

using namespace std::string_literals;
using testing::ParserTrace;

bool Recognised(const std::string& head, FastHead* fh = nullptr) {
  FastHead local;
  return RecogniseFastHead(head, 8192, 100, fh != nullptr ? fh : &local);
}

TEST_CASE("the recogniser reads a canonical GET head with its kept values", "[http][fast_head]") {
  const std::string head =
      "GET /v1/kv/k HTTP/1.1\r\nhost:  h:80\r\nUSER-AGENT: wrk/4 x\r\nAccept: */*\r\nConnection: Keep-Alive\r\n\r\n";
  FastHead fh;
  REQUIRE(Recognised(head + "GET /next", &fh));
  CHECK(fh.verb == FastHead::Verb::kGet);
  CHECK(fh.content_length == 0);
  CHECK(head.substr(fh.target_off, fh.target_len) == "/v1/kv/k");
  CHECK(fh.head_bytes == head.size());
  CHECK(fh.field_lines == 4);
  REQUIRE(fh.value_count == 3);
  CHECK(fh.values[0].field == FastHead::Field::kHost);
  CHECK(head.substr(fh.values[0].off, fh.values[0].len) == "h:80");
  CHECK(head.substr(fh.values[1].off, fh.values[1].len) == "wrk/4 x");
  CHECK(head.substr(fh.values[2].off, fh.values[2].len) == "Keep-Alive");
  REQUIRE(Recognised("HEAD /healthz HTTP/1.1\r\nHost: h\r\n\r\n", &fh));
  CHECK(fh.verb == FastHead::Verb::kHead);
}

TEST_CASE("the recogniser reads a PUT head with its Content-Length and Content-Type", "[http][fast_head]") {
  const std::string head =
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\ncontent-length: 100\r\nContent-Type: text/plain; q=1\r\n\r\n";
  FastHead fh;
  REQUIRE(Recognised(head + "body", &fh));
  CHECK(fh.verb == FastHead::Verb::kPut);
  CHECK(fh.content_length == 100);
  CHECK(fh.head_bytes == head.size());
  CHECK(fh.field_lines == 3);
  REQUIRE(fh.value_count == 2);
  CHECK(fh.values[1].field == FastHead::Field::kContentType);
  CHECK(head.substr(fh.values[1].off, fh.values[1].len) == "text/plain; q=1");
  REQUIRE(Recognised("PUT /v1/kv/k HTTP/1.1\r\nContent-Length: 0\r\nHost: h\r\n\r\n", &fh));
  CHECK(fh.content_length == 0);
  REQUIRE(Recognised("PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 999999999999999999\r\n\r\n", &fh));
  CHECK(fh.content_length == 999999999999999999ull);
}

TEST_CASE("the recogniser takes a value byte exactly when it is 0x20-0x7E, wherever it lies in the value",
          "[http][fast_head]") {
  // Values are checked 8 bytes at a time, then byte by byte: every byte
  // value at every offset of a 16-byte value (not its first or last byte,
  // where SP is leading or trailing whitespace).
  for (int b = 0; b < 256; ++b) {
    for (size_t at = 1; at < 15; ++at) {
      std::string value = "abcdefghijklmnop";
      value[at] = static_cast<char>(b);
      const std::string head = "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nUser-Agent: " + value + "\r\n\r\n";
      INFO("byte " << b << " at " << at);
      CHECK(Recognised(head) == (b >= 0x20 && b <= 0x7e));
    }
  }
}

TEST_CASE("the recogniser knows a field name in any case, and no name one letter off", "[http][fast_head]") {
  const std::vector<std::string> names = {"Host",   "Accept",        "Pragma",          "Referer",
                                          "User-Agent", "Connection", "X-Request-Id", "Content-Type",
                                          "Cache-Control", "Content-Length", "X-Forwarded-For", "Accept-Encoding",
                                          "Accept-Language"};
  for (const std::string& name : names) {
    const std::string value = name == "Connection" ? "keep-alive" : name == "Content-Length" ? "1" : "v";
    // The head carries Host and Content-Length once each, one of them as `n`.
    const auto head = [&name, &value](const std::string& n) {
      return "PUT /v1/kv/k HTTP/1.1\r\n" + (name == "Host" ? n + ": h\r\n" : "Host: h\r\n" + n + ": " + value + "\r\n") +
             (name == "Content-Length" ? "" : "Content-Length: 1\r\n") + "\r\nx";
    };
    INFO(name);
    std::string upper = name;
    for (char& c : upper) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
    CHECK(Recognised(head(name)));
    CHECK(Recognised(head(upper)));
    for (size_t i = 0; i < name.size(); ++i) {
      if (name[i] == '-') continue;
      std::string off = name;
      off[i] = static_cast<char>(off[i] == 'q' || off[i] == 'Q' ? 'z' : 'q');
      INFO(off);
      CHECK_FALSE(Recognised(head(off)));
    }
  }
}

// What every differential case checks: the same trace with and without the
// recogniser, the input fed whole and in pieces.
uint64_t CheckSameReading(const std::string& input, const Limits& limits, size_t piece);

TEST_CASE("pipelined PUTs are read by the recogniser, bodies and all, as the full parser reads them",
          "[http][fast_head]") {
  const std::string put = "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n";
  const std::string input = put + "hello" + put + "GET /" + "PUT /v1/kv/e HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
  // Whole, the three heads start the input given to Execute; in pieces of
  // 80 bytes the second head starts a piece with its body cut short.
  CHECK(CheckSameReading(input, Limits{}, SIZE_MAX) == 3);
  CHECK(CheckSameReading(input, Limits{}, 80) >= 1);
  for (size_t piece = 1; piece < input.size(); ++piece) CheckSameReading(input, Limits{}, piece);
}

TEST_CASE("the recogniser leaves everything outside its grammar to the full parser", "[http][fast_head]") {
  const std::string ok = "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n";
  REQUIRE(Recognised(ok));
  const std::vector<std::string> refused = {
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n",
      "get /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n",
      "\r\nGET /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET * HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET http://h/v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /v1/kv/k#f HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /v1/kv/k\t HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /v1/kv/k  HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /v1/kv/k HTTP/1.0\r\nHost: h\r\n\r\n",
      "GET /v1/kv/k HTTP/1.2\r\nHost: h\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\nHost: h\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\n\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\n\rX",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
      "HEAD /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 03\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 00\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 3,3\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 3 3\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 3x\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000000000000000\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nIf-Match: \"1\"\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Encoding: gzip\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.0\r\nHost: h\r\nContent-Length: 3\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length:\t3\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 3",
      "put /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n",
      "DELETE /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nProxy-Connection: close\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"1\"\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nUser-Agent: a\r\n b\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nUser-Agent:\ta\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nUser-Agent: a\tb\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nUser-Agent: a \r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nUser-Agent:\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nUser-Agent: \xc3\xa9\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost : h\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nX-Other: 1\r\n\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\0\r\n\r\n"s,
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\n",
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r",
      "GET /v1/kv/k HTTP/1.1\r\n",
      "GET /v1/kv/k",
  };
  for (const std::string& head : refused) {
    INFO(head);
    CHECK_FALSE(Recognised(head));
  }
  FastHead fh;
  CHECK(RecogniseFastHead(ok, ok.size(), 1, &fh));
  CHECK_FALSE(RecogniseFastHead(ok, ok.size() - 1, 1, &fh));  // longer than allowed
  CHECK_FALSE(RecogniseFastHead(ok, ok.size(), 0, &fh));      // more field lines than allowed
}

uint64_t CheckSameReading(const std::string& input, const Limits& limits, size_t piece) {
  uint64_t taken = 0;
  const std::string fast = ParserTrace(input, limits, true, piece, &taken);
  const std::string full = ParserTrace(input, limits, false, piece);
  if (fast != full) {
    INFO("input: " << input << "\npiece: " << piece << "\nfull parser:\n" << full << "with recogniser:\n" << fast);
    CHECK(fast == full);
  }
  return taken;
}

Limits TinyLimits() {
  Limits l;
  l.max_request_line_bytes = 40;
  l.max_header_bytes = 64;
  l.max_header_line_bytes = 30;
  l.max_header_fields = 2;
  l.max_key_bytes = 4;
  l.max_body_bytes = 16;
  return l;
}

const std::string kGet = "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n";

TEST_CASE("the smuggling corpus reads the same with and without the recogniser", "[http][fast_head]") {
  const std::string put = "PUT /v1/kv/carrier HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string smuggled = "DELETE /v1/kv/victim HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::vector<std::string> corpus = {
      put + "3\rXabc\r\n0\r\n\r\n",
      put + "5\r\r;ABCD\r\n34\r\nE\r\n0\r\n\r\n",
      put + "3;a=b\rXabc\r\n0\r\n\r\n",
      put + "3\r\nabc\r\n0\rX\r\n",
      put + "3\r\nabc\r\n0\r\n\rX",
      put + "3\r\nabc\r\n0\r\nX-T:\rXY: 1\r\n\r\n",
      put + "3\r\nabcXY0\r\n\r\n",
      put + "3\r\nabc\n\n0\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: h\r\n\rX",
      "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A:\rZ\r\n\r\n",
      "POST /admin/compact HTTP/1.1\r\nHost: h\r\nX:\rXTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      put + "3\r\nabc\r\n0\r\n\r\n",
      put + "3;a=\"b\"\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A:\r\n\r\n",
      "GET /healthz HTTP/1.2\r\nHost: h\r\n\r\n",
      "BREW /healthz HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
      "GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\t\r\n\r\n",
      "GET /healthz RTSP/1.0\r\nHost: h\r\n\r\n",
      "GET /v1/kv/a\tb HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: a/b\r\n\r\n",
      "HEAD /healthz HTTP/1.1\r\nHost: h\r\n\rX",
  };
  uint64_t taken = 0;
  for (const std::string& vector : corpus) {
    for (const std::string& input : {vector + smuggled, kGet + vector + smuggled, kGet + vector + kGet}) {
      for (size_t piece : {SIZE_MAX, size_t{1}, size_t{7}}) {
        taken += CheckSameReading(input, Limits{}, piece);
        taken += CheckSameReading(input, TinyLimits(), piece);
      }
    }
  }
  CHECK(taken > 0);
}

TEST_CASE("a PUT head that lost its Content-Length reads as 411 with and without the recogniser",
          "[http][fast_head]") {
  // Heads the recogniser reads, then the same heads without their framing
  // line: the full parser alone refuses those (411, nothing after the head
  // is a body), and both readings of the whole pipeline agree.
  const std::vector<std::string> framed = {
      "PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nContent-Length: 0\r\nHost: h\r\nUser-Agent: u\r\nContent-Type: a/b\r\n\r\n",
      "PUT /v1/kv/a/b%00 HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
  };
  uint64_t taken = 0;
  for (const std::string& head : framed) {
    REQUIRE(Recognised(head));
    std::string bare = head;
    bare.erase(bare.find("Content-Length: 0\r\n"), std::string("Content-Length: 0\r\n").size());
    INFO(bare);
    CHECK_FALSE(Recognised(bare));
    const std::string trace = ParserTrace(bare, Limits{}, true, SIZE_MAX);
    CHECK(trace.find(" status=411 ") != std::string::npos);
    for (const std::string& input : {bare + kGet, kGet + bare + head + kGet, head + bare + "abc" + kGet}) {
      for (size_t piece : {SIZE_MAX, size_t{1}, size_t{5}}) {
        taken += CheckSameReading(input, Limits{}, piece);
        taken += CheckSameReading(input, TinyLimits(), piece);
      }
    }
  }
  CHECK(taken > 0);
}

struct Rng {
  uint64_t state;
  uint32_t Next() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33);
  }
  size_t Below(size_t n) { return n == 0 ? 0 : Next() % n; }
};

// One mutation of `s`: a byte replaced, inserted or removed, a header line
// inserted or repeated, a letter's case flipped, or the input cut short.
void Mutate(Rng& rng, std::string* s) {
  static const std::string kBytes = "\r\n\t :;,%?#/\\\"'<>()@=*.-_~+!$&\x7f\x80\xff\x0b\x0c"s + '\0' + "AaZz09";
  static const std::vector<std::string> kLines = {
      "Content-Length: 3\r\n", "Content-Length: 0\r\n", "Transfer-Encoding: chunked\r\n",
      "Connection: close\r\n", "Connection: Upgrade\r\n", "Upgrade: websocket\r\n", "Expect: 100-continue\r\n",
      "Host: h\r\n", "Host: a/b\r\n", "If-None-Match: \"5\"\r\n", "If-Match: *\r\n", "Proxy-Connection: close\r\n",
      " folded\r\n", "\tfolded\r\n", "X-Forwarded-For: 9.9.9.9\r\n", "Connection: keep-alive\r\n",
      "User-Agent: u\r\n", "TE: trailers\r\n", "Content-Type: a/b\r\n", "Accept: x\r\n", "x-request-id: r\r\n",
      "Referer: /r\r\n", "Transfer-Encoding: identity\r\n", ": v\r\n", "A B: v\r\n", "\r\n",
  };
  if (s->empty()) return;
  const size_t at = rng.Below(s->size());
  switch (rng.Below(8)) {
    case 0: (*s)[at] = kBytes[rng.Below(kBytes.size())]; break;
    case 1: (*s)[at] = static_cast<char>(rng.Below(256)); break;
    case 2: s->insert(at, 1, kBytes[rng.Below(kBytes.size())]); break;
    case 3: s->erase(at, 1); break;
    case 4: {
      // After a line end, so that the line lands in the head or the body.
      const size_t eol = s->find("\r\n", at);
      const size_t where = eol == std::string::npos ? s->size() : eol + 2;
      s->insert(where, kLines[rng.Below(kLines.size())]);
      break;
    }
    case 5: {
      const size_t begin = s->rfind("\r\n", at);
      const size_t end = s->find("\r\n", at);
      if (begin != std::string::npos && end != std::string::npos && end > begin) {
        s->insert(end, s->substr(begin, end - begin));
      }
      break;
    }
    case 6: {
      const char c = (*s)[at];
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) (*s)[at] = static_cast<char>(c ^ 0x20);
      break;
    }
    default: s->resize(at); break;
  }
}

TEST_CASE("mutated heads read the same with and without the recogniser", "[http][fast_head]") {
  const std::vector<std::string> heads = {
      kGet,
      "HEAD /v1/kv/key-1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n",
      "GET /v1/kv/a%2Fb?x=1 HTTP/1.1\r\nhost: h\r\nConnection: keep-alive\r\nX-Request-Id: abc\r\n"
      "X-Forwarded-For: 1.2.3.4\r\nReferer: http://x/\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: h\r\nCache-Control: no-cache\r\nPragma: no-cache\r\n"
      "Accept-Encoding: gzip\r\nAccept-Language: en\r\n\r\n",
      "GET /nope HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /v1/kv/ HTTP/1.1\r\nHost: h\r\n\r\n",
      "HEAD /metrics HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /v1/kv/kkkkkk HTTP/1.1\r\nHost: h\r\n\r\n",
      "PUT /v1/kv/key-1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 3\r\n\r\nabc",
      "PUT /v1/kv/p HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n",
      "PUT /v1/kv/p HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n\r\n",
      "PUT /nope HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nUser-Agent: u\r\n\r\nhello",
      "PUT /v1/kv/big HTTP/1.1\r\nHost: h\r\nContent-Length: 17\r\n\r\n01234567890123456",
      "PUT /v1/kv/c HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n\r\nGET / HTTP/1",
  };
  const std::vector<std::string> behind = {
      "", kGet, "PUT /v1/kv/p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc" + kGet,
      "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n" + kGet,
      "PUT /v1/kv/c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + kGet,
  };
  Rng rng{20261206};
  uint64_t taken = 0;
  size_t cases = 0;
  for (int i = 0; i < 40000; ++i) {
    std::string input = heads[rng.Below(heads.size())];
    if (rng.Below(3) == 0) input += heads[rng.Below(heads.size())];
    input += behind[rng.Below(behind.size())];
    const size_t mutations = rng.Below(4);
    for (size_t m = 0; m < mutations; ++m) Mutate(rng, &input);
    const Limits limits = rng.Below(4) == 0 ? TinyLimits() : Limits{};
    const size_t piece = rng.Below(2) == 0 ? SIZE_MAX : 1 + rng.Below(48);
    taken += CheckSameReading(input, limits, piece);
    ++cases;
  }
  // The generator reaches the recogniser often, not only its refusals.
  CHECK(taken > cases / 4);
}

}  // namespace
}  // namespace kingx::http
