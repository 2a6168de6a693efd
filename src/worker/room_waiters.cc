// RoomWaiters (see room_waiters.h).
#include "src/worker/room_waiters.h"

#include <cassert>

namespace kingx {

RoomWaiters::RoomWaiters(ByteBudget& budget, size_t slots, RingFn ring, void* arg)
    : budget_(budget), slots_(slots), ring_(ring), arg_(arg), need_(new std::atomic<uint64_t>[slots]) {
  assert(slots > 0 && ring != nullptr);
  for (size_t i = 0; i < slots_; ++i) need_[i].store(0, std::memory_order_relaxed);
  budget_.SetReleaseListener(this);
}

RoomWaiters::~RoomWaiters() { budget_.SetReleaseListener(nullptr); }

void RoomWaiters::Begin(size_t slot, uint64_t need) {
  assert(slot < slots_ && need > 0);
  // Need first, then the count: a release that sees the count sees the need.
  // The count's update is the waiter's side of the ordering with Release
  // (a sequentially consistent read-modify-write before its WouldFit).
  need_[slot].store(need, std::memory_order_seq_cst);
  waiting_.fetch_add(1, std::memory_order_seq_cst);
}

void RoomWaiters::End(size_t slot) {
  assert(slot < slots_);
  if (need_[slot].exchange(0, std::memory_order_seq_cst) != 0) waiting_.fetch_sub(1, std::memory_order_seq_cst);
}

void RoomWaiters::OnRelease() {
  if (waiting_.load(std::memory_order_seq_cst) == 0) return;
  // The room there is now (this thread's release included); each waiter
  // rung is counted as holding its need, as it will once it reserves. A
  // waiter that needs more than the whole budget fits only an empty one
  // (ByteBudget::TryReserve's exception).
  const uint64_t limit = budget_.limit();
  uint64_t used = budget_.used();
  const size_t first = start_.fetch_add(1, std::memory_order_relaxed) % slots_;
  for (size_t k = 0; k < slots_; ++k) {
    const size_t slot = (first + k) % slots_;
    const uint64_t need = need_[slot].load(std::memory_order_seq_cst);
    if (need == 0) continue;
    if (need == kAnyRelease) {
      ring_(arg_, slot);
      continue;
    }
    if (used != 0 && (used + need > limit || used + need < used)) continue;
    ring_(arg_, slot);
    used += need;
  }
}

}  // namespace kingx
