// The shared write queue (workers → writer), in the shared mapping
// (src/ipc/shm.h). The way back, writer → each worker, is the completion ring
// (src/ipc/completion_ring.h).
//
// WriteQueue: a bounded ring of variable-size entries guarded by a
// process-shared, ROBUST pthread mutex. Producers (any thread of any worker
// process) copy a whole entry into free space and then advance the tail with
// one store, all under the mutex; a producer killed while holding it leaves
// the ring exactly as before its call (the next locker gets EOWNERDEAD, calls
// pthread_mutex_consistent and goes on), so a dead worker wedges nobody.
// The single consumer (the writer process's loop thread) takes the positions
// under the mutex, reads its batch in place without the mutex (producers only
// ever write into free space), then releases the batch's bytes under the
// mutex. No call blocks on anything but that short critical section.
//
// Large values (over max_entry_bytes()) travel as LargeBegin, LargePart...,
// LargeEnd (or LargeAbort), all with the same token; other entries may be
// interleaved between them. Each part is at most max_entry_bytes(), so a big
// PUT never needs one buffer for the whole body, on either side.
//
// Tokens: every entry carries the token its producer chose (src/ipc/token.h);
// the writer's completion for the write carries it back.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "engine/record.h"
#include "engine/status.h"

namespace kingx {

// ---------------------------------------------------------------- entries

enum class WriteKind : uint8_t { kPut = 1, kDelete = 2 };

// Decided by the writer at apply time, atomically with the write.
enum class WriteCondition : uint8_t {
  kNone = 0,
  kIfAbsent = 1,  // If-None-Match: *  (the key must not exist)
  kIfMatch = 2,   // If-Match: "<seq>" (the key's current seq must be if_match_seq)
};

// One write as a worker hands it over. Views: valid only during the call
// that takes it (TryEnqueue copies every byte into the ring).
struct WriteRequest {
  WriteKind kind = WriteKind::kPut;
  WriteCondition condition = WriteCondition::kNone;
  uint64_t if_match_seq = 0;
  std::string_view key;
  std::string_view content_type;            // stored as record metadata (<= 255 bytes)
  engine::Codec codec = engine::Codec::kRaw;
  uint64_t raw_len = 0;                      // uncompressed value length (puts)
  std::string_view stored;                   // the bytes to store (compressed when codec != kRaw)
};

enum class EntryType : uint8_t {
  kOp = 1,          // a whole WriteRequest
  kLargeBegin = 2,  // request with stored empty: key, content type, condition, codec
  kLargePart = 3,   // request.stored = the next stored bytes of the value
  kLargeEnd = 4,    // request.raw_len = the whole value's uncompressed length
  kLargeAbort = 5,  // the upload is abandoned (client went away): no completion is posted
};

// An entry as the consumer sees it: views into the ring, valid until
// Release() of the batch that contains it.
struct QueueEntry {
  EntryType type = EntryType::kOp;
  uint32_t slot = 0;
  uint64_t token = 0;
  WriteRequest request;
  // Where the entry ends in the ring: the PeekPosition() just after it, for
  // ReleaseThrough of a batch's first entries only.
  uint64_t end_position = 0;
};

// ---------------------------------------------------------------- queue

struct WriteQueueHeader;  // in the shared mapping, defined in write_queue.cc

class WriteQueue {
 public:
  // Bytes of shared memory a queue with `ring_bytes` of ring needs.
  static size_t RegionBytes(uint64_t ring_bytes);

  // Formats [base, base + RegionBytes(ring_bytes)) (master, before fork; or a
  // test). `writer_eventfd` is the fd producers write to wake the writer
  // (-1: no wake-ups, the consumer polls). ring_bytes >= 64 KiB, multiple of 8.
  // Errors: kInvalidArgument, or the pthread error that initialising the
  // robust mutex returned (kIOError).
  static engine::Status Format(void* base, uint64_t ring_bytes, int writer_eventfd);

  // A handle on a formatted region (any process; copying it is fine).
  explicit WriteQueue(void* base);

  // Largest stored-bytes payload of one entry (key + content type included):
  // ring / 8. A request bigger than this must use the Large* calls, and each
  // part must be at most this big.
  size_t max_entry_bytes() const;

