// Keyspace: the sorted view of a database's keys, kept beside the hash index
// so that keys can be listed in byte-wise order with a bounded cost per page
// (engine/key_lister.h reads it). The index stays a hash table; the order
// comes from an LSM of key runs (engine/key_run.h, files in a keys
// directory) plus the recent keys in the shared region's tails
// (engine/keyspace_region.h). FORMAT.md "Key runs" and "Keyspace manifest"
// describe the bytes; README "Listing" the guarantees.
//
// Invariant readers rely on: every live key has at least one entry in the
// published runs or the tails. Entries may be stale (overwritten, moved by
// compaction, deleted): the hash index decides (engine/key_resolve.h).
// Therefore the writer appends a put's entry (Add) *before* publishing it in
// the index, and a run is replaced only by runs that hold the same keys'
// current entries. The region names at most kMaxKeyRuns runs, so the run set
// never grows past that: before a flush or a job's runs would pass it, the
// smallest runs are combined (newest entry of each key) first.
//
// Overwrites of live keys add no entry. A put that replaces a live put of
// its key (KeyPut::replaces_live: the writer's own state of the key, which
// also decides its conditions, says the index holds the key at the location
// this put's publication swaps, atomically, for its own) is not recorded
// while the view is complete (runs + tails hold an entry of every live key).
// Why that keeps the invariant, by every path that drops entries or relies
// on them:
//  - the key has an entry then (the view is complete and the key is live),
//    and it stays live without a moment out of the index until a delete:
//    Replace swaps locations in place; a put after a delete (in the same
//    batch, or one in flight) replaces nothing and is recorded;
//  - a tail flush and FitRuns keep the newest entry of each key, so they
//    never drop a key; a resolving merge (ResolveGroup) drops a key only when
//    the index has no record of it after every entry up to the group's seq
//    is published, and a live key's stale entry resolves to its current
//    record (kMoved: the record is read, its key compared) and comes out
//    repointed at it;
//  - covered_ (the MANIFEST's seq): tails fill and flush in seq order, so
//    when a tail holding seq s is flushed, the entry a put at s relied on
//    (added at a lower seq) is in the runs too; and when the tails hold
//    nothing, every put added so far, skipped or not, has its key in the runs
//    (CoverSkippedLocked: under overwrites alone the seq still moves);
//  - catch-up and rebuild read every put in [from, tail_start_) from the
//    segments, skipped or not, and resolve each key against the index; they
//    leave out records at or above tail_start_ in the segments they read,
//    counting on the tails for those, so no put is skipped from tail_start_
//    on until the job completes (complete_ is false from the moment
//    tail_start_ is set, under both locks, until then); a loss makes Add
//    drop every entry anyway, and is followed by such a job;
//  - compaction moves records without new entries: stale entries in the
//    runs are repointed by merges, and a run with a quarter of its entries in
//    deleted segments is rewritten whole (MaybeMerge). Such a rewrite needs
//    segment deletions, that is compaction passes: it reads its run once per
//    quarter of that run's records that compaction processed, whatever the
//    rate of PUTs;
//  - an entry is taken for the key's record without reading it (kKnown)
//    only where its location is the one the index holds, so an entry left at
//    an older record must never name the place of a newer one: in a process
//    a deleted segment's id comes back only after every other free id was
//    given (2^24 - 2 of them), and every writing open, kingx-tool's too,
//    starts past every id keys/MANIFEST's runs name before it creates a
//    segment (recovery, engine/keyspace_manifest.h); SegmentIdsSafe does the
//    same for this view's MANIFEST, and rebuilds when a named segment holds
//    no record (an open that did not read that MANIFEST created it);
//  - a read-only open writes nothing and skips nothing; a seed's runs are
//    reached as any runs are (stale entries resolve against the index);
//    backups do not carry keys/ (a restored copy rebuilds its view).
// The cost moves to readers: an overwritten key's entry points at an older
// record until a merge or a stale-run rewrite repoints it, so a listing
// reads the key's current record to answer it (kMoved), once per stale
// entry listed. While puts go on, bounded by what compaction leaves: dead
// records not yet compacted, and less than a quarter of each run in deleted
// segments. Once the unrecorded puts stop for settle_ms (and once after an
// open), a sample of the largest run (StaleShare) decides whether every run
// is merged: from a quarter stale on, so a settled view's runs are less than
// about a quarter stale (the sample's error aside).
//
// Work (one background thread, "the keyspace thread", in the owner process):
//  - flush: a full tail is frozen by Add; the thread sorts it (newest entry
//    of each key), writes it as a run and publishes the run set and the
//    freed tail at once (no index lookups: a flush is much faster than the
//    writer fills a tail);
//  - merge: runs of one size class (entries within a factor of merge_width)
//    are merged when merge_width of them exist; when no tail was flushed for
//    settle_ms, all runs but the largest are merged (and all of them when
//    the rest is at least a quarter of the largest), so an idle database
//    lists from at most two runs; and all of them when no put was left
//    unrecorded for settle_ms (and once after the open) and a sample of the
//    largest run's entries finds a quarter of them not at their key's
//    current record (overwrites add no entry; one index lookup per sampled
//    entry, at most kStaleSample); the runs that point mostly into deleted
//    segments (compaction) are rewritten, together, by one merge;
//  - checkpoint (persist only): every checkpoint_interval_ms, at close, and
//    as soon as merges have left at most half of the runs the last MANIFEST
//    names (when it names more than merge_width: a crash would bring them
//    back), the runs are fdatasynced and a MANIFEST names them together
//    with the seq below which every put's key is in them; replaced runs are
//    deleted only after a MANIFEST that no longer names them;
//  - open: runs named by a valid MANIFEST are reused (checksums verified in
//    the background; the segment ids they name keep the writer from giving
//    those ids again, SegmentIdsSafe: an entry left at an overwritten
//    record must never match a new record at the same place)
//    and only the puts at or above its seq are read back
//    from their segments ("catch-up"); a view that is not persisted does
//    the same from a seed directory's MANIFEST (options.seed_dir, e.g. a
//    read-only database's own keys/), whose runs it reaches through symbolic
//    links and never writes; without a usable MANIFEST (first open, no seed,
//    damage) every segment is read ("rebuild"). A segment without an
//    intact hint is read with read(2) a window at a time
//    (engine/segment_window.h), never mapped: a job holds a few MiB of it
//    whatever its size, and an unreadable byte fails the job with an I/O
//    error naming the file and the offset (never taken for damage). Segment
//    deletions are pinned meanwhile so compaction cannot move records out
//    of sight. The view is kBuilding until then (listing answers 503);
//  - lag: a writer that fills the active tail while the other still waits
//    for its flush is held back for up to lag_wait_ms per batch (Pace), so a
//    healthy thread keeps up with any write rate; if both tails are full all
//    the same (a long job or merge step, or runs cannot be written on a full
//    disk), Add stops recording, the state turns kLost and the thread reads
//    back from the segments only the puts its runs do not hold yet
//    ("catch-up after loss": the work is the gap, not the database, so it
//    converges under a sustained write load). A damaged run, or a loss
//    before any job completed, means a full rebuild.
//
// Failure of the keyspace never fails a write: it only makes listing
// unavailable until a rebuild succeeds.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "engine/key_run.h"
#include "engine/keyspace_options.h"
#include "engine/keyspace_region.h"
#include "engine/segment_cache.h"
#include "engine/status.h"
#include "engine/writer.h"

