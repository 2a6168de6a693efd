// The compaction policy (engine/compaction_policy.h) as pure functions: which
// segments a pass picks and in which order, and when a tombstone may go. No
// files, no writer.
#include "engine/compaction_policy.h"

#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/record.h"

using namespace kingx::engine;

namespace {

constexpr uint64_t kMiB = 1 << 20;

SegmentStats Seg(uint32_t id, uint64_t live, uint64_t dead, bool active = false) {
  SegmentStats s;
  s.id = id;
  s.live_bytes = live;
  s.dead_bytes = dead;
  s.bytes = kSegmentHeaderBytes + live + dead;
  s.active = active;
  return s;
}

std::map<uint32_t, SegmentStats> Segs(std::initializer_list<SegmentStats> list) {
  std::map<uint32_t, SegmentStats> m;
  for (const SegmentStats& s : list) m[s.id] = s;
  return m;
}

PickOptions ThresholdOnly(double ratio = 0.5) {
  PickOptions o;
  o.dead_ratio = ratio;
  o.max_dead_fraction = 0;
  return o;
}

std::vector<uint32_t> Ids(const std::vector<PickedSegment>& picked) {
  std::vector<uint32_t> ids;
  for (const PickedSegment& p : picked) ids.push_back(p.stats.id);
  return ids;
}

TEST_CASE("segments whose dead fraction reaches the threshold are picked, others are not",
          "[engine][compaction_policy]") {
  const auto segs = Segs({Seg(1, 4 * kMiB, 6 * kMiB), Seg(2, 6 * kMiB, 4 * kMiB), Seg(3, 5 * kMiB, 5 * kMiB)});
  CHECK(Ids(PickSegments(segs, {}, {}, ThresholdOnly(0.5))) == std::vector<uint32_t>{1});
  // 5/10 MiB plus a header is just below one half.
  CHECK(Ids(PickSegments(segs, {}, {}, ThresholdOnly(0.49))) == std::vector<uint32_t>{1, 3});
}

TEST_CASE("the active segment and skipped segments are never picked", "[engine][compaction_policy]") {
  const auto segs = Segs({Seg(1, 0, 10 * kMiB, true), Seg(2, 0, 10 * kMiB), Seg(3, 1, 10 * kMiB)});
  CHECK(Ids(PickSegments(segs, {2}, {}, ThresholdOnly())) == std::vector<uint32_t>{3});
  PickOptions all = ThresholdOnly();
  all.pick_all = true;
  CHECK(Ids(PickSegments(segs, {3}, {}, all)) == std::vector<uint32_t>{2});
}

TEST_CASE("the active segment is sealed first when it would be picked and holds at least the minimum",
          "[engine][compaction_policy]") {
  const PickOptions o = ThresholdOnly();
  // Half dead, big enough: sealed.
  CHECK(SealActiveFirst(Seg(1, 3 * kMiB, 5 * kMiB, true), kMiB, o));
  // Below the threshold: left alone, unless space is low or every segment is wanted.
  CHECK_FALSE(SealActiveFirst(Seg(1, 6 * kMiB, 2 * kMiB, true), kMiB, o));
  PickOptions low = o;
  low.low_space = true;
  CHECK(SealActiveFirst(Seg(1, 6 * kMiB, 2 * kMiB, true), kMiB, low));
  PickOptions all = o;
  all.pick_all = true;
  CHECK(SealActiveFirst(Seg(1, 6 * kMiB, 2 * kMiB, true), kMiB, all));
  // Nothing dead, too small, or not the active segment: never.
  CHECK_FALSE(SealActiveFirst(Seg(1, 8 * kMiB, 0, true), kMiB, all));
  CHECK_FALSE(SealActiveFirst(Seg(1, kMiB / 8, kMiB / 4, true), kMiB, low));
  CHECK_FALSE(SealActiveFirst(Seg(1, 3 * kMiB, 5 * kMiB, false), kMiB, o));
}

TEST_CASE("pick_all takes every sealed segment, even one with nothing dead", "[engine][compaction_policy]") {
  const auto segs = Segs({Seg(1, 10 * kMiB, 0), Seg(2, 9 * kMiB, 1 * kMiB), Seg(3, 1, 1, true)});
  PickOptions o = ThresholdOnly();
  o.pick_all = true;
  const auto ids = Ids(PickSegments(segs, {}, {}, o));
  CHECK(std::set<uint32_t>(ids.begin(), ids.end()) == std::set<uint32_t>{1, 2});
}

TEST_CASE("pick_reclaimable takes every sealed segment with reclaimable bytes and none without",
          "[engine][compaction_policy]") {
  // Fully live; a tenth dead (below the threshold); all of its dead bytes
  // tombstones that must stay; one dead byte; the active segment.
  const auto segs = Segs({Seg(1, 10 * kMiB, 0), Seg(2, 9 * kMiB, 1 * kMiB), Seg(3, 9 * kMiB, 1 * kMiB),
                          Seg(4, 10 * kMiB, 1), Seg(5, 1, 1, true)});
  const std::map<uint32_t, uint64_t> kept{{3, 1 * kMiB}};
  PickOptions o = ThresholdOnly();
  o.pick_reclaimable = true;
  const auto picked = PickSegments(segs, {}, kept, o);
  const auto ids = Ids(picked);
  CHECK(std::set<uint32_t>(ids.begin(), ids.end()) == std::set<uint32_t>{2, 4});
  for (const PickedSegment& p : picked) CHECK(p.why == PickReason::kReclaimable);
  CHECK(std::string(PickReasonName(PickReason::kReclaimable)) == "reclaimable");
  // The active segment: sealed once it holds a dead byte, never without.
  CHECK(SealActiveFirst(Seg(1, 8 * kMiB, 1, true), kMiB, o));
  CHECK_FALSE(SealActiveFirst(Seg(1, 8 * kMiB, 0, true), kMiB, o));
}

TEST_CASE("a segment with no live record is picked whatever its ratio, unless its dead bytes must stay",
          "[engine][compaction_policy]") {
  // 1 MiB of tombstones in a 1 MiB segment: ratio ~1 anyway; use a high
  // threshold to show that emptiness alone decides.
  auto segs = Segs({Seg(1, 0, 1 * kMiB), Seg(2, 0, 0)});
  CHECK(Ids(PickSegments(segs, {}, {}, ThresholdOnly(1.5))) == std::vector<uint32_t>{1, 2});
  // All of segment 1's dead bytes are tombstones a previous pass had to keep.
  const std::map<uint32_t, uint64_t> kept{{1, 1 * kMiB}};
  CHECK(Ids(PickSegments(segs, {}, kept, ThresholdOnly(1.5))) == std::vector<uint32_t>{2});
}

TEST_CASE("kept tombstone bytes do not count as reclaimable", "[engine][compaction_policy]") {
  const auto segs = Segs({Seg(1, 4 * kMiB, 6 * kMiB)});
  const std::map<uint32_t, uint64_t> kept{{1, 3 * kMiB}};
  const auto picked = PickSegments(segs, {}, kept, ThresholdOnly(0.5));
  CHECK(picked.empty());  // 3 MiB reclaimable of 10 MiB
  const auto low = PickSegments(segs, {}, kept, ThresholdOnly(0.25));
  REQUIRE(low.size() == 1);
  CHECK(low[0].reclaimable == 3 * kMiB);
}

TEST_CASE("low on space, any segment with reclaimable bytes is picked", "[engine][compaction_policy]") {
  const auto segs = Segs({Seg(1, 9 * kMiB, 1 * kMiB), Seg(2, 10 * kMiB, 0)});
  PickOptions o = ThresholdOnly(0.5);
  CHECK(PickSegments(segs, {}, {}, o).empty());
  o.low_space = true;
  CHECK(Ids(PickSegments(segs, {}, {}, o)) == std::vector<uint32_t>{1});
}

TEST_CASE("picked segments come most profitable first", "[engine][compaction_policy]") {
  // Profit = reclaimable / (live + 1).
  const auto segs = Segs({Seg(1, 4 * kMiB, 6 * kMiB), Seg(2, 1 * kMiB, 9 * kMiB), Seg(3, 0, 2 * kMiB),
                          Seg(4, 2 * kMiB, 8 * kMiB)});
  CHECK(Ids(PickSegments(segs, {}, {}, ThresholdOnly(0.5))) == std::vector<uint32_t>{3, 2, 4, 1});
}

TEST_CASE("the space bound adds the most profitable segments below the threshold until the dead fraction "
          "falls under it",
          "[engine][compaction_policy]") {
  // Ten segments at 30% dead, threshold 0.5: nothing passes the threshold.
  // The whole is 30% dead; a bound of 0.25 needs enough of them compacted to
  // bring the remaining dead bytes to at most a quarter of all bytes.
  std::map<uint32_t, SegmentStats> segs;
  for (uint32_t id = 1; id <= 10; ++id) segs[id] = Seg(id, 7 * kMiB, 3 * kMiB);
  // A slightly more profitable one is taken first.
  segs[7] = Seg(7, 6 * kMiB + 512 * 1024, 3 * kMiB + 512 * 1024);
  PickOptions o = ThresholdOnly(0.5);
  CHECK(PickSegments(segs, {}, {}, o).empty());
  o.max_dead_fraction = 0.25;
  const auto picked = PickSegments(segs, {}, {}, o);
  REQUIRE(!picked.empty());
  CHECK(picked[0].stats.id == 7);
  // The bound is on the projection: the dead bytes left over all bytes left.
  uint64_t live = 0, dead = 0;
  for (const auto& [id, s] : segs) {
    live += s.live_bytes;
    dead += s.dead_bytes;
  }
  uint64_t reclaimed = 0;
  for (const PickedSegment& p : picked) reclaimed += p.reclaimable;
  auto within_bound = [&](uint64_t left) {
    return static_cast<double>(left) <= 0.25 * static_cast<double>(live + left);
  };
  CHECK(within_bound(dead - reclaimed));
  // One segment fewer would not have been enough: the bound takes no more
  // than it needs.
  CHECK_FALSE(within_bound(dead - reclaimed + picked.back().reclaimable));
}

TEST_CASE("the space bound takes nothing once the threshold's picks bring the dead fraction under it",
          "[engine][compaction_policy]") {
  // Segment 1 alone brings the fraction under the bound.
  const auto segs = Segs({Seg(1, 1 * kMiB, 9 * kMiB), Seg(2, 9 * kMiB, 1 * kMiB), Seg(3, 9 * kMiB, 1 * kMiB)});
  PickOptions o = ThresholdOnly(0.5);
  o.max_dead_fraction = 0.25;
  CHECK(Ids(PickSegments(segs, {}, {}, o)) == std::vector<uint32_t>{1});
}

TEST_CASE("with a reclaimable target the space bound goes on below the dead fraction, over the segments worth "
          "copying, until the target is met",
          "[engine][compaction_policy]") {
  // Under a tenth reclaimable in all: nothing is picked without a target.
  // 1 and 4 free a seventh and a ninth of their bytes; 2 a twentieth (it
  // would copy 18 bytes per byte freed); 5 a seventh, but holds more than a
  // quarter of the live data (its copy would stand beside it); 3 nothing.
  const auto segs = Segs({Seg(1, 9 * kMiB, 3 * kMiB / 2), Seg(2, 9 * kMiB, kMiB / 2), Seg(3, 10 * kMiB, 0),
                          Seg(4, 9 * kMiB, 6 * kMiB / 5), Seg(5, 14 * kMiB, 2 * kMiB)});
  PickOptions o = ThresholdOnly(0.5);
  o.max_dead_fraction = 0.1;
  CHECK(PickSegments(segs, {}, {}, o).empty());
  o.max_reclaimable_bytes = 4 * kMiB;  // the most profitable one is enough
  CHECK(Ids(PickSegments(segs, {}, {}, o)) == std::vector<uint32_t>{1});
  // As far as it can: the worthwhile ones only, the target not met.
  o.max_reclaimable_bytes = 0;
  CHECK(Ids(PickSegments(segs, {}, {}, o)) == std::vector<uint32_t>{1, 4});
  for (const PickedSegment& p : PickSegments(segs, {}, {}, o)) CHECK(p.why == PickReason::kTarget);
}

TEST_CASE("a space bound that stops at the target takes nothing once the target is met, and no more than it "
          "needs, above its fraction",
          "[engine][compaction_policy]") {
  // 9.5 MiB of 45.5 reclaimable (a fifth): above a tenth; no threshold pick.
  const auto segs = Segs({Seg(1, 9 * kMiB, 3 * kMiB), Seg(4, 9 * kMiB, 5 * kMiB / 2), Seg(6, 9 * kMiB, 2 * kMiB),
                          Seg(7, 9 * kMiB, 2 * kMiB)});
  PickOptions o = ThresholdOnly(0.5);
  o.max_dead_fraction = 0.1;
  o.max_reclaimable_bytes = 10 * kMiB;  // met already
  CHECK(Ids(PickSegments(segs, {}, {}, o)) == std::vector<uint32_t>{1, 4});  // down to the tenth
  o.stop_at_target = true;
  CHECK(PickSegments(segs, {}, {}, o).empty());
  o.max_reclaimable_bytes = 7 * kMiB;  // the most profitable one is enough
  CHECK(Ids(PickSegments(segs, {}, {}, o)) == std::vector<uint32_t>{1});
  CHECK(PickSegments(segs, {}, {}, o)[0].why == PickReason::kSpaceBound);
  // Past the fraction, the target's own picks as before.
  o.max_reclaimable_bytes = 0;
  CHECK(Ids(PickSegments(segs, {}, {}, o)) == std::vector<uint32_t>{1, 4, 6, 7});
}

TEST_CASE("a space bound that stops at the target counts the active segment's reclaimable bytes against it",
          "[engine][compaction_policy]") {
  // The write stall's target is on every segment's reclaimable bytes. The
  // sealed ones hold 5.5 MiB (within a target of 6 MiB), the active one 2
  // MiB more: measured on the sealed ones alone the pass picked nothing, and
  // the stall, seeing 7.5 MiB, took that as compaction having nothing left.
  const auto segs = Segs({Seg(1, 9 * kMiB, 3 * kMiB), Seg(4, 9 * kMiB, 5 * kMiB / 2), Seg(8, kMiB, 2 * kMiB, true)});
  PickOptions o = ThresholdOnly(0.5);
  o.max_dead_fraction = 0.1;
  o.stop_at_target = true;
  o.max_reclaimable_bytes = 6 * kMiB;
  CHECK(Ids(PickSegments(segs, {}, {}, o)) == std::vector<uint32_t>{1});  // the most profitable is enough
  o.max_reclaimable_bytes = 15 * kMiB / 2;  // met, the active segment's counted
  CHECK(PickSegments(segs, {}, {}, o).empty());
}

TEST_CASE("a segment is worth copying for the target when a tenth of it is reclaimable and it holds at most a "
          "quarter of the live data",
          "[engine][compaction_policy]") {
  // file bytes, its live bytes, its reclaimable bytes, the database's live bytes
  CHECK(TargetCopyWorthIt(1000, 900, 100, 4000));
  CHECK_FALSE(TargetCopyWorthIt(1000, 901, 99, 4000));   // under a tenth
  CHECK_FALSE(TargetCopyWorthIt(1000, 900, 100, 3599));  // more than a quarter of the live data
  // A copied large value beside a few dead bytes: 2 MiB copied to free 445 B.
  CHECK_FALSE(TargetCopyWorthIt(2101934 + 445 + 64, 2101934, 445, 16 * kMiB));
}

TEST_CASE("beside a write stall a catch-up pass's space bound takes a segment holding more than a quarter of the "
          "live data only when its copy fits beside what stays reclaimable and staged",
          "[engine][compaction_policy]") {
  // 6 MiB live (a quarter: 1.5 MiB), 1.3 MiB reclaimable of 7.3 sealed: above
  // a catch-up pass's tenth, so its space bound picks, 1 first (most
  // profitable). 1 holds 2.5 MiB live: its copy beside the 1.3 MiB
  // reclaimable and the staged bytes is within the begin bound (3 MiB) plus
  // the quarter (4.5 MiB) while about 0.7 MiB at most are staged.
  const auto segs = Segs({Seg(1, 5 * kMiB / 2, kMiB), Seg(2, kMiB, 3 * kMiB / 10), Seg(3, 5 * kMiB / 2, 0),
                          Seg(4, 0, 0, true)});
  PickOptions o = ThresholdOnly(0.5);
  o.max_dead_fraction = 0.1;
  o.max_reclaimable_bytes = 0;
  o.stop_at_target = true;
  // Without a write stall (kingx-tool): as any other.
  CHECK(Ids(PickSegments(segs, {}, {}, o)) == std::vector<uint32_t>{1, 2});
  o.large_copies = LargeCopies::kIfFits;
  o.stall_floor_bytes = kMiB;
  const uint64_t fits_staged = (3 * kMiB + 3 * kMiB / 2) - (kMiB + 3 * kMiB / 10) - 5 * kMiB / 2;
  o.staged_bytes = fits_staged;
  CHECK(Ids(PickSegments(segs, {}, {}, o)) == std::vector<uint32_t>{1, 2});
  o.staged_bytes = fits_staged + 1;  // 1's copy would pass the room: 2 alone (under a quarter)
  CHECK(Ids(PickSegments(segs, {}, {}, o)) == std::vector<uint32_t>{2});
  // The active segment's dead bytes stand beside the copy too.
  auto with_active_dead = segs;
  with_active_dead[4] = Seg(4, 0, 1, true);
  o.staged_bytes = fits_staged;
  CHECK(Ids(PickSegments(with_active_dead, {}, {}, o)) == std::vector<uint32_t>{2});
  // Above the stall's end bound (1.5 MiB) it is copied all the same: a stall
  // whose pass made no progress there would end and let writes go unheld.
  with_active_dead[4] = Seg(4, 0, 3 * kMiB / 2 - (kMiB + 3 * kMiB / 10) + 1, true);  // 1.5 MiB + 1 B reclaimable
  o.staged_bytes = fits_staged + 1;
  CHECK(Ids(PickSegments(with_active_dead, {}, {}, o)) == std::vector<uint32_t>{1, 2});
}

TEST_CASE("a large copy is needed while more than the stall's end bound is reclaimable",
          "[engine][compaction_policy]") {
  // the database's live bytes, reclaimable, the stall's floor
  CHECK_FALSE(LargeCopyNeeded(4000, 1000, 1));
  CHECK(LargeCopyNeeded(4000, 1001, 1));
  CHECK_FALSE(LargeCopyNeeded(4000, 1 << 19, 1 << 20));  // the floor's end bound: half a MiB
  CHECK(LargeCopyNeeded(4000, (1 << 19) + 1, 1 << 20));
}

TEST_CASE("the write stall counts a copy in flight beyond a quarter of the live data", "[engine][compaction_policy]") {
  // the copy's bytes, the database's live bytes
  CHECK(CopyBeyondShare(0, 4000) == 0);
  CHECK(CopyBeyondShare(1000, 4000) == 0);  // a quarter: within the arithmetic's share
  CHECK(CopyBeyondShare(1001, 4000) == 1);
  CHECK(CopyBeyondShare(3000, 4000) == 2000);
  CHECK(CopyBeyondShare(10, 0) == 10);  // an emptied database: all of it
}

TEST_CASE("a large copy fits while the reclaimable and staged bytes and the copy are within the stall's begin bound "
          "plus a quarter of the live data",
          "[engine][compaction_policy]") {
  // segment's live bytes, the database's live bytes, reclaimable, staged, the stall's floor
  CHECK(LargeCopyFits(1000, 4000, 3000, 3000, 1));  // a quarter fits whatever stands beside it
  CHECK(LargeCopyFits(1001, 4000, 1999, 0, 1));     // 1999 + 1001 = 3000 = 2000 + 1000
  CHECK_FALSE(LargeCopyFits(1001, 4000, 1999, 1, 1));
  CHECK_FALSE(LargeCopyFits(1001, 4000, 2000, 0, 1));
  CHECK_FALSE(LargeCopyFits(2500, 4000, 3100, 0, 1));  // more reclaimable than the room
  // A database under twice the floor: the floor's begin bound.
  CHECK(LargeCopyFits(3000, 4000, (1 << 20) - 2000, 0, 1 << 20));
  CHECK_FALSE(LargeCopyFits(3001, 4000, (1 << 20) - 2000, 0, 1 << 20));
}

TEST_CASE("a segment's guard is its seq floor, raised for this process's outputs", "[engine][compaction_policy]") {
  SegmentOrigin o;
  o.readable = true;
  o.valid = true;
  o.seed = 77;
  o.seq_floor = 100;
  CHECK(SegmentGuard(o, 77) == 100);
  o.output_start_seq = 250;
  CHECK(SegmentGuard(o, 77) == 250);
  o.output_start_seq = 50;
  CHECK(SegmentGuard(o, 77) == 100);
}

TEST_CASE("a segment of another database guards nothing; an unreadable or damaged one guards everything",
          "[engine][compaction_policy]") {
  SegmentOrigin other_db;
  other_db.readable = true;
  other_db.valid = true;
  other_db.seed = 1;
  other_db.seq_floor = 5;
  CHECK(SegmentGuard(other_db, 2) == kNoGuard);
  SegmentOrigin bad_header;
  bad_header.readable = true;  // recovery still salvages its records
  CHECK(SegmentGuard(bad_header, 2) == 0);
  SegmentOrigin unreadable;
  CHECK(SegmentGuard(unreadable, 2) == 0);
  unreadable.output_start_seq = 40;
  CHECK(SegmentGuard(unreadable, 2) == 40);
}

TEST_CASE("a tombstone may go only when every other segment's guard is above its seq",
          "[engine][compaction_policy]") {
  TombstoneGuards g;
  g.Add(1, 10);  // the tombstone's own segment, the smallest guard
  g.Add(2, 50);
  g.Add(3, 80);
  CHECK(g.NothingOlderElsewhere(1, 49));
  CHECK_FALSE(g.NothingOlderElsewhere(1, 50));  // segment 2 may hold seq 50
  // In another segment, segment 1's guard counts.
  CHECK_FALSE(g.NothingOlderElsewhere(2, 49));
  CHECK(g.NothingOlderElsewhere(2, 9));
}

TEST_CASE("with no other segment, a tombstone may always go", "[engine][compaction_policy]") {
  TombstoneGuards g;
  g.Add(4, 10);
  CHECK(g.NothingOlderElsewhere(4, 1000));
  TombstoneGuards none;
  CHECK(none.NothingOlderElsewhere(4, 1000));
}

}  // namespace

