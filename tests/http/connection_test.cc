// Connection: exact responses, every split of the input, pipelining,
// 100-continue, body pause/resume, timeouts, output ownership, idle memory.
#include "http/connection.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include <cstring>
#include <random>

#include "http/clock.h"
#include "http/output_queue.h"
#include "http/parser.h"
#include "tests/http/test_support.h"

namespace kingx::http {
namespace {

using testing::FakeKvHandler;
using testing::Harness;
using testing::NormalizeDate;
using testing::SplitResponses;

constexpr auto kSync = FakeKvHandler::Mode::kSync;
constexpr auto kDeferred = FakeKvHandler::Mode::kDeferred;

const std::string kPipeline =
    "PUT /v1/kv/k%00ey HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
    "GET /v1/kv/k%00ey HTTP/1.1\r\nHost: h\r\n\r\n"
    "PUT /v1/kv/k%00ey HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nbye\r\n2\r\n!!\r\n0\r\nT: v\r\n\r\n"
    "HEAD /v1/kv/k%00ey HTTP/1.1\r\nHost: h\r\n\r\n"
    "DELETE /v1/kv/k%00ey HTTP/1.1\r\nHost: h\r\n\r\n"
    "GET /v1/kv/k%00ey HTTP/1.1\r\nHost: h\r\n\r\n"
    "GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";

const std::string kPipelineAnswer =
    "HTTP/1.1 201 Created\r\nDate: <date>\r\nContent-Length: 0\r\nETag: \"1\"\r\nKeep-Alive: timeout=75\r\n\r\n"
    "HTTP/1.1 200 OK\r\nDate: <date>\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nETag: \"1\"\r\n"
    "Keep-Alive: timeout=75\r\n\r\nhello"
    "HTTP/1.1 204 No Content\r\nDate: <date>\r\nETag: \"2\"\r\nKeep-Alive: timeout=75\r\n\r\n"
    "HTTP/1.1 200 OK\r\nDate: <date>\r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\nETag: \"2\"\r\n"
    "Keep-Alive: timeout=75\r\n\r\n"
    "HTTP/1.1 204 No Content\r\nDate: <date>\r\nKeep-Alive: timeout=75\r\n\r\n"
    "HTTP/1.1 404 Not Found\r\nDate: <date>\r\nContent-Type: application/problem+json\r\nContent-Length: 102\r\n"
    "Keep-Alive: timeout=75\r\n\r\n"
    "{\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404,\"detail\":\"No value is stored under this key.\"}\n"
    "HTTP/1.1 200 OK\r\nDate: <date>\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
    "ok\n";

TEST_CASE("a pipeline of PUT, GET, chunked PUT, HEAD, DELETE, GET is answered exactly, in order", "[http][connection]") {
  for (auto mode : {kSync, kDeferred}) {
    Harness h(mode);
    h.Feed(kPipeline);
    CHECK(NormalizeDate(h.wire) == kPipelineAnswer);
    CHECK(h.conn->ShouldClose());
    CHECK_FALSE(h.conn->HasOutput());
    CHECK(h.handler.requests == 7);
    CHECK(h.conn->requests_served() == 7);
  }
}

TEST_CASE("the pipeline gives the same bytes when split at every byte boundary", "[http][connection]") {
  for (auto mode : {kSync, kDeferred}) {
    for (size_t cut = 1; cut < kPipeline.size(); ++cut) {
      Harness h(mode);
      h.Feed(std::string_view(kPipeline).substr(0, cut));
      h.Feed(std::string_view(kPipeline).substr(cut));
      INFO("cut at " << cut);
      REQUIRE(NormalizeDate(h.wire) == kPipelineAnswer);
    }
  }
}

TEST_CASE("the pipeline gives the same bytes fed one byte at a time and in random pieces", "[http][connection]") {
  for (auto mode : {kSync, kDeferred}) {
    Harness one(mode);
    one.FeedInSteps(kPipeline, 1);
    CHECK(NormalizeDate(one.wire) == kPipelineAnswer);
    std::mt19937 rng(42);
    for (int round = 0; round < 200; ++round) {
      Harness h(mode);
      size_t pos = 0;
      while (pos < kPipeline.size()) {
        size_t n = std::uniform_int_distribution<size_t>(1, 40)(rng);
        h.Feed(std::string_view(kPipeline).substr(pos, n));
        pos += n;
      }
      INFO("round " << round);
      REQUIRE(NormalizeDate(h.wire) == kPipelineAnswer);
    }
  }
}

TEST_CASE("a pipelined PUT then GET of the same key in one packet sees the PUT", "[http][connection][pipelining]") {
  for (auto mode : {kSync, kDeferred}) {
    Harness h(mode);
    h.conn->Feed(std::span<const char>(kPipeline.data(), 200), h.now);  // the PUT and part of the GET
    // Deferred: the PUT is with the handler; the GET must not be dispatched yet.
    if (mode == kDeferred) {
      CHECK(h.handler.requests == 1);
      CHECK(h.handler.HasPending());
    }
    h.Pump();
    h.Feed(std::string_view(kPipeline).substr(200));
    auto responses = SplitResponses(h.wire, false, {3});
    REQUIRE(responses.size() == 7);
    CHECK(responses[0].status == 201);
    CHECK(responses[1].status == 200);
    CHECK(responses[1].body == "hello");
  }
}

TEST_CASE("Expect: 100-continue gets 100 Continue once the handler accepted the head", "[http][connection][expect]") {
  for (auto mode : {kSync, kDeferred}) {
    Harness h(mode);
    h.Feed("PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    CHECK(h.wire == "HTTP/1.1 100 Continue\r\n\r\n");
    h.Feed("abc");
    auto all = SplitResponses(h.wire, true);
    REQUIRE(all.size() == 2);
    CHECK(all[0].status == 100);
    CHECK(all[1].status == 201);
    CHECK_FALSE(h.conn->ShouldClose());
  }
}

TEST_CASE("Expect: 100-continue over the body limit is refused with 413 at once, and the connection closes",
          "[http][connection][expect]") {
  Limits limits;
  limits.max_body_bytes = 100;
  Harness h(kSync, limits);
  h.Feed("PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 101\r\n\r\n");
  auto all = SplitResponses(h.wire, true);
  REQUIRE(all.size() == 1);
  CHECK(all[0].status == 413);
  CHECK(all[0].body.find("\"limit\":100") != std::string::npos);
  CHECK(all[0].Header("connection") == "close");
  CHECK(h.conn->ShouldClose());
  CHECK(h.handler.requests == 0);
}

TEST_CASE("a precondition that fails on the head of an Expect request gets 412 without 100, then close",
          "[http][connection][expect]") {
  {
    Harness h(kSync);
    h.handler.store["a"] = {7, "old", "text/plain"};
    h.Feed("PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nIf-None-Match: *\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    auto all = SplitResponses(h.wire, true);
    REQUIRE(all.size() == 1);
    CHECK(all[0].status == 412);
    CHECK(all[0].Header("connection") == "close");
    CHECK(h.conn->ShouldClose());
    CHECK(h.handler.store["a"].value == "old");
  }
  // A handler that answers only after OnRequest returned has let the core
  // send 100 Continue: the client sends the body, which is then skipped.
  Harness d(kDeferred);
  d.handler.store["a"] = {7, "old", "text/plain"};
  d.Feed("PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nIf-None-Match: *\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  d.Feed("abcGET /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n");
  auto all = SplitResponses(d.wire, true);
  REQUIRE(all.size() == 3);
  CHECK(all[0].status == 100);
  CHECK(all[1].status == 412);
  CHECK(all[2].body == "old");
}

TEST_CASE("an early answer without Expect skips the rest of the body and keeps the connection",
          "[http][connection]") {
  for (auto mode : {kSync, kDeferred}) {
    Harness h(mode);
    h.handler.store["a"] = {7, "old", "text/plain"};
    h.Feed("PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nIf-Match: \"6\"\r\nContent-Length: 10\r\n\r\n01234");
    h.Feed("56789GET /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n");
    auto all = SplitResponses(h.wire);
    REQUIRE(all.size() == 2);
    CHECK(all[0].status == 412);
    CHECK(all[1].status == 200);
    CHECK(all[1].body == "old");
    if (mode == kSync) CHECK(h.handler.body_pieces == 0);
    CHECK_FALSE(h.conn->ShouldClose());
  }
}

TEST_CASE("body pieces are at most body_part_bytes and PauseBody stops them until ResumeBody",
          "[http][connection][backpressure]") {
  Limits limits;
  limits.body_part_bytes = 4;
  limits.max_buffered_input_bytes = 16;
  Harness h(kSync, limits);
  h.handler.pause_each_body_piece = true;
  std::string body(40, 'x');
  h.conn->Feed(std::span<const char>(std::string("PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 40\r\n\r\n")),
               h.now);
  std::string more = body.substr(0, 20);
  h.conn->Feed(std::span<const char>(more.data(), more.size()), h.now);
  CHECK(h.handler.body_pieces == 1);
  CHECK(h.conn->DeadlineMs() == 0);    // paused: no body timeout against the client
  CHECK_FALSE(h.conn->WantsRead());    // 16 bytes buffered: stop reading
  std::string rest = body.substr(20);
  h.conn->Feed(std::span<const char>(rest.data(), rest.size()), h.now);  // still taken, never dropped
  for (int i = 0; i < 20 && h.handler.body_ends == 0; ++i) h.conn->ResumeBody(h.now);
  h.Pump();
  CHECK(h.handler.body_pieces == 10);
  CHECK(h.handler.largest_piece == 4);
  CHECK(h.handler.store["a"].value == body);
  CHECK(SplitResponses(h.wire).at(0).status == 201);
  CHECK(h.conn->WantsRead());
}

TEST_CASE("a body piece buffered behind a pause is delivered intact by ResumeBody",
          "[http][connection][backpressure][regression]") {
  // Regression: Drive consumed the input before handing the piece to OnBody,
  // and consuming the last buffered byte cleared the buffer, which wrote a
  // NUL over the first byte of a piece that started at the buffer's start
  // (large PUTs stored with one byte zeroed when the write queue was full).
  Harness h(kSync);
  h.handler.pause_each_body_piece = true;
  h.conn->Feed(std::span<const char>(std::string("PUT /v1/kv/z HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\nab")),
               h.now);
  CHECK(h.handler.body_pieces == 1);
  h.conn->Feed(std::span<const char>(std::string("cdefgh")), h.now);  // buffered whole: the body is paused
  for (int i = 0; i < 4 && h.handler.body_ends == 0; ++i) h.conn->ResumeBody(h.now);
  h.Pump();
  CHECK(h.handler.store["z"].value == "abcdefgh");
  CHECK(SplitResponses(h.wire).at(0).status == 201);
}

TEST_CASE("the header timeout answers 408 and closes; the deadline is total, not per read", "[http][connection][timeout]") {
  Harness h(kSync);
  CHECK(h.conn->DeadlineMs() == 1000 + 10000);  // the first request's header deadline runs from the start
  h.Advance(5000);
  h.Feed("GET /healthz HTTP/1.1\r\n");
  h.Advance(4000);
  h.Feed("Host: h\r\n");  // progress does not extend a header deadline
  CHECK(h.conn->DeadlineMs() == 1000 + 10000);
  h.Advance(999);
  CHECK(h.wire.empty());
  h.Advance(1);
  auto all = SplitResponses(h.wire);
  REQUIRE(all.size() == 1);
  CHECK(all[0].status == 408);
  CHECK(all[0].body.find("--header-timeout-ms") != std::string::npos);  // names the setting and its value
  CHECK(all[0].body.find("\"limit\":10000") != std::string::npos);
  CHECK(h.conn->ShouldClose());
  CHECK(h.counters.timeouts == 1);
}

TEST_CASE("an idle keep-alive connection closes silently when keepalive_timeout passes", "[http][connection][timeout]") {
  Harness h(kSync);
  h.Feed("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n");
  size_t written = h.wire.size();
  const uint64_t idle_since = h.now;
  CHECK(h.conn->DeadlineMs() == idle_since + 75000);  // its memory went back at once: no trim deadline
  h.Advance(74999);
  CHECK_FALSE(h.conn->ShouldClose());
  CHECK(h.conn->DeadlineMs() == idle_since + 75000);
  h.Advance(1);
  CHECK(h.conn->ShouldClose());
  CHECK(h.wire.size() == written);  // nothing sent
}

TEST_CASE("the body timeout aborts the handler's request and answers 408", "[http][connection][timeout]") {
  Harness h(kSync);
  h.Feed("PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n01234");
  CHECK(h.conn->DeadlineMs() == h.now + 60000);
  h.Advance(30000);
  h.Feed("5");
  CHECK(h.conn->DeadlineMs() == h.now + 60000);  // each body read restarts it
  h.Advance(60000);
  CHECK(h.handler.aborts == 1);
  auto all = SplitResponses(h.wire);
  REQUIRE(all.size() == 1);
  CHECK(all[0].status == 408);
  CHECK(all[0].body.find("--body-timeout-ms") != std::string::npos);
  CHECK(all[0].body.find("\"limit\":60000") != std::string::npos);
  CHECK(h.conn->ShouldClose());
  CHECK(h.handler.store.empty());
}

TEST_CASE("no timer runs while the handler holds a request", "[http][connection][timeout]") {
  Harness h(kDeferred);
  h.conn->Feed(std::span<const char>(std::string("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")), h.now);
  CHECK(h.handler.HasPending());
  CHECK(h.conn->DeadlineMs() == 0);
  h.now += 1000000;
  h.conn->OnTimer(h.now);
  CHECK_FALSE(h.conn->ShouldClose());
  h.Pump();
  CHECK(SplitResponses(h.wire).at(0).status == 200);
}

TEST_CASE("output the peer never reads is abandoned at the send deadline", "[http][connection][timeout]") {
  uint64_t now = 1000;
  FakeKvHandler handler(kSync, &now);
  Limits limits;
  Connection conn(handler, limits, nullptr, now);
  std::string req = "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n";
  conn.Feed(std::span<const char>(req.data(), req.size()), now);
  REQUIRE(conn.HasOutput());
  CHECK(conn.DeadlineMs() == now + limits.send_timeout_ms);
  now += limits.send_timeout_ms;
  conn.OnTimer(now);
  CHECK_FALSE(conn.HasOutput());
  CHECK(conn.ShouldClose());
  struct iovec iov[4];
  CHECK(conn.GatherOutput(iov, 4) == 0);
}

// Writes `bytes` of the connection's output (gathered as an I/O layer would).
size_t WriteSome(Connection& conn, size_t bytes, uint64_t now, std::string* wire) {
  struct iovec iov[16];
  const size_t n = conn.GatherOutput(iov, 16);
  size_t done = 0;
  for (size_t i = 0; i < n && done < bytes; ++i) {
    const size_t take = std::min(bytes - done, iov[i].iov_len);
    wire->append(static_cast<const char*>(iov[i].iov_base), take);
    done += take;
  }
  conn.ConsumeOutput(done, now);
  return done;
}

// A handler that notes every response's end, serving "a" (3000 bytes).
struct NotedEnds {
  uint64_t now = 1000;
  FakeKvHandler handler{kSync, &now};
  Limits limits;
  NotedEnds() {
    handler.note_ends = true;
    handler.store["a"] = {1, std::string(3000, 'v'), "text/plain"};
  }
};

TEST_CASE_METHOD(NotedEnds, "a response's end is reported when its last byte is written, with its body bytes, in order",
                 "[http][connection][response_end]") {
  Connection conn(handler, limits, nullptr, now);
  const std::string req = "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n"
                          "HEAD /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n"
                          "GET /v1/kv/missing HTTP/1.1\r\nHost: h\r\n\r\n";
  conn.Feed(std::span<const char>(req.data(), req.size()), now);
  std::string wire;
  // Byte by byte: each end comes exactly with the last byte of its response.
  std::vector<size_t> ended_at;
  while (conn.HasOutput()) {
    const size_t before = handler.ends.size();
    WriteSome(conn, 1, now, &wire);
    if (handler.ends.size() != before) ended_at.push_back(wire.size());
  }
  const auto responses = SplitResponses(wire, false, {1});
  REQUIRE(responses.size() == 3);
  REQUIRE(handler.ends.size() == 3);
  const size_t first_end = wire.find("HTTP/1.1", 1);
  const size_t second_end = wire.find("HTTP/1.1", first_end + 1);
  CHECK(ended_at == std::vector<size_t>{first_end, second_end, wire.size()});
  CHECK(handler.ends[0].note == "/v1/kv/a");
  CHECK(handler.ends[0].body_bytes_sent == 3000);
  CHECK(handler.ends[1].note == "/v1/kv/a");
  CHECK(handler.ends[1].body_bytes_sent == 0);  // HEAD
  CHECK(handler.ends[2].note == "/v1/kv/missing");
  CHECK(handler.ends[2].body_bytes_sent == responses[2].body.size());  // the problem+json body
  for (const auto& e : handler.ends) CHECK(e.complete);
}

TEST_CASE_METHOD(NotedEnds, "a response cut short reports the body bytes that left: send timeout, write in flight, "
                 "destruction", "[http][connection][response_end]") {
  const std::string req = "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\nGET /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n";
  std::string wire;
  SECTION("send timeout with part of a write in flight") {
    Connection conn(handler, limits, nullptr, now);
    conn.Feed(std::span<const char>(req.data(), req.size()), now);
    REQUIRE(conn.OutputBytes() % 2 == 0);  // both answered (pipelined), alike
    const size_t head = conn.OutputBytes() / 2 - 3000;
    WriteSome(conn, head + 100, now, &wire);
    conn.NoteInFlightSent(50);  // of the next write, still in flight
    CHECK(handler.ends.empty());
    now += limits.send_timeout_ms;
    conn.OnTimer(now);
    REQUIRE(handler.ends.size() == 2);
    CHECK(handler.ends[0].body_bytes_sent == 150);
    CHECK_FALSE(handler.ends[0].complete);
    CHECK(handler.ends[1].body_bytes_sent == 0);
    CHECK_FALSE(handler.ends[1].complete);
  }
  SECTION("destroyed with its head half written") {
    {
      Connection conn(handler, limits, nullptr, now);
      conn.Feed(std::span<const char>(req.data(), 38), now);
      WriteSome(conn, 10, now, &wire);
      CHECK(handler.ends.empty());
    }
    REQUIRE(handler.ends.size() == 1);
    CHECK(handler.ends[0].body_bytes_sent == 0);
    CHECK_FALSE(handler.ends[0].complete);
  }
  SECTION("a handler that notes nothing gets no end") {
    handler.note_ends = false;
    Connection conn(handler, limits, nullptr, now);
    conn.Feed(std::span<const char>(req.data(), req.size()), now);
    while (conn.HasOutput()) WriteSome(conn, 1000, now, &wire);
    CHECK(handler.responded == 2);
    CHECK(handler.ends.empty());
  }
}

TEST_CASE("gathered bytes stay valid while more responses are appended", "[http][connection][output]") {
  uint64_t now = 1000;
  FakeKvHandler handler(kSync, &now);
  handler.store["a"] = {1, std::string(3000, 'v'), "text/plain"};
  Limits limits;
  limits.pipeline_output_bytes = limits.max_buffered_output_bytes;  // all 51 answered while the write is in flight
  Connection conn(handler, limits, nullptr, now);
  std::string req = "GET /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n";
  conn.Feed(std::span<const char>(req.data(), req.size()), now);
  struct iovec iov[8];
  size_t n = conn.GatherOutput(iov, 8);
  REQUIRE(n == 2);  // head, then the value by reference
  std::vector<std::string> copies;
  for (size_t i = 0; i < n; ++i) copies.emplace_back(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
  // While that "write" is in flight, many more responses are queued.
  for (int i = 0; i < 50; ++i) conn.Feed(std::span<const char>(req.data(), req.size()), now);
  handler.store.clear();  // the value's holder keeps the bytes alive anyway
  for (size_t i = 0; i < n; ++i) {
    CHECK(std::string(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len) == copies[i]);
  }
  // Drain everything with short writes of 7 bytes.
  std::string wire;
  for (int guard = 0; guard < 1000000 && conn.HasOutput(); ++guard) {
    size_t k = conn.GatherOutput(iov, 8);
    REQUIRE(k > 0);
    size_t take = std::min<size_t>(7, iov[0].iov_len);
    wire.append(static_cast<const char*>(iov[0].iov_base), take);
    conn.ConsumeOutput(take, now);
  }
  auto all = SplitResponses(wire);
  REQUIRE(all.size() == 51);
  for (const auto& r : all) CHECK(r.body == std::string(3000, 'v'));
}

TEST_CASE("a small held body goes out copied beside its head, a larger one by reference",
          "[http][connection][output]") {
  uint64_t now = 1000;
  FakeKvHandler handler(kSync, &now);
  const std::string small(Connection::kCopyBodyMaxBytes, 's');
  const std::string large(Connection::kCopyBodyMaxBytes + 1, 'l');
  handler.store["s"] = {1, small, "text/plain"};
  handler.store["l"] = {2, large, "text/plain"};
  Limits limits;
  Connection conn(handler, limits, nullptr, now);
  struct iovec iov[8];
  const std::string get_small = "GET /v1/kv/s HTTP/1.1\r\nHost: h\r\n\r\n";
  conn.Feed(std::span<const char>(get_small.data(), get_small.size()), now);
  REQUIRE(conn.GatherOutput(iov, 8) == 1);  // one piece: head and value together
  std::string one(static_cast<const char*>(iov[0].iov_base), iov[0].iov_len);
  CHECK(one.ends_with("\r\n\r\n" + small));
  conn.ConsumeOutput(iov[0].iov_len, now);
  const std::string get_large = "GET /v1/kv/l HTTP/1.1\r\nHost: h\r\n\r\n";
  conn.Feed(std::span<const char>(get_large.data(), get_large.size()), now);
  REQUIRE(conn.GatherOutput(iov, 8) == 2);  // the head, then the value where it lies
  CHECK(std::string(static_cast<const char*>(iov[1].iov_base), iov[1].iov_len) == large);
}

TEST_CASE("pipelined requests wait while the output is over its limit", "[http][connection][backpressure]") {
  uint64_t now = 1000;
  FakeKvHandler handler(kSync, &now);
  Limits limits;
  limits.max_buffered_output_bytes = 500;
  Connection conn(handler, limits, nullptr, now);
  std::string many;
  for (int i = 0; i < 20; ++i) many += "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n";
  conn.Feed(std::span<const char>(many.data(), many.size()), now);
  CHECK(handler.requests < 20);
  CHECK(conn.OutputBytes() > 500);
  CHECK_FALSE(conn.WantsRead());
  std::string wire;
  for (int guard = 0; guard < 1000 && conn.HasOutput(); ++guard) {
    struct iovec iov[16];
    size_t k = conn.GatherOutput(iov, 16);
    size_t total = 0;
    for (size_t i = 0; i < k; ++i) {
      wire.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
      total += iov[i].iov_len;
    }
    conn.ConsumeOutput(total, now);
  }
  CHECK(handler.requests == 20);
  CHECK(SplitResponses(wire).size() == 20);
}

// The client reads up to max bytes of conn's output (appended to *wire).
void ReadOutput(Connection& conn, size_t max, uint64_t now, std::string* wire) {
  struct iovec iov[16];
  const size_t k = conn.GatherOutput(iov, 16);
  size_t took = 0;
  for (size_t i = 0; i < k && took < max; ++i) {
    const size_t n = std::min(iov[i].iov_len, max - took);
    wire->append(static_cast<const char*>(iov[i].iov_base), n);
    took += n;
  }
  conn.ConsumeOutput(took, now);
}

TEST_CASE("a pipelined request behind a large answer is dispatched once that answer is nearly sent",
          "[http][connection][backpressure]") {
  // A slow reader that pipelines GETs of a large value would otherwise have
  // the next one looked up (and its value verified) as soon as the first
  // answer drained under max_buffered_output_bytes, long before any of it
  // can be sent.
  uint64_t now = 1000;
  FakeKvHandler handler(kSync, &now);
  handler.store["big"] = {1, std::string(1 << 20, 'v'), "application/octet-stream"};
  handler.store["small"] = {2, "s", "text/plain"};
  Limits limits;
  Connection conn(handler, limits, nullptr, now);
  const std::string get = "GET /v1/kv/big HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string three = get + get + "GET /v1/kv/small HTTP/1.1\r\nHost: h\r\n\r\n";
  conn.Feed(std::span<const char>(three.data(), three.size()), now);
  REQUIRE(handler.requests == 1);
  std::string wire;
  auto read = [&](size_t max) { ReadOutput(conn, max, now, &wire); };
  read(16 << 10);  // what a slow reader's socket takes at first
  CHECK(handler.requests == 1);
  for (int guard = 0; guard < 100 && handler.requests == 1; ++guard) {
    const size_t pending = conn.OutputBytes();
    read(48 << 10);
    const size_t left = pending - std::min<size_t>(pending, 48 << 10);
    CHECK((handler.requests == 2) == (left <= limits.pipeline_output_bytes));
  }
  CHECK(handler.requests == 2);  // the second big answer is queued: the small GET waits for it
  while (conn.HasOutput()) read(1 << 20);
  CHECK(handler.requests == 3);
  const auto all = SplitResponses(wire);
  REQUIRE(all.size() == 3);
  CHECK(all[2].body == "s");
}

TEST_CASE("a pipelined request held behind a slowly read answer gets no 408: its header deadline starts once it "
          "can be served", "[http][connection][timeout][backpressure]") {
  // A client on a slow link pipelines two GETs of a value larger than the
  // output limit and reads steadily, but for longer than the header timeout:
  // both are answered whole. The second request's head arrived at once; it
  // waits for the first answer to drain, not for its own bytes.
  uint64_t now = 1000;
  FakeKvHandler handler(kSync, &now);
  const std::string value(3 << 20, 'v');
  handler.store["big"] = {1, value, "application/octet-stream"};
  Limits limits;
  Connection conn(handler, limits, nullptr, now);
  const std::string get = "GET /v1/kv/big HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string two = get + get;
  conn.Feed(std::span<const char>(two.data(), two.size()), now);
  REQUIRE(handler.requests == 1);
  std::string wire;
  auto read = [&](size_t max) { ReadOutput(conn, max, now, &wire); };
  // 64 KiB a second: the first answer takes ~48 s, past the header timeout
  // (10 s) many times over, each second within the send timeout (60 s).
  for (int second = 0; second < 40 && handler.requests == 1; ++second) {
    now += 1000;
    conn.OnTimer(now);
    REQUIRE_FALSE(conn.ShouldClose());
    REQUIRE(conn.DeadlineMs() > now);
    read(64 << 10);
  }
  while (conn.HasOutput()) {
    now += 1000;
    conn.OnTimer(now);
    read(1 << 20);
  }
  const auto all = SplitResponses(wire);
  REQUIRE(all.size() == 2);
  CHECK(all[0].status == 200);
  CHECK(all[1].status == 200);
  CHECK(all[1].body == value);
  CHECK(handler.requests == 2);
  CHECK_FALSE(conn.ShouldClose());
  // Served, the connection is idle: the keep-alive deadline runs.
  CHECK(conn.DeadlineMs() == now + limits.keepalive_timeout_ms);
}

TEST_CASE("a pipelined request whose head is cut short still times out once it can be served",
          "[http][connection][timeout][backpressure]") {
  // The deadline only waits for the output before the request: a partial
  // head behind a large answer gets its 408 a header timeout after the
  // answer drained under the limit.
  uint64_t now = 1000;
  FakeKvHandler handler(kSync, &now);
  handler.store["big"] = {1, std::string(2 << 20, 'v'), "application/octet-stream"};
  Limits limits;
  Connection conn(handler, limits, nullptr, now);
  const std::string bytes = "GET /v1/kv/big HTTP/1.1\r\nHost: h\r\n\r\nGET /v1/kv/big HTTP/1.1\r\nHo";
  conn.Feed(std::span<const char>(bytes.data(), bytes.size()), now);
  REQUIRE(handler.requests == 1);
  now += 30000;  // read nothing for 30 s: the send deadline (60 s) alone runs
  conn.OnTimer(now);
  CHECK_FALSE(conn.ShouldClose());
  CHECK(conn.DeadlineMs() == 1000 + limits.send_timeout_ms);
  std::string wire;
  ReadOutput(conn, 4 << 20, now, &wire);  // the answer read whole at 31 s
  CHECK_FALSE(conn.HasOutput());
  CHECK(conn.DeadlineMs() == now + limits.header_timeout_ms);
  now += limits.header_timeout_ms;
  conn.OnTimer(now);
  REQUIRE(conn.HasOutput());
  wire.clear();
  ReadOutput(conn, 4 << 20, now, &wire);
  CHECK(SplitResponses(wire).at(0).status == 408);
  CHECK(conn.ShouldClose());
}

TEST_CASE("input is buffered, never dropped, while a request is with the handler", "[http][connection][backpressure]") {
  Limits limits;
  limits.max_buffered_input_bytes = 64;
  Harness h(kDeferred, limits);
  std::string many;
  for (int i = 0; i < 10; ++i) many += "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n";
  h.conn->Feed(std::span<const char>(many.data(), many.size()), h.now);
  CHECK(h.handler.requests == 1);
  CHECK_FALSE(h.conn->WantsRead());
  h.Pump();
  CHECK(h.handler.requests == 10);
  CHECK(SplitResponses(h.wire).size() == 10);
  CHECK(h.conn->WantsRead());
}

TEST_CASE("EOF after complete requests answers them, then closes; EOF mid-body aborts", "[http][connection][eof]") {
  Harness h(kDeferred);
  std::string two = "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\nGET /readyz HTTP/1.1\r\nHost: h\r\n\r\n";
  h.conn->Feed(std::span<const char>(two.data(), two.size()), h.now);
  h.conn->FeedEof(h.now);
  CHECK_FALSE(h.conn->ShouldClose());
  h.Pump();
  auto all = SplitResponses(h.wire);
  REQUIRE(all.size() == 2);
  CHECK(all[1].status == 200);
  CHECK(h.conn->ShouldClose());

  Harness b(kSync);
  b.Feed("PUT /v1/kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123");
  b.conn->FeedEof(b.now);
  CHECK(b.handler.aborts == 1);
  CHECK(b.conn->ShouldClose());
  CHECK(b.wire.empty());
}

TEST_CASE("destroying a connection with an unanswered request calls OnAbort once", "[http][connection]") {
  uint64_t now = 1;
  FakeKvHandler handler(kDeferred, &now);
  Limits limits;
  {
    Connection conn(handler, limits, nullptr, now);
    std::string req = "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n";
    conn.Feed(std::span<const char>(req.data(), req.size()), now);
    CHECK(handler.HasPending());
  }
  CHECK(handler.aborts == 1);
  CHECK_FALSE(handler.HasPending());
}

TEST_CASE("HTTP/1.0 closes by default and keeps alive only when asked", "[http][connection][keepalive]") {
  Harness a(kSync);
  a.Feed("GET /healthz HTTP/1.0\r\n\r\n");
  CHECK(SplitResponses(a.wire).at(0).Header("connection") == "close");
  CHECK(a.conn->ShouldClose());

  Harness b(kSync);
  b.Feed("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  auto r = SplitResponses(b.wire).at(0);
  CHECK(r.Header("connection") == "keep-alive");
  CHECK(r.Header("keep-alive") == "timeout=75");
  CHECK_FALSE(b.conn->ShouldClose());
}

TEST_CASE("a refusal by the core echoes X-Request-Id and names the Allow-ed methods", "[http][connection]") {
  Harness h(kSync);
  h.Feed("OPTIONS /v1/kv/a HTTP/1.1\r\nHost: h\r\nX-Request-Id: req-42\r\n\r\n");
  auto all = SplitResponses(h.wire);
  REQUIRE(all.size() == 1);
  CHECK(all[0].status == 405);
  CHECK(all[0].Header("x-request-id") == "req-42");
  CHECK(all[0].Header("allow") == "GET, HEAD, PUT, DELETE");
  CHECK(h.handler.requests == 0);
  CHECK(h.handler.responded_by_core == 1);
}

TEST_CASE("HEAD gets the GET's headers and Content-Length but no body", "[http][connection]") {
  Harness h(kSync);
  h.handler.store["a"] = {3, "12345", ""};
  h.Feed("HEAD /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\nGET /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n");
  auto all = SplitResponses(h.wire, false, {0});
  REQUIRE(all.size() == 2);
  CHECK(all[0].Header("content-length") == "5");
  CHECK(all[0].Header("content-type") == "application/octet-stream");
  CHECK(all[0].body.empty());
  CHECK(all[1].body == "12345");
}

TEST_CASE("If-None-Match on GET answers 304 with the ETag and no body", "[http][connection][conditional]") {
  Harness h(kSync);
  h.handler.store["a"] = {3, "12345", ""};
  h.Feed("GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"1\", W/\"3\"\r\n\r\n");
  CHECK(NormalizeDate(h.wire) ==
        "HTTP/1.1 304 Not Modified\r\nDate: <date>\r\nETag: \"3\"\r\nKeep-Alive: timeout=75\r\n\r\n");
}

TEST_CASE("an idle keep-alive connection gives its parser and output block back as soon as its answer is sent",
          "[http][connection][memory]") {
  Harness h(kSync);
  INFO("sizeof(Connection) = " << sizeof(Connection));
  CHECK(h.conn->MemoryFootprint() == sizeof(Connection));
  h.Feed(kPipeline.substr(0, kPipeline.rfind("GET /healthz")));  // everything but the closing request
  std::string big = "PUT /v1/kv/big HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n" + std::string(100000, 'b');
  h.FeedInSteps(big, 7000);
  h.Feed("GET /v1/kv/big HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE_FALSE(h.conn->ShouldClose());
  REQUIRE_FALSE(h.conn->HasOutput());
  // No timer involved: idle means nothing buffered and nothing to send.
  CHECK(h.conn->MemoryFootprint() == sizeof(Connection));
  CHECK(h.conn->DeadlineMs() == h.now + Limits().keepalive_timeout_ms);
}

TEST_CASE("an idle connection holds neither an input buffer nor a streamed body's state, only a null pointer to each",
          "[http][connection][memory]") {
  // The whole of what an idle keep-alive connection costs beyond its socket
  // handle: the object itself.
  INFO("sizeof(Connection) = " << sizeof(Connection));
  CHECK(sizeof(Connection) <= 152);
  Harness h(kSync);
  h.handler.store["a"] = {3, "12345", ""};
  h.Feed("GET /v1/kv/a HT");  // a partial head waits in a buffer of its own
  CHECK(h.conn->MemoryFootprint() > sizeof(Connection));
  h.Feed("TP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(SplitResponses(h.wire).at(0).body == "12345");
  CHECK(h.conn->MemoryFootprint() == sizeof(Connection));
  CHECK_FALSE(h.conn->Streaming());
}

TEST_CASE("a connection still sending its answer keeps its output block until it is sent", "[http][connection][memory]") {
  Harness h(kSync);
  h.handler.store["a"] = {3, "12345", ""};
  h.conn->Feed(std::span<const char>(std::string("GET /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n")), h.now);
  REQUIRE(h.conn->HasOutput());
  CHECK(h.conn->MemoryFootprint() >= sizeof(Connection) + OutputQueue::kBlockBytes);
  h.Pump();
  CHECK(h.conn->MemoryFootprint() == sizeof(Connection));
  CHECK(SplitResponses(h.wire).at(0).body == "12345");
}

TEST_CASE("the parser and output block an idle connection gave back serve the next request on another connection",
          "[http][connection][memory]") {
  // Two connections of one worker: same thread, same Limits object.
  Harness a(kSync);
  Harness b(kDeferred);
  b.conn = std::make_unique<Connection>(b.handler, a.limits, &b.counters, b.now);
  a.handler.store["k"] = {3, "12345", ""};
  b.handler.store["k"] = {4, "67890", ""};
  a.Feed("GET /v1/kv/k HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"3\"\r\n\r\n");
  REQUIRE(SplitResponses(a.wire).at(0).status == 304);
  const size_t parsers = Parser::Spares();
  const size_t blocks = OutputQueue::SpareBlocks();
  REQUIRE(parsers >= 1);
  REQUIRE(blocks >= 1);
  // b's request takes the parser a gave back and holds it while its answer
  // is deferred; the answer takes a spare block.
  b.conn->Feed(std::span<const char>(std::string("GET /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n")), b.now);
  CHECK(Parser::Spares() == parsers - 1);
  CHECK(OutputQueue::SpareBlocks() == blocks);
  b.handler.Flush();
  REQUIRE(b.conn->HasOutput());
  CHECK(OutputQueue::SpareBlocks() == blocks - 1);
  b.Pump();
  CHECK(Parser::Spares() == parsers);
  CHECK(OutputQueue::SpareBlocks() == blocks);
  // The reused parser started clean: a's If-None-Match did not leak into b's request.
  auto rb = SplitResponses(b.wire);
  REQUIRE(rb.size() == 1);
  CHECK(rb[0].status == 200);
  CHECK(rb[0].body == "67890");
  CHECK(b.conn->MemoryFootprint() == sizeof(Connection));
}

TEST_CASE("with idle_trim_ms a keep-alive connection keeps its parser between requests until the trim",
          "[http][connection][memory]") {
  Limits limits;
  limits.idle_trim_ms = 1000;
  Harness h(kSync, limits);
  h.handler.store["a"] = {3, "12345", ""};
  h.Feed("GET /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n");
  const size_t busy = h.conn->MemoryFootprint();
  CHECK(busy > sizeof(Connection));
  h.Feed("GET /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(h.conn->MemoryFootprint() == busy);  // nothing given back and taken again between requests
  const uint64_t trim_at = h.conn->DeadlineMs();
  REQUIRE(trim_at == h.now + 1000);
  h.conn->OnTimer(trim_at);  // the trim
  CHECK_FALSE(h.conn->ShouldClose());
  CHECK(h.conn->MemoryFootprint() == sizeof(Connection));
  // Then only the keep-alive deadline remains (no timer spin on the trim).
  CHECK(h.conn->DeadlineMs() == h.now + Limits().keepalive_timeout_ms);
  h.Feed("GET /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n");
  auto all = SplitResponses(h.wire);
  REQUIRE(all.size() == 3);
  for (const auto& r : all) CHECK(r.body == "12345");
  CHECK_FALSE(h.conn->ShouldClose());
}

TEST_CASE("counters see requests by method, statuses, latency and bytes", "[http][connection][metrics]") {
  Harness h(kDeferred);
  h.conn->Feed(std::span<const char>(std::string("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")), h.now);
  // Latency is measured on the real monotonic clock, in microseconds.
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  h.Pump();
  h.Feed("GET /nope HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(h.counters.requests_by_method[static_cast<size_t>(Method::kGet)] == 2);
  CHECK(h.counters.responses_by_class[2] == 1);
  CHECK(h.counters.responses_by_class[4] == 1);
  uint64_t observed = 0, at_least_2500us = 0;
  for (size_t i = 0; i < kLatencyBucketCount; ++i) {
    observed += h.counters.latency_buckets[i];
    if (i + 1 == kLatencyBucketCount || kLatencyBucketsUs[i] > 2500) at_least_2500us += h.counters.latency_buckets[i];
  }
  CHECK(observed == 2);
  CHECK(at_least_2500us == 1);  // the deferred answer, 3 ms later
  CHECK(h.counters.latency_sum_us >= 3000);
  CHECK(h.counters.bytes_in == 2 * std::string("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n").size() - 3);
  CHECK(h.counters.bytes_out == h.wire.size());
  CHECK(h.counters.connections_opened == 1);
  CHECK(h.handler.responded == 2);
  CHECK(h.handler.responded_by_core == 1);
}

TEST_CASE("a request's latency starts at the clock reading the I/O layer's now_ms came from",
          "[http][connection][metrics][clock]") {
  Harness h(kSync);
  // The event's one reading, then 20 ms of its other work (connections
  // served before this one) before this connection's bytes are fed: the
  // request was in the server all that time.
  h.now = ReadClockMs();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  h.Feed("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(h.handler.responded == 1);
  CHECK(h.counters.latency_sum_us >= 20000);
}

TEST_CASE("a now_ms no clock reading of the thread gave starts the latency at a reading of its own",
          "[http][connection][metrics][clock]") {
  Harness h(kSync);  // now_ms driven by hand (1000): the thread's readings say nothing of it
  (void)ReadClockMs();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  h.Feed("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(h.handler.responded == 1);
  CHECK(h.counters.latency_sum_us < 20000);
}

TEST_CASE("a chunked body whose pieces end inside a chunk-size line is read to its end in one Feed",
          "[http][connection]") {
  // With small body pieces, a piece can end inside framing bytes and give
  // no event; the core must go on with the bytes buffered behind it.
  Limits l;
  l.body_part_bytes = 5;
  Harness h(kSync, l);
  h.Feed("PUT /v1/kv/c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
         "3;a=bcdefgh\r\nabc\r\n00000002\r\nde\r\n0\r\n\r\nGET /v1/kv/c HTTP/1.1\r\nHost: h\r\n\r\n");
  auto all = SplitResponses(h.wire);
  REQUIRE(all.size() == 2);
  CHECK(all[0].status == 201);
  CHECK(all[1].body == "abcde");
}

TEST_CASE("a core refusal reports what was read of the request line, and why", "[http][connection][logs]") {
  {
    Harness h(kSync);
    h.Feed("HEAD /v1/kv/a HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n");
    REQUIRE(h.handler.records.size() == 1);
    const auto& r = h.handler.records[0];
    CHECK(r.status == 400);
    CHECK(r.by_core);
    CHECK(r.head);  // no body was sent for it
    CHECK(r.method == "HEAD");
    CHECK(r.target == "/v1/kv/a");
    CHECK(r.protocol == "HTTP/1.1");
    CHECK(r.detail == "The request head contains a CR that is not followed by LF.");
    CHECK(h.wire.find("\r\n\r\n") + 4 == h.wire.size());
  }
  {
    Harness h(kSync);
    h.Feed("GET /" + std::string(9000, 'a'));
    REQUIRE(h.handler.records.size() == 1);
    CHECK(h.handler.records[0].status == 414);
    CHECK(h.handler.records[0].method == "GET");
    CHECK(h.handler.records[0].protocol.empty());
    CHECK_FALSE(h.handler.records[0].head);
  }
  {
    Harness h(kSync);
    h.Feed("BREW /pot HTTP/1.0\r\n\r\n");
    REQUIRE(h.handler.records.size() == 1);
    CHECK(h.handler.records[0].status == 501);
    CHECK(h.handler.records[0].method == "BREW");
    CHECK(h.handler.records[0].target == "/pot");
    CHECK(h.handler.records[0].protocol == "HTTP/1.0");
  }
  {
    Harness h(kSync);
    h.Feed("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n");
    REQUIRE(h.handler.records.size() == 1);
    CHECK(h.handler.records[0].method == "GET");
    CHECK_FALSE(h.handler.records[0].by_core);
    CHECK(h.handler.records[0].detail.empty());
  }
}

// Adds its own request id to every core response, as the server's handler does.
class DecoratingHandler : public FakeKvHandler {
 public:
  using FakeKvHandler::FakeKvHandler;
  void DecorateCoreResponse(Connection&, const Request* request, Response& response) override {
    response.AddHeader("X-Request-Id", request ? "with-request" : "without-request");
  }
};

TEST_CASE("the handler decorates every response the core writes itself", "[http][connection][logs]") {
  uint64_t now = 1000;
  Limits limits;
  Counters counters{};
  DecoratingHandler handler(kSync, &now);
  std::string wire;
  {
    Connection conn(handler, limits, &counters, now);
    std::string in = "GET /nope HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\rX";
    conn.Feed(std::span<const char>(in.data(), in.size()), now);
    struct iovec iov[16];
    size_t n = conn.GatherOutput(iov, 16);
    for (size_t i = 0; i < n; ++i) wire.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
  }
  auto all = SplitResponses(wire);
  REQUIRE(all.size() == 2);
  CHECK(all[0].status == 404);
  CHECK(all[0].Header("x-request-id") == "with-request");
  CHECK(all[1].status == 400);
  CHECK(all[1].Header("x-request-id") == "without-request");
}

TEST_CASE("an admin connection serves /admin/* and the probes, not the key-value API", "[http][connection]") {
  Harness h(kSync);
  h.conn->SetListener(Listener::kAdmin);
  h.handler.store["k"] = {1, "v", ""};
  h.Feed("POST /admin/compact HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"
         "GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n"
         "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n"
         "GET /admin/compact HTTP/1.1\r\nHost: h\r\n\r\n");
  auto all = SplitResponses(h.wire);
  REQUIRE(all.size() == 4);
  CHECK(all[0].status == 202);
  CHECK(all[1].status == 200);
  CHECK(all[2].status == 404);
  CHECK(all[3].status == 405);
  CHECK(all[3].Header("allow") == "POST");
  CHECK(h.handler.requests == 2);  // the 404 and 405 never reached the handler
}

}  // namespace
}  // namespace kingx::http

namespace kingx::http {
namespace {

TEST_CASE("a GET or HEAD of a plain key is hinted when its target and then its head were read, before dispatch",
          "[http][connection][hints]") {
  const std::string in =
      "GET /v1/kv/abc HTTP/1.1\r\nHost: h\r\n\r\n"
      "HEAD /v1/kv/d?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
      "PUT /v1/kv/abc HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx"
      "DELETE /v1/kv/abc HTTP/1.1\r\nHost: h\r\n\r\n"
      "GET /v1/kv/a%20c HTTP/1.1\r\nHost: h\r\n\r\n"
      "GET /v1/kv/ HTTP/1.1\r\nHost: h\r\n\r\n"
      "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"
      "GET /v1/kv/abc HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n";
  const std::vector<std::string> want = {"target:abc@0", "head:abc@0", "target:d@1", "head:d@1",
                                         "target:abc@7"};
  // Whole, and one byte at a time (the target and the head arrive in pieces).
  for (bool bytewise : {false, true}) {
    Harness h(kSync);
    if (bytewise) {
      for (char c : in) h.Feed(std::string(1, c));
    } else {
      h.Feed(in);
    }
    CHECK(h.handler.requests == 7);
    CHECK(h.handler.hints == want);  // the last head is refused (400): hinted at its target only
  }
}

TEST_CASE("Parser::PeekKey names the key the target hint names, from the request's first bytes",
          "[http][connection][hints]") {
  const std::vector<std::string> heads = {
      "GET /v1/kv/abc HTTP/1.1\r\nHost: h\r\n\r\n",
      "HEAD /v1/kv/d?x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /v1/kv/a?b%20c HTTP/1.1\r\nHost: h\r\n\r\n",
      "PUT /v1/kv/abc HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx",
      "DELETE /v1/kv/abc HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /v1/kv/a%20c HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /v1/kv/ HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /v1/kv HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /v2/kv/abc HTTP/1.1\r\nHost: h\r\n\r\n",
      "get /v1/kv/abc HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /v1/kv/x-y_z.1~ HTTP/1.0\r\n\r\n",
  };
  for (const std::string& head : heads) {
    INFO(head);
    Harness h(kSync);
    h.Feed(head);
    std::string hinted;
    if (!h.handler.hints.empty() && h.handler.hints[0].starts_with("target:")) {
      hinted = h.handler.hints[0].substr(7, h.handler.hints[0].rfind('@') - 7);
    }
    CHECK(std::string(Parser::PeekKey(head)) == hinted);
    // A request cut before its target's end names no key: it may go on.
    const size_t target_end = head.find_first_of(" ?", head.find(' ') + 1);
    CHECK(Parser::PeekKey(std::string_view(head).substr(0, target_end)).empty());
  }
}

TEST_CASE("a parser given back to the spares forgets its connection's hint hook", "[http][connection][hints]") {
  uint64_t now = 1000;
  Limits limits;
  FakeKvHandler handler(kSync, &now);
  {
    Connection conn(handler, limits, nullptr, now);
    const std::string in = "GET /v1/kv/abc HTTP/1.1\r\nHost: h\r\n\r\n";
    conn.Feed(std::span<const char>(in.data(), in.size()), now);
    struct iovec iov[4];
    size_t n = conn.GatherOutput(iov, 4);
    size_t bytes = 0;
    for (size_t i = 0; i < n; ++i) bytes += iov[i].iov_len;
    conn.ConsumeOutput(bytes, now);
  }
  REQUIRE(handler.hints.size() == 2);
  REQUIRE(Parser::Spares() > 0);
  // The spare that connection used, parsing alone: no hook, no call to the dead connection.
  std::unique_ptr<Parser> p = Parser::Take(limits, Listener::kMain);
  const std::string in = "GET /v1/kv/abc HTTP/1.1\r\nHost: h\r\n\r\n";
  CHECK(p->Execute(std::span<const char>(in.data(), in.size())).event == Parser::Event::kHead);
  CHECK(handler.hints.size() == 2);
  Parser::GiveBack(std::move(p));
}

}  // namespace
}  // namespace kingx::http