namespace kingx::engine {

// A put as the writer hands it to the sorted view: its entry, and whether it
// replaces a live put of the same key (the location the writer's state of
// the key names, which publishing this put swaps in the index for its own).
// The entry's views stay valid for the Add call only.
struct KeyPut {
  KeyEntry entry;
  bool replaces_live = false;
};

class Keyspace {
 public:
  // Takes over `region` (Reset), prepares `options.dir` (removes run files no
  // MANIFEST names, and *.tmp), pins segment deletions for the background
  // catch-up or rebuild, and starts the keyspace thread. Call on the writer
  // thread right after recovery, before any write (Writer::StartKeyspace).
  static Result<std::unique_ptr<Keyspace>> Open(Writer::Impl& w, KeyspaceRegion region,
                                                const KeyspaceOptions& options);
  // Stops the thread at a clean point; when persisting and the view is
  // complete, flushes the tails into a run and writes a last checkpoint.
  ~Keyspace();
  Keyspace(const Keyspace&) = delete;
  Keyspace& operator=(const Keyspace&) = delete;

  // The writer thread, under Writer::Impl::mu_, for each put about to be
  // published in the index, in seq order. A put that replaces a live put of
  // its key is not recorded while the view is complete (see the invariant
  // above). Never fails and never blocks on I/O.
  void Add(const KeyPut& put);
  // The same for the puts of one batch, in order, under one lock.
  void Add(std::span<const KeyPut> puts);

