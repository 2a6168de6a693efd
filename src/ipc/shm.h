// SharedMemory: the one shared mapping of a kingx server and its layout.
//
// The master creates it once, before any fork (mmap MAP_SHARED|MAP_ANONYMOUS|
// MAP_NORESERVE: only touched pages cost RAM), and every child inherits it at
// the same address. It holds, each part page-aligned:
//
//   ControlBlock     draining flag, config generation, writer state, slot table
//   WriterMetrics    queue/batch/fsync figures the writer process publishes for
//                    /metrics (engine::WriterStats are the engine's own figures)
//   backup slots     point-in-time cuts for online backups (src/ipc/backup_slots.h)
//   index region     engine::SharedIndex (formatted by Create)
//   keyspace region  engine::KeyspaceRegion: the sorted key view's run set and tails
//   write queue      WriteQueue's ring (see src/ipc/write_queue.h)
//   per slot         a completion ring (src/ipc/completion_ring.h) and
//                    kCounterStripes stripes of kCounterStripeBytes of zeroed
//                    memory for the worker's http counters, one per thread
//                    that counts
//
// A "slot" is a place for one worker process: its completion ring, its
// eventfd, its counters and its row in the slot table. There are
// 2 * workers + 2 slots so that on HUP new workers start in free slots while
// the old ones drain. A slot's generation is bumped (by the master) each time
// a worker is started in it; write tokens carry it (MakeToken) so a worker
// ignores completions meant for a previous occupant.
//
// Eventfds (EFD_NONBLOCK|EFD_CLOEXEC cleared so children inherit them) are
// created with the mapping: one for the writer and one per slot.
//
// Thread/process rules: every field of the shared structures is an atomic
// whose comment names the process that stores into it; anyone may load.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>

#include "engine/index.h"
#include "engine/keyspace_region.h"
#include "engine/status.h"
#include "src/conf/config.h"
#include "src/ipc/backup_slots.h"
#include "src/ipc/log_settings.h"
#include "src/ipc/open_failure.h"

