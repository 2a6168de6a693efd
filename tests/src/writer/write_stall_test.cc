// The write stall (src/writer/write_stall.h) against a real Writer over a
// shared mapping's index, a Compactor and its thread: what a pin does to a
// stall. The key view's pin is held by holding its job where it creates its
// first run file (the file seam's create hook).
#include "src/writer/write_stall.h"

#include <catch2/catch.hpp>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "engine/compaction.h"
#include "engine/keyspace_options.h"
#include "engine/record.h"
#include "engine/writer.h"
#include "src/ipc/shm.h"
#include "tests/engine/support/fault_env.h"
#include "tests/src/support/test_util.h"

namespace kingx {
namespace {

constexpr uint64_t kHourMs = 3600 * 1000;

// Holds every thread that creates a key run file until Release.
class RunGate {
 public:
  void Enter() {
    std::unique_lock lock(mu_);
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return released_; });
  }
  // Waits (at most 10 s) until a thread is held.
  bool WaitEntered() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return entered_ > 0; });
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int entered_ = 0;
  bool released_ = false;
};

// An empty database in 1 MiB segments, uncompressed, over a shared
// mapping's index.
struct StallDb {
  StallDb() {
    auto created = SharedMemory::Create(test::SmallShmSizes(2, 64));
    REQUIRE(created.ok());
    shm = std::move(created).value();
    engine::Options o;
    o.compression_level = 0;
    o.segment_bytes = 1 << 20;
    o.take_lock = false;
    auto w = engine::Writer::Open(env, dir.path, o, shm->index());
    REQUIRE(w.ok());
    writer = std::move(w).value();
  }
  void Put(const std::string& key, const std::string& value, std::string_view content_type = {}) {
    engine::WriteOp op;
    op.key = key;
    op.content_type = content_type;
    op.stored = value;
    op.raw_len = value.size();
    engine::WriteResult r;
    writer->Apply({&op, 1}, {&r, 1});
    REQUIRE(r.status.ok());
  }

  test::TempDir dir;
  engine::test::FaultInjectionEnv env;
  RunGate gate;  // outlives the writer, whose key view thread it may hold
  std::unique_ptr<SharedMemory> shm;
  std::unique_ptr<engine::Writer> writer;
};

// A database whose dead bytes are several times its live bytes: 8 keys of
// 200 KiB written four times.
struct StallFixture : StallDb {
  StallFixture() {
    const std::string value(200 << 10, 'v');
    for (int round = 0; round < 4; ++round) {
      for (int k = 0; k < 8; ++k) Put("k" + std::to_string(k), value, "text/plain");
    }
    const engine::IndexCounters& c = shm->index().counters();
    REQUIRE(c.dead_bytes.load() > 2 * c.live_bytes.load());
    engine::CompactionOptions co;
    co.rate_bytes_per_sec = 0;
    compactor = std::make_unique<engine::Compactor>(*writer, co);
    thread = std::make_unique<engine::CompactionThread>(*compactor, kHourMs);
  }
  ~StallFixture() {
    gate.Release();
    if (thread) thread->Stop();
  }
  // Starts the key view; its job is held where it creates its first run.
  void StartHeldKeyView() {
    env.SetCreateHook([this](const std::string& path) {
      if (path.find("/keys/") != std::string::npos && path.find("run-") != std::string::npos) gate.Enter();
    });
    engine::KeyspaceOptions ko;
    ko.dir = dir.path + "/keys";
    REQUIRE(writer->StartKeyspace(shm->keyspace(), ko).ok());
    REQUIRE(gate.WaitEntered());
  }
  uint64_t Stalls() { return shm->writer_metrics().compaction_stalls.load(); }

  std::unique_ptr<engine::Compactor> compactor;
  std::unique_ptr<engine::CompactionThread> thread;
};

}  // namespace