  // The writer thread, before it takes Writer::Impl::mu_ for a batch: while a
  // frozen tail waits for its flush and the active tail is at least half
  // full, waits (at most options.lag_wait_ms) for the flush. Returns at once
  // when the view is lost, the thread is backing off after an error, or it
  // is stopping. Holds no lock of the writer's while it waits.
  void Pace();

  // The writer thread, after publishing in the index every op up to `seq`.
  // Entries above it may be in flight (added, not published yet): a merge
  // waits for them instead of taking them for dead.
  void Published(uint64_t seq) { published_.store(seq, std::memory_order_release); }

  // Blocks until the view is kReady (OK) or timeout_ms passed (kBusy).
  Status WaitReady(uint64_t timeout_ms);

  KeyspaceRegion& region() { return region_; }

 private:
  struct RunInfo {
    uint64_t id = 0;
    uint64_t entries = 0;
    bool synced = false;
    std::shared_ptr<const KeyRun> run;
  };
  struct Collected;  // entries gathered by a catch-up or rebuild (keyspace_build.cc)
  enum class Job : uint8_t { kNone, kCatchUp, kRebuild };

  Keyspace(Writer::Impl& w, KeyspaceRegion region, const KeyspaceOptions& options);
  void Loop();
  void Log(const std::string& line) const;
  void LogInfo(const std::string& line) const;
  uint64_t NowMs() const;

  // ---- keyspace.cc ----
  // Under mu_: appends a put's entry to the active tail (freezing it when
  // full); when both tails are full, the view is lost.
  void RecordLocked(const KeyEntry& e);
  // Under mu_: moves covered_ past the puts Add left unrecorded when the
  // tails hold nothing (so a view that sees only overwrites still checkpoints
  // a seq that moves, and a restart reads back only the puts after it).
  void CoverSkippedLocked();
  Status PrepareDir(uint64_t* manifest_covered, std::vector<uint64_t>* manifest_runs);
  // Open, under Writer::Impl::mu_, with the segment ids the MANIFEST's runs
  // name: false when one of them names a segment that holds no record (an
  // open that did not read this MANIFEST gave a gone segment's id to a new
  // one: the runs' entries of it could be taken for its records); otherwise
  // moves the writer's next segment id past every named one (SegmentIdPast),
  // so that no id an entry names is given again while the entry may be read.
  bool SegmentIdsSafe(const std::vector<uint64_t>& named);
  bool ReadManifest(const std::string& dir, uint64_t* covered, uint64_t* next_id, uint64_t* secret,
                    std::vector<uint64_t>* runs) const;
  Status FlushFrozenTail();
  Status Checkpoint();
  void PublishLocked(int free_tail);
  std::string RunPath(uint64_t id) const;
  Result<RunInfo> WriteRun(std::vector<KeyEntry>& sorted);

  // ---- keyspace_build.cc ----
  Status RunJob();
  Status VerifyManifestRuns();
  Status CollectSegments(uint64_t from_seq, uint64_t below_seq, bool all_segments, Collected* c,
                         std::vector<RunInfo>* made);
  Status ChunkToRuns(Collected* c, std::vector<RunInfo>* made);
  // After Add dropped entries: clears the tails and starts the job that
  // brings the runs up to the writer again (see "lag" above).
  void StartRecoveryAfterLoss();

  // ---- keyspace_merge.cc ----
  Status MaybeMerge();
  // The share of `run`'s entries that are not at their key's location in the
  // index (the key overwritten without a new entry, moved by compaction, or
  // deleted): a listing reads a record for each. Estimated from the first
  // entry of up to kStaleSample blocks spread evenly over the run, one index
  // lookup each, no record read. kBusy when the index stays busy; a damaged
  // run's error.
  Result<double> StaleShare(const KeyRun& run);
  // Replaces the runs `ids` of runs_ with their merge (each key resolved
  // against the index) and publishes.
  Status MergeRuns(std::vector<uint64_t> ids);
  // Writes the merge of `inputs` as a new run: with `resolve`, each key's
  // live entry (ResolveGroup; the tails are flushed now and then meanwhile);
  // without, the newest entry of each key, no index lookups (a flush's rule).
  Result<RunInfo> WriteMerged(const std::vector<std::shared_ptr<const KeyRun>>& inputs, bool resolve);
  // In *runs, the runs `ids` give way to `merged` (at the first one's place;
  // dropped when empty); their ids join doomed_. Caller holds mu_.
  void ReplaceRuns(std::vector<RunInfo>* runs, const std::vector<uint64_t>& ids, RunInfo merged);
  // The region names at most kMaxKeyRuns runs, and a run left out of the
  // published set would hide its keys. When *runs plus `adding` runs to come
  // would pass that, combines the smallest runs of *runs into one (no index
  // lookups) so that they fit. Keyspace thread; never inside a resolving merge
  // (its inputs must stay); no publish.
  Status FitRuns(std::vector<RunInfo>* runs, size_t adding);
  // Resolves the entries of one key against the index; appends the live
  // entry (if any) to *out. A moved key's content type is kept in *store.
  // `skip_segment` (may be null): candidates in those segments are not read
  // (a rebuild sees them when it reads that segment). A damaged candidate
  // keeps the group's newest entry (the listing reports the damage).
  Status ResolveGroup(std::span<const KeyEntry> group, std::deque<std::string>* store, std::vector<KeyEntry>* out,
                      const std::function<bool(uint64_t)>* skip_segment = nullptr);

