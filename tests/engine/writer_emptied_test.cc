// Segments a write emptied, deleted as the write is published
// (engine/writer_emptied.cc): a large value's own segment goes with the write
// that overwrites or deletes it, before that write returns; a cut's pin keeps
// it for a dead-only pass; the key view's pin does not; a segment holding
// more than the killed record is left to compaction.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "engine/compaction.h"
#include "engine/compaction_policy.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/keyspace_support.h"
#include "tests/engine/support/model.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;

namespace {

bool SegmentExists(const std::string& dir, uint32_t id) {
  return std::filesystem::exists(dir + "/" + SegmentFileName(id));
}

// A sealed segment, other than `other`, holding one live record of at least
// `bytes` bytes and nothing else (a large value's own); 0 when there is none.
uint32_t SegmentOfValue(Writer& w, uint64_t bytes, uint32_t other = 0) {
  for (const SegmentStats& s : w.Stats().per_segment)
    if (s.id != other && !s.active && s.live_bytes >= bytes && s.bytes == kSegmentHeaderBytes + s.live_bytes)
      return s.id;
  return 0;
}

// Puts `value` (over a MiB) through Apply, then a small record that seals
// its segment (RotateActiveForShare); returns that segment's id.
uint32_t PutSealed(TestDb& db, const std::string& key, const std::string& value) {
  REQUIRE(db.Put(key, value).status.ok());
  REQUIRE(db.Put("small", "s").status.ok());
  const uint32_t seg = SegmentOfValue(db.writer(), value.size());
  REQUIRE(seg != 0);
  return seg;
}

Options BigSegments() {
  Options o;
  o.compression_level = 0;
  o.segment_bytes = 256 << 20;
  return o;
}

}  // namespace

TEST_CASE("a write that replaces or deletes a large value deletes its segment before it returns",
          "[engine][writer][compaction]") {
  TempDir dir;
  TestDb db(PosixEnv(), dir.path(), BigSegments());
  REQUIRE(db.Open().ok());
  const std::string big(3 << 19, 'b');
  // Through Apply (each value over a MiB ends up alone in its segment,
  // RotateActiveForShare) and through the large-value path.
  const uint32_t apply_seg = PutSealed(db, "apply", big);
  PutLarge(db, "large", big);
  const uint32_t large_seg = SegmentOfValue(db.writer(), big.size(), apply_seg);
  REQUIRE(large_seg != 0);
  const uint64_t emptied = db.writer().emptied_segments();

  REQUIRE(db.Put("apply", "now small").status.ok());
  CHECK_FALSE(SegmentExists(dir.path(), apply_seg));
  PutLarge(db, "large", std::string(3 << 19, 'c'));
  CHECK_FALSE(SegmentExists(dir.path(), large_seg));
  // Nothing left for a dead-only pass, and the accounting has neither.
  CHECK(db.writer().emptied_segments() == emptied);
  for (const SegmentStats& s : db.writer().Stats().per_segment) {
    CHECK(s.id != apply_seg);
    CHECK(s.id != large_seg);
  }
  CHECK(db.Get("apply").value() == "now small");
  CHECK(db.Get("large").value() == std::string(3 << 19, 'c'));
  const uint32_t again = SegmentOfValue(db.writer(), big.size());
  REQUIRE(again != 0);
  REQUIRE(db.Delete("large").status.ok());
  CHECK_FALSE(SegmentExists(dir.path(), again));

  REQUIRE(db.Open().ok());  // nothing reported missing, nothing back
  CHECK(db.writer().Stats().missing_segments == 0);
  CHECK(db.writer().Stats().corruptions == 0);
  CHECK(db.Get("apply").value() == "now small");
  CHECK(db.Get("large").status().Is(Code::kNotFound));
  CHECK(db.Get("small").value() == "s");
}

TEST_CASE("a large value's segment stays while a cut pins it, for a dead-only pass after the unpin",
          "[engine][writer][compaction][cut]") {
  TempDir dir;
  TestDb db(PosixEnv(), dir.path(), BigSegments());
  REQUIRE(db.Open().ok());
  const std::string big(3 << 19, 'b');
  const uint32_t seg = PutSealed(db, "big", big);
  auto cut = db.writer().PinSegments();
  REQUIRE(cut.ok());
  const uint64_t emptied = db.writer().emptied_segments();
  REQUIRE(db.Put("big", "small now").status.ok());
  CHECK(SegmentExists(dir.path(), seg));  // the backup reads it
  CHECK(db.writer().emptied_segments() == emptied + 1);
  db.writer().UnpinSegmentIds(cut->ids());
  Compactor c(db.writer(), UnthrottledCompaction(7));
  PassReport report;
  REQUIRE(c.RunOnce(&report, PassKind::kDeadOnly).ok());
  CHECK(report.deleted == 1);
  CHECK_FALSE(SegmentExists(dir.path(), seg));
  CHECK(db.Get("big").value() == "small now");
}

TEST_CASE("a segment holding more than the killed record is left to compaction",
          "[engine][writer][compaction]") {
  // Its other records may be tombstones that must stay: compaction decides.
  TempDir dir;
  TestDb db(PosixEnv(), dir.path(), BigSegments());
  REQUIRE(db.Open().ok());
  const std::string big(3 << 19, 'b');
  REQUIRE(db.Put("gone", "x").status.ok());
  REQUIRE(db.Delete("gone").status.ok());  // a tombstone in the segment that gets `big` next
  REQUIRE(db.Put("big", big).status.ok());
  REQUIRE(db.Put("small", "s").status.ok());  // rotates: the segment above is sealed
  uint32_t seg = 0;
  for (const SegmentStats& s : db.writer().Stats().per_segment)
    if (!s.active && s.live_bytes >= big.size()) seg = s.id;
  REQUIRE(seg != 0);
  const uint64_t emptied = db.writer().emptied_segments();
  REQUIRE(db.Put("big", "small now").status.ok());
  CHECK(SegmentExists(dir.path(), seg));
  CHECK(db.writer().emptied_segments() == emptied + 1);  // a dead-only pass follows
}