TEST_CASE("a write stall waits out the key view's pin instead of letting writes run until a later pass",
          "[src][writer][stall][regression]") {
  // After every restart the key view's catch-up pins every segment for tens
  // of milliseconds. A stall that began then saw its catch-up pass find
  // nothing to pick, took that as compaction having nothing to do, and
  // ended; no stall began again until a later pass made progress, while
  // writes ran unheld (the data directory reached 3.5x the live data).
  StallFixture f;
  f.StartHeldKeyView();
  f.thread->Start();
  WriteStall stall(*f.shm, *f.compactor, *f.thread, kHourMs, kHourMs);
  REQUIRE(stall.Hold());
  REQUIRE(f.Stalls() == 1);
  // Each Hold waits at most one slice (10 ms) for a pass: bounded loops.
  for (int i = 0; i < 1000 && f.thread->catch_up_passes() < 2; ++i) REQUIRE(stall.Hold());
  // Passes ran during the pin, found only pinned segments, and the stall held on.
  REQUIRE(f.thread->catch_up_passes() >= 2);
  REQUIRE(f.thread->catch_up_view_pinned_passes() == f.thread->catch_up_passes());
  REQUIRE(f.thread->progress_passes() == 0);
  REQUIRE(stall.Hold());
  // The pin ends: the next catch-up pass reclaims, and the stall ends released, with no other stall.
  f.gate.Release();
  bool held = true;
  for (int i = 0; i < 3000 && held; ++i) held = stall.Hold();
  REQUIRE_FALSE(held);
  // The stall ends as soon as the pass's deletions show in the counters,
  // which can be before the pass itself is counted: wait for its end.
  for (int i = 0; i < 1000 && f.thread->catch_up_progress_passes() == 0; ++i)
    f.thread->WaitForPass(f.thread->passes(), 10);
  REQUIRE(f.thread->catch_up_progress_passes() >= 1);
  const engine::IndexCounters& c = f.shm->index().counters();
  REQUIRE(c.dead_bytes.load() <= engine::WriteStallBoundsFor(c.live_bytes.load(), kWriteStallFloorBytes).end_bytes);
  REQUIRE(f.Stalls() == 1);
}

TEST_CASE("a write stall ends at once when an online backup's cut keeps compaction from progress",
          "[src][writer][stall]") {
  // A backup pins its cut for as long as it runs: holding writes for it
  // would stop them for the whole backup.
  StallFixture f;
  auto cut = f.writer->PinSegments();
  REQUIRE(cut.ok());
  f.thread->Start();
  WriteStall stall(*f.shm, *f.compactor, *f.thread, kHourMs, kHourMs);
  REQUIRE(stall.Hold());
  bool held = true;
  for (int i = 0; i < 1000 && held; ++i) held = stall.Hold();
  REQUIRE_FALSE(held);
  REQUIRE(f.thread->catch_up_passes() == 1);
  REQUIRE(f.thread->catch_up_view_pinned_passes() == 0);
  REQUIRE(f.thread->progress_passes() == 0);
  // Disarmed until a pass makes progress: the next batch goes through.
  REQUIRE_FALSE(stall.Hold());
  REQUIRE(f.Stalls() == 1);
  f.writer->UnpinSegmentIds(cut->ids());
}

TEST_CASE("a batch that would kill more than the stall's bound allows is held until compaction made room for it",
          "[src][writer][stall]") {
  // The stall used to measure only the bytes waiting in the queue: a batch
  // of small values replacing large ones went through under the bound and
  // left dead bytes past it (and a compaction copy on top passed twice the
  // live data).
  StallDb db;
  std::unique_ptr<SharedMemory>& shm = db.shm;
  std::unique_ptr<engine::Writer>& writer = db.writer;
  const auto put = [&](const std::string& key, const std::string& value) { db.Put(key, value); };
  // 8 keys of 200 KiB, three of them written twice: about 600 KB dead beside 1.6 MB live.
  for (int k = 0; k < 8; ++k) put("k" + std::to_string(k), std::string(200 << 10, 'a'));
  for (int k = 5; k < 8; ++k) put("k" + std::to_string(k), std::string(200 << 10, 'b'));
  engine::CompactionOptions co;
  co.rate_bytes_per_sec = 0;
  engine::Compactor compactor(*writer, co);
  engine::CompactionThread thread(compactor, kHourMs);
  thread.Start();
  WriteStall stall(*shm, compactor, thread, kHourMs, kHourMs);
  const engine::IndexCounters& c = shm->index().counters();
  REQUIRE(c.dead_bytes.load() <= engine::WriteStallBoundsFor(c.live_bytes.load(), kWriteStallFloorBytes).begin_bytes);
  // The queue is empty: the stall's first test lets the batch be taken.
  REQUIRE_FALSE(stall.Hold());
  // The batch: k0..k3 replaced by one byte each, killing 800 KiB of live data.
  std::vector<std::string> keys = {"k0", "k1", "k2", "k3"};
  std::vector<engine::WriteOp> ops(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    ops[i].key = keys[i];
    ops[i].stored = "x";
    ops[i].raw_len = 1;
  }
  REQUIRE(stall.WantsForecast());
  const engine::Writer::BatchForecast forecast = writer->Forecast(ops);
  CHECK(forecast.killed_live_bytes == 4 * engine::RecordBytes(2, 0, 200 << 10));
  CHECK(forecast.put_bytes == 4 * engine::RecordBytes(2, 0, 1));
  REQUIRE(stall.HoldBatch(forecast, 4));
  bool held = true;
  for (int i = 0; i < 3000 && held; ++i) held = stall.Hold();
  REQUIRE_FALSE(held);
  REQUIRE_FALSE(stall.HoldBatch(writer->Forecast(ops), 4));  // room was made: the batch goes
  std::vector<engine::WriteResult> results(ops.size());
  writer->Apply(ops, results);
  for (const engine::WriteResult& r : results) REQUIRE(r.status.ok());
  // What compaction could reclaim is within the bound for the live data the batch left.
  CHECK(c.dead_bytes.load() - compactor.stats().kept_tombstone_bytes <=
        engine::WriteStallBoundsFor(c.live_bytes.load(), kWriteStallFloorBytes).begin_bytes);
  thread.Stop();
}