  // ---- producers: any thread of a worker process ----
  // Each call copies the entry into the ring and returns OK, or returns
  // without side effect: kBusy when the ring has no room now (apply
  // backpressure and retry when a completion arrives or after a short
  // timer), kTooLarge when the entry can never fit (see max_entry_bytes),
  // kInvalidArgument for an empty key. Never blocks beyond the mutex's short
  // critical section. Wakes the writer (eventfd) only when it sleeps, at
  // once unless the calling thread defers its wake-ups (below).
  engine::Status TryEnqueue(uint32_t slot, uint64_t token, const WriteRequest& request);
  engine::Status TryEnqueueLargeBegin(uint32_t slot, uint64_t token, const WriteRequest& header);
  engine::Status TryEnqueueLargePart(uint32_t slot, uint64_t token, std::string_view stored_part);
  engine::Status TryEnqueueLargeEnd(uint32_t slot, uint64_t token, uint64_t raw_len);
  engine::Status TryEnqueueLargeAbort(uint32_t slot, uint64_t token);

  // Wake-ups deferred by the calling thread: while DeferWakes(true) holds,
  // an enqueue by this thread that finds the writer asleep leaves its
  // eventfd unwritten and owes the wake-up; FlushWakes() (this thread)
  // writes it if the writer still sleeps. An event loop defers for its whole
  // life and flushes after each poll phase and before it blocks, so that the
  // writer wakes once for the requests read in one poll phase and takes them
  // as one batch, not at the first of them (the rest then waiting for that
  // batch's fdatasync). The 128th enqueue since the wake-up was first owed
  // flushes by itself, so that a poll phase with thousands of ready
  // connections feeds the writer as it goes. A flush that is never made
  // delays the writer until its next timeout (at most a second), never
  // loses an entry. DeferWakes(false) flushes. Threads that never defer are
  // not affected.
  static void DeferWakes(bool on);
  static void FlushWakes();

  // The producers' wake-ups of the sleeping writer since Format (any
  // process; relaxed counters, each exact once the producers are quiet):
  // eventfd writes, the enqueues they carried (1 for an enqueue that woke
  // it at once; for a deferred wake-up, the flushing thread's enqueues
  // since its previous flush) and the most one of them carried. A poll
  // phase's writes that woke the writer once show as one wake-up carrying
  // all of them.
  struct WakeCounts {
    uint64_t wakes = 0;
    uint64_t enqueues = 0;
    uint64_t max_enqueues = 0;
  };
  WakeCounts WakeStats() const;

  // Queued entries and their ring bytes right now (any process; a racy
  // snapshot). DepthBytes leaves out the pad before a wrapped entry; after a
  // producer died between writing a pad and publishing, it may count an
  // older pad until the consumer has released past it.
  uint64_t DepthEntries() const;
  uint64_t DepthBytes() const;
  uint64_t ring_bytes() const;

  // Producers keep a load the consumer keeps up with in the ring's first
  // wrap_window_bytes() (ring / 16, at most 4 MiB), so that it stays in
  // pages both processes have touched: an entry that would start past the
  // window while at most half of it is queued, and that fits at offset 0
  // before the oldest queued entry, is written at offset 0 behind a pad to
  // the ring's end. Until the consumer releases past that pad, producers
  // see only the room before the oldest queued entry's offset (at least
  // half the window at the wrap, less what was queued since); kBusy then
  // means what it always means: retry after a completion.
  uint64_t wrap_window_bytes() const;
  static uint64_t WrapWindowBytes(uint64_t ring_bytes);

  // ---- the consumer: the writer process's loop thread only ----

  // Starts consuming at the oldest unreleased entry. A (re)started writer
  // calls it once, then PeekOrphans, before its first Peek.
  void BeginConsuming();

  // Appends to *batch the entries a previous writer took (Peek) but never
  // released: it died while applying them, so some of them may be on disk
  // and some not. They must not be applied again (a second apply turns a
  // done DELETE into 404, a done If-Match PUT into 412, a create into an
  // overwrite); the writer answers them "outcome unknown" and releases them.
  // Returns how many were added (0 after a clean handover).
  size_t PeekOrphans(std::vector<QueueEntry>* batch);

  // Appends to *batch the queued entries not yet taken, oldest first, until
  // max_entries or max_bytes (the entries' ring bytes, pads not counted) is
  // reached (at least one entry is
  // taken when any is queued). Returns how many were added. The views stay
  // valid until Release(). Calling Peek again before Release continues after
  // the entries already taken.
  size_t Peek(std::vector<QueueEntry>* batch, size_t max_entries, uint64_t max_bytes);

