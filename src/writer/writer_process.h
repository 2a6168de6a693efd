// The writer: the one owner of engine::Writer, fed by the shared write queue.
//
// RunWriter opens the engine (recovery fills the shared index; then
// ControlBlock::writer_ready = 1 so workers answer /readyz 200) and loops:
//   wait on the queue (eventfd; timeout = the sync interval, 1 s, or a
//   quarter of --storage-timeout-ms, the shortest) → heartbeat →
//   take a batch (every queued entry up to kMaxBatchOps / kMaxBatchBytes) →
//   engine::Writer::Submit (decided and written) → the batch synced before
//   it is final (TakeFinished): post one Completion per op to its slot's
//   ring → release that batch's ring bytes → write each affected slot's
//   eventfd once → in sync=always the new batch's fdatasync runs on this
//   thread (Writer::SyncSubmitted; on the engine's sync thread when another
//   thread's drain handed it over, the loop then beating and serving backup
//   cuts and stop requests until it returns) → once it returned, the next
//   batch is taken (when nothing is queued by then, the synced batch is
//   answered at once, in the same turn). What arrives while a batch waits for its fdatasync
//   stays queued and becomes the next batch (one write, one fdatasync for
//   all of it): a write that arrives during an fdatasync waits for that one
//   and the next. After a failed fdatasync no batch is taken. A batch holding large-value entries waits until
//   nothing is in flight and goes through Writer::Apply. The heartbeat stays
//   at the oldest batch still waiting for its fdatasync.
// A restarted writer first answers the entries its dead predecessor had taken
// but not released (WriteQueue::PeekOrphans) with kOutcomeUnknown (503): they
// may or may not be on disk, so they are never applied a second time.
// Large values: LargeBegin/Part/End/Abort map to Writer::BeginLarge /
// AppendLarge / FinishLarge / AbortLarge; an upload whose slot has a new
// generation (its worker died) is aborted.
//
// Stop (ControlBlock::writer_stop, set by this process's signal handlers or,
// in single-process mode, by the caller, followed by WriteQueue::Wake):
//   kDrain (QUIT)  apply everything queued, sync, exit 0;
//   kFast (TERM)   finish the batches in flight, sync, exit 0.
// After an fdatasync failure the engine turns read-only: the writer answers
// every batch in flight "outcome unknown", then exits with status 3 so that the master
// respawns it and recovery reopens the database (the only safe retry).
#pragma once

#include <functional>
#include <span>

#include "engine/env.h"
#include "src/conf/config.h"
#include "src/ipc/shm.h"

namespace kingx::engine {
class Writer;
struct WriteOp;
}

namespace kingx {

// Hooks for work that shares the writer process (compaction runs in a
// background thread of this process, src/writer/writer_compaction.h). All run on the writer's loop thread.
struct WriterHooks {
  // After recovery, before the first batch: start background work.
  std::function<void(engine::Writer&, const Config&)> after_open;
  // Once per loop iteration (at least every second), and at once when a
  // worker bumped ControlBlock::compact_requests (then `requested` is true).
  std::function<void(engine::Writer&, bool requested)> each_iteration;
  // Before the next batch is taken from the queue (entries are waiting):
  // true holds the batch for this iteration (writes wait for compaction);
  // the hook itself waits at most a few milliseconds, so the loop keeps
  // beating, serving cuts and stop requests. A hook that is going to wait
  // calls `before_wait` first (at most once per call): the loop answers
  // there every batch whose fdatasync returned, so a hold delays only the
  // writes it holds, never the answers of durable ones. A hook that holds
  // must stop holding on its own within a bounded time.
  std::function<bool(engine::Writer&, const std::function<void()>& before_wait)> hold_batch;
  // The same once the batch is taken (puts and deletes only), with its ops
  // and their stored bytes; returns how many of its first ops go now. All
  // of them: the batch goes. 0: this very batch is held (taken again, as it
  // is, at the next iteration that hold_batch lets through). In between: a
  // split. Only those ops go (with a batch's large-value entries, the
  // entries up to the last of them), each answered once its own part is
  // durable; the rest stays taken, goes through both hooks again as a batch
  // of its own once that part is published, and is never applied before it
  // (ops on one key stay in order; each op's condition is decided, as
  // always, against every op before it). A writer that dies in between
  // (crash point split.before_rest, engine/kill_point.h) leaves the rest to
  // the next one, which answers it "outcome unknown" (never applied). For a
  // hook that needs to know what the batch overwrites
  // (engine::Writer::Forecast).
  std::function<size_t(engine::Writer&, std::span<const engine::WriteOp>, uint64_t stored_bytes)> hold_ops;
  // Before the Writer is closed: stop and join background work.
  std::function<void(engine::Writer&)> before_close;
};

// Largest batch taken from the queue at once.
inline constexpr size_t kMaxBatchOps = 4096;
inline constexpr uint64_t kMaxBatchBytes = 32ull << 20;

// Runs the writer loop in the calling thread until stopped. `install_signals`:
// true in the writer process (QUIT/TERM/INT/USR1 handlers that set
// writer_stop / reopen the error log), false in single-process mode (the
// caller blocks signals in this thread and sets writer_stop itself).
// Returns the exit status: 0 after a requested stop, 1 when the engine could
// not open (logged), 3 after the engine turned read-only (logged).
// `base_env` is the file seam under the engine (tests inject faults there);
// it must outlive the call.
int RunWriter(const Config& config, SharedMemory& shm, bool install_signals, const WriterHooks& hooks = {},
              engine::Env& base_env = engine::PosixEnv());

// How long the writer loop may wait for work before its next turn: at most
// wait_ms, and no later than sync_due_ms (engine::Writer::SyncIfDue's due
// time, UINT64_MAX for none), so that an interval sync runs at its deadline
// rather than a whole wait after the turn that wrote the data; 0 once due.
// now_ms and sync_due_ms on the same monotonic clock.
int WaitBeforeSyncDue(int wait_ms, uint64_t now_ms, uint64_t sync_due_ms);

}  // namespace kingx
