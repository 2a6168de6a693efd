// Write stall: the writer loop holds its next batch while compaction's
// backlog would let the data directory grow past about twice the live data,
// so that the bound holds at any write rate (the writes wait instead of the
// disk filling with dead records), as RocksDB's write stalls do.
//
// The backlog is the dead bytes compaction can reclaim (the engine's dead
// bytes less the tombstones compaction had to keep) plus the staged bytes of
// large values in progress plus the part of a compaction copy in flight
// beyond a quarter of the live data (see below); the bounds are
// engine::WriteStallBoundsFor (half and a quarter of the live bytes). A
// stall begins before a batch when the backlog plus the bytes waiting in
// the write queue (what the next batches can turn into dead or staged
// bytes) pass the begin bound and the reclaimable bytes are above the end
// bound or such a copy stands (compaction has work to do). It asks for a
// catch-up pass (engine::PassKind::kCatchUp) and holds batches until:
//  - the reclaimable bytes are at or under the end bound and no copy in
//    flight keeps the backlog past the begin bound (released), or
//  - a catch-up pass that began after the stall's own trigger finished
//    without deleting or writing anything: then compaction can do no more
//    for now (an online backup's pinned cut, tombstones that must stay,
//    damage), and no new stall begins until some pass makes progress again
//    (see below for a stall under the end bound),
//    except when what kept the pass from progress was the key view's pin
//    of every segment (its catch-up after an open reads them for tens of
//    milliseconds; engine::PassReport::view_pinned): then the stall goes on
//    and asks for another catch-up pass every hold slice (10 ms), for at
//    most view_pin_wait_ms from the stall's beginning, after which it ends
//    as above (a rebuild of the view pins for longer). A pass that began
//    before (for an earlier stall) picked with that stall's target, before
//    this stall's batch was published: its verdict is not this stall's,
//    which asks for another pass (taken as this stall's, it ended the stall
//    within microseconds of its beginning and let at least one op go); or
//  - it lasted max_stall_ms (a quarter of --storage-timeout-ms, counted
//    from the batch's first stall, over the stalls of its parts after a
//    split): then the held batch goes whole, so that a write never waits
//    long enough to be answered "outcome unknown".
// No stall begins while the disk is full (puts are refused with 507 anyway)
// or while compaction backs off after fruitless passes. A pass whose only
// picks were left at their turn for want of room beside the dead bytes (a
// segment holding more than a quarter or half of the live data whose copy
// stopped fitting: engine::PassReport::left_for_room) is not fruitless: it
// backed compaction off for a second or more, and this stall with it, while
// writes went on unheld and unforecast (their dead bytes passed the live
// data before the next pass ran).
//
// A stall's target and the catch-up passes' measure are one: the reclaimable
// bytes of every segment, the active one's too (engine::PickSegments with
// stop_at_target). Measured on the sealed segments alone, a pass found its
// target met and picked nothing while this stall saw it passed (the active
// segment's dead bytes), ended "without progress" above the end bound and
// disarmed: no batch was held or forecast until a compaction thread pass
// made progress.
//
// What the queue's bytes cannot show: a batch of small values that replace
// large ones kills far more than its own bytes, and no probe-free measure
// bounds what a batch's keys hold. So once a batch is taken, whenever
// compaction has anything to reclaim (WantsForecast), the writer forecasts
// it (engine::Writer::Forecast: the dead bytes it and the batches still in
// flight create, the live bytes they kill, from the index and the counters
// those batches are not yet in; it does not wait for the fdatasync in
// flight) and HoldBatch holds it unless, after it,
//     reclaimable + its dead bytes + staged + the queue behind it <= B(live after it)
// where B(L) = max(L/2, kWriteStallFloorBytes); the stall then lasts until
// the reclaimable bytes leave room for it (or the end bound, if lower). Every
// stall's catch-up passes reclaim down to its target and no further
// (CompactionThread::TriggerCatchUp; engine::PickOptions::stop_at_target):
// while more than a tenth of the sealed segments' bytes is reclaimable, the
// most profitable segments, any whose copy fits (one holding more than a
// quarter of the live data, while the reclaimable bytes are within the end
// bound, only while the writes wait and its copy fits beside the
// reclaimable and staged bytes: engine::LargeCopyFits, the arithmetic
// below); below that tenth only segments worth copying for it
// (a tenth reclaimable, at most a quarter of the live data:
// engine::TargetCopyWorthIt). When those run
// out before the target is met, the next catch-up pass picks nothing: it
// makes no progress, is not fruitless (no back-off), and the stall ends as
// below (under the end bound, letting go the part of the batch that fits).
//
// A batch that alone passes the bound, even with nothing left to reclaim
// before it, is split: its ops are independent requests that share a group
// commit. The longest prefix that would fit with nothing reclaimable (at
// least its first op) goes, once compaction made room for it; the writer
// loop answers each op once its own part is durable and takes the rest as a
// batch of its own once that part is published, so the rest waits for the
// catch-up passes that reclaim what the prefix killed (ops on one key stay
// in order, conditions are decided in order, and a writer that dies in
// between leaves the rest unapplied, answered "outcome unknown"). A stall
// that ends because compaction made no progress while the reclaimable
// bytes are under the end bound lets go only the prefix that fits what
// compaction left (at least one op); the rest is forecast as any batch.
//
// A compaction copy in flight counts too: the backlog is reclaimable +
// staged + the part of the copy beyond a quarter of the live data
// (engine::Compactor::copy_bytes, engine::CopyBeyondShare: the output being
// written plus what is left to copy of its current input, announced before
// the output exists). While such a copy stands, a stall begins (or holds on,
// whatever the reclaimable bytes) as long as the backlog with it passes the
// begin bound; a batch whose forecast fits but for the copy waits for the
// copy's install and its input's deletion, not for more to be reclaimed;
// and a catch-up pass that made no progress while a copy stands does not
// end the stall (the install is progress to come: another catch-up pass is
// asked for). The time bound holds as for any stall.
//
// The arithmetic of the bound (L live, R reclaimable, K tombstones that must
// stay, S staged uploads, C a compaction copy in flight, O hints, the key
// view's runs, the MANIFEST and the active segment's room; B(L) the begin
// bound, L/2 for L >= 2 x the floor):
//     directory = L + R + K + S + C + O.
// After each admitted batch R + S + max(0, C - L/4) <= B(L): R + S <= B(L)
// with no copy beyond its share, R + S + C <= B(L) + L/4 beside one. While
// writes wait R only shrinks (an install moves the copied bytes from C to R,
// as its input's dead bytes, until the input is deleted). A catch-up pass
// copies one input at a time (its output is finished once the inputs it
// completed free more than it holds), so C <= the live bytes X of one input
// + 64 KiB. Beside this stall the compactor knows its floor
// (engine::CompactionOptions::stall_floor_bytes), and a catch-up copy is
// one of:
//  - X <= L/4 (L of when the copy begins; the active segment is sealed
//    before a record would take it past a quarter of the live data,
//    engine::RotateActiveForShare):
//    C <= L/4 + 64 KiB;
//  - X > L/4, for the space bound or a stall's target (a segment holding
//    one or two large records), with R at or under the end bound B(L)/2 (a
//    stall for the room of a held batch that kills a large share of the
//    live data): made only while the writes wait (R above the pass's
//    target) and R + S + X <= B(L) + L/4, checked when it is picked and
//    again when its turn comes (engine::LargeCopyFits); while it stands a
//    batch is admitted only within that room; else it is left, its dead
//    bytes stay in R, and the stall ends on its no-progress path under the
//    end bound, letting go the part of the batch that fits and holding on;
//  - X > L/4, for the threshold (at least half its file reclaimable):
//    X <= its dead bytes <= R;
//  - X > L/4, for the space bound or a target, with R above the end bound
//    (engine::LargeCopyNeeded): made whatever it adds. It begins with
//    R0 + S0 <= B(L) (the last admission), and while it stands a batch is
//    admitted only within B(L) + L/4, so R + S + C <= max(R0 + S0 + X,
//    B(L) + L/4) + 64 KiB. Left, it would free nothing however long the
//    writes waited: its own dead bytes are in R and only its copy reclaims
//    them; the stall would end without progress above the end bound and
//    hold nothing until a pass makes progress, and the dead bytes would
//    grow beside the segment without bound, where its copy stands once;
//  - X > L/2, by any pass (ordinary or catch-up), as soon as the segment
//    has reclaimable bytes of its own and R + S + X <= B(L) + L/4 (R of
//    every segment, the active one's too; engine::SplitOverHalf), checked
//    when picked and again when its turn comes, after the inputs picked
//    before it are deleted: the space bound's target is lowered to what
//    makes it fit, so that the segments worth copying go first and make
//    that room. Its copy goes into outputs of at most a quarter of the
//    live data each (engine::FinishOutputForShare), so it is made once.
// Hence, in the first two cases,
//     directory <= L + B(L) + L/4 + 64 KiB + K + O = 1.75 L + 64 KiB + K + O,
// within 2 L while K + O + 64 KiB <= L/4; in the third R + S + X <= B(L) +
// min(X, R) <= L, so directory <= 2 L + 64 KiB + K + O (over 2 L only by
// those, and only when that one segment's dead bytes are about all of R
// and half the live data); in the fourth directory <= L + max(B(L) + X,
// B(L) + L/4) + 64 KiB + K + O, within 2 L + 64 KiB + K + O while X <= L/2;
// in the fifth as in the first two. What remains over 2 L (K, O aside)
// by construction: the fourth case with a segment holding more than half
// the live data beside a backlog near the begin bound, which the fifth did
// not copy first. No compaction output holds more than a quarter of the
// live data of its pass, or one record (FinishOutputForShare), and share
// rotation seals the active segment before a record that would take it past
// a quarter of the live data (engine::RotateActiveForShare: at most that
// quarter, or one record, at most a 1 MiB value and its header, beside less
// than a MiB of others), so such a segment is one of a database under about
// 4 MiB of live data, or of one whose live data shrank (deletes, overwrites
// with smaller values) since it was sealed; it
// is left to the fourth case only when it got its first dead bytes, or
// stopped fitting, between two passes (one batch that kills its record and
// raises R past the room), or when its own dead bytes and live bytes alone
// pass the room (its file holds more than 3/4 L - S).
// A load that makes such segments (records of 1 MiB beside small ones in a
// few MB of live data, bursts that kill 2 MB at once), and that reaches the
// exceptions below (a stall ended without progress, which lets at least one
// op of its batch go):
//     bench/compaction_crash_soak.py --cycles 200 --seed S
//         --sizes 4000,4000,4000,4000,65536,1048575,1048576
//         --live-mb 6 --burst-keys 4 --burst-kb 512 [--compare-bin OLD]
// (bench/compaction_soak_seeds.sh runs it seed after seed beside an older
// binary; its "steady_published_over_2x" counts the samples over 2 L whose
// gauges did not move and in which no batch was in flight; a sample whose
// live bytes fell between the gauge reads around the directory's measure
// compares a directory of before a deletion with the live data of after it).
// Staged bytes count in B(L): the large-upload
// path bounds them by a share of the live data (L/8; but one upload of any
// size alone, and one chunked upload past the share).
// K is what compaction had to keep; a dead-only pass beside a running pass
// drops what it deletes of it at once. Since every batch that would pass
// the bound is held or split, one op that alone kills a record X goes once
// compaction got as low as it can (R_min: what pins and damage keep, the
// dead bytes of segments not worth copying for the target: under a tenth
// of each such segment, or under half of one holding more than a quarter
// of the live data, of which there are at most three, and those of a
// large copy that does not fit, under the end bound; the active segment's
// under a tenth, or
// under 64 KiB); after it R + S <= R_min + X + S. An ordinary record is at
// most a 1 MiB value and its header (a larger value has a segment of its
// own, which the write deletes as it publishes it), so for L >= 2 MiB
// (twice the floor) X <= L/2 + its header, and the directory <= 1.75 L +
// X's header + R_min + S + 64 KiB + K + O: the arithmetic above, with R_min
// and S on top only for that op. Where this is not by construction: a stall
// cut short by its time bound lets its batch go whole and unforecast
// (holding any part of it longer would risk its writes' storage timeout;
// forecasting what cannot be held changes nothing on disk), also beside a
// copy in flight; the fourth case above with a segment holding more than
// half the live data that the fifth did not copy first; after a stall
// that ended because compaction made no progress above the end bound
// (pins, tombstones that must stay) no batch is held or split until a pass
// makes progress (nothing can make room); with nothing reclaimable at all no
// batch is forecast, so one that alone kills more than half the live data
// then goes whole; an ordinary (not catch-up) pass, whose output may
// collect several inputs' live data, up to a quarter of the live data of
// its pass (counted as a copy in flight: batches are held once it passes
// the room, but the output grows on); a segment's
// share measured against the live data of when it was sealed (deletes
// since may have shrunk L); a database under twice the floor (B(L) is then
// the floor); an upload staged alone beyond the share (counted as staged
// until its write is published); the record a large upload replaces as it
// ends (not forecast); and beside a copy in flight, what admission cannot
// see: uploads staged after it began (workers stage without the writer
// loop, within the staging share) and the dead bytes of batches in flight
// when it began (admitted before it, published during it).
//
// A batch in flight (written, its fdatasync running, not yet published) is
// on disk and in neither the live nor the dead count: the forecast counted
// it, so the bound holds once it is published, but a directory measured
// before that sees its records on top of the live data of before.
// WriterMetrics::unpublished_bytes (kingx_writer_unpublished_bytes) tells
// such a moment; the crash soak leaves samples taken in it out of its
// "steady, published" count.
//
// Writes are delayed, never refused, by a stall: a refused write would have
// to be retried by every client, while a stall lasts one or a few passes.
//
// Counts (stalls, time stalled) go to WriterMetrics; one info line at most
// every 10 s summarises the stalls since the previous line, and a stall cut
// short by its time bound logs a warning (at most one per 10 s).
//
// Threads: Hold is called by the writer loop's thread only; it reads the
// compaction thread's counters and waits on it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include "engine/compaction.h"
#include "src/ipc/shm.h"