TEST_CASE("each pick names the rule that took it", "[engine][compaction_policy]") {
  // 1 empty, 2 past the threshold, 3 for the space bound (the sealed
  // segments stay more than a tenth reclaimable without it), 4 only for a
  // catch-up pass's target, 5 and 6 small ones merged, 7 not picked.
  const auto segs = Segs({Seg(1, 0, kMiB), Seg(2, kMiB, 2 * kMiB), Seg(3, 8 * kMiB, 7 * kMiB),
                          Seg(4, 12 * kMiB, 2 * kMiB), Seg(5, 1000, 0), Seg(6, 2000, 0), Seg(7, 30 * kMiB, 0)});
  PickOptions o = ThresholdOnly(0.5);
  o.max_dead_fraction = 0.1;
  o.max_reclaimable_bytes = 0;
  o.segment_bytes = 16 * kMiB;
  o.max_small_segments = 1;
  std::map<uint32_t, PickReason> why;
  for (const PickedSegment& p : PickSegments(segs, {}, {}, o)) why[p.stats.id] = p.why;
  CHECK(why == std::map<uint32_t, PickReason>{{1, PickReason::kEmpty},
                                              {2, PickReason::kThreshold},
                                              {3, PickReason::kSpaceBound},
                                              {4, PickReason::kTarget},
                                              {5, PickReason::kMergeSmall},
                                              {6, PickReason::kMergeSmall}});
  CHECK(std::string(PickReasonName(PickReason::kTarget)) == "stall-target");
  o.low_space = true;
  CHECK(PickSegments(segs, {}, {}, o)[2].why == PickReason::kLowSpace);
  o.pick_all = true;
  for (const PickedSegment& p : PickSegments(segs, {}, {}, o)) CHECK(p.why == PickReason::kPickAll);
}

