// Writer: the single writer of a database. Lives only in the writer process
// (or kingx-tool), and one thread calls it at a time (compaction coordinates
// with that thread; it does not call the Writer concurrently).
//
// Open recovers the data directory into the SharedIndex, then Apply appends
// batches of puts and deletes with group commit: one buffer, one write()
// call, one fdatasync per batch (SyncMode::kAlways), index updates published
// after the sync (under kAlways readers never see a write that is not durable), then
// each op's result. Under kInterval / kNone an op is reported once its bytes
// were written (durable at the next Sync / SyncIfDue / rotation). A batch that
// does not fit the room left in the active segment is committed in two parts
// around the segment rotation, each part with its own write and fdatasync.
// Large values (BeginLarge...) are always made durable before they are reported.
//
// Compaction (engine/compaction.h) runs on another thread of the writer
// process and serializes its short install steps with these calls through
// an internal mutex.
//
// Failure states:
//  - fdatasync failed (any file): nothing of that batch is published, and
//    every later call returns kReadOnly until the Writer is destroyed and the
//    database reopened (recovery then decides what survived). A batch whose
//    records were written before the failed fdatasync (or a large value
//    renamed before the failed directory sync) is answered kOutcomeUnknown:
//    the next open may find it applied or not. fsync is never retried after
//    an error.
//  - write() failed with ENOSPC / EIO: the ops of that batch fail with
//    kNoSpace / kIOError, the partial bytes are truncated away, nothing is
//    published, later batches may succeed. If the truncate itself fails, the
//    writer turns read-only as above.
//  - the index refused a record that is already in the file (its shared
//    region is full): that op is answered kOutcomeUnknown (the next open
//    finds the record, unless a power loss drops it first) and the writer
//    turns read-only as above.
//  - the disk is nearly full: a put that would leave less free space than
//    Options::disk_reserve_bytes fails with kNoSpace before anything is
//    written (engine/disk_space.h); deletes still go through. Puts succeed
//    again as soon as free space is back (no reopen needed).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/disk_space.h"
#include "engine/env.h"
#include "engine/options.h"
#include "engine/record.h"
#include "engine/status.h"

