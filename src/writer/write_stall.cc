// Write stall (see write_stall.h).
#include "src/writer/write_stall.h"

#include <inttypes.h>

#include <algorithm>

#include "engine/index.h"
#include "src/conf/log.h"
#include "src/ipc/write_queue.h"

namespace kingx {
namespace {

// Longest wait of one Hold call: the loop turns (heartbeat, cuts, stop
// requests) at least this often while writes are held.
constexpr uint32_t kHoldSliceMs = 10;
constexpr auto kLogEvery = std::chrono::seconds(10);

}  // namespace

WriteStall::WriteStall(SharedMemory& shm, const engine::Compactor& compactor, engine::CompactionThread& thread,
                       uint64_t max_stall_ms, uint64_t view_pin_wait_ms)
    : shm_(shm),
      compactor_(compactor),
      thread_(thread),
      max_stall_(std::max<uint64_t>(max_stall_ms, 1)),
      view_pin_wait_(view_pin_wait_ms) {}

WriteStall::Backlog WriteStall::Measure() const {
  const auto relaxed = std::memory_order_relaxed;
  const engine::IndexCounters& c = shm_.index().counters();
  const uint64_t dead = c.dead_bytes.load(relaxed);
  const uint64_t kept = compactor_.stats().kept_tombstone_bytes;
  Backlog b;
  b.live = c.live_bytes.load(relaxed);
  b.reclaimable = dead > kept ? dead - kept : 0;
  b.kept = kept;
  b.staged = shm_.writer_metrics().staged_bytes.load(relaxed);
  b.backlog = b.reclaimable + b.staged;
  b.queued = shm_.queue().DepthBytes();
  b.bounds = engine::WriteStallBoundsFor(b.live, kWriteStallFloorBytes);
  return b;
}

bool WriteStall::CompactionCanHelp() const {
  // A full disk refuses puts anyway (507); a backing-off compactor got
  // nowhere on its last passes.
  return shm_.writer_metrics().disk_full.load(std::memory_order_relaxed) == 0 && thread_.fruitless() == 0;
}

bool WriteStall::Hold(const std::function<void()>& before_wait) {
  const auto now = Clock::now();
  if (!holding_) {
    pass_next_ = true;
    if (let_one_through_) {
      let_one_through_ = false;
      return false;
    }
    if (disarmed_) {
      if (thread_.progress_passes() == disarmed_progress_) return false;
      disarmed_ = false;
    }
    pass_next_ = false;
    // The batch about to be taken turns up to its bytes into dead or staged
    // bytes: hold it when that would pass the bound and compaction has
    // something to reclaim.
    const Backlog b = Measure();
    if (b.backlog + b.queued <= b.bounds.begin_bytes || b.reclaimable <= b.bounds.end_bytes ||
        !CompactionCanHelp())
      return false;
    Begin(now, b, b.bounds.end_bytes);
  } else {
    const Backlog b = Measure();
    if (b.reclaimable <= target_) {
      End(now, "released");
      pass_next_ = false;  // the batch is measured again (HoldBatch): room was made for it
      return false;
    }
    if (!CompactionCanHelp()) {
      End(now, "compaction cannot help");
      return false;
    }
    const uint64_t passes = thread_.catch_up_passes(), progress = thread_.catch_up_progress_passes();
    const uint64_t view_pinned = thread_.catch_up_view_pinned_passes();
    if (retry_catch_up_) {
      // One hold slice after a pass the key view's pin kept from progress.
      retry_catch_up_ = false;
      thread_.TriggerCatchUp(target_);
    } else if (passes != seen_catch_up_) {
      const bool helped = progress != seen_catch_up_progress_;
      const bool pin_held_it = view_pinned != seen_catch_up_view_pinned_;
      seen_catch_up_ = passes;
      seen_catch_up_progress_ = progress;
      seen_catch_up_view_pinned_ = view_pinned;
      if (!helped && pin_held_it && now - since_ < view_pin_wait_) {
        // The pin ends within milliseconds (the key view's catch-up after an
        // open); ended now, the stall would let writes run unheld until a
        // later pass makes progress. Retried after a slice, not at once, so
        // that passes do not spin while the pin lasts.
        retry_catch_up_ = true;
      } else if (!helped) {
        // Compaction can do no more now: waiting longer would only delay
        // writes. Above the end bound no stall begins again until a pass
        // makes progress; under it (a stall for one batch's forecast, whose
        // room compaction could not make) only this batch goes.
        if (b.reclaimable > b.bounds.end_bytes) {
          disarmed_ = true;
          disarmed_progress_ = thread_.progress_passes();
        }
        End(now, "compaction made no progress");
        return false;
      } else {
        thread_.TriggerCatchUp(target_);  // still over the bound: another pass
      }
    }
    if (now - since_ >= max_stall_) {
      let_one_through_ = true;
      End(now, "time bound");
      if (now - last_warn_ >= kLogEvery) {
        last_warn_ = now;
        KINGX_LOG_WARN("writes waited %" PRIu64 " ms for compaction (a quarter of --storage-timeout-ms) and go on: "
                       "%" PRIu64 " reclaimable dead bytes, bound %" PRIu64 " for %" PRIu64 " live bytes",
                       static_cast<uint64_t>(max_stall_.count()), b.reclaimable, b.bounds.end_bytes, b.live);
      }
      return false;
    }
  }
  if (before_wait) before_wait();
  thread_.WaitForPass(thread_.passes(), kHoldSliceMs);
  return true;
}

bool WriteStall::WantsForecast() const {
  // However little compaction has left to reclaim: a batch may kill any
  // share of the live data, which no probe-free measure bounds (the queue's
  // bytes are the batch's own, not what its keys hold). With nothing to
  // reclaim no room can be made, and the batch goes whatever it kills.
  if (holding_ || pass_next_ || disarmed_ || !CompactionCanHelp()) return false;
  return Measure().reclaimable > 0;
}

bool WriteStall::HoldBatch(const engine::Writer::BatchForecast& f, uint64_t stored_bytes) {
  if (holding_ || pass_next_ || disarmed_) return false;
  Backlog b = Measure();
  // The forecast counts from the counters it read beside the batches in
  // flight (whose effects it holds); a batch published since is in the
  // counters Measure read too, so those are not used.
  const uint64_t kept = b.kept;
  b.live = f.index_live_bytes;
  b.reclaimable = f.index_dead_bytes > kept ? f.index_dead_bytes - kept : 0;
  b.backlog = b.reclaimable + b.staged;
  b.bounds = engine::WriteStallBoundsFor(b.live, kWriteStallFloorBytes);
  // After the batch: the live bytes it leaves, and what is added to the
  // backlog by then (its dead bytes, the staged bytes, the queue behind it).
  const uint64_t live_before = b.live + f.put_bytes;
  const uint64_t live_after = live_before - std::min(live_before, f.killed_live_bytes);
  const uint64_t begin_after = engine::WriteStallBoundsFor(live_after, kWriteStallFloorBytes).begin_bytes;
  const uint64_t added = f.dead_bytes + (b.backlog - b.reclaimable) + (b.queued - std::min(b.queued, stored_bytes));
  if (b.reclaimable + added <= begin_after) return false;
  // Compaction makes room first: down to what leaves the batch under the
  // bound, or the usual end bound if that is lower. When the batch alone
  // passes the bound, as low as compaction gets (a pass that makes no
  // progress ends the stall, and the batch goes).
  const uint64_t target = std::min(b.bounds.end_bytes, begin_after - std::min(begin_after, added));
  if (b.reclaimable <= target) return false;
  Begin(Clock::now(), b, target);
  return true;
}

void WriteStall::Begin(Clock::time_point now, const Backlog& b, uint64_t target_bytes) {
  holding_ = true;
  target_ = target_bytes;
  since_ = now;
  seen_catch_up_ = thread_.catch_up_passes();
  seen_catch_up_progress_ = thread_.catch_up_progress_passes();
  seen_catch_up_view_pinned_ = thread_.catch_up_view_pinned_passes();
  retry_catch_up_ = false;
  thread_.TriggerCatchUp(target_);
  shm_.writer_metrics().compaction_stalls.fetch_add(1, std::memory_order_relaxed);
  ++window_stalls_;
  MaybeLog(now, b);
}

void WriteStall::End(Clock::time_point now, const char* why) {
  holding_ = false;
  pass_next_ = true;  // a stall that compaction could not finish lets the batch go
  const auto us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(now - since_).count());
  KINGX_LOG_DEBUG("write stall ended after %" PRIu64 " us: %s", us, why);
  shm_.writer_metrics().compaction_stall_us.fetch_add(us, std::memory_order_relaxed);
  window_us_ += us;
}

void WriteStall::MaybeLog(Clock::time_point now, const Backlog& b) {
  if (now - last_log_ < kLogEvery) return;
  if (last_log_ != Clock::time_point{})
    KINGX_LOG_INFO("writes waited for compaction %" PRIu64 " time(s), %" PRIu64 " ms in all, in the last %" PRId64
                   " s; now backlog %" PRIu64 " bytes over the bound %" PRIu64 " for %" PRIu64 " live bytes",
                   window_stalls_, window_us_ / 1000,
                   static_cast<int64_t>(std::chrono::duration_cast<std::chrono::seconds>(now - last_log_).count()),
                   b.backlog, b.bounds.begin_bytes, b.live);
  else
    KINGX_LOG_INFO("writes wait for compaction: backlog %" PRIu64 " bytes and %" PRIu64 " queued, bound %" PRIu64
                   " for %" PRIu64 " live bytes (dead records are reclaimed before more are written)",
                   b.backlog, b.queued, b.bounds.begin_bytes, b.live);
  last_log_ = now;
  window_stalls_ = 0;
  window_us_ = 0;
}

}  // namespace kingx
