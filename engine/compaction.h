// Compaction: rewrites the live records of sealed segments that are mostly
// dead into new segments, then deletes the old files, so that overwritten and
// deleted values stop taking disk space. Lives in the writer process (or
// kingx-tool), next to the one Writer of the database.
//
// One pass (Compactor::RunOnce):
//  0. When the active segment holds at least a quarter of segment_bytes (any
//     size offline: CompactionOptions::offline) and would be picked by the
//     rules below (compaction_policy.h, SealActiveFirst) and there is room to
//     copy its live records, seal it first (the writer rotates to a new one),
//     so that dead records are reclaimable wherever they are.
//  1. Pick sealed segments whose dead fraction
//     (dead bytes / file bytes, not counting tombstones that must stay) is at
//     least Options::compaction_dead_ratio; when the data directory's free
//     space is below CompactionOptions::low_space_bytes, any segment with
//     dead bytes, the most profitable (most bytes freed per byte copied) first;
//     and, while the sealed segments' dead fraction as a whole passes
//     CompactionOptions::max_dead_fraction, the most profitable others too
//     (in a catch-up pass beside a write stall, one holding more than a
//     quarter of the live data only when its copy fits or the stall needs
//     it: CompactionOptions::stall_floor_bytes).
//     Then small sealed segments, so that the number of files follows the
//     bytes stored (compaction_policy.h, PickSegments). Never a pinned
//     segment (an online backup's cut; every segment while the key view's
//     catch-up or rebuild reads them): it could not be deleted, and a pass
//     that found only such segments would back compaction off.
//  2. For each picked segment in that order, copy every record the index still
//     points to (and each tombstone that must stay, see below) into an output
//     segment "compact-N.tmp" (flag sealed-at-birth, records keep their seq, so
//     ETags do not change). Puts the index no longer points to are skipped by
//     their header: their bodies are neither read nor paced. When the output
//     is full, after an input once the inputs waiting on it are worth it
//     (FinishOutputAfterInput: a segment's worth, or twice the output; in a
//     catch-up pass, once deleting them frees more than the output takes,
//     FinishCatchUpOutputAfterInput), or when the inputs are done:
//     fdatasync it, write and fdatasync its hint file, rename it to its
//     segment name, fsync the directory, and only then switch each key's index
//     entry to the copy if it still points to the original (a newer write
//     wins: SharedIndex::Replace). Then delete every input whose records are
//     all in installed outputs (unlink segment, unlink hint, bump the index's
//     segment_epoch so readers drop their mappings).
//  3. A tombstone of seq t is dropped when the key has a newer durable put in
//     the index (sync=always only), or when every other segment (other inputs
//     included) provably holds no record of seq < t: its seq floor is above t,
//     or it is a compaction output of this process made after seq t was
//     assigned (it only holds records that were live then). Otherwise it is
//     copied: deleting the input would otherwise let an older put resurrect.
//
// Progress across crashes: what a finished output holds stays done after a
// crash (recovery keeps the later-born copy of a record, so the next pass
// finds the originals dead and skips them), and the inputs it completed are
// gone; a crash loses at most the work since the last finished output.
//
// Crash safety: at every instant each live record has at least one complete,
// durable copy under a segment name; two copies of a record have the same seq
// and recovery keeps one (highest seq wins, ties keep either). A crash leaves
// at most a "*.tmp" (removed by recovery) or an orphan hint (removed too).
//
// Space: at most one output segment (segment_bytes) is written before inputs
// are freed (in a catch-up pass, about one input's live bytes); before each output the free space must exceed the output's size
// plus a quarter (its hint) plus CompactionOptions::free_margin_bytes, else
// the pass stops with kNoSpace. That is the room Options::disk_reserve_bytes
// keeps from puts (segment_bytes x 1.25 + 1 MiB by default), so compaction
// can copy on a disk that puts have filled. Inputs with nothing to copy are deleted without writing anything,
// so compaction frees a full disk (after deletes) without needing space.
// ENOSPC/EIO while writing an output: the partial output is removed, its
// inputs are kept, the pass returns the error; nothing is lost and the writer
// is not affected (compaction never turns the writer read-only).
//
// Concurrency: the writer thread keeps calling Writer::Apply etc. while a pass
// runs on another thread. Compaction does its file I/O without any lock and
// takes the writer's internal mutex (Writer::Impl::mu_) only for short steps:
// allocating an id, switching at most install_batch index entries, updating
// the per-segment stats, forgetting a deleted segment. Readers in other
// processes never take a lock: they read either location; one that looked up
// the old location after it was deleted gets ENOENT and retries its lookup
// (engine/reader.cc), one that had it mapped keeps reading the mapping.
//
// Throttling: reads of inputs and writes of outputs are paced to
// rate_bytes_per_sec (sleeping outside any lock), except in a catch-up pass
// (PassKind::kCatchUp) and while Hurry(true) holds: then writes are waiting
// for compaction, and pacing would only make them wait longer.
//
// On disk (engine/FORMAT.md's formats, nothing new): an output is built as
// "compact-N.tmp" (recovery removes any *.tmp) with its hint "seg-N.hint"
// (recovery removes a hint without its segment), then renamed "seg-N.kxd".
// Its segment header has flag kSegmentFlagSealedAtBirth (never the active
// segment) and seq_floor = the smallest seq it holds; records are byte-for-byte
// copies of the originals (same seq, checksums, codec), in input order.
//
// Kill points (KINGX_KILL_POINT, for crash tests): compact.before_input
// (before each input is read), compact.before_write,
// compact.after_write, compact.before_sync, compact.after_sync,
// compact.before_hint, compact.after_hint, compact.before_rename,
// compact.after_rename, compact.before_dir_sync, compact.after_dir_sync,
// compact.mid_install (after each batch of index switches),
// compact.before_unlink, compact.after_unlink, compact.after_unlink_hint,
// compact.before_final_dir_sync.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "engine/status.h"
#include "engine/writer.h"