namespace kingx::engine {

class SharedIndex;
class KeyspaceRegion;
struct KeyspaceOptions;

enum class OpType : uint8_t { kPut, kDelete };

// A condition decided by the writer at apply time, atomically with the write.
struct Condition {
  enum class Kind : uint8_t {
    kNone,
    kIfAbsent,  // PUT only: the key must not exist (If-None-Match: *)
    kIfMatch,   // PUT or DELETE: the key must exist with this seq (If-Match: "<seq>")
  };
  Kind kind = Kind::kNone;
  uint64_t seq = 0;  // for kIfMatch
};

// One write. The views must stay valid until Apply returns.
struct WriteOp {
  OpType type = OpType::kPut;
  std::string_view key;           // 1..max_key_bytes bytes, any bytes
  std::string_view content_type;  // <= 255 bytes; PUT only (ignored for DELETE)
  Codec codec = Codec::kRaw;      // how `stored` is encoded (EncodeValue)
  std::string_view stored;        // the stored value bytes (PUT only)
  uint64_t raw_len = 0;           // the value's decoded size (PUT only; == stored.size() for kRaw)
  Condition condition;
};

struct WriteResult {
  // OK; kNotFound (DELETE of a missing key, nothing written);
  // kPreconditionFailed; kInvalidArgument / kTooLarge (bad op, nothing
  // written); kNoSpace / kIOError (batch failed, not applied); kOutcomeUnknown
  // (written, but its fdatasync failed or the index refused it: a reopen may
  // find it or not); kReadOnly.
  Status status;
  uint64_t seq = 0;      // the record's seq when OK (the new ETag)
  bool existed = false;  // the key was present before this op (PUT 204 vs 201)
};

struct SegmentStats {
  uint32_t id = 0;
  uint64_t bytes = 0;       // file size
  uint64_t live_bytes = 0;  // bytes of records the index points to
  uint64_t dead_bytes = 0;  // overwritten or deleted records, tombstones, corrupt records
  // The segment being appended to; in Writer::Stats of a read-only open,
  // the one the next writing open appends to (none when that open starts a
  // new one).
  bool active = false;
  bool missing = false;     // listed in the MANIFEST but its file is gone (keys read from its hint)
  // The highest seq of a record in it (0: none yet), or kUnknownMaxSeq where
  // it is not tracked (compaction outputs, segments without records at open).
  static constexpr uint64_t kUnknownMaxSeq = UINT64_MAX;
  uint64_t max_seq = kUnknownMaxSeq;
};

struct WriterStats {
  uint64_t keys = 0;
  uint64_t live_bytes = 0;
  uint64_t dead_bytes = 0;
  uint64_t segments = 0;
  uint64_t corruptions = 0;       // damage found: records, headers, hints, missing files (recovery and reads)
  uint64_t missing_segments = 0;  // segments the MANIFEST lists whose files are gone
  uint64_t next_seq = 0;
  uint64_t batches = 0;           // Apply calls that wrote something
  uint64_t last_batch_ops = 0;    // ops written by the last such Apply
  uint64_t syncs = 0;             // fdatasync calls on the write path
  uint64_t last_sync_us = 0;      // latency of the last one
  uint64_t total_sync_us = 0;     // sum of all of them
  std::vector<SegmentStats> per_segment;  // ascending id
};

// One segment file of a point-in-time cut (Writer::PinSegments).
struct SegmentFileCut {
  uint32_t id = 0;
  uint64_t bytes = 0;   // the file's size at the cut (the active segment may grow past it)
  bool active = false;  // the segment being appended to at the cut
  bool missing = false;  // listed in the MANIFEST but its file is gone (bytes 0): a copy has no file either
  uint64_t birth = 0;   // its birth number (engine/manifest.h)
  uint64_t sealed_bytes = 0;  // its seal in the MANIFEST (0: active, or none known)
};

// The database at one instant: every segment file that holds a record of it,
// with the sizes that make up exactly the writes applied before the cut.
struct DatabaseCut {
  uint64_t seed = 0;
  uint64_t next_seq = 0;                  // the first seq after the cut
  uint64_t seq_high_water = 0;            // the MANIFEST's mark at the cut (>= next_seq)
  std::vector<SegmentFileCut> segments;   // ascending id

  // The ids of `segments`, ascending (what PinSegments pinned).
  std::vector<uint32_t> ids() const;
};

// The MANIFEST of a copy made of exactly the cut's segment files (a backup):
// its segments with their births, its seed and seq high-water mark. Pure.
std::string EncodeCutManifest(const DatabaseCut& cut);

class Writer {
 public:
  // Opens (creating if needed) the database in dir and recovers it into
  // index (engine/recovery.cc): Clear, load hint files or read segments
  // (engine/segment_scan.h: damage is skipped, counted and reported through
  // options.log_error, never taken for the end of the log while valid records
  // follow; a torn tail of the active segment is cut), resolve each key to its
  // highest-seq record (deletes and damaged records included), check the
  // MANIFEST for missing segments, count live/dead bytes; set the seed and
  // counters, then mark the index ready.
  // env and index must outlive the Writer; the index region is the caller's.
  // With options.read_only, nothing in dir changes (Options::read_only).
  // Errors: kBusy (the directory is held by another process, when
  // options.take_lock: engine/data_dir_lock.h; or out of descriptors), kInvalidArgument (bad options), kIOError / kNoSpace,
  // kCorruption when a record that decides a key's state cannot be read (an
  // open never guesses). Damage alone never makes it fail.
  static Result<std::unique_ptr<Writer>> Open(Env& env, std::string dir, const Options& options,
                                              SharedIndex& index);

