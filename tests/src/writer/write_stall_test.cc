// The write stall (src/writer/write_stall.h) against a real Writer over a
// shared mapping's index, a Compactor and its thread: what a pin does to a
// stall. The key view's pin is held by holding its job where it creates its
// first run file (the file seam's create hook).
#include "src/writer/write_stall.h"

#include <catch2/catch.hpp>
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <span>
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

// An empty database in 1 MiB segments (or segment_bytes), uncompressed, over
// a shared mapping's index.
struct StallDb {
  explicit StallDb(uint64_t segment_bytes = 1 << 20, double dead_ratio = 0.5) {
    auto created = SharedMemory::Create(test::SmallShmSizes(2, 64));
    REQUIRE(created.ok());
    shm = std::move(created).value();
    engine::Options o;
    o.compression_level = 0;
    o.segment_bytes = segment_bytes;
    o.compaction_dead_ratio = dead_ratio;
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
  // Holds until the stall lets a batch through; each Hold waits at most a
  // slice (10 ms), and a 1 ms time bound ends the stall at the second.
  void HoldUntilThroughTime(WriteStall& stall) {
    bool held = true;
    for (int i = 0; i < 100 && held; ++i) held = stall.Hold();
    REQUIRE_FALSE(held);
  }

  std::unique_ptr<engine::Compactor> compactor;
  std::unique_ptr<engine::CompactionThread> thread;
};

// The forecaster HoldBatch takes, over `ops` (which must outlive it).
WriteStall::Forecaster ForecastOf(engine::Writer& writer, const std::vector<engine::WriteOp>& ops) {
  return [&writer, &ops](size_t first_ops) { return writer.Forecast(std::span(ops).first(first_ops)); };
}

// Puts of one byte over `keys` (which must outlive the ops: they are views).
std::vector<engine::WriteOp> OneBytePuts(const std::vector<std::string>& keys) {
  std::vector<engine::WriteOp> ops(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    ops[i].key = keys[i];
    ops[i].stored = "x";
    ops[i].raw_len = 1;
  }
  return ops;
}

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
  for (int i = 0; i < 1000 && f.thread->catch_up_counts().passes < 2; ++i) REQUIRE(stall.Hold());
  // Passes ran during the pin, found only pinned segments, and the stall held on.
  const engine::CompactionThread::CatchUpCounts during_pin = f.thread->catch_up_counts();
  REQUIRE(during_pin.passes >= 2);
  REQUIRE(during_pin.view_pinned == during_pin.passes);
  REQUIRE(f.thread->progress_passes() == 0);
  REQUIRE(stall.Hold());
  // The pin ends: the next catch-up pass reclaims, and the stall ends released, with no other stall.
  f.gate.Release();
  bool held = true;
  for (int i = 0; i < 3000 && held; ++i) held = stall.Hold();
  REQUIRE_FALSE(held);
  // The stall ends as soon as the pass's deletions show in the counters,
  // which can be before the pass itself is counted: wait for its end.
  for (int i = 0; i < 1000 && f.thread->catch_up_counts().progress == 0; ++i)
    f.thread->WaitForPass(f.thread->passes(), 10);
  REQUIRE(f.thread->catch_up_counts().progress >= 1);
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
  REQUIRE(f.thread->catch_up_counts().passes == 1);
  REQUIRE(f.thread->catch_up_counts().view_pinned == 0);
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
  REQUIRE(stall.HoldBatch(ops.size(), 4, ForecastOf(*writer, ops)) == 0);
  bool held = true;
  for (int i = 0; i < 3000 && held; ++i) held = stall.Hold();
  REQUIRE_FALSE(held);
  REQUIRE(stall.HoldBatch(ops.size(), 4, ForecastOf(*writer, ops)) == ops.size());  // room was made: the batch goes
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
  // (under the tenth a catch-up pass reclaims down to on its own). The
  // batch kills a third of the live data: it fits the bound once that
  // record is reclaimed, not before.
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
  // The batch: k0..k4 replaced by one byte each, killing 5/15 of the live data.
  std::vector<std::string> keys;
  for (int k = 0; k < 5; ++k) keys.push_back("k" + std::to_string(k));
  std::vector<engine::WriteOp> ops(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    ops[i].key = keys[i];
    ops[i].stored = "x";
    ops[i].raw_len = 1;
  }
  REQUIRE(stall.WantsForecast());
  const engine::Writer::BatchForecast forecast = writer->Forecast(ops);
  CHECK(forecast.killed_live_bytes == 5 * engine::RecordBytes(2, 0, 200 << 10));
  REQUIRE(stall.HoldBatch(ops.size(), 5, ForecastOf(*writer, ops)) == 0);
  bool held = true;
  for (int i = 0; i < 3000 && held; ++i) held = stall.Hold();
  REQUIRE_FALSE(held);
  // Compaction reclaimed the dead record before the batch went.
  CHECK(c.dead_bytes.load() - compactor.stats().kept_tombstone_bytes < record);
  REQUIRE(stall.HoldBatch(ops.size(), 5, ForecastOf(*writer, ops)) == ops.size());
  std::vector<engine::WriteResult> results(ops.size());
  writer->Apply(ops, results);
  for (const engine::WriteResult& r : results) REQUIRE(r.status.ok());
  thread.Stop();
}

