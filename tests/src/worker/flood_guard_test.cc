// Tests of src/worker/flood_guard.h: a flood is on only while most recent
// connections were refused garbage, a worker whose connections end normally
// is never metered, nor one whose keep-alive clients are quiet, and accepts
// during a flood follow the clock and the requests answered.
#include "src/worker/flood_guard.h"

#include <catch2/catch.hpp>
#include <cstdint>

namespace kingx {
namespace {

void End(FloodGuard& g, uint32_t n, bool garbage, uint64_t now_ms) {
  for (uint32_t i = 0; i < n; ++i) g.OnConnectionEnd(garbage, now_ms);
}

TEST_CASE("connections that end normally never turn the flood guard on", "[worker][flood]") {
  FloodGuard g;
  End(g, 100000, false, 10);
  CHECK_FALSE(g.Flooding(10));
  CHECK(g.AcceptsAllowed(10, 0) == FloodGuard::kUnmetered);
}

TEST_CASE("a few bad requests among few connections are no flood", "[worker][flood]") {
  FloodGuard g;
  End(g, FloodGuard::kWindow - 1, true, 10);  // the window is not full yet
  CHECK_FALSE(g.Flooding(10));
  FloodGuard h;
  End(h, FloodGuard::kWindow / 2 + 1, false, 10);
  End(h, FloodGuard::kWindow / 2 - 1, true, 10);  // under half garbage
  CHECK_FALSE(h.Flooding(10));
}

TEST_CASE("half the last connections refused turns the flood on, and quiet turns it off", "[worker][flood]") {
  FloodGuard g;
  End(g, FloodGuard::kWindow / 2, false, 10);
  End(g, FloodGuard::kWindow / 2, true, 20);
  CHECK(g.Flooding(20));
  CHECK(g.Flooding(20 + FloodGuard::kQuietMs - 1));
  CHECK_FALSE(g.Flooding(20 + FloodGuard::kQuietMs));
  // Normal endings push the garbage out of the window.
  End(g, FloodGuard::kWindow / 2 + 1, false, 30);
  CHECK_FALSE(g.Flooding(30));
}

TEST_CASE("a flood is not metered while no keep-alive client is busy", "[worker][flood]") {
  FloodGuard g;
  End(g, FloodGuard::kWindow, true, 100);
  REQUIRE(g.Flooding(100));
  CHECK(g.AcceptsAllowed(100, 0) == FloodGuard::kUnmetered);  // never a keep-alive request
  g.OnKeepAliveRequest(100);
  CHECK(g.AcceptsAllowed(100, 0) == FloodGuard::kBurst);
  End(g, 1, true, 100 + FloodGuard::kKeepAliveBusyMs);
  CHECK(g.AcceptsAllowed(100 + FloodGuard::kKeepAliveBusyMs, 0) == FloodGuard::kUnmetered);  // quiet since
}

TEST_CASE("during a flood accepts spend tokens earned by the clock and by requests answered", "[worker][flood]") {
  FloodGuard g;
  End(g, FloodGuard::kWindow, true, 100);
  REQUIRE(g.Flooding(100));
  g.OnKeepAliveRequest(100);
  // A full burst first.
  REQUIRE(g.AcceptsAllowed(100, 0) == FloodGuard::kBurst);
  for (uint32_t i = 0; i < FloodGuard::kBurst; ++i) g.OnAccepted();
  CHECK(g.AcceptsAllowed(100, 0) == 0);
  CHECK(g.MsUntilNextAccept(100) == FloodGuard::kAcceptEveryMs);
  // The clock: one per kAcceptEveryMs.
  CHECK(g.AcceptsAllowed(100 + 3 * FloodGuard::kAcceptEveryMs, 0) == 3);
  for (int i = 0; i < 3; ++i) g.OnAccepted();
  const uint64_t now = 100 + 3 * FloodGuard::kAcceptEveryMs;
  CHECK(g.AcceptsAllowed(now, 0) == 0);
  g.OnKeepAliveRequest(now);
  // Requests answered: one per kRequestsPerAccept, fractions kept.
  CHECK(g.AcceptsAllowed(now, FloodGuard::kRequestsPerAccept - 1) == 0);
  CHECK(g.AcceptsAllowed(now, 2 * FloodGuard::kRequestsPerAccept) == 2);
  // Never more than the burst saved.
  g.OnKeepAliveRequest(now + 50);
  CHECK(g.AcceptsAllowed(now + 50, 1000 * FloodGuard::kRequestsPerAccept) == FloodGuard::kBurst);
}

TEST_CASE("after a flood the guard stops metering and starts the next one with a full burst", "[worker][flood]") {
  FloodGuard g;
  End(g, FloodGuard::kWindow, true, 100);
  g.OnKeepAliveRequest(100);
  REQUIRE(g.AcceptsAllowed(100, 0) == FloodGuard::kBurst);
  for (uint32_t i = 0; i < FloodGuard::kBurst; ++i) g.OnAccepted();
  REQUIRE(g.AcceptsAllowed(100, 0) == 0);
  const uint64_t later = 100 + FloodGuard::kQuietMs;
  CHECK(g.AcceptsAllowed(later, 0) == FloodGuard::kUnmetered);
  g.OnAccepted();  // unmetered: spends nothing
  End(g, FloodGuard::kWindow, true, later);
  g.OnKeepAliveRequest(later);
  CHECK(g.AcceptsAllowed(later, 0) == FloodGuard::kBurst);
}

}  // namespace
}  // namespace kingx
