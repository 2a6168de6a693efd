// The sorted key view when the writer outruns it (engine/keyspace.h, "lag"):
// a writer faster than the tail flushes is held back instead of losing the
// view; a view that fell behind all the same is caught up from the puts its
// runs miss (not rebuilt from every segment), also when compaction moved
// records meanwhile; a keyspace thread that cannot write runs never holds
// the writer back. Flushes are slowed and checkpoints held through the file
// seam (the fault env's create and sync hooks on the keys/ directory).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "engine/compaction.h"
#include "engine/key_lister.h"
#include "engine/keyspace.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/keyspace_support.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;

namespace {

bool IsKeysPath(const std::string& path) { return path.find("/keys/") != std::string::npos; }
bool IsCheckpointFile(const std::string& path) { return path.ends_with("/keys/MANIFEST.tmp"); }

// Holds the keyspace thread as it creates the temporary file of a MANIFEST
// (a checkpoint) until Release or destruction. Only a complete view with no
// catch-up or rebuild under way writes a checkpoint (Keyspace::Checkpoint),
// so the thread held here pins no segment: a compaction meanwhile may move
// any record. (A gate on any file of keys/ may instead hold the catch-up
// that follows a loss as it writes a run, pinning every segment: compaction
// then picks nothing.) Declare it after the database, so that it lets the
// thread go before the writer's close joins it; its state outlives both.
class CheckpointGate {
 public:
  explicit CheckpointGate(FaultInjectionEnv& env) : env_(env) {
    env_.SetCreateHook([st = st_](const std::string& path) {
      if (!IsCheckpointFile(path)) return;
      st->held.fetch_add(1);
      while (st->hold.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
  }
  ~CheckpointGate() {
    Release();
    env_.SetCreateHook({});
  }
  CheckpointGate(const CheckpointGate&) = delete;
  CheckpointGate& operator=(const CheckpointGate&) = delete;
  int held() const { return st_->held.load(); }
  void Release() { st_->hold = false; }

 private:
  struct State {
    std::atomic<bool> hold{true};
    std::atomic<int> held{0};
  };
  FaultInjectionEnv& env_;
  std::shared_ptr<State> st_ = std::make_shared<State>();
};

// Parks the keyspace thread in the fdatasync of a checkpoint's MANIFEST
// (past CheckpointGate's point) until the view is lost, at most 30 s: the
// catch-up that follows then pins every segment while it writes its runs.
// A loaded machine makes this interleaving when a checkpoint's fdatasyncs
// outlast the puts that overflow the tails; a test makes it every time.
// Declare it after the database, as the gate.
class LossDuringCheckpoint {
 public:
  LossDuringCheckpoint(FaultInjectionEnv& env, const KeyspaceCounters& c) : env_(env) {
    env_.SetSyncHook([st = st_, &c, lost = c.lost.load()](const std::string& path) {
      if (!IsCheckpointFile(path)) return;
      st->parked.fetch_add(1);
      for (int i = 0; i < 30000 && c.lost.load() == lost; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
  }
  ~LossDuringCheckpoint() { env_.SetSyncHook({}); }
  LossDuringCheckpoint(const LossDuringCheckpoint&) = delete;
  LossDuringCheckpoint& operator=(const LossDuringCheckpoint&) = delete;
  int parked() const { return st_->parked.load(); }

 private:
  struct State {
    std::atomic<int> parked{0};
  };
  FaultInjectionEnv& env_;
  std::shared_ptr<State> st_ = std::make_shared<State>();
};

// Puts b<*next>, b<*next + 1>... one at a time (a millisecond apart: the
// keyspace thread's loop turns meanwhile) until done() holds.
void PutUntil(TestDb& db, std::map<std::string, ModelValue>* model, int* next, const std::function<bool()>& done) {
  for (int n = 0; !done(); ++n, ++*next) {
    REQUIRE(n < 5000);
    PutModelled(db, model, "b" + std::to_string(*next), 100, 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Puts b<*next>... until the gate holds the keyspace thread, then `more` of
// them: the 16-entry tails overflow.
void PutUntilHeldThenOverflow(TestDb& db, std::map<std::string, ModelValue>* model, const CheckpointGate& gate,
                              int more, int* next) {
  PutUntil(db, model, next, [&] { return gate.held() > 0; });
  for (const int end = *next + more; *next < end; ++*next)
    PutModelled(db, model, "b" + std::to_string(*next), 100, 1);
}

}  // namespace

TEST_CASE("a writer faster than the tail flushes is held back and the view is never lost",
          "[engine][keyspace][lag][regression]") {
  // Regression: a writer that filled both tails before the keyspace thread
  // had flushed one lost the view, and each rebuild from the segments that
  // followed fell behind again under the same writer: listing stayed 503.
  TempDir dir;
  FaultInjectionEnv env;
  Options o;
  o.segment_bytes = 64 << 10;
  RegionMem mem(16, (64 << 10) + 256);
  TestDb db(env, dir.path(), o);
  KeyspaceOptions ko = SmallKeyspace(dir.path());
  ko.lag_wait_ms = 5000;  // far longer than a slowed flush: the writer always waits for it
  REQUIRE(db.Open().ok());
  REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  // Every file the keyspace thread makes under keys/ takes 20 ms, and the
  // first one is held until the writer has waited for a flush: the writer
  // outruns the thread however slow its own puts are (an fdatasync on a
  // loaded disk can take longer than a flush).
  const KeyspaceCounters& c = mem.region().counters();
  env.SetCreateHook([&c, first = std::make_shared<std::atomic<bool>>(true)](const std::string& path) {
    if (!IsKeysPath(path)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!first->exchange(false)) return;
    for (int i = 0; i < 30000 && c.writer_waits.load() == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  std::map<std::string, ModelValue> model;
  for (int i = 0; i < 300; ++i) PutModelled(db, &model, "k" + std::to_string(i * 7919 % 1000), 1 + i % 50, 1);
  CHECK(c.lost.load() == 0);
  CHECK(c.writer_waits.load() > 0);
  env.SetCreateHook({});
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  KeyLister lister(PosixEnv(), dir.path(), o, db.index(), mem.region());
  CheckAgainstModel(lister, model, "", 1000);
  CheckAgainstModel(lister, model, "k1", 7);
}

TEST_CASE("a view that fell behind is caught up from the puts its runs miss, also across compaction",
          "[engine][keyspace][lag][regression]") {
  // Regression: a lost view was rebuilt from every segment. Under a steady
  // write load the rebuild of a large database fell behind again before it
  // ended, and the next one too: listing never came back.
  TempDir dir;
  FaultInjectionEnv env;
  Options o;
  o.segment_bytes = 64 << 10;  // sealed segments for compaction
  o.compression_level = 0;
  RegionMem mem(16, (64 << 10) + 256);
  TestDb db(env, dir.path(), o);
  KeyspaceOptions ko = SmallKeyspace(dir.path());
  ko.lag_wait_ms = 0;  // never hold the writer: the overflow below must lose the view
  REQUIRE(db.Open().ok());
  REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  std::map<std::string, ModelValue> model;
  for (int i = 0; i < 2000; ++i) {
    PutModelled(db, &model, "a" + std::to_string(i), 100, 1);
    if (i % 64 == 0) REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());  // may fall behind: let it catch up
  }
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  const KeyspaceCounters& c = mem.region().counters();
  const uint64_t rebuilds = c.rebuilds.load(), catch_ups = c.catch_ups.load(), lost = c.lost.load();

  // The view is lost first while the thread is in a checkpoint past the
  // gate's point, so that a catch-up (pinning every segment) runs before the
  // gate holds the thread: the gate must let it end.
  LossDuringCheckpoint park(env, c);
  int b = 0;
  PutUntil(db, &model, &b, [&] { return park.parked() > 0; });
  CheckpointGate gate(env);
  PutUntilHeldThenOverflow(db, &model, gate, 100, &b);
  REQUIRE(c.lost.load() > lost);
  // Meanwhile: overwrites, deletes, and a compaction that moves records of
  // both the old and the lost puts into new segments.
  for (int i = 0; i < 2000; i += 3) PutModelled(db, &model, "a" + std::to_string(i), 120, 1);
  for (int i = 1; i < b; i += 4) {
    const std::string k = "b" + std::to_string(i);
    REQUIRE(db.Delete(k).status.ok());
    model.erase(k);
  }
  CompactionOptions co;
  co.pick_all = true;
  co.rate_bytes_per_sec = 0;
  Compactor compactor(db.writer(), co);
  PassReport report;
  REQUIRE(compactor.RunOnce(&report).ok());
  REQUIRE(report.view_pinned == 0);  // the view is behind, and no catch-up runs yet
  REQUIRE(compactor.stats().records_moved > 0);
  REQUIRE(gate.held() >= 1);
  gate.Release();

  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  KeyLister lister(PosixEnv(), dir.path(), o, db.index(), mem.region());
  CheckAgainstModel(lister, model, "", 1000);
  CheckAgainstModel(lister, model, "b", 9);
  CHECK(c.rebuilds.load() == rebuilds);
  CHECK(c.catch_ups.load() > catch_ups);
}

TEST_CASE("a keyspace thread that cannot write runs never holds the writer back",
          "[engine][keyspace][lag]") {
  TempDir dir;
  FaultInjectionEnv env;
  Options o;
  RegionMem mem(16, (64 << 10) + 256);
  TestDb db(env, dir.path(), o);
  KeyspaceOptions ko = SmallKeyspace(dir.path());
  ko.lag_wait_ms = 300;
  REQUIRE(db.Open().ok());
  REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  // No run file can be made (a full disk under keys/ only).
  env.FailNth(FaultOp::kCreate, 1, Code::kNoSpace, /*forever=*/true, "/keys/");
  std::map<std::string, ModelValue> model;
  for (int i = 0; i < 200; ++i) PutModelled(db, &model, "k" + std::to_string(i), 10, 1);
  const KeyspaceCounters& c = mem.region().counters();
  CHECK(c.lost.load() >= 1);
  // A wait ends with the flush it waited for failing (then the thread backs
  // off and nobody waits): at most one wait per attempt to make a run.
  CHECK(c.writer_waits.load() <= env.Calls(FaultOp::kCreate, "/keys/") + 1);
  CHECK(mem.region().state() != KeyspaceState::kReady);

  env.ClearFaults();
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  KeyLister lister(PosixEnv(), dir.path(), o, db.index(), mem.region());
  CheckAgainstModel(lister, model, "", 1000);
}

TEST_CASE("a catch-up after a loss reads large-value and rotated segments, and survives a failed segment read",
          "[engine][keyspace][lag][faults]") {
  TempDir dir;
  FaultInjectionEnv env;
  Options o;
  o.segment_bytes = 64 << 10;
  o.compression_level = 0;
  RegionMem mem(16, (64 << 10) + 256);
  TestDb db(env, dir.path(), o);
  KeyspaceOptions ko = SmallKeyspace(dir.path());
  ko.lag_wait_ms = 0;
  REQUIRE(db.Open().ok());
  REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  std::map<std::string, ModelValue> model;
  for (int i = 0; i < 300; ++i) PutModelled(db, &model, "a" + std::to_string(i), 100, 1);
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  const KeyspaceCounters& c = mem.region().counters();
  const uint64_t lost = c.lost.load(), catch_ups = c.catch_ups.load();
  CheckpointGate gate(env);
  int b = 0;
  PutUntilHeldThenOverflow(db, &model, gate, 40, &b);
  REQUIRE(c.lost.load() > lost);
  // Missed by the view: values on both sides of the segment size (in the
  // active segment, and in segments of their own), and enough small puts
  // to rotate the active segment several times.
  PutModelled(db, &model, "m-small", 1000, 1);
  PutModelled(db, &model, "m-below-segment", (64 << 10) - 1024, 1);
  PutLargeModelled(db, &model, "m-large-below", (64 << 10) - 1024);
  PutLargeModelled(db, &model, "m-large-above", (1 << 20) + 1);
  for (int i = 0; i < 1500; ++i) PutModelled(db, &model, "r" + std::to_string(i), 200, 1);
  // The catch-up's first segment or hint mapping fails (the read path).
  env.FailNth(FaultOp::kMap, 1, Code::kIOError, /*forever=*/false, "/seg-");
  gate.Release();

  REQUIRE(db.writer().WaitKeyspaceReady(30000).ok());
  CHECK(env.FaultsFired() >= 1);
  CHECK(c.catch_ups.load() > catch_ups);
  KeyLister lister(PosixEnv(), dir.path(), o, db.index(), mem.region());
  CheckAgainstModel(lister, model, "", 1000);
  CheckAgainstModel(lister, model, "m-", 2);
}
