// DiskSpace: the writer's view of the free space in the file system that
// holds the data directory, and the reserve it keeps there.
//
// The reserve (Options::disk_reserve_bytes) is room that puts may not use:
// compaction needs free space to copy the live part of a segment before it
// can delete the segment, so a disk filled to the last byte by puts could
// never be compacted again. A put is admitted only while the free space after
// it stays at or above the reserve; deletes are never refused here (a
// tombstone is small, and it is what makes space reclaimable). Compaction
// itself may use the reserve.
//
// Free space is measured with Env::Space (statvfs) and estimated in between
// (last measure minus the bytes written since): a put, a batch's room or a
// preallocation is decided on a measure at most max_age_ms old (kMaxAgeMs:
// one statvfs per few milliseconds while writes come; Refresh measures at
// its caller's pace, which the writer process sets to its idle turns). The
// estimate cannot see what other processes write to the file system, so the
// age bounds how far it can be wrong: a disk another process fills lets at
// most the puts of that interval into the reserve, never a second's worth.
// A refused write is measured again too (at the same pace), so writes resume
// as soon as compaction (or an operator) frees space, without waiting for a
// write to succeed.
//
// "Full" (what /readyz and the gauges report): set when a put was refused
// (by the reserve, or by the file system with ENOSPC) or when a measure finds
// less than kHeadroomBytes above the reserve; cleared only by a measure that
// finds room above the reserve for kHeadroomBytes and for the last refused
// write. So it does not flap while small puts still fit and large ones do not.
//
// Thread-safety: every method may be called from any thread (one mutex); the
// writer thread is the one caller in practice.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "engine/env.h"
#include "engine/status.h"

namespace kingx::engine {

struct DiskState {
  bool full = false;              // puts are being refused for lack of space
  bool known = false;             // at least one measure succeeded
  uint64_t total_bytes = 0;       // size of the file system (last measure)
  uint64_t free_bytes = 0;        // free space: last measure minus the bytes written since
  uint64_t reserve_bytes = 0;     // Options::disk_reserve_bytes
  uint64_t refused_writes = 0;    // writes answered kNoSpace since the writer opened
  uint64_t last_refused_bytes = 0;  // size of the last refused write
};

class DiskSpace {
 public:
  static constexpr uint64_t kMaxAgeMs = 5;
  static constexpr uint64_t kHeadroomBytes = 1 << 20;

  // dir: the data directory. log receives a line when measuring fails or
  // works again (may be empty). max_age_ms: how old a measure may be before
  // a decision measures again (tests of the estimate pass a long one). Does
  // no I/O.
  DiskSpace(Env& env, std::string dir, uint64_t reserve_bytes, std::function<void(const std::string&)> log,
            uint64_t max_age_ms = kMaxAgeMs);

  // Whether a put of `bytes` more may be written after `pending` bytes not
  // written yet (the rest of a batch). When not, marks the disk full (the
  // refusal is counted by Refused, where the writer answers it). A failed
  // measure admits the write (the write then fails by itself if the disk is
  // really full).
  bool Admit(uint64_t bytes, uint64_t pending = 0);
  // The bytes puts may take now before they eat into the reserve (UINT64_MAX
  // when free space is unknown), measured as Admit measures: a batch reads it
  // once (at its first put), and a put of `bytes` after `pending` bytes of
  // the batch fits when pending + bytes <= Room(), which is exactly when
  // Admit(bytes, pending) would admit it without measuring again. A put that
  // does not fit goes through Admit, which measures again if the measure is
  // old enough and counts the refusal. Never counts a refusal nor marks the
  // disk full.
  uint64_t Room();
  // Whether `bytes` of room may be taken ahead of any put (the active
  // segment's preallocated zeros): only while the free space after them
  // stays above the reserve by kHeadroomBytes, so that the room never takes
  // what compaction or the next puts need. Measures as Admit does; never
  // counts a refusal nor marks the disk full.
  bool Spare(uint64_t bytes);
  // Bytes appended to the data directory by an admitted write or a delete.
  void Consumed(uint64_t bytes);
  // A write of `bytes` (a batch's, a MANIFEST's) failed with kNoSpace from the
  // file system: marks the disk full and measures again at the next decision.
  void NoSpace(uint64_t bytes);
  // `writes` writes were answered kNoSpace, whatever refused them (the
  // reserve, the file system under a record, a segment or the MANIFEST).
  // The writer calls it once per answer, where it hands results out, so that
  // every refusal is counted once (DiskState::refused_writes).
  void Refused(uint64_t writes);
  // Files were removed (compaction, an aborted large value): the next call
  // measures again instead of trusting the estimate.
  void Changed();
  // Measures now (one statvfs: the caller paces it), so that the full state
  // clears when space came back while nobody writes.
  void Refresh();

  DiskState state() const;
  // "N bytes free, M kept in reserve for compaction and deletes".
  std::string Describe() const;

 private:
  // Under mu_. MeasureIfOldLocked: measures when the last measure is older
  // than max_age_ms_ (or there is none).
  void MeasureLocked(uint64_t now_ms);
  void MeasureIfOldLocked(uint64_t now_ms);
  uint64_t EstimateLocked() const;
  static uint64_t NowMs();

  Env& env_;
  const std::string dir_;
  const uint64_t reserve_bytes_;
  const uint64_t max_age_ms_;
  const std::function<void(const std::string&)> log_;
  mutable std::mutex mu_;
  bool known_ = false;
  bool failing_ = false;  // the last measure failed (logged once)
  uint64_t measured_at_ms_ = 0;
  uint64_t measured_free_ = 0;
  uint64_t total_ = 0;
  uint64_t consumed_since_ = 0;
  bool full_ = false;
  uint64_t refused_ = 0;
  uint64_t last_refused_bytes_ = 0;
};

// Size of the file system that holds path, or would hold it: when path does
// not exist yet, its nearest existing ancestor is measured. Errors as
// Env::Space.
Result<uint64_t> FileSystemBytes(Env& env, const std::string& path);

}  // namespace kingx::engine