namespace kingx {

class WriteQueue;
class CompletionRing;

// Per-slot counter stripes (zero-filled, never cleared), one for each thread
// of the slot's worker that counts, so that a count is a plain store into
// shared memory on a cache line no other thread writes: an event worker
// counts in stripe 0; a thread-pool worker in one stripe per pool thread
// (at most 4096) and one each for its acceptor and its main thread. A
// count is in shared memory the moment it is made, so a worker's death
// loses none. A thread marks its stripe in the slot's row before its first
// count (MarkCounterStripe), and readers (a /metrics scrape, the master
// settling a dead worker) visit marked stripes only: a stripe no thread
// counted in is never touched by anyone, so it costs address space, not
// memory (the mapping is MAP_NORESERVE), and a scrape's work grows with the
// threads that counted, not with the pool's size.
inline constexpr uint32_t kCounterStripes = 4096 + 2;
inline constexpr size_t kCounterStripeBytes = 1024;
inline constexpr uint32_t kCounterStripeWords = (kCounterStripes + 63) / 64;

// The state of one slot in the slot table.
enum class SlotState : uint32_t {
  kFree = 0,      // no process (never used, or its process was reaped)
  kRunning = 1,   // a worker runs in it and accepts connections
  kDraining = 2,  // the worker was sent QUIT (reload or shutdown); it is finishing
};

struct SlotInfo {
  std::atomic<int32_t> pid{0};          // master: the worker's pid (0 when free)
  std::atomic<uint32_t> generation{0};  // master: bumped before each fork into this slot
  std::atomic<uint32_t> state{0};       // master: SlotState
  std::atomic<uint32_t> worker_index{0};  // master: which worker index (reuseport socket) it serves
  // The slot's worker (src/ipc/staging_budget.h): its generation in the top
  // 24 bits, below them the staged bytes its uploads reserved. A dead
  // worker's bytes are returned by the writer loop or the slot's next worker
  // (whichever swaps them out first).
  std::atomic<uint64_t> staging_reserved{0};
  // The slot's worker: its generation in the top 24 bits, below them how
  // many of its uploads are held now (waiting for room in the staging share).
  std::atomic<uint64_t> staging_held{0};
  // The slot's worker (src/ipc/spill_room.h): its generation in the top 24
  // bits, below them the body-spill bytes its writes are appending now.
  std::atomic<uint64_t> spill_writing{0};
  // The slot's workers (MarkCounterStripe): bit s % 64 of word s / 64 is set
  // once any occupant's thread counted in stripe s; set, never cleared (what
  // an earlier occupant counted stays summed).
  std::atomic<uint64_t> counter_stripes[kCounterStripeWords] = {};
};

// The staging budget's shared words (src/ipc/staging_budget.h).
struct StagingShared {
  // workers reserve, the writer loop returns a dead worker's: the staged
  // bytes every slot's uploads reserved (never more than the sum of the
  // slots' words; less after a worker died between its two updates).
  std::atomic<uint64_t> reserved_bytes{0};
  // workers: the one upload allowed to go on past the share (its
  // StagingBudget upload id), 0 = none.
  std::atomic<uint64_t> overdraft_owner{0};
  // workers: the upload first in line (its StagingBudget upload id): the
  // oldest held upload that has reserved nothing yet, which later uploads
  // let go first; 0 = none.
  std::atomic<uint64_t> first_in_line{0};
  // workers: uploads that had to wait for room (monotonic).
  std::atomic<uint64_t> holds{0};
};

// What the writer is asked to do (stored by the master's signal forwarding or,
// in single-process mode, by the worker's thread; loaded by the writer loop).
enum class WriterStop : uint32_t {
  kRun = 0,
  kDrain = 1,  // QUIT: apply everything queued, sync, exit
  kFast = 2,   // TERM: finish the current batch, sync, exit
};

struct ControlBlock {
  // master: 1 once a graceful or fast stop began (workers answer /readyz 503).
  std::atomic<uint32_t> draining{0};
  // master: bumped on every successful reload (HUP).
  std::atomic<uint32_t> config_generation{0};
  // writer: 1 once recovery finished and writes are accepted; the master
  // clears it when it reaps the writer (workers answer /readyz 503 meanwhile).
  std::atomic<uint32_t> writer_ready{0};
  // master: the writer's pid (0 while none runs).
  std::atomic<int32_t> writer_pid{0};
  // writer's signal handler / single-process driver: WriterStop.
  std::atomic<uint32_t> writer_stop{0};
  // any worker (admin endpoint): incremented to ask the writer for a
  // compaction pass (then WriteQueue::Wake). The writer compares it with the
  // last value it served (the compaction hook, src/writer/writer_compaction.cc).
  std::atomic<uint64_t> compact_requests{0};
  // master: times a worker or the writer was respawned after dying.
  std::atomic<uint64_t> respawns{0};
  // Large uploads' staged bytes, shared by every worker (see StagingShared).
  StagingShared staging;
  // master: the error log's path and level, for the running writer (USR1).
  LogSettingsNote log_settings;
  // master: number of rows of `slots` (fixed at creation).
  uint32_t slot_count = 0;
  // Followed in memory by slot_count SlotInfo (see SharedMemory::slot()).
};

// Histogram bucket bounds for WriterMetrics (Prometheus "le" values).
inline constexpr int kBatchSizeBuckets = 12;  // le 1,2,4,...,1024, +Inf
// Upper bound (inclusive) of batch-size bucket i < kBatchSizeBuckets - 1 is 1 << i.
// Group commit and fdatasync durations: le 25us ... 10s, +Inf (kFsyncBucketUs).
inline constexpr int kFsyncBuckets = 19;
inline constexpr uint64_t kFsyncBucketUs[kFsyncBuckets - 1] = {
    25,    50,     100,    250,    500,     1000,    2500,    5000,    10000,
    25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};

// Figures the writer process publishes for /metrics (writer stores, relaxed;
// anyone loads). Not engine::WriterStats, which the engine computes on demand.
// The queue depth is read from the queue itself (WriteQueue::Depth).
struct WriterMetrics {
  std::atomic<uint64_t> batches{0};          // Apply calls
  std::atomic<uint64_t> records{0};          // ops applied (small ops + finished large values)
  std::atomic<uint64_t> bytes{0};            // stored bytes applied
  std::atomic<uint64_t> failed_records{0};   // ops answered with an error code
  std::atomic<uint64_t> batch_size_sum{0};
  std::atomic<uint64_t> batch_size_buckets[kBatchSizeBuckets] = {};  // not cumulative
  std::atomic<uint64_t> apply_us_sum{0};     // time in Apply (append + fdatasync + publish)
  std::atomic<uint64_t> apply_count{0};
  std::atomic<uint64_t> apply_us_buckets[kFsyncBuckets] = {};         // not cumulative
  // Every fdatasync / directory fsync of the writer process (any thread:
  // compaction syncs too, so these are updated with fetch_add).
  std::atomic<uint64_t> fsync_us_sum{0};
  std::atomic<uint64_t> fsync_us_buckets[kFsyncBuckets] = {};         // not cumulative
  std::atomic<uint64_t> large_aborted{0};    // large uploads dropped (worker died or aborted)
  std::atomic<uint64_t> staged_bytes{0};     // disk held by large uploads in progress, until published (--staging-bytes)
  std::atomic<uint64_t> staging_refusals{0}; // large uploads refused because they would pass it
  // Bytes of batches written to the active segment and not yet published
  // (engine::Writer::unpublished_bytes, copied by the writer loop after each
  // submission and each publication): on disk, in no live or dead gauge.
  std::atomic<uint64_t> unpublished_bytes{0};
  // Group commits the writer delayed for more writes to join (--commit-delay-us),
  // and the microseconds it waited in all.
  std::atomic<uint64_t> commit_delays{0};  // counted as each wait starts
  std::atomic<uint64_t> commit_delay_us_sum{0};
  std::atomic<uint32_t> read_only{0};        // 1 after a failed fdatasync until reopen
  // CLOCK_MONOTONIC ms at the writer loop's latest turn (it turns at least
  // every --storage-timeout-ms / 4 when idle): a writer whose heartbeat is
  // older than --storage-timeout-ms makes no progress (stopped, or stuck in a
  // write or fdatasync), and workers answer /readyz 503.
  std::atomic<uint64_t> heartbeat_ms{0};
  // Compaction (engine::CompactionStats, added once per loop iteration as
  // deltas, so the counters are monotonic across writer restarts;
  // src/writer/writer_compaction.cc).
  std::atomic<uint64_t> compaction_passes{0};
  std::atomic<uint64_t> compaction_segments{0};          // input segments deleted
  std::atomic<uint64_t> compaction_segments_written{0};  // output segments installed
  std::atomic<uint64_t> compaction_bytes_read{0};
  std::atomic<uint64_t> compaction_bytes_written{0};     // output segments and hints
  std::atomic<uint64_t> compaction_bytes_freed{0};
  std::atomic<uint64_t> compaction_failures{0};
  // Bytes of tombstones compaction had to keep (they are dead bytes it
  // cannot reclaim), as of the loop's latest turn. The backlog a reader
  // reports is the index's dead bytes at that moment less these, so it is
  // never more than the dead bytes it is reported beside.
  std::atomic<uint64_t> compaction_kept_tombstone_bytes{0};
  // Times the writer held batches for compaction (src/writer/write_stall.h),
  // and for how long in all.
  std::atomic<uint64_t> compaction_stalls{0};
  std::atomic<uint64_t> compaction_stall_us{0};
  // The data directory's disk (engine::DiskState, republished by the writer
  // loop; src/writer/disk_report.h).
  std::atomic<uint32_t> disk_full{0};                 // 1 while puts are refused for lack of space
  std::atomic<uint64_t> disk_free_bytes{0};
  std::atomic<uint64_t> disk_total_bytes{0};
  std::atomic<uint64_t> disk_reserve_bytes{0};
  std::atomic<uint64_t> writes_refused_no_space{0};   // monotonic across writer restarts
  // Why the writer's latest open failed (cleared by an open that succeeds).
  OpenFailureNote open_failure;
};

// Sizes the mapping is built from.
struct ShmSizes {
  uint32_t slot_count = 4;                       // 2 * workers + 2
  uint64_t index_max_keys = 256ull << 20;        // index region virtual size (RegionBytesFor)
  uint64_t index_initial_capacity = 1 << 16;
  uint64_t write_queue_bytes = 64ull << 20;      // ring bytes
  uint32_t completion_ring_entries = 1 << 16;    // per slot, power of two
  uint32_t keyspace_tail_entries = 4096;         // per tail (two tails)
  uint64_t keyspace_tail_arena_bytes = 8ull << 20;  // key and content-type bytes per tail
};

class SharedMemory {
 public:
  // Maps and formats everything, creates the eventfds (inheritable).
  // Master only, before any fork. Errors: kIOError (mmap/eventfd failed, with
  // errno text), kInvalidArgument (bad sizes), index formatting errors.
  static engine::Result<std::unique_ptr<SharedMemory>> Create(const ShmSizes& sizes);