namespace {

// 15 keys of 200 KiB (about 3 MB live) and one 200 KiB record dead beside
// them (a fifteenth: under the end bound), compacted by a started thread.
struct SplitFixture : StallDb {
  SplitFixture() {
    for (int k = 0; k < 15; ++k) Put("k" + std::to_string(k), std::string(200 << 10, 'a'));
    Put("d", std::string(200 << 10, 'a'));
    Put("d", "x");
    engine::CompactionOptions co;
    co.rate_bytes_per_sec = 0;
    compactor = std::make_unique<engine::Compactor>(*writer, co);
    thread = std::make_unique<engine::CompactionThread>(*compactor, kHourMs);
  }
  ~SplitFixture() {
    if (thread) thread->Stop();
  }
  uint64_t Reclaimable() {
    const engine::IndexCounters& c = shm->index().counters();
    const uint64_t kept = compactor->stats().kept_tombstone_bytes;
    return c.dead_bytes.load() - std::min(c.dead_bytes.load(), kept);
  }
  uint64_t Bound() {
    return engine::WriteStallBoundsFor(shm->index().counters().live_bytes.load(), kWriteStallFloorBytes).begin_bytes;
  }
  // As the writer loop: Hold until it lets a batch through (bounded).
  void HoldUntilThrough(WriteStall& stall) {
    bool held = true;
    for (int i = 0; i < 3000 && held; ++i) held = stall.Hold();
    REQUIRE_FALSE(held);
  }
  // "k0", "k1", ... (n keys).
  static std::vector<std::string> FirstKeys(int n) {
    std::vector<std::string> keys;
    for (int k = 0; k < n; ++k) keys.push_back("k" + std::to_string(k));
    return keys;
  }
  // Applies `ops`, each must succeed.
  void Apply(std::span<const engine::WriteOp> ops) {
    std::vector<engine::WriteResult> results(ops.size());
    writer->Apply(ops, results);
    for (const engine::WriteResult& r : results) REQUIRE(r.status.ok());
  }

  std::unique_ptr<engine::Compactor> compactor;
  std::unique_ptr<engine::CompactionThread> thread;
};

}  // namespace

