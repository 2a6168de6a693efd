// Writer::Apply: group commit. Decide every op in order (conditions see the
// earlier ops of the batch), encode all records into one buffer, append it
// with one write, one fdatasync (SyncMode::kAlways), publish the index
// updates (each on its own: readers never wait), then report. A batch that would overflow the active
// segment is committed in parts around the rotation.
#include <algorithm>
#include <cassert>

#include "engine/compaction_policy.h"
#include "engine/compress.h"
#include "engine/hash.h"
#include "engine/kill_point.h"
#include "engine/writer_impl.h"

namespace kingx::engine {
namespace {

Status ValidateOp(const WriteOp& op, const Options& o) {
  if (op.key.empty()) return Status::InvalidArgument("empty key");
  if (op.key.size() > o.max_key_bytes) return Status::InvalidArgument("key longer than max_key_bytes");
  if (op.type == OpType::kDelete) {
    if (op.condition.kind == Condition::Kind::kIfAbsent)
      return Status::InvalidArgument("a delete cannot be conditioned on the key's absence");
    return Status::OK();
  }
  if (op.type != OpType::kPut) return Status::InvalidArgument("unknown op type");
  if (op.content_type.size() > kMaxMetaBytes) return Status::InvalidArgument("content type longer than 255 bytes");
  if (op.raw_len > o.max_value_bytes) return Status::TooLarge("value larger than max_value_bytes");
  if (op.codec == Codec::kRaw) {
    if (op.stored.size() != op.raw_len) return Status::InvalidArgument("raw value size differs from raw_len");
  } else if (op.codec == Codec::kZstd) {
    if (op.stored.size() > MaxStoredBytes(Codec::kZstd, op.raw_len) || (op.raw_len > 0 && op.stored.empty()))
      return Status::InvalidArgument("compressed value size out of range for raw_len");
  } else {
    return Status::InvalidArgument("unknown codec");
  }
  return Status::OK();
}

Status CheckCondition(const Condition& c, const KeyState& cur) {
  // A damaged newest record: its version (and even whether it is a delete)
  // is unknown, so only unconditional writes, which replace it, go ahead.
  if (cur.damaged && c.kind != Condition::Kind::kNone)
    return Status::Corruption("the key's newest record is damaged: its version is unknown");
  switch (c.kind) {
    case Condition::Kind::kNone: return Status::OK();
    case Condition::Kind::kIfAbsent:
      return cur.exists ? Status::PreconditionFailed("key exists") : Status::OK();
    case Condition::Kind::kIfMatch:
      if (!cur.exists) return Status::PreconditionFailed("key does not exist");
      if (cur.seq != c.seq) return Status::PreconditionFailed("key has another version");
      return Status::OK();
  }
  return Status::InvalidArgument("unknown condition");
}

}  // namespace

void PublishWritten(Writer::Impl& w, std::span<const PendingRecord> pending, std::span<WriteResult> results,
                    uint64_t bytes) {
  // The index slots the updates below probe, fetched while the hint and
  // the key view take the batch (the lookups that read them ran before the
  // batch's write and fdatasync).
  for (const PendingRecord& p : pending) w.index_.PrefetchForWriter(p.hash);
  w.active_size_ += bytes;
  SegmentStats& active = w.segments_[w.active_id_];
  active.bytes = w.active_size_;
  if (!pending.empty()) active.max_seq = std::max(active.max_seq, pending.back().seq);
  if (w.active_hint_) {
    for (const PendingRecord& p : pending) {
      w.active_hint_->Add(HintEntry{p.seq, LocationOffset(p.loc), p.total, p.type, p.key});
    }
    // Buffered (the active segment's hint is rebuilt by every open anyway); a
    // failed hint write only costs a scan at recovery (its checksum will not match).
    w.active_hint_->FlushIfLarge().ok();
  }
  ++w.batches_;
  w.last_batch_ops_ = pending.size();

  KINGX_KILL_POINT("append.before_publish");
  if (w.keyspace_) {
    // Into the sorted view before the index: a key a reader can see is
    // listable. old_loc is where the index holds the key now (the loop below
    // swaps it for this put's): the view needs no entry for such a put.
    std::vector<KeyPut>& puts = w.keyspace_batch_;
    puts.clear();
    for (const PendingRecord& p : pending) {
      if (p.type != RecordType::kPut) continue;
      puts.push_back(KeyPut{
          KeyEntry{p.key, p.seq, LocationSegment(p.loc), LocationOffset(p.loc), p.raw_len, p.content_type},
          p.old_loc != 0});
    }
    w.keyspace_->Add(puts);
  }
  // What the loop below changes in segments_, for the counters.
  uint64_t live_added = 0, live_removed = 0, dead_added = 0;
  // The stats of the segments the batch's old records lie in, by id modulo
  // kSeen: most batches kill records in a handful of segments (a
  // std::map element stays where it is; nothing is erased in the loop).
  constexpr size_t kSeen = 16;
  uint32_t seen_id[kSeen];
  SegmentStats* seen[kSeen];
  uint32_t seen_valid = 0;  // bit s: place s holds an entry (nothing else is initialized per batch)
  auto stats_of = [&](uint32_t id) -> SegmentStats& {
    const size_t slot = id % kSeen;
    if ((seen_valid >> slot & 1) == 0 || seen_id[slot] != id) {
      seen_id[slot] = id;
      seen[slot] = &w.segments_[id];
      seen_valid |= uint32_t{1} << slot;
    }
    return *seen[slot];
  };
  // Each index update is visible on its own (readers never wait for a
  // batch): every op of the batch is in flight until all are answered below.
  for (const PendingRecord& p : pending) {
    WriteResult& r = results[p.op];
    r.seq = p.seq;
    r.existed = p.old_loc != 0;
    if (p.old_loc != 0) {
      SegmentStats& old = stats_of(LocationSegment(p.old_loc));
      const uint64_t killed = std::min(old.live_bytes, p.old_total);
      old.live_bytes -= killed;
      old.dead_bytes += p.old_total;
      live_removed += killed;
      dead_added += p.old_total;
      w.CountIfEmptied(LocationSegment(p.old_loc), old, p.old_total);
    }
    if (p.type == RecordType::kPut) {
      active.live_bytes += p.total;
      live_added += p.total;
      if (p.old_loc != 0 && w.index_.Replace(p.hash, p.old_loc, p.loc)) continue;
      Status is = w.index_.Insert(p.hash, p.loc);
      if (!is.ok()) {
        // In the file but not indexed: the next open finds the record (unless
        // a power loss drops it first), so "failed" would be false. Stop.
        r.status = Writer::Impl::UnindexedOutcome(is);
        w.TurnReadOnly(is);
        continue;
      }
      if (p.old_loc == 0) ++w.keys_;
    } else {
      active.dead_bytes += p.total;
      dead_added += p.total;
      w.index_.Remove(p.hash, p.old_loc);
      --w.keys_;
    }
  }
  if (w.keyspace_) w.keyspace_->Published(pending.back().seq);
  if (w.emptied_now_.empty()) {
    w.PublishCountersMoved(live_added, live_removed, dead_added);
  } else {
    w.DeleteEmptiedLocked();  // forgets segments: their bytes leave the sum
    w.PublishCounters();
  }
}

bool WritePending(Writer::Impl& w, std::span<const PendingRecord> pending, std::span<WriteResult> results) {
  if (w.read_only_) {
    // Turned read-only after these records were encoded (a rotation drained
    // the pipeline into a failed fdatasync): nothing is written after that,
    // least of all where the failed batches' bytes lie, which a sync started
    // before the failure may still be making durable.
    for (const PendingRecord& p : pending)
      results[p.op].status = Status::ReadOnly("writes stopped after: " + w.read_only_cause_.ToString());
    return false;
  }
  KINGX_KILL_POINT("append.before_write");
  const uint64_t at = w.active_size_ + w.inflight_bytes_;
  if (w.extender_) w.extender_->BeforeWrite(at + w.batch_.size());
  Status s = w.active_->PWrite(at, w.batch_);
  if (!s.ok()) {
    // Drop the partial bytes so the log stays a sequence of valid records
    // (the room past them goes too; the next write's AfterWrite makes more).
    if (w.extender_) w.extender_->Paused();
    Status t = w.active_->Truncate(at);
    if (t.ok() && w.extender_) w.extender_->Truncated(at);
    if (!t.ok()) w.TurnReadOnly(t);
    if (s.Is(Code::kNoSpace)) w.disk_.NoSpace(w.batch_.size());
    for (const PendingRecord& p : pending) results[p.op].status = s;
    return false;
  }
  w.disk_.Consumed(w.batch_.size());
  if (w.extender_) w.extender_->AfterWrite(at + w.batch_.size());
  KINGX_KILL_POINT("append.after_write");
  return true;
}

void CommitPending(Writer::Impl& w, std::vector<PendingRecord>& pending, std::span<WriteResult> results) {
  if (pending.empty()) return;
  assert(w.inflight_.empty());
  auto done = [&] {
    pending.clear();
    w.batch_.clear();
  };
  if (!WritePending(w, pending, results)) return done();
  if (w.options_.sync == SyncMode::kAlways) {
    Status s = w.SyncActive();
    if (!s.ok()) {
      // The records are in the file, maybe on disk: the next open may find
      // them (the page cache kept them) or not (a power loss, or pages the
      // kernel dropped). Neither "failed" nor "done" would be true.
      const Status unknown = Writer::Impl::SyncFailedOutcome(s);
      for (const PendingRecord& p : pending) results[p.op].status = unknown;
      return done();
    }
  } else {
    w.unsynced_ = true;
  }
  PublishWritten(w, pending, results, w.batch_.size());
  done();
}

// RotateActiveForShare for the active segment with `used` bytes (written,
// in flight and in this batch) before a record of record_bytes. The records
// in flight and earlier in this batch are in no live count yet (they are
// published after their fdatasync): counted as live here, so that the large
// records of one batch do not go into one segment together. The cheap size
// test first: this runs per op. *active caches the active segment's stats
// (null: not looked up yet; the caller resets it when the active segment
// changes; a std::map element stays where it is while others come and go).
static bool ActiveShareTooLarge(const Writer::Impl& w, uint64_t used, uint64_t record_bytes,
                                const SegmentStats** active) {
  if (!w.active_ || used < std::min(kShareRotateMinBytes, w.options_.segment_bytes)) return false;
  if (*active == nullptr) {
    const auto it = w.segments_.find(w.active_id_);
    if (it == w.segments_.end()) return false;
    *active = &it->second;
  }
  const uint64_t live = w.index_.counters().live_bytes.load(std::memory_order_relaxed);
  const uint64_t unpublished = used - std::min(used, w.active_size_);
  return RotateActiveForShare(used, (*active)->live_bytes + unpublished, record_bytes, live,
                              w.options_.segment_bytes);
}

void DecideBatch(Writer::Impl& w, std::span<const WriteOp> ops, std::span<WriteResult> results,
                 std::vector<PendingRecord>& pending, bool pipelined) {
  // The state of keys written earlier in this batch or by a batch in
  // flight, which the index does not show yet. Filled only when an op needs
  // it: while every op so far is one Writer::Forecast looked up in the index
  // (the same key at the same place of its batch, the forecast still
  // valid), the batch's ops so far are the forecast's, and the forecast
  // found that no batch in flight and no earlier op wrote the key (the
  // batches in flight only shrank since). The first op that is not is
  // decided against the overlay filled as it would have been all along: the
  // batches in flight, then the batch's ops so far (nothing was committed
  // in between: a commit ends the forecast's validity for good).
  BatchOverlay& overlay = w.overlay_;
  bool overlay_filled = false;
  auto fill_overlay = [&] {
    overlay_filled = true;
    overlay.Reset(w.inflight_ops_ + ops.size());
    for (const auto& earlier : w.inflight_) {
      for (const PendingRecord& p : earlier->pending) overlay.Set(p.hash, p.key, StateAfter(p));
    }
    for (const PendingRecord& p : pending) overlay.Set(p.hash, p.key, StateAfter(p));
  };
  // Writer::Forecast's lookup of op i, or null. Its key is usually the
  // op's own view (the caller forecast the ops it submits).
  auto forecast_of = [&](size_t i) -> const Writer::Impl::ForecastLookup* {
    if (!w.forecast_found_valid_ || i >= w.forecast_lookups_.size()) return nullptr;
    const Writer::Impl::ForecastLookup& f = w.forecast_lookups_[i];
    const std::string_view key = ops[i].key;
    const bool same = f.key.size() == key.size() && (f.key.data() == key.data() || f.key == key);
    return same ? &f : nullptr;
  };
  w.batch_.clear();
  // The room for puts (DiskSpace::Room), read at the batch's first put and
  // again whenever the batch's bytes so far are no longer what it is compared
  // with: a batch of deletes never reads it, as it never asked Admit.
  uint64_t room = 0;
  bool room_read = false;

  // The hashes and index candidates of ops [window, window + kLookupWindow),
  // when PrefetchLookups looked them up (not while Writer::Forecast's lookups
  // stand in for it). The candidates are the index's until a commit in the
  // middle of the batch changes it (lookups_current false).
  constexpr size_t kWindow = Writer::Impl::kLookupWindow;
  Writer::Impl::LookupWindow& lookups = w.lookup_window_;
  size_t window = SIZE_MAX;
  bool lookups_current = false;
  const SegmentStats* active_stats = nullptr;  // ActiveShareTooLarge's, until a rotation
  for (size_t i = 0; i < ops.size(); ++i) {
    // Writer::Forecast looked the batch's keys up already, when it ran.
    if (i % kWindow == 0 && !w.forecast_found_valid_) {
      w.PrefetchLookups(ops.subspan(i), lookups);
      window = i;
      lookups_current = true;
    }
    const WriteOp& op = ops[i];
    WriteResult& r = results[i];
    if (w.read_only_) {
      r.status = Status::ReadOnly("writes stopped after: " + w.read_only_cause_.ToString());
      continue;
    }
    // r.status is OK until an error is assigned (no assignment of OK per op).
    if (Status valid = ValidateOp(op, w.options_); !valid.ok()) {
      r.status = std::move(valid);
      continue;
    }
    const std::string_view meta = op.type == OpType::kPut ? op.content_type : std::string_view();
    const std::string_view stored = op.type == OpType::kPut ? op.stored : std::string_view();
    const uint64_t total = RecordBytes(op.key.size(), meta.size(), stored.size());

    const bool in_window = window <= i && i - window < kWindow;
    const Writer::Impl::ForecastLookup* forecast = forecast_of(i);
    const uint64_t hash = forecast ? forecast->hash : in_window ? lookups.hashes[i - window] : KeyHash(w.seed_, op.key);
    // The key's state and the op's verdict; decided again after a commit in
    // the middle of the batch (the earlier ops may have failed there).
    KeyState cur;
    auto decide = [&]() -> Status {
      // A commit in the middle of the batch ends the forecast's validity.
      const Writer::Impl::ForecastLookup* known = w.forecast_found_valid_ ? forecast : nullptr;
      if (!overlay_filled && !(known && known->from_index)) fill_overlay();
      if (const KeyState* earlier = overlay_filled ? overlay.Find(hash, op.key) : nullptr) {
        cur = *earlier;
      } else if (known && known->from_index) {
        cur = known->state;  // Writer::Forecast's lookup: nothing changed the key since
      } else {
        auto found = in_window && lookups_current ? w.FindKey(op.key, lookups, i - window) : w.FindKey(op.key, hash);
        if (!found.ok()) return found.status();
        cur = found.value();
      }
      Status s = CheckCondition(op.condition, cur);
      if (!s.ok()) return s;
      if (op.type == OpType::kDelete && !cur.exists) return Status::NotFound("key does not exist");
      return Status::OK();
    };
    if (Status decided = decide(); !decided.ok()) {
      r.status = std::move(decided);
      continue;
    }
    // The reserve: a put may not take the room compaction needs (deletes may).
    if (op.type == OpType::kPut) {
      if (!room_read) {
        room = w.disk_.Room();
        room_read = true;
      }
      if (w.batch_.size() + total > room) {
        // Past the room read for the batch: Admit measures again if it may,
        // and counts the refusal.
        const bool admitted = w.disk_.Admit(total, w.batch_.size());
        room_read = false;
        if (!admitted) {
          r.status = Status::NoSpace("the disk is full: " + w.disk_.Describe());
          continue;
        }
      }
    }

    // Rotate when this record does not fit (an empty segment takes any record),
    // or when the active segment holds too large a share of the live data
    // (compaction_policy.h: what one compaction input may cost in copies).
    const uint64_t used = w.active_size_ + w.inflight_bytes_ + w.batch_.size();
    if (!w.active_ || (used > kSegmentHeaderBytes && used + total > w.options_.segment_bytes) ||
        ActiveShareTooLarge(w, used, total, &active_stats)) {
      const bool had_earlier = !pending.empty() || !w.inflight_.empty();
      if (pipelined) w.DrainLocked();  // the segment's every record synced and published before it is sealed
      if (w.active_) CommitPending(w, pending, results);
      // The index now holds (or, after a failure, denies) the earlier ops:
      // the overlay is empty (nothing is in flight), and stays filled.
      overlay.Reset(ops.size());
      overlay_filled = true;
      w.forecast_found_valid_ = false;  // the forecast's lookups predate them
      lookups_current = false;          // and so do the window's candidates
      if (w.read_only_) {
        r.status = Status::ReadOnly("writes stopped after: " + w.read_only_cause_.ToString());
        continue;
      }
      r.status = w.Rotate();
      active_stats = nullptr;
      room_read = false;  // what was committed or rotated in is consumed; batch_ starts again
      if (r.status.ok() && had_earlier) r.status = decide();
      if (!r.status.ok()) continue;
    }

    const uint64_t seq = w.next_seq_++;
    const Location loc = MakeLocation(w.active_id_, w.active_size_ + w.inflight_bytes_ + w.batch_.size());
    const RecordType type = op.type == OpType::kPut ? RecordType::kPut : RecordType::kDelete;
    EncodeRecord(seq, type, op.type == OpType::kPut ? op.codec : Codec::kRaw, op.key, meta, stored,
                 op.type == OpType::kPut ? op.raw_len : 0, &w.batch_);
    pending.push_back(PendingRecord{i, hash, loc, cur.exists ? cur.loc : 0, cur.exists ? cur.total_bytes : 0, total,
                                    seq, type, op.key, meta, op.type == OpType::kPut ? op.raw_len : 0});
    if (overlay_filled) overlay.Set(hash, op.key, StateAfter(pending.back()));
  }
  w.forecast_found_valid_ = false;
}

void Writer::Apply(std::span<const WriteOp> ops, std::span<WriteResult> results) {
  assert(ops.size() == results.size());
  Impl& w = *impl_;
  if (w.keyspace_) w.keyspace_->Pace();  // before the lock (see Keyspace::Pace)
  std::lock_guard lock(w.mu_);  // compaction may be installing on its thread; nothing is in flight after it
  for (WriteResult& r : results) r = WriteResult{};
  if (w.read_only_) {
    for (WriteResult& r : results) r.status = Status::ReadOnly("writes stopped after: " + w.read_only_cause_.ToString());
    return;
  }
  // Every seq this batch may consume (its records and a rotation per record)
  // below a durable high-water mark, so that no seq is ever handed out twice.
  if (Status rs = w.ReserveSeqs(2 * ops.size() + 1); !rs.ok()) {
    for (WriteResult& r : results) r.status = rs;
  } else {
    std::vector<PendingRecord>& pending = w.pending_;
    pending.clear();
    DecideBatch(w, ops, results, pending, /*pipelined=*/false);
    CommitPending(w, pending, results);
  }
  w.CountRefused(results);
}

Status Writer::SyncIfDue(uint64_t now_ms, uint64_t* due_ms) {
  Impl& w = *impl_;
  uint64_t unused_due = 0;
  uint64_t& due = due_ms != nullptr ? *due_ms : unused_due;
  due = UINT64_MAX;
  if (w.options_.sync != SyncMode::kInterval) return Status::OK();  // no lock: nothing in flight waits for it
  std::lock_guard lock(w.mu_);
  if (w.read_only_) return Status::ReadOnly("writes stopped after: " + w.read_only_cause_.ToString());
  if (!w.unsynced_) {
    w.last_sync_ms_ = now_ms;
  } else if (now_ms - w.last_sync_ms_ >= w.options_.sync_interval_ms) {
    w.last_sync_ms_ = now_ms;
    Status s = w.SyncActive();
    if (!s.ok()) return s;
  }
  due = w.last_sync_ms_ + w.options_.sync_interval_ms;
  return Status::OK();
}

Status Writer::Sync() {
  std::lock_guard lock(impl_->mu_);
  return impl_->SyncActive();
}

void Writer::FlushHint() {
  Impl& w = *impl_;
  w.mu_.LockKeepingPipeline();  // only the hint's buffer: batches may stay in flight
  std::lock_guard<std::mutex> unlock_at_return(w.mu_.raw(), std::adopt_lock);
  if (w.active_hint_) w.active_hint_->Flush().ok();
}

bool Writer::read_only() const {
  // Set under mu_ by whichever thread turns the writer read-only (compaction too).
  return impl_->read_only_flag_.load(std::memory_order_relaxed);
}

const std::string& Writer::dir() const { return impl_->dir_; }

DiskState Writer::disk_state() const { return impl_->disk_.state(); }

void Writer::RefreshDiskState() { impl_->disk_.Refresh(); }

std::string Writer::DescribeDisk() const { return impl_->disk_.Describe(); }

void Writer::Impl::CountIfEmptied(uint32_t id, const SegmentStats& s, uint64_t killed_bytes) {
  if (s.live_bytes != 0 || id == active_id_ || s.bytes < kDeleteScannedBytes) return;
  // Its one record was the killed one: no tombstone in it to keep.
  if (s.bytes == kSegmentHeaderBytes + killed_bytes) emptied_now_.push_back(id);
  else emptied_segments_.fetch_add(1, std::memory_order_relaxed);
}

uint64_t Writer::emptied_segments() const { return impl_->emptied_segments_.load(std::memory_order_relaxed); }

uint64_t Writer::unpublished_bytes() const { return impl_->unpublished_bytes_.load(std::memory_order_relaxed); }

WriterStats Writer::Stats() const {
  const Impl& w = *impl_;
  std::lock_guard lock(w.mu_);
  WriterStats s;
  s.keys = w.keys_;
  for (const auto& [id, st] : w.segments_) {
    s.live_bytes += st.live_bytes;
    s.dead_bytes += st.dead_bytes;
    s.per_segment.push_back(st);
    // A read-only open appends nowhere: its active one is the segment the
    // next writing open appends to (recovery picked it as the log's end).
    if (w.read_only_tail_id_ != 0 && id == w.read_only_tail_id_) s.per_segment.back().active = true;
  }
  s.segments = w.segments_.size();
  s.corruptions = w.index_.counters().corruptions.load(std::memory_order_relaxed);
  s.missing_segments = w.missing_segments_;
  s.next_seq = w.next_seq_;
  s.batches = w.batches_;
  s.last_batch_ops = w.last_batch_ops_;
  s.syncs = w.syncs_;
  s.last_sync_us = w.last_sync_us_;
  s.total_sync_us = w.total_sync_us_;
  return s;
}

Writer::~Writer() {
  Impl& w = *impl_;
  { std::lock_guard lock(w.mu_); }  // finishes every batch in flight
  w.sync_.reset();
  w.extender_.reset();  // the room stays: the next open cuts it
  w.keyspace_.reset();  // stops its thread (it reads the index and the segments)
  for (auto& [id, large] : w.large_) {
    large.file.reset();
    w.env_.RemoveFile(large.path).ok();
  }
  w.large_.clear();
  if (!w.read_only_ && w.active_ && w.unsynced_) w.SyncActive().ok();
  w.FinishActiveHintAtClose();
  if (w.manifest_ && !w.read_only_) w.manifest_->Flush().ok();
}

}  // namespace kingx::engine
