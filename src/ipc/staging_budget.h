// StagingBudget: how many bytes large uploads in progress may stage on disk,
// shared by every worker of the server and decided before a worker sends
// the writer anything of an upload.
//
// A large value (a body of more than one write-queue part) is staged by the
// writer in a file of its own until its last part arrives. Those bytes are
// not data yet: compaction cannot reclaim them, so the write stall cannot
// bound them. They are bounded here by a share of the live data:
//
//   share = live record bytes / kShareDivisor (the shared index's counter)
//
// and an upload that does not fit is *held* (its worker stops reading its
// body: backpressure through the socket, one part of memory at most), not
// refused; it goes on once staged bytes fall, or is answered 503 +
// Retry-After after --storage-timeout-ms (WriteExchanges). --staging-bytes,
// the user's own ceiling, stays a refusal in the writer (writer_process.cc).
//
// Admission, in the worker, before the upload's LargeBegin is queued (the
// writer never holds an upload: an entry waiting in the FIFO write queue
// would hold every write behind it):
//  - an upload with a Content-Length reserves all it will stage at once
//    (StagingBytesFor the declared length); it is admitted when the total
//    stays within the share, or when nothing at all is reserved (the floor:
//    an empty or small database still takes one upload of the largest value
//    allowed, alone);
//  - an upload without a length (chunked), or one whose encoded parts come
//    out larger than it reserved, reserves part by part before each part is
//    queued. Its first part is admitted as above; a later part also when the
//    upload holds every reserved byte (it is alone), or when it holds the
//    overdraft: the one upload allowed on past the share. Two half-staged
//    uploads therefore never wait for each other for ever: one takes the
//    overdraft, finishes (or fails) and gives it back.
// So staged bytes stay within max(share, one upload) while uploads declare
// their length, plus at most one upload that grows part by part.
//
// Waiting uploads are not starved by later, smaller ones: an upload that
// reserved nothing yet and is refused becomes first in line (one shared
// word) unless another living upload is; while one is, uploads that have
// reserved nothing are refused even when they would fit, so the total
// drains until the first in line fits (or is alone). Uploads already
// holding bytes are never made to wait for it (they could wait for each
// other then). Among the others no order is kept: whichever asks first
// after the line clears takes it.
//
// A reservation is given back when the upload's outcome is known (the
// writer's completion of its LargeEnd or of an early failure) or when its
// worker abandons it (LargeAbort queued: its staging file goes when the
// writer reaches that entry, a few milliseconds later). A worker that dies
// holding reservations: its slot's word keeps its generation and bytes, and
// the writer loop (ReturnDeadSlots, each turn) or the slot's next worker
// (Claim) swaps them out and takes them off the total, exactly once (a
// compare-and-swap on the slot's word). The slot's word is added to before
// the total and taken from after it, so a worker killed between the two
// updates leaves the total too low by that reservation, never too high: the
// budget is briefly looser, and the error goes once the total drains to 0
// (subtractions saturate). An overdraft held by a dead worker's upload is
// taken over by the next upload that asks for it.
//
// Thread/process: every method may be called from any thread of any process
// mapping `shm` (the thread model shares one instance among its threads);
// lock-free (compare-and-swap loops that retry only when another upload
// changed the total meanwhile). A Holder belongs to one upload and is used
// by one thread at a time.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "src/ipc/shm.h"

namespace kingx {

// The staged bytes of a large value before its parts: the room of the
// record's two headers, its key and its content type (engine/writer_large.cc).
inline uint64_t StagingPrefixBytes(size_t key_bytes, size_t content_type_bytes) {
  return 88 + uint64_t{key_bytes} + uint64_t{content_type_bytes};
}

class StagingBudget {
 public:
  // Staged bytes may reach live bytes / kShareDivisor (RELIABILITY.md
  // section 5 counts them in the data directory's bound).
  static constexpr uint64_t kShareDivisor = 8;

  // One upload's part of the budget, owned by that upload.
  struct Holder {
    uint64_t reserved = 0;   // bytes it holds in the total
    uint64_t id = 0;         // its upload id (0 until it first reserves)
    bool overdraft = false;  // it holds the overdraft
    bool held = false;       // counted in its slot's held uploads
    bool first = false;      // it is first in line
  };

  // shm must outlive the budget. slot and generation: the worker's
  // (WorkerContext). Claim before the first reservation.
  StagingBudget(SharedMemory& shm, uint32_t slot, uint32_t generation);
  StagingBudget(const StagingBudget&) = delete;
  StagingBudget& operator=(const StagingBudget&) = delete;

  // Takes the slot for this worker: its words get this generation, and
  // bytes a dead predecessor still held leave the total.
  void Claim();

  // The share: live record bytes / kShareDivisor.
  uint64_t ShareBytes() const;

  // Reserves n more bytes for h. whole: h reserves everything it will
  // stage at once (admitted within the share or alone); otherwise one more
  // part (also admitted when h holds every reserved byte, or takes the
  // overdraft, provided it already holds some). An h holding nothing yet
  // waits behind the upload first in line. False: nothing reserved (h may
  // have become first in line), h should wait and ask again.
  bool TryReserve(Holder* h, uint64_t n, bool whole);

  // Gives back everything h holds (bytes, overdraft, place in line, held
  // mark). Idempotent.
  void Release(Holder* h);

  // Marks h as held (waiting for room) or not: the gauge of held uploads,
  // and the counter of holds on each start of a wait.
  void SetHeld(Holder* h, bool held);

  // ---- any process ----
  // Returns the bytes of slots whose worker is gone (the writer loop, each
  // turn) and frees an overdraft or a place in line a dead worker's upload
  // held.
  static void ReturnDeadSlots(SharedMemory& shm);
  // Uploads held now, over the live workers' slots.
  static uint64_t HeldUploads(SharedMemory& shm);

 private:
  uint64_t NextId();
  bool TakeOverdraft(Holder* h);
  bool TryAdmit(Holder* h, uint64_t n, bool whole);
  bool BehindFirstInLine(Holder* h);
  void LeaveLine(Holder* h);

  SharedMemory& shm_;
  StagingShared& shared_;
  SlotInfo& slot_;
  const uint32_t slot_index_;
  const uint64_t tag_;  // the generation, in the top 24 bits of a slot word
  std::atomic<uint64_t> next_id_{0};
};

}  // namespace kingx
