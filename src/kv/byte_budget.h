// ByteBudget: a worker's allowance of memory for one kind of buffer (request
// bodies waiting to reach the writer, decoded values waiting to be sent),
// shared by every connection of the worker.
//
// Holders reserve before they buffer and release when they are done, so the
// bytes in use never pass the limit, with one exception that keeps the
// budget from deadlocking: while nothing is reserved, one reservation of any
// size is granted (a single request larger than the whole budget still
// proceeds, alone). A refused holder waits (it stops reading, or its
// response waits) and asks again later; refusals are counted.
//
// A holder that waits on a thread of its own (the thread model) can be woken
// by a release instead of asking again on a timer: the budget's owner sets a
// ReleaseListener, which every Release (and NotifyListener) calls after the
// bytes are back. Release's update and the reads of WouldFit and used() are
// sequentially consistent, so a waiter that announces itself (a
// sequentially consistent update of its own) and then finds no room with
// WouldFit or used() is seen by the listener of any release that its reads
// did not see (no lost wake-up).
//
// Thread-safety: every method may be called from any thread (the thread
// model shares one budget among its pool threads). Lock-free; the listener
// runs on the releasing thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace kingx {

class ByteBudget {
 public:
  // Told of every release, on the releasing thread, after the bytes are
  // back. Must not call Release of the same budget.
  class ReleaseListener {
   public:
    virtual void OnRelease() = 0;

   protected:
    ~ReleaseListener() = default;
  };

  // limit_bytes > 0.
  explicit ByteBudget(uint64_t limit_bytes) : limit_(limit_bytes) {}
  ByteBudget(const ByteBudget&) = delete;
  ByteBudget& operator=(const ByteBudget&) = delete;

  // Reserves n bytes if they fit under the limit (or nothing is reserved at
  // all); false otherwise (nothing reserved, refusal counted).
  bool TryReserve(uint64_t n) {
    uint64_t cur = used_.load(std::memory_order_relaxed);
    for (;;) {
      if (cur != 0 && (cur + n > limit_ || cur + n < cur)) {
        refusals_.fetch_add(1, std::memory_order_relaxed);
        return false;
      }
      if (used_.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed)) return true;
    }
  }

  // Reserves n bytes if used + n stays at most `ceiling` (no exception for
  // an empty budget); false otherwise (nothing reserved, refusal counted).
  // For holders that must leave room below the limit for others.
  bool TryReserveBelow(uint64_t n, uint64_t ceiling) {
    uint64_t cur = used_.load(std::memory_order_relaxed);
    for (;;) {
      if (cur + n > ceiling || cur + n < cur) {
        refusals_.fetch_add(1, std::memory_order_relaxed);
        return false;
      }
      if (used_.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed)) return true;
    }
  }

  // True when TryReserve(n) would succeed now (nothing reserved, nothing
  // counted): for a waiter deciding whether to ask again.
  bool WouldFit(uint64_t n) const {
    const uint64_t cur = used_.load(std::memory_order_seq_cst);
    return cur == 0 || (cur + n <= limit_ && cur + n >= cur);
  }

  // Adds n bytes without checking the limit: memory a holder found it had
  // to allocate after its reservation (rare; keeps the accounting honest).
  void Charge(uint64_t n) { used_.fetch_add(n, std::memory_order_relaxed); }

  // Gives back n bytes of an earlier TryReserve or Charge, then tells the
  // listener, if any.
  void Release(uint64_t n) {
    used_.fetch_sub(n, std::memory_order_seq_cst);
    // Only the thread model listens: the event loop's releases (every
    // request body's) stay a single atomic update.
    if (listener_ != nullptr) [[unlikely]] listener_->OnRelease();
  }

  // Tells the listener, as a release does, of a change that made room for
  // holders of another budget (a whole reservation taking over bytes that
  // counted as an upload's window: src/kv/write_exchange.h). Ordered like
  // Release (a sequentially consistent update of this budget first).
  void NotifyListener() {
    used_.fetch_add(0, std::memory_order_seq_cst);
    if (listener_ != nullptr) listener_->OnRelease();
  }

  // Sets (or clears, with null) the listener: before any thread uses the
  // budget, or after the last one did. It must outlive its use.
  void SetReleaseListener(ReleaseListener* listener) { listener_ = listener; }

  uint64_t limit() const { return limit_; }
  // Sequentially consistent, like WouldFit: a waiter's own check of room
  // after it announced itself reads it (see the top of this file).
  uint64_t used() const { return used_.load(std::memory_order_seq_cst); }
  uint64_t refusals() const { return refusals_.load(std::memory_order_relaxed); }

 private:
  const uint64_t limit_;
  ReleaseListener* listener_ = nullptr;
  std::atomic<uint64_t> used_{0};
  std::atomic<uint64_t> refusals_{0};
};

}  // namespace kingx
