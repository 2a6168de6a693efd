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
  b.copy = engine::CopyBeyondShare(compactor_.copy_bytes(), b.live);
  b.backlog = b.reclaimable + b.staged + b.copy;
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
    next_ = Next::kForecast;
    if (!rest_pending_) batch_held_ = false;  // a new batch: a time bound of its own
    if (disarmed_) {
      if (thread_.progress_passes() == disarmed_progress_) {
        next_ = Next::kWhole;
        return false;
      }
      disarmed_ = false;
    }
    // The batch about to be taken turns up to its bytes into dead or staged
    // bytes: hold it when that would pass the bound and compaction has
    // something to reclaim, or a copy larger than its share stands (its
    // install and its inputs' deletion make the room).
    const Backlog b = Measure();
    if (b.backlog + b.queued <= b.bounds.begin_bytes ||
        (b.reclaimable <= b.bounds.end_bytes && b.copy == 0) || !CompactionCanHelp())
      return false;
    Begin(now, b, b.bounds.end_bytes);
  } else {
    const Backlog b = Measure();
    if (b.reclaimable <= target_ && !CopyHolds(b)) {
      End(now, "released");
      next_ = Next::kForecast;  // the batch is measured again (HoldBatch): room was made for it
      return false;
    }
    if (!CompactionCanHelp()) {
      End(now, "compaction cannot help");
      next_ = Next::kWhole;
      return false;
    }
    const engine::CompactionThread::CatchUpCounts seen = thread_.catch_up_counts();
    const uint64_t passes = seen.passes, progress = seen.progress, view_pinned = seen.view_pinned;
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
      if (!helped && passes <= begun_before_) {
        // The pass began before this stall: it picked with an earlier
        // stall's target, or before the batch that made this one was
        // published. Its verdict is not this stall's: another pass.
        thread_.TriggerCatchUp(target_);
      } else if (!helped && pin_held_it && now - began_ < view_pin_wait_) {
        // The pin ends within milliseconds (the key view's catch-up after an
        // open); ended now, the stall would let writes run unheld until a
        // later pass makes progress. Retried after a slice, not at once, so
        // that passes do not spin while the pin lasts.
        retry_catch_up_ = true;
      } else if (!helped && b.copy > 0) {
        // A pass is copying beside its inputs (an ordinary pass that ran
        // before this one could, or a later one): its install and the
        // deletion of its inputs are progress to come. Held on, with
        // another catch-up pass after it.
        thread_.TriggerCatchUp(target_);
      } else if (!helped) {
        // Compaction can do no more now: waiting longer would only delay
        // writes. Above the end bound no stall begins again until a pass
        // makes progress, and the batch goes whole; under it (a stall for
        // one batch's forecast, whose room compaction could not make) the
        // batch goes as far as what compaction left allows, and the
        // batches after it are forecast as usual.
        if (b.reclaimable > b.bounds.end_bytes) {
          disarmed_ = true;
          disarmed_progress_ = thread_.progress_passes();
          next_ = Next::kWhole;
        } else {
          next_ = Next::kFit;
        }
        End(now, "compaction made no progress");
        return false;
      } else {
        thread_.TriggerCatchUp(target_);  // still over the bound: another pass
      }
    }
    if (now - since_ >= max_stall_) {
      // The held batch goes whole: holding any part of it longer would risk
      // its writes' storage timeout. The batches after it are forecast.
      End(now, "time bound");
      next_ = Next::kWhole;
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
  if (!MayForecast()) return false;
  return batch_held_ || WantsForecast(Measure());
}

bool WriteStall::MayForecast() const {
  return !holding_ && next_ != Next::kWhole && !disarmed_ && CompactionCanHelp();
}

bool WriteStall::WantsForecast(const Backlog& b) const {
  // However little compaction has left to reclaim: a batch may kill any
  // share of the live data, which no probe-free measure bounds (the queue's
  // bytes are the batch's own, not what its keys hold). With nothing to
  // reclaim no room can be made, and a new batch goes whatever it kills; a
  // batch held or split before is forecast whatever is left (compaction may
  // just have reclaimed everything for it, and its rest needs the room its
  // first part's dead bytes take).
  return batch_held_ || b.reclaimable > 0 || b.copy > 0;
}

bool WriteStall::CopyHolds(const Backlog& b) const {
  return b.copy > 0 && (copy_wait_ || b.backlog + b.queued > b.bounds.begin_bytes);
}

