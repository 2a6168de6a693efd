// The writer loop against a real shared mapping and data directory: the
// writer runs in a thread (as in --single-process), the test plays a worker.
#include "src/writer/writer_process.h"

#include <poll.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/env.h"
#include "engine/kill_point.h"
#include "engine/reader.h"
#include "engine/record.h"
#include "src/ipc/completion_ring.h"
#include "src/ipc/shm.h"
#include "src/ipc/write_queue.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/pipeline.h"
#include "tests/src/support/test_util.h"

namespace kingx {
namespace {

using test::TempDir;

// A writer thread over a fresh mapping; stopped (drain) and joined by the destructor.
struct WriterFixture {
  explicit WriterFixture(bool start = true, engine::Env& env = engine::PosixEnv()) : env(env) {
    config.data_dir = dir.path;
    config.sync = engine::SyncMode::kAlways;
    config.sync_depth = 1;  // one fdatasync at a time: the loop runs it (a test sets more)
    auto created = SharedMemory::Create(test::SmallShmSizes(4, 1024));
    REQUIRE(created.ok());
    shm = std::move(created).value();
    for (uint32_t slot : {1u, 2u}) test::OccupySlot(*shm, slot, 3);
    if (start) Start();
  }
  void Start() {
    thread = std::thread([this] { exit_status = RunWriter(config, *shm, /*install_signals=*/false, hooks, env); });
    // Bounded wait for recovery of an empty directory.
    for (int i = 0; i < 120000 && shm->control().writer_ready.load() == 0; ++i) usleep(1000);
    REQUIRE(shm->control().writer_ready.load() == 1);
  }
  ~WriterFixture() { Stop(); }

  void Stop() {
    if (!thread.joinable()) return;
    shm->control().writer_stop.store(static_cast<uint32_t>(WriterStop::kDrain));
    shm->queue().Wake();
    thread.join();
  }

  // Waits (bounded) until `count` completions for generation 3 arrived on `slot`.
  std::map<uint64_t, Completion> Collect(uint32_t slot, size_t count) {
    std::map<uint64_t, Completion> got;
    for (int i = 0; i < 1000 && got.size() < count; ++i) {
      pollfd pfd{shm->slot_eventfd(slot), POLLIN, 0};
      if (poll(&pfd, 1, 100) > 0) {
        uint64_t n;
        (void)!read(pfd.fd, &n, sizeof(n));
      }
      shm->completions(slot).Drain(3, [&](const Completion& c) { got[TokenLocalId(c.token)] = c; });
    }
    return got;
  }

  engine::Env& env;
  TempDir dir;
  Config config;
  WriterHooks hooks;  // set before Start
  std::unique_ptr<SharedMemory> shm;
  std::thread thread;
  int exit_status = -1;
};

// The completions on `slot` (generation 3) already posted, without waiting.
std::map<uint64_t, Completion> Posted(WriterFixture& f, uint32_t slot) {
  std::map<uint64_t, Completion> got;
  f.shm->completions(slot).Drain(3, [&](const Completion& c) { got[TokenLocalId(c.token)] = c; });
  return got;
}

// The rendezvous of one held thread: the hook's thread, under Lock(), calls
// Hold, which marks it entered and waits for Release; the test's thread waits
// for that (bounded) and releases it.
class HoldLatch {
 public:
  std::unique_lock<std::mutex> Lock() { return std::unique_lock(mu_); }
  // Under Lock().
  bool entered() const { return entered_; }
  void Hold(std::unique_lock<std::mutex>& lock) {
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return released_; });
  }
  // Bounded (120 s): false when no thread was held.
  bool WaitEntered() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(120), [this] { return entered_; });
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false;
  bool released_ = false;
};

// Holds the next write to a segment's data file on the writing thread once armed,
// until Release (or destruction). Installs the env's write hook for its life.
class WriteGate {
 public:
  explicit WriteGate(engine::test::FaultInjectionEnv& env) : env_(env) {
    env_.SetWriteHook([this](const std::string& path) {
      if (path.find(".kxd") == std::string::npos) return;
      auto lock = latch_.Lock();
      if (!armed_) return;
      armed_ = false;
      latch_.Hold(lock);
    });
  }
  ~WriteGate() {
    Release();
    env_.SetWriteHook({});
  }
  void Arm() {
    auto lock = latch_.Lock();
    armed_ = true;
  }
  bool WaitEntered() { return latch_.WaitEntered(); }
  void Release() { latch_.Release(); }

 private:
  engine::test::FaultInjectionEnv& env_;
  HoldLatch latch_;
  bool armed_ = false;  // under latch_.Lock()
};

// Holds the key view's thread ("kingx-keyview") at its first file mapping
// (a job's first read of a segment, after its cut) until Release (or
// destruction). Installs the env's map hook for its life.
class KeyViewHold {
 public:
  explicit KeyViewHold(engine::test::FaultInjectionEnv& env) : env_(env) {
    env_.SetMapHook([this](const std::string&) {
      char name[16] = {};
      pthread_getname_np(pthread_self(), name, sizeof(name));
      if (std::string_view(name) != "kingx-keyview") return;
      auto lock = latch_.Lock();
      if (latch_.entered()) return;
      latch_.Hold(lock);
    });
  }
  ~KeyViewHold() {
    Release();
    env_.SetMapHook({});
  }
  bool WaitEntered() { return latch_.WaitEntered(); }
  void Release() { latch_.Release(); }

 private:
  engine::test::FaultInjectionEnv& env_;
  HoldLatch latch_;
};

WriteRequest Put(std::string_view key, std::string_view value) {
  WriteRequest r;
  r.key = key;
  r.content_type = "text/plain";
  r.stored = value;
  r.raw_len = value.size();
  return r;
}

}  // namespace

