// Compaction hooks for the writer loop (see writer_compaction.h).
#include "src/writer/writer_compaction.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "engine/compaction.h"
#include "engine/index.h"
#include "src/conf/log.h"
#include "src/writer/write_stall.h"

namespace kingx {
namespace {

// The compactor and its thread, created after recovery, destroyed before the
// Writer closes. Shared by the three hooks of one RunWriter call.
struct CompactionState {
  std::unique_ptr<engine::Compactor> compactor;
  std::unique_ptr<engine::CompactionThread> thread;
  std::unique_ptr<WriteStall> stall;
  double max_dead_fraction = 0;
  std::chrono::steady_clock::time_point last_trigger{};
  uint64_t emptied_seen = 0;  // engine::Writer::emptied_segments at the last dead-only pass
  bool dead_only_due = false;  // a dead-only pass before the first batch (see after_open)
  // What Publish already added to the shared counters (this compactor's
  // stats start at zero; the shared ones outlive writer restarts).
  engine::CompactionStats published;
};

// Under a sustained overwrite load the dead bytes of a small key set can grow
// several times past the live data between two timed passes (every
// kCompactionIntervalMs): start a pass as soon as the dead fraction passes the
// compactor's bound, at most every kTriggerGapMs (a pass already running
// simply runs again; after a fruitless pass the thread's back-off holds these
// triggers, engine::CompactionThread).
constexpr auto kTriggerGapMs = std::chrono::milliseconds(250);

// How long a write stall waits out the key view's pin of every segment (its
// catch-up after an open takes tens of milliseconds; a rebuild of a large
// view takes longer, and writes then go on without the stall).
constexpr uint64_t kViewPinWaitMs = 1000;

bool DeadFractionOver(SharedMemory& shm, double bound) {
  const engine::IndexCounters& c = shm.index().counters();
  const double live = static_cast<double>(c.live_bytes.load(std::memory_order_relaxed));
  const double dead = static_cast<double>(c.dead_bytes.load(std::memory_order_relaxed));
  return bound > 0 && live + dead > 0 && dead / (live + dead) > bound;
}

// Adds what the compactor did since the previous call to the shared
// counters, and the tombstones it had to keep (for the backlog gauge).
void Publish(SharedMemory& shm, CompactionState& state) {
  const engine::CompactionStats s = state.compactor->stats();
  engine::CompactionStats& was = state.published;
  WriterMetrics& w = shm.writer_metrics();
  const auto add = [](std::atomic<uint64_t>& counter, uint64_t now, uint64_t& before) {
    if (now > before) counter.fetch_add(now - before, std::memory_order_relaxed);
    before = now;
  };
  add(w.compaction_passes, s.passes, was.passes);
  add(w.compaction_segments, s.segments_compacted, was.segments_compacted);
  add(w.compaction_segments_written, s.segments_written, was.segments_written);
  add(w.compaction_bytes_read, s.bytes_read, was.bytes_read);
  add(w.compaction_bytes_written, s.bytes_written, was.bytes_written);
  add(w.compaction_bytes_freed, s.bytes_freed, was.bytes_freed);
  add(w.compaction_failures, s.failures, was.failures);
  w.compaction_kept_tombstone_bytes.store(s.kept_tombstone_bytes, std::memory_order_relaxed);
}

}  // namespace

WriterHooks CompactionHooks(SharedMemory& shm) {
  auto state = std::make_shared<CompactionState>();
  WriterHooks hooks;
  hooks.after_open = [state, &shm](engine::Writer& writer, const Config& config) {
    if (config.read_only) {
      KINGX_LOG_INFO("compaction is off: the server is read-only (--read-only)");
      return;
    }
    if (!config.compaction) {
      KINGX_LOG_WARN("compaction is off (--compaction off): dead records are never reclaimed");
      return;
    }
    engine::CompactionOptions options;
    // Problems at warn (kingx_compaction_failures_total counts the failed
    // passes; one that reclaimed nothing backs the next off); routine
    // passes only at debug.
    options.log = [](const std::string& line) { KINGX_LOG_WARN("%s", line.c_str()); };
    options.log_debug = [](const std::string& line) { KINGX_LOG_DEBUG("%s", line.c_str()); };
    // Copies of segments holding more than a quarter of the live data wait
    // for the write stall's catch-up passes, and for room beside them.
    options.stall_floor_bytes = kWriteStallFloorBytes;
    options.staged_bytes = [&shm] { return shm.writer_metrics().staged_bytes.load(std::memory_order_relaxed); };
    state->max_dead_fraction = options.max_dead_fraction;
    state->compactor = std::make_unique<engine::Compactor>(writer, options);
    state->thread = std::make_unique<engine::CompactionThread>(*state->compactor, kCompactionIntervalMs);
    state->thread->Start();
    // Held writes must never wait long enough to be answered "outcome unknown".
    const uint64_t max_stall_ms = std::max<uint64_t>(config.storage_timeout_ms / 4, 1);
    state->emptied_seen = writer.emptied_segments();
    // A crash between a durable write and the deletion of the segment it
    // emptied leaves that segment, dead, to the next open: delete it before
    // the first batch too, not at the first compaction pass.
    state->dead_only_due = true;
    state->stall = std::make_unique<WriteStall>(shm, *state->compactor, *state->thread, max_stall_ms,
                                                std::min(kViewPinWaitMs, max_stall_ms));
  };
  hooks.hold_batch = [state](engine::Writer&, const std::function<void()>& before_wait) {
    return state->stall && state->stall->Hold(before_wait);
  };
  hooks.hold_ops = [state](engine::Writer& writer, std::span<const engine::WriteOp> ops, uint64_t stored_bytes) {
    if (!state->stall) return ops.size();
    return state->stall->HoldBatch(ops.size(), stored_bytes,
                                   [&](size_t first_ops) { return writer.Forecast(ops.first(first_ops)); });
  };
  hooks.each_iteration = [state, &shm](engine::Writer& writer, bool requested) {
    if (!state->compactor) return;
    // A write made a large segment (a large value's own, typically) hold
    // nothing live: delete it now, on this thread, before the next batch, so
    // that its space goes with the write that superseded it. Waiting for the
    // compaction thread (a trigger, or the write stall's catch-up pass) left
    // it beside the live data for a pass's time: one batch replacing a few
    // large values put the directory over twice the live data meanwhile.
    // While the compaction thread's pass runs (it picked its inputs before),
    // tried again at the next turn of the loop.
    if (const uint64_t emptied = writer.emptied_segments(); emptied != state->emptied_seen || state->dead_only_due) {
      engine::PassReport report;
      const engine::Status s = state->compactor->RunOnce(
          &report, engine::PassKind::kDeadOnly, state->dead_only_due ? "the open" : "a write emptied a segment");
      if (!s.Is(engine::Code::kBusy)) {
        state->emptied_seen = emptied;
        // After an open the key view's catch-up pins every segment for a
        // few milliseconds: tried again at each turn until it is over.
        state->dead_only_due = state->dead_only_due && report.view_pinned > 0;
      }
      if (!s.ok() && !s.Is(engine::Code::kBusy))
        KINGX_LOG_WARN("compaction: deleting emptied segments failed: %s", s.ToString().c_str());
    }
    if (requested) {
      KINGX_LOG_INFO("compaction requested by an admin request");
      state->thread->Trigger(/*force=*/true);  // an explicit request runs even during a back-off
    } else if (const auto now = std::chrono::steady_clock::now();
               now - state->last_trigger >= kTriggerGapMs && DeadFractionOver(shm, state->max_dead_fraction)) {
      state->last_trigger = now;
      state->thread->Trigger();
    }
    Publish(shm, *state);
  };
  hooks.before_close = [state, &shm](engine::Writer&) {
    if (!state->compactor) return;
    state->stall.reset();
    state->thread->Stop();
    Publish(shm, *state);
    state->thread.reset();
    state->compactor.reset();
  };
  return hooks;
}

}  // namespace kingx