  // Syncs the active segment (unless read-only), finishes its hint with its
  // length (so the next open reports a cut of the file made after the close
  // as damage), and closes files. The index stays ready and valid (readers
  // keep reading).
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Applies ops in order as one group commit and fills results[i] for ops[i]
  // (results.size() == ops.size()). Conditions see the effect of earlier ops
  // of the same batch. Ops that fail validation or their condition write
  // nothing and do not affect the others. Durable per options.sync when a
  // result is OK.
  void Apply(std::span<const WriteOp> ops, std::span<WriteResult> results);

  // ---- Pipelined group commit (SyncMode::kAlways) ----
  // Submit decides ops as Apply does (conditions also see every earlier
  // submitted op, finished or not), writes their records and hands the
  // fdatasync to the writer's sync thread, then returns at once with the
  // batch's ticket (1, 2, 3 ... in submission order): the next batch can be
  // decided and written while this one is being made durable. Its results
  // come from TakeFinished. A record is published (index, listing) and
  // reported OK only after an fdatasync that started after it was written
  // returned success, and every fdatasync started before that one did too
  // (with Options::sync_depth above 1 several run at once: batches still
  // finish in submission order, and a later sync's success never covers an
  // earlier batch). When an fdatasync fails, every submitted op whose
  // record was written and not yet covered by successful syncs finishes
  // kOutcomeUnknown, whatever the syncs still running return, and the
  // writer turns read-only (fsync is never retried). Under kInterval /
  // kNone a batch finishes within Submit.
  // The ops' views must stay valid until their batch is taken.
  //
  // Every other call that takes the writer's lock (Apply, large values,
  // Sync, Stats, cuts, compaction's steps, the key view's) first waits for
  // the sync in flight and finishes what it covered, so each of them sees a
  // writer with nothing in flight (it may wait one fdatasync).
  //
  // sync_by kCaller: the batch's fdatasync is not handed to the sync thread;
  // the caller runs it with SyncSubmitted() on its own thread, which spares
  // the two wake-ups between threads per group commit (the sync thread's, and
  // the caller's when the sync returns). Until the caller does, any wait for
  // the batches in flight (TakeFinished with wait, the lock's drain) hands
  // that fdatasync to the sync thread, so it is delayed, never lost.
  enum class SyncBy : uint8_t { kSyncThread, kCaller };
  uint64_t Submit(std::span<const WriteOp> ops, SyncBy sync_by = SyncBy::kSyncThread);
  // Runs, on the calling thread, the fdatasync that the batches submitted
  // with SyncBy::kCaller wait for, unless it is covered already or the sync
  // thread runs it now. Blocks for that fdatasync, without taking the
  // writer's lock (other threads that take the lock wait for it, as for the
  // sync thread's). Returns whether it ran one: afterwards TakeFinished finds the
  // batches it covered final (published, or failed with it) without waiting.
  // Does not call Options::on_synced (the caller knows). Writer thread.
  bool SyncSubmitted();