TEST_CASE("the writer applies queued writes and answers each on its slot's ring", "[src][writer]") {
  WriterFixture f;
  WriteQueue& q = f.shm->queue();
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 1), Put("a", "first")).ok());
  WriteRequest create_only = Put("a", "second");
  create_only.condition = WriteCondition::kIfAbsent;
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 2), create_only).ok());
  WriteRequest del;
  del.kind = WriteKind::kDelete;
  del.key = "missing";
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 3), del).ok());
  // Large value in three parts, from another slot.
  WriteRequest header = Put("big", "");
  REQUIRE(q.TryEnqueueLargeBegin(2, MakeToken(3, 10), header).ok());
  const std::string part(50000, 'p');
  for (int i = 0; i < 3; ++i) REQUIRE(q.TryEnqueueLargePart(2, MakeToken(3, 10), part).ok());
  REQUIRE(q.TryEnqueueLargeEnd(2, MakeToken(3, 10), 3 * part.size()).ok());

  auto one = f.Collect(1, 3);
  REQUIRE(one.size() == 3);
  CHECK(one[1].code == engine::Code::kOk);
  CHECK_FALSE(one[1].existed);
  CHECK(one[1].seq > 0);
  CHECK(one[2].code == engine::Code::kPreconditionFailed);
  CHECK(one[3].code == engine::Code::kNotFound);
  auto two = f.Collect(2, 1);
  REQUIRE(two.size() == 1);
  CHECK(two[10].code == engine::Code::kOk);
  CHECK(two[10].seq != one[1].seq);  // order inside one batch is not defined

  // If-Match with the returned seq succeeds and reports an overwrite.
  WriteRequest cas = Put("a", "third");
  cas.condition = WriteCondition::kIfMatch;
  cas.if_match_seq = one[1].seq;
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 4), cas).ok());
  auto again = f.Collect(1, 1);
  REQUIRE(again.size() == 1);
  CHECK(again[4].code == engine::Code::kOk);
  CHECK(again[4].existed);

  engine::Reader reader(engine::PosixEnv(), f.dir.path, f.config.EngineOptions(), f.shm->index());
  auto a = reader.Get("a");
  REQUIRE(a.ok());
  CHECK(a->data == "third");
  CHECK(a->content_type == "text/plain");
  auto big = reader.Get("big");
  REQUIRE(big.ok());
  CHECK(big->data == part + part + part);

  const WriterMetrics& stats = f.shm->writer_metrics();
  CHECK(stats.batches.load() >= 2);
  CHECK(stats.records.load() >= 5);
  f.Stop();
  CHECK(f.exit_status == 0);
}

TEST_CASE("the writer aborts a large upload whose worker's slot changed generation", "[src][writer]") {
  WriterFixture f;
  WriteQueue& q = f.shm->queue();
  REQUIRE(q.TryEnqueueLargeBegin(2, MakeToken(3, 7), Put("orphan", "")).ok());
  REQUIRE(q.TryEnqueueLargePart(2, MakeToken(3, 7), std::string(1000, 'o')).ok());
  // Make sure the writer took the Begin: a write from the same slot after it
  // completes only once the batch holding the Begin was processed.
  REQUIRE(q.TryEnqueue(2, MakeToken(3, 8), Put("marker", "m")).ok());
  REQUIRE(f.Collect(2, 1).size() == 1);

  // The worker "dies": the master bumps the slot's generation.
  f.shm->slot(2).generation.store(4);
  f.shm->queue().Wake();
  for (int i = 0; i < 120000 && f.shm->writer_metrics().large_aborted.load() == 0; ++i) usleep(1000);
  CHECK(f.shm->writer_metrics().large_aborted.load() == 1);

  // An End that arrives for it anyway is answered with an error, not applied.
  f.shm->slot(2).generation.store(3);
  REQUIRE(q.TryEnqueueLargeEnd(2, MakeToken(3, 7), 1000).ok());
  auto got = f.Collect(2, 1);
  REQUIRE(got.size() == 1);
  CHECK(got[7].code != engine::Code::kOk);
  engine::Reader reader(engine::PosixEnv(), f.dir.path, f.config.EngineOptions(), f.shm->index());
  CHECK(reader.Get("orphan").status().Is(engine::Code::kNotFound));
}

TEST_CASE("large uploads of two workers with the same token stay apart", "[src][writer][regression]") {
  // Regression (crash oracle with 2 MiB values): tokens are unique per slot
  // only (every worker of a slot generation numbers its exchanges alike), but
  // the writer kept staged uploads by token alone. A second worker's Begin
  // replaced the first's upload: parts of both values went into one staged
  // file, the first End published that mix under the second key (a 200 with
  // bytes nobody wrote, and the first key kept its old value although its PUT
  // was acknowledged), and the second End found no upload (500).
  WriterFixture f;
  WriteQueue& q = f.shm->queue();
  const uint64_t token = MakeToken(3, 10);
  const std::string a1(40000, 'a'), a2(30000, 'A'), b1(20000, 'b'), b2(10000, 'B');
  REQUIRE(q.TryEnqueueLargeBegin(1, token, Put("key-a", "")).ok());
  REQUIRE(q.TryEnqueueLargePart(1, token, a1).ok());
  REQUIRE(q.TryEnqueueLargeBegin(2, token, Put("key-b", "")).ok());
  REQUIRE(q.TryEnqueueLargePart(2, token, b1).ok());
  REQUIRE(q.TryEnqueueLargePart(1, token, a2).ok());
  REQUIRE(q.TryEnqueueLargePart(2, token, b2).ok());
  REQUIRE(q.TryEnqueueLargeEnd(1, token, a1.size() + a2.size()).ok());
  REQUIRE(q.TryEnqueueLargeEnd(2, token, b1.size() + b2.size()).ok());
  auto one = f.Collect(1, 1);
  auto two = f.Collect(2, 1);
  REQUIRE(one.size() == 1);
  REQUIRE(two.size() == 1);
  CHECK(one[10].code == engine::Code::kOk);
  CHECK(two[10].code == engine::Code::kOk);
  engine::Reader reader(engine::PosixEnv(), f.dir.path, f.config.EngineOptions(), f.shm->index());
  auto a = reader.Get("key-a");
  REQUIRE(a.ok());
  CHECK(a->data == a1 + a2);
  auto b = reader.Get("key-b");
  REQUIRE(b.ok());
  CHECK(b->data == b1 + b2);
  f.Stop();
  CHECK(f.exit_status == 0);
  // Nothing staged is left behind (a replaced upload kept its file open and on disk).
  auto names = engine::PosixEnv().ListDir(f.dir.path);
  REQUIRE(names.ok());
  for (const std::string& name : names.value()) CHECK(name.find(".tmp") == std::string::npos);
}

