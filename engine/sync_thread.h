// SyncThread: the writer's fdatasync, on a thread of its own, so that the
// writer thread decides and writes the next batch while the previous one is
// being made durable (pipelined group commit, Writer::Submit).
//
// Contract:
//  - Request(file, end): the caller wrote every byte of `file` below `end`
//    before calling. The thread runs one fdatasync at a time; a sync covers
//    exactly the bytes written before it started, so a request that arrives
//    while a sync runs is served by the next one, which covers every request
//    made until it starts (requests coalesce: one sync for all of them).
//  - Poll() / WaitIdle(): the largest `end` a successful sync covered, and
//    the first failure. A failure is final: no fdatasync is ever issued again
//    by this thread (after a failed fdatasync Linux may have dropped the
//    dirty pages and cleared the error, so a later "success" proves nothing),
//    and every later Request is answered by that failure.
//  - `file` must stay open until WaitIdle returns (callers drain before they
//    rotate or close the file); requests name one file at a time (a request
//    for another file is made only once the thread is idle).
//  - `on_done` runs on the sync thread after each sync it ran (success or
//    failure), without any lock of this class held: the writer uses it to
//    wake its loop. A sync run by SyncHere does not call it.
//  - Defer(file, end) records a request as Request does but does not wake
//    the thread: the caller means to run the sync itself with SyncHere (no
//    wake-up of another thread before the fdatasync nor after it). Until it
//    does, a WaitIdle hands the deferred request to the thread, so a caller
//    that never gets to SyncHere delays the sync but never loses it.
//  - SyncHere(): runs, on the calling thread, one fdatasync covering every
//    request made so far, when one is requested and not covered, no sync
//    runs, and no failure happened; it counts and reports exactly as the
//    thread's syncs do (Poll, WaitIdle). Returns whether it ran one (false:
//    nothing to sync, or the thread runs it now; Poll tells when that ends).
//  - Started lazily by the first Request or Defer; the destructor waits for
//    the sync in progress (if any) and joins. No exceptions.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "engine/env.h"
#include "engine/status.h"

namespace kingx::engine {

class SyncThread {
 public:
  struct State {
    uint64_t covered = 0;      // every byte below it is durable (successful syncs only)
    Status failure;            // the first failed sync, final
    uint64_t syncs = 0;        // fdatasyncs finished so far
    uint64_t last_sync_us = 0;
    uint64_t total_sync_us = 0;
    bool idle = true;          // no sync running, none requested
  };

  explicit SyncThread(std::function<void()> on_done) : on_done_(std::move(on_done)) {}
  ~SyncThread();
  SyncThread(const SyncThread&) = delete;
  SyncThread& operator=(const SyncThread&) = delete;

  // Asks for a sync of `file` covering its bytes below `end` (see above).
  void Request(File* file, uint64_t end);
  // The same request, for the caller to run with SyncHere (see above).
  void Defer(File* file, uint64_t end);
  // Runs the requested sync on the calling thread (see above).
  bool SyncHere();
  // The state now.
  State Poll();
  // Waits until no sync runs and none is requested; returns the state then.
  State WaitIdle();
  // Forgets the covered offset (the next requests name a new file). Only when idle.
  void Restart();

 private:
  void Run();
  // Records a request (mu_ held).
  void RecordLocked(File* file, uint64_t end);
  // One fdatasync covering requested_, run by the caller of this with `lock`
  // (on mu_) held and running_ set; releases the lock around the sync and
  // holds it again on return, running_ cleared and the state updated.
  void SyncOnce(std::unique_lock<std::mutex>& lock);

  std::function<void()> on_done_;
  std::mutex mu_;
  std::condition_variable work_cv_;  // the thread waits here for requests handed to it
  std::condition_variable idle_cv_;  // WaitIdle waits here
  std::thread thread_;
  bool stop_ = false;
  File* file_ = nullptr;
  uint64_t requested_ = 0;    // largest end asked for
  bool running_ = false;      // an fdatasync runs (on the thread or in SyncHere)
  uint64_t handed_ = 0;       // largest end the thread is to sync (Request, or a WaitIdle's hand-over)
  State state_;
};

}  // namespace kingx::engine