  // What applying `ops` now would do to the accounting, for a caller that
  // decides whether to let the batch go yet (the write stall): an upper
  // bound of the dead bytes it creates (the live records its keys' newest
  // puts hold, its tombstones, and a put that a later op of the same batch
  // supersedes) and the bytes of the puts it writes, counted from the
  // published counters it returns (index_live_bytes, index_dead_bytes, read
  // with it): the batches in flight, which those counters do not show yet,
  // are part of the forecast (their puts, the records they kill, and the
  // keys they write, as this batch's ops see them). Conditions are not
  // checked (an op that would fail counts as if it went ahead; a delete of a
  // missing key counts nothing). Looks each key up (index and record header:
  // as much as deciding the batch does). Writer thread. It takes the
  // writer's lock as Submit does: without waiting for the fdatasync in
  // flight or finishing any batch. A key that cannot be read counts nothing
  // for it.
  struct BatchForecast {
    uint64_t dead_bytes = 0;
    // The part of dead_bytes that was live: before the forecast, or put by
    // a batch in flight or by this batch and killed by a later op.
    uint64_t killed_live_bytes = 0;
    uint64_t put_bytes = 0;  // of the batches in flight and this batch
    uint64_t index_live_bytes = 0;  // the published counters the forecast adds to
    uint64_t index_dead_bytes = 0;
  };
  BatchForecast Forecast(std::span<const WriteOp> ops);
  // The oldest submitted batch whose outcome is final, if any: its ticket and
  // its results (one per op, in order; *results is resized). With wait, blocks
  // until the oldest batch in flight is final when none is yet (returns false
  // only when nothing was submitted and not taken). Never blocks otherwise.
  bool TakeFinished(uint64_t* ticket, std::vector<WriteResult>* results, bool wait);
  // Submitted batches not yet taken.
  size_t Unfinished() const;
  // True when no fdatasync of submitted batches runs or waits: every batch in
  // flight is final for TakeFinished (covered by a sync that returned, or
  // failed). After a success it publishes and finishes nothing, so a caller
  // can submit its next batch (whose fdatasync then starts at once) before it
  // takes and answers the synced ones. After a failure the batches in flight
  // finish with it and the writer is read-only when this returns (a batch
  // submitted then is refused kReadOnly, not written). Never waits for a sync.
  bool SyncIdle();
  // True when a batch submitted now (SyncBy::kSyncThread) would have its
  // fdatasync start at once: fewer than Options::sync_depth fdatasyncs of
  // submitted batches run and no request waits for one of them to return
  // (SyncIdle implies it). After a failure the batches in flight finish as
  // with SyncIdle, and it is false. Never waits for a sync.
  bool SyncRoom();

  // ---- Large values, written in parts into a staged single-record segment ----
  // Starts one: op gives key, content_type, codec and condition (stored and
  // raw_len are ignored). Returns an id for the calls below. Several may be
  // open at once. Errors: kInvalidArgument, kIOError / kNoSpace, kReadOnly.
  Result<uint64_t> BeginLarge(const WriteOp& op);
  // Appends the next stored bytes (for kZstd: whole frames from CompressFrame).
  // kTooLarge past the limits. On any error the large value is aborted
  // (its id becomes invalid).
  Status AppendLarge(uint64_t id, std::string_view stored_part);
  // Checks the condition, writes the header, fdatasyncs, renames the staging
  // file into a new segment, syncs the directory, publishes, and fills
  // *result as Apply does. The id is invalid afterwards, whatever the outcome.
  void FinishLarge(uint64_t id, uint64_t raw_len, WriteResult* result);
  // Drops a large value being staged (its staging file is removed). Unknown ids are ignored.
  void AbortLarge(uint64_t id);

  // ---- Durability ----
  // SyncMode::kInterval: fdatasync when data was written since the last sync
  // and now_ms (any monotonic clock, the same on every call) is at least
  // sync_interval_ms after the last sync. Other modes: OK, nothing done.
  // A failure turns the writer read-only.
  // due_ms (may be null): when the next call is due, on the same clock, for
  // what is unsynced now or written before that call to be synced within
  // sync_interval_ms of it (the last sync, or the last call that found
  // nothing unsynced, plus the interval): a caller that sleeps between
  // calls wakes then. UINT64_MAX: no call is due (other modes, read-only).
  Status SyncIfDue(uint64_t now_ms, uint64_t* due_ms = nullptr);
  // fdatasync of the active segment now (any mode). A failure turns the writer read-only.
  Status Sync();
  // Writes the active segment's hint entries buffered since its last write
  // (no fdatasync; no system call when none are buffered). Between writes
  // the hint holds up to ~1 MiB of entries in memory, which a crash loses;
  // the owner calls this when it has nothing else to do, so that a crash at
  // rest leaves a hint naming every record of the active segment (recovery
  // names a record whose key bytes were damaged by its hint entry). A failed
  // write costs only that naming (the next open rebuilds the hint): no error.
  void FlushHint();

  // True after an fdatasync failure, or when opened with Options::read_only:
  // every write returns kReadOnly. Takes no lock (does not wait for a sync in flight).
  bool read_only() const;

  // ---- Free space (engine/disk_space.h) ----
  // The data directory's disk as the writer last saw it.
  DiskState disk_state() const;
  // Measures free space again (one statvfs), so that the full state clears
  // when space came back while nobody writes. Any thread.
  void RefreshDiskState();
  // "N bytes free, M kept in reserve ..." for logs.
  std::string DescribeDisk() const;