namespace {

// Staging files of large uploads in `dir`, and those this process holds open
// (the writer runs as a thread here), deleted or not.
size_t StagingFiles(const std::string& dir) {
  auto names = engine::PosixEnv().ListDir(dir);
  REQUIRE(names.ok());
  size_t n = 0;
  for (const std::string& name : names.value()) n += name.rfind("large-", 0) == 0 ? 1 : 0;
  return n;
}
size_t OpenStagingFiles() {
  size_t n = 0;
  auto fds = engine::PosixEnv().ListDir("/proc/self/fd");
  REQUIRE(fds.ok());
  for (const std::string& fd : fds.value()) {
    char target[4096];
    const ssize_t len = readlink(("/proc/self/fd/" + fd).c_str(), target, sizeof target - 1);
    if (len <= 0) continue;
    n += std::string(target, static_cast<size_t>(len)).find("/large-") != std::string::npos ? 1 : 0;
  }
  return n;
}

}  // namespace

TEST_CASE("an abandoned large upload leaves no staging file, open or on disk", "[src][writer]") {
  // The three ways an upload is abandoned: the worker's abort (client gone),
  // the worker's death (slot generation moves), the worker reusing the token
  // while its abort is on the way. None may leave the writer holding a
  // staging file until its restart.
  WriterFixture f;
  WriteQueue& q = f.shm->queue();
  uint64_t marker = 100;
  auto settle = [&](uint32_t slot) {  // every entry queued so far on `slot` was processed
    REQUIRE(q.TryEnqueue(slot, MakeToken(3, marker), Put("marker", "m")).ok());
    REQUIRE(f.Collect(slot, 1).count(marker) == 1);
    ++marker;
  };
  const std::string part(30000, 'p');

  REQUIRE(q.TryEnqueueLargeBegin(1, MakeToken(3, 1), Put("aborted", "")).ok());
  REQUIRE(q.TryEnqueueLargePart(1, MakeToken(3, 1), part).ok());
  settle(1);
  CHECK(StagingFiles(f.dir.path) == 1);  // the test sees staging files
  CHECK(OpenStagingFiles() == 1);
  REQUIRE(q.TryEnqueueLargeAbort(1, MakeToken(3, 1)).ok());
  settle(1);
  CHECK(StagingFiles(f.dir.path) == 0);
  CHECK(OpenStagingFiles() == 0);

  REQUIRE(q.TryEnqueueLargeBegin(1, MakeToken(3, 2), Put("reused", "")).ok());
  REQUIRE(q.TryEnqueueLargePart(1, MakeToken(3, 2), part).ok());
  REQUIRE(q.TryEnqueueLargeBegin(1, MakeToken(3, 2), Put("reused", "")).ok());  // abort still on its way
  settle(1);
  CHECK(StagingFiles(f.dir.path) == 1);  // the second upload's only
  CHECK(OpenStagingFiles() == 1);
  REQUIRE(q.TryEnqueueLargeAbort(1, MakeToken(3, 2)).ok());
  settle(1);
  CHECK(OpenStagingFiles() == 0);

  REQUIRE(q.TryEnqueueLargeBegin(2, MakeToken(3, 3), Put("dead worker", "")).ok());
  REQUIRE(q.TryEnqueueLargePart(2, MakeToken(3, 3), part).ok());
  settle(2);
  CHECK(OpenStagingFiles() == 1);
  f.shm->slot(2).generation.store(4);  // the worker died; the master moved its slot on
  f.shm->queue().Wake();
  for (int i = 0; i < 120000 && OpenStagingFiles() != 0; ++i) usleep(1000);
  CHECK(StagingFiles(f.dir.path) == 0);
  CHECK(OpenStagingFiles() == 0);
}

TEST_CASE("a drain stop applies everything queued before the writer exits", "[src][writer]") {
  WriterFixture f;
  WriteQueue& q = f.shm->queue();
  std::vector<std::string> keys;
  for (int i = 0; i < 200; ++i) keys.push_back("k" + std::to_string(i));
  for (int i = 0; i < 200; ++i) REQUIRE(q.TryEnqueue(1, MakeToken(3, static_cast<uint64_t>(i)), Put(keys[i], "v")).ok());
  f.Stop();
  CHECK(f.exit_status == 0);
  CHECK(q.DepthEntries() == 0);
  auto got = f.Collect(1, 200);
  CHECK(got.size() == 200);
  for (const auto& [id, c] : got) CHECK(c.code == engine::Code::kOk);
}