namespace kingx::engine {

struct CompactionOptions {
  // Pacing of compaction I/O (input bytes read + output bytes written); 0 = unthrottled.
  uint64_t rate_bytes_per_sec = 64ull << 20;
  // Index entries switched per hold of the writer's mutex.
  uint32_t install_batch = 256;
  // Below this many free bytes in the data directory's file system, compaction
  // picks any segment with dead bytes, most profitable first. 0 = the larger
  // of 2 x segment_bytes and Options::disk_reserve_bytes + segment_bytes (so
  // a disk on which puts are refused always counts as low on space).
  uint64_t low_space_bytes = 0;
  // Space bound on top of the per-segment threshold: when the dead
  // (reclaimable) bytes of sealed segments pass this fraction of their bytes,
  // a pass also takes the most profitable segments below the threshold until
  // the fraction falls under it. 0 = only the threshold. Under uniform
  // overwrites the threshold alone lets a segment's dead bytes grow to the
  // threshold's share before it is picked, so disk usage stays well above
  // the live data; a lower bound trades more compaction writes for less disk
  // (bench/compaction_bench.sh measures both).
  double max_dead_fraction = 0.25;
  // Free bytes that must remain after an output segment and its hint are
  // written (room for deletes' tombstones). Below the 1 MiB the default
  // reserve keeps beyond an output, so that the active segment's hint and
  // tombstones written since the disk filled do not use up the slack.
  uint64_t free_margin_bytes = 512ull << 10;
  // Pick every sealed segment whatever its dead fraction (tests), and the
  // active one too once it has dead records: rewrites the whole database.
  bool pick_all = false;
  // Pick every sealed segment that holds reclaimable bytes, whatever its
  // dead fraction, and the active one too once it has dead records
  // (kingx-tool compact --all): every dead byte back, no segment without
  // one copied.
  bool pick_reclaimable = false;
  // Nothing else writes to the database (kingx-tool holds the data
  // directory's lock and appends nothing after its passes): the active
  // segment is sealed for a pass whenever the rules would pick it as a
  // sealed one (its dead fraction, pick_all, pick_reclaimable, low space), whatever its size
  // (online, a small active segment is left to the writes that fill it).
  // The rotation leaves a fresh active segment, the one the next open
  // appends to; a crash around it is the online seal's (kill points
  // seal.* and rotate.*).
  bool offline = false;
  // The writer process's write stall (src/writer/write_stall.h): its floor
  // (WriteStallBoundsFor) and the bytes of large uploads being staged. With
  // a floor, a catch-up pass copies a segment holding more than a quarter of
  // the live data for the space bound or its target only while the writes
  // wait (the reclaimable bytes above the pass's target) and its copy fits
  // beside what stays reclaimable and staged (compaction_policy.h,
  // LargeCopyFits), or more than the stall's end bound would stay
  // reclaimable without it (LargeCopyNeeded), checked at the pick and again
  // when its turn comes. 0: no write stall (kingx-tool, most tests): copied
  // like any other segment; so are an ordinary pass's.
  // staged_bytes may be empty (none); called from the pass's thread.
  uint64_t stall_floor_bytes = 0;
  std::function<uint64_t()> staged_bytes;
  // Free bytes of the file system holding dir; empty = Env::Space(dir) (the
  // file seam, where FaultInjectionEnv can pin it too).
  std::function<Result<uint64_t>(const std::string& dir)> free_bytes;
  // Receives one line per problem (no newline): a pass that failed, a
  // segment left alone as damaged or unreadable, no room for an output, an
  // active segment's seal for compaction that failed. May be empty.
  std::function<void(const std::string& line)> log;
  // Receives the routine lines (no newline): per pass that picked something
  // and ended well, its summary (picked, deleted, written, freed, time) and
  // the detail for a diagnosis (why it ran, each input with its live, dead
  // and reclaimable bytes and the rule that picked it, and the largest
  // output it held on top of the inputs waiting on it); an active segment
  // sealed to be compacted. May be empty.
  std::function<void(const std::string& line)> log_debug;
};

// Counters since the Compactor was made (cumulative over passes). A pass's
// counts are added together when it ends: stats() never shows part of a pass.
struct CompactionStats {
  uint64_t passes = 0;                // RunOnce calls that found something to do
  uint64_t segments_compacted = 0;    // input segments deleted
  uint64_t segments_written = 0;      // output segments installed
  // Input bytes read: segment headers, whole records copied or checked, and
  // only the header and key of a dead put (its body is skipped unread).
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;         // bytes of the output segment and hint files, whole
  uint64_t bytes_freed = 0;           // input file bytes deleted minus output file bytes
  uint64_t records_moved = 0;         // index entries switched to a copy
  uint64_t records_superseded = 0;    // copies a newer write beat during the pass (left dead)
  uint64_t tombstones_dropped = 0;
  uint64_t tombstones_kept = 0;
  uint64_t failures = 0;              // passes that ended with an error
  uint64_t last_pass_us = 0;
  // Not cumulative: tombstone bytes that the outputs of this Compactor had to
  // keep (dead, but not reclaimable while an older put of their key may be
  // elsewhere), as of the end of the latest pass.
  uint64_t kept_tombstone_bytes = 0;
};

// What one pass did.
struct PassReport {
  uint32_t inputs = 0;          // segments picked
  uint32_t deleted = 0;         // of which deleted
  uint32_t outputs = 0;         // output segments installed
  uint64_t bytes_freed = 0;     // file bytes deleted minus written
  // Segments it would have picked but left because the key view's catch-up
  // or rebuild pinned every segment (Writer::StartKeyspace; after an open
  // the catch-up holds the pin for tens of milliseconds). Not counted: the
  // segments of an online backup's cut (Writer::PinSegments), pinned for as
  // long as the backup runs.
  uint32_t view_pinned = 0;
  // Of the inputs, those left when their turn came because their copy no
  // longer fitted beside the reclaimable and staged bytes of then, or the
  // writes no longer waited for it (a segment holding more than a quarter
  // or half of the live data: LargeCopyFits, SplitOverHalf). Writes and
  // other passes change that room: such a pick does not make a pass
  // fruitless (CompactionThread).
  uint32_t left_for_room = 0;
};

// Write stall: the writer holds its next batch while compaction's backlog
// (reclaimable dead bytes, plus the bytes of writes in progress or waiting
// that will add to it) would pass begin_bytes, and lets writes go on once
// compaction brought the reclaimable bytes to end_bytes (or can do no more,
// or a time bound passed: the caller decides those).
struct WriteStallBounds {
  uint64_t begin_bytes = 0;
  uint64_t end_bytes = 0;
};

// The bounds for a database of live_bytes: writes wait while the backlog
// passes half the live bytes, and go on at a quarter, so that with what is
// not counted (hint files, the key view, a batch being written) the data
// directory stays under twice the live data; never below floor_bytes (a
// small database is not held back for every few overwrites). begin_bytes is
// max(live/2, floor), end_bytes half of it.
WriteStallBounds WriteStallBoundsFor(uint64_t live_bytes, uint64_t floor_bytes);

// The part of a copy in flight (Compactor::copy_bytes) beyond the quarter of
// live_bytes that the write stall's arithmetic allows a copy on top of its
// begin bound (a segment holds at most about that share of the live data:
// compaction_policy.h, RotateActiveForShare). The write stall counts it in
// its backlog, so that while a larger copy stands, reclaimable + staged +
// the copy stay within the begin bound plus that quarter; 0 for a copy
// within the share.
uint64_t CopyBeyondShare(uint64_t copy_bytes, uint64_t live_bytes);

// How hard a pass works.
enum class PassKind {
  kNormal,
  // Writes are waiting for compaction (a write stall, WriteStallBoundsFor
  // above): also pick the most profitable segments until a tenth of the
  // sealed bytes at most are reclaimable (kCatchUpDeadFraction), or, with a
  // target (Compactor::SetCatchUpTarget), until the reclaimable bytes are
  // within it, whichever comes first, seal the
  // active segment once it holds kCatchUpSealMinBytes and dead records
  // (compaction_policy.h), and do not pace I/O (the writes waiting are the
  // load).
  kCatchUp,
  // A write just made a sealed segment hold nothing live
  // (Writer::emptied_segments): delete the sealed segments with no live
  // record, nothing else (no sealing, no other picks, no pacing), so that
  // the space of a large value's own segment goes when the write that
  // superseded it is answered, not a pass later. Only with
  // SyncMode::kAlways (otherwise the superseding write may not be durable
  // yet); a pinned segment stays for a later pass. When another pass is
  // running, it does not wait: it deletes beside that pass the dead segments
  // the pass did not pick and whose tombstones all have a newer put of their
  // key (engine/compaction_dead.h), and returns kBusy if it left any dead
  // segment (the running pass's inputs, a tombstone that may have to stay):
  // the caller tries again after that pass.
  kDeadOnly,
};

class Compactor {
 public:
  // writer must outlive the Compactor. Does no I/O.
  Compactor(Writer& writer, CompactionOptions options);
  ~Compactor();
  Compactor(const Compactor&) = delete;
  Compactor& operator=(const Compactor&) = delete;