namespace {

// Where a batch (or one of its prefixes) leaves the bound, from its forecast.
struct Room {
  uint64_t reclaimable = 0;  // now, against the forecast's counters
  uint64_t added = 0;        // its dead bytes + staged + the queue behind the batch
  uint64_t begin_after = 0;  // the begin bound for the live bytes it leaves
  uint64_t end_bytes = 0;    // the end bound for the live bytes now
  uint64_t copy = 0;         // a copy in flight beyond its share (engine::CopyBeyondShare), now
  // After it, with `reclaimable` bytes left to reclaim and no copy beside it: within the bound.
  bool FitsWith(uint64_t reclaimable_bytes) const { return reclaimable_bytes + added <= begin_after; }
  // Now, beside the copy in flight.
  bool Fits() const { return FitsWith(reclaimable + copy); }
};

// The forecast counts from the counters it read beside the batches in
// flight (whose effects it holds); a batch published since is in the
// counters Measure read too, so those are not used.
Room RoomFor(const engine::Writer::BatchForecast& f, uint64_t kept, uint64_t staged, uint64_t behind,
             uint64_t copy) {
  Room r;
  r.copy = copy;
  r.reclaimable = f.index_dead_bytes > kept ? f.index_dead_bytes - kept : 0;
  r.end_bytes = engine::WriteStallBoundsFor(f.index_live_bytes, kWriteStallFloorBytes).end_bytes;
  const uint64_t live_before = f.index_live_bytes + f.put_bytes;
  const uint64_t live_after = live_before - std::min(live_before, f.killed_live_bytes);
  r.begin_after = engine::WriteStallBoundsFor(live_after, kWriteStallFloorBytes).begin_bytes;
  r.added = f.dead_bytes + staged + behind;
  return r;
}

// The longest prefix, of 1 .. ops - 1 ops, that `fits` (by bisection: a
// prefix that fits followed by a longer one that does not), or 1 when even
// the first op alone does not.
size_t LongestFitting(size_t ops, const std::function<bool(size_t)>& fits) {
  if (ops <= 1 || !fits(1)) return 1;
  size_t lo = 1, hi = ops;  // fits(lo); the whole batch (hi) does not
  // Bounded: the interval halves each round.
  while (hi - lo > 1) {
    const size_t mid = lo + (hi - lo) / 2;
    (fits(mid) ? lo : hi) = mid;
  }
  return lo;
}

}  // namespace

size_t WriteStall::HoldBatch(size_t ops, uint64_t stored_bytes, const Forecaster& forecast) {
  const Next next = next_;
  if (ops == 0 || !MayForecast()) return Goes(ops, ops);
  // One measure for the question and the answer (each takes the
  // compactor's and the queue's locks).
  const Backlog b = Measure();
  if (!WantsForecast(b)) return Goes(ops, ops);
  next_ = Next::kForecast;
  // The rest of this batch is not counted as queued behind a prefix: it is
  // forecast itself before it goes.
  const uint64_t behind = b.queued - std::min(b.queued, stored_bytes);
  const auto room = [&](size_t first_ops) {
    return RoomFor(forecast(first_ops), b.kept, b.staged, behind, b.copy);
  };
  Room r = room(ops);
  if (r.Fits()) return Goes(ops, ops);
  if (next == Next::kFit) {
    // Compaction got as low as it can for now: what fits what it left goes
    // at once, at least one op; the rest may wait for the passes that
    // reclaim what this part kills.
    return Goes(LongestFitting(ops, [&](size_t k) { return room(k).Fits(); }), ops);
  }
  size_t go = ops;
  if (!r.FitsWith(0)) {
    // The batch alone passes the bound, whatever compaction reclaims before
    // it: split it after the longest prefix that would fit with nothing
    // left to reclaim (at least its first op). Its ops are independent
    // requests that share a group commit; the rest goes once compaction
    // reclaimed what this prefix kills.
    go = LongestFitting(ops, [&](size_t k) { return room(k).FitsWith(0); });
    r = room(go);
    if (r.Fits()) return Goes(go, ops);
  }
  // Compaction makes room first: down to what leaves the batch (or its
  // prefix) under the bound, or the usual end bound if that is lower. When
  // one op alone passes the bound, as low as compaction gets (a pass that
  // makes no progress ends the stall, and that op goes).
  const uint64_t target = std::min(r.end_bytes, r.begin_after - std::min(r.begin_after, r.added));
  Backlog held = b;
  held.reclaimable = r.reclaimable;
  held.backlog = r.reclaimable + b.staged + b.copy;
  if (r.reclaimable <= target) {
    // Within the bound but for the copy in flight (Fits counts it, FitsWith
    // does not): the batch waits for its install and its inputs' deletion,
    // not for compaction to reclaim more.
    if (r.copy == 0) return Goes(go, ops);
    Begin(Clock::now(), held, target);
    copy_wait_ = true;
    return 0;
  }
  Begin(Clock::now(), held, target);
  return 0;
}

size_t WriteStall::Goes(size_t go, size_t ops) {
  next_ = Next::kForecast;
  rest_pending_ = go < ops;
  if (rest_pending_) KINGX_LOG_DEBUG("write stall: a batch goes in parts, %zu of its %zu ops first", go, ops);
  if (!rest_pending_) {
    batch_held_ = false;
  } else if (!batch_held_) {
    // The rest's stalls count from now.
    batch_held_ = true;
    since_ = Clock::now();
  }
  return go;
}

void WriteStall::Begin(Clock::time_point now, const Backlog& b, uint64_t target_bytes) {
  holding_ = true;
  target_ = target_bytes;
  began_ = now;
  if (!batch_held_) {
    batch_held_ = true;
    since_ = now;
  }
  const engine::CompactionThread::CatchUpCounts seen = thread_.catch_up_counts();
  seen_catch_up_ = seen.passes;
  seen_catch_up_progress_ = seen.progress;
  seen_catch_up_view_pinned_ = seen.view_pinned;
  retry_catch_up_ = false;
  // Passes begun so far (before the trigger) are not this stall's: a pass
  // reads its target when it picks, after it begins.
  begun_before_ = seen.started;
  thread_.TriggerCatchUp(target_);
  shm_.writer_metrics().compaction_stalls.fetch_add(1, std::memory_order_relaxed);
  ++window_stalls_;
  MaybeLog(now, b);
}

void WriteStall::End(Clock::time_point now, const char* why) {
  holding_ = false;
  copy_wait_ = false;
  const auto us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(now - began_).count());
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