namespace kingx {

// A database smaller than this never stalls on its dead bytes alone (the
// stall bound is at least this much backlog).
inline constexpr uint64_t kWriteStallFloorBytes = 1 << 20;

class WriteStall {
 public:
  // shm, compactor and thread must outlive this object. max_stall_ms > 0;
  // view_pin_wait_ms: how long a stall waits out the key view's pin (see
  // above; 0: not at all).
  WriteStall(SharedMemory& shm, const engine::Compactor& compactor, engine::CompactionThread& thread,
             uint64_t max_stall_ms, uint64_t view_pin_wait_ms);

  // Before the writer loop takes a batch. True: hold it for now (this call
  // waited at most a few milliseconds for a compaction pass, after calling
  // before_wait, when given, once).
  bool Hold(const std::function<void()>& before_wait = {});

  // Once a batch is taken, before it is submitted, when Hold let it through:
  // whether its forecast is worth computing (compaction could make room for
  // it: there are reclaimable bytes, or the batch was held or split before;
  // the batch is not one that must go now).
  // Cheap. HoldBatch asks it itself.
  bool WantsForecast() const;

  // engine::Writer::Forecast of the batch's first `first_ops` ops.
  using Forecaster = std::function<engine::Writer::BatchForecast(size_t first_ops)>;
  // Once a batch of `ops` puts and deletes (`stored_bytes` in the queue's
  // measure) is taken, before it is submitted, when Hold let it through:
  // how many of its first ops go now.
  //  - ops: all of them;
  //  - 0: none; a stall began (the loop takes the batch again once Hold lets
  //    a batch through);
  //  - 0 < k < ops: only those (a split, see the file comment). The loop
  //    submits them; the rest stays taken and is asked about again, as a
  //    batch of its own, once those are durable and published (their dead
  //    bytes are then what compaction can reclaim before the rest goes).
  // Calls `forecast` only when WantsForecast: once for the whole batch, and
  // for a split a few times more (a binary search over its prefixes).
  size_t HoldBatch(size_t ops, uint64_t stored_bytes, const Forecaster& forecast);

