// RoomWaiters: threads that wait for room in a ByteBudget that other threads
// release (the thread model's pool threads whose compressed response waits
// for --response-buffer-bytes, or whose upload waits for the body budgets),
// woken by the release that makes room for them instead of asking again on
// a timer.
//
// Each waiting thread has a slot (0..slots-1, one per pool thread). A waiter:
//   Begin(slot, need)      announces it waits for `need` bytes
//   its own check of room  (ByteBudget::WouldFit or used(), through its owner)
//   sleep until rung, unless that check found room
//   End(slot)              before it reserves or leaves
// A release that the check did not see finds the waiter announced
// (byte_budget.h: both sides sequentially consistent) and rings it when its
// need fits in the room released, so no wake-up is lost. Releases ring the
// waiters whose needs fit in the room there is, one after another from a
// start that moves on with every release (no waiter is always last), and no
// more: a release of one piece's room wakes about one waiter, not all.
// Waiters of kAnyRelease are rung by every release (and NotifyListener).
//
// ring(arg, slot) runs on the releasing thread, perhaps more than once per
// wait, perhaps for a slot whose wait just ended: it must end that slot's
// sleep (set a flag under the sleeper's lock and notify) and nothing more.
//
// Threading: Begin and End by the slot's own thread; rings from any thread.
// Lock-free. Installs itself as the budget's release listener for its whole
// life: construct before any thread uses the budget, destroy after.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "src/kv/byte_budget.h"

namespace kingx {

class RoomWaiters final : public ByteBudget::ReleaseListener {
 public:
  using RingFn = void (*)(void* arg, size_t slot);

  // budget must outlive this object; slots > 0.
  RoomWaiters(ByteBudget& budget, size_t slots, RingFn ring, void* arg);
  ~RoomWaiters();
  RoomWaiters(const RoomWaiters&) = delete;
  RoomWaiters& operator=(const RoomWaiters&) = delete;

  // A need that every release rings, whatever the room: for a waiter whose
  // room other rules decide (an upload waiting for the body budgets: its
  // thread looks for itself once rung). It counts as taking no room.
  static constexpr uint64_t kAnyRelease = UINT64_MAX;

  // The slot waits for need bytes (at least 1, or kAnyRelease). Then check
  // for room once more before sleeping (see the top of this file).
  void Begin(size_t slot, uint64_t need);
  // The slot waits no more.
  void End(size_t slot);

  // ByteBudget::ReleaseListener: rings the waiters whose needs fit.
  void OnRelease() override;

 private:
  ByteBudget& budget_;
  const size_t slots_;
  const RingFn ring_;
  void* const arg_;
  std::unique_ptr<std::atomic<uint64_t>[]> need_;  // per slot; 0: not waiting
  std::atomic<size_t> waiting_{0};                 // slots between Begin and End
  std::atomic<size_t> start_{0};                   // where the next release's walk begins
};

}  // namespace kingx
