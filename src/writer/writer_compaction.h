// Compaction in the writer process: the WriterHooks that run
// engine::Compactor passes on an engine::CompactionThread beside the writer
// loop, trigger a pass when a worker bumped ControlBlock::compact_requests
// (POST /admin/compact), hold batches while compaction's backlog is over its
// bound (src/writer/write_stall.h), and publish the pass figures in
// WriterMetrics.
//
// The writer process calls CompactionHooks() once and passes the result to
// RunWriter; everything runs in that process (the loop thread and the one
// background thread the hooks start after recovery and join before close).
#pragma once

#include "src/conf/config.h"
#include "src/ipc/shm.h"
#include "src/writer/writer_process.h"

namespace kingx {

// Interval between automatic passes (a pass does nothing when no segment
// passes the threshold).
inline constexpr uint32_t kCompactionIntervalMs = 5000;

// Hooks that own a Compactor and its thread for one RunWriter call. `shm`
// must outlive the hooks.
WriterHooks CompactionHooks(SharedMemory& shm);

}  // namespace kingx
