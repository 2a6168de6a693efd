// SegmentExtender: keeps zero-filled, synced room ahead of the active
// segment's last record, written on a thread of its own, so that a group
// commit's fdatasync writes records into blocks the file already has and
// does not change the file's size: the filesystem has no metadata to journal
// for it, only the data to flush (engine/FORMAT.md, "Preallocated room").
//
// Contract:
//  - One segment at a time. Start(file, size, limit) hands it a File of the
//    active segment (its own descriptor, opened for writing) whose size is
//    `size`, and makes a first, small step of room (at most kFirstStepBytes)
//    on the calling thread (zero write, fdatasync) before it returns; later
//    steps start at the room's end, ahead of the records, on the extender's
//    thread. A step is step_bytes() long, asked when it starts (the writer
//    sizes it from the live data, so that a small database keeps a small room). The room never
//    grows past `limit` bytes of file. Stop() waits for the extension in
//    progress and closes the file. The destructor stops.
//  - The writer's threads call every method, one at a time (they hold the
//    writer's mutex); extensions run on the extender's thread. Between BeforeWrite(end) and AfterWrite(end) the
//    writer may write any bytes below `end`: no extension in progress covers
//    them (BeforeWrite waits for one that would, which happens only when the
//    writer outruns the room: then it waits for up to one chunk's write and
//    fdatasync).
//  - AfterWrite(end) starts an extension when fewer than step_bytes() / 2
//    bytes of room are left past `end` and none is in progress: step_bytes()
//    zero bytes written from the room's end (or from `end`, if the writer
//    wrote past the room), then fdatasync, then the room counts.
//  - Each step first asks `may_take(bytes)` (the writer's disk space: the
//    room never takes the reserve kept for compaction); a step refused there
//    is not made, and asked again at the next write that would start it.
//  - Failures (no space, EIO on the zero write or its fdatasync) are logged,
//    the zeros of that step are cut again (best effort), and they end
//    extending for this segment: the writer then appends past the room as
//    without preallocation. No failure of the extender reaches a
//    write: the records' own fdatasync, on the writer's descriptor, reports
//    its own errors (Linux reports a writeback error to every descriptor).
//  - Paused(): waits for the extension in progress; after it, the writer may
//    truncate the file (Truncated(size) then tells the extender the new size).
// Resource bounds: one thread, one open file, a zero buffer of 64 KiB; the
// room is at most one step past the records, plus what is left of the last.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "engine/env.h"

namespace kingx::engine {

class SegmentExtender {
 public:
  static constexpr uint64_t kFirstStepBytes = 256 << 10;

  // step_bytes: the length of the next step (> 0; called by the writer's
  // threads, under the writer's mutex). log: where failures are reported
  // (may be empty). may_take: see the header (empty: always).
  SegmentExtender(std::function<uint64_t()> step_bytes, std::function<void(const std::string&)> log,
                  std::function<bool(uint64_t bytes)> may_take = {});
  ~SegmentExtender();
  SegmentExtender(const SegmentExtender&) = delete;
  SegmentExtender& operator=(const SegmentExtender&) = delete;

  // Takes over `file` (size bytes now) as the segment to keep room in, at
  // most up to `limit` bytes, and makes the first step of room now. Any
  // previous segment is stopped first.
  void Start(std::unique_ptr<File> file, uint64_t size, uint64_t limit);
  // Waits for the extension in progress and drops the file. Returns the size
  // the extender left the file at (0 when it had none).
  uint64_t Stop();
  // See the header: waits while an extension in progress covers bytes below end.
  void BeforeWrite(uint64_t end);
  // See the header: may start an extension.
  void AfterWrite(uint64_t end);
  // Waits for the extension in progress (the writer is about to truncate).
  void Paused();
  // The writer truncated the file to `size` bytes.
  void Truncated(uint64_t size);
  // The bytes of file the room reaches now (zeroed and synced below it).
  uint64_t room_end();

 private:
  void Run();
  // Writes zeros to [from, to) of file and fdatasyncs it; logs a failure.
  Status Extend(File* file, uint64_t from, uint64_t to);

  const std::function<uint64_t()> step_bytes_;
  const std::function<void(const std::string&)> log_;
  const std::function<bool(uint64_t)> may_take_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
  bool quit_ = false;
  std::unique_ptr<File> file_;  // null when stopped
  uint64_t size_ = 0;           // the file's size as far as the extender knows
  uint64_t limit_ = 0;
  bool failed_ = false;         // extending stopped for this segment
  bool busy_ = false;           // an extension of [from_, to_) is in progress
  uint64_t from_ = 0, to_ = 0;
};

}  // namespace kingx::engine
