// ShmKvBackend and the /metrics aggregation over the shared mapping.
#include "src/kv/kv_backend.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "engine/reader.h"
#include "src/kv/read_hold_env.h"

namespace kingx {

namespace {

std::unique_ptr<engine::Env> BackupEnv() {
  const char* hold = std::getenv(ReadHoldEnv::kVariable);
  if (hold == nullptr || *hold == '\0') return nullptr;
  return std::make_unique<ReadHoldEnv>(engine::PosixEnv(), hold);
}

}  // namespace

ShmKvBackend::ShmKvBackend(WorkerContext& ctx)
    : ctx_(ctx), backup_env_(BackupEnv()),
      backups_(ctx.shm->backups(), backup_env_ ? *backup_env_ : engine::PosixEnv(), [q = ctx.queue] { q->Wake(); },
               ctx.config.data_dir, ctx.slot, ctx.generation),
      staging_(*ctx.shm, ctx.slot, ctx.generation),
      spill_room_(*ctx.shm, ctx.slot, ctx.generation) {
  staging_.Claim();
}

engine::Result<engine::Value> ShmKvBackend::Get(std::string_view key, engine::ReadMode mode) {
  return ctx_.reader->Get(key, mode);
}

engine::Result<engine::Value> ShmKvBackend::Get(std::string_view key, engine::ReadMode mode,
                                                const engine::KeyProbe& hint) {
  return ctx_.reader->Get(key, mode, hint);
}

engine::Result<engine::Value> ShmKvBackend::Get(std::string_view key, engine::ReadMode mode,
                                                const engine::KeyProbe* hint, engine::RecordCopy* copy) {
  return ctx_.reader->Get(key, mode, hint, copy);
}

void ShmKvBackend::ReportReadFault(const engine::Value& v) { ctx_.reader->ReportReadFault(v); }

void ShmKvBackend::PrefetchIndex(std::string_view key, engine::KeyProbe* hint) {
  ctx_.reader->PrefetchIndex(key, hint);
}

void ShmKvBackend::PrefetchRecord(std::string_view key, engine::KeyProbe* hint) {
  ctx_.reader->PrefetchRecord(key, hint);
}

engine::Status ShmKvBackend::Enqueue(uint64_t token, const WriteRequest& request) {
  return ctx_.queue->TryEnqueue(ctx_.slot, token, request);
}

engine::Status ShmKvBackend::EnqueueLargeBegin(uint64_t token, const WriteRequest& header) {
  return ctx_.queue->TryEnqueueLargeBegin(ctx_.slot, token, header);
}

engine::Status ShmKvBackend::EnqueueLargePart(uint64_t token, std::string_view stored_part) {
  return ctx_.queue->TryEnqueueLargePart(ctx_.slot, token, stored_part);
}

engine::Status ShmKvBackend::EnqueueLargeEnd(uint64_t token, uint64_t raw_len) {
  return ctx_.queue->TryEnqueueLargeEnd(ctx_.slot, token, raw_len);
}

engine::Status ShmKvBackend::EnqueueLargeAbort(uint64_t token) {
  return ctx_.queue->TryEnqueueLargeAbort(ctx_.slot, token);
}

size_t ShmKvBackend::MaxEntryBytes() const { return ctx_.queue->max_entry_bytes(); }

bool ShmKvBackend::DiskRoomFor(uint64_t bytes) const {
  const WriterMetrics& ws = ctx_.shm->writer_metrics();
  if (ws.disk_full.load(std::memory_order_relaxed) == 0) return true;
  const uint64_t free_bytes = ws.disk_free_bytes.load(std::memory_order_relaxed);
  const uint64_t reserve_bytes = ws.disk_reserve_bytes.load(std::memory_order_relaxed);
  return free_bytes > reserve_bytes && free_bytes - reserve_bytes >= bytes;
}

engine::Status ShmKvBackend::TakeSpillRoom(uint64_t n, engine::Env& env, const std::string& dir) {
  const uint64_t reserve = ctx_.shm->writer_metrics().disk_reserve_bytes.load(std::memory_order_relaxed);
  return spill_room_.TryTake(n, env, dir, reserve);
}

void ShmKvBackend::GiveSpillRoom(uint64_t n) { spill_room_.Give(n); }

uint64_t ShmKvBackend::WriterNoProgressMs(uint64_t now_ms) const {
  return WriterStalledMs(*ctx_.shm, ctx_.config.storage_timeout_ms, now_ms);
}

bool ShmKvBackend::Ready() const { return NotReadyReason().empty(); }

std::string ShmKvBackend::NotReadyReason() const {
  if (ctx_.ServerDraining()) return "the server is stopping";
  const WriterMetrics& ws = ctx_.shm->writer_metrics();
  // The flag stays set from the failed fdatasync until a new writer has
  // reopened the database: the whole recovery it causes is named after it.
  const bool failed_sync = ws.read_only.load(std::memory_order_relaxed) != 0;
  if (!ctx_.StorageReady() || failed_sync) {
    const std::string failed = ctx_.StorageReady() ? std::string() : ws.open_failure.Read();
    std::string why = "storage is not ready: ";
    if (failed_sync) why += "writes stopped after a failed fdatasync, and the writer restarts to recover the database; ";
    if (failed.empty()) return why + (failed_sync ? "reads are served from the index as it was" :
                                                    "the writer is recovering the database");
    return why + "the writer's latest open of the database failed, and the writer is restarted to try again (reads "
                 "are served from the index as it was): " + failed;
  }
  if (const uint64_t stalled_ms = WriterStalledMs(*ctx_.shm, ctx_.config.storage_timeout_ms, MonotonicMs());
      stalled_ms != 0) {
    return "the writer has made no progress for " + std::to_string(stalled_ms) +
           " ms (--storage-timeout-ms " + std::to_string(ctx_.config.storage_timeout_ms) +
           "): new writes are refused at once (503, not applied) and queued ones are answered 503 outcome unknown "
           "after that long; reads are served, and writes resume by themselves once the writer progresses";
  }
  if (ws.disk_full.load(std::memory_order_relaxed) != 0) {
    return "the disk holding the data directory is full: writes are refused (" +
           std::to_string(ws.disk_free_bytes.load(std::memory_order_relaxed)) + " bytes free, " +
           std::to_string(ws.disk_reserve_bytes.load(std::memory_order_relaxed)) +
           " kept in reserve for compaction and deletes); reads are served, and writes resume by themselves "
           "once deleted data is compacted away or space is freed";
  }
  return std::string();
}

std::string ShmKvBackend::RenderMetrics() {
  const http::Counters sum = SumSlotCounters(*ctx_.shm);
  return http::RenderMetrics(sum, SharedGauges(*ctx_.shm), SharedHistograms(*ctx_.shm));
}

engine::Status ShmKvBackend::RequestCompaction() {
  if (ctx_.shm->control().writer_ready.load(std::memory_order_acquire) == 0) {
    return engine::Status::Busy("the writer is not running");
  }
  ctx_.shm->control().compact_requests.fetch_add(1, std::memory_order_release);
  ctx_.queue->Wake();  // the writer looks at the request on its next iteration
  return engine::Status::OK();
}

engine::KeyLister* ShmKvBackend::Lister() { return ctx_.lister; }

uint64_t WriterStalledMs(SharedMemory& shm, uint64_t storage_timeout_ms, uint64_t now_ms) {
  if (shm.control().writer_ready.load(std::memory_order_acquire) == 0) return 0;
  const uint64_t beat = shm.writer_metrics().heartbeat_ms.load(std::memory_order_relaxed);
  if (beat == 0 || now_ms <= beat || now_ms - beat <= storage_timeout_ms) return 0;
  return now_ms - beat;
}

http::Counters SumSlotCounters(const SharedMemory& shm) {
  http::Counters sum{};
  for (uint32_t i = 0; i < shm.slot_count(); ++i) {
    shm.ForEachCounterStripe(i, [&](uint32_t s) { http::Accumulate(sum, *shm.counters<http::Counters>(i, s)); });
  }
  return sum;
}

namespace {

// A histogram of WriterMetrics microsecond buckets (kFsyncBucketUs).
http::Histogram MicrosHistogram(const char* name, const char* help, const std::atomic<uint64_t>* buckets,
                                uint64_t sum_us) {
  http::Histogram h;
  h.name = name;
  h.help = help;
  for (int i = 0; i + 1 < kFsyncBuckets; ++i) h.le.push_back(http::MicrosAsSeconds(kFsyncBucketUs[i]));
  for (int i = 0; i < kFsyncBuckets; ++i) h.counts.push_back(buckets[i].load(std::memory_order_relaxed));
  h.sum = http::MicrosAsSeconds(sum_us);
  return h;
}

}  // namespace

std::vector<http::Histogram> SharedHistograms(SharedMemory& shm) {
  const auto relaxed = std::memory_order_relaxed;
  const WriterMetrics& ws = shm.writer_metrics();
  std::vector<http::Histogram> out;
  http::Histogram batch;
  batch.name = "kingx_writer_batch_size";
  batch.help = "Writes per group commit";
  for (int i = 0; i + 1 < kBatchSizeBuckets; ++i) batch.le.push_back(std::to_string(uint64_t{1} << i));
  for (int i = 0; i < kBatchSizeBuckets; ++i) batch.counts.push_back(ws.batch_size_buckets[i].load(relaxed));
  batch.sum = std::to_string(ws.batch_size_sum.load(relaxed));
  out.push_back(std::move(batch));
  out.push_back(MicrosHistogram("kingx_writer_apply_seconds", "One group commit: append, fdatasync and publish",
                                ws.apply_us_buckets, ws.apply_us_sum.load(relaxed)));
  out.push_back(MicrosHistogram("kingx_writer_fsync_seconds", "One fdatasync or directory fsync of the writer",
                                ws.fsync_us_buckets, ws.fsync_us_sum.load(relaxed)));
  return out;
}

std::vector<http::Gauge> SharedGauges(SharedMemory& shm) {
  std::vector<http::Gauge> g;
  auto add = [&g](const char* name, const char* help, double value, bool counter, std::string labels = {}) {
    g.push_back(http::Gauge{name, help, std::move(labels), value, counter});
  };
  const auto relaxed = std::memory_order_relaxed;
  const engine::IndexCounters& ic = shm.index().counters();
  add("kingx_engine_keys", "Live keys in the index", double(ic.keys.load(relaxed)), false);
  add("kingx_engine_live_bytes", "Bytes of live records", double(ic.live_bytes.load(relaxed)), false);
  // Read once: the backlog below is reported from the same value.
  const uint64_t dead = ic.dead_bytes.load(relaxed);
  add("kingx_engine_dead_bytes", "Bytes of overwritten or deleted records", double(dead), false);
  add("kingx_engine_segments", "Segment files", double(ic.segments.load(relaxed)), false);
  add("kingx_engine_corruptions_total",
      "Damage found on disk: records, ranges, headers, hints, the MANIFEST, missing segment files",
      double(ic.corruptions.load(relaxed)),
      true);
  add("kingx_engine_read_failures_total",
      "Record reads that failed in the file layer (I/O error, out of descriptors or mappings): the GET "
      "answered 500 or 503",
      double(ic.read_failures.load(relaxed)), true);
  add("kingx_engine_ready", "1 once recovery finished", double(ic.ready.load(relaxed)), false);
  add("kingx_index_growths_total", "Index table growths (each a rehash of every entry)",
      double(ic.growths.load(relaxed)), true);

  const engine::KeyspaceRegion& ks = shm.keyspace();
  const engine::KeyspaceCounters& kc = ks.counters();
  add("kingx_keyspace_ready", "1 while the sorted key view (listing) is complete",
      ks.state() == engine::KeyspaceState::kReady ? 1.0 : 0.0, false);
  add("kingx_keyspace_run_entries", "Entries in the published key runs", double(kc.run_entries.load(relaxed)), false);
  add("kingx_keyspace_runs_written_total", "Key runs written (tail flushes, merges, rebuilds)",
      double(kc.runs_written.load(relaxed)), true);
  add("kingx_keyspace_run_bytes_written_total", "Bytes of the key runs written",
      double(kc.run_bytes_written.load(relaxed)), true);
  add("kingx_keyspace_merges_total", "Key run merges", double(kc.merges.load(relaxed)), true);
  add("kingx_keyspace_entries_repaired_total", "Stale key entries repointed at the key's current record",
      double(kc.entries_repaired.load(relaxed)), true);
  add("kingx_keyspace_overwrites_unrecorded_total", "Puts of live keys the sorted key view needed no entry for",
      double(kc.overwrites_unrecorded.load(relaxed)), true);
  add("kingx_keyspace_rebuilds_total", "Sorted key views rebuilt from the segments", double(kc.rebuilds.load(relaxed)),
      true);
  add("kingx_keyspace_lost_total", "Times the sorted key view fell behind the writer", double(kc.lost.load(relaxed)),
      true);
  add("kingx_keyspace_catch_ups_total", "Sorted key views brought up to date from the recent segments",
      double(kc.catch_ups.load(relaxed)), true);
  add("kingx_keyspace_writer_waits_total", "Write batches held back until the sorted key view flushed a tail",
      double(kc.writer_waits.load(relaxed)), true);

  WriteQueue& q = shm.queue();
  add("kingx_write_queue_entries", "Entries waiting in the shared write queue", double(q.DepthEntries()), false);
  add("kingx_write_queue_bytes", "Ring bytes used by queued entries", double(q.DepthBytes()), false);
  add("kingx_write_queue_capacity_bytes", "Ring bytes of the shared write queue", double(q.ring_bytes()), false);
  const WriteQueue::WakeCounts wc = q.WakeStats();
  add("kingx_write_queue_writer_wakes_total", "Times a worker's enqueues woke the sleeping writer",
      double(wc.wakes), true);
  add("kingx_write_queue_wake_enqueues_total",
      "Enqueues those wake-ups carried (a deferred wake-up carries its thread's enqueues since its last flush)",
      double(wc.enqueues), true);
  add("kingx_write_queue_wake_enqueues_max", "The most enqueues one wake-up of the writer carried",
      double(wc.max_enqueues), false);

  const WriterMetrics& ws = shm.writer_metrics();
  add("kingx_writer_batches_total", "Group commits applied", double(ws.batches.load(relaxed)), true);
  add("kingx_writer_records_total", "Writes applied", double(ws.records.load(relaxed)), true);
  add("kingx_writer_bytes_total", "Stored bytes applied", double(ws.bytes.load(relaxed)), true);
  add("kingx_writer_failed_records_total", "Writes answered with an error", double(ws.failed_records.load(relaxed)),
      true);
  add("kingx_writer_large_aborted_total", "Large uploads abandoned", double(ws.large_aborted.load(relaxed)), true);
  add("kingx_writer_staged_bytes", "Disk held by large uploads in progress", double(ws.staged_bytes.load(relaxed)),
      false);
  add("kingx_writer_unpublished_bytes", "Bytes written by batches not yet published (in no live or dead gauge)",
      double(ws.unpublished_bytes.load(relaxed)), false);
  add("kingx_writer_commit_delays_total", "Group commits delayed for more writes to join (--commit-delay-us)",
      double(ws.commit_delays.load(relaxed)), true);
  add("kingx_writer_commit_delay_seconds_total", "Time group commits were delayed for (--commit-delay-us)",
      double(ws.commit_delay_us_sum.load(relaxed)) / 1e6, true);
  add("kingx_writer_staging_refusals_total", "Large uploads refused: they would pass --staging-bytes",
      double(ws.staging_refusals.load(relaxed)), true);
  const StagingShared& staging = shm.control().staging;
  add("kingx_staging_reserved_bytes", "Bytes large uploads in progress reserved to stage (within the share)",
      double(staging.reserved_bytes.load(relaxed)), false);
  add("kingx_staging_share_bytes", "Staged bytes admitted without waiting: the live bytes / 8 (one upload alone "
      "always is)", double(ic.live_bytes.load(relaxed) / StagingBudget::kShareDivisor), false);
  add("kingx_staging_held_uploads", "Large uploads waiting (body unread) for staged bytes to fall under the share",
      double(StagingBudget::HeldUploads(shm)), false);
  add("kingx_staging_holds_total", "Large uploads that had to wait for room in the staging share",
      double(staging.holds.load(relaxed)), true);
  add("kingx_writer_read_only", "1 after a failed fdatasync", double(ws.read_only.load(relaxed)), false);
  add("kingx_writer_open_failing", "1 while the writer's latest open of the database failed (/readyz says why)",
      ws.open_failure.failing() ? 1.0 : 0.0, false);
  add("kingx_writer_open_failures_total", "Opens of the database by the writer that failed",
      double(ws.open_failure.failures()), true);
  add("kingx_disk_full", "1 while writes are refused because the data directory's disk is full",
      double(ws.disk_full.load(relaxed)), false);
  add("kingx_disk_free_bytes", "Free bytes in the data directory's file system", double(ws.disk_free_bytes.load(relaxed)),
      false);
  add("kingx_disk_size_bytes", "Size of the data directory's file system", double(ws.disk_total_bytes.load(relaxed)),
      false);
  add("kingx_disk_reserve_bytes", "Free bytes that writes may not use (kept for compaction and deletes)",
      double(ws.disk_reserve_bytes.load(relaxed)), false);
  add("kingx_writes_refused_no_space_total", "Writes refused because the disk was full",
      double(ws.writes_refused_no_space.load(relaxed)), true);
  add("kingx_compaction_passes_total", "Compaction passes that picked segments",
      double(ws.compaction_passes.load(relaxed)), true);
  add("kingx_compaction_failures_total", "Compaction passes that ended with an error (no room, I/O, damage)",
      double(ws.compaction_failures.load(relaxed)), true);
  add("kingx_compaction_segments_deleted_total", "Segment files compaction deleted",
      double(ws.compaction_segments.load(relaxed)), true);
  add("kingx_compaction_segments_written_total", "Segment files compaction wrote",
      double(ws.compaction_segments_written.load(relaxed)), true);
  add("kingx_compaction_read_bytes_total", "Bytes compaction read (dead values are skipped unread)",
      double(ws.compaction_bytes_read.load(relaxed)), true);
  add("kingx_compaction_written_bytes_total", "Bytes of the segment and hint files compaction wrote, whole files",
      double(ws.compaction_bytes_written.load(relaxed)), true);
  add("kingx_compaction_reclaimed_bytes_total", "Segment file bytes compaction deleted minus the segment file bytes it wrote (hints on neither side)",
      double(ws.compaction_bytes_freed.load(relaxed)), true);
  add("kingx_compaction_write_stalls_total", "Times writes waited for compaction to reclaim dead bytes",
      double(ws.compaction_stalls.load(relaxed)), true);
  add("kingx_compaction_write_stall_seconds_total", "Time writes waited for compaction, in all",
      double(ws.compaction_stall_us.load(relaxed)) / 1e6, true);
  add("kingx_compaction_backlog_bytes", "Dead bytes compaction can reclaim (tombstones that must stay excluded)",
      double(dead - std::min(dead, ws.compaction_kept_tombstone_bytes.load(relaxed))), false);
  {
    const uint64_t beat = ws.heartbeat_ms.load(relaxed), now = MonotonicMs();
    const bool ready = shm.control().writer_ready.load(relaxed) != 0;
    add("kingx_writer_heartbeat_age_seconds",
        "Seconds since the writer loop last turned (0 while no writer is ready; /readyz is 503 past "
        "--storage-timeout-ms)",
        ready && beat != 0 && now > beat ? double(now - beat) / 1e3 : 0.0, false);
  }
  {
    const BackupRegion& br = shm.backups();
    uint64_t pins = 0;
    uint64_t taken = 0;  // what the limit of kMaxBackups counts: a slot is free only once the writer freed it
    for (const BackupSlot& b : br.slots) {
      const uint32_t st = b.state.load(relaxed);
      pins += st == static_cast<uint32_t>(BackupState::kCut);
      taken += st != static_cast<uint32_t>(BackupState::kFree);
    }
    add("kingx_backups_started_total", "Online backups answered 200 (GET /admin/backup)",
        double(br.started.load(relaxed)), true);
    add("kingx_backups_finished_total", "Online backups whose whole archive was handed to the socket",
        double(br.finished.load(relaxed)), true);
    add("kingx_backups_failed_total",
        "Online backups that ended short or never started (client gone, cut failed or cut off, unreadable file)",
        double(br.failed.load(relaxed)), true);
    add("kingx_backup_bytes_sent_total", "Archive bytes of online backups handed to the socket",
        double(br.bytes_sent.load(relaxed)), true);
    add("kingx_backup_pins", "Online backups holding a cut (their segment files are kept from compaction)",
        double(pins), false);
    add("kingx_backup_slots_taken",
        "Backup slots not free (at most 4; a released one is free once the writer has given its pin back)",
        double(taken), false);
    add("kingx_backups_cut_off_total", "Online backups cut off because they held their cut past --backup-max-ms",
        double(br.cut_off.load(relaxed)), true);
    add("kingx_backup_cut_max_seconds", "Longest time one backup's cut kept the writer loop from its next batch",
        double(br.max_cut_us.load(relaxed)) / 1e6, false);
  }
  const ControlBlock& cb = shm.control();
  add("kingx_respawns_total", "Workers or writer respawned after dying", double(cb.respawns.load(relaxed)), true);
  add("kingx_draining", "1 while the server stops", double(cb.draining.load(relaxed)), false);
  return g;
}

}  // namespace kingx