  // One pass (see the file comment). Any thread of the writer's process,
  // concurrently with the writer thread; passes run one at a time (a second
  // caller waits), except a kDeadOnly one, which runs beside the running pass
  // (see PassKind::kDeadOnly) and returns kBusy when it left something to it.
  // OK also when there was nothing to do (report->inputs == 0).
  // Errors: kNoSpace (not enough free space for an output, or ENOSPC while
  // writing one), kIOError, kCorruption (an input failed its checksums: that
  // segment is left alone from then on and the pass goes on without it;
  // the error is reported at the end), kBusy (RequestStop was called: the
  // pass stopped at a clean point), kReadOnly (the writer is read-only).
  // After any error the database is consistent: every input not deleted is
  // intact, no partial output remains.
  // cause: why the pass runs, for log_debug only (e.g. "timer").
  Status RunOnce(PassReport* report = nullptr, PassKind kind = PassKind::kNormal, const char* cause = nullptr);

  // Makes a running (or the next) RunOnce stop at its next clean point with
  // kBusy. Any thread. ClearStop re-enables passes.
  void RequestStop();
  void ClearStop();
  // Makes a running (and every later) pass stop pacing its I/O until
  // Hurry(false): writes are waiting for it. Any thread.
  void Hurry(bool on);
  // The reclaimable bytes the next PassKind::kCatchUp passes reclaim down
  // to, and no further: writes wait until compaction made that much room.
  // Above a tenth of the sealed segments' bytes any segment may be copied
  // for it, below only those worth it (TargetCopyWorthIt). UINT64_MAX: no
  // target; the passes go down to that tenth. Any thread.
  void SetCatchUpTarget(uint64_t reclaimable_bytes);

