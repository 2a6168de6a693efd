// Tests of src/worker/room_waiters.h: a release rings the waiters whose
// needs fit in the room there is and no one else, a wait that ended is
// rung no more, and no wake-up is lost between a waiter's last look at the
// budget and a release on another thread.
#include "src/worker/room_waiters.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "src/kv/byte_budget.h"

namespace kingx {
namespace {

// Rings recorded in order, per slot.
struct Rings {
  std::vector<size_t> slots;
  static void Ring(void* arg, size_t slot) { static_cast<Rings*>(arg)->slots.push_back(slot); }
};

TEST_CASE("a release rings the waiters whose needs fit in the room released, and no one else",
          "[worker][room]") {
  ByteBudget budget(100);
  REQUIRE(budget.TryReserve(100));
  Rings rings;
  RoomWaiters waiters(budget, 4, &Rings::Ring, &rings);
  waiters.Begin(1, 60);
  waiters.Begin(3, 50);
  budget.Release(30);  // 70 used: neither fits
  CHECK(rings.slots.empty());
  budget.Release(30);  // 40 used: one of them fits, then the room is spoken for
  REQUIRE(rings.slots.size() == 1);
  const size_t first = rings.slots[0];
  CHECK((first == 1 || first == 3));
  waiters.End(first);
  rings.slots.clear();
  budget.Release(40);  // empty: the other fits
  REQUIRE(rings.slots.size() == 1);
  CHECK(rings.slots[0] == (first == 1 ? 3u : 1u));
}

TEST_CASE("a release rings no one when nobody waits or every wait ended", "[worker][room]") {
  ByteBudget budget(100);
  Rings rings;
  RoomWaiters waiters(budget, 2, &Rings::Ring, &rings);
  REQUIRE(budget.TryReserve(100));
  budget.Release(100);
  CHECK(rings.slots.empty());
  REQUIRE(budget.TryReserve(100));
  waiters.Begin(0, 10);
  waiters.End(0);
  waiters.End(0);  // twice: still no waiter
  budget.Release(100);
  CHECK(rings.slots.empty());
}

TEST_CASE("a waiter that needs more than the whole budget is rung once the budget is empty", "[worker][room]") {
  ByteBudget budget(100);
  Rings rings;
  RoomWaiters waiters(budget, 1, &Rings::Ring, &rings);
  REQUIRE(budget.TryReserve(10));
  REQUIRE(budget.TryReserve(10));
  waiters.Begin(0, 500);
  budget.Release(10);
  CHECK(rings.slots.empty());
  budget.Release(10);
  CHECK(rings.slots == std::vector<size_t>{0});
}

TEST_CASE("releases ring waiters from a different first slot each time", "[worker][room]") {
  ByteBudget budget(100);
  Rings rings;
  RoomWaiters waiters(budget, 2, &Rings::Ring, &rings);
  std::vector<size_t> firsts;
  for (int i = 0; i < 4; ++i) {
    REQUIRE(budget.TryReserve(100));
    waiters.Begin(0, 100);
    waiters.Begin(1, 100);
    rings.slots.clear();
    budget.Release(100);  // room for one of the two
    REQUIRE(rings.slots.size() == 1);
    firsts.push_back(rings.slots[0]);
    waiters.End(0);
    waiters.End(1);
  }
  CHECK(std::count(firsts.begin(), firsts.end(), 0u) == 2);
}

TEST_CASE("a waiter of any release is rung by every release and notice, whatever the room", "[worker][room]") {
  ByteBudget budget(100);
  Rings rings;
  RoomWaiters waiters(budget, 3, &Rings::Ring, &rings);
  REQUIRE(budget.TryReserve(100));
  REQUIRE(budget.TryReserve(1) == false);
  waiters.Begin(0, RoomWaiters::kAnyRelease);
  waiters.Begin(2, 90);
  budget.Release(1);  // 99 used: room for no need, still rings the waiter of any release
  CHECK(rings.slots == std::vector<size_t>{0});
  rings.slots.clear();
  budget.NotifyListener();  // no release at all: a notice rings it too
  CHECK(rings.slots == std::vector<size_t>{0});
  rings.slots.clear();
  budget.Release(89);  // 10 used: both; the waiter of any release takes no room from the other
  std::sort(rings.slots.begin(), rings.slots.end());
  CHECK(rings.slots == std::vector<size_t>{0, 2});
  waiters.End(0);
  waiters.End(2);
  rings.slots.clear();
  budget.Release(10);
  CHECK(rings.slots.empty());
}

// A waiter thread and a releasing thread, many rounds: each round the budget
// is full, the waiter announces itself, looks at the budget and sleeps unless
// it saw room, while the other thread releases. Every round must end with the
// waiter awake by its own look or by the ring: a wake-up lost in the race
// leaves it asleep until the (generous) bound.
struct Sleeper {
  std::mutex mu;
  std::condition_variable cv;
  bool rung = false;
  static void Ring(void* arg, size_t) {
    auto* s = static_cast<Sleeper*>(arg);
    {
      std::lock_guard<std::mutex> lock(s->mu);
      s->rung = true;
    }
    s->cv.notify_one();
  }
};

TEST_CASE("no wake-up is lost between a waiter's last look at the budget and a release", "[worker][room]") {
  constexpr int kRounds = 20000;
  constexpr auto kBound = std::chrono::minutes(2);
  ByteBudget budget(1);
  Sleeper sleeper;
  RoomWaiters waiters(budget, 1, &Sleeper::Ring, &sleeper);
  std::mutex round_mu;
  std::condition_variable round_cv;
  int round_full = -1;   // the round whose reservation is in place
  int round_done = -1;   // the round the waiter finished
  int lost = 0;
  std::thread waiter([&] {
    for (int r = 0; r < kRounds; ++r) {
      {
        std::unique_lock<std::mutex> lock(round_mu);
        round_cv.wait(lock, [&] { return round_full == r; });
      }
      {
        std::lock_guard<std::mutex> lock(sleeper.mu);
        sleeper.rung = false;
      }
      waiters.Begin(0, 1);
      if (!budget.WouldFit(1)) {
        std::unique_lock<std::mutex> lock(sleeper.mu);
        if (!sleeper.cv.wait_for(lock, kBound, [&] { return sleeper.rung; })) ++lost;
      }
      waiters.End(0);
      {
        std::lock_guard<std::mutex> lock(round_mu);
        round_done = r;
      }
      round_cv.notify_all();
    }
  });
  for (int r = 0; r < kRounds; ++r) {
    REQUIRE(budget.TryReserve(1));
    {
      std::lock_guard<std::mutex> lock(round_mu);
      round_full = r;
    }
    round_cv.notify_all();
    budget.Release(1);  // races with the waiter's Begin and look
    std::unique_lock<std::mutex> lock(round_mu);
    round_cv.wait(lock, [&] { return round_done == r; });
  }
  waiter.join();
  CHECK(lost == 0);
}

}  // namespace
}  // namespace kingx