TEST_CASE("writes a dead writer took are answered outcome-unknown, not applied a second time",
          "[src][writer][regression]") {
  // Regression (black-box worker_kill): a writer killed inside Apply leaves
  // its batch queued; the next writer applied it again, so a create that had
  // reached the page cache was answered 204 (overwrite) and a done DELETE 404.
  WriterFixture f(/*start=*/false);
  WriteQueue& q = f.shm->queue();
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 1), Put("taken", "by the dead writer")).ok());
  {
    WriteQueue dead = q;  // a copy of the handle plays the writer that peeked the entry and died
    dead.BeginConsuming();
    std::vector<QueueEntry> batch;
    REQUIRE(dead.Peek(&batch, 16, 1 << 20) == 1);
  }
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 2), Put("queued", "after the death")).ok());
  f.Start();
  auto got = f.Collect(1, 2);
  REQUIRE(got.size() == 2);
  CHECK(got[1].code == engine::Code::kOutcomeUnknown);  // 503 + Retry-After; the client re-reads
  CHECK(got[2].code == engine::Code::kOk);
  CHECK_FALSE(got[2].existed);
  engine::Reader reader(engine::PosixEnv(), f.dir.path, f.config.EngineOptions(), f.shm->index());
  CHECK(reader.Get("taken").status().Is(engine::Code::kNotFound));  // never applied by the new writer
  CHECK(reader.Get("queued").ok());
}

}  // namespace kingx

namespace kingx {

TEST_CASE("the next batch is written before the synced one is answered, each answered after its own sync",
          "[src][writer][pipeline]") {
  engine::test::FaultInjectionEnv env;
  WriterFixture f(/*start=*/true, env);
  engine::test::SyncGate syncs(env);
  WriteGate writes(env);
  WriteQueue& q = f.shm->queue();
  engine::Reader reader(engine::PosixEnv(), f.dir.path, f.config.EngineOptions(), f.shm->index());
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 1), Put("a", "first batch")).ok());
  REQUIRE(syncs.WaitEntered(1));                 // A's fdatasync is held
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 2), Put("b", "second batch")).ok());  // stays queued meanwhile
  CHECK(Posted(f, 1).empty());
  CHECK(reader.Get("a").status().Is(engine::Code::kNotFound));
  writes.Arm();
  syncs.Release();                               // A's fdatasync returns
  REQUIRE(writes.WaitEntered());                 // B's write is held
  CHECK(Posted(f, 1).empty());                   // and A is not answered before it
  writes.Release();
  REQUIRE(syncs.WaitEntered(2));                 // B's fdatasync is held
  auto first = f.Collect(1, 1);                  // A is answered meanwhile
  REQUIRE(first.size() == 1);
  CHECK(first[1].code == engine::Code::kOk);
  CHECK(reader.Get("a").value().data == "first batch");
  CHECK(Posted(f, 1).empty());                   // B is neither answered
  CHECK(reader.Get("b").status().Is(engine::Code::kNotFound));  // nor visible
  syncs.Release();
  auto second = f.Collect(1, 1);
  REQUIRE(second.size() == 1);
  CHECK(second[2].code == engine::Code::kOk);
  CHECK(reader.Get("b").value().data == "second batch");
  syncs.Open();
  f.Stop();
  CHECK(f.exit_status == 0);
}

TEST_CASE("with --sync-depth 2 the next batch's fdatasync starts while the previous one runs, and each is answered "
          "only once every earlier one returned",
          "[src][writer][pipeline]") {
  engine::test::FaultInjectionEnv env;
  WriterFixture f(/*start=*/false, env);
  f.config.sync_depth = 2;
  f.Start();
  engine::test::SyncGate syncs(env);
  WriteQueue& q = f.shm->queue();
  engine::Reader reader(engine::PosixEnv(), f.dir.path, f.config.EngineOptions(), f.shm->index());
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 1), Put("a", "first batch")).ok());
  REQUIRE(syncs.WaitEntered(1));                 // A's fdatasync is held
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 2), Put("b", "second batch")).ok());
  REQUIRE(syncs.WaitEntered(2));                 // B's started beside it
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 3), Put("c", "third batch")).ok());  // the depth is full: queued
  syncs.ReleaseNth(2);                           // B's returns first
  REQUIRE(syncs.WaitEntered(3));                 // C's starts in its place
  CHECK(Posted(f, 1).empty());                   // B is not answered before A
  CHECK(reader.Get("b").status().Is(engine::Code::kNotFound));
  syncs.ReleaseNth(1);
  auto first = f.Collect(1, 2);                  // A, then B
  REQUIRE(first.size() == 2);
  CHECK(first[1].code == engine::Code::kOk);
  CHECK(first[2].code == engine::Code::kOk);
  CHECK(reader.Get("b").value().data == "second batch");
  CHECK(Posted(f, 1).empty());                   // C's still runs
  syncs.ReleaseNth(3);
  auto third = f.Collect(1, 1);
  REQUIRE(third.size() == 1);
  CHECK(third[3].code == engine::Code::kOk);
  syncs.Open();
  f.Stop();
  CHECK(f.exit_status == 0);
}

TEST_CASE("the key view's job ends while a batch's fdatasync is held, and the batch an earlier sync covered is "
          "answered meanwhile",
          "[src][writer][pipeline][regression]") {
  // Regression: the key view's rebuild took the writer's lock the draining
  // way (to take its cut and to drop its pin), so it waited for the
  // fdatasync in flight, and the writer thread, behind that lock, could not
  // answer a batch an earlier sync had covered: an answer waited for a later
  // batch's sync (and the view for it too). Here the view's job is held until
  // the second batch's fdatasync is held, then let go.
  engine::test::FaultInjectionEnv env;
  KeyViewHold view(env);
  WriterFixture f(/*start=*/true, env);
  REQUIRE(view.WaitEntered());                   // the job took its cut; held before reading
  engine::test::SyncGate syncs(env);
  WriteGate writes(env);
  WriteQueue& q = f.shm->queue();
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 1), Put("a", "first batch")).ok());
  REQUIRE(syncs.WaitEntered(1));                 // A's fdatasync is held
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 2), Put("b", "second batch")).ok());
  writes.Arm();
  syncs.Release();                               // A's fdatasync returns
  REQUIRE(writes.WaitEntered());                 // B's write is held
  writes.Release();
  REQUIRE(syncs.WaitEntered(2));                 // B's fdatasync is held
  view.Release();                                // the job goes on, and ends
  const engine::KeyspaceRegion& region = f.shm->keyspace();
  for (int i = 0; i < 120000 && region.state() != engine::KeyspaceState::kReady; ++i) usleep(1000);
  CHECK(region.state() == engine::KeyspaceState::kReady);
  auto first = f.Collect(1, 1);                  // A is answered while B's sync is held
  REQUIRE(first.size() == 1);
  CHECK(first[1].code == engine::Code::kOk);
  CHECK(Posted(f, 1).empty());                   // B is not
  syncs.Open();
  auto second = f.Collect(1, 1);
  REQUIRE(second.size() == 1);
  CHECK(second[2].code == engine::Code::kOk);
  f.Stop();
  CHECK(f.exit_status == 0);
}