  CompactionStats stats() const;

  // The bytes a pass's copy stands beside its inputs with: the output being
  // written (a "compact-N.tmp") plus the live bytes still to copy of the
  // input being copied into it (announced when the input's turn comes,
  // before the output is created or grows), so the whole copy counts from
  // its start. 0 between passes and once an output is installed (its copies
  // then count as its inputs' dead bytes until the inputs are deleted).
  // A gauge for the write stall (CopyBeyondShare); any thread.
  uint64_t copy_bytes() const;

  struct State;  // compaction.cc

 private:
  // A kDeadOnly RunOnce while another pass runs (compaction_dead.h).
  Status RunDeadOnlyBeside(PassReport* report);

  Writer& writer_;
  const CompactionOptions options_;
  std::unique_ptr<State> state_;
};

// Runs Compactor passes on a background thread of the writer process: one
// pass every interval_ms (when something passes the threshold) and whenever
// Trigger() is called.
//
//   CompactionThread t(compactor, 1000);
//   t.Start();      // after Writer::Open
//   ...             // the writer thread keeps calling Apply
//   t.Trigger();    // e.g. on SIGUSR2 or an admin request (async-signal-safe: no)
//   t.Stop();       // before the Writer is destroyed; joins
//
// TriggerCatchUp asks for a PassKind::kCatchUp pass (the caller holds writes
// meanwhile); WaitForPass and the pass
// counters let the caller follow what the passes achieve.
//
// Start/Stop/Trigger may be called from any thread (not from a signal handler:
// set a flag there and call Trigger from the loop). A failed pass is logged
// through CompactionOptions::log.
//
// Back-off: a pass that picked segments but neither installed an output nor
// deleted a segment (no room, damaged segments, an error; pinned segments
// are not picked, see Compactor::RunOnce's picks in step 1; picks left at
// their turn for want of room beside the dead bytes, PassReport::
// left_for_room, do not count: the write stall's catch-up passes make that
// room, and a back-off would hold them and the stall with them) is
// fruitless; after one, the next pass waits CompactionBackoffMs (doubling from
// backoff_min_ms up to backoff_max_ms while passes stay fruitless), whatever
// the interval and Trigger() say, so that a stuck database is not read over
// and over. Trigger(true) (an explicit request) runs at once anyway. A pass
// that made progress, or found nothing to pick, ends the back-off.
struct CompactionBackoff {
  uint64_t min_ms = 1000;
  uint64_t max_ms = 60000;
};

class CompactionThread {
 public:
  // compactor must outlive this object. interval_ms > 0.
  CompactionThread(Compactor& compactor, uint32_t interval_ms, CompactionBackoff backoff = {});
  ~CompactionThread();  // Stop()
  CompactionThread(const CompactionThread&) = delete;
  CompactionThread& operator=(const CompactionThread&) = delete;

