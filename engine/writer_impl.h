// Writer::Impl: the writer's state, shared by writer.cc (group commit, large
// values, sync), recovery.cc (Open) and segment rotation. Internal to engine/.
//
// Invariants (between calls):
//  - active_ is the segment appended to; active_size_ its size, all of whose
//    bytes are valid records (a failed append is truncated away).
//  - the index maps each live key's hash to the location of its newest record;
//    segments_ holds every segment file's live/dead byte counts.
//  - next_seq_ is above every seq on disk and below the MANIFEST's durable
//    seq high-water mark (when there is a manifest_); every id in segments_ or
//    pending_ids_ is taken (AllocateSegmentId skips it).
//  - read_only_ once an fdatasync failed (or a truncate after a failed write):
//    nothing is written any more.
#pragma once

#include <algorithm>
#include <atomic>
#include <cassert>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "engine/disk_space.h"
#include "engine/env.h"
#include "engine/hint_file.h"
#include "engine/index.h"
#include "engine/keyspace.h"
#include "engine/manifest.h"
#include "engine/options.h"
#include "engine/record.h"
#include "engine/segment_cache.h"
#include "engine/segment_extender.h"
#include "engine/sync_thread.h"
#include "engine/writer.h"

namespace kingx::engine {

// What the index says about one key, read back from disk.
struct KeyState {
  bool exists = false;      // a put is the newest record
  bool damaged = false;     // the newest record cannot be read (seq unknown; total_bytes 0 when unknown)
  Location loc = 0;         // of the newest record (0 = none)
  uint64_t seq = 0;
  uint64_t total_bytes = 0;
};

// The keys written earlier in the batch Writer::Apply is deciding, which the
// index does not show yet: an open-addressing table on the keys' index
// hashes (never 0, the empty mark). It keeps its storage from batch to
// batch, so a batch no larger than the largest one seen allocates nothing.
// Keys are views: they must outlive the batch. One thread at a time.
class BatchOverlay {
 public:
  // Empties the table and makes room for `max_keys` keys.
  void Reset(size_t max_keys) {
    size_t capacity = 16;
    while (capacity < 2 * max_keys) capacity *= 2;
    if (slots_.size() < capacity) slots_.resize(capacity);
    mask_ = capacity - 1;
    Clear();
  }
  // Forgets every key; the room stays. A slot whose hash is 0 is empty
  // whatever else it holds (Find stops there, Set overwrites it whole).
  void Clear() {
    for (size_t i = 0; i <= mask_; ++i) slots_[i].hash = 0;
  }
  // The state recorded for `key` (whose index hash is `hash`), or null.
  const KeyState* Find(uint64_t hash, std::string_view key) const {
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.hash == 0) return nullptr;
      if (s.hash == hash && s.key == key) return &s.state;
    }
  }
  // Records (or replaces) the state of `key`. At most the `max_keys` given
  // to Reset distinct keys between Resets: then half the slots stay empty
  // and every probe ends.
  void Set(uint64_t hash, std::string_view key, const KeyState& state) {
    assert(hash != 0);
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.hash == 0 || (s.hash == hash && s.key == key)) {
        s = Slot{hash, key, state};
        return;
      }
    }
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    std::string_view key;
    KeyState state;
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

// One record of the batch Writer::Apply is writing, waiting for write, sync
// and publish.
struct PendingRecord {
  size_t op;
  uint64_t hash;
  Location loc;
  Location old_loc;  // the live put it supersedes, 0 if none
  uint64_t old_total;
  uint64_t total;
  uint64_t seq;
  RecordType type;
  std::string_view key;
  std::string_view content_type;  // puts: what a listing shows
  uint64_t raw_len;
};

// The state a key has after `p` is applied.
inline KeyState StateAfter(const PendingRecord& p) {
  KeyState next;
  next.exists = p.type == RecordType::kPut;
  next.loc = p.loc;
  next.seq = p.seq;
  next.total_bytes = p.total;
  return next;
}

struct Writer::Impl {
  Impl(Env& env, std::string dir, const Options& options, SharedIndex& index);

