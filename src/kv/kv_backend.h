// ShmKvBackend: the production KvBackend (src/kv/kv_service.h) of a worker
// process: reads through the WorkerContext's engine::Reader, writes through
// the shared WriteQueue on the worker's slot, readiness and /metrics from the
// shared mapping.
//
// Thread-safety: every method may be called from any thread of the worker
// (the thread model shares one instance among its pool threads): the Reader
// and the WriteQueue are thread-safe and the rest only reads shared atomics.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "http/counters.h"
#include "src/ipc/spill_room.h"
#include "src/ipc/staging_budget.h"
#include "src/kv/backup_stream.h"
#include "src/kv/kv_service.h"
#include "src/worker/worker_context.h"

namespace kingx {

class ShmKvBackend final : public KvBackend {
 public:
  // ctx must outlive the backend.
  explicit ShmKvBackend(WorkerContext& ctx);

  engine::Result<engine::Value> Get(std::string_view key, engine::ReadMode mode) override;
  engine::Result<engine::Value> Get(std::string_view key, engine::ReadMode mode,
                                    const engine::KeyProbe& hint) override;
  engine::Result<engine::Value> Get(std::string_view key, engine::ReadMode mode, const engine::KeyProbe* hint,
                                    engine::RecordCopy* copy) override;
  void PrefetchIndex(std::string_view key, engine::KeyProbe* hint) override;
  void PrefetchRecord(std::string_view key, engine::KeyProbe* hint) override;
  void ReportReadFault(const engine::Value& v) override;
  engine::Status Enqueue(uint64_t token, const WriteRequest& request) override;
  engine::Status EnqueueLargeBegin(uint64_t token, const WriteRequest& header) override;
  engine::Status EnqueueLargePart(uint64_t token, std::string_view stored_part) override;
  engine::Status EnqueueLargeEnd(uint64_t token, uint64_t raw_len) override;
  engine::Status EnqueueLargeAbort(uint64_t token) override;
  size_t MaxEntryBytes() const override;
  bool DiskRoomFor(uint64_t bytes) const override;
  // SpillRoom::TryTake with the writer's published reserve.
  engine::Status TakeSpillRoom(uint64_t n, engine::Env& env, const std::string& dir) override;
  void GiveSpillRoom(uint64_t n) override;
  // WriterStalledMs below, with the worker's --storage-timeout-ms.
  uint64_t WriterNoProgressMs(uint64_t now_ms) const override;
  // Writer ready, index ready, writer not read-only and not stalled, server
  // not draining.
  bool Ready() const override;
  std::string NotReadyReason() const override;
  std::string RenderMetrics() override;
  // Bumps ControlBlock::compact_requests and wakes the writer. kBusy while
  // no writer is ready (KvService answers 503).
  engine::Status RequestCompaction() override;
  engine::KeyLister* Lister() override;
  BackupClient* Backups() override { return &backups_; }
  StagingBudget* Staging() override { return &staging_; }

 private:
  WorkerContext& ctx_;
  // The Env of backups' reads: PosixEnv, or a ReadHoldEnv over it when the
  // environment names a hold file (src/kv/read_hold_env.h: tests).
  std::unique_ptr<engine::Env> backup_env_;
  BackupClient backups_;
  StagingBudget staging_;  // claimed for this worker's slot at construction
  SpillRoom spill_room_;   // this worker's slot's word
};

// The engine, queue and writer samples of /metrics (everything but the HTTP
// counters), read from the shared mapping. Any thread.
std::vector<http::Gauge> SharedGauges(SharedMemory& shm);
// The writer's histograms (writes per group commit, group commit time,
// fdatasync time), read from the shared mapping. Any thread.
std::vector<http::Histogram> SharedHistograms(SharedMemory& shm);

// How long the ready writer has made no progress (now_ms minus its
// heartbeat, CLOCK_MONOTONIC ms) when that is more than storage_timeout_ms;
// 0 otherwise (progressing, or no writer ready). Any thread.
uint64_t WriterStalledMs(SharedMemory& shm, uint64_t storage_timeout_ms, uint64_t now_ms);

// Sum of the http::Counters of every slot of the mapping (each slot's used
// stripes). Any thread.
http::Counters SumSlotCounters(const SharedMemory& shm);

}  // namespace kingx
