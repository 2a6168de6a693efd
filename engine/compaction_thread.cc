// CompactionThread: the background thread of the writer process that runs
// compaction passes periodically and on demand, backing off after fruitless
// passes (engine/compaction.h).
#include <chrono>

#include "engine/compaction.h"
#include "engine/compaction_policy.h"
#include "engine/thread_name.h"

namespace kingx::engine {

CompactionThread::CompactionThread(Compactor& compactor, uint32_t interval_ms, CompactionBackoff backoff)
    : compactor_(compactor), interval_ms_(interval_ms > 0 ? interval_ms : 1), backoff_(backoff) {}

CompactionThread::~CompactionThread() { Stop(); }

void CompactionThread::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  compactor_.ClearStop();
  thread_ = std::thread([this] { Loop(); });
}

void CompactionThread::Stop() {
  {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) return;
    stop_ = true;
  }
  compactor_.RequestStop();  // a running pass stops at its next clean point
  cv_.notify_all();
  pass_done_.notify_all();
  thread_.join();
  std::lock_guard lock(mu_);
  thread_ = std::thread();
  compactor_.ClearStop();
}

void CompactionThread::Trigger(bool force) {
  {
    std::lock_guard lock(mu_);
    triggered_ = true;
    forced_ = forced_ || force;
  }
  cv_.notify_all();
}

void CompactionThread::TriggerCatchUp(uint64_t target_reclaimable_bytes) {
  compactor_.SetCatchUpTarget(target_reclaimable_bytes);
  {
    std::lock_guard lock(mu_);
    triggered_ = true;
    catch_up_ = true;
  }
  compactor_.Hurry(true);  // a pass running now stops pacing too
  cv_.notify_all();
}

CompactionThread::CatchUpCounts CompactionThread::catch_up_counts() const {
  std::lock_guard lock(mu_);
  return catch_up_counts_;
}

uint64_t CompactionThread::WaitForPass(uint64_t seen, uint32_t timeout_ms) {
  std::unique_lock lock(mu_);
  pass_done_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                      [&] { return passes_.load(std::memory_order_relaxed) > seen || stop_; });
  return passes_.load(std::memory_order_relaxed);
}

void CompactionThread::Loop() {
  NameThisThread("kingx-compact");
  using Clock = std::chrono::steady_clock;
  std::unique_lock lock(mu_);
  auto next_due = Clock::now() + std::chrono::milliseconds(interval_ms_);
  auto hold_until = Clock::time_point{};  // no pass before this unless forced
  while (!stop_) {
    const auto now = Clock::now();
    const bool held = now < hold_until;
    const bool run = forced_ || (!held && (triggered_ || now >= next_due));
    if (!run) {
      // A Trigger or Stop wakes the wait early; a held trigger waits for the hold.
      cv_.wait_until(lock, held ? hold_until : next_due);
      continue;
    }
    const PassKind kind = catch_up_ ? PassKind::kCatchUp : PassKind::kNormal;
    const char* cause = catch_up_ ? "writes wait"
                        : forced_ ? "forced"
                        : triggered_ ? "triggered"
                                     : "timer";
    triggered_ = forced_ = catch_up_ = false;
    if (kind == PassKind::kCatchUp) ++catch_up_counts_.started;
    lock.unlock();
    // Failures are logged by RunOnce (CompactionOptions::log).
    PassReport report;
    const Status s = compactor_.RunOnce(&report, kind, cause);
    // Picks left for want of room (PassReport::left_for_room) wait for the
    // room other passes and deletions make, not for a back-off.
    const bool fruitless = !s.Is(Code::kBusy) && report.outputs == 0 && report.deleted == 0 &&
                           (report.inputs > report.left_for_room || !s.ok());
    const uint32_t n = fruitless ? fruitless_.load(std::memory_order_relaxed) + 1 : 0;
    fruitless_.store(n, std::memory_order_relaxed);
    if (kind == PassKind::kCatchUp) compactor_.Hurry(false);
    const bool progress = report.outputs > 0 || report.deleted > 0;
    if (progress) progress_passes_.fetch_add(1, std::memory_order_relaxed);
    lock.lock();
    if (kind == PassKind::kCatchUp) {
      ++catch_up_counts_.passes;
      if (progress) ++catch_up_counts_.progress;
      if (!progress && report.view_pinned > 0) ++catch_up_counts_.view_pinned;
    }
    passes_.fetch_add(1, std::memory_order_relaxed);
    pass_done_.notify_all();
    const auto done = Clock::now();
    next_due = done + std::chrono::milliseconds(interval_ms_);
    hold_until = done + std::chrono::milliseconds(CompactionBackoffMs(n, backoff_.min_ms, backoff_.max_ms));
  }
}

}  // namespace kingx::engine