  // The writer's lock (see mu_), taken one of two ways.
  //  - lock(), "the draining way": returns holding the mutex with no batch
  //    in flight (inflight_ empty: every batch published, or failed with
  //    kOutcomeUnknown after a failed fdatasync, the writer then read-only)
  //    and no sync running or requested. Holders that seal, rotate, install
  //    index entries or read the active segment's bytes need this.
  //  - LockKeepingPipeline(): the raw mutex; batches may be in flight.
  //    Submit, TakeFinished, Unfinished, SyncIdle, and holders that only
  //    read or pin settled state (the key view's cut and pin, a backup's
  //    cut), use it.
  // Who may hold what while a batch is in flight: the mutex is never held
  // across the wait for a sync by anyone but the writer thread (which
  // answers the batches, so its own waits delay nobody else's answers). A
  // drainer that finds batches in flight counts itself in drainers_, lets
  // the mutex go, waits until the sync thread is idle, and takes the mutex
  // again; meanwhile the writer thread may take and publish the batches a
  // finished sync covered, and Submit (the only place a batch joins the
  // pipeline) waits on drained_cv_ until drainers_ is 0, so the drain ends:
  // once idle, whatever is still in flight is covered or failed, and
  // DrainLocked finishes it without waiting. A failed fdatasync is final
  // (SyncThread), so a drainer never sees a batch it covered published:
  // FinishSynced fails it, and the drainer finds the writer read-only.
  class CommitMutex {
   public:
    explicit CommitMutex(Impl* w) : w_(w) {}
    void lock();
    void unlock() { m_.unlock(); }
    void LockKeepingPipeline() { m_.lock(); }
    std::mutex& raw() { return m_; }

   private:
    std::mutex m_;
    Impl* const w_;
  };

