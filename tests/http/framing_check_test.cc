// The second reading of request framing (http/framing_check.h) on its own,
// and the three message-boundary families of llhttp 8.1.0 through the whole
// connection core: each variant is followed, on the same connection, by a
// DELETE of another key, which must never run.
#include "http/framing_check.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/http/test_support.h"

namespace kingx::http {
namespace {

using namespace std::string_literals;
using testing::FakeKvHandler;
using testing::Harness;
using testing::SplitResponses;

// Feeds `input` to a fresh check in pieces cut at `cuts` (offsets, ascending).
template <typename Check>
Check ScanSplit(std::string_view input, std::vector<size_t> cuts) {
  Check check;
  size_t from = 0;
  cuts.push_back(input.size());
  for (size_t to : cuts) {
    check.Scan(std::span<const char>(input.data() + from, to - from));
    from = to;
  }
  return check;
}

// ---------------------------------------------------------------- ChunkedCheck

const std::vector<std::string>& ValidChunkedBodies() {
  static const std::vector<std::string> v = {
      "0\r\n\r\n",
      "3\r\nabc\r\n0\r\n\r\n",
      "A\r\n0123456789\r\n000\r\n\r\n",
      "3;a=b\r\nabc\r\n0;z\r\n\r\n",
      "3;a=\"b c\\\" \\\\\"\r\nabc\r\n0\r\n\r\n",
      "3;a=b\tc\r\nabc\r\n0\r\n\r\n",
      "3\r\nabc\r\n0\r\nX-T: 1\r\nY-T: 2\r\n\r\n",
      "2\r\n\r\n\r\n1\r\n\r\r\n0\r\n\r\n",  // CR and LF as chunk data
      "1\r\n\x80\r\n0\r\nX: \xc3\xa9\r\n\r\n",
  };
  return v;
}

TEST_CASE("chunked check accepts valid bodies split at every offset", "[http][framing]") {
  for (const std::string& body : ValidChunkedBodies()) {
    for (size_t cut = 0; cut <= body.size(); ++cut) {
      INFO("body: " << body << " cut at " << cut);
      ChunkedCheck check = ScanSplit<ChunkedCheck>(body, {cut});
      CHECK_FALSE(check.failed());
      CHECK(check.done());
    }
    ChunkedCheck bytewise;
    for (char c : body) bytewise.Scan(std::span<const char>(&c, 1));
    CHECK(bytewise.done());
  }
}

TEST_CASE("chunked check counts chunk data and reports it at the end of each span", "[http][framing]") {
  ChunkedCheck check;
  std::string a = "5\r\nhel";
  REQUIRE(check.Scan(std::span<const char>(a.data(), a.size())));
  CHECK(check.trailing_data() == 3);
  CHECK(check.data_bytes() == 3);
  std::string b = "lo\r\n2\r\n";
  REQUIRE(check.Scan(std::span<const char>(b.data(), b.size())));
  CHECK(check.trailing_data() == 0);
  CHECK(check.data_bytes() == 5);
  std::string c = "!!";
  REQUIRE(check.Scan(std::span<const char>(c.data(), c.size())));
  CHECK(check.trailing_data() == 2);
  CHECK(check.data_bytes() == 7);
  CHECK_FALSE(check.done());
}

TEST_CASE("chunked check refuses every malformed line end and anything after the end", "[http][framing]") {
  const std::vector<std::string> bad = {
      "3\rXabc\r\n0\r\n\r\n",      // chunk-size ended by CR + byte
      "5\r\r;ABCD\r\n0\r\n\r\n",   // CR CR
      "3;a=b\rXabc\r\n0\r\n\r\n",  // chunk-ext ended by CR + byte
      "3;a\nabc\r\n0\r\n\r\n",     // LF inside a chunk-ext
      "3\nabc\r\n0\r\n\r\n",       // LF-only chunk-size line
      "3\r\nabcXY0\r\n\r\n",       // no CRLF after chunk data
      "3\r\nabc\rX0\r\n\r\n",
      "3\r\nabc\n0\r\n\r\n",
      "3\r\nabc0\r\n\r\n",
      "0\rX\r\n",                  // last-chunk ended by CR + byte
      "0;e\rX\r\n",
      "0\r\n\rX",                  // trailer section ended by CR + byte
      "0\r\nX-T: 1\rX\r\n\r\n",    // trailer line ended by CR + byte
      "0\r\nX-T:\rZ\r\n\r\n",
      "0\r\nX-T: 1\n\r\n",         // bare LF in the trailer section
      "0\r\n\n",
      "0\r\nX: a\r\n b\r\n\r\n",   // obs-fold in the trailer section
      "0\r\n\r\nG",                // a byte past the end
      "\r\n0\r\n\r\n",             // no chunk-size
      " 3\r\nabc\r\n0\r\n\r\n",
      "3 \r\nabc\r\n0\r\n\r\n",
      "-3\r\nabc\r\n0\r\n\r\n",
      "10000000000000000\r\n",     // 17 hex digits: more than 64 bits
      "3;a=\x01\r\nabc\r\n0\r\n\r\n",
  };
  for (const std::string& body : bad) {
    for (size_t cut = 0; cut <= body.size(); ++cut) {
      INFO("body: " << body << " cut at " << cut);
      ChunkedCheck check = ScanSplit<ChunkedCheck>(body, {cut});
      CHECK(check.failed());
      CHECK_FALSE(check.error().empty());
      CHECK(check.trailing_data() == 0);
    }
  }
}

TEST_CASE("chunked check takes a 64-bit chunk size and stays failed once failed", "[http][framing]") {
  ChunkedCheck big;
  std::string size = "FFFFFFFFFFFFFFFF\r\n";
  CHECK(big.Scan(std::span<const char>(size.data(), size.size())));
  ChunkedCheck bad;
  std::string b = "3\rX";
  CHECK_FALSE(bad.Scan(std::span<const char>(b.data(), b.size())));
  std::string good = "abc\r\n0\r\n\r\n";
  CHECK_FALSE(bad.Scan(std::span<const char>(good.data(), good.size())));
  CHECK_FALSE(bad.done());
}

// ---------------------------------------------------------------- HeadCheck

TEST_CASE("head check accepts valid heads and reads the protocol name", "[http][framing]") {
  const std::string head = "\r\n\r\nGET  /a?b HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-A: a\tb\r\n\r\n";
  for (size_t cut = 0; cut <= head.size(); ++cut) {
    HeadCheck check = ScanSplit<HeadCheck>(head, {cut});
    CHECK_FALSE(check.failed());
    CHECK(check.protocol_is_http());
  }
  for (const char* line : {"GET / RTSP/1.0\r\n\r\n", "GET / ICE/1.0\r\n\r\n", "GET / HTTPS/1.1\r\n\r\n",
                           "GET / http/1.1\r\n\r\n", "GET /\r\n\r\n"}) {
    INFO(line);
    HeadCheck check = ScanSplit<HeadCheck>(line, {});
    CHECK_FALSE(check.failed());
    CHECK_FALSE(check.protocol_is_http());
  }
}

TEST_CASE("head check refuses a bare CR anywhere and obs-fold", "[http][framing]") {
  const std::vector<std::string> bad = {
      "GET / HTTP/1.1\r\nHost: h\r\n\rX",
      "GET / HTTP/1.1\r\nHost: h\r\nX:\rZ\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX: \rZ\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
      "GET / HTTP/1.1\rHost: h\r\n\r\n",
      "\rGET / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\n\r\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n",
      "GET / HTTP/1.1\r\n Host: h\r\n\r\n",
  };
  for (const std::string& head : bad) {
    for (size_t cut = 0; cut <= head.size(); ++cut) {
      INFO("head: " << head << " cut at " << cut);
      HeadCheck check = ScanSplit<HeadCheck>(head, {cut});
      CHECK(check.failed());
    }
  }
}

TEST_CASE("head check measures the longest header field line", "[http][framing]") {
  HeadCheck check = ScanSplit<HeadCheck>("GET /" + std::string(100, 'p') + " HTTP/1.1\r\nA: 1\r\nBb: 12345\r\nC: ", {});
  CHECK(check.longest_field_line() == 9);
  check.Scan(std::span<const char>("0123456789", 10));
  CHECK(check.longest_field_line() == 13);  // the line being read counts
}

// The head rules read one byte at a time, as RFC 9112 states them: the
// model the scanner (which jumps from line end to line end) must match on
// every input and every split.
struct ByteWiseHeadModel {
  bool failed = false;
  std::string_view error;
  bool in_request = false, in_fields = false, prev_cr = false, at_line_start = true, protocol_http = false;
  size_t line_bytes = 0, longest = 0;
  std::string token;

