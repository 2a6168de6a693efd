// Small sealed segments merged by compaction (engine/compaction_policy.h,
// PickSegments): a value staged whole gets a segment file of its own, and
// compaction merges such files into full segments, so that the number of
// segment files follows the bytes stored, not the number of values.
#include <catch2/catch.hpp>

#include <string>

#include "engine/compaction.h"
#include "engine/compaction_policy.h"
#include "tests/engine/support/model.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;

namespace {

std::string Key(int i) { return "large-" + std::to_string(i); }

void CheckAll(TestDb& db, int count) {
  for (int i = 0; i < count; ++i) {
    auto got = db.Get(Key(i));
    REQUIRE(got.ok());
    uint64_t version = 0;
    REQUIRE(CheckValue(Key(i), got.value(), &version));
    REQUIRE(version == static_cast<uint64_t>(i));
  }
}

// Stages `count` values of value_bytes each, then compacts until a pass
// picks nothing; the segment files must then be as many as the bytes need.
void StageThenCompact(int count, size_t value_bytes, uint64_t segment_bytes) {
  TempDir dir;
  Options o;
  o.compression_level = 0;
  o.segment_bytes = segment_bytes;
  TestDb db(PosixEnv(), dir.path(), o);
  REQUIRE(db.Open().ok());
  for (int i = 0; i < count; ++i) PutLarge(db, Key(i), MakeValue(Key(i), static_cast<uint64_t>(i), value_bytes, false));
  // One file per value so far.
  REQUIRE(SegmentFiles(dir.path()).size() >= static_cast<size_t>(count));

  Compactor c(db.writer(), UnthrottledCompaction(256));
  int passes = 0;
  for (PassReport r; passes < 50; ++passes) {
    REQUIRE(c.RunOnce(&r).ok());
    if (r.inputs == 0) break;
  }
  REQUIRE(passes < 50);
  const WriterStats st = db.writer().Stats();
  // An output is cut before the record that would take it past
  // segment_bytes: each full one holds more than segment_bytes minus one
  // record. Beyond them: the small ones left (at most the bound), the
  // active segment, and the last output of a pass.
  const uint64_t record_bytes = value_bytes + 64;
  const uint64_t bound = st.live_bytes / (segment_bytes - record_bytes) + 1 + kMaxSmallSegments + 2;
  INFO("values " << count << " of " << value_bytes << " B, segment " << segment_bytes << " B, passes " << passes
                 << ", live bytes " << st.live_bytes << ", segment files " << SegmentFiles(dir.path()).size()
                 << ", bound " << bound);
  REQUIRE(SegmentFiles(dir.path()).size() <= bound);
  REQUIRE(st.segments <= bound);
  CheckAll(db, count);
  REQUIRE(db.Open().ok());
  CheckAll(db, count);
  REQUIRE(SegmentFiles(dir.path()).size() <= bound);
}

}  // namespace

TEST_CASE("thousands of values staged whole end up in as many segment files as their bytes need",
          "[engine][compaction][merge]") {
  StageThenCompact(3000, 40 << 10, 512 << 10);
}

TEST_CASE("values just over 1 MiB share segment files once compaction has run", "[engine][compaction][merge]") {
  StageThenCompact(120, (1 << 20) + 1, 8 << 20);
}
