// Tests of src/worker/timer_wheel.h: nodes are handed out when their deadline
// passes and only the due ones are looked at; a Connection driven through its
// deadline kinds with the event worker's lazy re-arm times out on time.
#include "src/worker/timer_wheel.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "http/connection.h"
#include "tests/http/test_support.h"

namespace kingx {
namespace {

struct Item : TimerNode {
  int id = 0;
};

std::vector<int> ExpireIds(TimerWheel& wheel, uint64_t now_ms) {
  std::vector<int> ids;
  wheel.Expire(now_ms, [&](TimerNode* n) { ids.push_back(static_cast<Item*>(n)->id); });
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST_CASE("a node is handed out by the first expiry at or after its deadline, once", "[worker][timer_wheel]") {
  TimerWheel wheel(100, 1000);
  Item a;
  a.id = 1;
  wheel.Arm(&a, 1250);
  CHECK(ExpireIds(wheel, 1200).empty());
  CHECK(ExpireIds(wheel, 1249).empty());
  CHECK(ExpireIds(wheel, 1250) == std::vector<int>{1});
  CHECK_FALSE(a.armed());
  CHECK(ExpireIds(wheel, 1400).empty());
  CHECK(ExpireIds(wheel, 5000).empty());
}

TEST_CASE("an expiry looks only at the nodes due, however many others wait", "[worker][timer_wheel]") {
  constexpr uint64_t kSweepMs = 500;
  TimerWheel wheel(kSweepMs, 0);
  std::vector<Item> idle(5000);
  for (size_t i = 0; i < idle.size(); ++i) {
    idle[i].id = static_cast<int>(i);
    wheel.Arm(&idle[i], 75'000 + i);  // keep-alive deadlines, far away
  }
  Item due;
  due.id = -1;
  wheel.Arm(&due, 10'000);
  uint64_t handed_at = 0;
  for (uint64_t now = 0; now <= 20'000; now += kSweepMs) {
    const std::vector<int> ids = ExpireIds(wheel, now);
    if (!ids.empty()) {
      CHECK(ids == std::vector<int>{-1});
      CHECK(handed_at == 0);
      handed_at = now;
    }
  }
  CHECK(handed_at == 10'000);  // the first sweep at or after its deadline
  CHECK(wheel.visited() == 1);  // a walk would have looked at 5,001 nodes per sweep
  for (const Item& i : idle) REQUIRE(i.armed());
  // And when the idle ones come due, each is handed out once.
  size_t handed = wheel.Expire(80'000, [](TimerNode*) {});
  CHECK(handed == idle.size());
}

TEST_CASE("a disarmed node (a closed connection) is never handed out; its slot's others are",
          "[worker][timer_wheel]") {
  TimerWheel wheel(100, 0);
  Item a, b, c;
  a.id = 1;
  b.id = 2;
  c.id = 3;
  wheel.Arm(&a, 500);
  wheel.Arm(&b, 510);
  wheel.Arm(&c, 520);
  wheel.Disarm(&b);
  CHECK_FALSE(b.armed());
  wheel.Disarm(&b);  // twice is harmless
  CHECK(ExpireIds(wheel, 600) == std::vector<int>{1, 3});
  CHECK(ExpireIds(wheel, 10'000).empty());
}

TEST_CASE("Arm moves a node either way; ArmNoLater only earlier", "[worker][timer_wheel]") {
  TimerWheel wheel(100, 0);
  Item a;
  a.id = 1;
  CHECK(wheel.ArmNoLater(&a, 5000));  // not armed: arms
  CHECK_FALSE(wheel.ArmNoLater(&a, 7000));
  CHECK(a.deadline_ms == 5000);
  CHECK(wheel.ArmNoLater(&a, 3000));
  CHECK(a.deadline_ms == 3000);
  CHECK(ExpireIds(wheel, 2999).empty());
  CHECK(ExpireIds(wheel, 3000) == std::vector<int>{1});
  wheel.Arm(&a, 4000);
  wheel.Arm(&a, 9000);  // later: the old arming is gone
  CHECK(ExpireIds(wheel, 8999).empty());
  CHECK(ExpireIds(wheel, 9000) == std::vector<int>{1});
}

TEST_CASE("a deadline beyond the wheel's reach is handed out at its time, not when the wheel wraps",
          "[worker][timer_wheel]") {
  constexpr uint64_t kTick = 10;  // reach: 512 ticks = 5,120 ms
  TimerWheel wheel(kTick, 0);
  Item far, near;
  far.id = 1;
  near.id = 2;
  wheel.Arm(&far, 20'000);
  wheel.Arm(&near, 5'125);  // just past the reach of the first tick
  std::vector<std::pair<uint64_t, int>> handed;
  for (uint64_t now = 0; now <= 25'000; now += kTick) {
    for (int id : ExpireIds(wheel, now)) handed.emplace_back(now, id);
  }
  CHECK(handed == std::vector<std::pair<uint64_t, int>>{{5'130, 2}, {20'000, 1}});
  CHECK(wheel.visited() <= 2 + 20'000 / (TimerWheel::kSlots * kTick) + 2);  // moved on once per wheel turn
}

TEST_CASE("an expiry after a stall longer than the wheel hands out everything due, once", "[worker][timer_wheel]") {
  TimerWheel wheel(10, 0);
  std::vector<Item> items(40);
  for (size_t i = 0; i < items.size(); ++i) {
    items[i].id = static_cast<int>(i);
    wheel.Arm(&items[i], 100 + 997 * i);  // spread over ~7.6 wheel turns
  }
  Item later;
  later.id = 99;
  wheel.Arm(&later, 200'000);
  const std::vector<int> ids = ExpireIds(wheel, 100'000);
  REQUIRE(ids.size() == items.size());
  for (size_t i = 0; i < ids.size(); ++i) CHECK(ids[i] == static_cast<int>(i));
  CHECK(later.armed());
  CHECK(ExpireIds(wheel, 199'999).empty());
  CHECK(ExpireIds(wheel, 200'000) == std::vector<int>{99});
}

TEST_CASE("a handler may disarm or re-arm nodes during an expiry, without looping", "[worker][timer_wheel]") {
  TimerWheel wheel(100, 0);
  Item a, b, c;
  a.id = 1;
  b.id = 2;
  c.id = 3;
  wheel.Arm(&a, 300);
  wheel.Arm(&b, 310);  // same slot as a, after it
  wheel.Arm(&c, 5000);
  std::vector<int> ids;
  bool acted = false;
  wheel.Expire(400, [&](TimerNode* n) {
    auto* item = static_cast<Item*>(n);
    ids.push_back(item->id);
    if (item->id == 1 && !acted) {
      acted = true;
      wheel.Disarm(&b);    // closing another connection
      wheel.Arm(&c, 350);  // another's deadline came earlier
      wheel.Arm(&a, 100);  // its own deadline still passed
    }
  });
  // Both re-armed nodes are due: handed out by this call's last tick.
  CHECK(ids == std::vector<int>{1, 3, 1});
  CHECK_FALSE(b.armed());
  CHECK(ExpireIds(wheel, 100'000).empty());
  // Re-armed as due while its own (last) tick is handed out: the next call
  // hands it out, this one ends.
  wheel.Arm(&a, 100'000);
  size_t calls = 0;
  CHECK(wheel.Expire(100'000, [&](TimerNode* n) {
    ++calls;
    wheel.Arm(n, 99'000);
  }) == 1);
  CHECK(calls == 1);
  CHECK(ExpireIds(wheel, 100'000) == std::vector<int>{1});
}

// ---------------------------------------------------------------- with a Connection

using http::testing::FakeKvHandler;

// Plays the event worker: after every event the node is armed no later than
// the Connection's deadline (ArmNoLater), and each sweep hands out the due
// nodes, re-arms the early ones and fires the others (OnTimer).
struct Driver {
  static constexpr uint64_t kSweepMs = 100;

  explicit Driver(const http::Limits& l)
      : limits(l),
        handler(FakeKvHandler::Mode::kSync, &now),
        conn(handler, limits, nullptr, now),
        wheel(kSweepMs, now) {
    Rearm();
  }

  http::Limits limits;
  uint64_t now = 1037;  // sweeps fall between ticks
  FakeKvHandler handler;
  http::Connection conn;
  TimerWheel wheel;
  TimerNode node;
  uint64_t fired_at = 0;     // when OnTimer was called
  uint64_t fired_for = 0;    // the deadline it was called for
  size_t written = 0;

  void Rearm() {
    if (const uint64_t d = conn.DeadlineMs(); d != 0) wheel.ArmNoLater(&node, d);
    // The lazy re-arm's invariant: armed no later than the real deadline.
    if (conn.DeadlineMs() != 0) REQUIRE((node.armed() && node.deadline_ms <= conn.DeadlineMs()));
  }
  void Feed(const std::string& bytes) {
    conn.Feed(std::span<const char>(bytes.data(), bytes.size()), now);
    Rearm();
  }
  // The peer reads up to `max` bytes of the pending output.
  void Write(size_t max) {
    struct iovec iov[16];
    const size_t n = conn.GatherOutput(iov, 16);
    size_t total = 0;
    for (size_t i = 0; i < n; ++i) total += iov[i].iov_len;
    total = std::min(total, max);
    conn.ConsumeOutput(total, now);
    written += total;
    Rearm();
  }
  // Sweeps every kSweepMs for `ms`; stops at the first OnTimer. Returns true
  // when one fired.
  bool Sweep(uint64_t ms) {
    const uint64_t until = now + ms;
    while (now + kSweepMs <= until) {
      now += kSweepMs;
      wheel.Expire(now, [this](TimerNode*) {
        const uint64_t d = conn.DeadlineMs();
        if (d == 0) return;
        if (d > now) {
          wheel.Arm(&node, d);
          return;
        }
        fired_at = now;
        fired_for = d;
        conn.OnTimer(now);
        Rearm();
      });
      if (fired_at != 0) return true;
    }
    now = until;
    return false;
  }
};

enum class Kind { kHeader, kBody, kSend, kIdle, kIdleAgain };

// Drives one keep-alive connection idle → header → body → send → idle, with
// durations chosen so that the deadline moves later (idle → header late in
// the idle period, header → body, send → idle) and earlier (body → send,
// idle → header early), and stops feeding in phase `stop`. Returns the
// driver, whose connection then timed out (or not).
std::unique_ptr<Driver> DriveUntil(Kind stop) {
  http::Limits limits;
  limits.header_timeout_ms = 3000;
  limits.body_timeout_ms = 2000;
  limits.send_timeout_ms = 700;
  limits.keepalive_timeout_ms = 5000;
  auto d = std::make_unique<Driver>(limits);
  // A first request, answered and written: idle.
  d->Feed("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n");
  d->Write(SIZE_MAX);
  REQUIRE(d->conn.DeadlineMs() == d->now + limits.keepalive_timeout_ms);
  if (stop == Kind::kIdle) return d;
  // Idle for 3.2 s: the header deadline armed at the start passed meanwhile;
  // the node was handed out early and re-armed for the idle deadline.
  REQUIRE_FALSE(d->Sweep(3200));
  // idle → header, late in the idle period: the header deadline is later.
  d->Feed("PUT /v1/kv/k HTTP/1.1\r\nHost: h\r\n");
  REQUIRE(d->conn.DeadlineMs() == d->now + limits.header_timeout_ms);
  if (stop == Kind::kHeader) return d;
  REQUIRE_FALSE(d->Sweep(2000));
  // header → body: the body deadline (2 s from its last progress).
  d->Feed("Content-Length: 2000\r\n\r\n");
  for (int i = 0; i < 3; ++i) {
    REQUIRE_FALSE(d->Sweep(1500));
    d->Feed(std::string(500, 'x'));
    REQUIRE(d->conn.DeadlineMs() == d->now + limits.body_timeout_ms);
  }
  if (stop == Kind::kBody) return d;
  REQUIRE_FALSE(d->Sweep(1200));
  // body → send: the answer waits for a peer that reads slowly; the send
  // deadline (0.7 s) is earlier than the body deadline was.
  d->Feed(std::string(500, 'x'));
  REQUIRE(d->conn.HasOutput());
  REQUIRE(d->conn.DeadlineMs() == d->now + limits.send_timeout_ms);
  for (int i = 0; i < 3; ++i) {
    REQUIRE_FALSE(d->Sweep(500));
    d->Write(20);  // progress: the send deadline moves later
    REQUIRE(d->conn.DeadlineMs() == d->now + limits.send_timeout_ms);
  }
  if (stop == Kind::kSend) return d;
  REQUIRE_FALSE(d->Sweep(500));
  // send → idle: the rest is read; the keep-alive deadline runs.
  d->Write(SIZE_MAX);
  REQUIRE_FALSE(d->conn.HasOutput());
  REQUIRE(d->conn.DeadlineMs() == d->now + limits.keepalive_timeout_ms);
  REQUIRE(d->handler.store.at("k").value.size() == 2000);
  // idle → header early in the idle period (the header deadline is earlier
  // than the idle one), then the head completes and is answered: idle again.
  REQUIRE_FALSE(d->Sweep(1000));
  d->Feed("GET /v1/kv/k HTTP/1.1\r\n");
  REQUIRE(d->conn.DeadlineMs() == d->now + limits.header_timeout_ms);
  REQUIRE_FALSE(d->Sweep(2500));
  d->Feed("Host: h\r\n\r\n");
  d->Write(SIZE_MAX);
  REQUIRE(d->conn.DeadlineMs() == d->now + limits.keepalive_timeout_ms);
  return d;
}

TEST_CASE("a connection's deadline followed idle → header → body → send → idle fires in the sweep after it passes",
          "[worker][timer_wheel][timeout]") {
  const Kind kind = GENERATE(Kind::kIdle, Kind::kHeader, Kind::kBody, Kind::kSend, Kind::kIdleAgain);
  CAPTURE(static_cast<int>(kind));
  std::unique_ptr<Driver> d = DriveUntil(kind);
  REQUIRE(d->fired_at == 0);  // nothing fired early on the way
  REQUIRE_FALSE(d->conn.ShouldClose());
  const uint64_t deadline = d->conn.DeadlineMs();
  REQUIRE(deadline > d->now);
  REQUIRE(d->Sweep(10'000));
  CHECK(d->fired_for == deadline);
  CHECK(d->fired_at >= deadline);
  CHECK(d->fired_at < deadline + Driver::kSweepMs);  // within one sweep period
  CHECK(d->conn.ShouldClose());
  // A header or body timeout answers 408; an idle or send timeout closes silently.
  const bool answered_408 = !d->handler.records.empty() && d->handler.records.back().status == 408;
  CHECK(answered_408 == (kind == Kind::kHeader || kind == Kind::kBody));
}

}  // namespace
}  // namespace kingx
