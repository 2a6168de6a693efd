// CompactionThread: the background thread of the writer process that runs
// compaction passes periodically and on demand (engine/compaction.h).
#include <chrono>

#include "engine/compaction.h"

namespace kingx::engine {

CompactionThread::CompactionThread(Compactor& compactor, uint32_t interval_ms)
    : compactor_(compactor), interval_ms_(interval_ms > 0 ? interval_ms : 1) {}

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
  thread_.join();
  std::lock_guard lock(mu_);
  thread_ = std::thread();
  compactor_.ClearStop();
}

void CompactionThread::Trigger() {
  {
    std::lock_guard lock(mu_);
    triggered_ = true;
  }
  cv_.notify_all();
}

void CompactionThread::Loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::milliseconds(interval_ms_), [this] { return stop_ || triggered_; });
    if (stop_) break;
    triggered_ = false;
    lock.unlock();
    // Failures are logged by RunOnce (CompactionOptions::log) and retried at the next interval.
    compactor_.RunOnce().ok();
    passes_.fetch_add(1, std::memory_order_relaxed);
    lock.lock();
  }
}

}  // namespace kingx::engine