 private:
  using Clock = std::chrono::steady_clock;
  struct Backlog {
    uint64_t live = 0;
    uint64_t kept = 0;         // tombstones compaction had to keep
    uint64_t reclaimable = 0;  // dead bytes compaction can reclaim
    uint64_t staged = 0;       // staged bytes of large uploads
    uint64_t copy = 0;         // a compaction copy in flight beyond its share (engine::CopyBeyondShare)
    uint64_t backlog = 0;      // reclaimable + staged + copy
    uint64_t queued = 0;       // bytes waiting in the write queue (the next batches)
    engine::WriteStallBounds bounds;
  };
  Backlog Measure() const;
  bool CompactionCanHelp() const;
  // WantsForecast's two halves: whether this batch may be held at all (no
  // measure needed), and whether, with backlog `b`, it is worth a forecast.
  bool MayForecast() const;
  bool WantsForecast(const Backlog& b) const;
  // Whether the copy in flight keeps the stall on, whatever the reclaimable
  // bytes: it stands beyond its share with the backlog past the begin
  // bound, or the stall holds a batch that fits but for it (copy_wait_).
  bool CopyHolds(const Backlog& b) const;
  // Begins a stall that lasts until the reclaimable bytes are at most target_bytes.
  void Begin(Clock::time_point now, const Backlog& b, uint64_t target_bytes);
  // Ends the stall; why is a short phrase for the log. The caller sets next_.
  void End(Clock::time_point now, const char* why);
  void MaybeLog(Clock::time_point now, const Backlog& b);
  // HoldBatch's answer `go` of `ops`, with the bookkeeping of a split.
  size_t Goes(size_t go, size_t ops);