TEST_CASE("a batch that alone kills more than the bound allows goes in parts, compaction reclaiming between them",
          "[src][writer][stall][split]") {
  // Seven of fifteen values replaced by one byte each in one batch kill 7/15
  // of the live data: even with nothing left to reclaim before it, its dead
  // bytes pass half the live data it leaves. It used to go whole once
  // compaction got as low as it could (a third of the directory dead).
  SplitFixture f;
  f.thread->Start();
  WriteStall stall(*f.shm, *f.compactor, *f.thread, kHourMs, kHourMs);
  const std::vector<std::string> keys = SplitFixture::FirstKeys(7);
  const std::vector<engine::WriteOp> ops = OneBytePuts(keys);
  size_t done = 0;
  int parts = 0;
  // Bounded: each round either applies a part or waits out one stall.
  for (int round = 0; round < 50 && done < ops.size(); ++round) {
    f.HoldUntilThrough(stall);
    const std::vector<engine::WriteOp> rest(ops.begin() + static_cast<std::ptrdiff_t>(done), ops.end());
    const size_t go = stall.HoldBatch(rest.size(), rest.size(), ForecastOf(*f.writer, rest));
    REQUIRE(go <= rest.size());
    if (go == 0) continue;  // held: the next Hold waits for compaction
    f.Apply(std::span(rest).first(go));
    done += go;
    ++parts;
    // After each part, what compaction can reclaim is within the bound for
    // the live data that part left.
    CHECK(f.Reclaimable() <= f.Bound());
  }
  REQUIRE(done == ops.size());
  CHECK(parts >= 2);
}

namespace {

// A SplitFixture whose segments a backup's cut pins: the catch-up pass
// held for `ops` (five of the fifteen values killed: within the bound once
// the dead record is reclaimed, not before) can reclaim nothing, and the
// stall that held them ended for lack of progress.
struct PinnedStall : SplitFixture {
  PinnedStall() {
    auto pinned = writer->PinSegments();
    REQUIRE(pinned.ok());
    cut = pinned->ids();
    thread->Start();
    stall = std::make_unique<WriteStall>(*shm, *compactor, *thread, kHourMs, kHourMs);
    HoldUntilThrough(*stall);
    REQUIRE(HoldBatch(ops) == 0);
    HoldUntilThrough(*stall);
    REQUIRE(thread->catch_up_counts().passes >= 1);
    REQUIRE(thread->progress_passes() == 0);
  }
  ~PinnedStall() { writer->UnpinSegmentIds(cut); }
  size_t HoldBatch(const std::vector<engine::WriteOp>& batch) {
    return stall->HoldBatch(batch.size(), batch.size(), ForecastOf(*writer, batch));
  }

  std::vector<uint32_t> cut;
  const std::vector<std::string> keys = FirstKeys(5);
  const std::vector<engine::WriteOp> ops = OneBytePuts(keys);
  std::unique_ptr<WriteStall> stall;
};

}  // namespace

TEST_CASE("a stall that compaction cannot finish under the end bound lets go only the part of its batch that fits",
          "[src][writer][stall][split]") {
  // The stall used to let the whole batch go unforecast then; now the part
  // of it that fits what compaction left goes.
  PinnedStall f;
  const size_t go = f.HoldBatch(f.ops);
  REQUIRE(go >= 1);
  REQUIRE(go < f.ops.size());
  f.Apply(std::span(f.ops).first(go));
  CHECK(f.Reclaimable() <= f.Bound());
}

TEST_CASE("a stall that compaction cannot finish under the end bound does not disarm: the next batch is held again",
          "[src][writer][stall]") {
  // Above the end bound a fruitless stall disarms the stall until a pass
  // makes progress (compaction can do nothing now). Under it (a stall for
  // one batch's forecast) it must not: the batches after it are forecast,
  // and held, as any batch.
  PinnedStall f;
  REQUIRE(f.Reclaimable() <= engine::WriteStallBoundsFor(f.shm->index().counters().live_bytes.load(),
                                                          kWriteStallFloorBytes).end_bytes);
  f.Apply(std::span(f.ops).first(f.HoldBatch(f.ops)));
  // The next batch kills one more value: over the bound now, so held.
  const std::vector<std::string> next_keys = {"k5"};
  const std::vector<engine::WriteOp> next = OneBytePuts(next_keys);
  f.HoldUntilThrough(*f.stall);
  CHECK(f.HoldBatch(next) == 0);
  CHECK(f.shm->writer_metrics().compaction_stalls.load() == 2);
}

