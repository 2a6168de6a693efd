// The shared mapping: parts do not overlap, everything is shared with forked
// children, the index is formatted, the eventfds are distinct.
#include "src/ipc/shm.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <set>

#include "src/ipc/completion_ring.h"
#include "src/ipc/write_queue.h"
#include "tests/src/support/test_util.h"

namespace kingx {
namespace {

struct FakeCounters {
  std::atomic<uint64_t> requests;
  uint64_t filler[100];
};

ShmSizes SmallSizes() { return test::SmallShmSizes(6, 64); }

}  // namespace

TEST_CASE("the shared mapping is formatted, its parts are disjoint and its fds distinct", "[src][shm]") {
  auto created = SharedMemory::Create(SmallSizes());
  REQUIRE(created.ok());
  SharedMemory& shm = **created;
  CHECK(shm.slot_count() == 6);
  CHECK(shm.control().slot_count == 6);
  CHECK(shm.control().draining.load() == 0);
  CHECK(shm.index().counters().ready.load() == 0);
  CHECK(shm.index().size() == 0);
  CHECK(shm.queue().ring_bytes() == 1u << 20);

  std::set<int> fds = {shm.writer_eventfd()};
  for (uint32_t i = 0; i < shm.slot_count(); ++i) {
    CHECK(shm.slot(i).state.load() == static_cast<uint32_t>(SlotState::kFree));
    CHECK(shm.counters<FakeCounters>(i)->requests.load() == 0);
    fds.insert(shm.slot_eventfd(i));
  }
  CHECK(fds.size() == 7);
  CHECK(*fds.begin() >= 0);

  // Fill every slot's first and last counter stripes and its ring; nothing
  // spills into a neighbour.
  for (uint32_t i = 0; i < shm.slot_count(); ++i) {
    std::memset(shm.CountersBytes(i, 0), static_cast<int>(0x10 + i), kCounterStripeBytes);
    std::memset(shm.CountersBytes(i, kCounterStripes - 1), static_cast<int>(0x40 + i), kCounterStripeBytes);
    for (uint64_t n = 0; n < 64; ++n) {
      REQUIRE(shm.completions(i).TryPost(Completion{MakeToken(1, n), i, engine::Code::kOk, false}));
    }
  }
  for (uint32_t i = 0; i < shm.slot_count(); ++i) {
    const auto* bytes = static_cast<const unsigned char*>(shm.CountersBytes(i));
    CHECK(bytes[0] == 0x10 + i);
    CHECK(bytes[kCounterStripeBytes - 1] == 0x10 + i);
    CHECK(bytes[kCounterStripeBytes] == 0);
    const auto* last = static_cast<const unsigned char*>(shm.CountersBytes(i, kCounterStripes - 1));
    CHECK(last[-1] == 0);
    CHECK(last[0] == 0x40 + i);
    CHECK(last[kCounterStripeBytes - 1] == 0x40 + i);
    size_t seen = shm.completions(i).Drain(1, [&](const Completion& c) { CHECK(c.seq == i); });
    CHECK(seen == 64);
  }
  // The control block, slot table and writer stats survive all of that.
  CHECK(shm.control().slot_count == 6);
  CHECK(shm.writer_metrics().batches.load() == 0);
  CHECK(shm.slot(5).generation.load() == 0);
}

TEST_CASE("a forked child's stores are seen by the parent", "[src][shm][multiprocess]") {
  auto created = SharedMemory::Create(SmallSizes());
  REQUIRE(created.ok());
  SharedMemory& shm = **created;
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    shm.counters<FakeCounters>(2)->requests.store(41);
    shm.slot(2).pid.store(getpid());
    RecordBatch(shm.writer_metrics(), 64, 6400, 300, 1);
    const bool ok = shm.queue().TryEnqueue(2, MakeToken(1, 1), WriteRequest{WriteKind::kDelete, WriteCondition::kNone,
                                                                             0, "k", "", engine::Codec::kRaw, 0, ""})
                        .ok();
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  CHECK(shm.counters<FakeCounters>(2)->requests.load() == 41);
  CHECK(shm.slot(2).pid.load() == pid);
  const WriterMetrics& stats = shm.writer_metrics();
  CHECK(stats.batches.load() == 1);
  CHECK(stats.records.load() == 64);
  CHECK(stats.failed_records.load() == 1);
  CHECK(stats.batch_size_buckets[6].load() == 1);  // 64 = 1 << 6
  CHECK(stats.apply_us_buckets[4].load() == 1);    // 300 us: in (250, 500]
  CHECK(FsyncBucket(300) == 4);
  CHECK(shm.queue().DepthEntries() == 1);
}

TEST_CASE("fsync durations fall in microsecond buckets from 25 us to 10 s", "[src][shm][metrics]") {
  WriterMetrics stats;
  for (uint64_t us : {0ull, 25ull, 26ull, 9'000ull, 10'000'000ull, 10'000'001ull}) RecordSync(stats, us);
  CHECK(stats.fsync_us_buckets[0].load() == 2);   // 0 and 25 us: le 0.000025
  CHECK(stats.fsync_us_buckets[1].load() == 1);   // 26 us: le 0.00005
  CHECK(stats.fsync_us_buckets[FsyncBucket(9'000)].load() == 1);
  CHECK(kFsyncBucketUs[FsyncBucket(9'000)] == 10'000);
  CHECK(stats.fsync_us_buckets[kFsyncBuckets - 2].load() == 1);  // 10 s: the last bound
  CHECK(stats.fsync_us_buckets[kFsyncBuckets - 1].load() == 1);  // above it: +Inf
  CHECK(stats.fsync_us_sum.load() == 20'009'052);
}

TEST_CASE("the writer's open failure note keeps a bounded text until cleared, whatever a dead writer left",
          "[src][shm][open_failure]") {
  auto created = SharedMemory::Create(SmallSizes());
  REQUIRE(created.ok());
  OpenFailureNote& note = (*created)->writer_metrics().open_failure;
  CHECK(note.Read().empty());
  CHECK_FALSE(note.failing());

  note.Publish("recovery: segment 3: its records cannot be read");
  CHECK(note.Read() == "recovery: segment 3: its records cannot be read");
  CHECK(note.failing());

  const std::string long_text(2 * OpenFailureNote::kMaxBytes, 'x');
  note.Publish(long_text);
  const std::string cut = note.Read();
  CHECK(cut.size() == OpenFailureNote::kMaxBytes);
  CHECK(cut.ends_with("..."));
  CHECK(note.failures() == 2);

  // A child that publishes is seen by the parent (another process's text).
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    note.Publish("from the child");
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(note.Read() == "from the child");

  note.Clear();
  CHECK(note.Read().empty());
  CHECK_FALSE(note.failing());
  CHECK(note.failures() == 3);
}

TEST_CASE("the error log settings the master publishes are read whole by another process, a too long path refused",
          "[src][shm][log_settings]") {
  auto created = SharedMemory::Create(SmallSizes());
  REQUIRE(created.ok());
  LogSettingsNote& note = (*created)->control().log_settings;
  std::string path = "unchanged";
  LogLevel level = LogLevel::kDebug;
  CHECK_FALSE(note.Read(&path, &level));  // nothing published: the writer keeps what it inherited

  REQUIRE(note.Publish("/var/log/kingx/error.log", LogLevel::kWarn));
  REQUIRE(note.Read(&path, &level));
  CHECK(path == "/var/log/kingx/error.log");
  CHECK(level == LogLevel::kWarn);

  REQUIRE(note.Publish("", LogLevel::kError));  // stderr
  REQUIRE(note.Read(&path, &level));
  CHECK(path.empty());
  CHECK(level == LogLevel::kError);

  const std::string longest(LogSettingsNote::kMaxPathBytes, 'p');
  REQUIRE(note.Publish(longest, LogLevel::kDebug));
  REQUIRE(note.Read(&path, &level));
  CHECK(path == longest);
  CHECK_FALSE(note.Publish(longest + "p", LogLevel::kInfo));  // never cut: a cut path names another file
  REQUIRE(note.Read(&path, &level));
  CHECK(path == longest);
  CHECK(level == LogLevel::kDebug);

  // The master publishes, the writer (another process) reads.
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const bool ok = note.Publish("/from/the/child.log", LogLevel::kInfo);
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(note.Read(&path, &level));
  CHECK(path == "/from/the/child.log");
  CHECK(level == LogLevel::kInfo);
}

}  // namespace kingx
