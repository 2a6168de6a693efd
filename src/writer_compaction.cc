// Compaction hooks for the writer loop (see writer_compaction.h).
#include "src/writer_compaction.h"

#include <memory>

#include "engine/compaction.h"
#include "src/log.h"

namespace kingx {
namespace {

// The compactor and its thread, created after recovery, destroyed before the
// Writer closes. Shared by the three hooks of one RunWriter call.
struct CompactionState {
  std::unique_ptr<engine::Compactor> compactor;
  std::unique_ptr<engine::CompactionThread> thread;
};

void Publish(SharedMemory& shm, const engine::Compactor& compactor) {
  const engine::CompactionStats s = compactor.stats();
  WriterStats& w = shm.writer_stats();
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
    if (!config.compaction) {
      KINGX_LOG_WARN("compaction is off (--compaction off): dead records are never reclaimed");
      return;
    }
    engine::CompactionOptions options;
    options.log = [](const std::string& line) { KINGX_LOG_INFO("%s", line.c_str()); };
    state->compactor = std::make_unique<engine::Compactor>(writer, options);
    state->thread = std::make_unique<engine::CompactionThread>(*state->compactor, kCompactionIntervalMs);
    state->thread->Start();
  };
  hooks.each_iteration = [state, &shm](engine::Writer&, bool requested) {
    if (!state->compactor) return;
    if (requested) {
      KINGX_LOG_INFO("compaction requested by an admin request");
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