TEST_CASE("a stall for a batch whose room only thin segments hold ends at the first pass that finds nothing worth "
          "copying, without a back-off, and lets go the part that fits",
          "[src][writer][stall][split]") {
  // The catch-up passes for such a stall's target used to copy every
  // segment with a dead record, however little each freed (here some ten
  // bytes copied per byte freed), while the batch waited.
  StallDb db;
  // Five sealed 1 MiB segments (and the active one) of five 180 KiB values
  // and one 90 KiB value, the 90 KiB ones then replaced by one byte: each
  // segment under a tenth dead, about 5.4 MB live.
  constexpr int kSegments = 6;
  for (int seg = 0; seg < kSegments; ++seg) {
    for (int i = 0; i < 5; ++i) db.Put("k" + std::to_string(seg * 5 + i), std::string(180 << 10, 'a'));
    db.Put("t" + std::to_string(seg), std::string(90 << 10, 'a'));
  }
  for (int seg = 0; seg < kSegments; ++seg) db.Put("t" + std::to_string(seg), "x");
  size_t sealed = 0;
  for (const engine::SegmentStats& seg : db.writer->Stats().per_segment) {
    INFO("segment " << seg.id << ": " << seg.bytes << " bytes, " << seg.dead_bytes << " dead");
    REQUIRE(seg.dead_bytes > 0);
    REQUIRE(seg.dead_bytes * 10 < seg.bytes);
    if (!seg.active) ++sealed;
  }
  REQUIRE(sealed == kSegments - 1);
  engine::CompactionOptions co;
  co.rate_bytes_per_sec = 0;
  engine::Compactor compactor(*db.writer, co);
  engine::CompactionThread thread(compactor, kHourMs);
  thread.Start();
  WriteStall stall(*db.shm, compactor, thread, kHourMs, kHourMs);
  REQUIRE_FALSE(stall.Hold());
  // Nine values replaced by one byte: within the bound with nothing left to
  // reclaim, not with the thin segments' dead bytes.
  std::vector<std::string> keys;
  for (int k = 0; k < 9; ++k) keys.push_back("k" + std::to_string(k));
  const std::vector<engine::WriteOp> ops = OneBytePuts(keys);
  REQUIRE(stall.HoldBatch(ops.size(), ops.size(), ForecastOf(*db.writer, ops)) == 0);
  bool held = true;
  for (int i = 0; i < 3000 && held; ++i) held = stall.Hold();
  REQUIRE_FALSE(held);
  CHECK(compactor.stats().bytes_written == 0);
  CHECK(thread.catch_up_counts().passes >= 1);
  CHECK(thread.catch_up_counts().progress == 0);
  CHECK(thread.fruitless() == 0);  // a pass that picked nothing: no back-off
  const size_t go = stall.HoldBatch(ops.size(), ops.size(), ForecastOf(*db.writer, ops));
  REQUIRE(go >= 1);
  REQUIRE(go < ops.size());
  std::vector<engine::WriteResult> results(go);
  db.writer->Apply(std::span(ops).first(go), results);
  for (const engine::WriteResult& r : results) REQUIRE(r.status.ok());
  // Not disarmed: the rest is forecast, and goes once compaction reclaimed
  // what the first part killed (worth copying now).
  const std::vector<engine::WriteOp> rest(ops.begin() + static_cast<std::ptrdiff_t>(go), ops.end());
  size_t rest_go = 0;
  for (int round = 0; round < 10 && rest_go == 0; ++round) {
    held = true;
    for (int i = 0; i < 3000 && held; ++i) held = stall.Hold();
    REQUIRE_FALSE(held);
    rest_go = stall.HoldBatch(rest.size(), rest.size(), ForecastOf(*db.writer, rest));
  }
  CHECK(rest_go == rest.size());
  thread.Stop();  // the pass that made the room is counted once it returns
  CHECK(thread.progress_passes() >= 1);
}

