// The sorted key view when the writer outruns it (engine/keyspace.h, "lag"):
// a writer faster than the tail flushes is held back instead of losing the
// view; a view that fell behind all the same is caught up from the puts its
// runs miss (not rebuilt from every segment), also when compaction moved
// records meanwhile; a keyspace thread that cannot write runs never holds
// the writer back. Flushes are slowed or held through the file seam (the
// fault env's create hook on the keys/ directory).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <map>
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
  // Every run file the keyspace thread makes takes 20 ms: 32 puts are far quicker.
  env.SetCreateHook([](const std::string& path) {
    if (IsKeysPath(path)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  });
  std::map<std::string, ModelValue> model;
  for (int i = 0; i < 300; ++i) PutModelled(db, &model, "k" + std::to_string(i * 7919 % 1000), 1 + i % 50, 1);
  const KeyspaceCounters& c = mem.region().counters();
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
  // Declared first: the create hook below reads them until the writer is gone.
  std::atomic<bool> hold{false};
  std::atomic<int> held{0};
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

  // Hold the keyspace thread in the next run file it makes (a tail flush or a
  // merge: no job, so no segment pinned), then overflow the tails.
  struct Release {
    std::atomic<bool>& hold;
    ~Release() { hold = false; }  // also when a REQUIRE fails: the writer's close joins the thread
  } release{hold};
  hold = true;
  env.SetCreateHook([&](const std::string& path) {
    if (!IsKeysPath(path)) return;
    held.fetch_add(1);
    while (hold.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  int b = 0;
  for (; held.load() == 0; ++b) {
    REQUIRE(b < 1000);
    PutModelled(db, &model, "b" + std::to_string(b), 100, 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (const int end = b + 100; b < end; ++b) PutModelled(db, &model, "b" + std::to_string(b), 100, 1);
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
  REQUIRE(compactor.RunOnce().ok());
  REQUIRE(compactor.stats().records_moved > 0);
  REQUIRE(held.load() >= 1);
  hold = false;

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