TEST_CASE("small sealed segments are merged once they number more than the bound, smallest first",
          "[engine][compaction_policy]") {
  PickOptions o = ThresholdOnly();
  o.segment_bytes = 8 * kMiB;
  o.max_small_segments = 4;
  // Four small, fully live segments (one value each) and a full one: within the bound.
  std::map<uint32_t, SegmentStats> segs;
  segs[1] = Seg(1, 8 * kMiB, 0);
  for (uint32_t id = 2; id <= 5; ++id) segs[id] = Seg(id, kMiB + id, 0);
  CHECK(PickSegments(segs, {}, {}, o).empty());
  // Seven: the smallest five go (two, half the bound, are left), none of the full ones.
  for (uint32_t id = 6; id <= 8; ++id) segs[id] = Seg(id, kMiB - id, 0);
  CHECK(Ids(PickSegments(segs, {}, {}, o)) == std::vector<uint32_t>{8, 7, 6, 2, 3});
  // The active segment and skipped segments are never merged.
  segs[8].active = true;
  CHECK(Ids(PickSegments(segs, {7}, {}, o)) == std::vector<uint32_t>{6, 2, 3});
  // Without a segment size (or with pick_all, which takes everything) there is no merging.
  o.segment_bytes = 0;
  CHECK(PickSegments(segs, {}, {}, o).empty());
}