TEST_CASE("the batch after one let go by a stall's time bound is forecast and may be held",
          "[src][writer][stall]") {
  // A stall cut short by its time bound lets its batch go whole (its writes
  // waited their share of the storage timeout). The batch after it used to
  // go unforecast too, unheld whatever it did to the bound.
  StallFixture f;  // compaction never runs: no stall ends but by its time bound
  WriteStall stall(*f.shm, *f.compactor, *f.thread, /*max_stall_ms=*/1, /*view_pin_wait_ms=*/0);
  REQUIRE(stall.Hold());
  f.HoldUntilThroughTime(stall);
  REQUIRE(f.Stalls() == 1);
  const std::vector<std::string> keys = {"k0"};
  const std::vector<engine::WriteOp> ops = OneBytePuts(keys);
  REQUIRE(stall.HoldBatch(ops.size(), ops.size(), ForecastOf(*f.writer, ops)) == ops.size());
  // The next batch: the backlog is still over the bound, a stall begins.
  CHECK(stall.Hold());
  CHECK(f.Stalls() == 2);
}

namespace {

constexpr uint64_t kKiB = 1024;

// A segment holding more than a quarter of the live data beside `dead_kib`
// of dead bytes (a large record beside an overwritten one), which the
// ordinary pass CopyFixture::StartHeldCopy runs picks alone; that pass is
// held where it creates its output ("compact-N.tmp", the file seam's
// create hook), the copy announced and not yet installed.
struct CopyFixture : StallDb {
  explicit CopyFixture(uint64_t dead_kib) : StallDb(4 << 20, /*dead_ratio=*/0.3) {
    // The first segment: "big" (900 KiB) and "d" (dead_kib), sealed at the
    // next record (it holds more than a quarter of the live data, over 1 MiB).
    Put("big", std::string(900 * kKiB, 'b'));
    Put("d", std::string(dead_kib * kKiB, 'd'));
    for (int k = 0; k < 8; ++k) Put("k" + std::to_string(k), std::string(200 * kKiB, 'v'));
    Put("d", "x");
    const auto per_segment = writer->Stats().per_segment;
    REQUIRE(per_segment.size() >= 2);
    const engine::SegmentStats& first = per_segment.front();
    INFO("first segment: " << first.bytes << " bytes, " << first.live_bytes << " live, " << first.dead_bytes
                           << " dead");
    REQUIRE_FALSE(first.active);
    REQUIRE(first.live_bytes > Live() / 4);
    for (size_t i = 1; i < per_segment.size(); ++i) REQUIRE(per_segment[i].dead_bytes == 0);
    large_live = first.live_bytes;
    engine::CompactionOptions co;
    co.rate_bytes_per_sec = 0;
    compactor = std::make_unique<engine::Compactor>(*writer, co);
    thread = std::make_unique<engine::CompactionThread>(*compactor, kHourMs);
  }
  ~CopyFixture() {
    copy_gate.Release();
    if (thread) thread->Stop();
  }
  uint64_t Live() const { return shm->index().counters().live_bytes.load(); }
  uint64_t Dead() const { return shm->index().counters().dead_bytes.load(); }
  uint64_t Begin() const { return engine::WriteStallBoundsFor(Live(), kWriteStallFloorBytes).begin_bytes; }
  // An ordinary pass (none of the stall's) copies the first segment and is
  // held where it creates its output.
  void StartHeldCopy() {
    env.SetCreateHook([this](const std::string& path) {
      if (path.find("compact-") != std::string::npos) copy_gate.Enter();
    });
    thread->Start();
    thread->Trigger();
    REQUIRE(copy_gate.WaitEntered());
  }
  // Holds until a batch is let through; bounded (each Hold waits at most a slice).
  void HoldUntilThrough(WriteStall& stall) {
    bool held = true;
    for (int i = 0; i < 3000 && held; ++i) held = stall.Hold();
    REQUIRE_FALSE(held);
  }