  WriterStats Stats() const;

  // How many times a write made a sealed segment of at least
  // kDeleteScannedBytes (compaction_policy.h) hold nothing live any more and
  // could not delete it itself: a cheap signal for a PassKind::kDeadOnly
  // pass. A segment that held only the killed record (a large value's own)
  // is deleted by the write as it is published (SyncMode::kAlways) and not
  // counted, unless a cut pins it or a compaction pass has it as an input.
  // Also counts a segment of that size sealed with nothing live (writes
  // killed its records while it was the active segment).
  // Any thread; counts from the open.
  uint64_t emptied_segments() const;

  // Bytes that batches submitted and written to the active segment hold
  // while not yet published (Submit adds a batch's record bytes, its
  // publication or its failed sync takes them off): on disk, and in neither
  // the live nor the dead count of the index. Any thread.
  uint64_t unpublished_bytes() const;

  // ---- Sorted key view (listing; engine/keyspace.h) ----
  // Starts maintaining the sorted view of the keys in `region` (formatted by
  // KeyspaceRegion::Create, shared with the readers' KeyLister), its runs in
  // options.dir. Call once, on the writer thread, right after Open and
  // before any write. The view completes in the background (region state
  // kBuilding, then kReady). A read-only database (Options::read_only) needs
  // options.persist = false and a directory outside its own. Errors:
  // kInvalidArgument (already started, bad region, the read-only rule),
  // kIOError / kNoSpace (the directory cannot be prepared).
  Status StartKeyspace(const KeyspaceRegion& region, const KeyspaceOptions& options);
  // Blocks until the view is ready (OK) or timeout_ms passed (kBusy);
  // kInvalidArgument when StartKeyspace was not called.
  Status WaitKeyspaceReady(uint64_t timeout_ms);

  // ---- Point-in-time cut (online backup) ----
  // Takes, under the writer's lock (a few microseconds, no I/O, never waits
  // for an fdatasync), the cut of the database as of every write published
  // so far: every batch whose results were taken or could be taken now
  // (TakeFinished), each one made durable first under SyncMode::kAlways. A
  // submitted batch still waiting for its fdatasync is not in the cut (the
  // cut ends where its records start; cut.next_seq is its first seq), so the
  // cut is a prefix of the log that holds only durable bytes, whatever
  // happens to the sync in flight. Every write acknowledged before the call
  // was published before it, so it is in the cut. Then it pins the cut's
  // segment files against deletion: compaction keeps a pinned segment, dead,
  // until it is unpinned, and no new segment takes a pinned id, so each file
  // of the cut keeps its bytes (sealed ones whole; the active one at least
  // up to its cut size) and its inode. Segments that are not in the cut
  // (created after it) are compacted and deleted as usual.
  // Pins nest per segment: each successful call needs one
  // UnpinSegments(cut.segments' ids). Any thread of the writer's process.
  Result<DatabaseCut> PinSegments();
  // Pins the given segment ids (one more holder each) without taking a cut:
  // a new writer process holding again the cut a previous one had pinned,
  // before its compaction starts. Ids that name no segment are pinned too
  // (no new segment takes them).
  void PinSegmentIds(const std::vector<uint32_t>& ids);
  // Gives back one holder of each id (PinSegments' cut or PinSegmentIds).
  void UnpinSegmentIds(const std::vector<uint32_t>& ids);
  // Segment ids pinned now (by cuts; not counting the key view's jobs, which
  // hold every segment). For tests and logs.
  size_t pinned_segments() const;

  const std::string& dir() const;

  // The state behind the API (engine/writer_impl.h), named here only so that
  // engine-internal code (recovery, rotation, compaction) can reach it.
  struct Impl;

 private:
  // engine/compaction.cc reaches impl_ (under Impl::mu_) to install its outputs.
  friend class Compactor;
  explicit Writer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kingx::engine