TEST_CASE("small sealed segments holding a segment's worth of live bytes are merged all at once",
          "[engine][compaction_policy]") {
  PickOptions o = ThresholdOnly();
  o.segment_bytes = 8 * kMiB;
  o.max_small_segments = 16;
  std::map<uint32_t, SegmentStats> segs;
  for (uint32_t id = 1; id <= 3; ++id) segs[id] = Seg(id, 3 * kMiB, 0);
  segs[4] = Seg(4, 5 * kMiB, 0);  // not small: at least half a segment
  CHECK(Ids(PickSegments(segs, {}, {}, o)) == std::vector<uint32_t>{1, 2, 3});
  // A segment the threshold picks is not picked twice, and comes first.
  segs[5] = Seg(5, kMiB, 2 * kMiB);
  CHECK(Ids(PickSegments(segs, {}, {}, o)) == std::vector<uint32_t>{5, 1, 2, 3});
}

TEST_CASE("the active segment is sealed once it holds half the live data and is half dead, however large "
          "segments are",
          "[engine][compaction_policy]") {
  constexpr uint64_t kSeg = 256 * kMiB;
  // 8 MiB live in the database: the minimum follows it, not a quarter of 256 MiB.
  CHECK(ActiveSealMinBytes(kSeg, 8 * kMiB) == 4 * kMiB);
  CHECK(ActiveSealMinBytes(kSeg, 1000 * kMiB) == kSeg / 4);
  CHECK(ActiveSealMinBytes(kSeg, 0) == kMiB);
  CHECK(ActiveSealMinBytes(64 << 10, 0) == 16 << 10);
  PickOptions o = ThresholdOnly();
  CHECK(SealActiveFirst(Seg(9, 2 * kMiB, 3 * kMiB, true), ActiveSealMinBytes(kSeg, 8 * kMiB), o));
  CHECK_FALSE(SealActiveFirst(Seg(9, 1 * kMiB, 2 * kMiB, true), ActiveSealMinBytes(kSeg, 8 * kMiB), o));
  CHECK_FALSE(SealActiveFirst(Seg(9, 3 * kMiB, 2 * kMiB, true), ActiveSealMinBytes(kSeg, 8 * kMiB), o));
}