  ~SharedMemory();  // unmaps and closes the eventfds (in this process only)
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;

  // ---- any process, any thread ----
  ControlBlock& control() const;
  SlotInfo& slot(uint32_t i) const;      // i < slot_count()
  uint32_t slot_count() const { return sizes_.slot_count; }
  WriterMetrics& writer_metrics() const;
  BackupRegion& backups() const;

  // The index region (for engine::Writer / Reader) and a handle on it. The
  // handle is this process's; copy-constructed by fork, usable in any child.
  void* index_region() const { return index_base_; }
  size_t index_region_bytes() const { return index_bytes_; }
  engine::SharedIndex& index() { return *index_; }
  // The sorted key view's shared part (listing).
  engine::KeyspaceRegion& keyspace() { return *keyspace_; }

  WriteQueue& queue() { return *queue_; }
  CompletionRing& completions(uint32_t slot);

  int writer_eventfd() const { return writer_efd_; }
  int slot_eventfd(uint32_t slot) const;

  // A forked worker's: closes the eventfds of the other slots it inherited
  // (the writer rings them, the master keeps them for later workers), so
  // that what a worker holds does not grow with the number of workers, as
  // nginx's workers close the other processes' channels. This process's
  // copies only; slot_eventfd of another slot is -1 afterwards.
  void KeepOnlySlotEventFd(uint32_t slot);