TEST_CASE("a batch that kills a large share of the live data is forecast and held even when little is reclaimable",
          "[src][writer][stall]") {
  // The forecast used to run only while more than an eighth of the live
  // data was reclaimable: below that, a batch that killed more than about
  // 3/8 of the live data went through unforecast, beside the dead bytes
  // compaction could have reclaimed first. And a catch-up pass stopped once
  // a tenth of the segments' bytes was reclaimable, above the room such a
  // batch needs.
  StallDb db;
  std::unique_ptr<SharedMemory>& shm = db.shm;
  std::unique_ptr<engine::Writer>& writer = db.writer;
  const auto put = [&](const std::string& key, const std::string& value) { db.Put(key, value); };
  // 15 keys of 200 KiB, and a 200 KiB record dead beside 3 MB live (a
  // fifteenth) in the active segment: nearly all it holds; or half of it
  // (under the dead ratio once sealed), a twentieth of the segments' bytes
  // (under the tenth a catch-up pass reclaims down to on its own).
  const bool half_of_its_segment = GENERATE(false, true);
  for (int k = 0; k < 15; ++k) put("k" + std::to_string(k), std::string(200 << 10, 'a'));
  put("d", std::string(200 << 10, 'a'));
  put("d", half_of_its_segment ? std::string(200 << 10, 'b') : std::string("x"));
  engine::CompactionOptions co;
  co.rate_bytes_per_sec = 0;
  engine::Compactor compactor(*writer, co);
  engine::CompactionThread thread(compactor, kHourMs);
  thread.Start();
  WriteStall stall(*shm, compactor, thread, kHourMs, kHourMs);
  const engine::IndexCounters& c = shm->index().counters();
  const uint64_t record = engine::RecordBytes(1, 0, 200 << 10);
  REQUIRE(c.dead_bytes.load() == record);
  REQUIRE(8 * c.dead_bytes.load() <= c.live_bytes.load());
  REQUIRE_FALSE(stall.Hold());
  // The batch: k0..k6 replaced by one byte each, killing 7/15 of the live data.
  std::vector<std::string> keys;
  for (int k = 0; k < 7; ++k) keys.push_back("k" + std::to_string(k));
  std::vector<engine::WriteOp> ops(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    ops[i].key = keys[i];
    ops[i].stored = "x";
    ops[i].raw_len = 1;
  }
  REQUIRE(stall.WantsForecast());
  const engine::Writer::BatchForecast forecast = writer->Forecast(ops);
  CHECK(forecast.killed_live_bytes == 7 * engine::RecordBytes(2, 0, 200 << 10));
  REQUIRE(stall.HoldBatch(forecast, 7));
  bool held = true;
  for (int i = 0; i < 3000 && held; ++i) held = stall.Hold();
  REQUIRE_FALSE(held);
  // Compaction reclaimed the dead record before the batch went.
  CHECK(c.dead_bytes.load() - compactor.stats().kept_tombstone_bytes < record);
  std::vector<engine::WriteResult> results(ops.size());
  writer->Apply(ops, results);
  for (const engine::WriteResult& r : results) REQUIRE(r.status.ok());
  thread.Stop();
}

}  // namespace kingx
