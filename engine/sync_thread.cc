// SyncThread (see sync_thread.h).
#include "engine/sync_thread.h"

#include <chrono>

#include "engine/kill_point.h"
#include "engine/thread_name.h"

namespace kingx::engine {

SyncThread::~SyncThread() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SyncThread::RecordLocked(File* file, uint64_t end) {
  file_ = file;
  if (end > requested_) requested_ = end;
  state_.idle = false;
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
}

void SyncThread::Request(File* file, uint64_t end) {
  {
    std::lock_guard lock(mu_);
    RecordLocked(file, end);
    handed_ = requested_;
  }
  work_cv_.notify_all();
}

void SyncThread::Defer(File* file, uint64_t end) {
  std::lock_guard lock(mu_);
  RecordLocked(file, end);
  // After a failure SyncHere runs nothing: the thread answers the request
  // with the failure, as it answers Request's.
  if (!state_.failure.ok()) work_cv_.notify_all();
}

bool SyncThread::SyncHere() {
  std::unique_lock lock(mu_);
  if (stop_ || running_ || !state_.failure.ok() || requested_ <= state_.covered) return false;
  running_ = true;
  SyncOnce(lock);
  return true;
}

SyncThread::State SyncThread::Poll() {
  std::lock_guard lock(mu_);
  return state_;
}

SyncThread::State SyncThread::WaitIdle() {
  std::unique_lock lock(mu_);
  // A deferred request nobody runs goes to the thread: handing it over is
  // what keeps a Defer whose caller waits here (or never syncs) from hanging.
  idle_cv_.wait(lock, [this] {
    if (!state_.idle && !running_ && handed_ < requested_) {
      handed_ = requested_;
      work_cv_.notify_all();
    }
    return state_.idle;
  });
  return state_;
}

void SyncThread::Restart() {
  std::lock_guard lock(mu_);
  requested_ = 0;
  handed_ = 0;
  state_.covered = 0;
  file_ = nullptr;
}

void SyncThread::Run() {
  NameThisThread("kingx-sync");
  std::unique_lock lock(mu_);
  // Bounded by stop_: each iteration serves the requests made so far or waits.
  for (;;) {
    // After a failure only a new request (which clears idle) is answered:
    // the requests it left uncovered must not wake the thread again.
    // A sync running in SyncHere is its caller's, and a deferred request is
    // the thread's only once handed over (handed_): the thread waits for them.
    work_cv_.wait(lock, [this] {
      return stop_ || (!running_ && (state_.failure.ok() ? handed_ > state_.covered : !state_.idle));
    });
    if (stop_) return;
    if (!state_.failure.ok()) {
      // Never sync again after a failure: the requests are answered by it.
      state_.idle = true;
      idle_cv_.notify_all();
      lock.unlock();
      if (on_done_) on_done_();
      lock.lock();
      continue;
    }
    running_ = true;
    SyncOnce(lock);
    lock.unlock();
    if (on_done_) on_done_();
    lock.lock();
  }
}

void SyncThread::SyncOnce(std::unique_lock<std::mutex>& lock) {
  // Every byte below `target` was written before this point.
  const uint64_t target = requested_;
  File* const file = file_;
  lock.unlock();
  KINGX_KILL_POINT("append.before_sync");
  const auto start = std::chrono::steady_clock::now();
  Status s = file->Sync();
  const auto us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count());
  if (s.ok()) KINGX_KILL_POINT("append.after_sync");
  lock.lock();
  running_ = false;
  ++state_.syncs;
  state_.last_sync_us = us;
  state_.total_sync_us += us;
  if (s.ok()) {
    if (target > state_.covered) state_.covered = target;
  } else {
    state_.failure = s;
  }
  // After a failure nothing more is synced: idle with the failure.
  state_.idle = !state_.failure.ok() || requested_ <= state_.covered;
  idle_cv_.notify_all();
  // Only WaitIdle's waiters are told: the thread is woken only for work of
  // its own (a SyncHere's end is none of its business unless a request was
  // handed to it meanwhile), so the caller's syncs wake nobody.
  if (handed_ > state_.covered && state_.failure.ok()) work_cv_.notify_all();
}

}  // namespace kingx::engine
