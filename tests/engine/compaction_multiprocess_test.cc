// Readers in separate processes read continuously while the writer process
// (this test's parent) keeps overwriting keys and compaction rewrites every
// segment of the database, deleting the old files under the readers. A reader
// must never get an error, a value that is not a valid version of its key, a
// version older than the last one acknowledged before its read started, or a
// version newer than the last one the writer started to write.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <new>
#include <random>
#include <set>

#include "engine/compaction.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;

namespace {

constexpr int kKeys = 400;
constexpr int kReaders = 2;
// A reader stops when the test says so or its process is gone; this bound only
// keeps a reader whose test hangs from spinning past any timeout the suite
// runs under (sanitizers at the lowest priority make the passes minutes long).
constexpr auto kReaderDeadline = std::chrono::minutes(40);

// Shared with the readers (MAP_SHARED, made before fork).
struct Control {
  std::atomic<uint32_t> readers_started{0};
  std::atomic<uint32_t> stop{0};
  pid_t parent = getpid();               // the test process, which forks the readers
  std::atomic<uint64_t> acked[kKeys];    // last version acknowledged by Apply
  std::atomic<uint64_t> started[kKeys];  // last version handed to Apply
  std::atomic<uint64_t> reads[kReaders];
  std::atomic<uint64_t> busy[kReaders];
};

enum ReaderExit : int { kOk = 0, kError = 1, kWrong = 2, kStale = 3, kTooNew = 4, kNoReads = 5, kNoStop = 6, kParentGone = 7 };

std::string Key(int id) { return "key/" + std::to_string(id); }

[[noreturn]] void RunReader(int reader, Control* c, const std::string& dir, const Options& o, SharedIndex& index) {
  Reader r(PosixEnv(), dir, o, index);
  std::mt19937_64 rng(reader + 1);
  const auto deadline = std::chrono::steady_clock::now() + kReaderDeadline;
  c->readers_started.fetch_add(1);
  for (uint64_t n = 0;; ++n) {
    if (c->stop.load(std::memory_order_acquire) != 0) break;
    if (n % 256 == 0 && getppid() != c->parent) _exit(kParentGone);
    if (n % 256 == 0 && std::chrono::steady_clock::now() > deadline) _exit(kNoStop);
    const int id = static_cast<int>(rng() % kKeys);
    const uint64_t before = c->acked[id].load(std::memory_order_acquire);
    auto v = r.Get(Key(id));
    if (v.status().Is(Code::kBusy)) {  // the writer is mid-batch: a reader retries
      c->busy[reader].fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (!v.ok()) _exit(kError);
    const uint64_t newest = c->started[id].load(std::memory_order_acquire);
    uint64_t version = 0;
    if (!CheckValue(Key(id), v->data, &version)) _exit(kWrong);
    if (version < before) _exit(kStale);
    if (version > newest) _exit(kTooNew);
    c->reads[reader].fetch_add(1, std::memory_order_relaxed);
  }
  _exit(c->reads[reader].load() > 0 ? kOk : kNoReads);
}

std::set<uint32_t> SegmentIds(Writer& w) {
  std::set<uint32_t> ids;
  for (const SegmentStats& s : w.Stats().per_segment) ids.insert(s.id);
  return ids;
}

}  // namespace

TEST_CASE("readers in other processes see only valid, fresh values while compaction rewrites every segment",
          "[engine][compaction][multiprocess]") {
  TempDir dir;
  Options o;
  o.segment_bytes = 32 << 10;
  void* mem = mmap(nullptr, sizeof(Control), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(mem != MAP_FAILED);
  auto* c = new (mem) Control();
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  uint64_t version = 1;
  auto put = [&](int id) {
    const uint64_t v = version++;
    c->started[id].store(v, std::memory_order_release);
    const std::string value = MakeValue(Key(id), v, 64 + (v * 37) % 700, v % 2 == 0);
    WriteResult r = db.Put(Key(id), value);
    REQUIRE(r.status.ok());
    c->acked[id].store(v, std::memory_order_release);
  };
  for (int id = 0; id < kKeys; ++id) put(id);
  for (int id = 0; id < kKeys; id += 2) put(id);
  const std::set<uint32_t> original = SegmentIds(db.writer());
  REQUIRE(original.size() > 3);

  std::vector<pid_t> pids;
  for (int i = 0; i < kReaders; ++i) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) RunReader(i, c, dir.path(), o, db.index());
    pids.push_back(pid);
  }
  for (int i = 0; i < 20000 && c->readers_started.load() < kReaders; ++i) usleep(1000);

  CompactionOptions co;
  co.rate_bytes_per_sec = 0;
  co.install_batch = 16;
  co.pick_all = true;
  co.free_bytes = [](const std::string&) -> Result<uint64_t> { return uint64_t{1} << 40; };
  Compactor compactor(db.writer(), co);
  std::mt19937_64 rng(9);
  bool all_rewritten = false;
  int rounds = 0;
  for (; rounds < 300 && !(all_rewritten && rounds >= 20); ++rounds) {
    for (int i = 0; i < 60; ++i) put(static_cast<int>(rng() % kKeys));
    PassReport report;
    REQUIRE(compactor.RunOnce(&report).ok());
    const std::set<uint32_t> now = SegmentIds(db.writer());
    all_rewritten = true;
    for (uint32_t id : original) all_rewritten = all_rewritten && now.count(id) == 0;
  }
  c->stop.store(1, std::memory_order_release);
  for (int i = 0; i < kReaders; ++i) {
    int status = 0;
    REQUIRE(waitpid(pids[i], &status, 0) == pids[i]);
    INFO("reader " << i << " reads " << c->reads[i].load() << " busy " << c->busy[i].load());
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == kOk);
  }
  REQUIRE(all_rewritten);
  REQUIRE(compactor.stats().segments_compacted >= original.size());
  munmap(mem, sizeof(Control));
}