  // ---- recovery.cc ----
  Status Recover();
  // Cuts segment id (size bytes, zero from `end` on) to `end` bytes and
  // syncs it; logs it. Read-only opens only log. Errors of the cut are returned.
  Status CutZeroTail(uint32_t id, uint64_t size, uint64_t end);
  // The open's outcome when `what` of segment id could not be read (why:
  // the read's error): logged at error level and returned as kIOError
  // naming the segment and the offset (a transient kBusy is returned as is).
  // An I/O error is not damage: recovery stops there and cuts nothing.
  Status Unreadable(uint32_t id, const char* what, const Status& why);
  // A writing open, before it creates a segment: moves next_segment_id_ past
  // every id the runs of the data directory's sorted key view (keys/MANIFEST)
  // name (keyspace_manifest.h). A MANIFEST that cannot be read (an I/O error)
  // is removed, so that the view's next open rebuilds instead of trusting it;
  // never fails the open.
  void StartPastKeyViewIds();
  // Keys to size the rebuilt index for, from (segment id, size) of every segment.
  uint64_t ExpectedKeys(const std::vector<std::pair<uint32_t, uint64_t>>& segments);
  // ---- rotation (segment_writer.cc) ----
  // Creates segment next_segment_id_ (header, hint file, fsync, dir fsync) and makes it active.
  Status CreateActiveSegment();
  // Seals the active segment (sync, hint trailer) and starts a new one.
  Status Rotate();
  // ~Writer's last step for the active segment, after its final fdatasync:
  // finishes its hint (trailer with active_size_, fdatasync), so that the
  // next open learns how long the segment was at the close and reports a
  // shorter file as cut rather than taking the loss for a torn tail. The
  // segment stays the active one. Only flushes the hint when the length is
  // not durable (read-only, unsynced bytes); a hint that cannot be finished
  // is removed (logged at error level).
  void FinishActiveHintAtClose();
  // A free segment id, reserved until it is in segments_ or Released (caller
  // holds mu_, or is recovery). Round robin over 1..kMaxSegmentId from
  // next_segment_id_, skipping ids of existing, missing, pending or pinned segments.
  // kNoSpace when every id is taken.
  Result<uint32_t> AllocateSegmentId();
  void ReleaseSegmentId(uint32_t id) { pending_ids_.erase(id); }
  // Makes sure that seqs up to next_seq_ + count are below a durable
  // high-water mark in the MANIFEST (reserving kSeqReserve more when not).
  // Caller holds mu_ (or is recovery). A failed fdatasync turns the writer read-only.
  Status ReserveSeqs(uint64_t count);
  // Where results are handed out (Apply, TakeFinished, the large calls):
  // counts each write answered kNoSpace once in disk_ (DiskSpace::Refused),
  // whichever step refused it.
  void CountRefused(std::span<const WriteResult> results);
  const Status& CountRefused(const Status& s);
  // ---- writer.cc ----
  // The newest record of key (index + on-disk key comparison). A candidate
  // whose header cannot be read while it carries the key's 64-bit hash is
  // taken as the key's damaged newest record (KeyState::damaged); any other
  // failure to read a candidate fails the call (never "absent" by guess).
  Result<KeyState> FindKey(std::string_view key, uint64_t hash);
  // FindKey's second half: which of the index's candidates for key (all the
  // index holds under key's hash) is key's newest record. With `hold`, the
  // cache's shared lock is kept in it from one call to the next
  // (SegmentCache::HeadHold: the caller releases it before any other use
  // of the cache).
  Result<KeyState> ResolveCandidates(std::string_view key, const Candidates& c,
                                     SegmentCache::HeadHold* hold = nullptr);
  // What PrefetchLookups leaves for up to kLookupWindow consecutive ops:
  // each key's KeyHash, and the index's candidates for it as the index was
  // then. The candidates stand for a new lookup only while the index has not
  // changed since, that is within the same hold of mu_ with no commit,
  // rotation or publication in between (the caller's to know).
  static constexpr size_t kLookupWindow = 16;
  struct LookupWindow {
    uint64_t hashes[kLookupWindow];
    Candidates candidates[kLookupWindow];
    bool looked_up[kLookupWindow];  // false: the lookup failed (FindKey reports why)
  };
  // Starts fetching what FindKey reads for the first kLookupWindow ops' keys
  // (each key's index slots, then the header and key of every record its
  // candidates point at) into the CPU cache, without waiting: the misses of
  // a batch's lookups then overlap instead of coming one op after the other.
  // No I/O, no error, no effect on the index or the cache. Caller holds mu_
  // (the index does not move meanwhile); a caller walking a batch calls it
  // at every kLookupWindow-th op. Fills window for ops
  // [0, min(ops.size(), kLookupWindow)), so that the caller neither hashes
  // those keys again nor probes the index for them a second time.
  void PrefetchLookups(std::span<const WriteOp> ops, LookupWindow& window);
  // FindKey for the j-th op of a window PrefetchLookups filled while the
  // index stood as it does now: its candidates resolved, without a second
  // probe (with `hold`, as ResolveCandidates).
  Result<KeyState> FindKey(std::string_view key, const LookupWindow& window, size_t j,
                           SegmentCache::HeadHold* hold = nullptr) {
    if (window.looked_up[j]) return ResolveCandidates(key, window.candidates[j], hold);
    if (hold != nullptr) hold->Release();
    return FindKey(key, window.hashes[j]);
  }
  void TurnReadOnly(const Status& cause);
  // What a write whose record reached the file but not the index is answered:
  // outcome unknown (the next open finds the record, a power loss first may
  // drop it), naming the index's error.
  static Status UnindexedOutcome(const Status& index_error);
  // What a write whose record reached the file but whose fdatasync failed is answered.
  static Status SyncFailedOutcome(const Status& sync_error);
  void Log(const std::string& line) const;
  void LogError(const std::string& line) const;
  void LogDebug(const std::string& line) const;
  // Publishes keys_, the segment count and the sum of every segment's live
  // and dead bytes (O(segments)) into the index's counters. Caller holds mu_
  // (or is recovery). Every change of segments_ publishes before mu_ is let
  // go, so that between holds the published figures are that sum.
  void PublishCounters();
  // PublishCounters after a change of segments_ that only added live_added
  // and dead_added bytes and took live_removed (no segment forgotten): the
  // published figures moved by that much, in O(1). Right because they were
  // the sum before the change (see PublishCounters).
  void PublishCountersMoved(uint64_t live_added, uint64_t live_removed, uint64_t dead_added);
  Status SyncActive();

  Env& env_;
  const std::string dir_;
  const Options options_;
  SharedIndex& index_;
  const RecordLimits limits_;
  SegmentCache cache_;
  DiskSpace disk_;  // free space and the reserve puts may not use
  std::unique_ptr<FileLock> lock_;

