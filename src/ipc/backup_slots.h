// Backup slots: how a worker asks the writer for a point-in-time cut of the
// database (GET /admin/backup), in the shared mapping (src/ipc/shm.h).
//
// One slot per backup in progress, kMaxBackups of them. Life of a slot
// (who stores each state):
//
//   kFree      --worker: claim (compare-exchange)-->            kClaimed
//   kClaimed   --worker: slot/token filled, WriteQueue::Wake--> kRequested
//   kRequested --writer, between two batches: PinSegments-->    kCut | kFailed
//              (then a Completion with reason kBackupCut to the requester)
//   kCut       --writer: the pin outlived --backup-max-ms-->    kExpired (unpinned)
//   any of the requester's states --worker: done, gave up, or the
//              connection closed; then WriteQueue::Wake-->      kReleased
//   kReleased (or a requester whose slot generation moved: dead)
//              --writer: unpins if it still holds the pin-->    kFree
//
// While a slot is kCut the writer holds one segment pin for it (no segment
// file is unlinked, so no id of the cut is reused); a writer that starts
// while slots are kCut pins again for each before compaction starts. A
// worker reading the cut's files checks the state is still kCut after each
// read: a read that raced with an expiry is never sent.
//
// Every field is an atomic whose comment names the process that stores it.
#pragma once

#include <atomic>
#include <cstdint>

namespace kingx {

inline constexpr uint32_t kMaxBackups = 4;
inline constexpr uint32_t kMaxBackupFiles = 16384;

enum class BackupState : uint32_t {
  kFree = 0,
  kClaimed = 1,    // a worker is filling the request
  kRequested = 2,  // waiting for the writer's cut
  kCut = 3,        // files pinned; the worker streams them
  kFailed = 4,     // the writer could not cut (error_code); nothing pinned
  kReleased = 5,   // the worker is done: the writer unpins and frees the slot
  kExpired = 6,    // the pin outlived its limit and was dropped: the stream must stop
};

inline constexpr uint32_t kBackupFileActive = 1;   // the active segment at the cut
inline constexpr uint32_t kBackupFileMissing = 2;  // listed in the MANIFEST, its file gone

struct BackupFile {
  std::atomic<uint32_t> id{0};      // writer: segment id
  std::atomic<uint32_t> flags{0};   // writer: kBackupFileActive | kBackupFileMissing
  std::atomic<uint64_t> bytes{0};   // writer: its size at the cut
  std::atomic<uint64_t> birth{0};   // writer: its birth number (the MANIFEST's)
};

struct BackupSlot {
  std::atomic<uint32_t> state{0};           // BackupState; see the file comment
  std::atomic<uint32_t> slot{0};            // worker: the requesting worker's slot
  std::atomic<uint64_t> token{0};           // worker: carries the slot generation (MakeToken)
  std::atomic<uint64_t> seed{0};            // writer
  std::atomic<uint64_t> next_seq{0};        // writer: the first seq after the cut
  std::atomic<uint64_t> seq_high_water{0};  // writer
  std::atomic<uint64_t> cut_ms{0};          // writer: CLOCK_MONOTONIC ms of the cut
  std::atomic<uint32_t> error_code{0};      // writer: engine::Code when kFailed
  std::atomic<uint32_t> file_count{0};      // writer
  BackupFile files[kMaxBackupFiles];
};

struct BackupRegion {
  // Workers (fetch_add): backups answered 200, streams that ended whole,
  // streams or requests that failed, archive bytes handed to the socket.
  std::atomic<uint64_t> started{0};
  std::atomic<uint64_t> finished{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> bytes_sent{0};
  // Writer: pins dropped at --backup-max-ms; the longest time a cut kept the
  // writer's loop from the next batch.
  std::atomic<uint64_t> cut_off{0};
  std::atomic<uint64_t> max_cut_us{0};
  BackupSlot slots[kMaxBackups];
};

}  // namespace kingx