  // Segment ids are reused once free: the cache's mappings are checked
  // against the files whenever the index's segment epoch has moved
  // (keyspace thread only).
  void RevalidateCache();

  Writer::Impl& w_;
  KeyspaceRegion region_;
  const KeyspaceOptions o_;
  SegmentCache cache_;
  uint64_t cache_epoch_ = 0;

  std::thread thread_;
  // Guards everything below, and orders the region's tail operations (Add's
  // Append/Freeze on the writer thread, Publish/ClearTails on this thread).
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::vector<RunInfo> runs_;     // published, oldest first
  std::vector<uint64_t> doomed_;  // replaced runs: deleted after the next checkpoint
  uint64_t next_run_id_ = 1;
  Job job_ = Job::kNone;
  bool verify_manifest_ = false;  // the job starts by checking the MANIFEST's runs
  bool pinned_ = false;           // this keyspace holds a segment pin (job running)
  uint64_t job_from_ = 0;         // catch-up: puts with seq >= job_from_ ...
  uint64_t tail_start_ = 0;       // ... and < tail_start_; the tails hold every put from tail_start_ on
  uint64_t tail_flushed_upto_ = 0;  // 1 + the highest seq of a tail entry flushed into runs_
  uint64_t job_run_floor_ = 0;    // a rebuild replaces the runs with ids below this
  uint64_t covered_ = 0;          // with covers_prefix_: every put with seq < covered_ has its key in runs_
  uint64_t skipped_upto_ = 0;     // 1 + the seq of the last put Add left unrecorded
  bool covers_prefix_ = false;    // set by each completed job; kept through losses
  bool complete_ = false;         // runs_ + tails hold every live key
  bool lost_ = false;             // Add dropped entries: a catch-up (or rebuild) is due
  bool rebuild_due_ = false;      // a run was damaged: the next recovery reads every segment
  uint64_t backoff_until_ms_ = 0; // after an error, no work (and no Pace) until then
  bool dirty_ = false;            // runs_ changed since the last checkpoint
  uint64_t last_flush_ms_ = 0;
  uint64_t last_checkpoint_ms_ = 0;
  size_t checkpointed_runs_ = 0;  // runs the last MANIFEST names
  uint64_t seen_epoch_ = 0;       // index segment_epoch at the last stale-run check
  bool merging_ = false;          // a resolving merge is under way (keyspace thread only)
  // Keyspace thread only: skipped_upto_ when MaybeMerge last saw it move, and
  // when; and its value when the largest run was last sampled (StaleShare;
  // none yet, so a settled view is sampled once after the open).
  uint64_t skip_seen_ = 0;
  uint64_t skip_seen_ms_ = 0;
  uint64_t skip_sampled_ = ~uint64_t{0};
  std::atomic<uint64_t> published_{0};  // see Published
  uint64_t cursor_secret_ = 0;    // signs listing cursors; kept in the MANIFEST
  // Whether a MANIFEST on disk holds cursor_secret_. A persisted view is
  // published ready only once it does (ready_at_checkpoint_ until the first
  // checkpoint succeeds): a cursor is handed out only by a ready view, so
  // every cursor's secret survives a crash, and the view that the next open
  // rebuilds or catches up keeps accepting it.
  bool secret_on_disk_ = false;
  bool ready_at_checkpoint_ = false;
  TailCopy tail_copy_;            // FlushFrozenTail's buffers (keyspace thread, or the destructor after it)
};

}  // namespace kingx::engine
