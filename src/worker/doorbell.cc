// The doorbell (see doorbell.h) on a private futex word.
#include "src/worker/doorbell.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace kingx {
namespace {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "a futex word is 32 bits");

uint32_t* Word(std::atomic<uint32_t>* a) { return reinterpret_cast<uint32_t*>(a); }

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
  if (timeout_ms > 0) {
    timespec left{static_cast<time_t>(timeout_ms / 1000), static_cast<long>(timeout_ms % 1000) * 1'000'000};
    // Returns at once (EAGAIN) if a ring already changed the word.
    syscall(SYS_futex, Word(&state_), FUTEX_WAIT_PRIVATE, kSleeping, &left, nullptr, 0);
  }
  // Back to idle; a ring that came meanwhile is taken now.
  return state_.exchange(kIdle, std::memory_order_acq_rel) == kRung;
}

}  // namespace kingx