TEST_CASE("a large upload's bytes stay counted as staged until its write is published, not only until its "
          "staging ends",
          "[src][writer][staging]") {
  // While the writer syncs and renames the staged file its bytes are on disk
  // but not live yet: counted in neither gauge, a directory measured then
  // looked like twice the live data with nothing for compaction to reclaim.
  engine::test::FaultInjectionEnv env;
  WriterFixture f(/*start=*/true, env);
  engine::test::SyncGate syncs(env, "large-");
  WriteQueue& q = f.shm->queue();
  const std::string part(40000, 'v');
  const uint64_t token = MakeToken(3, 5);
  REQUIRE(q.TryEnqueueLargeBegin(1, token, Put("big", "")).ok());
  REQUIRE(q.TryEnqueueLargePart(1, token, part).ok());
  REQUIRE(q.TryEnqueueLargePart(1, token, part).ok());
  REQUIRE(q.TryEnqueueLargeEnd(1, token, 2 * part.size()).ok());
  REQUIRE(syncs.WaitEntered(1));  // FinishLarge's fdatasync of the staged file is held
  const engine::IndexCounters& counters = f.shm->index().counters();
  CHECK(counters.live_bytes.load() == 0);
  CHECK(f.shm->writer_metrics().staged_bytes.load() >= 2 * part.size());
  syncs.Open();
  auto got = f.Collect(1, 1);
  REQUIRE(got.size() == 1);
  CHECK(got[5].code == engine::Code::kOk);
  CHECK(f.shm->writer_metrics().staged_bytes.load() == 0);
  CHECK(counters.live_bytes.load() > 2 * part.size());
  f.Stop();
  CHECK(f.exit_status == 0);
}

TEST_CASE("the bytes of a batch written but not yet published are in the unpublished gauge until it is published",
          "[src][writer][pipeline]") {
  // While a batch's fdatasync runs, its records are on disk but in neither
  // the live nor the dead gauge: a directory measured then looked like more
  // than twice the live data with nothing reclaimable or staged.
  engine::test::FaultInjectionEnv env;
  WriterFixture f(/*start=*/true, env);
  engine::test::SyncGate syncs(env);
  const std::string value(3000, 'v');
  REQUIRE(f.shm->queue().TryEnqueue(1, MakeToken(3, 1), Put("a", value)).ok());
  REQUIRE(syncs.WaitEntered(1));  // its fdatasync is held
  const engine::IndexCounters& counters = f.shm->index().counters();
  const uint64_t record = engine::RecordBytes(1, std::string_view("text/plain").size(), value.size());
  CHECK(f.shm->writer_metrics().unpublished_bytes.load() == record);
  CHECK(counters.live_bytes.load() == 0);
  syncs.Open();
  auto got = f.Collect(1, 1);
  REQUIRE(got.size() == 1);
  CHECK(got[1].code == engine::Code::kOk);
  CHECK(f.shm->writer_metrics().unpublished_bytes.load() == 0);
  CHECK(counters.live_bytes.load() == record);
  f.Stop();
  CHECK(f.exit_status == 0);
}

TEST_CASE("the unpublished gauge counts a batch while its records are being written, not only once written",
          "[src][writer][pipeline]") {
  // A batch of large records takes milliseconds to write: counted only
  // once its Submit returned, a directory measured meanwhile held its bytes
  // with the gauge at 0.
  engine::test::FaultInjectionEnv env;
  WriterFixture f(/*start=*/true, env);
  WriteGate writes(env);
  writes.Arm();
  const std::string value(3000, 'v');
  REQUIRE(f.shm->queue().TryEnqueue(1, MakeToken(3, 1), Put("a", value)).ok());
  REQUIRE(writes.WaitEntered());  // its write to the segment is held
  CHECK(f.shm->writer_metrics().unpublished_bytes.load() >= value.size());
  writes.Release();
  auto got = f.Collect(1, 1);
  REQUIRE(got.size() == 1);
  CHECK(got[1].code == engine::Code::kOk);
  CHECK(f.shm->writer_metrics().unpublished_bytes.load() == 0);
  f.Stop();
  CHECK(f.exit_status == 0);
}

TEST_CASE("after a failed fdatasync the writer takes no more batches: they wait for the next writer",
          "[src][writer][pipeline]") {
  engine::test::FaultInjectionEnv env;
  WriterFixture f(/*start=*/true, env);
  WriteQueue& q = f.shm->queue();
  uint64_t segment_writes = 0;
  {
    engine::test::SyncGate syncs(env);
    REQUIRE(q.TryEnqueue(1, MakeToken(3, 1), Put("a", "first batch")).ok());
    REQUIRE(syncs.WaitEntered(1));               // A's fdatasync is held
    REQUIRE(q.TryEnqueue(1, MakeToken(3, 2), Put("b", "second batch")).ok());
    segment_writes = env.Calls(engine::test::FaultOp::kWrite, ".kxd");
    // Counted from here: A's (held before its fault check) is the first.
    env.FailNth(engine::test::FaultOp::kSync, 1, engine::Code::kIOError, /*forever=*/true, "seg-");
    syncs.Open();
  }
  auto got = f.Collect(1, 1);
  REQUIRE(got.size() == 1);
  CHECK(got[1].code == engine::Code::kOutcomeUnknown);
  f.thread.join();                               // the writer exits on its own
  CHECK(f.exit_status == 3);
  CHECK(Posted(f, 1).empty());                   // B was not answered
  CHECK(env.Calls(engine::test::FaultOp::kWrite, ".kxd") == segment_writes);  // nor written
  CHECK(q.DepthEntries() == 1);                  // it waits for the next writer
  env.ClearFaults();
  f.Start();
  auto next = f.Collect(1, 1);
  REQUIRE(next.size() == 1);
  CHECK(next[2].code == engine::Code::kOk);      // applied by the next writer
  CHECK_FALSE(next[2].existed);
}

