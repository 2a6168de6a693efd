// Tests of src/worker/doorbell.h: a ring before the wait is kept, rings do
// not add up, a wait without a ring times out, and no ring between two
// threads is lost over many rounds (a lost one shows as a timeout); Poll
// is ended by a ring as Wait is, and still by its own descriptors.
#include "src/worker/doorbell.h"

#include <catch2/catch.hpp>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace kingx {
namespace {

using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

TEST_CASE("a ring before the wait makes the wait return at once, and rings do not add up", "[worker][doorbell]") {
  Doorbell bell;
  bell.Ring();
  bell.Ring();
  const auto start = Clock::now();
  CHECK(bell.Wait(10'000));
  CHECK(MsSince(start) < 5'000);
  // Both rings were one: the next wait has nothing to take.
  CHECK_FALSE(bell.Wait(30));
  CHECK_FALSE(bell.Wait(0));
}

TEST_CASE("a wait without a ring returns false once its time has passed", "[worker][doorbell]") {
  Doorbell bell;
  const auto start = Clock::now();
  CHECK_FALSE(bell.Wait(50));
  CHECK(MsSince(start) >= 50);
}

TEST_CASE("a ring from another thread wakes the sleeper", "[worker][doorbell]") {
  Doorbell bell;
  std::thread ringer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    bell.Ring();
  });
  const auto start = Clock::now();
  CHECK(bell.Wait(20'000));
  CHECK(MsSince(start) < 10'000);
  ringer.join();
}

TEST_CASE("no ring is lost between two threads that take turns", "[worker][doorbell]") {
  // Each side publishes its turn number, rings the other and waits for its
  // reply: a ring lost in the race between a look and a sleep leaves one side
  // asleep until its (long) timeout, which fails the round.
  constexpr int kRounds = 20'000;
  Doorbell ping, pong;
  std::atomic<int> served{0};
  std::atomic<int> timeouts{0};
  std::thread other([&] {
    for (int i = 1; i <= kRounds; ++i) {
      while (served.load(std::memory_order_acquire) < i) {
        if (!ping.Wait(10'000) && served.load(std::memory_order_acquire) < i) {
          timeouts.fetch_add(1);
          return;
        }
      }
      pong.Ring();
    }
  });
  int replies = 0;
  for (int i = 1; i <= kRounds && timeouts.load() == 0; ++i) {
    served.store(i, std::memory_order_release);
    ping.Ring();
    if (!pong.Wait(10'000)) {
      timeouts.fetch_add(1);
      break;
    }
    ++replies;
  }
  if (timeouts.load() != 0) ping.Ring();  // let the other side see the failure
  other.join();
  CHECK(timeouts.load() == 0);
  CHECK(replies == kRounds);
}

TEST_CASE("a ring ends a poll on other descriptors, and a ring before it means no poll", "[worker][doorbell]") {
  Doorbell bell;
  int pipe_fds[2];
  REQUIRE(pipe(pipe_fds) == 0);
  pollfd fds[2] = {{pipe_fds[0], POLLIN, 0}, {}};
  // Nothing rings, nothing to read: the poll's time passes.
  auto start = Clock::now();
  CHECK(bell.Poll(fds, 1, 50) == 0);
  CHECK(MsSince(start) >= 50);
  // A ring from another thread while it polls.
  std::thread ringer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    bell.Ring();
  });
  start = Clock::now();
  CHECK(bell.Poll(fds, 1, 20'000) == 1);
  CHECK(fds[0].revents == 0);
  CHECK(MsSince(start) < 10'000);
  ringer.join();
  // Taken: the next poll waits again, for its own descriptor.
  REQUIRE(write(pipe_fds[1], "x", 1) == 1);
  CHECK(bell.Poll(fds, 1, 20'000) == 1);
  CHECK(fds[0].revents == POLLIN);
  char c;
  REQUIRE(read(pipe_fds[0], &c, 1) == 1);
  // A ring before the poll: it returns at once without polling, and a
  // following Wait has nothing to take.
  bell.Ring();
  start = Clock::now();
  CHECK(bell.Poll(fds, 1, 20'000) == 0);
  CHECK(MsSince(start) < 10'000);
  CHECK_FALSE(bell.Wait(0));
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

TEST_CASE("a wait with no time limit ends with a ring", "[worker][doorbell]") {
  Doorbell bell;
  std::thread ringer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    bell.Ring();
  });
  CHECK(bell.Wait(-1));
  ringer.join();
}

}  // namespace
}  // namespace kingx