  void Feed(std::string_view bytes) {
    for (char ch : bytes) {
      if (failed) return;
      if (prev_cr && ch != '\n') {
        failed = true;
        error = "The request head contains a CR that is not followed by LF.";
        return;
      }
      if (ch == '\r') {
        prev_cr = true;
      } else if (ch == '\n') {
        prev_cr = false;
        if (in_fields) longest = std::max(longest, line_bytes);
        line_bytes = 0;
        if (in_request) {
          protocol_http = token.rfind("HTTP/", 0) == 0;
          in_request = false;
          in_fields = true;
        }
        at_line_start = true;
      } else if (at_line_start && in_fields && (ch == ' ' || ch == '\t')) {
        failed = true;
        error = "Obsolete line folding (obs-fold) in header fields is not accepted.";
      } else {
        at_line_start = false;
        ++line_bytes;
        if (!in_fields) in_request = true;
        if (in_request) {
          if (ch == ' ') token.clear();
          else token.push_back(ch);
        }
      }
    }
  }
  size_t longest_field_line() const { return in_fields && line_bytes > longest ? line_bytes : longest; }
};

TEST_CASE("head check agrees with the byte-wise rules on random heads cut anywhere", "[http][framing]") {
  // Bytes that matter to the rules, plus ordinary ones; long runs too, so
  // the line-to-line jumps cross the cuts.
  static const std::string kAlphabet = "\r\n \tHTP/1.x:ab\x80\0";
  uint64_t state = 0x9e3779b97f4a7c15u;
  auto next = [&state](uint64_t bound) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state % bound;
  };
  for (int round = 0; round < 20000; ++round) {
    std::string head;
    if (next(2) == 0) head = next(2) ? "GET /k HTTP/1.1\r\n" : "\r\nPUT  /x  HTTP/1.1  ";
    const size_t n = next(48);
    for (size_t i = 0; i < n; ++i) {
      if (next(8) == 0) head.append(next(40), 'v');
      else head.push_back(kAlphabet[next(kAlphabet.size())]);
    }
    HeadCheck check;
    ByteWiseHeadModel model;
    size_t from = 0;
    while (from < head.size()) {
      const size_t to = std::min(head.size(), from + 1 + next(head.size()));
      const bool ok = check.Scan(std::span<const char>(head.data() + from, to - from));
      model.Feed(std::string_view(head).substr(from, to - from));
      INFO("round " << round << " head " << ::Catch::Detail::stringify(head) << " cut at " << to);
      REQUIRE(ok == !model.failed);
      REQUIRE(check.failed() == model.failed);
      REQUIRE(check.error() == model.error);
      if (model.failed) break;
      REQUIRE(check.protocol_is_http() == model.protocol_http);
      REQUIRE(check.longest_field_line() == model.longest_field_line());
      from = to;
    }
  }
}

// ---------------------------------------------------------------- through the core

// A PUT (or GET) whose framing llhttp 8.1 reads one way and RFC 9112 (and
// a strict front end) another. kSmuggled follows on the same connection.
struct Family {
  const char* name;
  std::string request;
};

const std::string kChunkedPut = "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
const std::string kSmuggled = "DELETE /v1/kv/victim HTTP/1.1\r\nHost: h\r\n\r\n";

const std::vector<Family>& Families() {
  static const std::vector<Family> v = {
      // 1. a bare CR taken as the end of a chunk-size, chunk-ext, last-chunk or trailer line
      {"chunk-size CR + byte", kChunkedPut + "3\rXabc\r\n0\r\n\r\n"},
      {"chunk-size CR CR (llhttp's own vector)", kChunkedPut + "5\r\r;ABCD\r\n34\r\nE\r\n0\r\n\r\n"},
      {"chunk-size CR SP", kChunkedPut + "3\r abc\r\n0\r\n\r\n"},
      {"chunk-ext name CR + byte", kChunkedPut + "3;a\rXabc\r\n0\r\n\r\n"},
      {"chunk-ext value CR + byte", kChunkedPut + "3;a=b\rXabc\r\n0\r\n\r\n"},
      {"quoted chunk-ext CR + byte", kChunkedPut + "3;a=\"b\"\rXabc\r\n0\r\n\r\n"},
      {"last-chunk CR + byte", kChunkedPut + "3\r\nabc\r\n0\rX\r\n"},
      {"last-chunk ext CR + byte", kChunkedPut + "3\r\nabc\r\n0;a\rX\r\n"},
      {"empty trailer section CR + byte", kChunkedPut + "3\r\nabc\r\n0\r\n\rX"},
      {"trailer section end CR + byte", kChunkedPut + "3\r\nabc\r\n0\r\nX-T: 1\r\n\rX"},
      {"trailer empty value CR + byte", kChunkedPut + "3\r\nabc\r\n0\r\nX-T:\rXY: 1\r\n\r\n"},
      // 2. the CRLF after chunk data never checked
      {"chunk data + two bytes", kChunkedPut + "3\r\nabcXY0\r\n\r\n"},
      {"chunk data + CR + byte", kChunkedPut + "3\r\nabc\rX0\r\n\r\n"},
      {"chunk data + byte + LF", kChunkedPut + "3\r\nabcX\n0\r\n\r\n"},
      {"chunk data + LF LF", kChunkedPut + "3\r\nabc\n\n0\r\n\r\n"},
      {"chunk data + CR CR", kChunkedPut + "3\r\nabc\r\r0\r\n\r\n"},
      {"chunk data one byte short",
       kChunkedPut + "4\r\nabc\r\n0\r\n\r\n"},  // llhttp reads "abc\r" as data, skips "\n0"
      {"chunk data spilling into the next size",
       kChunkedPut + "1\r\nAB" "0\r\n\r\n"},
      // 3. a bare CR in the header section
      {"head end CR + byte", "GET /healthz HTTP/1.1\r\nHost: h\r\n\rX"},
      {"head end CR + byte on a PUT", "PUT /v1/kv/x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\rXabc"},
      {"empty value CR + byte", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A:\rZ\r\n\r\n"},
      {"empty value CR swallowing the T of Transfer-Encoding",
       "POST /admin/compact HTTP/1.1\r\nHost: h\r\nX:\rXTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"whitespace value CR + byte", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A:  \rZ\r\n\r\n"},
      {"value CR + byte", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A: v\rZ\r\n\r\n"},
      {"request line CR + byte", "GET /healthz HTTP/1.1\rXHost: h\r\n\r\n"},
      {"head end CR CR LF", "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\r\n"},
  };
  return v;
}

struct Outcome {
  std::vector<testing::ParsedResponse> responses;
  bool closed = false;
  bool victim_deleted = false;
  bool victim_dispatched = false;
};

// Feeds family + kSmuggled, whole (step 0) or in pieces of `step` bytes.
Outcome Run(const Family& f, FakeKvHandler::Mode mode, size_t step) {
  Harness h(mode);
  h.handler.store["victim"] = {7, "keep me", "text/plain"};
  const std::string bytes = f.request + kSmuggled;
  if (step == 0) {
    h.Feed(bytes);
  } else {
    h.FeedInSteps(bytes, step);
  }
  h.conn->FeedEof(h.now);
  h.Pump();
  Outcome out;
  out.responses = SplitResponses(h.wire);
  out.closed = h.conn->ShouldClose();
  out.victim_deleted = h.handler.store.count("victim") == 0;
  for (const std::string& key : h.handler.keys_seen) out.victim_dispatched |= key == "victim";
  return out;
}

TEST_CASE("each llhttp 8.1 framing family is refused 400 and the request behind it never runs",
          "[http][framing][smuggling]") {
  for (const Family& f : Families()) {
    for (auto mode : {FakeKvHandler::Mode::kSync, FakeKvHandler::Mode::kDeferred}) {
      for (size_t step : {size_t{0}, size_t{1}, size_t{2}, size_t{7}}) {
        INFO("family: " << f.name << (mode == FakeKvHandler::Mode::kSync ? " [sync]" : " [deferred]")
                        << " [step " << step << "]");
        Outcome out = Run(f, mode, step);
        REQUIRE(out.responses.size() == 1);
        CHECK(out.responses[0].status == 400);
        CHECK(out.responses[0].Header("connection") == "close");
        CHECK(out.closed);
        CHECK_FALSE(out.victim_dispatched);
        CHECK_FALSE(out.victim_deleted);
      }
    }
  }
}

TEST_CASE("the same requests with correct framing run both requests", "[http][framing][smuggling]") {
  // The control group: proves the follow-up DELETE would run if the framing
  // were accepted, so the test above cannot pass for a wrong reason.
  const std::vector<Family> good = {
      {"chunked", kChunkedPut + "3\r\nabc\r\n0\r\n\r\n"},
      {"chunked with ext and trailer", kChunkedPut + "3;a=\"b\"\r\nabc\r\n0;z\r\nX-T: 1\r\n\r\n"},
      {"chunk data with CR and LF", kChunkedPut + "4\r\n\r\n\r\n\r\n0\r\n\r\n"},
      {"empty value", "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A:\r\n\r\n"},
  };
  for (const Family& f : good) {
    for (size_t step : {size_t{0}, size_t{1}}) {
      INFO(f.name << " [step " << step << "]");
      Outcome out = Run(f, FakeKvHandler::Mode::kSync, step);
      REQUIRE(out.responses.size() == 2);
      CHECK(out.responses[0].status < 300);
      CHECK(out.responses[1].status == 204);
      CHECK(out.victim_deleted);
    }
  }
}

TEST_CASE("every split of a smuggling family is refused the same way", "[http][framing][smuggling]") {
  for (const Family& f : Families()) {
    const std::string bytes = f.request + kSmuggled;
    for (size_t cut = 1; cut < bytes.size(); ++cut) {
      INFO("family: " << f.name << " cut at " << cut);
      Harness h(FakeKvHandler::Mode::kSync);
      h.handler.store["victim"] = {7, "keep me", "text/plain"};
      h.Feed(std::string_view(bytes).substr(0, cut));
      h.Feed(std::string_view(bytes).substr(cut));
      auto responses = SplitResponses(h.wire);
      REQUIRE(responses.size() == 1);
      CHECK(responses[0].status == 400);
      CHECK(h.handler.store.count("victim") == 1);
    }
  }
}

}  // namespace
}  // namespace kingx::http