TEST_CASE("a synced batch is answered before the write stall's hold waits, not after it",
          "[src][writer][pipeline][regression]") {
  engine::test::FaultInjectionEnv env;
  WriterFixture f(/*start=*/false, env);
  // A hold hook like the write stall's: it holds (once, when armed) and waits
  // until the test lets it go; it reports whether A was answered before it waited.
  std::mutex mu;
  std::condition_variable cv;
  bool armed = false, waiting = false, released = false;
  f.hooks.hold_batch = [&](engine::Writer&, const std::function<void()>& before_wait) {
    std::unique_lock lock(mu);
    if (!armed) return false;
    armed = false;
    lock.unlock();
    before_wait();
    lock.lock();
    waiting = true;
    cv.notify_all();
    cv.wait_for(lock, std::chrono::seconds(120), [&] { return released; });
    return true;
  };
  f.Start();
  engine::test::SyncGate syncs(env);
  WriteQueue& q = f.shm->queue();
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 1), Put("a", "first batch")).ok());
  REQUIRE(syncs.WaitEntered(1));                 // A's fdatasync is held
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 2), Put("b", "second batch")).ok());
  {
    std::lock_guard lock(mu);
    armed = true;                                // the stall holds B's batch
  }
  syncs.Release();                               // A's fdatasync returns
  {
    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(120), [&] { return waiting; }));
  }
  // The hook is waiting now: A is durable and must be answered already.
  std::map<uint64_t, Completion> during = Posted(f, 1);
  for (int i = 0; i < 50 && during.empty(); ++i) {  // bounded: the old loop posts it only after the hold
    usleep(10000);
    during = Posted(f, 1);
  }
  {
    std::lock_guard lock(mu);
    released = true;
    cv.notify_all();
  }
  REQUIRE(during.size() == 1);
  CHECK(during[1].code == engine::Code::kOk);
  syncs.Open();
  auto second = f.Collect(1, 1);                 // B goes once the hold ends
  REQUIRE(second.size() == 1);
  CHECK(second[2].code == engine::Code::kOk);
  f.Stop();
  CHECK(f.exit_status == 0);
}

TEST_CASE("the puts of a batch that also holds a large upload go through the write stall's forecast hook",
          "[src][writer]") {
  // A batch with a large-value entry used to be applied without the hook:
  // its puts and deletes could kill any share of the live data unforecast.
  WriterFixture f(/*start=*/false);
  std::mutex mu;
  std::vector<std::string> asked;
  int holds = 0;
  f.hooks.hold_ops = [&](engine::Writer&, std::span<const engine::WriteOp> ops, uint64_t) -> size_t {
    std::lock_guard lock(mu);
    for (const engine::WriteOp& op : ops) asked.emplace_back(op.key);
    return holds++ == 0 ? 0 : ops.size();  // held once, then let through
  };
  WriteQueue& q = f.shm->queue();
  // Queued before the writer starts: one batch.
  REQUIRE(q.TryEnqueueLargeBegin(2, MakeToken(3, 10), Put("big", "")).ok());
  REQUIRE(q.TryEnqueueLargePart(2, MakeToken(3, 10), std::string(50000, 'p')).ok());
  REQUIRE(q.TryEnqueueLargeEnd(2, MakeToken(3, 10), 50000).ok());
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 1), Put("small", "x")).ok());
  f.Start();
  auto one = f.Collect(1, 1);
  auto two = f.Collect(2, 1);
  REQUIRE(one.size() == 1);
  REQUIRE(two.size() == 1);
  CHECK(one[1].code == engine::Code::kOk);
  CHECK(two[10].code == engine::Code::kOk);
  std::lock_guard lock(mu);
  CHECK(holds >= 2);  // held, then taken again
  REQUIRE_FALSE(asked.empty());
  CHECK(asked[0] == "small");
  f.Stop();
  CHECK(f.exit_status == 0);
}

namespace {

// What a reader of f's database reads for `key` now: its value, or its
// status ("(not found)" for a missing key).
std::string ValueOf(WriterFixture& f, const std::string& key) {
  engine::Reader reader(engine::PosixEnv(), f.dir.path, f.config.EngineOptions(), f.shm->index());
  auto got = reader.Get(key);
  if (got.ok()) return std::string(got->data);
  return got.status().Is(engine::Code::kNotFound) ? "(not found)" : got.status().ToString();
}

// A hold_ops hook that splits the first batch of four ops after its first
// two, and lets every other batch go whole.
struct SplitHook {
  size_t operator()(engine::Writer&, std::span<const engine::WriteOp> ops, uint64_t) {
    std::lock_guard lock(state->mu);
    if (ops.size() != 4 || state->split) return ops.size();
    state->split = true;
    return 2;
  }
  struct State {
    std::mutex mu;
    bool split = false;
  };
  std::shared_ptr<State> state = std::make_shared<State>();
};

}  // namespace