  SharedMemory& shm_;
  const engine::Compactor& compactor_;
  engine::CompactionThread& thread_;
  const std::chrono::milliseconds max_stall_;
  const std::chrono::milliseconds view_pin_wait_;

  // What HoldBatch does with the batch Hold lets through next.
  enum class Next : uint8_t {
    kForecast,  // forecast it: it goes, splits or is held
    kFit,       // a stall compaction could not finish held it: forecast it and
                // let go now the longest prefix that fits what compaction left
                // (at least one op); the rest is forecast as a batch of its own
    kWhole,     // it goes whole, unforecast: its writes waited their time
                // bound, or no stall can make room (disarmed, full disk)
  };
  Next next_ = Next::kForecast;
  bool holding_ = false;
  uint64_t target_ = 0;  // the stall ends once the reclaimable bytes are at most this
  bool copy_wait_ = false;  // ... and no copy beyond its share stands (HoldBatch: the batch fits but for it)
  Clock::time_point began_{};  // this stall's beginning (for the counts)
  // The time bound runs from the first stall of a batch, over every stall
  // of its rest after a split: a batch's writes wait at most max_stall_ in
  // stalls, however many times it is split.
  Clock::time_point since_{};
  // The current batch was held or split: since_ is its, and it is forecast
  // even with nothing reclaimable (the room made for it may be all there was).
  bool batch_held_ = false;
  bool rest_pending_ = false;  // HoldBatch split a batch: its rest comes next
  uint64_t seen_catch_up_ = 0, seen_catch_up_progress_ = 0, seen_catch_up_view_pinned_ = 0;
  // Catch-up passes begun before this stall's trigger: the verdict of one
  // of them (it picked for an earlier target) does not end it.
  uint64_t begun_before_ = 0;
  bool retry_catch_up_ = false;  // the last catch-up pass waited for the key view's pin
  bool disarmed_ = false;         // until a pass makes progress
  uint64_t disarmed_progress_ = 0;
  // For the summary line.
  Clock::time_point last_log_{};
  Clock::time_point last_warn_{};
  uint64_t window_stalls_ = 0, window_us_ = 0;
};

}  // namespace kingx