  void Start();    // no-op when running
  void Stop();     // stops a running pass at a clean point, joins; no-op when stopped
  // Runs a pass as soon as possible; during a back-off only when force.
  void Trigger(bool force = false);
  // Runs a PassKind::kCatchUp pass as soon as possible (not during a
  // back-off): writes wait for it, until the reclaimable bytes are at most
  // target_reclaimable_bytes (Compactor::SetCatchUpTarget; UINT64_MAX: the
  // pass's usual stop).
  void TriggerCatchUp(uint64_t target_reclaimable_bytes = UINT64_MAX);
  // Passes run by this thread (for tests and /metrics).
  uint64_t passes() const { return passes_.load(std::memory_order_relaxed); }
  // Passes that deleted or wrote a segment.
  uint64_t progress_passes() const { return progress_passes_.load(std::memory_order_relaxed); }
  // The PassKind::kCatchUp passes' counters, read as one snapshot: a pass's
  // counts appear together (they are updated and read under the thread's
  // lock), so that a reader comparing two snapshots never sees a pass's
  // progress without the pass.
  struct CatchUpCounts {
    uint64_t started = 0;   // catch-up passes begun (one may be running: started - passes)
    uint64_t passes = 0;    // catch-up passes run
    uint64_t progress = 0;  // of them, those that deleted or wrote a segment
    // Of them, those that neither deleted nor wrote a segment and left
    // segments for the key view's pin (PassReport::view_pinned): a pass
    // after the pin can make progress.
    uint64_t view_pinned = 0;
  };
  CatchUpCounts catch_up_counts() const;
  // Fruitless passes in a row (0 when not backing off).
  uint32_t fruitless() const { return fruitless_.load(std::memory_order_relaxed); }
  // Waits until passes() is above seen, at most timeout_ms. Returns passes().
  uint64_t WaitForPass(uint64_t seen, uint32_t timeout_ms);

 private:
  void Loop();
  Compactor& compactor_;
  const uint32_t interval_ms_;
  const CompactionBackoff backoff_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool triggered_ = false;
  bool forced_ = false;
  bool catch_up_ = false;
  std::condition_variable pass_done_;
  std::atomic<uint32_t> fruitless_{0};
  std::thread thread_;
  std::atomic<uint64_t> passes_{0};
  std::atomic<uint64_t> progress_passes_{0};
  CatchUpCounts catch_up_counts_;  // guarded by mu_
};

}  // namespace kingx::engine
