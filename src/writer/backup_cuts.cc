// BackupCuts (see backup_cuts.h).
#include "src/writer/backup_cuts.h"

#include <algorithm>
#include <chrono>

#include "src/conf/log.h"
#include "src/ipc/token.h"

namespace kingx {

namespace {

BackupState Load(const BackupSlot& b) { return static_cast<BackupState>(b.state.load(std::memory_order_acquire)); }

}  // namespace

BackupCuts::BackupCuts(SharedMemory& shm, engine::Writer& writer, uint64_t max_pin_ms)
    : shm_(shm), writer_(writer), max_pin_ms_(max_pin_ms) {}

BackupCuts::~BackupCuts() {
  for (uint32_t i = 0; i < kMaxBackups; ++i) Unpin(i);  // a next writer pins again (Repin)
}

uint32_t BackupCuts::pins() const {
  uint32_t n = 0;
  for (bool p : pinned_) n += p ? 1 : 0;
  return n;
}

void BackupCuts::Pin(uint32_t i, std::vector<uint32_t> ids) {
  pinned_ids_[i] = std::move(ids);
  pinned_[i] = true;
}

void BackupCuts::Unpin(uint32_t i) {
  if (!pinned_[i]) return;
  writer_.UnpinSegmentIds(pinned_ids_[i]);
  pinned_ids_[i].clear();
  pinned_[i] = false;
}

void BackupCuts::Repin() {
  for (uint32_t i = 0; i < kMaxBackups; ++i) {
    const BackupSlot& b = shm_.backups().slots[i];
    if (Load(b) != BackupState::kCut || pinned_[i]) continue;
    std::vector<uint32_t> ids;
    const uint32_t n = std::min(b.file_count.load(std::memory_order_relaxed), kMaxBackupFiles);
    for (uint32_t k = 0; k < n; ++k) ids.push_back(b.files[k].id.load(std::memory_order_relaxed));
    writer_.PinSegmentIds(ids);
    Pin(i, std::move(ids));
  }
}

bool BackupCuts::RequesterAlive(const BackupSlot& b) const {
  const uint32_t slot = b.slot.load(std::memory_order_relaxed);
  if (slot >= shm_.slot_count()) return false;
  const SlotInfo& info = shm_.slot(slot);
  return (info.generation.load() & 0xFFFFFFu) == TokenGeneration(b.token.load(std::memory_order_relaxed)) &&
         info.state.load() != static_cast<uint32_t>(SlotState::kFree);
}

void BackupCuts::Serve(uint64_t now_ms, const PostFn& post) {
  for (uint32_t i = 0; i < kMaxBackups; ++i) {
    BackupSlot& b = shm_.backups().slots[i];
    const BackupState st = Load(b);
    if (st == BackupState::kFree || st == BackupState::kClaimed) continue;
    if (st == BackupState::kReleased || !RequesterAlive(b)) {
      Unpin(i);
      b.state.store(static_cast<uint32_t>(BackupState::kFree), std::memory_order_release);
      continue;
    }
    if (st == BackupState::kRequested) {
      Cut(i, b, now_ms, post);
      continue;
    }
    if (st == BackupState::kCut && max_pin_ms_ != 0 && now_ms >= b.cut_ms.load() + max_pin_ms_) {
      uint32_t expected = static_cast<uint32_t>(BackupState::kCut);
      if (!b.state.compare_exchange_strong(expected, static_cast<uint32_t>(BackupState::kExpired))) continue;
      Unpin(i);  // after the state: a worker's read that follows the unpin sees kExpired when it checks
      shm_.backups().cut_off.fetch_add(1);
      KINGX_LOG_ERROR("writer: a backup held its cut longer than --backup-max-ms (%llu ms): its pin is dropped "
                      "and the stream is cut off (the client gets a short archive)",
                      static_cast<unsigned long long>(max_pin_ms_));
    }
  }
}

void BackupCuts::Cut(uint32_t i, BackupSlot& b, uint64_t now_ms, const PostFn& post) {
  const auto t0 = std::chrono::steady_clock::now();
  auto cut = writer_.PinSegments();
  engine::Status failure;
  if (!cut.ok()) {
    failure = cut.status();
  } else {
    Pin(i, cut->ids());
    if (cut->segments.size() > kMaxBackupFiles) {
      Unpin(i);
      failure = engine::Status::Busy("the database has more segment files than one backup can list (" +
                                     std::to_string(kMaxBackupFiles) + ")");
    } else {
      uint32_t n = 0;
      for (const engine::SegmentFileCut& f : cut->segments) {
        BackupFile& out = b.files[n++];
        out.id.store(f.id, std::memory_order_relaxed);
        out.flags.store((f.active ? kBackupFileActive : 0) | (f.missing ? kBackupFileMissing : 0),
                        std::memory_order_relaxed);
        out.bytes.store(f.bytes, std::memory_order_relaxed);
        out.birth.store(f.birth, std::memory_order_relaxed);
      }
      b.file_count.store(n, std::memory_order_relaxed);
      b.seed.store(cut->seed, std::memory_order_relaxed);
      b.next_seq.store(cut->next_seq, std::memory_order_relaxed);
      b.seq_high_water.store(cut->seq_high_water, std::memory_order_relaxed);
      b.cut_ms.store(now_ms, std::memory_order_relaxed);
    }
  }
  const uint64_t us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());
  std::atomic<uint64_t>& max_us = shm_.backups().max_cut_us;
  for (uint64_t seen = max_us.load(); us > seen && !max_us.compare_exchange_weak(seen, us);) {
  }
  b.error_code.store(static_cast<uint32_t>(failure.code()), std::memory_order_relaxed);
  uint32_t expected = static_cast<uint32_t>(BackupState::kRequested);
  const auto next = failure.ok() ? BackupState::kCut : BackupState::kFailed;
  if (!b.state.compare_exchange_strong(expected, static_cast<uint32_t>(next), std::memory_order_acq_rel)) {
    Unpin(i);  // released while we cut (the requester gave up): the next round frees it
    return;
  }
  if (failure.ok()) {
    KINGX_LOG_INFO("writer: backup cut at seq %llu: %zu segment file(s) pinned; the writer loop paused %llu us",
                   static_cast<unsigned long long>(cut->next_seq), cut->segments.size(),
                   static_cast<unsigned long long>(us));
  } else {
    KINGX_LOG_ERROR("writer: backup cut failed: %s", failure.ToString().c_str());
  }
  Completion c;
  c.token = b.token.load(std::memory_order_relaxed);
  c.code = failure.code();
  c.reason = CompletionReason::kBackupCut;
  post(b.slot.load(std::memory_order_relaxed), c);
}

}  // namespace kingx