  RunGate copy_gate;
  uint64_t large_live = 0;
  std::unique_ptr<engine::Compactor> compactor;
  std::unique_ptr<engine::CompactionThread> thread;
};

}  // namespace

TEST_CASE("a compaction copy of more than a quarter of the live data counts in the stall's backlog until installed",
          "[src][writer][stall][copy]") {
  // A copy stands beside its input until the input is deleted. The stall
  // counted only the reclaimable and staged bytes: writes went on during a
  // copy of more than a quarter of the live data, so that reclaimable +
  // staged + the copy passed the begin bound plus that quarter (with a copy
  // of half the live data, twice the live data).
  SECTION("with the copy the backlog passes the bound: the next batch is held") {
    CopyFixture f(1100);
    WriteStall stall(*f.shm, *f.compactor, *f.thread, kHourMs, kHourMs);
    const uint64_t beyond = f.large_live - f.Live() / 4;
    // Without the copy the backlog is within the bound; with it, not.
    REQUIRE(f.Dead() <= f.Begin());
    REQUIRE(f.Dead() + beyond > f.Begin());
    REQUIRE_FALSE(stall.Hold());
    f.StartHeldCopy();
    CHECK(f.compactor->copy_bytes() >= f.large_live);
    CHECK(stall.Hold());
    CHECK(f.shm->writer_metrics().compaction_stalls.load() == 1);
    // Held on while the copy stands (each Hold waits a slice for a pass; the
    // stall's catch-up pass waits behind the held one).
    for (int i = 0; i < 5; ++i) CHECK(stall.Hold());
    f.copy_gate.Release();
    f.HoldUntilThrough(stall);
    // Let through once the copy was installed and its input deleted. The
    // pass adds its counts together as it ends, a moment after that: its
    // thread's count of passes comes after them.
    CHECK(f.compactor->copy_bytes() == 0);
    CHECK(f.thread->WaitForPass(0, 60'000) >= 1);
    CHECK(f.compactor->stats().segments_compacted >= 1);
    CHECK(f.Dead() + f.compactor->copy_bytes() <= f.Begin());
    CHECK(f.shm->writer_metrics().compaction_stalls.load() == 1);
  }
  SECTION("a batch that fits but for the copy waits for its install, then goes") {
    CopyFixture f(880);
    WriteStall stall(*f.shm, *f.compactor, *f.thread, kHourMs, kHourMs);
    const uint64_t beyond = f.large_live - f.Live() / 4;
    REQUIRE(f.Dead() + beyond <= f.Begin());  // Hold lets the batch be taken, copy or not
    // The batch: k0 overwritten with as much: its dead bytes fit beside the
    // reclaimable bytes, not beside the copy too.
    const std::string value(200 * kKiB, 'w');
    std::vector<engine::WriteOp> ops(1);
    ops[0].key = "k0";
    ops[0].stored = value;
    ops[0].raw_len = value.size();
    const engine::Writer::BatchForecast forecast = f.writer->Forecast(ops);
    REQUIRE(f.Dead() + forecast.dead_bytes <= f.Begin());
    REQUIRE(f.Dead() + forecast.dead_bytes + beyond > f.Begin());
    f.StartHeldCopy();
    REQUIRE_FALSE(stall.Hold());
    REQUIRE(stall.WantsForecast());
    CHECK(stall.HoldBatch(ops.size(), value.size(), ForecastOf(*f.writer, ops)) == 0);
    for (int i = 0; i < 5; ++i) CHECK(stall.Hold());
    f.copy_gate.Release();
    f.HoldUntilThrough(stall);
    CHECK(f.compactor->copy_bytes() == 0);
    CHECK(stall.HoldBatch(ops.size(), value.size(), ForecastOf(*f.writer, ops)) == ops.size());
  }
}


namespace {

// Holds the compaction thread in the line a catch-up pass that picked
// segments logs as it ends well (CompactionOptions::log_debug), before the thread
// counts the pass: the pass picked and finished, its verdict not yet seen.
class PassEndGate {
 public:
  void OnLine(const std::string& line) {
    if (line.find("catch-up pass picked") == std::string::npos) return;
    std::unique_lock lock(mu_);
    if (entered_) return;  // only the first such pass
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return released_; });
  }
  // Waits (bounded, generously) until a pass is held.
  bool WaitEntered() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::minutes(5), [&] { return entered_; });
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

}  // namespace

