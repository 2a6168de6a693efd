// The writer loop (see writer_process.h).
//
// Order of a batch: Submit (or Apply) → final (TakeFinished) → post
// completions → Release its ring bytes → wake the workers. Releasing only after posting means a writer that dies mid-batch
// leaves the batch queued: the respawned writer applies it again (a worker
// ignores a completion for a token it no longer waits for), so a write that a
// worker still waits for is never silently lost.
#include "src/writer/writer_process.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <csignal>
#include <deque>
#include <map>
#include <vector>

#include "engine/env.h"
#include "engine/index.h"
#include "engine/keyspace_options.h"
#include "engine/kill_point.h"
#include "engine/writer.h"
#include "src/conf/log.h"
#include "src/conf/observed_env.h"
#include "src/ipc/completion_ring.h"
#include "src/ipc/staging_budget.h"
#include "src/ipc/write_queue.h"
#include "src/worker/serve_options.h"
#include "src/writer/backup_cuts.h"
#include "src/writer/disk_report.h"

namespace kingx {
namespace {

// Set by the signal handlers of the writer process.
std::atomic<uint32_t>* g_stop_word = nullptr;
int g_wake_fd = -1;
volatile sig_atomic_t g_reopen_logs = 0;

void WakeFromHandler() {
  if (g_wake_fd < 0) return;
  const uint64_t one = 1;
  ssize_t w = write(g_wake_fd, &one, sizeof(one));
  (void)w;
}

void OnStopSignal(int sig) {
  const int saved = errno;
  if (g_stop_word != nullptr) {
    const uint32_t want = sig == SIGQUIT ? static_cast<uint32_t>(WriterStop::kDrain)
                                         : static_cast<uint32_t>(WriterStop::kFast);
    // A fast stop wins over a drain; never downgrade.
    if (g_stop_word->load() < want) g_stop_word->store(want);
  }
  WakeFromHandler();
  errno = saved;
}

void OnReopenSignal(int) {
  const int saved = errno;
  g_reopen_logs = 1;
  WakeFromHandler();
  errno = saved;
}

void InstallSignals(SharedMemory& shm) {
  g_stop_word = &shm.control().writer_stop;
  g_wake_fd = shm.writer_eventfd();
  struct sigaction sa {};
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = OnStopSignal;
  sigaction(SIGQUIT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sa.sa_handler = OnReopenSignal;
  sigaction(SIGUSR1, &sa, nullptr);
  sa.sa_handler = SIG_IGN;  // the master's (HUP, USR2) when sent to the whole process group
  sigaction(SIGHUP, &sa, nullptr);
  sigaction(SIGUSR2, &sa, nullptr);
  sigaction(SIGPIPE, &sa, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

// CLOCK_MONOTONIC in ms: the clock of WriterMetrics::heartbeat_ms, which
// workers compare with their own. steady_clock is CLOCK_MONOTONIC (libstdc++
// on Linux), so a time point the loop read already gives it without another
// clock read (MsOf).
uint64_t MsOf(std::chrono::steady_clock::time_point t) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}
uint64_t NowMs() { return MsOf(std::chrono::steady_clock::now()); }

engine::WriteOp ToOp(const WriteRequest& r) {
  engine::WriteOp op;
  op.type = r.kind == WriteKind::kDelete ? engine::OpType::kDelete : engine::OpType::kPut;
  op.key = r.key;
  op.content_type = r.content_type;
  op.codec = r.codec;
  op.stored = r.stored;
  op.raw_len = r.raw_len;
  switch (r.condition) {
    case WriteCondition::kNone: op.condition.kind = engine::Condition::Kind::kNone; break;
    case WriteCondition::kIfAbsent: op.condition.kind = engine::Condition::Kind::kIfAbsent; break;
    case WriteCondition::kIfMatch: op.condition.kind = engine::Condition::Kind::kIfMatch; break;
  }
  op.condition.seq = r.if_match_seq;
  return op;
}

// One large value being staged.
struct LargeUpload {
  uint64_t engine_id = 0;
  engine::Status failure;  // set when a part failed (the engine already aborted it)
  uint64_t staged = 0;     // bytes of its staging file, counted in staged_total_
  bool reported = false;   // the failure was already posted to its worker
  CompletionReason reason = CompletionReason::kNone;  // posted with the failure
};

// Which upload an entry belongs to. A token is unique only among the writes
// of one slot (the workers of a slot generation number their exchanges alike),
// so uploads of different workers may carry the same token.
struct UploadKey {
  uint32_t slot = 0;
  uint64_t token = 0;
  auto operator<=>(const UploadKey&) const = default;
};

// The loop's state: the engine, open large uploads, completions waiting for
// room in a full ring, the slots to wake after this batch.
class WriterLoop {
 public:
  WriterLoop(const Config& config, SharedMemory& shm, engine::Writer& writer, const WriterHooks& hooks,
             DiskReport& disk, BackupCuts& backups)
      : config_(config), shm_(shm), queue_(shm.queue()), writer_(writer), hooks_(hooks), disk_(disk),
        backups_(backups),
        overflow_(shm.slot_count()), wake_(shm.slot_count(), false) {
    answer_synced_ = [this] {
      ReapFinished(false);
      WakeSlots();
    };
  }

  // Returns the exit status.
  int Run() {
    queue_.BeginConsuming();
    AnswerOrphans();
    // At least once a second: interval syncs, orphaned uploads, hooks; and
    // four times per --storage-timeout-ms, so that an idle writer's heartbeat
    // never looks like a stall.
    const int idle_timeout_ms = static_cast<int>(std::min<uint64_t>(
        {config_.sync == engine::SyncMode::kInterval ? config_.sync_interval_ms : 1000u, 1000u,
         std::max<uint64_t>(config_.storage_timeout_ms / 4, 1)}));
    uint64_t compact_seen = shm_.control().compact_requests.load();
    // Bounded by the stop flag: every iteration either returns or waits at most
    // idle_timeout_ms; a drain ends when the queue is empty.
    for (;;) {
      const auto stop = static_cast<WriterStop>(shm_.control().writer_stop.load());
      if (stop == WriterStop::kFast) break;
      const bool overflowing = HasOverflow();
      // While a batch waits for its fdatasync, what arrives stays queued
      // (below): sleep until that sync returns (it wakes the queue) or another
      // Wake, not at each enqueue.
      int wait_ms = overflowing ? 1 : idle_timeout_ms;
      // An interval sync due sooner ends the wait then (the clock is read in that mode only).
      if (sync_due_ms_ != UINT64_MAX) wait_ms = WaitBeforeSyncDue(wait_ms, NowMs(), sync_due_ms_);
      // A batch the stall held (held_) is still to be written, or one synced
      // here is to be answered: no sleep.
      const bool synced_here = synced_here_ && !submitted_.empty();
      synced_here_ = false;
      // With room for another fdatasync beside those in flight
      // (--sync-depth above 1), an enqueue ends the wait too: what arrives
      // is written and its fdatasync started at once.
      const bool queued = submitted_.empty() || synced_here || (overlap_syncs_ && writer_.SyncRoom())
                              ? queue_.WaitForEntries(held_ || synced_here ? 0 : wait_ms)
                              : queue_.WaitForWake(wait_ms);
      const bool have = queued || held_;
      Beat();
      if (g_reopen_logs) {
        g_reopen_logs = 0;
        ReopenLogs();
      }
      // Only an interval sync is ever due: the other modes skip the clock read.
      if (engine::Status s = config_.read_only || config_.sync != engine::SyncMode::kInterval
                                 ? engine::Status::OK()
                                 : writer_.SyncIfDue(NowMs(), &sync_due_ms_);
          !s.ok()) {
        KINGX_LOG_ERROR("writer: interval sync failed: %s", s.ToString().c_str());
      }
      AbortOrphanedUploads();
      StagingBudget::ReturnDeadSlots(shm_);  // a dead worker's staging reservations
      if (hooks_.each_iteration) {
        const uint64_t requested = shm_.control().compact_requests.load();
        hooks_.each_iteration(writer_, requested != compact_seen);
        compact_seen = requested;
      }
      if (overflowing) PostOverflow();
      // At most --sync-depth group commits' fdatasyncs at once: the next
      // batch is taken once fewer run (with depth 1: once the previous one
      // returned), so everything that arrived meanwhile goes out as one
      // batch, one write and one fdatasync. (Batches written while the depth
      // is full would wait for the same next sync, each at the cost of its
      // own write, wake-ups and answers.) With depth 1:
      // It is written before the synced batch is answered, and its
      // fdatasync (SyncSubmitted, below) starts right after those answers:
      // the worker they wake runs while this thread waits in that fdatasync,
      // not while it decides and writes the next batch. (Answering first, as
      // soon as a sync returns, gains nothing: the batch taken right after
      // cannot hold the answered clients' next requests in either order; and
      // on a small machine the woken worker then competes with that
      // decision and write for a CPU, so the next fdatasync starts later.)
      // The synced batch is published and answered (ReapFinished) never
      // before the fdatasync that covers it returned; the new one only after
      // its own.
      // (After a failed fdatasync nothing more is taken: the writer exits
      // below and the queued entries go to the next one.)
      // A hold that waits answers the synced batch before it waits
      // (answer_synced_), not after: only the held writes wait.
      const bool room = overlap_syncs_ ? writer_.SyncRoom() : writer_.SyncIdle();
      if (have && (submitted_.empty() || (room && !writer_.read_only())) &&
          !(hooks_.hold_batch && hooks_.hold_batch(writer_, answer_synced_))) {
        ProcessBatch();
      }
      ReapFinished(false);
      WakeSlots();  // the answers go out now, not at the next wake-up
      // With depth 1, the fdatasync of the batch just written runs here, on
      // this thread: the loop would only wait for it anyway (the next batch
      // is taken once it returned), and running it here spares the wake-up
      // of the sync thread before it and of this loop after it. (Above 1 the
      // engine's sync threads run them: the loop takes the next batch
      // meanwhile, and each returning sync wakes it through on_synced.) What arrives meanwhile
      // stays queued, as it does during the sync thread's (and completions
      // that wait for room in a full ring wait one fdatasync more). When
      // something did arrive, the synced batch is answered by the next
      // iteration, after the next batch is written, as when the sync thread
      // ran it.
      if (!overlap_syncs_ && !submitted_.empty() && writer_.SyncSubmitted()) {
        if (queue_.HasUntaken()) {
          synced_here_ = true;
        } else {
          // Nothing arrived during the fdatasync: there is no next batch to
          // write before these answers, so they go out now, not after a turn
          // of the loop (its hooks, a dead-only compaction pass among them,
          // and the backup cuts would run between the sync and the answers).
          // What lands after the look is taken at the next turn, as always.
          ReapFinished(false);
          WakeSlots();
        }
      }
      // Between two batches: every write answered so far is in a cut taken now.
      // One clock read for both (the heartbeat reads its own, after the cut).
      const uint64_t served_ms = NowMs();
      backups_.Serve(served_ms, [this](uint32_t slot, const Completion& c) { Post(slot, c); });
      Beat();
      WakeSlots();
      if (!config_.read_only) disk_.Tick(writer_, served_ms);  // a read-only server never needs room
      if (writer_.read_only() && !config_.read_only) {
        ReapAll();  // every batch in flight is answered (outcome unknown) before the exit
        WakeSlots();
        shm_.writer_metrics().read_only.store(1);
        KINGX_LOG_ERROR("writer: the engine is read-only after a failed sync; exiting so that the master "
                        "respawns the writer and recovery reopens the database");
        return 3;
      }
      if (!config_.read_only) FlushHintAtRest(!have && submitted_.empty() && !overflowing);
      // Re-read: the stop request usually is what ended the wait.
      const auto stop_now = static_cast<WriterStop>(shm_.control().writer_stop.load());
      if (!have && submitted_.empty() && stop_now == WriterStop::kDrain && !HasOverflow()) break;
    }
    ReapAll();  // a fast stop still answers what it wrote
    WakeSlots();
    for (auto& [key, up] : uploads_) {
      if (up.failure.ok()) writer_.AbortLarge(up.engine_id);
      shm_.writer_metrics().large_aborted.fetch_add(1);
      Unstage(up);
    }
    uploads_.clear();
    if (config_.read_only) return 0;  // nothing was written
    if (engine::Status s = writer_.Sync(); !s.ok()) KINGX_LOG_ERROR("writer: final sync: %s", s.ToString().c_str());
    return 0;
  }

 private:
  // USR1: the error log the master published (its path and level, which a
  // reload may have changed) is opened again at that level; without a
  // publication, the same path is reopened. On failure the current log stays.
  void ReopenLogs() {
    std::string path;
    LogLevel level = LogLevel::kInfo;
    const engine::Status s = shm_.control().log_settings.Read(&path, &level) ? InitErrorLog(path, level)
                                                                                : ReopenErrorLog();
    if (!s.ok()) KINGX_LOG_ERROR("writer: %s (keeping the current error log)", s.ToString().c_str());
  }

  // The heartbeat says the writer makes progress: while batches wait for
  // their fdatasync it stays at the oldest one's submission, so that an
  // fdatasync that never returns shows as a stalled writer, as it did when
  // the loop itself waited in it.
  void Beat() {
    const uint64_t now = NowMs();
    const uint64_t beat = submitted_.empty() ? now : std::min(now, submitted_.front().start_ms);
    shm_.writer_metrics().heartbeat_ms.store(beat, std::memory_order_relaxed);
  }

  // Takes the queued entries. Puts and deletes alone are submitted to the
  // engine's pipeline (answered by ReapFinished once durable, in order);
  // a batch with large-value entries first lets everything in flight finish,
  // then goes the serial way (ApplyBatch).
  void ProcessBatch() {
    if (!held_) {
      DelayCommit();
      batch_.clear();
      queue_.Peek(&batch_, kMaxBatchOps, kMaxBatchBytes);
      split_rest_ = false;
    }
    held_ = false;
    if (split_rest_) {
      // The rest of a split batch. Its first part's fdatasync returned (a
      // batch is taken only then): answered and published now, so that the
      // rest is forecast against what that part killed as reclaimable, not
      // as in flight.
      ReapFinished(false);
      WakeSlots();
      KINGX_KILL_POINT("split.before_rest");
    }
    const bool large = std::any_of(batch_.begin(), batch_.end(),
                                   [](const QueueEntry& e) { return e.type != EntryType::kOp; });
    if (large) {
      // Its puts and deletes kill what any batch's do: the write stall
      // forecasts them too (the large values' own records are staged bytes
      // already, each replacing one record).
      ops_.clear();
      op_entries_.clear();
      uint64_t bytes = 0;
      for (size_t i = 0; i < batch_.size(); ++i) {
        if (batch_[i].type != EntryType::kOp) continue;
        ops_.push_back(ToOp(batch_[i].request));
        op_entries_.push_back(i);
        bytes += batch_[i].request.stored.size();
      }
      const size_t go = ops_.empty() || !hooks_.hold_ops ? ops_.size() : hooks_.hold_ops(writer_, ops_, bytes);
      if (!ops_.empty() && go == 0) {
        held_ = true;  // its entries stay taken, unreleased: the same batch goes next
        return;
      }
      ReapAll();
      // A split ends after the entry of its last op that goes.
      const size_t entries = go < ops_.size() ? op_entries_[go - 1] + 1 : batch_.size();
      ApplyBatch(entries);
      KeepRest(entries);
      return;
    }
    Submitted sub;
    if (!spare_submitted_.empty()) {
      sub = std::move(spare_submitted_.back());
      spare_submitted_.pop_back();
    }
    sub.tokens.clear();
    ops_.clear();
    sub.bytes = 0;
    for (const QueueEntry& e : batch_) {
      ops_.push_back(ToOp(e.request));
      sub.tokens.push_back({e.slot, e.token});
      sub.bytes += e.request.stored.size();
    }
    const size_t go = hooks_.hold_ops ? hooks_.hold_ops(writer_, ops_, sub.bytes) : ops_.size();
    if (go == 0) {
      held_ = true;  // its entries stay taken, unreleased: the same batch goes next
      spare_submitted_.push_back(std::move(sub));
      return;
    }
    if (go < ops_.size()) {
      ops_.resize(go);
      sub.tokens.resize(go);
      sub.bytes = 0;
      for (size_t i = 0; i < go; ++i) sub.bytes += batch_[i].request.stored.size();
    }
    sub.release_position = go < batch_.size() ? batch_[go - 1].end_position : queue_.PeekPosition();
    sub.release_entries = go;
    sub.start = std::chrono::steady_clock::now();
    sub.start_ms = MsOf(sub.start);
    // Its fdatasync runs on this thread, in Run (SyncSubmitted) right after
    // (depth 1), or starts on a sync thread now.
    NoteWriting(sub.bytes);
    sub.ticket = writer_.Submit(ops_, overlap_syncs_ ? engine::Writer::SyncBy::kSyncThread
                                                     : engine::Writer::SyncBy::kCaller);
    NoteUnpublished();
    last_commit_ops_ = go;
    submitted_.push_back(std::move(sub));
    KeepRest(go);
    // Under --sync none / interval it is final already: Run answers it
    // right after this returns.
  }

  // The commit delay (--commit-delay-us), after PostgreSQL's commit_delay
  // with commit_siblings and MySQL's binlog_group_commit_sync_delay with
  // _no_delay_count: before a batch is taken, when the previous group commit
  // carried more than one write (other clients write too: theirs may join)
  // and fewer than that are queued, the loop waits until as many are queued
  // or the delay passed, then takes what is there. The synced batch is
  // answered before the wait, so that its clients' next writes can join.
  // Never waits: a lone writer (its commits carry one write each), a first
  // write after the loop answered everything more than the delay ago (those
  // writers are not coming back as a group), or while another batch's
  // fdatasync runs (--sync-depth above 1: its answers would wait). Only the
  // moment a batch is written moves: each is still answered only after an
  // fdatasync that covers it and every earlier one returned.
  void DelayCommit() {
    if (commit_delay_us_ == 0 || last_commit_ops_ < 2 || queue_.Untaken() >= last_commit_ops_) return;
    ReapFinished(false);
    WakeSlots();
    if (!submitted_.empty()) return;
    const auto t0 = std::chrono::steady_clock::now();
    if (t0 - last_answered_ > std::chrono::microseconds(commit_delay_us_)) return;
    WriterMetrics& m = shm_.writer_metrics();
    m.commit_delays.store(m.commit_delays.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);  // as it starts
    queue_.WaitForQueued(last_commit_ops_, commit_delay_us_);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
    m.commit_delay_us_sum.store(m.commit_delay_us_sum.load(std::memory_order_relaxed) + static_cast<uint64_t>(us.count()),
                                std::memory_order_relaxed);
  }

  // After the first `done` entries of batch_ went (a split when some are
  // left): the rest stays taken, held, and is processed next as a batch of
  // its own.
  void KeepRest(size_t done) {
    if (done >= batch_.size()) {
      split_rest_ = false;
      return;
    }
    batch_.erase(batch_.begin(), batch_.begin() + static_cast<std::ptrdiff_t>(done));
    held_ = true;
    split_rest_ = true;
  }

  // Answers every submitted batch that is final, oldest first, and frees its
  // ring bytes (after posting: see the file comment). With wait, waits for
  // the oldest one first.
  void ReapFinished(bool wait) {
    uint64_t ticket = 0;
    while (!submitted_.empty() && writer_.TakeFinished(&ticket, &results_, wait)) {
      NoteUnpublished();  // published: before its answers go out
      Submitted& sub = submitted_.front();
      assert(ticket == sub.ticket);
      (void)ticket;
      uint64_t failed = 0;
      for (size_t i = 0; i < sub.tokens.size(); ++i) {
        const engine::WriteResult& r = results_[i];
        if (!r.status.ok() && !r.status.Is(engine::Code::kNotFound) &&
            !r.status.Is(engine::Code::kPreconditionFailed)) {
          ++failed;
        }
        Post(sub.tokens[i].first, Completion{sub.tokens[i].second, r.seq, r.status.code(), r.existed});
      }
      last_answered_ = std::chrono::steady_clock::now();
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(last_answered_ - sub.start);
      RecordBatch(shm_.writer_metrics(), sub.tokens.size(), sub.bytes, static_cast<uint64_t>(us.count()), failed);
      queue_.ReleaseThrough(sub.release_position, sub.release_entries);
      if (spare_submitted_.empty()) spare_submitted_.push_back(std::move(sub));
      submitted_.pop_front();
      wait = false;
    }
    NoteUnpublished();  // a publication another thread's drain made
  }

  // The gauge of bytes written but not yet published (WriterMetrics::
  // unpublished_bytes). Publication can also happen on another thread (a
  // compaction pass's lock drains the pipeline): the gauge then follows at
  // this loop's next reap, erring high, never low: before a batch is written
  // (NoteWriting) it already counts the batch's stored bytes (a large batch's
  // write takes milliseconds), and its exact record bytes once written.
  void NoteUnpublished() {
    shm_.writer_metrics().unpublished_bytes.store(writer_.unpublished_bytes(), std::memory_order_relaxed);
  }
  void NoteWriting(uint64_t stored_bytes) {
    shm_.writer_metrics().unpublished_bytes.store(writer_.unpublished_bytes() + std::max<uint64_t>(stored_bytes, 1),
                                                  std::memory_order_relaxed);
  }

  // Answers every submitted batch (waiting for their fdatasyncs).
  void ReapAll() {
    // Bounded: each round takes one batch (TakeFinished with wait returns
    // one while any is unfinished).
    while (!submitted_.empty()) ReapFinished(true);
  }

  // The serial way: the first `entries` entries of batch_, large-value
  // entries in order, then their puts and deletes as one Apply; then their
  // ring bytes are released. Nothing is in flight.
  void ApplyBatch(size_t entries) {
    ops_.clear();
    op_tokens_.clear();
    uint64_t bytes = 0;
    for (size_t i = 0; i < entries; ++i) {
      const QueueEntry& e = batch_[i];
      switch (e.type) {
        case EntryType::kOp:
          ops_.push_back(ToOp(e.request));
          op_tokens_.push_back({e.slot, e.token});
          bytes += e.request.stored.size();
          break;
        case EntryType::kLargeBegin: LargeBegin(e); break;
        case EntryType::kLargePart: LargePart(e); break;
        case EntryType::kLargeEnd: LargeEnd(e); break;
        case EntryType::kLargeAbort: LargeAbort(e); break;
      }
    }
    if (!ops_.empty()) {
      results_.assign(ops_.size(), engine::WriteResult{});
      const auto t0 = std::chrono::steady_clock::now();
      NoteWriting(bytes);
      writer_.Apply(ops_, results_);
      NoteUnpublished();
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
      uint64_t failed = 0;
      for (size_t i = 0; i < ops_.size(); ++i) {
        const engine::WriteResult& r = results_[i];
        if (!r.status.ok() && !r.status.Is(engine::Code::kNotFound) &&
            !r.status.Is(engine::Code::kPreconditionFailed)) {
          ++failed;
        }
        Post(op_tokens_[i].first, Completion{op_tokens_[i].second, r.seq, r.status.code(), r.existed});
      }
      RecordBatch(shm_.writer_metrics(), ops_.size(), bytes, static_cast<uint64_t>(us.count()), failed);
    }
    if (entries >= batch_.size()) {
      queue_.Release();
    } else if (entries > 0) {
      queue_.ReleaseThrough(batch_[entries - 1].end_position, entries);
    }
  }

  // Entries a dead writer took but never released may or may not be on disk
  // (kill -9 keeps what write() reached the page cache, and recovery reads
  // it). Applying them again would answer wrongly (a done create as an
  // overwrite, a done DELETE as 404, a done If-Match PUT as 412), so each is
  // answered "outcome unknown" (503 + Retry-After; clients retry or re-read)
  // and released. A large upload whose parts were among them fails at its End.
  void AnswerOrphans() {
    batch_.clear();
    const size_t n = queue_.PeekOrphans(&batch_);
    if (n == 0) return;
    for (const QueueEntry& e : batch_) {
      switch (e.type) {
        case EntryType::kOp:
        case EntryType::kLargeEnd:
          Post(e.slot, Completion{e.token, 0, engine::Code::kOutcomeUnknown, false});
          break;
        case EntryType::kLargeBegin:
        case EntryType::kLargePart: {
          LargeUpload up;
          up.failure = engine::Status::Busy("the writer restarted during this upload");
          up.reason = CompletionReason::kWriterRestarted;
          uploads_[UploadKey{e.slot, e.token}] = up;
          break;
        }
        case EntryType::kLargeAbort:
          uploads_.erase(UploadKey{e.slot, e.token});
          break;
      }
    }
    queue_.Release();
    WakeSlots();
    KINGX_LOG_WARN("writer: %zu queued write(s) of the previous writer answered as outcome unknown (503)", n);
  }

  void LargeBegin(const QueueEntry& e) {
    const UploadKey key{e.slot, e.token};
    if (auto old = uploads_.find(key); old != uploads_.end()) {
      // The worker reused the token while its abort of the previous upload was
      // still on its way: drop that upload (and its staging file) now.
      if (old->second.failure.ok()) writer_.AbortLarge(old->second.engine_id);
      shm_.writer_metrics().large_aborted.fetch_add(1);
      Unstage(old->second);
      uploads_.erase(old);
    }
    LargeUpload up;
    // The staging file starts with the two headers' room, the key and meta.
    const uint64_t prefix = StagingPrefixBytes(e.request.key.size(), e.request.content_type.size());
    if (!Stage(&up, prefix)) {
      up.failure = StagingRefusal();
      ReportEarly(e.slot, e.token, &up, CompletionReason::kStagingBudget);
    } else {
      auto id = writer_.BeginLarge(ToOp(e.request));
      if (id.ok()) {
        up.engine_id = *id;
      } else {
        up.failure = id.status();
        Unstage(up);
        ReportEarly(e.slot, e.token, &up, CompletionReason::kNone);
      }
    }
    uploads_[key] = up;
  }

  void LargePart(const QueueEntry& e) {
    auto it = uploads_.find(UploadKey{e.slot, e.token});
    if (it == uploads_.end() || !it->second.failure.ok()) return;  // already failed
    LargeUpload& up = it->second;
    if (!Stage(&up, e.request.stored.size())) {
      writer_.AbortLarge(up.engine_id);  // its staging file goes now
      Unstage(up);
      up.failure = StagingRefusal();
      ReportEarly(e.slot, e.token, &up, CompletionReason::kStagingBudget);
      return;
    }
    engine::Status s = writer_.AppendLarge(up.engine_id, e.request.stored);
    if (!s.ok()) {
      up.failure = s;  // the engine aborted the value (its staging file is gone)
      Unstage(up);
      ReportEarly(e.slot, e.token, &up, CompletionReason::kNone);
    }
  }

  // ---- the staging budget (--staging-bytes) ----

  // Counts n more staged bytes for `up`, unless the total would pass the
  // budget. A failed stage leaves the counts as they were.
  bool Stage(LargeUpload* up, uint64_t n) {
    if (staged_total_ + n > config_.staging_bytes) return false;
    staged_total_ += n;
    up->staged += n;
    shm_.writer_metrics().staged_bytes.store(staged_total_, std::memory_order_relaxed);
    return true;
  }

  void Unstage(LargeUpload& up) {
    staged_total_ -= std::min(staged_total_, up.staged);
    up.staged = 0;
    shm_.writer_metrics().staged_bytes.store(staged_total_, std::memory_order_relaxed);
  }

  engine::Status StagingRefusal() {
    shm_.writer_metrics().staging_refusals.fetch_add(1, std::memory_order_relaxed);
    return engine::Status::Busy("large uploads in progress would stage more than --staging-bytes");
  }

  // Answers a failed upload now, while its client may still be sending: the
  // rest of its parts are dropped here and its worker stops reading it.
  void ReportEarly(uint32_t slot, uint64_t token, LargeUpload* up, CompletionReason reason) {
    Completion c{token, 0, up->failure.code(), false, reason};
    Post(slot, c);
    up->reported = true;
    shm_.writer_metrics().failed_records.fetch_add(1);
  }

  void LargeEnd(const QueueEntry& e) {
    auto it = uploads_.find(UploadKey{e.slot, e.token});
    if (it == uploads_.end()) {
      // Its Begin was consumed by a writer that died: the parts are gone, and
      // nothing of the value was applied; the client may send it again. (The
      // only other way here, an End from a worker this writer took for gone,
      // cannot reach a client.)
      Post(e.slot, Completion{e.token, 0, engine::Code::kBusy, false, CompletionReason::kWriterRestarted});
      return;
    }
    LargeUpload up = it->second;
    uploads_.erase(it);
    if (!up.failure.ok()) {
      Unstage(up);  // its staging file is gone
      if (!up.reported) {
        Post(e.slot, Completion{e.token, 0, up.failure.code(), false, up.reason});
        shm_.writer_metrics().failed_records.fetch_add(1);
      }
      return;
    }
    engine::WriteResult r;
    const auto t0 = std::chrono::steady_clock::now();
    writer_.FinishLarge(up.engine_id, e.request.raw_len, &r);
    // Counted as staged until now: during FinishLarge (the file's fdatasync,
    // its hint, the rename) its bytes are on disk but not yet live, and the
    // staged gauge is what tells them apart from what compaction can reclaim.
    Unstage(up);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
    RecordBatch(shm_.writer_metrics(), 1, e.request.raw_len, static_cast<uint64_t>(us.count()),
                r.status.ok() || r.status.Is(engine::Code::kPreconditionFailed) ? 0 : 1);
    Post(e.slot, Completion{e.token, r.seq, r.status.code(), r.existed});
  }

  void LargeAbort(const QueueEntry& e) {
    auto it = uploads_.find(UploadKey{e.slot, e.token});
    if (it == uploads_.end()) return;
    if (it->second.failure.ok()) writer_.AbortLarge(it->second.engine_id);
    Unstage(it->second);
    uploads_.erase(it);
    shm_.writer_metrics().large_aborted.fetch_add(1);
  }

  // Drops uploads whose worker is gone (its slot has another generation or is free).
  void AbortOrphanedUploads() {
    for (auto it = uploads_.begin(); it != uploads_.end();) {
      const SlotInfo& slot = shm_.slot(it->first.slot);
      const bool alive = (slot.generation.load() & 0xFFFFFFu) == TokenGeneration(it->first.token) &&
                         slot.state.load() != static_cast<uint32_t>(SlotState::kFree);
      if (alive) {
        ++it;
        continue;
      }
      if (it->second.failure.ok()) writer_.AbortLarge(it->second.engine_id);
      Unstage(it->second);
      shm_.writer_metrics().large_aborted.fetch_add(1);
      KINGX_LOG_INFO("writer: aborted a large upload of slot %u (its worker is gone)", it->first.slot);
      it = uploads_.erase(it);
    }
  }

  void Post(uint32_t slot, const Completion& c) {
    if (slot >= shm_.slot_count()) return;  // only memory corruption produces this
    if (!overflow_[slot].empty() || !shm_.completions(slot).TryPost(c)) {
      overflow_[slot].push_back(c);
    }
    wake_[slot] = true;
  }

  bool HasOverflow() const {
    for (const auto& q : overflow_) if (!q.empty()) return true;
    return false;
  }

  // Moves completions that did not fit into their rings; drops those of a
  // previous occupant of the slot.
  void PostOverflow() {
    for (uint32_t slot = 0; slot < overflow_.size(); ++slot) {
      auto& q = overflow_[slot];
      const uint32_t gen = shm_.slot(slot).generation.load() & 0xFFFFFFu;
      while (!q.empty()) {
        if (TokenGeneration(q.front().token) != gen) {
          q.pop_front();
          continue;
        }
        if (!shm_.completions(slot).TryPost(q.front())) break;
        q.pop_front();
        wake_[slot] = true;
      }
    }
  }

  void WakeSlots() {
    for (uint32_t slot = 0; slot < wake_.size(); ++slot) {
      if (!wake_[slot]) continue;
      wake_[slot] = false;
      const uint64_t one = 1;
      ssize_t w = write(shm_.slot_eventfd(slot), &one, sizeof(one));
      (void)w;  // EAGAIN: the counter is saturated, the worker is being woken anyway
    }
  }

  // At rest (iterations that found nothing to write, queued or in flight,
  // for kRestMs), the hint entries the engine buffers (up to ~1 MiB between
  // its writes) go to the hint file, so that a crash at rest loses none. The
  // clock is read only on iterations that found nothing to do: a loaded
  // writer's idle moments (a wake-up with nothing queued) are far shorter,
  // and it never writes the hint this way.
  static constexpr uint64_t kRestMs = 50;
  void FlushHintAtRest(bool idle) {
    if (!idle) {
      idle_since_ms_ = 0;
      return;
    }
    const uint64_t now = NowMs();
    if (idle_since_ms_ == 0) idle_since_ms_ = now;
    else if (now - idle_since_ms_ >= kRestMs) writer_.FlushHint();  // no system call when nothing is buffered
  }

  const Config& config_;
  SharedMemory& shm_;
  WriteQueue& queue_;
  engine::Writer& writer_;
  const WriterHooks& hooks_;
  DiskReport& disk_;  // free space: gauges, /readyz, rate-limited error lines
  BackupCuts& backups_;  // online backups' cuts and pins
  std::vector<QueueEntry> batch_;
  bool held_ = false;  // batch_ was taken and held by hooks_.hold_ops: ProcessBatch goes on with it
  // --sync-depth above 1 under --sync always: fdatasyncs of submitted
  // batches overlap, on the engine's sync threads.
  const bool overlap_syncs_ = config_.sync == engine::SyncMode::kAlways && config_.sync_depth > 1;
  bool synced_here_ = false;  // this loop ran the fdatasync of submitted_: answer it without sleeping
  // --sync interval: when the next interval sync is due (SyncIfDue); the
  // loop's wait ends then. UINT64_MAX: none (other modes).
  uint64_t sync_due_ms_ = UINT64_MAX;
  // --commit-delay-us under --sync always (0: no delay; see DelayCommit).
  const uint32_t commit_delay_us_ =
      config_.sync == engine::SyncMode::kAlways && !config_.read_only ? config_.commit_delay_us : 0;
  size_t last_commit_ops_ = 0;  // writes of the batch submitted last
  std::chrono::steady_clock::time_point last_answered_;  // when ReapFinished last answered a batch
  uint64_t idle_since_ms_ = 0;  // NowMs() of the first of the iterations in a row that found nothing to do (0: none)
  bool split_rest_ = false;  // batch_ is the rest of a split batch (hooks_.hold_ops)
  std::vector<size_t> op_entries_;  // index in batch_ of each op of a batch with large values
  std::vector<engine::WriteOp> ops_;
  std::vector<std::pair<uint32_t, uint64_t>> op_tokens_;  // (slot, token) per op (ApplyBatch)
  // A batch submitted to the engine's pipeline, until it is answered.
  struct Submitted {
    uint64_t ticket = 0;
    std::vector<std::pair<uint32_t, uint64_t>> tokens;  // (slot, token) per op
    uint64_t bytes = 0;
    uint64_t release_position = 0;  // where its ring entries end (they are released together)
    uint64_t release_entries = 0;
    std::chrono::steady_clock::time_point start;
    uint64_t start_ms = 0;  // NowMs() at submission (the heartbeat's clock)
  };
  // Submitted batches not yet answered, oldest first: under --sync always at
  // most one waiting for its fdatasync, and for a moment the synced one
  // before it (the loop writes the next batch, then answers that one); each
  // holds its ring bytes until it is answered.
  std::deque<Submitted> submitted_;
  std::vector<Submitted> spare_submitted_;
  std::vector<engine::WriteResult> results_;
  std::map<UploadKey, LargeUpload> uploads_;
  uint64_t staged_total_ = 0;                              // sum of uploads_[*].staged
  std::vector<std::deque<Completion>> overflow_;          // per slot
  std::vector<bool> wake_;                                // per slot, this iteration
  std::function<void()> answer_synced_;  // hooks_.hold_batch's before_wait: ReapFinished + WakeSlots
};

// Feeds the writer's fsync histogram from the ObservedEnv.
class WriterSyncSink final : public SyncSink {
 public:
  explicit WriterSyncSink(WriterMetrics& stats) : stats_(stats) {}
  void OnSync(uint64_t micros) override { RecordSync(stats_, micros); }

 private:
  WriterMetrics& stats_;
};

}  // namespace

int WaitBeforeSyncDue(int wait_ms, uint64_t now_ms, uint64_t sync_due_ms) {
  if (sync_due_ms <= now_ms) return 0;
  return static_cast<int>(std::min<uint64_t>(static_cast<uint64_t>(wait_ms), sync_due_ms - now_ms));
}

int RunWriter(const Config& config, SharedMemory& shm, bool install_signals, const WriterHooks& hooks,
              engine::Env& base_env) {
  if (install_signals) InstallSignals(shm);
  engine::Options options = config.EngineOptions();
  options.take_lock = false;  // the master holds the data directory's LOCK
  // A finished fdatasync of a submitted batch: the loop answers it.
  options.on_synced = [&shm] { shm.queue().Wake(); };
  options.log = [](const std::string& line) { KINGX_LOG_WARN("engine: %s", line.c_str()); };
  options.log_error = [](const std::string& line) { KINGX_LOG_ERROR("engine: %s", line.c_str()); };
  options.log_debug = [](const std::string& line) { KINGX_LOG_DEBUG("engine: %s", line.c_str()); };

  shm.control().writer_ready.store(0, std::memory_order_release);
  const auto t0 = std::chrono::steady_clock::now();
  // Every file call of the engine goes through `env`: failures are logged
  // (rate-limited), fdatasync times feed kingx_writer_fsync_seconds. It
  // outlives the writer (and the compaction thread the hooks start, which
  // ends before the writer closes).
  WriterSyncSink sink(shm.writer_metrics());
  ObservedEnv env(base_env, "writer", &sink);
  // In --single-process its segment caches share the worker's descriptor
  // limit, within the share the worker keeps for them (WriterShare).
  if (const uint64_t limit = env.OpenFileLimit(); config.single_process && limit != 0) {
    options.max_open_segments =
        static_cast<uint32_t>(std::min<uint64_t>(options.max_open_segments, SegmentCacheBound(limit)));
  }
  auto writer = engine::Writer::Open(env, config.data_dir, options, shm.index());
  if (!writer.ok()) {
    KINGX_LOG_ERROR("writer: cannot open the database in %s: %s", config.data_dir.c_str(),
                    writer.status().ToString().c_str());
    shm.writer_metrics().open_failure.Publish(writer.status().ToString());  // /readyz names it until an open succeeds
    return 1;
  }
  shm.writer_metrics().open_failure.Clear();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  const engine::IndexCounters& counters = shm.index().counters();
  KINGX_LOG_INFO("writer: database %s open in %lld ms: %llu keys, %llu segments", config.data_dir.c_str(),
                 static_cast<long long>(ms), static_cast<unsigned long long>(counters.keys.load()),
                 static_cast<unsigned long long>(counters.segments.load()));
  {
    // The sorted key view (listing) completes in the background; writes go on.
    engine::KeyspaceOptions ko;
    ko.dir = engine::JoinPath(config.data_dir, "keys");
    if (config.read_only) {
      // Kept in the master's scratch directory, never written into <data>/keys:
      // a valid <data>/keys is read where it is (only what it does not cover
      // is read back from the segments), else the view is built from them.
      ko.dir = config.keys_scratch_dir;
      ko.persist = false;
      ko.seed_dir = engine::JoinPath(config.data_dir, "keys");
    }
    ko.log = [](const std::string& line) { KINGX_LOG_WARN("engine: %s", line.c_str()); };
    ko.log_info = [](const std::string& line) { KINGX_LOG_INFO("engine: %s", line.c_str()); };
    if (engine::Status s = (*writer)->StartKeyspace(shm.keyspace(), ko); !s.ok()) {
      KINGX_LOG_ERROR("writer: the sorted key view cannot start (listing answers 503): %s", s.ToString().c_str());
    }
  }
  shm.writer_metrics().read_only.store(0);
  // The disk's state is published before the writer says it is ready, so
  // that /readyz never answers 200 for a writer that opened on a full disk.
  DiskReport disk(shm.writer_metrics(), config.data_dir);
  if (!config.read_only) disk.Tick(**writer, NowMs());
  // Before compaction starts: a backup a previous writer cut keeps its files.
  auto backups = std::make_unique<BackupCuts>(shm, **writer, config.backup_max_ms);
  backups->Repin();
  if (hooks.after_open) hooks.after_open(**writer, config);  // e.g. the compaction thread starts
  shm.writer_metrics().heartbeat_ms.store(NowMs(), std::memory_order_relaxed);  // a predecessor's is stale
  shm.control().writer_ready.store(1, std::memory_order_release);

  int status;
  {
    WriterLoop loop(config, shm, **writer, hooks, disk, *backups);
    status = loop.Run();
  }
  shm.control().writer_ready.store(0, std::memory_order_release);
  if (hooks.before_close) hooks.before_close(**writer);  // e.g. the compaction thread stops
  backups.reset();  // gives its pins back before the Writer goes
  writer->reset();
  KINGX_LOG_INFO("writer: stopped");
  return status;
}

}  // namespace kingx