  // Frees the ring bytes of every entry returned by Peek so far.
  void Release();

  // Whether entries were queued after the ones Peek handed out so far (a
  // snapshot: one may land right after it). Never blocks, no system call.
  bool HasUntaken() const;

  // Where the entries handed out so far end: with the number of entries
  // handed out up to it, what ReleaseThrough takes to free exactly those.
  uint64_t PeekPosition() const { return peek_pos_; }
  // Frees the ring bytes of the oldest `entries` entries handed out and not
  // released, which end at `position` (a PeekPosition() of then); the entries
  // handed out after them stay taken (a writer that dies leaves them to
  // PeekOrphans of the next one).
  void ReleaseThrough(uint64_t position, uint64_t entries);

  // Sleeps until a producer wakes the writer through its eventfd, or until
  // timeout_ms passes (-1: no timeout), or returns at once when entries are
  // queued. Announces the sleep in the shared header so producers know to
  // write the eventfd (and only then). Returns true if entries are queued.
  bool WaitForEntries(int timeout_ms);

  // Sleeps until at least `want` entries are queued that Peek has not handed
  // out yet, or until timeout_us passes, and returns how many are (a racy
  // snapshot, as DepthEntries). Producers are told the writer sleeps, so
  // each wake-up they owe ends one sleep (a deferring thread's, once per
  // flush: see DeferWakes) and the count is looked at again; a Wake() ends
  // one too. Bounded by timeout_us; returns at once when `want` are there.
  // Without an eventfd (tests) it sleeps in steps of at most 1 ms.
  uint64_t WaitForQueued(uint64_t want, uint64_t timeout_us);
  // Entries queued that Peek has not handed out yet (racy snapshot).
  uint64_t Untaken() const;

  // Sleeps until Wake() is called (or was since the last wait), or until
  // timeout_ms passes (-1: no timeout), even when entries are queued: the
  // writer waiting for an fdatasync to return leaves what arrives meanwhile
  // queued. Producers are not told to write the eventfd (their enqueues do
  // not end this wait). Returns true if entries are queued.
  bool WaitForWake(int timeout_ms);

  // Wakes a consumer sleeping in WaitForEntries or WaitForWake (any process:
  // used to make the writer look at a stop request or a finished fdatasync).
  void Wake();

  // Test seams (never used by the server), so a test can kill the calling
  // process inside a critical section and check what the others see:
  // LockForTesting takes the queue's mutex and returns holding it;
  // EnqueueForTesting runs TryEnqueue until `stop` and returns there (still
  // holding the mutex); ReleaseForTesting runs Release until `stop`.
  enum class StopPoint : uint8_t {
    kBeforePublish,  // every byte written, nothing published yet
    kAfterPublish,   // published (tail / head stored), bookkeeping not finished
  };
  void LockForTesting() { (void)Lock(); }
  // The consumer's announcement that it is about to sleep (WaitForEntries
  // makes it, then sleeps): a producer's enqueue after it writes the eventfd.
  void AnnounceSleepForTesting();
  void EnqueueForTesting(uint32_t slot, uint64_t token, const WriteRequest& request, StopPoint stop) {
    (void)Enqueue(EntryType::kOp, slot, token, request, &stop);
  }
  void ReleaseForTesting(StopPoint stop) { ReleaseUntil(&stop, peek_pos_, pending_release_); }

 private:
  engine::Status Enqueue(EntryType type, uint32_t slot, uint64_t token, const WriteRequest& r,
                         const StopPoint* stop = nullptr);
  void ReleaseUntil(const StopPoint* stop, uint64_t position, uint64_t entries);
  // Entries released up to `head` (see the counts in write_queue.cc).
  uint64_t ReleasedAt(uint64_t head) const;
  size_t PeekUpTo(std::vector<QueueEntry>* batch, size_t max_entries, uint64_t max_bytes, uint64_t limit);
  int Lock();
  // Writes h's eventfd if its consumer announced a sleep (and clears it),
  // counting a wake-up that carries `enqueues`.
  static void WakeIfSleeping(WriteQueueHeader* h, uint32_t enqueues);
  void Unlock();

  WriteQueueHeader* header_;
  char* ring_;
  uint64_t peek_pos_ = 0;         // consumer only: end of what Peek handed out
  uint64_t pending_release_ = 0;  // consumer only: entries handed out since Release
  uint64_t orphan_end_ = 0;       // consumer only: end of a dead writer's taken entries
};

}  // namespace kingx
