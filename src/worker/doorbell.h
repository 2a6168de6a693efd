// A doorbell: one thread sleeps on it, any thread rings it. The thread
// pool's wake-up for a pool thread waiting for a client, mail (a
// completion), room in a budget or a stop, in place of a condition variable.
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
// The owner may also wait for the doorbell beside descriptors of its own
// (Poll: poll(2) on them and on an eventfd that a ring writes only while
// the owner polls), so that a thread blocked on its socket still wakes for
// a ring, with no timer.
//
// Threads: Wait and Poll from the owner thread only (one sleeper at a time);
// Ring from any thread, also the owner's. Wait never fails; Poll's eventfd
// is made on its first use and closed with the doorbell (without it, Poll
// caps its sleep at kNoDescriptorPollMs). No allocation.
#pragma once

#include <poll.h>

#include <atomic>
#include <cstdint>

namespace kingx {

class Doorbell {
 public:
  Doorbell() = default;
  ~Doorbell();  // closes Poll's eventfd
  Doorbell(const Doorbell&) = delete;
  Doorbell& operator=(const Doorbell&) = delete;

  // Wakes the owner if it sleeps in Wait or Poll (one system call: a futex
  // wake, or the eventfd's write); otherwise its next Wait or Poll returns
  // at once. Any thread. What the ringer wrote before Ring is seen by the
  // owner after the Wait or Poll it ends (release / acquire).
  void Ring();

  // Sleeps until a ring (one since the last Wait or Poll returned counts)
  // or until timeout_ms has passed (0: returns at once; negative: no time
  // limit), or less: a signal or a spurious wake-up ends the sleep early (it
  // reads no clock; a caller that needs the whole time looks at its own).
  // Returns true when it took a ring, false otherwise. Owner thread only.
  bool Wait(int timeout_ms);

  // poll(fds, n, timeout_ms), also ended by a ring: fds must have room for
  // n + 1 entries (fds[n] is the doorbell's). Returns what poll returns
  // (its own entry included; the caller looks at the revents of its own
  // descriptors), 0 without polling when a ring was pending, -1 with errno
  // on a failed poll. A ring taken, during the poll or before it, is gone
  // afterwards: the caller looks again at what it waits for. Owner thread
  // only.
  int Poll(pollfd* fds, nfds_t n, int timeout_ms);

  // Poll's cap on its sleep when it has no eventfd (none could be made).
  static constexpr int kNoDescriptorPollMs = 2;

 private:
  static constexpr uint32_t kIdle = 0;      // no ring pending, owner awake
  static constexpr uint32_t kRung = 1;      // a ring the owner has not taken
  static constexpr uint32_t kSleeping = 2;  // the owner sleeps in Wait (or is about to)
  static constexpr uint32_t kPolling = 3;   // the owner polls with efd_ (or is about to)
  std::atomic<uint32_t> state_{kIdle};
  int efd_ = -1;  // Poll's eventfd: written by the owner before it turns kPolling
};

}  // namespace kingx
