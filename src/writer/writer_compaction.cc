// Compaction hooks for the writer loop (see writer_compaction.h).
#include "src/writer/writer_compaction.h"

#include <chrono>
#include <memory>

#include "engine/compaction.h"
#include "engine/index.h"
#include "src/conf/log.h"

namespace kingx {
namespace {

// The compactor and its thread, created after recovery, destroyed before the
// Writer closes. Shared by the three hooks of one RunWriter call.
struct CompactionState {
  std::unique_ptr<engine::Compactor> compactor;
  std::unique_ptr<engine::CompactionThread> thread;
  double max_dead_fraction = 0;
  std::chrono::steady_clock::time_point last_trigger{};
};

// Under a sustained overwrite load the dead bytes of a small key set can grow
// several times past the live data between two timed passes (every
// kCompactionIntervalMs): start a pass as soon as the dead fraction passes the
// compactor's bound, at most every kTriggerGapMs (a pass already running
// simply runs again; after a fruitless pass the thread's back-off holds these
// triggers, engine::CompactionThread).
constexpr auto kTriggerGapMs = std::chrono::milliseconds(250);

bool DeadFractionOver(SharedMemory& shm, double bound) {
  const engine::IndexCounters& c = shm.index().counters();
  const double live = static_cast<double>(c.live_bytes.load(std::memory_order_relaxed));
  const double dead = static_cast<double>(c.dead_bytes.load(std::memory_order_relaxed));
  return bound > 0 && live + dead > 0 && dead / (live + dead) > bound;
}

void Publish(SharedMemory& shm, const engine::Compactor& compactor) {
  const engine::CompactionStats s = compactor.stats();
  WriterMetrics& w = shm.writer_metrics();
  w.compaction_passes.store(s.passes, std::memory_order_relaxed);
  w.compaction_segments.store(s.segments_compacted, std::memory_order_relaxed);
  w.compaction_bytes_freed.store(s.bytes_freed, std::memory_order_relaxed);
  w.compaction_failures.store(s.failures, std::memory_order_relaxed);
}

}  // namespace

WriterHooks CompactionHooks(SharedMemory& shm) {
  auto state = std::make_shared<CompactionState>();
  WriterHooks hooks;
  hooks.after_open = [state](engine::Writer& writer, const Config& config) {
    if (config.read_only) {
      KINGX_LOG_INFO("compaction is off: the server is read-only (--read-only)");
      return;
    }
    if (!config.compaction) {
      KINGX_LOG_WARN("compaction is off (--compaction off): dead records are never reclaimed");
      return;
    }
    engine::CompactionOptions options;
    options.log = [](const std::string& line) { KINGX_LOG_INFO("%s", line.c_str()); };
    state->max_dead_fraction = options.max_dead_fraction;
    state->compactor = std::make_unique<engine::Compactor>(writer, options);
    state->thread = std::make_unique<engine::CompactionThread>(*state->compactor, kCompactionIntervalMs);
    state->thread->Start();
  };
  hooks.each_iteration = [state, &shm](engine::Writer&, bool requested) {
    if (!state->compactor) return;
    if (requested) {
      KINGX_LOG_INFO("compaction requested by an admin request");
      state->thread->Trigger(/*force=*/true);  // an explicit request runs even during a back-off
    } else if (const auto now = std::chrono::steady_clock::now();
               now - state->last_trigger >= kTriggerGapMs && DeadFractionOver(shm, state->max_dead_fraction)) {
      state->last_trigger = now;
      state->thread->Trigger();
    }
    Publish(shm, *state->compactor);
  };
  hooks.before_close = [state, &shm](engine::Writer&) {
    if (!state->compactor) return;
    state->thread->Stop();
    Publish(shm, *state->compactor);
    state->thread.reset();
    state->compactor.reset();
  };
  return hooks;
}

}  // namespace kingx
