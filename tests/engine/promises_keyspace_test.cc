// README's kingx_keyspace_merges_total and kingx_keyspace_entries_repaired_total
// by value, through the shared counters /metrics renders
// (src/kv/promises_metrics_test.cc): key runs whose records compaction moved
// are merged, each stale entry repointed at its key's current record exactly
// once (as many as the records compaction moved: the filler's latest entry
// too, which the close writes from the tail), and the listing stays the
// model's.
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <string>
#include <thread>

#include "engine/compaction.h"
#include "engine/key_lister.h"
#include "engine/keyspace.h"
#include "engine/keyspace_region.h"
#include "tests/engine/support/keyspace_support.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;

TEST_CASE("a merge of runs compaction made stale repoints each entry once and is counted",
          "[engine][keyspace][metrics]") {
  TempDir dir;
  Options o;
  o.segment_bytes = 64 << 10;  // sealed segments for compaction
  o.compression_level = 0;
  constexpr uint32_t kTail = 64;
  constexpr int kKeys = kTail * 10;
  RegionMem mem(kTail, (64 << 10) + 256);
  const KeyspaceCounters& counters = mem.region().counters();
  TestDb db(PosixEnv(), dir.path(), o);
  KeyspaceOptions ko = SmallKeyspace(dir.path());
  ko.settle_ms = 1ull << 40;  // no merge while the keys go in: one run per tail flush
  ko.merge_width = 1000;
  REQUIRE(db.Open().ok());
  REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  std::map<std::string, ModelValue> model;
  for (int i = 0; i < kKeys; ++i) PutModelled(db, &model, "k" + std::to_string(100000 + i), 200, 1);
  // Overwrites of one filler key: the next tail (so the tenth full one is
  // written as a run) and a new active segment, so that every key's record
  // is in a sealed segment, and the filler's latest in the active one.
  for (int v = 1; v <= 12; ++v) PutModelled(db, &model, "zfill", 8 << 10, v);
  for (int waited = 0; counters.run_entries.load() < kKeys && waited < 6000; ++waited)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(counters.run_entries.load() == kKeys);
  CHECK(counters.merges.load() == 0);
  CHECK(counters.entries_repaired.load() == 0);
  uint64_t moved = 0;
  {
    CompactionOptions co;
    co.pick_all = true;
    co.rate_bytes_per_sec = 0;
    Compactor c(db.writer(), co);
    REQUIRE(c.RunOnce().ok());
    moved = c.stats().records_moved;
    REQUIRE(moved >= kKeys);  // every entry of every run now points into a deleted segment
  }
  db.Close();

  // Reopened with merges allowed: the stale runs are rewritten (the thread
  // may have begun before the close: a stale run is merged whether the view
  // is settled or not), each entry repointed at the record compaction wrote
  // for its key.
  ko = SmallKeyspace(dir.path());
  REQUIRE(db.Open().ok());
  REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  for (int waited = 0; counters.entries_repaired.load() < moved && waited < 6000; ++waited)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  INFO("entries repaired " << counters.entries_repaired.load() << ", merges " << counters.merges.load());
  CHECK(counters.entries_repaired.load() == moved);
  CHECK(counters.merges.load() > 0);
  KeyLister lister(PosixEnv(), dir.path(), o, db.index(), mem.region());
  CheckAgainstModel(lister, model, "", 1000);
  // Listing and further merges of fresh entries repair nothing more.
  db.Close();
  REQUIRE(db.Open().ok());
  REQUIRE(db.writer().StartKeyspace(mem.region(), ko).ok());
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  KeyLister again(PosixEnv(), dir.path(), o, db.index(), mem.region());
  CheckAgainstModel(again, model, "", 1000);
  CHECK(counters.entries_repaired.load() == moved);
}