TEST_CASE("a catch-up pass that began before a stall does not end it without progress",
          "[src][writer][stall][regression]") {
  // A stall took the first catch-up pass to finish after its beginning as
  // its own, also one that had picked before it (for an earlier stall's
  // target, before the batch that made this stall was published): a pass
  // that found nothing to do for that target ended this stall "without
  // progress" microseconds after it began, and above the end bound
  // disarmed it until a later pass made progress.
  StallDb db;
  // Three sealed 1 MiB segments, each a 400 KiB record (dead once
  // overwritten below) and three of 200 KiB: 40% dead, under the threshold,
  // and each holding a third of the live data (a large copy).
  for (int s = 0; s < 3; ++s) {
    db.Put("x" + std::to_string(s), std::string(400 << 10, 'x'));
    for (int v = 0; v < 3; ++v) db.Put("v" + std::to_string(s) + std::to_string(v), std::string(200 << 10, 'v'));
  }
  for (int s = 0; s < 3; ++s) db.Put("x" + std::to_string(s), "x");
  PassEndGate gate;
  engine::CompactionOptions co;
  co.rate_bytes_per_sec = 0;
  co.stall_floor_bytes = kWriteStallFloorBytes;  // as the writer process: large copies wait for the stall
  co.log_debug = [&gate](const std::string& line) { gate.OnLine(line); };
  engine::Compactor compactor(*db.writer, co);
  engine::CompactionThread thread(compactor, kHourMs);
  struct Stop {
    PassEndGate& gate;
    engine::CompactionThread& thread;
    ~Stop() {
      gate.Release();
      thread.Stop();
    }
  } stop{gate, thread};
  const engine::IndexCounters& c = db.shm->index().counters();
  const auto bounds = [&] { return engine::WriteStallBoundsFor(c.live_bytes.load(), kWriteStallFloorBytes); };
  REQUIRE(c.dead_bytes.load() > bounds().begin_bytes);
  thread.Start();
  // A catch-up pass without a target (an earlier stall's): it picks the
  // large segments and leaves each at its turn (no writes wait for it).
  thread.TriggerCatchUp();
  REQUIRE(gate.WaitEntered());
  REQUIRE(thread.catch_up_counts().started == 1);
  REQUIRE(thread.catch_up_counts().passes == 0);
  // The stall begins while that pass is ending.
  WriteStall stall(*db.shm, compactor, thread, kHourMs, kHourMs);
  REQUIRE(stall.Hold());
  gate.Release();
  bool held = true;
  // Each Hold waits at most one slice (10 ms) for a pass: bounded.
  for (int i = 0; i < 30000 && held; ++i) held = stall.Hold();
  REQUIRE_FALSE(held);
  // The stall ended released, by its own passes' progress: not disarmed.
  REQUIRE(c.dead_bytes.load() <= bounds().end_bytes);
  // It ends as soon as the pass's deletions show in the counters, which can
  // be before the pass itself is counted: wait for its end (bounded).
  for (int i = 0; i < 30000 && thread.catch_up_counts().progress == 0; ++i) thread.WaitForPass(thread.passes(), 10);
  CHECK(thread.catch_up_counts().progress >= 1);
  CHECK(db.shm->writer_metrics().compaction_stalls.load() == 1);
}

}  // namespace kingx
