// ValueStream: a compressed value reaches the client whole, one frame at a
// time, with its piece reserved in the response budget; a stream that finds
// the budget full waits and is resumed in arrival order; a value that cannot
// be decoded is found before any byte is sent.
#include "src/kv/value_stream.h"

#include <catch2/catch.hpp>

#include <sys/uio.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/compress.h"
#include "http/responses.h"

namespace kingx {
namespace {

std::string Text(size_t n, uint32_t seed) {
  static const char* kWords[] = {"alpha ", "beta ", "gamma ", "delta ", "kingx ", "value ", "frame ", "zstd "};
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < n) s += kWords[rng() % 8];
  s.resize(n);
  return s;
}

engine::Value Stored(const std::string& raw, bool one_frame = false) {
  auto stored = std::make_shared<std::string>();
  if (one_frame) {
    REQUIRE(engine::CompressFrame(raw, 1, stored.get()).ok());
  } else {
    REQUIRE(engine::CompressFrames(raw, 1, stored.get()).ok());
  }
  engine::Value v;
  v.seq = 7;
  v.raw_len = raw.size();
  v.codec = engine::Codec::kZstd;
  v.stored = *stored;
  v.holder = stored;
  return v;
}

// Answers every GET with a ValueStream of `value`.
class StreamingHandler : public http::Handler {
 public:
  StreamingHandler(ByteBudget& b, StreamWaiters& w) : budget(b), waiters(w) {}
  ByteBudget& budget;
  StreamWaiters& waiters;
  engine::Value value;
  engine::Status prime_status;
  void OnRequest(http::Connection& conn, const http::Request&) override {
    auto s = std::make_shared<ValueStream>(value, nullptr, budget, waiters, conn);
    prime_status = s->Prime();
    if (!prime_status.ok()) {
      conn.Respond(http::ErrorResponse(prime_status), 0);
      return;
    }
    http::Response r;
    r.status = 200;
    r.stream = s;
    r.stream_length = s->length();
    conn.Respond(r, 0);
  }
  void OnBody(http::Connection&, std::span<const char>) override {}
  void OnBodyEnd(http::Connection&) override {}
  void OnAbort(http::Connection&) override {}
};

struct Client {
  Client(ByteBudget& b, StreamWaiters& w, engine::Value v) : handler(b, w), conn(handler, limits, nullptr, 0) {
    handler.value = std::move(v);
  }
  http::Limits limits;
  StreamingHandler handler;
  http::Connection conn;
  std::string wire;
  void Get() {
    const std::string req = "GET /v1/kv/k HTTP/1.1\r\nHost: h\r\n\r\n";
    conn.Feed(std::span<const char>(req.data(), req.size()), 0);
  }
  // One write of at most n bytes; false when nothing is pending.
  bool Write(size_t n) {
    if (!conn.HasOutput()) return false;
    iovec iov[16];
    const size_t k = conn.GatherOutput(iov, 16);
    size_t total = 0;
    for (size_t i = 0; i < k && total < n; ++i) {
      const size_t take = std::min(n - total, iov[i].iov_len);
      wire.append(static_cast<const char*>(iov[i].iov_base), take);
      total += take;
    }
    conn.ConsumeOutput(total, 0);
    return true;
  }
  std::string Body() const { return wire.substr(wire.find("\r\n\r\n") + 4); }
};

TEST_CASE("a compressed value is sent whole while at most one frame of it is decoded", "[src][kv][stream]") {
  for (bool one_frame : {false, true}) {
    INFO((one_frame ? "one large frame (older data)" : "bounded frames"));
    ByteBudget budget(32 << 20);
    StreamWaiters waiters;
    const std::string raw = Text(3 * (1 << 20) + 4321, 1);
    {
      Client c(budget, waiters, Stored(raw, one_frame));
      c.Get();
      uint64_t most = 0;
      while (c.Write(10000)) most = std::max(most, budget.used());
      CHECK(c.Body() == raw);
      CHECK(c.conn.requests_served() == 1);
      CHECK_FALSE(c.conn.Streaming());
      if (one_frame) {
        CHECK(most > engine::kFrameRawBytes);  // the older frame needed a context...
        CHECK(most < (4u << 20));              // ...of about one window, not the value
      } else {
        CHECK(most == engine::kFrameRawBytes);
      }
    }
    CHECK(budget.used() == 0);
  }
}

TEST_CASE("streams that find the response budget full wait and are resumed first come first served",
          "[src][kv][stream]") {
  ByteBudget budget(engine::kFrameRawBytes);  // room for one stream at a time
  StreamWaiters waiters;
  const std::string raw = Text(5 * engine::kFrameRawBytes + 17, 2);
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<Client>(budget, waiters, Stored(raw)));
    clients.back()->Get();
  }
  // The first holds the budget; the others sent their head and wait.
  CHECK(waiters.size() == 2);
  for (int i = 1; i < 3; ++i) {
    CHECK(clients[i]->conn.Streaming());
    while (clients[i]->Write(1 << 20)) {
    }
    CHECK(clients[i]->Body().empty());
    CHECK(clients[i]->conn.DeadlineMs() != 0);  // the send deadline bounds the wait
  }
  CHECK(waiters.Resume(0, nullptr, nullptr) == 0);  // still no room
  for (size_t done = 0; done < clients.size(); ++done) {
    Client& c = *clients[done];
    while (c.Write(1 << 20)) {
    }
    CHECK(c.Body() == raw);
    CHECK_FALSE(c.conn.Streaming());
    CHECK(budget.used() == 0);  // its last piece was written: the stream is gone
    CHECK(waiters.Resume(0, nullptr, nullptr) == (done + 1 < clients.size() ? 1u : 0u));
  }
  CHECK(waiters.empty());
}

TEST_CASE("a compressed value that cannot be decoded is answered 500 before any byte of it",
          "[src][kv][stream]") {
  ByteBudget budget(1 << 20);
  StreamWaiters waiters;
  engine::Value v = Stored(Text(100000, 3));
  v.raw_len += 1;  // claims a byte more than its frames hold: fails at the end
  auto garbage = std::make_shared<std::string>(5000, 'x');
  engine::Value bad = v;
  bad.stored = *garbage;
  bad.holder = garbage;
  {
    Client c(budget, waiters, bad);
    c.Get();
    CHECK_FALSE(c.handler.prime_status.ok());
    while (c.Write(1 << 20)) {
    }
    CHECK(c.wire.rfind("HTTP/1.1 500", 0) == 0);
  }
  {
    // The first pieces are fine: the failure shows mid-body, and the
    // connection is closed after a short body.
    Client c(budget, waiters, v);
    c.Get();
    CHECK(c.handler.prime_status.ok());
    while (c.Write(1 << 20)) {
    }
    CHECK(c.conn.ShouldClose());
    CHECK(c.Body().size() < v.raw_len);
  }
  CHECK(budget.used() == 0);
}

}  // namespace
}  // namespace kingx
