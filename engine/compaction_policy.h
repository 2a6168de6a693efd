// Compaction policy: which segments a pass compacts, in which order, and
// when a tombstone may be dropped. Pure decisions over segment statistics and
// segment headers: no I/O, no locks, no clock. The mechanism that copies the
// chosen segments crash-safely is engine/compaction.cc (see compaction.h for
// the whole pass).
//
// Any thread; every function here is a pure function of its arguments.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "engine/compaction.h"
#include "engine/writer.h"

namespace kingx::engine {

// Small sealed segments a database keeps before the smallest are merged into
// fuller ones (PickOptions::max_small_segments).
inline constexpr uint32_t kMaxSmallSegments = 16;

// PickOptions::large_copies.
enum class LargeCopies : uint8_t {
  kAny,     // like any other segment (kingx-tool, an ordinary pass)
  kIfFits,  // a catch-up pass (writes held): only when the copy fits beside
            // what stays reclaimable and staged (LargeCopyFits), or when more
            // than the stall's end bound would stay reclaimable without it
            // (LargeCopyNeeded)
};

struct PickOptions {
  // Options::compaction_dead_ratio: a sealed segment whose reclaimable
  // fraction reaches it is picked.
  double dead_ratio = 0.5;
  // CompactionOptions::max_dead_fraction (0 = only the threshold).
  double max_dead_fraction = 0.25;
  // With max_dead_fraction: the most profitable segments below the
  // threshold are also taken until the reclaimable bytes left are at most
  // this (a catch-up pass for writes that wait until compaction made that
  // much room: Compactor::SetCatchUpTarget), of those whose copy is worth
  // it (TargetCopyWorthIt); fewer when those run out.
  uint64_t max_reclaimable_bytes = UINT64_MAX;
  // The space bound too stops as soon as at most max_reclaimable_bytes stay
  // reclaimable, above max_dead_fraction (a catch-up pass: its lowered
  // fraction is how far it may go for the writes waiting, not a goal of its
  // own; copying further only puts more bytes on disk while they wait).
  bool stop_at_target = false;
  // How the space bound and the target treat a segment holding more than
  // 1 / kMaxActiveShare of the live data (a large copy: it stands beside its
  // input until the input is deleted, on top of the dead bytes the write
  // stall lets stand).
  LargeCopies large_copies = LargeCopies::kAny;
  // Bytes of large uploads being staged (with LargeCopies::kIfFits, and for
  // a segment holding more than half the live data: SplitOverHalf).
  uint64_t staged_bytes = 0;
  // The write stall's floor (WriteStallBoundsFor; with LargeCopies::kIfFits,
  // and for SplitOverHalf; 0 = no write stall, the bounds of half the live
  // data).
  uint64_t stall_floor_bytes = 0;
  // CompactionOptions::pick_all: every sealed segment.
  bool pick_all = false;
  // CompactionOptions::pick_reclaimable: every sealed segment with
  // reclaimable bytes, whatever its fraction.
  bool pick_reclaimable = false;
  // Free space is under the low mark: any segment with reclaimable bytes.
  bool low_space = false;
  // Options::segment_bytes; 0 = small sealed segments are never merged.
  uint64_t segment_bytes = 0;
  // Small sealed segments (file bytes below half of segment_bytes) allowed
  // before the smallest are merged (see PickSegments).
  uint32_t max_small_segments = kMaxSmallSegments;
};

// Why PickSegments took a segment (the first rule that took it, in the
// order of PickSegments' contract), for a pass's log.
enum class PickReason {
  kPickAll,     // PickOptions::pick_all
  kReclaimable, // PickOptions::pick_reclaimable and it has reclaimable bytes
  kEmpty,       // no live record
  kThreshold,   // its reclaimable fraction reaches dead_ratio
  kLowSpace,    // PickOptions::low_space and it has reclaimable bytes
  kSpaceBound,  // the sealed segments' reclaimable fraction is above max_dead_fraction
  kTarget,      // only for max_reclaimable_bytes (a catch-up pass's target; TargetCopyWorthIt)
  kOverHalf,    // holds more than half the live data, with dead bytes, and its copy fits (SplitOverHalf)
  kMergeSmall,  // a small segment merged (MergeSmall)
};
const char* PickReasonName(PickReason reason);

struct PickedSegment {
  SegmentStats stats;
  // Dead bytes minus the tombstone bytes known to have to stay.
  uint64_t reclaimable = 0;
  PickReason why = PickReason::kThreshold;
};

// The segments to compact, most profitable first (reclaimable bytes per live
// byte copied; ties keep segment id order). Never the active segment, never
// one in `skip`. Picked: with pick_all, every sealed segment; else a segment
// with no live record and something to reclaim (or nothing but its header),
// any segment with reclaimable bytes with pick_reclaimable, one whose
// reclaimable fraction of its file bytes reaches dead_ratio, any
// segment with reclaimable bytes when low_space, one that SplitOverHalf
// takes (with the reclaimable bytes of every segment, the active one's
// too); then, while the
// reclaimable fraction of all sealed segments would stay above
// max_dead_fraction after the picks, the most profitable of the others
// (with stop_at_target, only while more than max_reclaimable_bytes would
// stay reclaimable, the active segment's reclaimable bytes counted with the
// sealed ones': the write stall's measure); then, while more than max_reclaimable_bytes would stay
// reclaimable, the
// most profitable of the others whose copy is worth it for that target
// (TargetCopyWorthIt: a segment that frees little of what it copies is left
// even if the target is then not met). Neither of those two takes a segment
// holding more than 1 / kMaxActiveShare of the live data (all segments'
// live bytes) unless large_copies allows it: kAny always, kIfFits when
// LargeCopyFits or LargeCopyNeeded with the reclaimable bytes of every
// segment (the active one's too) less those of the segments picked before it.
// Then small sealed segments are merged, so that the number of segment files
// follows the bytes stored, not the number of writes (a value staged whole
// gets a segment of its own, and a pass's early outputs are small): a sealed
// segment is small when its file holds less than half of segment_bytes; when
// the small ones hold a segment's worth of live bytes, all of them are
// picked (their copies fill whole segments); else, when there are more than
// max_small_segments, the smallest are picked until max_small_segments / 2
// would be left (merging the smallest first copies each byte a logarithmic
// number of times, as size-tiered merging does).
// kept_tombstone_bytes: per segment, tombstone bytes a previous pass had to
// keep (they are not reclaimable while the reason stands).
std::vector<PickedSegment> PickSegments(const std::map<uint32_t, SegmentStats>& segments,
                                        const std::set<uint32_t>& skip,
                                        const std::map<uint32_t, uint64_t>& kept_tombstone_bytes,
                                        const PickOptions& options);

// Whether a pass seals the active segment first (the writer rotates to a new
// one), so that the dead records it holds become compactable like any
// other's: dead space anywhere is reclaimable, and a database that fits in
// one segment (a small disk, or kingx-tool compact --all) is not stuck with
// it. Sealed when it holds at least min_bytes (so that passes do not leave a
// trail of tiny segments) and, as a sealed segment would be picked, its dead
// fraction reaches dead_ratio, or it has dead bytes and low_space, pick_all
// or pick_reclaimable is set.
bool SealActiveFirst(const SegmentStats& active, uint64_t min_bytes, const PickOptions& options);

// The min_bytes of SealActiveFirst for a database holding live_bytes: a
// quarter of segment_bytes, lowered to half the database's live bytes (not
// below 1 MiB), so that the dead records of the active segment stay under
// about half the live data however large segments are (with the sealed
// segments' max_dead_fraction, the directory stays under twice the live data
// when compaction keeps up).
uint64_t ActiveSealMinBytes(uint64_t segment_bytes, uint64_t live_bytes);

// Whether the writer rotates to a new active segment before its next record,
// of record_bytes, because the active one would hold too large a share of
// the live data: its file holds at least kShareRotateMinBytes (or
// segment_bytes, if smaller: the usual rotation comes first then) and its
// live bytes with the record's are more than 1 / kMaxActiveShare of the
// database's live_bytes. Compaction copies a segment's live records beside
// it until it is deleted; a segment holding most of the live data (segments
// far larger than the database collect all of it in the active one) would
// cost a copy of most of the data on top of it, whatever the order of
// inputs. With this, a sealed segment holds at most a quarter of the live
// data of its time, or one record beside less than kShareRotateMinBytes of
// file, as a compaction output does (FinishOutputForShare): records of
// about a MiB each get a segment of their own once two of them would pass
// the share, so that a later shrink of the live data (deletes, smaller
// overwrites) leaves no segment of two or three such records holding most
// of it. The rotation rate is bounded: one per kShareRotateMinBytes written
// at most (a small, mostly overwritten database rotates once per MiB), and
// one per quarter of the live data on a larger one.
inline constexpr uint64_t kShareRotateMinBytes = 1 << 20;
inline constexpr uint64_t kMaxActiveShare = 4;
bool RotateActiveForShare(uint64_t active_file_bytes, uint64_t active_live_bytes, uint64_t record_bytes,
                          uint64_t live_bytes, uint64_t segment_bytes);

// Whether a pass finishes (publishes, installs) its output after an input,
// before it is full: when the inputs whose records wait in it hold
// waiting_input_bytes and the output output_bytes. Finished when those inputs
// make a segment's worth, or at least 1 MiB (or segment_bytes if smaller) and
// twice the output's bytes (deleting them frees more than the output takes).
// What a pass finished survives a crash: a restart does not redo it.
bool FinishOutputAfterInput(uint64_t waiting_input_bytes, uint64_t output_bytes, uint64_t segment_bytes);

// In a pass that writes wait for (PassKind::kCatchUp), also finished after
// an input as soon as the output holds kCatchUpFinishMinBytes and deleting
// the inputs waiting on it frees more than the output takes: the copies a
// pass holds on top of its inputs are then at most one input's live bytes
// plus kCatchUpFinishMinBytes, not a copy of every picked input's live data
// (which, with segments larger than the database, is up to all of it, on top
// of the dead bytes the stall let accumulate). Costs one output (fdatasync,
// hint, rename, directory sync) per such input; the small outputs are merged
// later (PickSegments).
inline constexpr uint64_t kCatchUpFinishMinBytes = 64 << 10;
bool FinishCatchUpOutputAfterInput(uint64_t waiting_input_bytes, uint64_t output_bytes);

// Whether a pass deletes, after an input, the scanned inputs that wait on no
// output (everything they held that must survive is already in installed
// outputs, or they held nothing live), rather than with a later batch: when
// they are batch_count many, or hold kDeleteScannedBytes of files (a large
// value's own file, once overwritten, is one). Each deletion costs one
// MANIFEST fdatasync for the whole batch; waiting costs the space they hold,
// and a crash before the deletion makes the next pass scan them again.
inline constexpr uint64_t kDeleteScannedBytes = 1 << 20;
bool DeleteScannedAfterInput(size_t count, uint64_t file_bytes, size_t batch_count);

// A catch-up pass picks, beyond the usual picks, the most profitable sealed
// segments until their reclaimable fraction is under this (instead of
// PickOptions::max_dead_fraction), or, with the write stall's target, until
// the reclaimable bytes are within it, whichever comes first
// (PickOptions::stop_at_target).
inline constexpr double kCatchUpDeadFraction = 0.1;

// Active segments at least this large are sealed by a catch-up pass (one run
// while writes wait for compaction, see WriteStallBoundsFor) when at least
// kCatchUpDeadFraction of their bytes are dead (below the usual dead_ratio).
inline constexpr uint64_t kCatchUpSealMinBytes = 64 << 10;

// Whether a sealed segment is worth copying only for a catch-up pass's
// reclaimable target (PickOptions::max_reclaimable_bytes, below the tenth
// the pass goes down to at most for it): at least kCatchUpDeadFraction of its
// file_bytes are reclaimable (the share a catch-up pass needs to seal the
// active segment), so that a pick never copies more than nine bytes per byte
// it frees; and its segment_live_bytes are at most 1 / kMaxActiveShare of the
// database's live_bytes, so that its copy, which stands beside it until it is
// deleted, is no larger than the active segment's share rotation lets any
// segment be (RotateActiveForShare). A segment failing either is left to the
// threshold (where it frees at least what it copies) or the space bound.
bool TargetCopyWorthIt(uint64_t file_bytes, uint64_t segment_live_bytes, uint64_t reclaimable, uint64_t live_bytes);

// Whether a copy of a segment holding segment_live_bytes fits beside the
// data directory's other bytes while writes wait (a catch-up pass): it holds
// at most 1 / kMaxActiveShare of the database's live_bytes (the copy the
// write stall's arithmetic counts on top of its begin bound), or the
// reclaimable bytes (its own dead bytes among them), the staged bytes and
// the copy are within WriteStallBoundsFor(live_bytes, floor_bytes)'s begin
// bound plus that quarter: the directory then stays within what a copy of a
// quarter beside a backlog at the begin bound would take (for a database of
// at least twice the floor, 1.75 x its live data, K and O aside; see
// src/writer/write_stall.h).
bool LargeCopyFits(uint64_t segment_live_bytes, uint64_t live_bytes, uint64_t reclaimable, uint64_t staged_bytes,
                   uint64_t floor_bytes);

// Whether a catch-up pass makes a large copy that does not fit all the same:
// the reclaimable bytes (before it) are above WriteStallBoundsFor(live_bytes,
// floor_bytes)'s end bound. A stall whose passes make no progress there ends
// and no longer holds writes until a pass makes progress, so the dead bytes
// would grow without bound beside the segment instead of its copy standing
// beside it once. At or under the end bound (a stall for the room of a held
// batch that kills a large share of the live data) it is left: that stall
// ends by letting go the part of its batch that fits, and goes on holding.
bool LargeCopyNeeded(uint64_t live_bytes, uint64_t reclaimable, uint64_t floor_bytes);

// Whether any pass copies a sealed segment that holds segment_live_bytes,
// more than half of the database's live_bytes, while its copy fits
// (LargeCopyFits with the reclaimable bytes of every segment, its own among
// them, and the staged bytes), before its dead bytes make it a copy the
// write stall needs (LargeCopyNeeded): beside a backlog near the stall's
// begin bound that copy would take the directory past twice the live data
// (src/writer/write_stall.h). Only with reclaimable bytes of its own: a
// segment without dead bytes is no copy candidate (and one live record
// alone, which no copy splits, then is never copied again). Its copy goes
// into outputs that FinishOutputForShare keeps within a quarter of the live
// data, so it is made once. Such a segment comes of deletes and smaller
// overwrites since it was sealed (it held at most a quarter of the live data
// then, or one record beside less than a MiB of others), or of a database of
// a few MiB whose records of up to 1 MiB each make that record most of a
// segment.
bool SplitOverHalf(uint64_t segment_live_bytes, uint64_t segment_reclaimable, uint64_t live_bytes,
                   uint64_t reclaimable, uint64_t staged_bytes, uint64_t floor_bytes);

// Whether a pass finishes (publishes, installs) its output before copying a
// record of record_bytes into it, in the middle of an input if need be,
// because the output already holds output_live_bytes of copied records and
// with the record it would hold more than a quarter of the database's
// live_bytes (1 / kMaxActiveShare, at least kCatchUpFinishMinBytes): a
// compaction output then holds at most a quarter of the live data of its
// pass, or one record, as a sealed active segment does (RotateActiveForShare),
// so that no copy of it later is a copy of most of the data. An output
// finished in the middle of an input is installed as any (its copies count
// as that input's dead bytes until the input is deleted, once scanned).
bool FinishOutputForShare(uint64_t output_live_bytes, uint64_t record_bytes, uint64_t live_bytes);

// WriteStallBoundsFor (declared in compaction.h, a public header, for the
// writer process) is implemented with these policies.

// Back-off of the compaction thread after `fruitless` passes in a row that
// picked segments but neither installed an output nor deleted a segment
// (no room, pinned or damaged segments, errors): min_ms doubled per further
// fruitless pass, at most max_ms; 0 when fruitless is 0.
uint64_t CompactionBackoffMs(uint32_t fruitless, uint64_t min_ms, uint64_t max_ms);

// A segment's guard: no record of seq below it can be in the segment, as far
// as recovery is concerned. kNoGuard: recovery never replays the segment.
inline constexpr uint64_t kNoGuard = std::numeric_limits<uint64_t>::max();

// What a pass read of one segment's header.
struct SegmentOrigin {
  bool readable = false;  // the header bytes could be read
  bool valid = false;     // they decoded and name this segment
  uint64_t seed = 0;      // the header's database seed (when valid)
  uint64_t seq_floor = 0; // the header's smallest seq (when valid)
  // A compaction output made by this process: the writer's next seq when its
  // pass started (it holds only records that were live then).
  std::optional<uint64_t> output_start_seq;
};

// The guard of a segment with `origin` in a database whose seed is `seed`:
// kNoGuard when its header is of another database; 0 when it is unreadable
// or damaged (recovery reads such a segment's records, of any seq); else its
// seq floor; raised to output_start_seq unless kNoGuard.
uint64_t SegmentGuard(const SegmentOrigin& origin, uint64_t seed);

// The guards of every segment of a pass's snapshot, kept as the two smallest.
// A tombstone of seq t in segment s may be dropped when no other segment can
// hold an older record of its key: NothingOlderElsewhere(s, t). (The pass
// also drops it, in sync=always only, when the key's live record is a newer
// put: that needs the index, so the mechanism checks it.)
class TombstoneGuards {
 public:
  void Add(uint32_t segment_id, uint64_t guard);
  // True when every segment but `segment_id` has a guard above `seq`.
  bool NothingOlderElsewhere(uint32_t segment_id, uint64_t seq) const;

 private:
  uint64_t guard1_ = kNoGuard, guard2_ = kNoGuard;  // smallest, second smallest
  uint32_t guard1_id_ = 0;
};

}  // namespace kingx::engine