  uint64_t seed_ = 0;
  uint64_t next_seq_ = 1;
  uint32_t next_segment_id_ = 1;   // where AllocateSegmentId looks first
  std::set<uint32_t> pending_ids_;  // allocated, not yet in segments_
  std::unique_ptr<Manifest> manifest_;  // null when it could not be written (retried by ReserveSeqs)
  // What the MANIFEST lists: birth numbers, the order segments were created
  // in (ids are reused and say nothing of age; of two copies of one record,
  // the later-born wins), and sealed segments' lengths.
  ManifestSegments births_;
  uint64_t next_birth_ = 1;
  // Gives segment id the next birth number and records it in the MANIFEST
  // (not synced), with its length when it was written whole (sealed_bytes,
  // durable; 0 for a new active segment). Caller holds mu_ (or is recovery).
  void RecordBirth(uint32_t id, uint64_t sealed_bytes);
  // Records that segment id is sealed at `bytes` (its cut durable). Caller
  // holds mu_.
  void RecordSeal(uint32_t id, uint64_t bytes);
  static constexpr uint64_t kSeqReserve = 1 << 20;

  uint32_t active_id_ = 0;
  std::unique_ptr<File> active_;
  uint64_t active_size_ = 0;
  std::unique_ptr<HintWriter> active_hint_;
  // A read-only open (Options::read_only) appends nothing: the segment its
  // log ends in (the one a writing open would append to; 0: none) and where
  // its last valid record ends. A cut names it as its active segment, up to
  // that length (its hint on disk may be unfinished).
  uint32_t read_only_tail_id_ = 0;
  uint64_t read_only_tail_bytes_ = 0;
  // Keeps zero room ahead of the active segment's records (Options::room_bytes);
  // null when there is none. The active segment's file may be longer than
  // active_size_ + inflight_bytes_: the rest is zero bytes.
  std::unique_ptr<SegmentExtender> extender_;
  // Hands segment `id` (the active one, or the one about to become it),
  // whose records end at `size`, to extender_ on a descriptor of its own,
  // which makes the room's first step past `size` now (best effort: without
  // it, no room is kept). True when that step was made: its fdatasync of
  // the file covered every byte below the step, the writer's own too.
  bool StartRoom(uint32_t id, uint64_t size);
  // The room's next step: a 256th of the live data, within [64 KiB,
  // Options::room_bytes], so that the room (at most about one and a half
  // steps) stays under 1% of the data in any database larger than a few
  // MiB: its bytes count in the directory's size, which compaction keeps
  // within twice the live data.
  uint64_t RoomStepBytes();
  // Cuts the active segment's file back to active_size_ + inflight_bytes_
  // after the room was stopped (rotation) or paused (a failed write). Does
  // not sync.
  Status CutRoom();

  std::map<uint32_t, SegmentStats> segments_;
  uint64_t keys_ = 0;
  uint64_t corruptions_ = 0;
  uint64_t missing_segments_ = 0;

  bool read_only_ = false;
  Status read_only_cause_;
  bool unsynced_ = false;          // bytes written since the last fdatasync of active_
  uint64_t last_sync_ms_ = 0;

  // Stats.
  uint64_t batches_ = 0, last_batch_ops_ = 0, syncs_ = 0, last_sync_us_ = 0, total_sync_us_ = 0;
  // Writer::emptied_segments; CountIfEmptied after a write took the
  // killed_bytes record's live bytes from segment `id` (under mu_): a sealed
  // segment of at least kDeleteScannedBytes left with nothing live is either
  // queued in emptied_now_ (it held that one record and nothing else: a large
  // value's own segment) or counted for a dead-only pass.
  std::atomic<uint64_t> emptied_segments_{0};
  void CountIfEmptied(uint32_t id, const SegmentStats& s, uint64_t killed_bytes);

  // ---- segments a write emptied, deleted as it is published (writer_emptied.cc) ----
  // Under mu_. The sealed one-record segments the writes being published
  // left with nothing live. DeleteEmptiedLocked, called after the index
  // updates of a durable write and before PublishCounters, deletes them
  // (MANIFEST, unlink, epoch) so that the published live and dead bytes never
  // show the killed value beside a file that is already gone, nor the file
  // after its kill is published; what it cannot delete now (sync not always,
  // a cut's pin, a compaction pass's input, a MANIFEST error) is counted in
  // emptied_segments_ for a dead-only pass. Runs on whichever thread
  // publishes (the writer thread, or a thread whose lock drained the
  // pipeline).
  std::vector<uint32_t> emptied_now_;
  void DeleteEmptiedLocked();
  // Under mu_. Inputs of the running compaction pass (engine/compaction.cc
  // adds them after its pick and removes them when the pass ends):
  // DeleteEmptiedLocked leaves them to the pass.
  std::set<uint32_t> compacting_;

