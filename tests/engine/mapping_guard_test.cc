// MappingGuard: a read of a mapped page that the kernel cannot fill (here a
// file truncated under its mapping: a real SIGBUS) fails the guarded call
// instead of the process; every other SIGBUS still ends the process.
#include "engine/mapping_guard.h"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "engine/env.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;

namespace {

const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));

// A file of `pages` pages of 'x', mapped whole, then cut to `keep` pages:
// the pages past the cut raise SIGBUS when touched.
struct CutMapping {
  CutMapping(const TempDir& dir, size_t pages, size_t keep) : path(JoinPath(dir.path(), "mapped")) {
    auto f = PosixEnv().OpenFile(path, OpenMode::kCreateTruncate);
    REQUIRE(f.ok());
    REQUIRE(f.value()->Append(std::string(pages * kPage, 'x')).ok());
    auto m = PosixEnv().MapReadOnly(path, pages * kPage);
    REQUIRE(m.ok());
    map = std::move(m.value());
    REQUIRE(f.value()->Truncate(keep * kPage).ok());
  }
  const char* page(size_t i) const { return map->data() + i * kPage; }
  std::string path;
  std::unique_ptr<MappedFile> map;
};

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kUnderAsan = true;
#else
constexpr bool kUnderAsan = false;
#endif

// Runs body in a child process; returns the signal that ended it, or, when
// the child exited, minus its exit status.
int DeathSignal(void (*body)(const CutMapping&), const CutMapping& m) {
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    body(m);
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  return WIFSIGNALED(status) ? WTERMSIG(status) : -WEXITSTATUS(status);
}

// What DeathSignal returns when a SIGBUS the guard does not take ended the
// child: the default action kills it with the signal; under AddressSanitizer
// the disposition the guard found and hands it to is the sanitizer's own
// handler, which reports the fault and exits with its error status (1).
bool EndedBySigbus(int how) { return how == SIGBUS || (kUnderAsan && how == -1); }

}  // namespace

TEST_CASE("a guarded copy of a page cut under its mapping fails instead of the process, again and again",
          "[engine][mapping_guard]") {
  TempDir dir;
  CutMapping m(dir, 3, 1);
  char buf[64];
  REQUIRE(GuardedCopy(buf, m.page(0), sizeof buf));
  CHECK(std::string(buf, sizeof buf) == std::string(sizeof buf, 'x'));
  const uint64_t before = GuardedFaults();
  for (int i = 0; i < 3; ++i) {
    CHECK_FALSE(GuardedCopy(buf, m.page(1) + 100, sizeof buf));
    CHECK_FALSE(GuardedCopy(buf, m.page(2), sizeof buf));
    // A copy that starts on a readable page and runs onto a cut one.
    CHECK_FALSE(GuardedCopy(buf, m.page(1) - 10, sizeof buf));
    CHECK(GuardedCopy(buf, m.page(0) + 8, sizeof buf));
  }
  CHECK(GuardedFaults() == before + 9);
  // Any computation, not only a copy.
  size_t sum = 0;
  auto add = [&] {
    for (size_t i = 0; i < 2 * kPage; ++i) sum += static_cast<unsigned char>(m.page(0)[i]);
  };
  CHECK_FALSE(GuardMappedRead(m.page(0), 2 * kPage, add));
  CHECK(sum >= kPage * 'x');
}

TEST_CASE("a SIGBUS outside a guarded read, at an address outside its range, or sent by kill still ends the process",
          "[engine][mapping_guard]") {
  TempDir dir;
  CutMapping m(dir, 2, 1);
  // The guard is installed in the child by its first guarded read.
  CHECK(EndedBySigbus(DeathSignal([](const CutMapping& cut) {
    char buf[8];
    if (!GuardedCopy(buf, cut.page(0), sizeof buf)) _exit(3);
    volatile char c = cut.page(1)[0];  // unguarded
    (void)c;
  }, m)));
  CHECK(EndedBySigbus(DeathSignal([](const CutMapping& cut) {
    // Guarded for page 0 only; the read of page 1 is not what it declared.
    const char* p = cut.page(0);
    auto touch = [&] {
      volatile char c = p[kPage];
      (void)c;
    };
    (void)GuardMappedRead(p, 8, touch);
  }, m)));
  CHECK(EndedBySigbus(DeathSignal([](const CutMapping& cut) {
    auto send = [] { kill(getpid(), SIGBUS); };
    (void)GuardMappedRead(cut.page(1), 8, send);
  }, m)));
  // In this process the guard is still in force.
  char buf[8];
  CHECK_FALSE(GuardedCopy(buf, m.page(1), sizeof buf));
}

TEST_CASE("threads fault in their own guarded reads without disturbing each other's", "[engine][mapping_guard]") {
  TempDir dir;
  CutMapping m(dir, 4, 2);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      char buf[256];
      for (int i = 0; i < 2000; ++i) {
        const bool cut = (i + t) % 2 == 0;
        const bool ok = GuardedCopy(buf, m.page(cut ? 2 + (i % 2) : i % 2) + (i % 1000), sizeof buf);
        if (ok == cut || (ok && buf[0] != 'x')) wrong.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(wrong.load() == 0);
}
