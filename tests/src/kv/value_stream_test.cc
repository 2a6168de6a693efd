// ValueStream: a compressed value reaches the client whole, one frame at a
// time, with its piece reserved in the response budget; a GET whose stream
// finds the budget full waits unanswered and is answered in arrival order
// (or given up); a value that cannot be decoded is found before any byte is
// sent.
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

// Answers every GET with a ValueStream of `value`; without room in the
// budget the GET waits in `waiters` until Serve answers it.
class StreamingHandler : public http::Handler {
 public:
  StreamingHandler(ByteBudget& b, StreamWaiters& w) : budget(b), waiters(w) {}
  ByteBudget& budget;
  StreamWaiters& waiters;
  engine::Value value;
  engine::Status prime_status;
  void OnRequest(http::Connection& conn, const http::Request& request) override {
    auto s = std::make_shared<ValueStream>(value, nullptr, budget);
    if (!s->TryReserve()) {
      StreamWaiters::Waiter w;
      w.stream = std::move(s);
      w.conn = &conn;
      w.request = &request;
      waiters.Park(std::move(w));
      return;
    }
    Answer(conn, std::move(s));
  }
  void Answer(http::Connection& conn, std::shared_ptr<ValueStream> s) {
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
  void OnBody(http::Connection&, std::span<const char>, uint64_t) override {}
  void OnBodyEnd(http::Connection&, uint64_t) override {}
  void OnAbort(http::Connection&) override {}
};

// Answers the waiters that get room now, oldest first; returns how many.
size_t Serve(StreamWaiters& waiters) {
  size_t n = 0;
  StreamWaiters::Waiter w;
  while (waiters.TakeFitting(&w)) {
    static_cast<StreamingHandler*>(w.conn->user_data())->Answer(*w.conn, std::move(w.stream));
    ++n;
  }
  return n;
}

struct Client {
  Client(ByteBudget& b, StreamWaiters& w, engine::Value v) : handler(b, w), conn(handler, limits, nullptr, 0) {
    handler.value = std::move(v);
    conn.set_user_data(&handler);
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

TEST_CASE("GETs whose streams find the response budget full wait unanswered and are served first come first served",
          "[src][kv][stream]") {
  ByteBudget budget(engine::kFrameRawBytes);  // room for one stream at a time
  StreamWaiters waiters;
  const std::string raw = Text(5 * engine::kFrameRawBytes + 17, 2);
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<Client>(budget, waiters, Stored(raw)));
    clients.back()->Get();
  }
  // The first holds the budget; the others have nothing sent, not even a
  // head, and no deadline of the connection runs: the wait is the server's.
  CHECK(waiters.size() == 2);
  CHECK(waiters.HeadNeed() == engine::kFrameRawBytes);
  for (int i = 1; i < 3; ++i) {
    CHECK_FALSE(clients[i]->conn.HasOutput());
    CHECK(clients[i]->wire.empty());
    CHECK(clients[i]->conn.DeadlineMs() == 0);
  }
  CHECK_FALSE(waiters.HeadFits());
  CHECK(Serve(waiters) == 0);  // still no room
  for (size_t done = 0; done < clients.size(); ++done) {
    Client& c = *clients[done];
    while (c.Write(1 << 20)) {
    }
    CHECK(c.wire.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(c.Body() == raw);
    CHECK_FALSE(c.conn.Streaming());
    CHECK(budget.used() == 0);  // its last piece was written: the stream is gone
    CHECK(waiters.HeadFits() == (done + 1 < clients.size()));
    CHECK(Serve(waiters) == (done + 1 < clients.size() ? 1u : 0u));
  }
  CHECK(waiters.empty());
}

TEST_CASE("a waiting GET is given up oldest first, or cancelled, and keeps no room", "[src][kv][stream]") {
  ByteBudget budget(engine::kFrameRawBytes);
  StreamWaiters waiters;
  const std::string raw = Text(2 * engine::kFrameRawBytes, 4);
  Client holder(budget, waiters, Stored(raw));
  holder.Get();
  REQUIRE(budget.used() == engine::kFrameRawBytes);
  auto stream = [&] { return std::make_shared<ValueStream>(Stored(raw), nullptr, budget); };
  StreamWaiters::Waiter a, b, c;
  a.stream = stream();
  a.since_ms = 100;
  b.stream = stream();
  b.since_ms = 150;
  c.stream = stream();
  c.since_ms = 200;
  std::weak_ptr<ValueStream> b_stream = b.stream;
  http::Connection* gone = &holder.conn;  // only compared: names b's connection
  b.conn = gone;
  waiters.Park(std::move(a));
  waiters.Park(std::move(b));
  waiters.Park(std::move(c));
  CHECK(waiters.HeadSinceMs() == 100);
  StreamWaiters::Waiter out;
  CHECK_FALSE(waiters.TakeExpired(1099, 1000, &out));
  REQUIRE(waiters.TakeExpired(1100, 1000, &out));
  CHECK(out.since_ms == 100);
  out = StreamWaiters::Waiter();
  waiters.Cancel(*gone);  // its connection went away: dropped, stream and all
  CHECK(b_stream.expired());
  CHECK(waiters.size() == 1);
  CHECK(waiters.HeadSinceMs() == 200);
  CHECK_FALSE(waiters.TakeExpired(1150, 1000, &out));
  CHECK(budget.used() == engine::kFrameRawBytes);  // waiters reserve nothing
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