  // Large values being staged.
  struct Large {
    std::string path;
    std::unique_ptr<File> file;
    std::string key, content_type;
    Codec codec = Codec::kRaw;
    Condition condition;
    uint64_t stored_len = 0;
    std::unique_ptr<Checksum64Stream> body;
  };
  std::map<uint64_t, Large> large_;
  uint64_t next_large_id_ = 1;

  std::string batch_;  // reused encode buffer
  // Apply's per-batch bookkeeping, reused from batch to batch.
  std::vector<PendingRecord> pending_;
  // DecideBatch's: the keys of the batches in flight and of the batch's
  // earlier ops, filled only once an op needs it (see DecideBatch).
  BatchOverlay overlay_;
  // Writer::Forecast's scratch (writer_forecast.cc), under mu_.
  BatchOverlay forecast_overlay_;
  // Writer::Forecast's lookups, one per op of the batch it forecast (ops
  // [0, forecast_lookups_.size())), for the DecideBatch that follows it on
  // the writer thread. Under mu_. Valid (forecast_found_valid_) until any
  // lock() of mu_ (whatever else changes index entries takes it:
  // compaction's installs, large values, Apply), a commit inside
  // DecideBatch, or DecideBatch's end (used once). Meanwhile the batches in
  // flight can only shrink (published or failed: a batch joins them only
  // through DecideBatch), and publishing them does not touch the keys whose
  // state came from the index.
  struct ForecastLookup {
    std::string_view key;  // the op's key (a view of the forecast batch's)
    uint64_t hash = 0;     // KeyHash of key
    // state is what the index gave: the key is written by no batch in
    // flight and by no earlier op of the forecast batch. False when the
    // forecast took the key's state from those, or its lookup failed.
    bool from_index = false;
    KeyState state;
  };
  std::vector<ForecastLookup> forecast_lookups_;
  bool forecast_found_valid_ = false;
  // PrefetchLookups' window for whichever walk of a batch holds mu_
  // (Writer::Forecast, DecideBatch; they never run inside one another). A
  // member, not a local: nothing to construct per batch.
  LookupWindow lookup_window_;

  // ---- pipelined group commit (writer_pipeline.cc), under mu_ ----
  // A submitted batch: its records written past active_size_ (in flight)
  // until a sync covers `end`, then published; final results wait in
  // finished_ for TakeFinished.
  struct SubmittedBatch {
    uint64_t ticket = 0;
    uint64_t end = 0;    // offset in the active segment just past its records
    uint64_t bytes = 0;  // its records' bytes
    std::vector<PendingRecord> pending;
    std::vector<WriteResult> results;
  };
  std::deque<std::unique_ptr<SubmittedBatch>> inflight_;  // oldest first
  std::deque<std::unique_ptr<SubmittedBatch>> finished_;  // oldest first
  std::vector<std::unique_ptr<SubmittedBatch>> spare_batches_;
  uint64_t inflight_bytes_ = 0;  // sum of inflight_[*].bytes: the active segment's bytes past active_size_
  std::atomic<uint64_t> unpublished_bytes_{0};  // inflight_bytes_, for Writer::unpublished_bytes
  uint64_t inflight_ops_ = 0;    // sum of inflight_[*].pending.size()
  uint64_t next_ticket_ = 1;
  std::unique_ptr<SyncThread> sync_;  // started by the first Submit under kAlways
  // The segment whose spare descriptors sync_ holds (0: none): with
  // Options::sync_depth above 1, the first Submit into a segment opens
  // them, before it writes there (SyncThread: a descriptor must be open
  // before the bytes it syncs are written); rotation drops them.
  uint32_t sync_files_id_ = 0;
  // Opens sync_depth - 1 descriptors of the active segment for sync_ (fewer
  // when an open fails: then fewer fdatasyncs run at once, logged). Nothing
  // in flight. Caller holds mu_.
  void OpenSpareSyncFiles();
  SyncThread::State sync_seen_;       // the sync statistics already added to syncs_ ...
  // Threads in CommitMutex::lock waiting, without the mutex, for the
  // pipeline to empty; Submit waits on drained_cv_ (with the mutex) until
  // there are none. Under mu_.
  uint32_t drainers_ = 0;
  std::condition_variable drained_cv_;
  // Waits until no sync is in flight and finishes every in-flight batch
  // (published, or kOutcomeUnknown after a failed sync). Caller holds mu_.
  void DrainLocked();
  // Publishes the in-flight batches `st` covers, oldest first; after a failed
  // sync fails all of them and turns read-only. Caller holds mu_.
  void FinishSynced(const SyncThread::State& st);
  // Mirrors read_only_ for read_only(), which takes no lock.
  std::atomic<bool> read_only_flag_{false};

