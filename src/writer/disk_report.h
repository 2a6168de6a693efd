// DiskReport: what the writer process tells the rest of the server about the
// data directory's disk (engine/disk_space.h).
//
//  - Publishes the engine's DiskState in the shared WriterMetrics once per loop
//    iteration: workers answer /readyz 503 with the reason while disk_full is
//    set, and /metrics exports kingx_disk_* gauges.
//  - Logs refused writes (and a disk found below the reserve) at error
//    level, at most one line per kLogIntervalMs; each line counts the writes
//    refused since the previous one, so every refusal is accounted for
//    without flooding the log. The first one after a quiet second is logged
//    at once.
//  - Logs once (warn) when puts are admitted again, with how many were
//    refused while the disk was full.
//  - Measures free space again while the disk is full (every
//    kFullRefreshMs), so that the state clears when compaction or an
//    operator frees space even if no client writes.
//
// Writer process, writer loop thread only. stats must outlive the object.
#pragma once

#include <cstdint>
#include <string>

#include "engine/writer.h"
#include "src/ipc/shm.h"

namespace kingx {

class DiskReport {
 public:
  static constexpr uint64_t kLogIntervalMs = 1000;
  static constexpr uint64_t kFullRefreshMs = 50;
  static constexpr uint64_t kIdleRefreshMs = 1000;

  DiskReport(WriterMetrics& stats, std::string data_dir) : stats_(stats), data_dir_(std::move(data_dir)) {}

  // Once per writer loop iteration; now_ms from a monotonic clock.
  void Tick(engine::Writer& writer, uint64_t now_ms);

 private:
  WriterMetrics& stats_;
  const std::string data_dir_;
  bool started_ = false;
  bool reported_full_ = false;  // an error line was logged and no "room again" line since
  uint64_t last_refresh_ms_ = 0;
  uint64_t last_log_ms_ = 0;
  uint64_t published_refused_ = 0;  // engine count already added to the shared counter
  uint64_t logged_refused_ = 0;     // engine count already reported in a log line
  uint64_t refused_while_full_ = 0;
};

}  // namespace kingx
