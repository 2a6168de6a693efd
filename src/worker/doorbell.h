// A doorbell: one thread sleeps on it, any thread rings it. The thread
// pool's wake-up for a pool thread waiting for mail (a completion), room in
// a budget or a stop, in place of a condition variable.
//
// Why not std::condition_variable: glibc re-takes the condition variable's
// mutex after a wake-up as if it were contended, so the waiter's next
// unlock always makes a futex system call, and a notify makes one even when
// the waiter is not asleep. A doorbell is one futex word: Ring makes a
// system call only when its owner sleeps in Wait, Wait only to sleep.
//
// A ring is sticky: one that comes while the owner is awake (between its
// last look at what it waits for and Wait) makes its next Wait return at
// once, so no wake-up is lost. Rings do not add up: many rings before a
// Wait are one. Wait may therefore return for a ring meant for an earlier
// wait: callers look again at what they wait for and wait again.
//
// Threads: Wait from the owner thread only (one sleeper at a time); Ring
// from any thread, also the owner's. Never fails; no allocation.
#pragma once

#include <atomic>
#include <cstdint>

namespace kingx {

class Doorbell {
 public:
  Doorbell() = default;
  Doorbell(const Doorbell&) = delete;
  Doorbell& operator=(const Doorbell&) = delete;

  // Wakes the owner if it sleeps in Wait; otherwise its next Wait returns
  // at once. Any thread. What the ringer wrote before Ring is seen by the
  // owner after the Wait it ends (release / acquire).
  void Ring();

  // Sleeps until a ring (one since the last Wait returned counts) or until
  // timeout_ms has passed (timeout_ms <= 0: returns at once), or less: a
  // signal or a spurious wake-up ends the sleep early (it reads no clock;
  // a caller that needs the whole time looks at its own). Returns true when
  // it took a ring, false otherwise. Owner thread only.
  bool Wait(int timeout_ms);

 private:
  static constexpr uint32_t kIdle = 0;      // no ring pending, owner awake
  static constexpr uint32_t kRung = 1;      // a ring the owner has not taken
  static constexpr uint32_t kSleeping = 2;  // the owner sleeps in Wait (or is about to)
  std::atomic<uint32_t> state_{kIdle};
};

}  // namespace kingx
