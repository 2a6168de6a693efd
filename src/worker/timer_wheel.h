// TimerWheel: the deadlines of an event loop's connections, kept so that a
// periodic expiry touches the connections that are due and leaves the others
// alone (a hashed timing wheel, Varghese & Lauck; nginx keeps a red-black
// tree for the same job).
//
// Each timed object embeds one TimerNode (two links and its deadline, no
// allocation). The wheel has kSlots slots of tick_ms each; a node armed for
// deadline d sits in the slot of tick d / tick_ms, or, when d is further
// away than the wheel reaches (kSlots ticks), in the wheel's last reachable
// slot, from which Expire moves it on without handing it out. Arm, ArmNoLater
// and Disarm are O(1); Expire(now) costs one step per tick elapsed since the
// previous call plus one per node it finds in those ticks' slots: the nodes
// due, the ones re-linked because their deadline is later in the same tick,
// and the far ones moving on (once per kSlots ticks).
//
// The lazy re-arm (ArmNoLater): a caller that re-reads an object's deadline
// after every event only needs to move its node when the deadline comes
// EARLIER. Left armed for an earlier time than its real deadline, the node is
// handed out early; the handler re-reads the deadline and arms it again. So a
// keep-alive connection whose deadline moves later on every request costs
// no re-link per request, only one early hand-out per armed period.
//
// Threading: one thread (the loop's). Not copyable; nodes must be disarmed
// (or the wheel destroyed with them) before they are freed.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>

namespace kingx {

// Embed one per timed object. A node belongs to at most one wheel.
struct TimerNode {
  TimerNode* prev = nullptr;  // circular list of the node's slot; null = not armed
  TimerNode* next = nullptr;
  uint64_t deadline_ms = 0;   // what the node is armed for (valid while armed)

  bool armed() const { return prev != nullptr; }
};

class TimerWheel {
 public:
  static constexpr size_t kSlots = 512;

  // tick_ms (> 0): the wheel's resolution, normally the expiry period.
  // now_ms: the clock at construction (the first tick Expire looks at).
  TimerWheel(uint64_t tick_ms, uint64_t now_ms) : tick_ms_(tick_ms), cursor_(now_ms / tick_ms) {
    assert(tick_ms > 0);
    for (TimerNode& s : slots_) s.prev = s.next = &s;
  }
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Arms `n` for deadline_ms (absolute, same clock as Expire's now_ms),
  // replacing any earlier arming. A deadline already passed is handed out by
  // the next Expire.
  void Arm(TimerNode* n, uint64_t deadline_ms) {
    if (n->armed()) Unlink(n);
    n->deadline_ms = deadline_ms;
    Link(n);
  }

  // The lazy re-arm: arms `n` for deadline_ms unless it is already armed for
  // an earlier (or the same) time. Returns true when it moved the node.
  bool ArmNoLater(TimerNode* n, uint64_t deadline_ms) {
    if (n->armed() && n->deadline_ms <= deadline_ms) return false;
    Arm(n, deadline_ms);
    return true;
  }

  // Takes `n` out of the wheel (no-op when not armed): it is never handed out
  // until armed again. Call it before freeing the node's object.
  void Disarm(TimerNode* n) {
    if (n->armed()) Unlink(n);
  }

  // Hands out every node armed for a time <= now_ms, disarmed before
  // fn(TimerNode*) is called: fn may Arm it again (a deadline still <= now_ms
  // is then handed out again by this call's last tick or by the next call),
  // and may Arm or Disarm any other node. Nodes armed for later stay.
  // Returns how many hand-outs there were. now_ms earlier than a previous
  // call's is treated as that call's.
  template <class Fn>
  size_t Expire(uint64_t now_ms, Fn&& fn) {
    const uint64_t end = std::max(now_ms / tick_ms_, cursor_);
    // After a stall longer than the wheel, every slot is visited once.
    uint64_t tick = end - cursor_ >= kSlots ? end - (kSlots - 1) : cursor_;
    cursor_ = end;  // nodes linked from here on land at tick `end` or later
    size_t handed = 0;
    for (; tick <= end; ++tick) {
      TimerNode& slot = slots_[tick % kSlots];
      if (slot.next == &slot) continue;
      // Detach the slot's list, so that nodes linked into this slot meanwhile
      // wait for the next call; the detached ones stay unlinkable.
      TimerNode pending;
      pending.next = slot.next;
      pending.prev = slot.prev;
      pending.next->prev = &pending;
      pending.prev->next = &pending;
      slot.next = slot.prev = &slot;
      while (pending.next != &pending) {
        TimerNode* n = pending.next;
        Unlink(n);
        ++visited_;
        if (n->deadline_ms <= now_ms) {
          ++handed;
          fn(n);
        } else {
          Link(n);  // later in this tick, or further than the wheel reaches
        }
      }
    }
    return handed;
  }

  // Nodes looked at by Expire since construction (handed out or moved on):
  // what the expiries cost, for tests and diagnostics.
  uint64_t visited() const { return visited_; }
  uint64_t tick_ms() const { return tick_ms_; }

 private:
  void Link(TimerNode* n) {
    uint64_t tick = std::clamp(n->deadline_ms / tick_ms_, cursor_, cursor_ + (kSlots - 1));
    TimerNode& slot = slots_[tick % kSlots];
    n->prev = slot.prev;
    n->next = &slot;
    slot.prev->next = n;
    slot.prev = n;
  }
  static void Unlink(TimerNode* n) {
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = nullptr;
  }

  uint64_t tick_ms_;
  uint64_t cursor_;  // the lowest tick a node can be linked at
  uint64_t visited_ = 0;
  TimerNode slots_[kSlots];  // list heads (sentinels)
};

}  // namespace kingx
