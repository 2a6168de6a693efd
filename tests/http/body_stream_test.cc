// Connection with a BodyStream: the body is pulled one piece at a time, only
// once the previous piece was written whole; the next pipelined request
// waits; kAgain parks the response until ResumeOutput (the wait is the
// producer's: no send deadline while the client has every byte sent, only
// while output is pending); kError closes with a short body; HEAD never pulls.
#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "http/connection.h"
#include "http/responses.h"
#include "tests/http/test_support.h"

namespace kingx::http {
namespace {

using testing::SplitResponses;

// Produces `pieces` pieces of `piece_bytes` bytes, byte i of the body being
// 'a' + (i / piece_bytes) % 26, always into the same buffer: a piece pulled
// before the previous one was written would overwrite bytes still unsent.
class PatternStream : public BodyStream {
 public:
  PatternStream(size_t piece_bytes, size_t pieces) : piece_bytes_(piece_bytes), pieces_(pieces) {}
  static std::string Expected(size_t piece_bytes, size_t pieces) {
    std::string s;
    for (size_t i = 0; i < pieces; ++i) s.append(piece_bytes, static_cast<char>('a' + i % 26));
    return s;
  }
  Pull Next(std::string_view* piece) override {
    ++calls;
    if (again_at == produced) {
      again_at = SIZE_MAX;
      return Pull::kAgain;
    }
    if (error_at == produced) return Pull::kError;
    buf_.assign(piece_bytes_, static_cast<char>('a' + produced % 26));
    ++produced;
    *piece = buf_;
    return Pull::kPiece;
  }
  uint64_t length() const { return uint64_t{piece_bytes_} * pieces_; }

  size_t calls = 0;
  size_t produced = 0;
  size_t again_at = SIZE_MAX;  // answer kAgain once, before piece N
  size_t error_at = SIZE_MAX;  // answer kError before piece N

 private:
  const size_t piece_bytes_;
  const size_t pieces_;
  std::string buf_;
};

// GET /v1/kv/s answers with the stream given to it; anything else 200 "ok".
class StreamHandler : public Handler {
 public:
  std::shared_ptr<PatternStream> next_stream;
  int requests = 0;
  void OnRequest(Connection& conn, const Request& req) override {
    ++requests;
    if (req.route == Route::kKv && req.key == "s" && next_stream) {
      Response r;
      r.status = 200;
      r.content_type = "application/octet-stream";
      r.stream = next_stream;
      r.stream_length = next_stream->length();
      conn.Respond(r, now);
      return;
    }
    conn.Respond(TextResponse(200, "text/plain", "ok\n"), now);
  }
  void OnBody(Connection&, std::span<const char>, uint64_t) override {}
  void OnBodyEnd(Connection&, uint64_t) override {}
  void OnAbort(Connection&) override {}
  uint64_t now = 1000;
};

// An I/O layer whose socket takes at most `per_write` bytes per write.
struct SlowPeer {
  explicit SlowPeer(Limits l = Limits{}) : limits(l), conn(std::make_unique<Connection>(handler, limits, nullptr, 1000)) {}
  Limits limits;
  StreamHandler handler;
  std::unique_ptr<Connection> conn;
  std::string wire;

