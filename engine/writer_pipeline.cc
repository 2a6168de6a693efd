// Writer::Submit / TakeFinished: pipelined group commit (see writer.h).
//
// A submitted batch is decided and written by the writer thread, then left
// in flight (Impl::inflight_) while a sync thread runs an fdatasync that
// covers it (up to Options::sync_depth of them at once, each on a
// descriptor of its own). Batches finish in submission order: a batch is
// published only once a sync that started after its records were written
// returned success, and every sync started before it too
// (SyncThread::State::covered reaches its end offset). The first failed
// sync fails every batch in flight with kOutcomeUnknown and turns the
// writer read-only; the sync thread never syncs again, and a batch submitted
// after that failure is refused without being written. Any other holder of
// the writer's lock drains first (CommitMutex::lock), so rotation, large
// values and compaction only ever see a writer with nothing in flight, as
// before; the drain waits for the sync without the mutex (see
// writer_impl.h, CommitMutex), so the batches already covered are taken
// and answered meanwhile.
#include <cassert>

#include "engine/writer_impl.h"

namespace kingx::engine {

void Writer::Impl::CommitMutex::lock() {
  m_.lock();
  if (!w_->inflight_.empty()) {
    // Wait for the fdatasync in flight without the mutex, so that the writer
    // thread can take (TakeFinished) and answer the batches an earlier sync
    // already covered meanwhile. Submit writes nothing while drainers_ is
    // above zero, so no new batch joins the pipeline: after WaitIdle the
    // batches left in flight are all covered (or failed) and DrainLocked
    // below finishes them without waiting. sync_ is set while anything is in
    // flight and stays until ~Writer, which no drainer outlives.
    SyncThread* const sync = w_->sync_.get();
    ++w_->drainers_;
    m_.unlock();
    sync->WaitIdle();
    m_.lock();
    if (--w_->drainers_ == 0) w_->drained_cv_.notify_all();
  }
  w_->forecast_found_valid_ = false;  // this holder may change index entries
  w_->DrainLocked();
}

void Writer::Impl::DrainLocked() {
  if (inflight_.empty()) return;
  FinishSynced(sync_->WaitIdle());
  assert(inflight_.empty());  // idle: every request covered, or the failure
  sync_->Restart();           // the covered offsets start again (the next file may be another one)
}

void Writer::Impl::FinishSynced(const SyncThread::State& st) {
  syncs_ += st.syncs - sync_seen_.syncs;
  total_sync_us_ += st.total_sync_us - sync_seen_.total_sync_us;
  if (st.syncs != sync_seen_.syncs) last_sync_us_ = st.last_sync_us;
  sync_seen_.syncs = st.syncs;
  sync_seen_.total_sync_us = st.total_sync_us;
  while (!inflight_.empty() && inflight_.front()->end <= st.covered) {
    std::unique_ptr<SubmittedBatch> b = std::move(inflight_.front());
    inflight_.pop_front();
    inflight_bytes_ -= b->bytes;
    inflight_ops_ -= b->pending.size();
    if (!b->pending.empty()) PublishWritten(*this, b->pending, b->results, b->bytes);
    // After the counters: at no instant are the batch's bytes in neither.
    unpublished_bytes_.store(inflight_bytes_, std::memory_order_relaxed);
    finished_.push_back(std::move(b));
  }
  if (!st.failure.ok()) {
    // The rest was written and no successful sync covers it: maybe on disk
    // or not, so never OK and never "failed" (writer.h).
    TurnReadOnly(st.failure);
    const Status unknown = SyncFailedOutcome(st.failure);
    while (!inflight_.empty()) {
      std::unique_ptr<SubmittedBatch> b = std::move(inflight_.front());
      inflight_.pop_front();
      // Its refusals too (a failed condition, a missing key): they may have
      // been decided on a write in flight, whose outcome is unknown now.
      for (WriteResult& r : b->results) {
        if (r.status.ok() || r.status.Is(Code::kPreconditionFailed) || r.status.Is(Code::kNotFound)) {
          r.status = unknown;
        }
      }
      finished_.push_back(std::move(b));
    }
    inflight_bytes_ = inflight_ops_ = 0;
    unpublished_bytes_.store(0, std::memory_order_relaxed);
  }
}

uint64_t Writer::Submit(std::span<const WriteOp> ops, SyncBy sync_by) {
  Impl& w = *impl_;
  if (w.keyspace_) w.keyspace_->Pace();  // before the lock (see Keyspace::Pace)
  std::unique_lock<std::mutex> unlock_at_return(w.mu_.raw());
  // A thread draining the pipeline (CommitMutex::lock) waits for it to
  // empty: nothing joins it until that thread holds the lock.
  w.drained_cv_.wait(unlock_at_return, [&w] { return w.drainers_ == 0; });
  std::unique_ptr<Impl::SubmittedBatch> b;
  if (!w.spare_batches_.empty()) {
    b = std::move(w.spare_batches_.back());
    w.spare_batches_.pop_back();
  } else {
    b = std::make_unique<Impl::SubmittedBatch>();
  }
  b->ticket = w.next_ticket_++;
  b->end = b->bytes = 0;
  b->pending.clear();
  b->results.assign(ops.size(), WriteResult{});
  const uint64_t ticket = b->ticket;
  if (w.sync_ && !w.inflight_.empty()) {
    // A failed fdatasync not taken yet: the batches in flight finish with it
    // (the writer turns read-only) and this one is refused below instead of
    // being written behind them.
    if (const SyncThread::State st = w.sync_->Poll(); !st.failure.ok()) w.FinishSynced(st);
  }
  // A batch whose outcome is final without a sync of its own (nothing
  // written, or a write that failed) still finishes behind the batches in
  // flight: in order, and its refusals may rest on their writes.
  auto finish_now = [&] {
    if (w.inflight_.empty()) {
      w.finished_.push_back(std::move(b));
      return;
    }
    b->pending.clear();
    b->bytes = 0;
    b->end = w.active_size_ + w.inflight_bytes_;  // already requested by the batch before it
    w.inflight_.push_back(std::move(b));
  };

  if (w.options_.sync != SyncMode::kAlways || w.read_only_) {
    // Nothing to overlap (or nothing to write): Apply's path, finished at once.
    w.DrainLocked();
    if (w.read_only_) {
      for (WriteResult& r : b->results) r.status = Status::ReadOnly("writes stopped after: " + w.read_only_cause_.ToString());
      finish_now();
      return ticket;
    }
  }
  if (Status rs = w.ReserveSeqs(2 * ops.size() + 1); !rs.ok()) {
    for (WriteResult& r : b->results) r.status = rs;
    finish_now();
    return ticket;
  }
  const bool pipelined = w.options_.sync == SyncMode::kAlways;
  DecideBatch(w, ops, b->results, b->pending, pipelined);
  if (!pipelined) {
    CommitPending(w, b->pending, b->results);
    finish_now();
    return ticket;
  }
  if (!w.sync_) w.sync_ = std::make_unique<SyncThread>(w.options_.sync_depth, w.options_.on_synced);
  // Before the first write into this segment (DecideBatch may have rotated).
  if (w.options_.sync_depth > 1 && w.sync_files_id_ != w.active_id_ && !b->pending.empty()) w.OpenSpareSyncFiles();
  if (b->pending.empty() || !WritePending(w, b->pending, b->results)) {
    w.batch_.clear();
    finish_now();
    return ticket;
  }
  b->bytes = w.batch_.size();
  w.batch_.clear();
  w.inflight_bytes_ += b->bytes;
  w.unpublished_bytes_.store(w.inflight_bytes_, std::memory_order_relaxed);
  w.inflight_ops_ += b->pending.size();
  b->end = w.active_size_ + w.inflight_bytes_;
  if (sync_by == SyncBy::kCaller) {
    w.sync_->Defer(w.active_.get(), b->end);
  } else {
    w.sync_->Request(w.active_.get(), b->end);
  }
  w.inflight_.push_back(std::move(b));
  return ticket;
}

void Writer::Impl::OpenSpareSyncFiles() {
  assert(inflight_.empty());
  sync_files_id_ = active_id_;
  const std::string path = JoinPath(dir_, SegmentFileName(active_id_));
  std::vector<std::unique_ptr<File>> spares;
  // fdatasync needs no write access: the spares are opened read-only.
  for (uint32_t i = 1; i < options_.sync_depth; ++i) {
    auto f = env_.OpenFile(path, OpenMode::kRead);
    if (!f.ok()) {
      LogError("segment " + std::to_string(active_id_) + ": " + std::to_string(spares.size() + 1) +
               " fdatasync(s) at a time instead of " + std::to_string(options_.sync_depth) +
               " (a descriptor for the sync pipeline could not be opened: " + f.status().ToString() + ")");
      break;
    }
    spares.push_back(std::move(f.value()));
  }
  sync_->SetSpareFiles(std::move(spares));
}

bool Writer::SyncSubmitted() {
  // Without the writer's lock (sync_ is set only by Submit, on this thread):
  // a thread that takes the lock meanwhile drains, that is it waits in
  // WaitIdle for this sync to end, or hands the request to the sync thread if
  // this one has not started it; the file stays open until then.
  SyncThread* const sync = impl_->sync_.get();
  return sync != nullptr && sync->SyncHere();
}

bool Writer::TakeFinished(uint64_t* ticket, std::vector<WriteResult>* results, bool wait) {
  Impl& w = *impl_;
  w.mu_.LockKeepingPipeline();
  std::lock_guard<std::mutex> unlock_at_return(w.mu_.raw(), std::adopt_lock);
  if (w.finished_.empty() && !w.inflight_.empty()) {
    w.FinishSynced(w.sync_->Poll());
    if (w.finished_.empty() && wait) {
      // The oldest batch is covered once the syncs up to its own returned
      // (the later ones may still run).
      w.FinishSynced(w.sync_->WaitCovered(w.inflight_.front()->end));
    }
  }
  if (w.finished_.empty()) return false;
  std::unique_ptr<Impl::SubmittedBatch> b = std::move(w.finished_.front());
  w.finished_.pop_front();
  *ticket = b->ticket;
  results->swap(b->results);
  w.CountRefused(*results);
  b->pending.clear();
  if (w.spare_batches_.size() < 4) w.spare_batches_.push_back(std::move(b));
  return true;
}

bool Writer::SyncIdle() {
  Impl& w = *impl_;
  w.mu_.LockKeepingPipeline();
  std::lock_guard<std::mutex> unlock_at_return(w.mu_.raw(), std::adopt_lock);
  if (w.inflight_.empty()) return true;
  const SyncThread::State st = w.sync_->Poll();
  if (!st.failure.ok()) w.FinishSynced(st);
  return st.idle;
}

bool Writer::SyncRoom() {
  Impl& w = *impl_;
  w.mu_.LockKeepingPipeline();
  std::lock_guard<std::mutex> unlock_at_return(w.mu_.raw(), std::adopt_lock);
  if (w.inflight_.empty()) return !w.read_only_;
  const SyncThread::State st = w.sync_->Poll();
  if (!st.failure.ok()) w.FinishSynced(st);
  return st.room;
}

size_t Writer::Unfinished() const {
  Impl& w = *impl_;
  w.mu_.LockKeepingPipeline();
  std::lock_guard<std::mutex> unlock_at_return(w.mu_.raw(), std::adopt_lock);
  return w.inflight_.size() + w.finished_.size();
}

}  // namespace kingx::engine
