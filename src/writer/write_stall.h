// Write stall: the writer loop holds its next batch while compaction's
// backlog would let the data directory grow past about twice the live data,
// so that the bound holds at any write rate (the writes wait instead of the
// disk filling with dead records), as RocksDB's write stalls do.
//
// The backlog is the dead bytes compaction can reclaim (the engine's dead
// bytes less the tombstones compaction had to keep) plus the staged bytes of
// large values in progress; the bounds are engine::WriteStallBoundsFor (half
// and a quarter of the live bytes). A stall begins before a batch when the
// backlog plus the bytes waiting in the write queue (what the next batches
// can turn into dead or staged bytes) pass the begin bound and the
// reclaimable bytes are above the end bound (compaction has work to do). It
// asks for a catch-up pass (engine::PassKind::kCatchUp) and holds batches
// until:
//  - the reclaimable bytes are at or under the end bound (released), or
//  - a catch-up pass finished without deleting or writing anything: then
//    compaction can do no more for now (an online backup's pinned cut,
//    tombstones that must stay, damage), and no new stall begins until some
//    pass makes progress again; or
//    except when what kept the pass from progress was the key view's pin
//    of every segment (its catch-up after an open reads them for tens of
//    milliseconds; engine::PassReport::view_pinned): then the stall goes on
//    and asks for another catch-up pass every hold slice (10 ms), for at
//    most view_pin_wait_ms from the stall's beginning, after which it ends
//    as above (a rebuild of the view pins for longer); or
//  - it lasted max_stall_ms (a quarter of --storage-timeout-ms), and then
//    the next batch goes through before another stall may begin, so a
//    write never waits long enough to be answered "outcome unknown".
// No stall begins while the disk is full (puts are refused with 507 anyway)
// or while compaction backs off after fruitless passes.
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
// the reclaimable bytes leave room for it (or the end bound, if lower): its
// catch-up passes reclaim down to that target, past the tenth of the
// segments' bytes they stop at on their own (CompactionThread::TriggerCatchUp).
//
// The arithmetic of the bound (L live, R reclaimable, K tombstones that must
// stay, S staged uploads, C a compaction output being written, O hints, the
// key view's runs, the MANIFEST and the active segment's room):
//     directory = L + R + K + S + C + O.
// After each admitted batch R + S <= L/2 (for L >= 2 x the floor); while
// writes wait R only shrinks. A catch-up pass copies one input at a time
// (its output is finished once the inputs it completed free more than it
// holds), so C <= one segment's live bytes + 64 KiB <= L/4 + 64 KiB (the
// active segment is sealed past a quarter of the live data,
// engine::RotateActiveForShare). Hence
//     directory <= L + L/2 + L/4 + 64 KiB + K + O = 1.75 L + 64 KiB + K + O,
// within 2 L while K + O + 64 KiB <= L/4. Staged bytes count in the L/2:
// the large-upload path bounds them by a share of the live data (L/8; but
// one upload of any size alone, and one chunked upload past the share).
// K is what compaction had to keep; a dead-only pass beside a running pass
// drops what it deletes of it at once. Where this is not by construction:
// one batch that alone kills so much that no room compaction makes takes
// it (after X killed, the directory L + R + C + O must fit 2 (L - X): with
// R brought to nothing first and a catch-up copy C of up to L/4 after it,
// X up to about (3/4 L - O) / 2, 3/8 of L; the batch goes once compaction
// got as low as it can: kept tombstones, pins); the batch after a stall cut
// short by its time bound or ended because compaction made no progress
// (pins, tombstones that must stay), which goes unforecast; an ordinary
// (not catch-up) pass, whose output may collect several inputs' live data;
// a segment's share measured against the live data of when it was sealed
// (deletes since may have shrunk L); a database under twice the floor; an
// upload staged alone beyond the share.
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
  // it: there are reclaimable bytes, no stall was just cut short or
  // disarmed). Cheap.
  bool WantsForecast() const;
  // True: hold this batch (a stall began; the loop takes it again once Hold
  // lets a batch through). `forecast` is engine::Writer::Forecast of the
  // batch, `stored_bytes` its bytes in the queue's measure.
  bool HoldBatch(const engine::Writer::BatchForecast& forecast, uint64_t stored_bytes);

 private:
  using Clock = std::chrono::steady_clock;
  struct Backlog {
    uint64_t live = 0;
    uint64_t kept = 0;         // tombstones compaction had to keep
    uint64_t reclaimable = 0;  // dead bytes compaction can reclaim
    uint64_t staged = 0;       // staged bytes of large uploads
    uint64_t backlog = 0;      // reclaimable + staged bytes of large uploads
    uint64_t queued = 0;       // bytes waiting in the write queue (the next batches)
    engine::WriteStallBounds bounds;
  };
  Backlog Measure() const;
  bool CompactionCanHelp() const;
  // Begins a stall that lasts until the reclaimable bytes are at most target_bytes.
  void Begin(Clock::time_point now, const Backlog& b, uint64_t target_bytes);
  // Ends the stall; why is a short phrase for the log.
  void End(Clock::time_point now, const char* why);
  void MaybeLog(Clock::time_point now, const Backlog& b);

  SharedMemory& shm_;
  const engine::Compactor& compactor_;
  engine::CompactionThread& thread_;
  const std::chrono::milliseconds max_stall_;
  const std::chrono::milliseconds view_pin_wait_;

  bool holding_ = false;
  uint64_t target_ = 0;  // the stall ends once the reclaimable bytes are at most this
  // Hold let this batch through unforecast: a stall was cut short or ended
  // without making room, or none may begin now (time bound, disarmed).
  bool pass_next_ = false;
  Clock::time_point since_{};
  uint64_t seen_catch_up_ = 0, seen_catch_up_progress_ = 0, seen_catch_up_view_pinned_ = 0;
  bool retry_catch_up_ = false;  // the last catch-up pass waited for the key view's pin
  bool let_one_through_ = false;  // after a stall cut short by max_stall_
  bool disarmed_ = false;         // until a pass makes progress
  uint64_t disarmed_progress_ = 0;
  // For the summary line.
  Clock::time_point last_log_{};
  Clock::time_point last_warn_{};
  uint64_t window_stalls_ = 0, window_us_ = 0;
};

}  // namespace kingx
