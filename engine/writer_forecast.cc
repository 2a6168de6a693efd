// Writer::Forecast (see writer.h): the accounting a batch would change, read
// from the index and the batches in flight before the batch is decided.
//
// It takes the writer's lock without draining the pipeline: the fdatasync in
// flight goes on while the batch is forecast (the writer loop forecasts
// exactly when it is busiest, and a drain would make it wait that sync out).
// Under the lock nothing in flight is published, so the index, the published
// counters and the in-flight batches form one consistent state: the
// forecast starts from those counters and adds the in-flight batches' effects
// first, as their publication will.
#include <string_view>

#include "engine/hash.h"
#include "engine/writer_impl.h"

namespace kingx::engine {

Writer::BatchForecast Writer::Forecast(std::span<const WriteOp> ops) {
  Impl& w = *impl_;
  BatchForecast f;
  w.mu_.LockKeepingPipeline();
  std::lock_guard<std::mutex> unlock_at_return(w.mu_.raw(), std::adopt_lock);
  const IndexCounters& c = w.index_.counters();
  f.index_live_bytes = c.live_bytes.load(std::memory_order_relaxed);
  f.index_dead_bytes = c.dead_bytes.load(std::memory_order_relaxed);

  // The newest state of each key the batches in flight or earlier ops of
  // this batch wrote, which the index does not show yet.
  BatchOverlay& overlay = w.forecast_overlay_;
  overlay.Reset(w.inflight_ops_ + ops.size());
  // What the index says is kept, per op, for the batch's decision
  // (DecideBatch), so that it neither hashes nor looks the same keys up again.
  w.forecast_lookups_.resize(ops.size());
  for (const auto& b : w.inflight_) {
    for (const PendingRecord& p : b->pending) {
      // Decided already: what it superseded is in p.old_total.
      if (p.type == RecordType::kPut) {
        f.put_bytes += p.total;
      } else {
        f.dead_bytes += p.total;
      }
      f.dead_bytes += p.old_total;
      f.killed_live_bytes += p.old_total;
      overlay.Set(p.hash, p.key, StateAfter(p));
    }
  }
  // This window's hashes and index candidates: the index does not change
  // while the lock is held here, so they stand for FindKey's own probe.
  Impl::LookupWindow& window = w.lookup_window_;
  // The segment cache's shared lock, taken once for a window's candidate
  // reads rather than once per record (PrefetchLookups takes it its own way).
  SegmentCache::HeadHold hold(w.cache_);
  for (size_t i = 0; i < ops.size(); ++i) {
    const size_t j = i % Impl::kLookupWindow;
    if (j == 0) {
      hold.Release();
      w.PrefetchLookups(ops.subspan(i), window);
    }
    const WriteOp& op = ops[i];
    const bool put = op.type == OpType::kPut;
    const uint64_t hash = window.hashes[j];
    Impl::ForecastLookup& lookup = w.forecast_lookups_[i];
    lookup.key = op.key;
    lookup.hash = hash;
    lookup.from_index = false;
    KeyState cur;
    if (const KeyState* earlier = overlay.Find(hash, op.key)) {
      cur = *earlier;
    } else {
      auto found = w.FindKey(op.key, window, j, &hold);
      if (!found.ok()) continue;  // unreadable: counts nothing (writer.h)
      cur = found.value();
      lookup.from_index = true;
      lookup.state = cur;
    }
    if (!put && !cur.exists) continue;  // a delete of a missing key writes nothing
    KeyState next;
    next.exists = put;
    next.total_bytes =
        put ? RecordBytes(op.key.size(), op.content_type.size(), op.stored.size()) : RecordBytes(op.key.size(), 0, 0);
    if (put) {
      f.put_bytes += next.total_bytes;
    } else {
      f.dead_bytes += next.total_bytes;  // a tombstone serves no read
    }
    if (cur.exists) {
      f.dead_bytes += cur.total_bytes;
      f.killed_live_bytes += cur.total_bytes;
    }
    overlay.Set(hash, op.key, next);
  }
  w.forecast_found_valid_ = true;
  return f;
}

}  // namespace kingx::engine