TEST_CASE("a batch split by the stall's hook answers its first part once durable, before its rest is written, "
          "and keeps the rest's order and conditions",
          "[src][writer][split]") {
  engine::test::FaultInjectionEnv env;
  WriterFixture f(/*start=*/false, env);
  f.hooks.hold_ops = SplitHook{};
  f.Start();
  engine::test::SyncGate syncs(env);
  WriteQueue& q = f.shm->queue();
  // A first batch whose fdatasync is held, so that the next four queue up as one batch.
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 9), Put("z", "first batch")).ok());
  REQUIRE(syncs.WaitEntered(1));
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 1), Put("a", "1")).ok());
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 2), Put("b", "1")).ok());
  WriteRequest create_only = Put("b", "2");  // decided after the first part: b exists
  create_only.condition = WriteCondition::kIfAbsent;
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 3), create_only).ok());
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 4), Put("a", "2")).ok());
  syncs.Release();
  REQUIRE(syncs.WaitEntered(2));  // the first part's fdatasync
  std::map<uint64_t, Completion> first = Posted(f, 1);
  CHECK(first.count(1) == 0);  // not durable yet: not answered
  syncs.Release();
  REQUIRE(syncs.WaitEntered(3));  // the rest's fdatasync: the first part is answered already
  first.merge(Posted(f, 1));
  CHECK(first.count(9) == 1);
  REQUIRE(first.count(1) == 1);
  REQUIRE(first.count(2) == 1);
  CHECK(first[1].code == engine::Code::kOk);
  CHECK(first[2].code == engine::Code::kOk);
  CHECK(first.count(3) == 0);
  CHECK(first.count(4) == 0);
  syncs.Open();
  std::map<uint64_t, Completion> rest = f.Collect(1, 2);
  REQUIRE(rest.size() == 2);
  CHECK(rest[3].code == engine::Code::kPreconditionFailed);
  CHECK(rest[4].code == engine::Code::kOk);
  CHECK(rest[4].existed);
  CHECK(rest[4].seq > first[1].seq);
  CHECK(ValueOf(f, "a") == "2");
  CHECK(ValueOf(f, "b") == "1");
  f.Stop();
  CHECK(f.exit_status == 0);
}

#if defined(KINGX_KILL_POINTS)
TEST_CASE("a writer killed between the parts of a split batch keeps every answered op and applies none of the rest",
          "[src][writer][split][crash]") {
  WriterFixture f(/*start=*/false);
  f.hooks.hold_ops = SplitHook{};
  WriteQueue& q = f.shm->queue();
  // Queued before the writer starts: one batch.
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 1), Put("a", "1")).ok());
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 2), Put("b", "1")).ok());
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 3), Put("a", "2")).ok());
  REQUIRE(q.TryEnqueue(1, MakeToken(3, 4), Put("c", "1")).ok());
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    engine::ArmKillPoint("split.before_rest");
    const int status = RunWriter(f.config, *f.shm, /*install_signals=*/false, f.hooks);
    _exit(status == 0 ? 0 : 1);  // not reached while the batch is split
  }
  // Bounded: a writer that never splits is stopped after 30 s.
  int status = 0;
  pid_t done = 0;
  for (int i = 0; i < 3000 && done == 0; ++i) {
    done = waitpid(pid, &status, WNOHANG);
    if (done == 0) usleep(10000);
  }
  if (done == 0) {
    f.shm->control().writer_stop.store(static_cast<uint32_t>(WriterStop::kFast));
    f.shm->queue().Wake();
    REQUIRE(waitpid(pid, &status, 0) == pid);
  }
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 137);  // died at the point between the parts
  std::map<uint64_t, Completion> answered = Posted(f, 1);
  REQUIRE(answered.size() == 2);
  CHECK(answered[1].code == engine::Code::kOk);
  CHECK(answered[2].code == engine::Code::kOk);
  // The next writer answers the rest "outcome unknown" and never applies it.
  f.hooks.hold_ops = {};
  f.Start();
  std::map<uint64_t, Completion> rest = f.Collect(1, 2);
  REQUIRE(rest.size() == 2);
  CHECK(rest[3].code == engine::Code::kOutcomeUnknown);
  CHECK(rest[4].code == engine::Code::kOutcomeUnknown);
  CHECK(ValueOf(f, "a") == "1");
  CHECK(ValueOf(f, "b") == "1");
  CHECK(ValueOf(f, "c") == "(not found)");
  f.Stop();
  CHECK(f.exit_status == 0);
}
#endif

TEST_CASE("a batch nothing queued behind is answered when its fdatasync returns, not after another turn of the loop",
          "[src][writer][pipeline]") {
  WriterFixture f(/*start=*/false);
  // What the loop's hook sees at each turn: batches submitted and not yet
  // answered. The loop runs the fdatasync (depth 1) after the hook in the
  // turn that wrote the batch, so a hook that sees one saw a batch whose
  // answers waited for a turn of the loop after its sync.
  std::atomic<size_t> unanswered_at_hook{0};
  f.hooks.each_iteration = [&](engine::Writer& writer, bool) {
    unanswered_at_hook.fetch_add(writer.Unfinished());
  };
  f.Start();
  WriteQueue& q = f.shm->queue();
  for (uint64_t i = 1; i <= 3; ++i) {
    REQUIRE(q.TryEnqueue(1, MakeToken(3, i), Put("k" + std::to_string(i), "v")).ok());
    auto got = f.Collect(1, 1);
    REQUIRE(got.size() == 1);
    CHECK(got[i].code == engine::Code::kOk);
  }
  f.Stop();
  CHECK(f.exit_status == 0);
  CHECK(unanswered_at_hook.load() == 0);
}

}  // namespace kingx