TEST_CASE("the writer rotates once the active segment would hold more than a quarter of the live data and holds a "
          "MiB",
          "[engine][compaction_policy]") {
  constexpr uint64_t kSeg = 256 * kMiB;
  constexpr uint64_t kRec = 100;
  CHECK(RotateActiveForShare(kMiB, kMiB, kRec, 4 * kMiB - 4, kSeg));         // over a quarter
  CHECK_FALSE(RotateActiveForShare(2 * kMiB, kMiB - kRec, kRec, 4 * kMiB, kSeg));  // exactly a quarter with it
  CHECK(RotateActiveForShare(2 * kMiB, kMiB, kRec, 4 * kMiB, kSeg));          // the record would pass it
  CHECK(RotateActiveForShare(3 * kMiB, 3 * kMiB, kRec, 4 * kMiB, kSeg));     // most of the data: sealed long ago
  CHECK(RotateActiveForShare(kMiB, kMiB, kRec, 0, kSeg));                     // a new database: the first MiB
  // Records of about a MiB: a second one beside the first would pass the
  // share of 6 MiB of live data, so each gets a segment of its own.
  CHECK_FALSE(RotateActiveForShare(kMiB - 1, kMiB - 1, kMiB, 6 * kMiB, kSeg));
  CHECK(RotateActiveForShare(kMiB + 40, kMiB, kMiB, 6 * kMiB, kSeg));
  CHECK_FALSE(RotateActiveForShare(kMiB + 40, kMiB, kMiB, 8 * kMiB, kSeg));  // both within a quarter
  // A small, mostly overwritten database: once per MiB written, not per batch.
  CHECK_FALSE(RotateActiveForShare(kMiB - 1, 100 << 10, kRec, 100 << 10, kSeg));
  CHECK(RotateActiveForShare(kMiB, 100 << 10, kRec, 100 << 10, kSeg));
  // A large database: a segment's worth long before a quarter of the data.
  CHECK_FALSE(RotateActiveForShare(200 * kMiB, 200 * kMiB, kRec, 1000 * kMiB, kSeg));
  // Segments smaller than a MiB rotate when full; the share rule may come first.
  CHECK(RotateActiveForShare(64 << 10, 64 << 10, kRec, 64 << 10, 64 << 10));
  CHECK_FALSE(RotateActiveForShare((64 << 10) - 1, 64 << 10, kRec, 64 << 10, 64 << 10));
}

