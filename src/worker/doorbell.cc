// The doorbell (see doorbell.h) on a private futex word.
#include "src/worker/doorbell.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace kingx {
namespace {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "a futex word is 32 bits");

uint32_t* Word(std::atomic<uint32_t>* a) { return reinterpret_cast<uint32_t*>(a); }

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

void Doorbell::Ring() {
  if (state_.exchange(kRung, std::memory_order_acq_rel) == kSleeping) {
    syscall(SYS_futex, Word(&state_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  }
}

bool Doorbell::Wait(int timeout_ms) {
  uint32_t expected = kIdle;
  if (!state_.compare_exchange_strong(expected, kSleeping, std::memory_order_acq_rel)) {
    // Rung (only the owner leaves kRung): taken, with what every ring so far published.
    state_.exchange(kIdle, std::memory_order_acq_rel);
    return true;
  }
  uint64_t now_ns = timeout_ms > 0 ? NowNs() : 0;
  const uint64_t until_ns = now_ns + (timeout_ms > 0 ? static_cast<uint64_t>(timeout_ms) * 1'000'000 : 0);
  while (now_ns < until_ns) {
    const uint64_t left_ns = until_ns - now_ns;
    timespec left{static_cast<time_t>(left_ns / 1'000'000'000), static_cast<long>(left_ns % 1'000'000'000)};
    // Returns at once (EAGAIN) if a ring already changed the word.
    syscall(SYS_futex, Word(&state_), FUTEX_WAIT_PRIVATE, kSleeping, &left, nullptr, 0);
    if (state_.load(std::memory_order_acquire) != kSleeping) break;  // rung
    // Woken without a ring (a signal, a spurious wake-up) or timed out: the clock decides.
    now_ns = NowNs();
  }
  // Back to idle; a ring that came meanwhile is taken now.
  return state_.exchange(kIdle, std::memory_order_acq_rel) == kRung;
}

}  // namespace kingx