namespace kingx {
namespace {

// Writes `count` puts on `slot` with tokens first, first + 1, ... (generation 3).
void EnqueuePuts(WriteQueue& q, uint32_t slot, uint64_t first, uint64_t count, std::string_view prefix) {
  for (uint64_t i = first; i < first + count; ++i) {
    REQUIRE(q.TryEnqueue(slot, MakeToken(3, i), Put(std::string(prefix) + std::to_string(i), "v")).ok());
  }
}

// With the first fdatasync held, one write and then `rest` more queued
// behind it: the second group commit carries `rest` writes. Returns once
// that commit's fdatasync is held (the first one's write is answered).
void TwoCommits(WriterFixture& f, engine::test::SyncGate& syncs, uint64_t rest) {
  WriteQueue& q = f.shm->queue();
  EnqueuePuts(q, 1, 1, 1, "a");
  REQUIRE(syncs.WaitEntered(1));
  EnqueuePuts(q, 1, 2, rest, "a");
  syncs.Release();
  REQUIRE(syncs.WaitEntered(2));  // the second commit's: the first carried one write, so no delay
  REQUIRE(f.Collect(1, 1).size() == 1);
}

}  // namespace

TEST_CASE("a commit delay answers the synced batch, waits for as many writes as it carried, and acknowledges "
          "none of them before the fdatasync that covers it",
          "[src][writer][pipeline][commit_delay]") {
  engine::test::FaultInjectionEnv env;
  WriterFixture f(/*start=*/false, env);
  f.config.commit_delay_us = 100000;
  f.Start();
  engine::test::SyncGate syncs(env);
  WriteQueue& q = f.shm->queue();
  engine::Reader reader(engine::PosixEnv(), f.dir.path, f.config.EngineOptions(), f.shm->index());
  TwoCommits(f, syncs, 3);                         // a2..a4 in the second commit
  CHECK(f.shm->writer_metrics().commit_delays.load() == 0);
  EnqueuePuts(q, 2, 1, 1, "b");                    // one of three queued when that commit's fdatasync returns
  syncs.Release();
  auto second = f.Collect(1, 3);                   // answered before the wait, not after it
  REQUIRE(second.size() == 3);
  for (uint64_t t : {2, 3, 4}) CHECK(second[t].code == engine::Code::kOk);
  // The wait is counted as it starts, right after those answers (bounded look).
  for (int i = 0; i < 10000 && f.shm->writer_metrics().commit_delays.load() == 0; ++i) usleep(100);
  CHECK(f.shm->writer_metrics().commit_delays.load() == 1);
  EnqueuePuts(q, 2, 2, 2, "b");
  REQUIRE(syncs.WaitEntered(3));                   // the delayed commit's fdatasync is held
  CHECK(Posted(f, 2).empty());                     // nothing of it is acknowledged
  for (const char* key : {"b1", "b2", "b3"}) {
    INFO(key);
    CHECK(reader.Get(key).status().Is(engine::Code::kNotFound));  // nor visible
  }
  syncs.Open();
  auto delayed = f.Collect(2, 3);
  REQUIRE(delayed.size() == 3);
  for (uint64_t t : {1, 2, 3}) CHECK(delayed[t].code == engine::Code::kOk);
  CHECK(reader.Get("b3").value().data == "v");
  f.Stop();
  CHECK(f.exit_status == 0);
}

TEST_CASE("a commit delay never delays a lone writer's writes", "[src][writer][pipeline][commit_delay]") {
  WriterFixture f(/*start=*/false);
  f.config.commit_delay_us = 100000;
  f.Start();
  WriteQueue& q = f.shm->queue();
  for (uint64_t i = 1; i <= 20; ++i) {
    EnqueuePuts(q, 1, i, 1, "k");
    auto got = f.Collect(1, 1);
    REQUIRE(got.size() == 1);
    CHECK(got[i].code == engine::Code::kOk);
  }
  CHECK(f.shm->writer_metrics().commit_delays.load() == 0);
  CHECK(f.shm->writer_metrics().commit_delay_us_sum.load() == 0);
  f.Stop();
  CHECK(f.exit_status == 0);
}

TEST_CASE("a commit delay does not delay the first write after the writer answered everything longer ago than "
          "the delay",
          "[src][writer][pipeline][commit_delay]") {
  engine::test::FaultInjectionEnv env;
  WriterFixture f(/*start=*/false, env);
  f.config.commit_delay_us = 20000;
  f.Start();
  {
    engine::test::SyncGate syncs(env);
    TwoCommits(f, syncs, 3);                       // the latest commit carried three writes
    syncs.Open();
    REQUIRE(f.Collect(1, 3).size() == 3);
  }
  usleep(60000);                                   // three delays pass with nothing to do
  EnqueuePuts(f.shm->queue(), 2, 1, 1, "c");
  auto got = f.Collect(2, 1);
  REQUIRE(got.size() == 1);
  CHECK(got[1].code == engine::Code::kOk);
  CHECK(f.shm->writer_metrics().commit_delays.load() == 0);
  f.Stop();
  CHECK(f.exit_status == 0);
}

}  // namespace kingx

TEST_CASE("the writer loop's wait ends when an interval sync is due, not a whole wait after the turn that wrote",
          "[src][writer][sync]") {
  // --sync interval:200: the last sync at 1000, data written at 1199. The
  // loop used to wait its idle timeout (the interval) from that turn, so
  // the data waited until 1399 for its fdatasync: twice the interval.
  CHECK(kingx::WaitBeforeSyncDue(200, 1199, 1200) == 1);
  CHECK(kingx::WaitBeforeSyncDue(200, 1000, 1200) == 200);
  CHECK(kingx::WaitBeforeSyncDue(200, 1200, 1200) == 0);
  CHECK(kingx::WaitBeforeSyncDue(200, 1250, 1200) == 0);  // past due: no sleep
  CHECK(kingx::WaitBeforeSyncDue(1, 1000, 1200) == 1);    // a shorter wait stays
  CHECK(kingx::WaitBeforeSyncDue(1000, 5, UINT64_MAX) == 1000);
}