TEST_CASE("an output is finished after an input once the inputs waiting on it are worth it",
          "[engine][compaction_policy]") {
  constexpr uint64_t kSeg = 256 * kMiB;
  CHECK(FinishOutputAfterInput(kSeg, kSeg - 1, kSeg));               // a segment's worth of inputs
  CHECK(FinishOutputAfterInput(4 * kMiB, 2 * kMiB, kSeg));           // frees at least what it takes
  CHECK_FALSE(FinishOutputAfterInput(4 * kMiB, 3 * kMiB, kSeg));     // mostly live: keep filling it
  CHECK_FALSE(FinishOutputAfterInput(512 << 10, 1 << 10, kSeg));     // too little to be worth a file
  CHECK(FinishOutputAfterInput(64 << 10, 1 << 10, 64 << 10));        // small segments
}

TEST_CASE("in a catch-up pass an output is finished after every input whose deletion frees more than it takes",
          "[engine][compaction_policy]") {
  CHECK(FinishCatchUpOutputAfterInput(4 * kMiB, 3 * kMiB));                  // mostly live: finished anyway
  CHECK(FinishCatchUpOutputAfterInput(3 * kMiB + 1, 3 * kMiB));
  CHECK_FALSE(FinishCatchUpOutputAfterInput(3 * kMiB, 3 * kMiB));            // frees nothing: keep filling
  CHECK_FALSE(FinishCatchUpOutputAfterInput(1 * kMiB, kCatchUpFinishMinBytes - 1));  // too small for a file
  CHECK(FinishCatchUpOutputAfterInput(1 * kMiB, kCatchUpFinishMinBytes));
}

