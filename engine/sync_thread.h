// SyncThread: the writer's fdatasyncs, on threads of their own, so that the
// writer thread decides and writes the next batch while earlier ones are
// being made durable (pipelined group commit, Writer::Submit). Up to `depth`
// fdatasyncs of one file run at once, each on a descriptor no other running
// sync uses.
//
// Contract:
//  - Request(file, end): the caller wrote every byte of `file` below `end`
//    before calling. A sync covers exactly the bytes written before it
//    started. A request starts a sync at once when fewer than the depth run
//    (and a descriptor is free, below); otherwise it waits and is served by
//    the next sync to start, which covers every request made until then
//    (requests coalesce: one sync for all of them).
//  - Descriptors: `file` (the requests' own) and the spares given by
//    SetSpareFiles. Each is its own open file description of the same file,
//    opened before any byte it may sync was written: Linux reports a
//    writeback error to every file description that was open when it
//    happened, but once per description, so two fdatasyncs running on one
//    description could see one error between them and one of the two would
//    return success for pages that were lost. The depth in effect is
//    min(depth, 1 + spares).
//  - Order: Poll() / WaitIdle() report `covered`, the largest `end` below
//    which every byte is durable: a sync's bytes count only once it AND every
//    sync started before it returned success, so covered only grows, in the
//    order the syncs started, whichever of them returns first.
//  - Failure: the first failed sync is final. `covered` never grows again
//    (the syncs still running may return success: it is not trusted: a
//    failed fdatasync may have dropped dirty pages that a later one then
//    does not see), no fdatasync is ever started again (after a failure
//    Linux may have dropped the dirty pages and cleared the error, so a
//    later "success" proves nothing), and every later Request is answered
//    by that failure.
//  - idle: no sync runs, and none is requested (or a failure answers them).
//    `file` and the spares must stay open until WaitIdle returns (callers
//    drain before they rotate or close the file); requests name one file at
//    a time (a request for another file, and SetSpareFiles, are made only
//    once the thread is idle).
//  - `on_done` runs on a sync thread after each sync it ran (success or
//    failure), without any lock of this class held: the writer uses it to
//    wake its loop. A sync run by SyncHere does not call it.
//  - Defer(file, end) records a request as Request does but does not wake
//    a thread: the caller means to run the sync itself with SyncHere (no
//    wake-up of another thread before the fdatasync nor after it). Until it
//    does, a WaitIdle hands the deferred request to the threads, so a caller
//    that never gets to SyncHere delays the sync but never loses it.
//  - SyncHere(): runs, on the calling thread, one fdatasync on `file`
//    covering every request made so far, when one is requested and not
//    covered, no sync runs, and no failure happened; it counts and reports
//    exactly as the threads' syncs do (Poll, WaitIdle). Returns whether it
//    ran one (false: nothing to sync, or a thread runs one now; Poll tells
//    when that ends).
//  - Threads are started lazily, one per sync that runs beside the others
//    (at most `depth`), named kingx-sync; the destructor waits for the syncs
//    in progress (if any) and joins. No exceptions.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/env.h"
#include "engine/status.h"

namespace kingx::engine {

class SyncThread {
 public:
  struct State {
    uint64_t covered = 0;      // every byte below it is durable (successful syncs, in start order)
    Status failure;            // the first failed sync, final
    uint64_t syncs = 0;        // fdatasyncs finished so far
    uint64_t last_sync_us = 0;
    uint64_t total_sync_us = 0;
    uint32_t running = 0;      // fdatasyncs running now
    bool idle = true;          // no sync running, none requested
    bool room = true;          // a Request made now starts its sync at once (no failure either)
  };

  // depth >= 1: the most fdatasyncs running at once.
  SyncThread(uint32_t depth, std::function<void()> on_done) : depth_(depth), on_done_(std::move(on_done)) {}
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
  // Waits until `covered` reaches `end` (which was requested) or a sync
  // failed; returns the state then. Syncs started later may still run.
  // Hands a deferred request over as WaitIdle does.
  State WaitCovered(uint64_t end);
  // Forgets the covered offset (the next requests name a new file, or start
  // again). Only when idle.
  void Restart();
  // Replaces the spare descriptors (see above; empty: none, for a new
  // file). The old ones are closed. Only when idle.
  void SetSpareFiles(std::vector<std::unique_ptr<File>> spares);

 private:
  // A sync started and not yet retired (retired once it and every one
  // started before it returned).
  struct Started {
    uint64_t target = 0;  // it covers the bytes below this
    File* file = nullptr;
    bool done = false;
  };

  void Run();
  // Records a request (mu_ held).
  void RecordLocked(File* file, uint64_t end);
  // Gets a thread to look at the requests handed over (mu_ held).
  void WakeLocked();
  // The depth in effect (mu_ held).
  uint32_t DepthLocked() const;
  // Whether a thread may start a sync now for what was handed to it (mu_ held).
  bool CanStartLocked() const;
  // A descriptor no running sync uses (mu_ held; one exists when fewer
  // than DepthLocked() run).
  File* FreeFileLocked() const;
  // One fdatasync covering requested_ on `file`, run by the caller of this
  // with `lock` (on mu_) held; releases the lock around the sync and holds it
  // again on return, with the state updated.
  void SyncOnce(std::unique_lock<std::mutex>& lock, File* file);
  State StateLocked() const;

  const uint32_t depth_;
  std::function<void()> on_done_;
  std::mutex mu_;
  std::condition_variable work_cv_;  // the threads wait here for requests handed to them
  std::condition_variable idle_cv_;  // WaitIdle waits here
  std::vector<std::thread> threads_;
  uint32_t waiting_threads_ = 0;     // threads waiting on work_cv_
  bool stop_ = false;
  File* file_ = nullptr;
  std::vector<std::unique_ptr<File>> spares_;
  uint64_t requested_ = 0;    // largest end asked for
  uint64_t handed_ = 0;       // largest end the threads are to sync (Request, or a WaitIdle's hand-over)
  uint64_t started_ = 0;      // largest target of a sync started since the last Restart
  std::deque<Started> syncs_;  // started, not retired; oldest first
  uint32_t running_ = 0;      // entries of syncs_ not done
  State state_;               // covered, failure, statistics, idle (the rest is computed)
};

}  // namespace kingx::engine