  void Feed(std::string_view bytes) { conn->Feed(std::span<const char>(bytes.data(), bytes.size()), handler.now); }
  // One write of at most per_write bytes; false when nothing was pending.
  bool WriteSome(size_t per_write) {
    if (!conn->HasOutput()) return false;
    struct iovec iov[64];
    const size_t n = conn->GatherOutput(iov, 64);
    size_t total = 0;
    for (size_t i = 0; i < n && total < per_write; ++i) {
      const size_t take = std::min(per_write - total, iov[i].iov_len);
      wire.append(static_cast<const char*>(iov[i].iov_base), take);
      total += take;
    }
    conn->ConsumeOutput(total, handler.now);
    return true;
  }
  void Drain(size_t per_write) {
    for (int i = 0; i < 10'000'000 && WriteSome(per_write); ++i) {
    }
  }
};

TEST_CASE("a streamed body is sent whole, in order, one piece pulled at a time", "[http][connection][stream]") {
  for (size_t per_write : {size_t{1} << 20, size_t{7000}, size_t{1000}, size_t{1}}) {
    SlowPeer p;
    auto stream = std::make_shared<PatternStream>(4096, 40);
    p.handler.next_stream = stream;
    p.Feed("GET /v1/kv/s HTTP/1.1\r\nHost: h\r\n\r\n");
    // Pulled lazily: never more than the bytes written so far allow.
    size_t written_before = 0;
    while (p.WriteSome(per_write)) {
      const size_t body_written = p.wire.size() > 100 ? p.wire.size() - 100 : 0;  // heads are < 200 B
      CHECK(stream->produced <= body_written / 4096 + 3);
      REQUIRE(p.wire.size() > written_before);
      written_before = p.wire.size();
    }
    auto responses = SplitResponses(p.wire);
    INFO("per write " << per_write);
    REQUIRE(responses.size() == 1);
    CHECK(responses[0].status == 200);
    CHECK(responses[0].Header("content-length") == std::to_string(stream->length()));
    CHECK(responses[0].body == PatternStream::Expected(4096, 40));
    CHECK(stream->calls == 40);
    CHECK_FALSE(p.conn->Streaming());
    CHECK_FALSE(p.conn->ShouldClose());
  }
}

TEST_CASE("a pipelined request waits until the streamed body before it was pulled whole",
          "[http][connection][stream]") {
  SlowPeer p;
  auto stream = std::make_shared<PatternStream>(1000, 10);
  p.handler.next_stream = stream;
  p.Feed("GET /v1/kv/s HTTP/1.1\r\nHost: h\r\n\r\nGET /healthz HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(p.handler.requests == 1);
  CHECK(p.conn->Streaming());
  // Long past the header deadline of the waiting request: it is not timed out.
  p.handler.now += p.limits.header_timeout_ms * 3;
  CHECK(p.conn->DeadlineMs() == 1000 + p.limits.send_timeout_ms);  // the send deadline only
  p.conn->OnTimer(p.handler.now);
  CHECK_FALSE(p.conn->ShouldClose());
  p.Drain(300);
  CHECK(p.handler.requests == 2);
  auto responses = SplitResponses(p.wire);
  REQUIRE(responses.size() == 2);
  CHECK(responses[0].body == PatternStream::Expected(1000, 10));
  CHECK(responses[1].status == 200);
  CHECK(responses[1].body == "ok\n");
}

TEST_CASE("a stream that answers kAgain parks the response until ResumeOutput", "[http][connection][stream]") {
  SlowPeer p;
  auto stream = std::make_shared<PatternStream>(500, 6);
  stream->again_at = 2;
  p.handler.next_stream = stream;
  p.Feed("GET /v1/kv/s HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  p.Drain(1 << 20);
  // Two pieces out, then nothing to write, yet busy: not idle, not closing.
  CHECK(stream->produced == 2);
  CHECK_FALSE(p.conn->HasOutput());
  CHECK(p.conn->Streaming());
  CHECK_FALSE(p.conn->ShouldClose());
  // The client has every byte sent: the wait is the producer's, no deadline runs.
  CHECK(p.conn->DeadlineMs() == 0);
  p.conn->ResumeOutput(p.handler.now);
  p.Drain(1 << 20);
  CHECK_FALSE(p.conn->Streaming());
  CHECK(p.conn->ShouldClose());  // Connection: close, now that the body is whole
  auto responses = SplitResponses(p.wire);
  REQUIRE(responses.size() == 1);
  CHECK(responses[0].body == PatternStream::Expected(500, 6));
}

TEST_CASE("a stream parked past the send deadline is not cut while the client has read everything, and is "
          "cut when the client stops reading after it resumes",
          "[http][connection][stream]") {
  SlowPeer p;
  auto stream = std::make_shared<PatternStream>(500, 6);
  stream->again_at = 1;
  std::weak_ptr<PatternStream> weak = stream;
  p.handler.next_stream = stream;
  stream.reset();
  p.Feed("GET /v1/kv/s HTTP/1.1\r\nHost: h\r\n\r\n");
  p.Drain(1 << 20);
  REQUIRE(p.conn->Streaming());
  // The producer takes three send timeouts (a slow disk): the client read
  // everything, so nothing is due and the timer changes nothing.
  p.handler.now += 3 * p.limits.send_timeout_ms;
  p.conn->OnTimer(p.handler.now);
  CHECK_FALSE(p.conn->ShouldClose());
  CHECK(p.conn->Streaming());
  // The piece arrives: the send deadline runs from now, for the client.
  p.conn->ResumeOutput(p.handler.now);
  REQUIRE(p.conn->HasOutput());
  CHECK(p.conn->DeadlineMs() == p.handler.now + p.limits.send_timeout_ms);
  p.handler.now = p.conn->DeadlineMs() - 1;
  p.conn->OnTimer(p.handler.now);
  CHECK_FALSE(p.conn->ShouldClose());
  // The client does not read it.
  p.handler.now += 1;
  p.conn->OnTimer(p.handler.now);
  CHECK(p.conn->ShouldClose());
  CHECK_FALSE(p.conn->HasOutput());
  p.handler.next_stream.reset();
  p.conn.reset();  // the abandoned piece (a write may reference it) goes with the connection
  CHECK(weak.expired());
}

TEST_CASE("a stream parked with its head still unread is cut at the send deadline", "[http][connection][stream]") {
  SlowPeer p;
  auto stream = std::make_shared<PatternStream>(500, 6);
  stream->again_at = 0;  // the first piece is not there with the head
  p.handler.next_stream = stream;
  p.Feed("GET /v1/kv/s HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(p.conn->HasOutput());  // the head: the client reads nothing
  REQUIRE(p.conn->DeadlineMs() == p.handler.now + p.limits.send_timeout_ms);
  p.handler.now = p.conn->DeadlineMs();
  p.conn->OnTimer(p.handler.now);
  CHECK(p.conn->ShouldClose());
  CHECK_FALSE(p.conn->HasOutput());
}

TEST_CASE("a stream that fails mid-body closes the connection after a short body", "[http][connection][stream]") {
  SlowPeer p;
  auto stream = std::make_shared<PatternStream>(500, 6);
  stream->error_at = 3;
  p.handler.next_stream = stream;
  p.Feed("GET /v1/kv/s HTTP/1.1\r\nHost: h\r\n\r\nGET /healthz HTTP/1.1\r\nHost: h\r\n\r\n");
  p.Drain(100);
  CHECK(p.conn->ShouldClose());
  CHECK_FALSE(p.conn->HasOutput());
  CHECK(p.handler.requests == 1);  // the pipelined request is never served
  const size_t head_end = p.wire.find("\r\n\r\n") + 4;
  CHECK(p.wire.substr(head_end) == PatternStream::Expected(500, 3));
  CHECK(p.wire.find("Content-Length: 3000\r\n") != std::string::npos);
}

TEST_CASE("HEAD with a streamed body sends its length and pulls nothing", "[http][connection][stream]") {
  SlowPeer p;
  auto stream = std::make_shared<PatternStream>(500, 6);
  p.handler.next_stream = stream;
  p.Feed("HEAD /v1/kv/s HTTP/1.1\r\nHost: h\r\n\r\n");
  p.Drain(1 << 20);
  CHECK(stream->calls == 0);
  CHECK_FALSE(p.conn->Streaming());
  CHECK(p.wire.find("Content-Length: 3000\r\n") != std::string::npos);
  CHECK(p.wire.size() == p.wire.find("\r\n\r\n") + 4);
}

TEST_CASE("destroying a connection mid-stream releases the stream", "[http][connection][stream]") {
  std::weak_ptr<PatternStream> weak;
  {
    SlowPeer p;
    auto stream = std::make_shared<PatternStream>(500, 6);
    weak = stream;
    p.handler.next_stream = stream;
    p.Feed("GET /v1/kv/s HTTP/1.1\r\nHost: h\r\n\r\n");
    p.WriteSome(100);
    p.handler.next_stream.reset();
    stream.reset();
    CHECK_FALSE(weak.expired());  // the pending piece references it
  }
  CHECK(weak.expired());
}

}  // namespace
}  // namespace kingx::http