  // Counter stripe `stripe` (< kCounterStripes) of `slot` viewed as T (a POD
  // of atomics, e.g. http::Counters). Zero-filled at creation and never
  // cleared, so counters summed over every slot's used stripes stay
  // monotonic across worker deaths and reloads.
  template <class T>
  T* counters(uint32_t slot, uint32_t stripe = 0) const {
    static_assert(sizeof(T) <= kCounterStripeBytes, "grow kCounterStripeBytes");
    static_assert(alignof(T) <= 64);
    static_assert(std::is_trivially_destructible_v<T>);
    return reinterpret_cast<T*>(CountersBytes(slot, stripe));
  }
  void* CountersBytes(uint32_t slot, uint32_t stripe = 0) const;
  // The thread that counts in stripe `stripe` (< kCounterStripes) of `slot`,
  // before its first count: marks it for readers (release). Idempotent; once
  // marked, one load. Touches the slot's row only, not the stripe.
  void MarkCounterStripe(uint32_t slot, uint32_t stripe) const;
  // Calls f(stripe) for each marked stripe of `slot`, in increasing order
  // (acquire: what was counted before the mark is seen). Reads the slot's
  // row; touches no stripe itself. Any thread of any process.
  template <class F>
  void ForEachCounterStripe(uint32_t slot, F&& f) const {
    const SlotInfo& row = this->slot(slot);
    for (uint32_t w = 0; w < kCounterStripeWords; ++w) {
      for (uint64_t bits = row.counter_stripes[w].load(std::memory_order_acquire); bits != 0; bits &= bits - 1) {
        f(w * 64 + static_cast<uint32_t>(__builtin_ctzll(bits)));
      }
    }
  }

 private:
  SharedMemory() = default;

  ShmSizes sizes_;
  char* base_ = nullptr;
  size_t bytes_ = 0;
  size_t backups_off_ = 0;
  size_t control_off_ = 0, stats_off_ = 0, index_off_ = 0, keyspace_off_ = 0, keyspace_bytes_ = 0, queue_off_ = 0,
         slots_off_ = 0;
  size_t slot_stride_ = 0, ring_bytes_ = 0;
  void* index_base_ = nullptr;
  size_t index_bytes_ = 0;
  std::unique_ptr<engine::SharedIndex> index_;
  std::unique_ptr<engine::KeyspaceRegion> keyspace_;
  std::unique_ptr<WriteQueue> queue_;
  std::unique_ptr<CompletionRing[]> rings_;
  int writer_efd_ = -1;
  std::unique_ptr<int[]> slot_efds_;
};

// The server's mapping for `config` with `slot_count` slots: the index region
// sized for 256 Mi keys of virtual space, or 64 Mi / 16 Mi keys when the
// system refuses that much address space (logged). Master only, before fork.
engine::Result<std::unique_ptr<SharedMemory>> CreateSharedMemory(const Config& config, uint32_t slot_count);

// Slot `slot`'s occupant of generation `gen` (its low 24 bits) is alive: the
// master has not reaped it (a reaped worker's slot is free, or already holds
// the next generation). Any thread of any process.
bool SlotOccupantAlive(const SharedMemory& shm, uint32_t slot, uint32_t gen);

// Records one applied batch in the stats (writer only).
void RecordBatch(WriterMetrics& stats, uint64_t ops, uint64_t bytes, uint64_t apply_us, uint64_t failed);

// Records one fdatasync/fsync of `us` microseconds. Any thread of the writer.
void RecordSync(WriterMetrics& stats, uint64_t us);

// The bucket of `us` among kFsyncBucketUs (kFsyncBuckets - 1: above them all).
int FsyncBucket(uint64_t us);

}  // namespace kingx