  // ---- compaction hook (added for engine/compaction.cc) ----
  // Serializes the writer thread's calls (Apply, FinishLarge, SyncIfDue, Sync,
  // Stats lock it) with compaction's short steps on its own thread of the
  // writer process: allocating a segment id, switching index entries
  // (SharedIndex mutators), updating segments_ and the published counters,
  // forgetting a deleted segment. Compaction never holds it across file I/O.
  // Its lock() drains the pipeline first, waiting for a sync without the
  // mutex (CommitMutex).
  mutable CommitMutex mu_{this};

  // ---- segment pins and deletions (writer_cut.cc) ----
  // Under mu_. Code that unlinks a segment file calls BeginDelete(id) first
  // (false while pinned: keep the file and retry later), then EndDelete(id)
  // once the file is gone (or the unlink failed). A cut never lists a
  // segment being deleted.
  // Pins: a cut's (pinned_ids_) always holds the file. The key view's
  // (pins_) holds it too unless view_pin_holds is false: for a one-record
  // segment that a write, not compaction, left with nothing live
  // (DeleteEmptiedLocked). The view's job needs no record of such a segment
  // (its put was superseded by a write that the view's tails or the job's
  // other segments hold), and a job that comes to read it after the unlink
  // finds it gone and goes on (keyspace_build.cc).
  bool BeginDelete(uint32_t id, bool view_pin_holds = true);
  void EndDelete(uint32_t id);
  // Under mu_, once segment id's file is unlinked: drops it from the
  // writer's state (stats, births, the deletion, the cache's mapping) and
  // moves the segment epoch (a reader that sees it finds the file gone).
  // Returns the bytes the segment held. The caller publishes the counters.
  uint64_t ForgetUnlinked(uint32_t id);
  DatabaseCut CutLocked() const;
  // Holders that pin every segment (the key view's catch-up or rebuild: it
  // reads whichever segments it finds).
  uint32_t pins_ = 0;
  // Per segment id, the cuts holding it (PinSegments / PinSegmentIds); an
  // id here is neither deleted nor given to a new segment.
  std::map<uint32_t, uint32_t> pinned_ids_;
  std::set<uint32_t> deleting_;

  // ---- the sorted key view (engine/keyspace.h) ----
  // Recovery's scratch: the highest seq replayed from each segment, copied
  // into SegmentStats::max_seq when recovery ends (the keyspace's catch-ups
  // read that, not this).
  std::map<uint32_t, uint64_t> recovered_max_seq_;
  // Null until StartKeyspace. Add is called under mu_ before each put is published.
  std::unique_ptr<Keyspace> keyspace_;
  // PublishWritten's entries for keyspace_->Add, reused from batch to batch.
  std::vector<KeyPut> keyspace_batch_;
};

// ---- group commit steps (writer.cc), caller holds mu_ ----
// Decides ops in order and encodes the records of those that go ahead into
// w.batch_ / `pending` (the results of the others are final). A record that
// does not fit the active segment commits what is pending first (draining
// the pipeline when `pipelined`) and rotates. Conditions see the batches in
// flight and the batch's earlier ops.
void DecideBatch(Writer::Impl& w, std::span<const WriteOp> ops, std::span<WriteResult> results,
                 std::vector<PendingRecord>& pending, bool pipelined);
// Appends w.batch_ (the records of `pending`) past the bytes in flight. On
// failure the partial bytes are cut off, every pending op fails with the
// error and false is returned. A read-only writer writes nothing: every
// pending op is refused with kReadOnly (false).
bool WritePending(Writer::Impl& w, std::span<const PendingRecord> pending, std::span<WriteResult> results);
// Publishes written (and, under kAlways, synced) records: `bytes` of the
// active segment past active_size_ are theirs. Fills their results.
void PublishWritten(Writer::Impl& w, std::span<const PendingRecord> pending, std::span<WriteResult> results,
                    uint64_t bytes);
// Write, fdatasync (kAlways), publish, now. Nothing may be in flight.
void CommitPending(Writer::Impl& w, std::vector<PendingRecord>& pending, std::span<WriteResult> results);

}  // namespace kingx::engine
