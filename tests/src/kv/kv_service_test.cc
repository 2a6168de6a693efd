// KvService against a fake storage backend, driven through a real
// http::Connection fed with raw request bytes: status mapping, conditional
// requests turned into writer conditions, large-PUT part splitting,
// queue-full backpressure and orphaned writes.
#include "src/kv/kv_service.h"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/compress.h"
#include "engine/env.h"
#include "http/connection.h"
#include "http/responses.h"
#include "src/conf/access_log.h"
#include "src/kv/write_exchange.h"
#include "src/conf/log.h"
#include "src/ipc/staging_budget.h"
#include "src/kv/byte_budget.h"
#include "tests/src/support/test_util.h"

namespace kingx {
namespace {

struct Call {
  std::string what;  // "op", "begin", "part", "end", "abort"
  uint64_t token = 0;
  WriteKind kind = WriteKind::kPut;
  WriteCondition condition = WriteCondition::kNone;
  uint64_t if_match_seq = 0;
  std::string key, content_type, stored;
  engine::Codec codec = engine::Codec::kRaw;
  uint64_t raw_len = 0;
};

class FakeBackend final : public KvBackend {
 public:
  struct Stored {
    uint64_t seq;
    std::string content_type;
    std::string data;  // the value, or its zstd frames when codec is kZstd
    engine::Codec codec = engine::Codec::kRaw;
    uint64_t raw_len = 0;  // for kZstd
  };
  std::map<std::string, Stored> values;
  engine::Code read_error = engine::Code::kOk;  // forced Get outcome when not kOk
  int busy_left = 0;                            // enqueue calls still answered kBusy
  bool always_busy = false;
  size_t max_entry = 8 << 20;
  size_t gets = 0;
  std::vector<Call> calls;
  // When set, every Get answers this Value (its views may lie in a mapping).
  std::optional<engine::Value> forced_value;
  size_t read_faults = 0;  // ReportReadFault calls
  void ReportReadFault(const engine::Value&) override { ++read_faults; }