TEST_CASE("the back-off after fruitless passes doubles up to its maximum", "[engine][compaction_policy]") {
  CHECK(CompactionBackoffMs(0, 1000, 60000) == 0);
  CHECK(CompactionBackoffMs(1, 1000, 60000) == 1000);
  CHECK(CompactionBackoffMs(2, 1000, 60000) == 2000);
  CHECK(CompactionBackoffMs(6, 1000, 60000) == 32000);
  CHECK(CompactionBackoffMs(7, 1000, 60000) == 60000);
  CHECK(CompactionBackoffMs(4000000000u, 1000, 60000) == 60000);
}

TEST_CASE("scanned inputs that wait on no output are deleted once they are many or worth a MiB",
          "[engine][compaction_policy]") {
  CHECK_FALSE(DeleteScannedAfterInput(0, 0, 32));
  CHECK_FALSE(DeleteScannedAfterInput(5, 5 * (64 << 10), 32));   // small files: wait for a batch
  CHECK_FALSE(DeleteScannedAfterInput(31, 31 * (8 << 10), 32));
  CHECK(DeleteScannedAfterInput(32, 32 * 100, 32));              // a batch
  CHECK(DeleteScannedAfterInput(1, kMiB, 32));                   // one large value's file
  CHECK(DeleteScannedAfterInput(3, 3 * (400 << 10), 32));
}

TEST_CASE("writes wait for compaction above half the live bytes of backlog and go on at a quarter",
          "[engine][compaction_policy]") {
  const WriteStallBounds b = WriteStallBoundsFor(8 * kMiB, kMiB);
  CHECK(b.begin_bytes == 4 * kMiB);
  CHECK(b.end_bytes == 2 * kMiB);
  // A small database: the floor.
  const WriteStallBounds small = WriteStallBoundsFor(100 << 10, kMiB);
  CHECK(small.begin_bytes == kMiB);
  CHECK(small.end_bytes == kMiB / 2);
  CHECK(WriteStallBoundsFor(0, 0).begin_bytes == 0);
}

TEST_CASE("a sealed segment holding more than half the live data, with dead bytes of its own, is picked while its "
          "copy fits beside every segment's reclaimable bytes and the staged bytes",
          "[engine][compaction_policy][over_half]") {
  // 1 holds 6 of the 10 MiB live, a sixtieth of it dead: under the dead
  // ratio and the space bound's fraction. Beside the write stall's backlog
  // near its begin bound (5 MiB) its copy would take the directory to 2.1 x
  // the live data; while the backlog is low it fits (begin bound + a
  // quarter: 7.5 MiB for reclaimable + staged + its 6 MiB).
  const auto segs = Segs({Seg(1, 6 * kMiB, kMiB / 10), Seg(2, 3 * kMiB, 0), Seg(3, kMiB, kMiB / 2, true)});
  PickOptions o = ThresholdOnly(0.5);
  o.max_dead_fraction = 0.25;
  o.stall_floor_bytes = kMiB;
  const std::vector<PickedSegment> picked = PickSegments(segs, {}, {}, o);
  REQUIRE(Ids(picked) == std::vector<uint32_t>{1});
  CHECK(picked[0].why == PickReason::kOverHalf);
  CHECK(std::string(PickReasonName(PickReason::kOverHalf)) == "over-half");
  // 0.6 + 6 = 6.6 MiB of 7.5 reclaimable and copied: 0.9 MiB staged still fit, 1 MiB does not.
  o.staged_bytes = 9 * kMiB / 10 - 1;
  CHECK(Ids(PickSegments(segs, {}, {}, o)) == std::vector<uint32_t>{1});
  o.staged_bytes = kMiB;
  CHECK(PickSegments(segs, {}, {}, o).empty());
  o.staged_bytes = 0;
  // Not without dead bytes of its own (the tombstones kept count as none),
  // not at half the live data or less, not while pinned.
  CHECK(PickSegments(segs, {}, {{1, kMiB / 10}}, o).empty());
  CHECK(PickSegments(Segs({Seg(1, 6 * kMiB, 0), Seg(2, 3 * kMiB, 0), Seg(3, kMiB, kMiB / 2, true)}), {}, {}, o)
            .empty());
  CHECK(PickSegments(Segs({Seg(1, 5 * kMiB, kMiB / 10), Seg(2, 4 * kMiB, 0), Seg(3, kMiB, 0, true)}), {}, {}, o)
            .empty());
  CHECK(PickSegments(segs, {1}, {}, o).empty());
  // The active segment is never picked, whatever it holds.
  CHECK(PickSegments(Segs({Seg(1, 3 * kMiB, 0), Seg(3, 7 * kMiB, kMiB / 10, true)}), {}, {}, o).empty());
}

