// SyncThread (see sync_thread.h).
#include "engine/sync_thread.h"

#include <algorithm>
#include <cassert>
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
  for (std::thread& t : threads_) t.join();
}

uint32_t SyncThread::DepthLocked() const {
  return static_cast<uint32_t>(std::min<size_t>(depth_, 1 + spares_.size()));
}

bool SyncThread::CanStartLocked() const {
  return !stop_ && state_.failure.ok() && handed_ > started_ && running_ < DepthLocked();
}

File* SyncThread::FreeFileLocked() const {
  auto free = [this](File* f) {
    return std::none_of(syncs_.begin(), syncs_.end(), [f](const Started& s) { return !s.done && s.file == f; });
  };
  if (free(file_)) return file_;
  for (const auto& spare : spares_) {
    if (free(spare.get())) return spare.get();
  }
  assert(false && "FreeFileLocked: every descriptor is in use");
  return file_;
}

SyncThread::State SyncThread::StateLocked() const {
  State st = state_;
  st.running = running_;
  st.room = state_.failure.ok() && running_ < DepthLocked() && requested_ <= started_;
  return st;
}

void SyncThread::WakeLocked() {
  // A waiting thread takes the work; without one, a new thread (at most one
  // per sync that may run at once). A busy thread looks again when its sync
  // returns.
  if (waiting_threads_ > 0) {
    work_cv_.notify_one();
  } else if (threads_.size() < depth_) {
    threads_.emplace_back([this] { Run(); });
  }
}

void SyncThread::RecordLocked(File* file, uint64_t end) {
  file_ = file;
  if (end > requested_) requested_ = end;
  state_.idle = false;
}

void SyncThread::Request(File* file, uint64_t end) {
  std::lock_guard lock(mu_);
  RecordLocked(file, end);
  handed_ = requested_;
  if (CanStartLocked()) WakeLocked();  // else a sync returning starts it
}

void SyncThread::Defer(File* file, uint64_t end) {
  std::lock_guard lock(mu_);
  RecordLocked(file, end);
  // After a failure SyncHere runs nothing: a thread answers the request
  // with the failure, as it answers Request's.
  if (!state_.failure.ok()) WakeLocked();
}

bool SyncThread::SyncHere() {
  std::unique_lock lock(mu_);
  if (stop_ || running_ > 0 || !state_.failure.ok() || requested_ <= state_.covered) return false;
  SyncOnce(lock, file_);
  // A request handed to the threads meanwhile (a WaitIdle's) is theirs.
  if (CanStartLocked()) WakeLocked();
  return true;
}

SyncThread::State SyncThread::Poll() {
  std::lock_guard lock(mu_);
  return StateLocked();
}

SyncThread::State SyncThread::WaitIdle() {
  std::unique_lock lock(mu_);
  // A deferred request nobody runs goes to the threads: handing it over is
  // what keeps a Defer whose caller waits here (or never syncs) from hanging.
  idle_cv_.wait(lock, [this] {
    if (!state_.idle && handed_ < requested_) {
      handed_ = requested_;
      WakeLocked();
    }
    return state_.idle;
  });
  return StateLocked();
}

SyncThread::State SyncThread::WaitCovered(uint64_t end) {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [this, end] {
    if (state_.covered >= end || !state_.failure.ok()) return true;
    if (handed_ < requested_) {  // as in WaitIdle
      handed_ = requested_;
      WakeLocked();
    }
    return false;
  });
  return StateLocked();
}

void SyncThread::Restart() {
  std::lock_guard lock(mu_);
  assert(syncs_.empty());
  requested_ = 0;
  handed_ = 0;
  started_ = 0;
  state_.covered = 0;
  file_ = nullptr;
}

void SyncThread::SetSpareFiles(std::vector<std::unique_ptr<File>> spares) {
  std::lock_guard lock(mu_);
  assert(running_ == 0);
  spares_ = std::move(spares);
}

void SyncThread::Run() {
  NameThisThread("kingx-sync");
  std::unique_lock lock(mu_);
  // Bounded by stop_: each iteration serves the requests made so far or waits.
  for (;;) {
    // After a failure only a new request (which clears idle) is answered,
    // once no sync runs: the requests it left uncovered must not wake a
    // thread again. A deferred request is the threads' only once handed
    // over (handed_).
    auto answer_failure = [this] { return !state_.failure.ok() && !state_.idle && running_ == 0; };
    while (!stop_ && !CanStartLocked() && !answer_failure()) {
      ++waiting_threads_;
      work_cv_.wait(lock);
      --waiting_threads_;
    }
    if (stop_) return;
    if (!state_.failure.ok()) {
      // Never sync again after a failure: the requests are answered by it.
      state_.idle = true;
      idle_cv_.notify_all();
    } else {
      SyncOnce(lock, FreeFileLocked());
    }
    lock.unlock();
    if (on_done_) on_done_();
    lock.lock();
  }
}

void SyncThread::SyncOnce(std::unique_lock<std::mutex>& lock, File* file) {
  // Every byte below `target` was written before this point.
  const uint64_t target = requested_;
  started_ = target;
  syncs_.push_back(Started{target, file, false});
  Started& me = syncs_.back();  // a deque keeps references across push_back / pop_front of others
  ++running_;
  lock.unlock();
  KINGX_KILL_POINT("append.before_sync");
  const auto start = std::chrono::steady_clock::now();
  Status s = file->Sync();
  const auto us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count());
  if (s.ok()) KINGX_KILL_POINT("append.after_sync");
  lock.lock();
  me.done = true;
  --running_;
  ++state_.syncs;
  state_.last_sync_us = us;
  state_.total_sync_us += us;
  if (!s.ok() && state_.failure.ok()) state_.failure = s;
  // Retire in start order: a sync's bytes count only once every sync
  // started before it returned too, and none after a failure (see the header).
  while (!syncs_.empty() && syncs_.front().done) {
    if (state_.failure.ok() && syncs_.front().target > state_.covered) state_.covered = syncs_.front().target;
    syncs_.pop_front();
  }
  // After a failure nothing more is synced: idle with the failure once no
  // sync runs.
  state_.idle = running_ == 0 && (!state_.failure.ok() || requested_ <= state_.covered);
  idle_cv_.notify_all();
}

}  // namespace kingx::engine