  engine::Result<engine::Value> Get(std::string_view key, engine::ReadMode mode) override {
    ++gets;
    if (read_error != engine::Code::kOk) return engine::Status(read_error, "forced");
    if (forced_value) return *forced_value;
    auto it = values.find(std::string(key));
    if (it == values.end()) return engine::Status::NotFound();
    auto holder = std::make_shared<Stored>(it->second);
    engine::Value v;
    v.seq = holder->seq;
    v.content_type = holder->content_type;
    v.raw_len = holder->codec == engine::Codec::kRaw ? holder->data.size() : holder->raw_len;
    if (mode == engine::ReadMode::kStored) {
      v.stored = holder->data;
      v.codec = holder->codec;
    } else if (mode == engine::ReadMode::kFull && holder->codec == engine::Codec::kRaw) {
      v.data = holder->data;
    } else if (mode == engine::ReadMode::kFull) {
      // Decoded whole, as engine::Reader does for kFull.
      auto decoded = std::make_shared<std::string>();
      REQUIRE(engine::DecodeValue(holder->codec, holder->data, holder->raw_len, 1ull << 30, decoded.get()).ok());
      v.data = *decoded;
      v.holder = std::shared_ptr<const void>(decoded);
      return v;
    }
    v.holder = holder;
    return v;
  }
  // The key hints, as engine::Reader gives them: PrefetchIndex leaves a
  // hash of the key, PrefetchRecord a candidate computed from the hash it
  // was given (a hash of another key gives another key's candidate).
  static uint64_t FakeHash(std::string_view key) { return std::hash<std::string_view>()(key) | 2; }
  std::vector<std::string> hinted_gets;  // "<key>" or "<key>:stale" (the hint was another key's)
  std::vector<std::string> prefetches;  // "index:<key>", "record:<key>"
  void PrefetchIndex(std::string_view key, engine::KeyProbe* hint) override {
    prefetches.push_back("index:" + std::string(key));
    *hint = engine::KeyProbe{};
    hint->hash = FakeHash(key);
  }
  void PrefetchRecord(std::string_view key, engine::KeyProbe* hint) override {
    prefetches.push_back("record:" + std::string(key));
    if (hint->hash == 0) hint->hash = FakeHash(key);
    hint->loc = hint->hash;
  }
  engine::Result<engine::Value> Get(std::string_view key, engine::ReadMode mode,
                                    const engine::KeyProbe& hint) override {
    hinted_gets.push_back(std::string(key) + (hint.loc == FakeHash(key) ? "" : ":stale"));
    return Get(key, mode);
  }
  engine::Status Busy() {
    if (always_busy) return engine::Status::Busy("full");
    if (busy_left > 0) {
      --busy_left;
      return engine::Status::Busy("full");
    }
    return engine::Status::OK();
  }
  engine::Status Enqueue(uint64_t token, const WriteRequest& r) override {
    if (auto s = Busy(); !s.ok()) return s;
    calls.push_back(Call{"op", token, r.kind, r.condition, r.if_match_seq, std::string(r.key),
                         std::string(r.content_type), std::string(r.stored), r.codec, r.raw_len});
    return engine::Status::OK();
  }
  engine::Status EnqueueLargeBegin(uint64_t token, const WriteRequest& r) override {
    if (auto s = Busy(); !s.ok()) return s;
    calls.push_back(Call{"begin", token, r.kind, r.condition, r.if_match_seq, std::string(r.key),
                         std::string(r.content_type), "", r.codec, 0});
    return engine::Status::OK();
  }
  engine::Status EnqueueLargePart(uint64_t token, std::string_view part) override {
    if (auto s = Busy(); !s.ok()) return s;
    Call c;
    c.what = "part";
    c.token = token;
    c.stored = std::string(part);
    calls.push_back(c);
    return engine::Status::OK();
  }
  engine::Status EnqueueLargeEnd(uint64_t token, uint64_t raw_len) override {
    if (auto s = Busy(); !s.ok()) return s;
    Call c;
    c.what = "end";
    c.token = token;
    c.raw_len = raw_len;
    calls.push_back(c);
    return engine::Status::OK();
  }
  engine::Status EnqueueLargeAbort(uint64_t token) override {
    if (auto s = Busy(); !s.ok()) return s;
    Call c;
    c.what = "abort";
    c.token = token;
    calls.push_back(c);
    return engine::Status::OK();
  }
  size_t MaxEntryBytes() const override { return max_entry; }
  StagingBudget* staging = nullptr;  // Staging(): none unless a test sets one
  StagingBudget* Staging() override { return staging; }
  bool Ready() const override { return true; }
  uint64_t disk_room = UINT64_MAX;  // DiskRoomFor(): bytes that fit while the disk is reported full
  bool DiskRoomFor(uint64_t bytes) const override { return bytes <= disk_room; }
  uint64_t no_progress_ms = 0;  // WriterNoProgressMs()
  uint64_t WriterNoProgressMs(uint64_t) const override { return no_progress_ms; }
  std::string RenderMetrics() override { return "metrics\n"; }
  engine::Status RequestCompaction() override { return engine::Status::OK(); }
};

// One client connection: a Connection on the service, fed raw bytes; the
// output is collected as the I/O layer would write it.
struct Client {
  Client(KvService& s, const http::Limits& limits) : service(s), conn(s, limits, nullptr, 0) {
    conn.set_user_data(&state);
  }
  ~Client() = default;
  // Feeds the bytes, then tells the service as the I/O layers do.
  void Send(const std::string& bytes, uint64_t now_ms = 1) {
    conn.Feed(std::span<const char>(bytes), now_ms);
    service.OnInput(conn, now_ms);
  }
  std::string Output() {
    std::string out;
    iovec iov[16];
    while (conn.HasOutput()) {
      const size_t n = conn.GatherOutput(iov, 16);
      size_t bytes = 0;
      for (size_t i = 0; i < n; ++i) {
        out.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
        bytes += iov[i].iov_len;
      }
      conn.ConsumeOutput(bytes, 1);
    }
    return out;
  }
  KvService& service;
  KvConnState state;
  http::Connection conn;
};

std::string Put(const std::string& key, const std::string& body, const std::string& extra = "") {
  return "PUT /v1/kv/" + key + " HTTP/1.1\r\nHost: t\r\n" + extra + "Content-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

std::string StatusLine(const std::string& out) { return out.substr(0, out.find("\r\n")); }

// The value of header `name` in the first response of `out` ("" if absent).
std::string HeaderOf(const std::string& out, const std::string& name) {
  const std::string head = out.substr(0, out.find("\r\n\r\n"));
  const size_t at = head.find("\r\n" + name + ": ");
  if (at == std::string::npos) return "";
  const size_t from = at + 4 + name.size();
  return head.substr(from, head.find("\r\n", from) - from);
}

std::vector<std::string> LinesOf(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

struct Fixture {
  explicit Fixture(KvServiceOptions o = {}, AccessLog* log = nullptr) : service(backend, log, o, nullptr, nullptr) {}
  FakeBackend backend;
  http::Limits limits;
  KvService service;
};

Completion Done(uint64_t token, engine::Code code, uint64_t seq = 0, bool existed = false) {
  Completion c;
  c.token = token;
  c.code = code;
  c.seq = seq;
  c.existed = existed;
  return c;
}

}  // namespace

TEST_CASE("GET answers the stored value with its ETag and Content-Type", "[src][kv_service]") {
  Fixture f;
  f.backend.values["k"] = {7, "text/plain", "hello"};
  Client c(f.service, f.limits);
  c.Send("GET /v1/kv/k HTTP/1.1\r\nHost: t\r\n\r\n");
  const std::string out = c.Output();
  CHECK(StatusLine(out) == "HTTP/1.1 200 OK");
  CHECK(out.find("ETag: \"7\"") != std::string::npos);
  CHECK(out.find("Content-Type: text/plain") != std::string::npos);
  CHECK(out.find("X-Request-Id: ") != std::string::npos);
  CHECK(out.substr(out.size() - 5) == "hello");
}

TEST_CASE("a GET's read gets the key hints of its own request only, even when connections interleave",
          "[src][kv_service]") {
  Fixture f;
  f.backend.values["a"] = {1, "text/plain", "A"};
  f.backend.values["b"] = {2, "text/plain", "B"};
  Client a(f.service, f.limits);
  Client b(f.service, f.limits);
  a.Send("GET /v1/kv/a HTTP/1.1\r\nHost: t\r\n");  // target hinted, head not complete
  b.Send("GET /v1/kv/b HTTP/1.1\r\nHost: t\r\n\r\n");
  a.Send("\r\n");
  CHECK(a.Output().ends_with("\r\n\r\nA"));
  CHECK(b.Output().ends_with("\r\n\r\nB"));
  CHECK(f.backend.hinted_gets == std::vector<std::string>{"b", "a"});
  // Not hinted (an escaped key): read without a hint, not with the last one.
  f.backend.hinted_gets.clear();
  const size_t gets = f.backend.gets;
  f.backend.values["a b"] = {3, "text/plain", "C"};
  a.Send("GET /v1/kv/a%20b HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK(a.Output().ends_with("\r\n\r\nC"));
  CHECK(f.backend.hinted_gets.empty());
  CHECK(f.backend.gets == gets + 1);
}

TEST_CASE("an offered probe stands in for the key hints of that key on that connection only, and reaches its read",
          "[src][kv_service]") {
  using V = std::vector<std::string>;
  Fixture f;
  f.backend.values["a"] = {1, "text/plain", "A"};
  f.backend.values["b"] = {2, "text/plain", "B"};
  Client a(f.service, f.limits);
  Client b(f.service, f.limits);
  engine::KeyProbe probe;
  probe.hash = FakeBackend::FakeHash("a");
  probe.loc = probe.hash;  // what a's own two hints would leave
  f.service.OfferKeyProbe(&a.conn, "a", &probe);
  // Pipelined: the offer is a's; b's hints are given as usual.
  a.Send("GET /v1/kv/a HTTP/1.1\r\nHost: t\r\n\r\nGET /v1/kv/b HTTP/1.1\r\nHost: t\r\n\r\n");
  const std::string out = a.Output();
  CHECK(out.find("\r\n\r\nA") != std::string::npos);
  CHECK(out.ends_with("\r\n\r\nB"));
  CHECK(f.backend.prefetches == V{"index:b", "record:b"});
  CHECK(f.backend.hinted_gets == V{"a", "b"});
  // Another connection's request for the same key hints for itself.
  f.backend.prefetches.clear();
  f.backend.hinted_gets.clear();
  b.Send("GET /v1/kv/a HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK(b.Output().ends_with("\r\n\r\nA"));
  CHECK(f.backend.prefetches == V{"index:a", "record:a"});
  // The read starts from the offered probe as it is, even a stale one
  // (the backend's read checks it).
  f.backend.prefetches.clear();
  f.backend.hinted_gets.clear();
  probe.loc = FakeBackend::FakeHash("b");
  a.Send("HEAD /v1/kv/a HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK(StatusLine(a.Output()) == "HTTP/1.1 200 OK");
  CHECK(f.backend.prefetches.empty());
  CHECK(f.backend.hinted_gets == V{"a:stale"});
  // Withdrawn: a's hints are its own again.
  f.backend.prefetches.clear();
  f.backend.hinted_gets.clear();
  f.service.OfferKeyProbe(nullptr, {}, nullptr);
  a.Send("GET /v1/kv/a HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK(a.Output().ends_with("\r\n\r\nA"));
  CHECK(f.backend.prefetches == V{"index:a", "record:a"});
  CHECK(f.backend.hinted_gets == V{"a"});
}

TEST_CASE("a request whose target hint took the offered probe asks the backend for no head hint", "[src][kv_service]") {
  using V = std::vector<std::string>;
  Fixture f;
  f.backend.values["a"] = {1, "text/plain", "A"};
  f.backend.values["b"] = {2, "text/plain", "B"};
  Client a(f.service, f.limits);
  engine::KeyProbe probe;
  probe.hash = FakeBackend::FakeHash("a");
  probe.loc = probe.hash;
  f.service.OfferKeyProbe(&a.conn, "a", &probe);
  // The target is read under the offer; the head ends after it was withdrawn.
  a.Send("GET /v1/kv/a HTTP/1.1\r\nHost: t\r\n");
  f.service.OfferKeyProbe(nullptr, {}, nullptr);
  a.Send("\r\n");
  CHECK(a.Output().ends_with("\r\n\r\nA"));
  CHECK(f.backend.prefetches.empty());
  CHECK(f.backend.hinted_gets == V{"a"});
  // The connection's next request is hinted for itself, at both stages.
  f.backend.prefetches.clear();
  f.backend.hinted_gets.clear();
  a.Send("GET /v1/kv/b HTTP/1.1\r\nHost: t\r\n");
  a.Send("\r\n");
  CHECK(a.Output().ends_with("\r\n\r\nB"));
  CHECK(f.backend.prefetches == V{"index:b", "record:b"});
  CHECK(f.backend.hinted_gets == V{"b"});
}

TEST_CASE("GET maps storage outcomes to HTTP statuses", "[src][kv_service]") {
  Fixture f;
  Client c(f.service, f.limits);
  c.Send("GET /v1/kv/missing HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK(StatusLine(c.Output()) == "HTTP/1.1 404 Not Found");
  f.backend.read_error = engine::Code::kBusy;
  c.Send("GET /v1/kv/x HTTP/1.1\r\nHost: t\r\n\r\n");
  std::string out = c.Output();
  CHECK(StatusLine(out) == "HTTP/1.1 503 Service Unavailable");
  CHECK(out.find("Retry-After:") != std::string::npos);
  f.backend.read_error = engine::Code::kCorruption;
  c.Send("GET /v1/kv/x HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK(StatusLine(c.Output()) == "HTTP/1.1 500 Internal Server Error");
}

TEST_CASE("a value whose mapped pages went after its Get answers 500 and is reported, never a crash",
          "[src][kv_service][faults]") {
  // A file mapped whole, then cut to one page: the value's content type
  // ends its first page and the value lies on the second, as in a record
  // whose segment was truncated between the Get and the answer.
  test::TempDir dir;
  const std::string path = dir.path + "/segment";
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  auto file = engine::PosixEnv().OpenFile(path, engine::OpenMode::kCreateTruncate);
  REQUIRE(file.ok());
  REQUIRE(file.value()->Append(std::string(page - 10, 'h') + "text/plain" + std::string(page, 'v')).ok());
  auto map = engine::PosixEnv().MapReadOnly(path, 2 * page);
  REQUIRE(map.ok());
  const char* base = map.value()->data();
  REQUIRE(file.value()->Truncate(page).ok());
  Fixture f;
  engine::Value v;
  v.seq = 5;
  v.content_type = std::string_view(base + page - 10, 10);
  v.stored = std::string_view(base + page, 100);  // copied beside the head
  v.raw_len = 100;
  f.backend.forced_value = v;
  Client c(f.service, f.limits);
  c.Send("GET /v1/kv/small HTTP/1.1\r\nHost: t\r\n\r\n");
  std::string out = c.Output();
  CHECK(StatusLine(out) == "HTTP/1.1 500 Internal Server Error");
  CHECK(out.find("application/problem+json") != std::string::npos);
  CHECK(f.backend.read_faults == 1);
  // A content type on a cut page, the value sent from the mapping (HEAD: no body).
  v.content_type = std::string_view(base + page, 10);
  v.stored = std::string_view(base, page - 10);
  v.raw_len = page - 10;
  f.backend.forced_value = v;
  c.Send("HEAD /v1/kv/big HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK(StatusLine(c.Output()) == "HTTP/1.1 500 Internal Server Error");
  c.Send("GET /v1/kv/big HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK(StatusLine(c.Output()) == "HTTP/1.1 500 Internal Server Error");
  CHECK(f.backend.read_faults == 3);
  // Readable pages: answered from them, on the same connection.
  v.content_type = std::string_view(base + page - 10, 10);
  v.stored = std::string_view(base, 100);
  v.raw_len = 100;
  f.backend.forced_value = v;
  c.Send("GET /v1/kv/ok HTTP/1.1\r\nHost: t\r\n\r\n");
  out = c.Output();
  CHECK(StatusLine(out) == "HTTP/1.1 200 OK");
  CHECK(out.find("Content-Type: text/plain") != std::string::npos);
  CHECK(out.ends_with("\r\n\r\n" + std::string(100, 'h')));
  CHECK(f.backend.read_faults == 3);
}

TEST_CASE("If-None-Match on GET answers 304 and HEAD sends the length without the body", "[src][kv_service]") {
  Fixture f;
  f.backend.values["k"] = {3, "", "0123456789"};
  Client c(f.service, f.limits);
  c.Send("GET /v1/kv/k HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"3\"\r\n\r\n");
  CHECK(StatusLine(c.Output()) == "HTTP/1.1 304 Not Modified");
  c.Send("GET /v1/kv/k HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"2\"\r\n\r\n");
  CHECK(StatusLine(c.Output()) == "HTTP/1.1 200 OK");
  c.Send("HEAD /v1/kv/k HTTP/1.1\r\nHost: t\r\n\r\n");
  const std::string out = c.Output();
  CHECK(StatusLine(out) == "HTTP/1.1 200 OK");
  CHECK(out.find("Content-Length: 10\r\n") != std::string::npos);
  CHECK(out.substr(out.size() - 4) == "\r\n\r\n");
}

TEST_CASE("X-Request-Id is echoed when the client sends one", "[src][kv_service]") {
  Fixture f;
  Client c(f.service, f.limits);
  c.Send("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: abc-123\r\n\r\n");
  CHECK(c.Output().find("X-Request-Id: abc-123\r\n") != std::string::npos);
}

TEST_CASE("PUT is answered only when the writer's completion arrives", "[src][kv_service]") {
  Fixture f;
  Client c(f.service, f.limits);
  c.Send(Put("k", "value", "Content-Type: text/x\r\n"));
  CHECK(c.Output().empty());
  REQUIRE(f.backend.calls.size() == 1);
  const Call& op = f.backend.calls[0];
  CHECK(op.what == "op");
  CHECK(op.key == "k");
  CHECK(op.content_type == "text/x");
  CHECK(op.stored == "value");
  CHECK(op.raw_len == 5);
  CHECK(op.condition == WriteCondition::kNone);
  CHECK(f.service.AwaitsStorage(c.state));
  f.service.OnCompletion(Done(op.token, engine::Code::kOk, 42, false), 2);
  std::string out = c.Output();
  CHECK(StatusLine(out) == "HTTP/1.1 201 Created");
  CHECK(out.find("ETag: \"42\"") != std::string::npos);
  c.Send(Put("k", "again"));
  REQUIRE(f.backend.calls.size() == 2);
  f.service.OnCompletion(Done(f.backend.calls[1].token, engine::Code::kOk, 43, true), 3);
  CHECK(StatusLine(c.Output()) == "HTTP/1.1 204 No Content");
  CHECK(f.service.InFlight() == 0);
}

TEST_CASE("each write starts fresh, whatever the write before it on the service left", "[src][kv_service]") {
  // The writes' exchanges and small body buffers are reused: nothing of one
  // request (condition, body, codec, answer) may reach the next one.
  ByteBudget budget(1 << 20);
  KvServiceOptions o;
  o.body_budget = &budget;
  Fixture f(o);
  Client a(f.service, f.limits);
  Client b(f.service, f.limits);
  const std::string long_body(900, 'l');
  a.Send(Put("k", long_body, "If-Match: \"5\"\r\n"));
  b.Send(Put("j", "short", "If-None-Match: *\r\n"));
  REQUIRE(f.backend.calls.size() == 2);
  f.service.OnCompletion(Done(f.backend.calls[0].token, engine::Code::kPreconditionFailed), 2);
  f.service.OnCompletion(Done(f.backend.calls[1].token, engine::Code::kOk, 9, false), 2);
  CHECK(StatusLine(a.Output()) == "HTTP/1.1 412 Precondition Failed");
  CHECK(StatusLine(b.Output()) == "HTTP/1.1 201 Created");
  CHECK(budget.used() == 0);
  for (int round = 0; round < 3; ++round) {
    const size_t first = f.backend.calls.size();
    b.Send(Put("k", "v" + std::to_string(round)));
    a.Send("DELETE /v1/kv/j HTTP/1.1\r\nHost: t\r\n\r\n");
    REQUIRE(f.backend.calls.size() == first + 2);
    const Call& put = f.backend.calls[first];
    CHECK(put.what == "op");
    CHECK(put.kind == WriteKind::kPut);
    CHECK(put.stored == "v" + std::to_string(round));
    CHECK(put.raw_len == 2);
    CHECK(put.condition == WriteCondition::kNone);
    CHECK(put.if_match_seq == 0);
    const Call& del = f.backend.calls[first + 1];
    CHECK(del.kind == WriteKind::kDelete);
    CHECK(del.stored.empty());
    CHECK(del.condition == WriteCondition::kNone);
    f.service.OnCompletion(Done(put.token, engine::Code::kOk, 10 + round, true), 3);
    f.service.OnCompletion(Done(del.token, engine::Code::kNotFound), 3);
    const std::string put_out = b.Output();
    CHECK(StatusLine(put_out) == "HTTP/1.1 204 No Content");
    CHECK(put_out.find("ETag: \"" + std::to_string(10 + round) + "\"") != std::string::npos);
    CHECK(StatusLine(a.Output()) == "HTTP/1.1 404 Not Found");
  }
  CHECK(f.service.InFlight() == 0);
  CHECK(budget.used() == 0);
}

TEST_CASE("write completions map engine codes to HTTP statuses", "[src][kv_service]") {
  const std::pair<engine::Code, std::string> cases[] = {
      {engine::Code::kNotFound, "HTTP/1.1 404 Not Found"},
      {engine::Code::kPreconditionFailed, "HTTP/1.1 412 Precondition Failed"},
      {engine::Code::kNoSpace, "HTTP/1.1 507 Insufficient Storage"},
      {engine::Code::kReadOnly, "HTTP/1.1 503 Service Unavailable"},
  };
  for (const auto& [code, line] : cases) {
    Fixture f;
    Client c(f.service, f.limits);
    c.Send("DELETE /v1/kv/k HTTP/1.1\r\nHost: t\r\n\r\n");
    REQUIRE(f.backend.calls.size() == 1);
    CHECK(f.backend.calls[0].kind == WriteKind::kDelete);
    f.service.OnCompletion(Done(f.backend.calls[0].token, code), 2);
    CHECK(StatusLine(c.Output()) == line);
  }
}

TEST_CASE("a write whose outcome is unknown is answered 503 with Retry-After, saying so", "[src][kv_service]") {
  Fixture f;
  Client c(f.service, f.limits);
  c.Send("PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nv");
  REQUIRE(f.backend.calls.size() == 1);
  f.service.OnCompletion(Done(f.backend.calls[0].token, engine::Code::kOutcomeUnknown), 2);
  const std::string out = c.Output();
  CHECK(StatusLine(out) == "HTTP/1.1 503 Service Unavailable");
  CHECK(out.find("Retry-After: 1\r\n") != std::string::npos);
  CHECK(out.find("outcome unknown") != std::string::npos);
}

TEST_CASE("while the writer makes no progress a new write is refused before it is queued, saying not applied",
          "[src][kv_service]") {
  Fixture f;
  f.backend.no_progress_ms = 61000;
  Client c(f.service, f.limits);
  for (const std::string& request :
       {Put("k", "v"), Put("k", "v", "If-Match: \"5\"\r\n"), std::string("DELETE /v1/kv/k HTTP/1.1\r\nHost: t\r\n\r\n")}) {
    c.Send(request);
    const std::string out = c.Output();
    CHECK(StatusLine(out) == "HTTP/1.1 503 Service Unavailable");
    CHECK(HeaderOf(out, "Retry-After") == "1");
    CHECK(HeaderOf(out, "Content-Type") == "application/problem+json");
    CHECK(out.find("no progress for 61000 ms") != std::string::npos);
    CHECK(out.find("not applied") != std::string::npos);
    CHECK(out.find("\"parameter\":\"--storage-timeout-ms\"") != std::string::npos);
    CHECK_FALSE(c.conn.ShouldClose());
  }
  CHECK(f.backend.calls.empty());
  // Taken again as soon as the writer moves.
  f.backend.no_progress_ms = 0;
  c.Send(Put("k", "v"));
  CHECK(f.backend.calls.size() == 1);
}

TEST_CASE("a write whose head came before the writer's stall was known and whose body ends after it is refused, "
          "not queued, saying not applied",
          "[src][kv_service]") {
  KvServiceOptions o;
  o.part_bytes = 4096;
  o.compression_level = 0;
  Fixture f(o);
  Client c(f.service, f.limits);
  const std::string body = "0123456789";
  const std::string request = Put("k", body);
  c.Send(request.substr(0, request.size() - 3));  // the head is taken while the writer moves
  CHECK(c.Output().empty());
  f.backend.no_progress_ms = 61000;
  c.Send(request.substr(request.size() - 3), 2);
  std::string out = c.Output();
  CHECK(StatusLine(out) == "HTTP/1.1 503 Service Unavailable");
  CHECK(HeaderOf(out, "Retry-After") == "1");
  CHECK(out.find("not applied") != std::string::npos);
  CHECK(out.find("no progress for 61000 ms") != std::string::npos);
  CHECK(out.find("may or may not") == std::string::npos);
  CHECK(f.backend.calls.empty());
  CHECK_FALSE(c.conn.ShouldClose());  // its body was read to its end
  CHECK(f.service.InFlight() == 0);

  // A large value begun before: its end is not queued, it is aborted.
  f.backend.no_progress_ms = 0;
  Client big(f.service, f.limits);
  const std::string large(3 * 4096, 'L');
  const std::string large_request = Put("big", large);
  big.Send(large_request.substr(0, large_request.size() - 100), 3);
  REQUIRE(!f.backend.calls.empty());
  CHECK(f.backend.calls[0].what == "begin");
  f.backend.no_progress_ms = 61000;
  big.Send(large_request.substr(large_request.size() - 100), 4);
  out = big.Output();
  CHECK(StatusLine(out) == "HTTP/1.1 503 Service Unavailable");
  CHECK(out.find("not applied") != std::string::npos);
  for (const Call& call : f.backend.calls) CHECK(call.what != "end");
  CHECK(f.backend.calls.back().what == "abort");
  CHECK(f.service.InFlight() == 0);
}

TEST_CASE("simple preconditions become writer conditions without a read", "[src][kv_service]") {
  Fixture f;
  Client c(f.service, f.limits);
  c.Send(Put("k", "v", "If-Match: \"5\"\r\n"));
  REQUIRE(f.backend.calls.size() == 1);
  CHECK(f.backend.calls[0].condition == WriteCondition::kIfMatch);
  CHECK(f.backend.calls[0].if_match_seq == 5);
  f.service.OnCompletion(Done(f.backend.calls[0].token, engine::Code::kPreconditionFailed), 2);
  CHECK(StatusLine(c.Output()) == "HTTP/1.1 412 Precondition Failed");
  c.Send(Put("k", "v", "If-None-Match: *\r\n"));
  REQUIRE(f.backend.calls.size() == 2);
  CHECK(f.backend.calls[1].condition == WriteCondition::kIfAbsent);
  CHECK(f.backend.gets == 0);
}

TEST_CASE("other preconditions are checked against the current value, then pinned to it", "[src][kv_service]") {
  Fixture f;
  f.backend.values["k"] = {9, "", "x"};
  Client c(f.service, f.limits);
  // A list that contains the current tag: the write is pinned to seq 9.
  c.Send(Put("k", "v", "If-Match: \"1\", \"9\"\r\n"));
  REQUIRE(f.backend.calls.size() == 1);
  CHECK(f.backend.calls[0].condition == WriteCondition::kIfMatch);
  CHECK(f.backend.calls[0].if_match_seq == 9);
  f.service.OnCompletion(Done(f.backend.calls[0].token, engine::Code::kOk, 10, true), 2);
  CHECK(StatusLine(c.Output()) == "HTTP/1.1 204 No Content");
  // A list without it: 412 at once, nothing queued.
  c.Send(Put("k", "v", "If-Match: \"1\", \"2\"\r\n"));
  CHECK(StatusLine(c.Output()) == "HTTP/1.1 412 Precondition Failed");
  CHECK(f.backend.calls.size() == 1);
  // If-None-Match with the current tag on DELETE: 412.
  c.Send("DELETE /v1/kv/k HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"9\"\r\n\r\n");
  CHECK(StatusLine(c.Output()) == "HTTP/1.1 412 Precondition Failed");
  // If-None-Match with another tag on an absent key: created only if still absent.
  c.Send(Put("new", "v", "If-None-Match: \"4\"\r\n"));
  REQUIRE(f.backend.calls.size() == 2);
  CHECK(f.backend.calls[1].condition == WriteCondition::kIfAbsent);
}

TEST_CASE("a PUT larger than one part goes to the queue part by part", "[src][kv_service]") {
  KvServiceOptions o;
  o.part_bytes = 4096;
  o.compression_level = 1;
  Fixture f(o);
  REQUIRE(f.service.part_bytes() == 4096);
  std::string body;
  for (int i = 0; body.size() < 4096 * 2 + 1000; ++i) body += "line " + std::to_string(i % 50) + " of a compressible value\n";
  body.resize(4096 * 2 + 1000);
  Client c(f.service, f.limits);
  // Fed in odd-sized slices, as a socket would deliver it.
  const std::string req = Put("big", body);
  for (size_t off = 0; off < req.size(); off += 777) c.Send(req.substr(off, 777));
  REQUIRE(f.backend.calls.size() == 5);
  CHECK(f.backend.calls[0].what == "begin");
  CHECK(f.backend.calls[0].key == "big");
  CHECK(f.backend.calls[0].codec == engine::Codec::kZstd);
  std::string stored;
  for (int i = 1; i <= 3; ++i) {
    CHECK(f.backend.calls[i].what == "part");
    CHECK(f.backend.calls[i].token == f.backend.calls[0].token);
    stored += f.backend.calls[i].stored;
  }
  CHECK(f.backend.calls[4].what == "end");
  CHECK(f.backend.calls[4].raw_len == body.size());
  std::string decoded;
  REQUIRE(engine::DecodeValue(engine::Codec::kZstd, stored, body.size(), 1 << 20, &decoded).ok());
  CHECK(decoded == body);
  f.service.OnCompletion(Done(f.backend.calls[0].token, engine::Code::kOk, 1), 2);
  CHECK(StatusLine(c.Output()) == "HTTP/1.1 201 Created");
}

TEST_CASE("a body of exactly one part is one queue entry", "[src][kv_service]") {
  KvServiceOptions o;
  o.part_bytes = 4096;
  Fixture f(o);
  Client c(f.service, f.limits);
  c.Send(Put("k", std::string(4096, 'z')));
  REQUIRE(f.backend.calls.size() == 1);
  CHECK(f.backend.calls[0].what == "op");
  CHECK(f.backend.calls[0].raw_len == 4096);
}

TEST_CASE("a full queue parks the write and Poke retries it", "[src][kv_service]") {
  Fixture f;
  f.backend.busy_left = 3;
  Client c(f.service, f.limits);
  const uint64_t t0 = MonotonicMs();  // the I/O layer's clock reading, which times the first attempt
  c.Send(Put("k", "v"), t0);
  CHECK(f.backend.calls.empty());
  CHECK(f.service.NextRetryMs() != 0);
  CHECK(f.service.AwaitsStorage(c.state));
  f.service.Poke(t0 + 10);
  f.service.Poke(t0 + 20);
  CHECK(f.backend.calls.empty());
  f.service.Poke(t0 + 30);  // the fourth attempt finds room
  REQUIRE(f.backend.calls.size() == 1);
  CHECK(f.service.NextRetryMs() == 0);
  f.service.OnCompletion(Done(f.backend.calls[0].token, engine::Code::kOk, 1), t0 + 40);
  CHECK(StatusLine(c.Output()) == "HTTP/1.1 201 Created");
}

TEST_CASE("a write that waits for the queue past the bound gets 503 with Retry-After", "[src][kv_service]") {
  KvServiceOptions o;
  o.busy_give_up_ms = 60'000;  // far from any scheduling hiccup between Send and t0
  Fixture f(o);
  f.backend.always_busy = true;
  Client c(f.service, f.limits);
  const uint64_t t0 = MonotonicMs();  // the I/O layer's clock reading: the first kBusy's time
  c.Send(Put("k", "v"), t0);
  f.service.Poke(t0);
  CHECK(c.Output().empty());
  f.service.Poke(t0 + 120'000);
  const std::string out = c.Output();
  CHECK(StatusLine(out) == "HTTP/1.1 503 Service Unavailable");
  CHECK(out.find("Retry-After:") != std::string::npos);
  CHECK(f.service.InFlight() == 0);
}

TEST_CASE("a connection that dies with its write queued leaves an orphan the completion frees",
          "[src][kv_service]") {
  Fixture f;
  uint64_t token = 0;
  {
    Client c(f.service, f.limits);
    c.Send(Put("k", "v"));
    REQUIRE(f.backend.calls.size() == 1);
    token = f.backend.calls[0].token;
  }  // ~Connection → OnAbort
  CHECK(f.service.InFlight() == 1);
  f.service.OnCompletion(Done(token, engine::Code::kOk, 1), 2);
  CHECK(f.service.InFlight() == 0);
  // A stale completion for the same token is ignored.
  f.service.OnCompletion(Done(token, engine::Code::kOk, 1), 3);
  CHECK(f.service.InFlight() == 0);
}

TEST_CASE("a queued write that waits past the storage timeout gets 503 outcome unknown and stays in flight",
          "[src][kv_service]") {
  KvServiceOptions o;
  o.storage_timeout_ms = 60'000;  // far from any scheduling hiccup between Send and t0
  Fixture f(o);
  Client c(f.service, f.limits);
  // Two pipelined writes: the second is read only once the first is answered.
  const uint64_t t0 = MonotonicMs();  // the I/O layer's clock reading: when the first write was queued
  c.Send(Put("k", "v") + Put("j", "w"), t0);
  REQUIRE(f.backend.calls.size() == 1);
  const uint64_t first = f.backend.calls[0].token;
  CHECK(f.service.NextExpiryMs() != 0);
  CHECK(f.service.NextExpiryMs() <= t0 + 60'000);
  f.service.Poke(t0);
  CHECK(c.Output().empty());
  f.service.Poke(t0 + 60'000);
  std::string out = c.Output();
  CHECK(StatusLine(out) == "HTTP/1.1 503 Service Unavailable");
  CHECK(out.find("Retry-After: 1\r\n") != std::string::npos);
  CHECK(out.find("--storage-timeout-ms") != std::string::npos);
  CHECK(out.find("may or may not") != std::string::npos);
  // The answer let the pipelined write through; it has its own deadline.
  REQUIRE(f.backend.calls.size() == 2);
  const uint64_t second = f.backend.calls[1].token;
  CHECK(second != first);
  CHECK(f.service.InFlight() == 2);  // the first stays, orphaned, until its completion
  CHECK(f.service.NextExpiryMs() >= t0);
  // The late completion of the first is dropped; the second is answered.
  f.service.OnCompletion(Done(first, engine::Code::kOk, 7), t0 + 60'001);
  CHECK(c.Output().empty());
  CHECK(f.service.InFlight() == 1);
  f.service.OnCompletion(Done(second, engine::Code::kOk, 8), t0 + 60'002);
  out = c.Output();
  CHECK(StatusLine(out) == "HTTP/1.1 201 Created");
  CHECK(out.find("ETag: \"8\"") != std::string::npos);
  CHECK(f.service.InFlight() == 0);
  CHECK(f.service.NextExpiryMs() == 0);
}

TEST_CASE("a write answered in time leaves no deadline behind", "[src][kv_service]") {
  Fixture f;
  Client c(f.service, f.limits);
  c.Send(Put("k", "v"));
  REQUIRE(f.backend.calls.size() == 1);
  CHECK(f.service.NextExpiryMs() != 0);
  f.service.OnCompletion(Done(f.backend.calls[0].token, engine::Code::kOk, 1), 2);
  CHECK(StatusLine(c.Output()) == "HTTP/1.1 201 Created");
  CHECK(f.service.NextExpiryMs() == 0);
  {
    Client gone(f.service, f.limits);
    gone.Send(Put("k", "v"));
    CHECK(f.service.NextExpiryMs() != 0);
  }  // an orphan has nobody to answer: no deadline
  CHECK(f.service.NextExpiryMs() == 0);
  CHECK(f.service.InFlight() == 1);
}

TEST_CASE("an upload abandoned half-way is aborted on the queue", "[src][kv_service]") {
  KvServiceOptions o;
  o.part_bytes = 1024;
  Fixture f(o);
  {
    Client c(f.service, f.limits);
    const std::string head = "PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nContent-Length: 10000\r\n\r\n";
    c.Send(head + std::string(3000, 'q'));
  }
  REQUIRE(f.backend.calls.size() >= 3);
  CHECK(f.backend.calls.front().what == "begin");
  CHECK(f.backend.calls.back().what == "abort");
  CHECK(f.backend.calls.back().token == f.backend.calls.front().token);
  CHECK(f.service.InFlight() == 0);
}

// A shared mapping whose slot 0 runs this "worker" (generation 1), with
// its staging budget claimed and given to the service's backend (parts of
// 1 KiB, no compression), and an upload of another worker holding 1 MiB
// staged: the database is empty (share 0), so the next upload waits.
struct StagingFixture {
  static KvServiceOptions Options(uint64_t storage_timeout_ms) {
    KvServiceOptions o;
    o.part_bytes = 1024;
    o.compression_level = 0;
    o.storage_timeout_ms = storage_timeout_ms;
    return o;
  }
  explicit StagingFixture(uint64_t storage_timeout_ms = 30'000)
      : created(SharedMemory::Create(test::SmallShmSizes(4, 64))), f(Options(storage_timeout_ms)) {
    REQUIRE(created.ok());
    for (uint32_t i = 0; i < 2; ++i) test::OccupySlot(**created, i, 1);
    budget = std::make_unique<StagingBudget>(**created, 0, 1);
    other = std::make_unique<StagingBudget>(**created, 1, 1);
    budget->Claim();
    other->Claim();
    REQUIRE(other->TryReserve(&other_upload, 1 << 20, true));
    f.backend.staging = budget.get();
  }
  uint64_t Reserved() { return (*created)->control().staging.reserved_bytes.load(); }
  engine::Result<std::unique_ptr<SharedMemory>> created;
  std::unique_ptr<StagingBudget> budget, other;
  StagingBudget::Holder other_upload;
  Fixture f;
};

TEST_CASE("a large upload past the staging share is held, body unread, until staged bytes fall",
          "[src][kv_service][staging]") {
  StagingFixture sf;
  Fixture& f = sf.f;
  Client c(f.service, f.limits);
  const std::string body(3000, 'q');
  const uint64_t t0 = MonotonicMs();  // the hold's clock
  c.Send(Put("k", body), t0);
  CHECK(f.backend.calls.empty());  // nothing reached the writer
  CHECK(f.service.AwaitsStorage(c.state));
  CHECK(f.service.NextRetryMs() != 0);
  CHECK(StagingBudget::HeldUploads(**sf.created) == 1);
  f.service.Poke(t0);
  CHECK(f.backend.calls.empty());
  CHECK(c.Output().empty());
  sf.other->Release(&sf.other_upload);  // the other upload finished
  f.service.Poke(t0 + 1);
  REQUIRE(f.backend.calls.size() == 5);  // begin, 3 parts, end
  CHECK(f.backend.calls[0].what == "begin");
  CHECK(f.backend.calls[4].what == "end");
  CHECK(StagingBudget::HeldUploads(**sf.created) == 0);
  CHECK(sf.Reserved() == StagingPrefixBytes(1, http::kDefaultContentType.size()) + body.size());
  f.service.OnCompletion(Done(f.backend.calls[0].token, engine::Code::kOk, 1), t0 + 2);
  CHECK(StatusLine(c.Output()) == "HTTP/1.1 201 Created");
  CHECK(sf.Reserved() == 0);
  CHECK((*sf.created)->control().staging.holds.load() == 1);
}

TEST_CASE("a large upload held past the storage timeout gets 503 with Retry-After, nothing queued",
          "[src][kv_service][staging]") {
  StagingFixture sf(60'000);  // far from any scheduling hiccup between Send and t0
  Fixture& f = sf.f;
  Client c(f.service, f.limits);
  const uint64_t t0 = MonotonicMs();  // the hold's clock
  c.Send(Put("k", std::string(3000, 'q')), t0);
  f.service.Poke(t0);
  CHECK(c.Output().empty());
  f.service.Poke(t0 + 120'000);
  const std::string out = c.Output();
  CHECK(StatusLine(out) == "HTTP/1.1 503 Service Unavailable");
  CHECK(out.find("Retry-After:") != std::string::npos);
  CHECK(out.find("--storage-timeout-ms") != std::string::npos);
  CHECK(out.find("Connection: close") != std::string::npos);
  CHECK(f.backend.calls.empty());
  CHECK(StagingBudget::HeldUploads(**sf.created) == 0);
  CHECK(sf.Reserved() == 1 << 20);  // the other upload's only
  CHECK(f.service.NextRetryMs() == 0);
}

// RFC 9110 section 10.1.1: "100 Continue" invites the body; a held upload
// has not been accepted yet.
std::string ExpectPutHead(const std::string& key, size_t length) {
  return "PUT /v1/kv/" + key + " HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: " +
         std::to_string(length) + "\r\n\r\n";
}

TEST_CASE("a held large upload that sent Expect: 100-continue gets 100 Continue only once admitted",
          "[src][kv_service][staging][expect]") {
  StagingFixture sf;
  Fixture& f = sf.f;
  Client c(f.service, f.limits);
  const std::string body(3000, 'q');
  const uint64_t t0 = MonotonicMs();  // the hold's clock
  c.Send(ExpectPutHead("k", body.size()), t0);
  CHECK(StagingBudget::HeldUploads(**sf.created) == 1);
  CHECK(c.Output().empty());  // held: no invitation to send the body
  f.service.Poke(t0);
  CHECK(c.Output().empty());
  sf.other->Release(&sf.other_upload);
  f.service.Poke(t0 + 1);
  CHECK(c.Output() == "HTTP/1.1 100 Continue\r\n\r\n");
  c.Send(body, t0 + 2);
  REQUIRE(f.backend.calls.size() == 5);  // begin, 3 parts, end
  f.service.OnCompletion(Done(f.backend.calls[0].token, engine::Code::kOk, 1), t0 + 3);
  CHECK(StatusLine(c.Output()) == "HTTP/1.1 201 Created");
}

TEST_CASE("a held large upload that sent Expect: 100-continue and timed out gets 503 without 100",
          "[src][kv_service][staging][expect]") {
  StagingFixture sf(60'000);
  Fixture& f = sf.f;
  Client c(f.service, f.limits);
  const uint64_t t0 = MonotonicMs();
  c.Send(ExpectPutHead("k", 3000), t0);
  f.service.Poke(t0);
  f.service.Poke(t0 + 120'000);
  const std::string out = c.Output();
  CHECK(StatusLine(out) == "HTTP/1.1 503 Service Unavailable");
  CHECK(out.find("100 Continue") == std::string::npos);
  CHECK(out.find("Retry-After:") != std::string::npos);
  CHECK(out.find("Connection: close") != std::string::npos);
  CHECK(c.conn.ShouldClose());
  CHECK(f.backend.calls.empty());
}

TEST_CASE("an upload held for the worker's body budget gets 100 Continue only once admitted",
          "[src][kv_service][expect]") {
  ByteBudget budget(4096);
  KvServiceOptions o;
  o.body_budget = &budget;
  Fixture f(o);
  budget.Charge(4096);  // another upload holds the whole budget
  Client c(f.service, f.limits);
  c.Send(ExpectPutHead("k", 100));
  // A short body is awaited like a head (it may be read once it has arrived
  // whole); the client is not invited to send it.
  CHECK(f.service.AwaitsBodyBudget(c.state));
  CHECK(!f.service.AwaitsStorage(c.state));
  CHECK(c.Output().empty());
  budget.Release(4096);
  f.service.Poke(2);
  CHECK(c.Output() == "HTTP/1.1 100 Continue\r\n\r\n");
  c.Send(std::string(100, 'v'), 3);
  REQUIRE(f.backend.calls.size() == 1);
}

TEST_CASE("a trickling upload holds what it sent, not what it announced, and a small PUT goes on",
          "[src][kv_service][budget]") {
  ByteBudget budget(1 << 20);
  KvServiceOptions o;
  o.body_budget = &budget;
  Fixture f(o);
  Client slow(f.service, f.limits);
  slow.Send("PUT /v1/kv/slow HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" + std::string(100, 's'));
  CHECK(!f.service.AwaitsStorage(slow.state));
  CHECK(budget.used() <= 1024);  // its 100 bytes (twice, in a buffer of a few hundred bytes)
  Client small(f.service, f.limits);
  small.Send(Put("small", "0123456789"));
  REQUIRE(f.backend.calls.size() == 1);
  CHECK(f.backend.calls[0].stored == "0123456789");
  f.service.OnCompletion(Done(f.backend.calls[0].token, engine::Code::kOk, 1, false), 2);
  CHECK(StatusLine(small.Output()) == "HTTP/1.1 201 Created");
  // Past its 64 KiB window the slow upload takes its whole reservation.
  slow.Send(std::string(70000, 's'), 3);
  CHECK(!f.service.AwaitsStorage(slow.state));
  CHECK(budget.used() >= 2 * 1000000);  // twice a body of at most a part
}

TEST_CASE("an upload waiting for room asks for no retry until room is released", "[src][kv_service][budget]") {
  ByteBudget budget(1 << 20);
  KvServiceOptions o;
  o.body_budget = &budget;
  o.compression_level = 0;
  Fixture f(o);
  budget.Charge(1 << 20);  // others hold the whole budget
  Client c(f.service, f.limits);
  // Longer than a body read whole from the arrived bodies' room.
  const std::string body(WriteExchanges::kArrivedBodyBytes + 1, 'v');
  c.Send(Put("k", body));
  CHECK(f.service.AwaitsStorage(c.state));
  CHECK(f.service.NextRetryMs() == 0);  // nothing to retry: no wake-ups meanwhile
  CHECK(f.service.NextExpiryMs() != 0);  // but its give-up is due at some point
  budget.Release(1 << 20);
  CHECK(f.service.NextRetryMs() != 0);
  f.service.Poke(2);
  REQUIRE(f.backend.calls.size() == 1);
  CHECK(f.backend.calls[0].stored == body);
  CHECK(f.service.NextRetryMs() == 0);
}

namespace {

// A service whose body budget is all held by other uploads (stalled ones),
// with `arrived_bytes` of room kept for bodies that arrived whole.
struct HeldBudget {
  explicit HeldBudget(uint64_t arrived_bytes) : arrived(arrived_bytes), f(Options(budget, arrived)) {
    budget.Charge(1 << 20);
  }
  static KvServiceOptions Options(ByteBudget& budget, ByteBudget& arrived) {
    KvServiceOptions o;
    o.body_budget = &budget;
    o.body_arrived_budget = &arrived;
    o.compression_level = 0;
    return o;
  }
  ByteBudget budget{1 << 20};
  ByteBudget arrived;
  Fixture f;
};

}  // namespace

TEST_CASE("a short body that arrived whole is read while stalled uploads hold the body budget",
          "[src][kv_service][budget]") {
  HeldBudget h(128 << 10);
  ByteBudget& budget = h.budget;
  ByteBudget& arrived = h.arrived;
  Fixture& f = h.f;
  Client small(f.service, f.limits);
  small.Send(Put("small", "0123456789"));  // head and body in one read
  REQUIRE(f.backend.calls.size() == 1);
  CHECK(f.backend.calls[0].stored == "0123456789");
  CHECK(arrived.used() == 0);  // given back once queued
  CHECK(budget.used() == 1 << 20);
  f.service.OnCompletion(Done(f.backend.calls[0].token, engine::Code::kOk, 1, false), 2);
  CHECK(StatusLine(small.Output()) == "HTTP/1.1 201 Created");

  // The head first: it waits for its body, reading on; once the body is
  // there it is read.
  Client split(f.service, f.limits);
  const std::string body(3000, 'b');
  const std::string request = Put("split", body);
  split.Send(request.substr(0, request.size() - body.size()), 3);
  CHECK(f.backend.calls.size() == 1);
  CHECK(f.service.AwaitsBodyBudget(split.state));
  CHECK(!f.service.AwaitsStorage(split.state));
  split.Send(body.substr(0, 1000), 4);  // not all of it yet
  CHECK(f.backend.calls.size() == 1);
  split.Send(body.substr(1000), 5);
  REQUIRE(f.backend.calls.size() == 2);
  CHECK(f.backend.calls[1].stored == body);
  CHECK(!f.service.AwaitsBodyBudget(split.state));
  CHECK(arrived.used() == 0);
}

TEST_CASE("a body that arrived whole waits while the arrived room is held, and is read as it frees",
          "[src][kv_service][budget]") {
  HeldBudget h(64 << 10);
  ByteBudget& arrived = h.arrived;
  Fixture& f = h.f;
  arrived.Charge(64 << 10);  // other arrived bodies wait for queue room
  Client c(f.service, f.limits);
  c.Send(Put("k", std::string(100, 'v')));
  CHECK(f.backend.calls.empty());
  CHECK(f.service.AwaitsStorage(c.state));  // it has arrived: nothing more to read
  CHECK(f.service.NextRetryMs() == 0);
  arrived.Release(64 << 10);
  CHECK(f.service.NextRetryMs() != 0);
  f.service.Poke(2);
  REQUIRE(f.backend.calls.size() == 1);
  CHECK(f.backend.calls[0].stored == std::string(100, 'v'));
  CHECK(f.service.NextRetryMs() == 0);
  CHECK(arrived.used() == 0);
}

TEST_CASE("idle uploads spill their bodies to disk, so that writes of any size go on, and are stored intact",
          "[src][kv_service][budget][spill]") {
  ByteBudget budget(1 << 20);
  ByteBudget spill(64 << 20);
  ByteBudget spill_files(64);
  test::TempDir dir;
  KvServiceOptions o;
  o.body_budget = &budget;
  o.compression_level = 0;
  o.body_spill_env = &engine::PosixEnv();
  o.body_spill_dir = dir.path;
  o.body_spill_budget = &spill;
  o.body_spill_files = &spill_files;
  Fixture f(o);
  // Five uploads of 300 KiB send all but their last byte: more than the
  // budget holds in memory.
  constexpr size_t kSize = 300 << 10;
  std::vector<std::unique_ptr<Client>> uploads;
  std::vector<std::string> bodies;
  std::vector<size_t> sent(5, 0);
  for (int i = 0; i < 5; ++i) {
    uploads.push_back(std::make_unique<Client>(f.service, f.limits));
    bodies.push_back(std::string(kSize, static_cast<char>('a' + i)));
    for (size_t k = 0; k < kSize; k += 997) bodies.back()[k] = static_cast<char>(k);
    uploads.back()->Send("PUT /v1/kv/up" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                         std::to_string(kSize) + "\r\n\r\n");
  }
  uint64_t now = 10;
  // Fed as the I/O layer would: what each may read now, while any takes.
  for (bool fed = true; fed;) {
    fed = false;
    for (int i = 0; i < 5; ++i) {
      Client& c = *uploads[i];
      if (sent[i] >= kSize - 1 || f.service.AwaitsStorage(c.state) || !c.conn.WantsRead()) continue;
      const size_t n = std::min({f.service.ReadBytesHint(c.state), kSize - 1 - sent[i], size_t{16384}});
      c.Send(bodies[i].substr(sent[i], n), now);
      sent[i] += n;
      fed = true;
    }
    f.service.Poke(++now);
  }
  // Idle for a while: every upload moved what it held to disk.
  f.service.Poke(now += WriteExchanges::kSpillIdleMs + 1);
  CHECK(f.service.BodySpills() > 0);
  CHECK(budget.used() < (128 << 10));
  CHECK(spill.used() > 0);
  CHECK(f.backend.calls.empty());
  // A 64 KiB PUT and a chunked one are read and queued at once.
  Client w(f.service, f.limits);
  const std::string window(64 << 10, 'w');
  w.Send(Put("w", window), ++now);
  REQUIRE(f.backend.calls.size() == 1);
  CHECK(f.backend.calls[0].stored == window);
  Client ch(f.service, f.limits);
  ch.Send("PUT /v1/kv/ch HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n", ++now);
  REQUIRE(f.backend.calls.size() == 2);
  CHECK(f.backend.calls[1].stored == "abcd");
  // The stalled uploads finish, in turn as their room allows: each stored
  // byte for byte.
  for (int round = 0; round < 100 && f.backend.calls.size() < 7; ++round) {
    for (int i = 0; i < 5; ++i) {
      Client& c = *uploads[i];
      if (sent[i] >= kSize || f.service.AwaitsStorage(c.state) || !c.conn.WantsRead()) continue;
      const size_t n = std::min({f.service.ReadBytesHint(c.state), kSize - sent[i], size_t{16384}});
      c.Send(bodies[i].substr(sent[i], n), now);
      sent[i] += n;
    }
    f.service.Poke(++now);
  }
  REQUIRE(f.backend.calls.size() == 7);
  for (size_t k = 2; k < 7; ++k) {
    const Call& call = f.backend.calls[k];
    REQUIRE(call.key.size() == 3);
    CHECK(call.stored == bodies[call.key[2] - '0']);
  }
  CHECK(spill.used() == 0);
  CHECK(spill_files.used() == 0);
  CHECK(budget.used() == 0);
}

TEST_CASE("an exchange reused after a large upload holds none of its buffers", "[src][kv_service][budget]") {
  // The next upload on a reused exchange must start from nothing: its first
  // bytes are counted as they come, not a buffer the last upload left.
  ByteBudget budget(1 << 20);
  KvServiceOptions o;
  o.body_budget = &budget;
  Fixture f(o);
  Client big(f.service, f.limits);
  big.Send(Put("big", std::string(1 << 20, 'b')));
  REQUIRE(!f.backend.calls.empty());
  for (const Call& call : f.backend.calls) {
    f.service.OnCompletion(Done(call.token, engine::Code::kOk, 1, false), 2);
  }
  CHECK(StatusLine(big.Output()) == "HTTP/1.1 201 Created");
  CHECK(budget.used() == 0);
  Client slow(f.service, f.limits);
  slow.Send("PUT /v1/kv/slow HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" + std::string(100, 's'), 3);
  CHECK(!f.service.AwaitsStorage(slow.state));
  CHECK(budget.used() <= 1024);
}

TEST_CASE("an Expect: 100-continue PUT with no room on a full disk gets 507 without 100, and closes",
          "[src][kv_service][expect]") {
  Fixture f;
  f.backend.disk_room = 50;
  Client big(f.service, f.limits);
  big.Send(ExpectPutHead("k", 100));
  const std::string out = big.Output();
  CHECK(StatusLine(out) == "HTTP/1.1 507 Insufficient Storage");
  CHECK(out.find("100 Continue") == std::string::npos);
  CHECK(out.find("Connection: close") != std::string::npos);
  CHECK(big.conn.ShouldClose());
  CHECK(f.backend.calls.empty());
  // One that fits is invited to send its body; one without Expect is left to
  // the writer, which decides with the disk as it is then.
  Client small(f.service, f.limits);
  small.Send(ExpectPutHead("k", 40));
  CHECK(small.Output() == "HTTP/1.1 100 Continue\r\n\r\n");
  Client plain(f.service, f.limits);
  plain.Send(Put("k", std::string(100, 'p')));
  REQUIRE(f.backend.calls.size() == 1);
  CHECK(f.backend.calls[0].stored.size() == 100);
}

TEST_CASE("a chunked upload reserves part by part and is held at the part past the share",
          "[src][kv_service][staging]") {
  StagingFixture sf;
  SharedMemory& shm = **sf.created;
  shm.index().counters().live_bytes.store(8 * ((1 << 20) + 2048));  // share: 1 MiB + 2 KiB
  // The other upload also holds the overdraft: past the share, this one waits.
  sf.other_upload.overdraft = true;
  shm.control().staging.overdraft_owner.store(sf.other_upload.id);
  Fixture& f = sf.f;
  Client c(f.service, f.limits);
  std::string req = "PUT /v1/kv/k HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 4; ++i) req += "400\r\n" + std::string(1024, char('a' + i)) + "\r\n";
  const uint64_t t0 = MonotonicMs();
  c.Send(req + "0\r\n\r\n", t0);
  const uint64_t prefix = StagingPrefixBytes(1, http::kDefaultContentType.size());
  // The first part fits beside the other upload's 1 MiB; the second does not.
  REQUIRE(f.backend.calls.size() == 2);
  CHECK(f.backend.calls[0].what == "begin");
  CHECK(f.backend.calls[1].what == "part");
  CHECK(sf.Reserved() == (1 << 20) + prefix + 1024);
  CHECK(f.service.AwaitsStorage(c.state));
  CHECK(StagingBudget::HeldUploads(shm) == 1);
  f.service.Poke(t0);
  CHECK(f.backend.calls.size() == 2);
  sf.other->Release(&sf.other_upload);  // done: its bytes and the overdraft are free
  CHECK(shm.control().staging.overdraft_owner.load() == 0);
  f.service.Poke(t0 + 1);
  REQUIRE(f.backend.calls.size() == 6);  // parts 2-4 and the end
  CHECK(f.backend.calls[5].what == "end");
  CHECK(sf.Reserved() == prefix + 4096);
  f.service.OnCompletion(Done(f.backend.calls[0].token, engine::Code::kOk, 1), t0 + 2);
  CHECK(StatusLine(c.Output()) == "HTTP/1.1 201 Created");
  CHECK(sf.Reserved() == 0);
  CHECK(StagingBudget::HeldUploads(shm) == 0);
}

TEST_CASE("admin compaction is refused outside the admin listener", "[src][kv_service]") {
  Fixture f;
  Client c(f.service, f.limits);
  c.Send("POST /admin/compact HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
  const std::string refused = c.Output();
  CHECK(StatusLine(refused) == "HTTP/1.1 404 Not Found");
  CHECK(refused.find("No resource at this path.") != std::string::npos);
  Client admin(f.service, f.limits);
  admin.state.admin = true;
  admin.conn.SetListener(http::Listener::kAdmin);
  admin.Send("POST /admin/compact HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
  CHECK(StatusLine(admin.Output()) == "HTTP/1.1 202 Accepted");
}

TEST_CASE("draining adds Connection: close and turns /readyz to 503", "[src][kv_service]") {
  Fixture f;
  Client c(f.service, f.limits);
  c.Send("GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK(StatusLine(c.Output()) == "HTTP/1.1 200 OK");
  f.service.SetDraining();
  c.Send("GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n");
  const std::string out = c.Output();
  CHECK(StatusLine(out) == "HTTP/1.1 503 Service Unavailable");
  CHECK(out.find("Connection: close") != std::string::npos);
}

}  // namespace kingx

namespace kingx {

TEST_CASE("a large PUT fed while the queue is intermittently full arrives intact and in order",
          "[src][kv_service]") {
  KvServiceOptions o;
  o.part_bytes = 128000;
  o.compression_level = 0;
  Fixture f(o);
  std::string body(2'000'000, '\0');
  uint64_t x = 88172645463325252ull;
  for (char& ch : body) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    ch = static_cast<char>(x);
  }
  Client c(f.service, f.limits);
  const std::string req = Put("big", body);
  size_t off = 0;
  int round = 0;
  static char read_buf[65536];  // one buffer reused for every read, as the event loop does
  // Like the event loop: read 64 KiB while the Connection wants input and
  // the request does not wait for the storage, and retry the queue between
  // reads; every third attempt finds it full.
  for (int guard = 0; guard < 100000 && (off < req.size() || f.service.NextRetryMs() != 0); ++guard) {
    if (off < req.size() && c.conn.WantsRead() && !f.service.AwaitsStorage(c.state)) {
      const size_t n = std::min<size_t>(65536, req.size() - off);
      f.backend.busy_left = (++round % 3 == 0) ? 1 : 0;
      std::memcpy(read_buf, req.data() + off, n);
      c.conn.Feed(std::span<const char>(read_buf, n), 1);
      std::memset(read_buf, 0, sizeof read_buf);  // a reused buffer: stale views would read zeros
      off += n;
    }
    f.backend.busy_left = (++round % 3 == 0) ? 1 : 0;
    f.service.Poke(MonotonicMs());
  }
  REQUIRE(off == req.size());
  REQUIRE(!f.backend.calls.empty());
  CHECK(f.backend.calls.back().what == "end");
  std::string stored;
  for (const Call& call : f.backend.calls) {
    if (call.what == "part") stored += call.stored;
  }
  REQUIRE(stored.size() == body.size());
  CHECK(stored == body);
}

}  // namespace kingx

namespace kingx {

TEST_CASE("a GET of a large compressed value is sent frame by frame, never decoded whole",
          "[src][kv_service][stream]") {
  ByteBudget responses(1 << 20);
  KvServiceOptions o;
  o.response_budget = &responses;
  Fixture f(o);
  std::string raw;
  for (int i = 0; raw.size() < (4u << 20); ++i) raw += "value line " + std::to_string(i % 1000) + " of kingx\n";
  std::string frames;
  REQUIRE(engine::CompressFrames(raw, 1, &frames).ok());
  f.backend.values["z"] = {9, "text/plain", frames, engine::Codec::kZstd, raw.size()};
  Client c(f.service, f.limits);
  c.Send("GET /v1/kv/z HTTP/1.1\r\nHost: t\r\n\r\n");
  std::string out;
  size_t most_pending = 0;
  uint64_t most_reserved = 0;
  iovec iov[16];
  while (c.conn.HasOutput()) {
    most_pending = std::max(most_pending, c.conn.OutputBytes());
    most_reserved = std::max(most_reserved, responses.used());
    const size_t n = c.conn.GatherOutput(iov, 16);
    size_t take = 0;
    for (size_t i = 0; i < n && take < 10000; ++i) {
      const size_t k = std::min<size_t>(10000 - take, iov[i].iov_len);
      out.append(static_cast<const char*>(iov[i].iov_base), k);
      take += k;
    }
    c.conn.ConsumeOutput(take, 1);
  }
  CHECK(StatusLine(out) == "HTTP/1.1 200 OK");
  CHECK(out.find("Content-Length: " + std::to_string(raw.size()) + "\r\n") != std::string::npos);
  CHECK(out.find("ETag: \"9\"") != std::string::npos);
  CHECK(out.substr(out.find("\r\n\r\n") + 4) == raw);
  CHECK(most_pending <= engine::kFrameRawBytes + 1024);  // one frame (and the head) at a time
  CHECK(most_reserved == engine::kFrameRawBytes);
  CHECK(responses.used() == 0);
}

TEST_CASE("compressed responses waiting for the response budget ask for no retry until room is released",
          "[src][kv_service][stream]") {
  ByteBudget responses(engine::kFrameRawBytes);  // one stream's piece at a time
  KvServiceOptions o;
  o.response_budget = &responses;
  Fixture f(o);
  std::string raw;
  for (int i = 0; raw.size() < 3 * engine::kFrameRawBytes; ++i) raw += "line " + std::to_string(i % 777) + " of kingx\n";
  std::string frames;
  REQUIRE(engine::CompressFrames(raw, 1, &frames).ok());
  f.backend.values["z"] = {9, "text/plain", frames, engine::Codec::kZstd, raw.size()};
  auto body = [](const std::string& out) {
    const size_t at = out.find("\r\n\r\n");
    return at == std::string::npos ? std::string() : out.substr(at + 4);
  };
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<std::string> out(3);
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<Client>(f.service, f.limits));
    clients.back()->Send("GET /v1/kv/z HTTP/1.1\r\nHost: t\r\n\r\n");
  }
  // The first holds the budget; the other two wait with nothing sent (not
  // even a head), and nothing asks for a retry while no room is released.
  for (int i = 1; i < 3; ++i) out[i] = clients[i]->Output();
  CHECK(out[1].empty());
  CHECK(out[2].empty());
  CHECK(f.service.AwaitsResponseBudget());
  CHECK(f.service.ResponseBudgetNeed() == engine::kFrameRawBytes);
  CHECK(f.service.NextRetryMs() == 0);
  // The first response ends: its room is released, and a Poke resumes the
  // oldest waiter only.
  out[0] = clients[0]->Output();
  CHECK(body(out[0]) == raw);
  CHECK(responses.used() == 0);
  CHECK(f.service.NextRetryMs() != 0);
  f.service.Poke(2);
  CHECK(responses.used() == engine::kFrameRawBytes);
  CHECK(f.service.NextRetryMs() == 0);  // the third waits for the second
  out[2] += clients[2]->Output();
  CHECK(body(out[2]).empty());
  out[1] += clients[1]->Output();
  CHECK(body(out[1]) == raw);
  CHECK(f.service.NextRetryMs() != 0);
  f.service.Poke(3);
  out[2] += clients[2]->Output();
  CHECK(body(out[2]) == raw);
  CHECK_FALSE(f.service.AwaitsResponseBudget());
  CHECK(f.service.NextRetryMs() == 0);
  CHECK(responses.used() == 0);
}

TEST_CASE("a GET that waits for the response budget longer than its give-up gets 503, never a head without its body",
          "[src][kv_service][stream]") {
  ByteBudget responses(engine::kFrameRawBytes);  // one stream's piece at a time
  KvServiceOptions o;
  o.response_budget = &responses;
  o.response_budget_give_up_ms = 1000;
  Fixture f(o);
  std::string raw;
  for (int i = 0; raw.size() < 2 * engine::kFrameRawBytes; ++i) raw += "row " + std::to_string(i % 555) + " of kingx\n";
  std::string frames;
  REQUIRE(engine::CompressFrames(raw, 1, &frames).ok());
  f.backend.values["z"] = {9, "text/plain", frames, engine::Codec::kZstd, raw.size()};
  Client holder(f.service, f.limits);
  holder.Send("GET /v1/kv/z HTTP/1.1\r\nHost: t\r\n\r\n", 10);
  REQUIRE(responses.used() == engine::kFrameRawBytes);  // holds the room: its client reads nothing
  Client waiter(f.service, f.limits);
  waiter.Send("GET /v1/kv/z HTTP/1.1\r\nHost: t\r\nX-Request-Id: w1\r\n\r\n", 20);
  {
    // A second waiter whose client goes away: it leaves the list at once.
    Client gone(f.service, f.limits);
    gone.Send("GET /v1/kv/z HTTP/1.1\r\nHost: t\r\n\r\n", 30);
    CHECK(gone.Output().empty());
  }
  CHECK(waiter.Output().empty());
  CHECK(waiter.conn.DeadlineMs() == 0);  // no send deadline while nothing is begun
  CHECK(f.service.NextExpiryMs() == 20 + 1000);
  f.service.Poke(1019);
  CHECK(waiter.Output().empty());
  f.service.Poke(1020);
  const std::string out = waiter.Output();
  CHECK(StatusLine(out) == "HTTP/1.1 503 Service Unavailable");
  CHECK_FALSE(HeaderOf(out, "Retry-After").empty());
  CHECK(HeaderOf(out, "X-Request-Id") == "w1");
  CHECK(out.find("--response-buffer-bytes") != std::string::npos);
  CHECK_FALSE(waiter.conn.ShouldClose());  // nothing was begun: the connection stays usable
  CHECK_FALSE(f.service.AwaitsResponseBudget());
  CHECK(f.service.NextExpiryMs() == 0);
  // Once room is released a GET is served whole.
  holder.Output();
  CHECK(responses.used() == 0);
  waiter.Send("GET /v1/kv/z HTTP/1.1\r\nHost: t\r\n\r\n", 1100);
  const std::string again = waiter.Output();
  CHECK(StatusLine(again) == "HTTP/1.1 200 OK");
  CHECK(again.substr(again.find("\r\n\r\n") + 4) == raw);
}

TEST_CASE("responses the HTTP core writes itself carry a request id and get an access-log line",
          "[src][kv_service][access_log]") {
  test::TempDir dir;
  AccessLog log;
  REQUIRE(log.Open(dir.path + "/access.log", AccessLogFormat::kCombined).ok());
  Fixture f({}, &log);
  struct Case {
    std::string bytes, status, client_id;
  };
  const std::vector<Case> cases = {
      {"GET /nowhere HTTP/1.1\r\nHost: t\r\nX-Request-Id: rid-404\r\n\r\n", "404", "rid-404"},
      {"BREW /v1/kv/pot HTTP/1.1\r\nHost: t\r\n\r\n", "501", ""},
      {"DELETE /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: rid-405\r\n\r\n", "405", "rid-405"},
      {"GET /v1/kv/a HTTP/1.1\r\nHost: t\r\nExpect: tea\r\n\r\n", "417", ""},
      {"GET /v1/kv/a HTTP/1.1\r\nBad Name: t\r\n\r\n", "400", ""},  // no complete head: llhttp refuses
      {"GET /v1/kv/a HTTP/1.1\r\nHost: t\r\n\rX\r\n\r\n", "400", ""},  // bare CR in the head
      {"GET /v1/kv/a HTTP/2.0\r\nHost: t\r\n\r\n", "505", ""},
      {"GET /v1/kv/served HTTP/1.1\r\nHost: t\r\n\r\n", "404", ""},  // the handler's own, for comparison
  };
  std::vector<std::string> ids;
  for (const Case& c : cases) {
    Client client(f.service, f.limits);
    client.Send(c.bytes);
    const std::string out = client.Output();
    INFO(c.bytes);
    REQUIRE(StatusLine(out).substr(9, 3) == c.status);
    const std::string id = HeaderOf(out, "X-Request-Id");
    if (!c.client_id.empty()) {
      CHECK(id == c.client_id);
    } else {
      CHECK(id.size() == 32);
    }
    ids.push_back(id);
  }
  log.Flush();
  const std::vector<std::string> lines = LinesOf(dir.path + "/access.log");
  REQUIRE(lines.size() == cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO(lines[i]);
    CHECK(lines[i].find("\" " + cases[i].status + " ") != std::string::npos);
    CHECK(lines[i].find("\"" + ids[i] + "\"") != std::string::npos);
  }
  CHECK(lines[0].find("\"GET /nowhere HTTP/1.1\"") != std::string::npos);
  CHECK(lines[1].find("\"BREW /v1/kv/pot HTTP/1.1\"") != std::string::npos);
  // Every generated id differs.
  std::set<std::string> distinct(ids.begin(), ids.end());
  CHECK(distinct.size() == ids.size());
}

TEST_CASE("a refused client gets an error-log line at info, and a flood of them is rate-limited",
          "[src][kv_service][log]") {
  test::TempDir dir;
  const std::string path = dir.path + "/error.log";
  REQUIRE(InitErrorLog(path, LogLevel::kInfo).ok());
  Fixture f;
  const auto refused_lines = [&] {
    std::vector<std::string> out;
    for (const std::string& l : LinesOf(path)) {
      if (l.find("client refused") != std::string::npos) out.push_back(l);
    }
    return out;
  };
  // A fresh one-second window of the process-wide limiter.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const auto start = std::chrono::steady_clock::now();
  {
    Client c(f.service, f.limits);
    c.Send("BREW /v1/kv/pot HTTP/1.1\r\nHost: t\r\nX-Request-Id: rid-brew\r\n\r\n");
    CHECK(StatusLine(c.Output()) == "HTTP/1.1 501 Not Implemented");
  }
  std::vector<std::string> lines = refused_lines();
  REQUIRE(lines.size() == 1);
  INFO(lines[0]);
  CHECK(lines[0].find("[info]") != std::string::npos);
  CHECK(lines[0].find("client refused with 501") != std::string::npos);
  CHECK(lines[0].find("client: -") != std::string::npos);
  CHECK(lines[0].find("request: \"BREW /v1/kv/pot HTTP/1.1\"") != std::string::npos);
  CHECK(lines[0].find("request id: rid-brew") != std::string::npos);

  // Answers of the handler (a missing key) are not client errors.
  {
    Client c(f.service, f.limits);
    c.Send("GET /v1/kv/missing HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(StatusLine(c.Output()) == "HTTP/1.1 404 Not Found");
  }
  CHECK(refused_lines().size() == 1);

  constexpr int kFlood = 300;
  for (int i = 0; i < kFlood; ++i) {
    Client c(f.service, f.limits);
    c.Send("GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n");
    REQUIRE(StatusLine(c.Output()) == "HTTP/1.1 404 Not Found");
  }
  const double elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  lines = refused_lines();
  // At most a burst per started second (whatever the machine's speed).
  CHECK(lines.size() <= KvService::kClientErrorBurst * (size_t(elapsed_s) + 1));
  CHECK(lines.size() < size_t{kFlood});
  // The next line after a window passed says how many were left out.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  {
    Client c(f.service, f.limits);
    c.Send("GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(StatusLine(c.Output()) == "HTTP/1.1 404 Not Found");
  }
  lines = refused_lines();
  INFO(lines.back());
  CHECK(lines.back().find("more refused clients not logged") != std::string::npos);
  CHECK(lines.back().find("No resource at this path.") != std::string::npos);
  REQUIRE(InitErrorLog("", LogLevel::kWarn).ok());
}

TEST_CASE("every 404 of a missing key has the one wording, whichever path found it", "[src][kv_service]") {
  Fixture f;
  Client c(f.service, f.limits);
  // Found missing by the service's own precondition read.
  c.Send("DELETE /v1/kv/gone HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"7\"\r\n\r\n");
  std::string out = c.Output();
  CHECK(StatusLine(out) == "HTTP/1.1 404 Not Found");
  CHECK(out.find("\"detail\":\"No value is stored under this key.\"") != std::string::npos);
  // Found missing by the writer.
  c.Send("DELETE /v1/kv/gone HTTP/1.1\r\nHost: t\r\n\r\n");
  REQUIRE(f.backend.calls.size() == 1);
  f.service.OnCompletion(Done(f.backend.calls[0].token, engine::Code::kNotFound), 2);
  out = c.Output();
  CHECK(StatusLine(out) == "HTTP/1.1 404 Not Found");
  CHECK(out.find("\"detail\":\"No value is stored under this key.\"") != std::string::npos);
  // Found missing by a read.
  c.Send("GET /v1/kv/gone HTTP/1.1\r\nHost: t\r\n\r\n");
  out = c.Output();
  CHECK(out.find("\"detail\":\"No value is stored under this key.\"") != std::string::npos);
}

}  // namespace kingx