TEST_CASE("a large value's segment goes with its write while the key view's catch-up pins every segment",
          "[engine][writer][compaction][keyspace]") {
  // The view's job reads segments for tens of milliseconds after an open and
  // pins every one against compaction; a large value overwritten meanwhile
  // used to stay beside its replacement until the job ended.
  FaultInjectionEnv env;
  TempDir dir;
  RegionMem mem(64, (64 << 10) + 256);
  TestDb db(env, dir.path(), BigSegments());
  REQUIRE(db.Open().ok());
  const std::string big(3 << 19, 'b');
  REQUIRE(db.Put("big", big).status.ok());
  for (int i = 0; i < 20; ++i) REQUIRE(db.Put("k" + std::to_string(i), "v").status.ok());
  // The view's rebuild is held when it creates its first run file.
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, released = false;
  env.SetCreateHook([&](const std::string& path) {
    if (path.find("keys/") == std::string::npos || path.find("run-") == std::string::npos) return;
    std::unique_lock lock(mu);
    if (entered) return;
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return released; });
  });
  const uint32_t seg = SegmentOfValue(db.writer(), big.size());
  REQUIRE(seg != 0);
  REQUIRE(db.writer().StartKeyspace(mem.region(), SmallKeyspace(dir.path())).ok());
  {
    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(120), [&] { return entered; }));
  }
  REQUIRE(db.Put("big", "small now").status.ok());
  CHECK_FALSE(SegmentExists(dir.path(), seg));
  {
    std::lock_guard lock(mu);
    released = true;
    cv.notify_all();
  }
  REQUIRE(db.writer().WaitKeyspaceReady(20000).ok());
  env.SetCreateHook({});
  KeyLister lister(env, dir.path(), BigSegments(), db.index(), mem.region());
  const std::vector<ListedKey> keys = ListAll(lister, "", 1000);
  CHECK(keys.size() == 21);  // nothing lost from the view
  CHECK(db.Get("big").value() == "small now");
}

TEST_CASE("a one-record segment just under the 1 MiB floor is left to compaction; at the floor it goes with the write",
          "[engine][writer][compaction]") {
  // Below kDeleteScannedBytes a killed record's segment is ordinary dead
  // space for compaction's thresholds, not worth a deletion per write.
  TempDir dir;
  Options o = BigSegments();
  o.segment_bytes = 1 << 20;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  // What a record of key "v" adds to its segment beyond its value.
  REQUIRE(db.Put("v", std::string(1000, 'p')).status.ok());
  uint64_t overhead = 0;
  for (const SegmentStats& s : db.writer().Stats().per_segment)
    if (s.active) overhead = s.bytes - kSegmentHeaderBytes - 1000;
  REQUIRE(overhead > 0);
  for (const uint64_t file_bytes : {kDeleteScannedBytes - 1, kDeleteScannedBytes}) {
    INFO("segment file bytes " << file_bytes);
    // Alone in a segment of exactly file_bytes, sealed by the next write (it does not fit).
    const std::string value(file_bytes - kSegmentHeaderBytes - overhead, 'v');
    REQUIRE(db.Put("v", value).status.ok());
    REQUIRE(db.Put("next", std::string(100, 'n')).status.ok());
    uint32_t seg = 0;
    for (const SegmentStats& s : db.writer().Stats().per_segment)
      if (!s.active && s.bytes == file_bytes && s.live_bytes == file_bytes - kSegmentHeaderBytes) seg = s.id;
    REQUIRE(seg != 0);
    const uint64_t emptied = db.writer().emptied_segments();
    REQUIRE(db.Put("v", "small").status.ok());
    CHECK(SegmentExists(dir.path(), seg) == (file_bytes < kDeleteScannedBytes));
    CHECK(db.writer().emptied_segments() == emptied);  // nothing for a dead-only pass either way
    CHECK(db.Get("v").value() == "small");
  }
}

TEST_CASE("a segment sealed with nothing live is counted for the dead-only pass", "[engine][writer][compaction]") {
  // Writes killed its one large record while it was the active segment,
  // where no write deletes anything.
  TempDir dir;
  Options o = BigSegments();
  o.segment_bytes = 2 << 20;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  // Other live data, so that the active segment's share of it never seals it early (RotateActiveForShare).
  for (int i = 0; i < 5; ++i) REQUIRE(db.Put("bg" + std::to_string(i), std::string(3 << 19, 'g')).status.ok());
  REQUIRE(db.Put("a", std::string(5 << 18, 'a')).status.ok());
  REQUIRE(db.Delete("a").status.ok());
  uint32_t seg = 0;
  for (const SegmentStats& s : db.writer().Stats().per_segment)
    if (s.active) seg = s.id;
  const uint64_t emptied = db.writer().emptied_segments();
  REQUIRE(db.Put("b", std::string(1 << 20, 'b')).status.ok());  // does not fit: rotates
  for (const SegmentStats& s : db.writer().Stats().per_segment)
    if (s.id == seg) REQUIRE(!s.active);
  CHECK(db.writer().emptied_segments() == emptied + 1);
  Compactor c(db.writer(), UnthrottledCompaction(7));
  PassReport report;
  REQUIRE(c.RunOnce(&report, PassKind::kDeadOnly).ok());
  CHECK_FALSE(SegmentExists(dir.path(), seg));
  CHECK(db.Get("a").status().Is(Code::kNotFound));
  CHECK(db.Get("b").value() == std::string(1 << 20, 'b'));
}
