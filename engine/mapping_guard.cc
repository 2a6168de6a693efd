// MappingGuard (see mapping_guard.h): a SIGBUS handler that jumps back into
// the guarded call of the faulting thread, and re-raises everything else.
#include "engine/mapping_guard.h"

#include <setjmp.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <mutex>

namespace kingx::engine {
namespace {

// One per thread, zero-initialized (no initializers: no thread-local init
// check on the hot path). `armed` is read by the handler on the same
// thread, so a signal-safe flag is all the ordering needed.
struct Guard {
  sigjmp_buf jump;
  uintptr_t first_page;
  uintptr_t end_page;  // one past the last page of the declared range
  volatile sig_atomic_t armed;
};

thread_local Guard t_guard;
struct sigaction g_previous;  // the disposition before ours, for every other SIGBUS
std::atomic<uint64_t> g_faults{0};
std::once_flag g_install_once;
std::atomic<bool> g_installed{false};  // a load on the hot path instead of call_once's
uintptr_t g_page = 0;                  // set by Install, before g_installed

void RaiseAsBefore(int sig, siginfo_t* info, void* context) {
  if ((g_previous.sa_flags & SA_SIGINFO) != 0 && g_previous.sa_sigaction != nullptr) {
    g_previous.sa_sigaction(sig, info, context);
    return;
  }
  if ((g_previous.sa_flags & SA_SIGINFO) == 0 && g_previous.sa_handler != SIG_DFL &&
      g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
    return;
  }
  // The default action (a fault's SIGBUS cannot be ignored): die of it now.
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(SIGBUS, &dfl, nullptr);
  raise(SIGBUS);  // not blocked (SA_NODEFER): delivered before raise returns
}

void OnSigbus(int sig, siginfo_t* info, void* context) {
  Guard& g = t_guard;
  const uintptr_t addr = reinterpret_cast<uintptr_t>(info->si_addr);
  // si_code > 0: raised by the kernel for a fault, not sent by a process.
  if (g.armed != 0 && info->si_code > 0 && addr >= g.first_page && addr < g.end_page) {
    g.armed = 0;
    g_faults.fetch_add(1, std::memory_order_relaxed);
    siglongjmp(g.jump, 1);
  }
  RaiseAsBefore(sig, info, context);
}

void Install() {
  g_page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = OnSigbus;
  // SA_NODEFER: SIGBUS stays unblocked in the handler, so leaving it by
  // siglongjmp (which restores no mask) leaves it unblocked for the next
  // fault, and a re-raise is delivered at once.
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, &g_previous);
  g_installed.store(true, std::memory_order_release);
}


}  // namespace

bool GuardMappedRead(const void* data, size_t bytes, void (*fn)(void*), void* arg) {
  if (!g_installed.load(std::memory_order_acquire)) std::call_once(g_install_once, Install);
  Guard& g = t_guard;
  assert(g.armed == 0 && "guarded reads do not nest");
  const uintptr_t page = g_page;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data);
  g.first_page = begin & ~(page - 1);
  g.end_page = (begin + bytes + page - 1) & ~(page - 1);
  if (sigsetjmp(g.jump, 0) != 0) return false;  // the handler disarmed the guard
  g.armed = 1;
  fn(arg);
  g.armed = 0;
  return true;
}

bool GuardedCopy(void* dst, const void* src, size_t n) {
  struct Copy {
    void* dst;
    const void* src;
    size_t n;
  } c{dst, src, n};
  return GuardMappedRead(src, n, [](void* p) {
    auto* c = static_cast<Copy*>(p);
    std::memcpy(c->dst, c->src, c->n);
  }, &c);
}

uint64_t GuardedFaults() { return g_faults.load(std::memory_order_relaxed); }

}  // namespace kingx::engine