TEST_CASE("SplitOverHalf and FinishOutputForShare: a copy of a segment over half the live data is made while it "
          "fits, into outputs of a quarter of the live data (at least 64 KiB) or one record",
          "[engine][compaction_policy][over_half]") {
  const uint64_t live = 8 * kMiB;
  // Room: the begin bound (4 MiB) plus a quarter (2 MiB).
  CHECK(SplitOverHalf(5 * kMiB, 1, live, kMiB - 1, 0, kMiB));
  CHECK(SplitOverHalf(5 * kMiB, 1, live, kMiB / 2, kMiB / 2, kMiB));
  CHECK_FALSE(SplitOverHalf(5 * kMiB, 1, live, kMiB / 2, kMiB / 2 + 1, kMiB));
  CHECK_FALSE(SplitOverHalf(5 * kMiB, 0, live, kMiB / 2, 0, kMiB));
  CHECK_FALSE(SplitOverHalf(4 * kMiB, 1, live, 0, 0, kMiB));
  // Under twice the floor the begin bound is the floor.
  CHECK(SplitOverHalf(kMiB, 1, 3 * kMiB / 2, kMiB / 4, 0, kMiB));
  CHECK_FALSE(SplitOverHalf(kMiB, 1, 3 * kMiB / 2, kMiB / 4, (kMiB / 8) + 1, kMiB));

  CHECK_FALSE(FinishOutputForShare(0, 3 * kMiB, live));  // one record alone, however large
  CHECK_FALSE(FinishOutputForShare(kMiB, kMiB, live));   // 2 MiB: a quarter
  CHECK(FinishOutputForShare(kMiB, kMiB + 1, live));
  CHECK(FinishOutputForShare(1, 2 * kMiB, live));
  // A tiny database: outputs of 64 KiB.
  CHECK_FALSE(FinishOutputForShare(32 << 10, 32 << 10, 100 << 10));
  CHECK(FinishOutputForShare(32 << 10, (32 << 10) + 1, 100 << 10));
}

TEST_CASE("beside a segment holding more than half the live data the space bound's target makes room for its copy, "
          "which comes last",
          "[engine][compaction_policy][over_half]") {
  // 10 MiB live, 1.6 reclaimable: a seventh of the sealed bytes, under the
  // space bound's fraction. 1's copy fits once at most 1.5 MiB stay
  // reclaimable (7.5 MiB of room for them and its 6 MiB): 2 (a third dead,
  // the most profitable worth copying) goes first, then 1.
  const auto segs = Segs({Seg(1, 6 * kMiB, kMiB / 10), Seg(2, 2 * kMiB, kMiB), Seg(3, 3 * kMiB / 2, kMiB / 2),
                          Seg(4, kMiB / 2, 0, true)});
  PickOptions o = ThresholdOnly(0.5);
  o.max_dead_fraction = 0.25;
  o.stall_floor_bytes = kMiB;
  const std::vector<PickedSegment> picked = PickSegments(segs, {}, {}, o);
  REQUIRE(Ids(picked) == std::vector<uint32_t>{2, 1});
  CHECK(picked[0].why == PickReason::kTarget);
  CHECK(picked[1].why == PickReason::kOverHalf);
  // The active segment's dead bytes stand beside the copy too: 3 as well.
  const auto with_active_dead = Segs({Seg(1, 6 * kMiB, kMiB / 10), Seg(2, 2 * kMiB, kMiB),
                                      Seg(3, 3 * kMiB / 2, kMiB / 2), Seg(4, kMiB / 2, kMiB, true)});
  CHECK(Ids(PickSegments(with_active_dead, {}, {}, o)) == std::vector<uint32_t>{2, 3, 1});
  // Without such a segment, nothing (under the fraction, no target).
  CHECK(PickSegments(Segs({Seg(1, 6 * kMiB, 0), Seg(2, 2 * kMiB, kMiB), Seg(3, 3 * kMiB / 2, kMiB / 2),
                           Seg(4, kMiB / 2, 0, true)}),
                     {}, {}, o)
            .empty());
}
