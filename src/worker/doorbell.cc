// The doorbell (see doorbell.h) on a private futex word.
#include "src/worker/doorbell.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

namespace kingx {
namespace {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "a futex word is 32 bits");

uint32_t* Word(std::atomic<uint32_t>* a) { return reinterpret_cast<uint32_t*>(a); }

}  // namespace

Doorbell::~Doorbell() {
  if (efd_ >= 0) close(efd_);
}

void Doorbell::Ring() {
  const uint32_t was = state_.exchange(kRung, std::memory_order_acq_rel);
  if (was == kSleeping) {
    syscall(SYS_futex, Word(&state_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  } else if (was == kPolling) {
    const uint64_t one = 1;
    (void)!write(efd_, &one, sizeof one);
  }
}

bool Doorbell::Wait(int timeout_ms) {
  uint32_t expected = kIdle;
  if (!state_.compare_exchange_strong(expected, kSleeping, std::memory_order_acq_rel)) {
    // Rung (only the owner leaves kRung): taken, with what every ring so far published.
    state_.exchange(kIdle, std::memory_order_acq_rel);
    return true;
  }
  if (timeout_ms != 0) {
    timespec left{static_cast<time_t>(timeout_ms / 1000), static_cast<long>(timeout_ms % 1000) * 1'000'000};
    // Returns at once (EAGAIN) if a ring already changed the word.
    syscall(SYS_futex, Word(&state_), FUTEX_WAIT_PRIVATE, kSleeping, timeout_ms > 0 ? &left : nullptr, nullptr, 0);
  }
  // Back to idle; a ring that came meanwhile is taken now.
  return state_.exchange(kIdle, std::memory_order_acq_rel) == kRung;
}

int Doorbell::Poll(pollfd* fds, nfds_t n, int timeout_ms) {
  if (efd_ < 0) efd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd_ < 0) {
    // No descriptor to ring: look again soon (a ring stays pending meanwhile).
    if (state_.load(std::memory_order_acquire) == kRung) {
      state_.exchange(kIdle, std::memory_order_acq_rel);
      return 0;
    }
    const int cap = timeout_ms < 0 ? kNoDescriptorPollMs : std::min(timeout_ms, kNoDescriptorPollMs);
    return poll(fds, n, cap);
  }
  uint32_t expected = kIdle;
  if (!state_.compare_exchange_strong(expected, kPolling, std::memory_order_acq_rel)) {
    state_.exchange(kIdle, std::memory_order_acq_rel);  // rung: taken
    return 0;
  }
  fds[n] = pollfd{efd_, POLLIN, 0};
  const int r = poll(fds, n + 1, timeout_ms);
  const int saved = errno;
  if (r > 0 && fds[n].revents != 0) {
    // The ring's write (or a late one of an earlier ring: it only ends
    // this poll early).
    uint64_t count = 0;
    (void)!read(efd_, &count, sizeof count);
  }
  state_.exchange(kIdle, std::memory_order_acq_rel);
  errno = saved;
  return r;
}

}  // namespace kingx
