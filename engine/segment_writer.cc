// The writer's segment life cycle: creating the active segment, sealing it
// (rotation), syncing it, finishing its hint at a clean close, and the
// read-only state after a failed sync.
#include <chrono>

#include "engine/compaction_policy.h"
#include "engine/hash.h"
#include "engine/kill_point.h"
#include "engine/writer_impl.h"

namespace kingx::engine {

Result<uint32_t> Writer::Impl::AllocateSegmentId() {
  for (uint64_t tried = 0; tried < kMaxSegmentId; ++tried) {
    const uint32_t id = next_segment_id_ == 0 ? 1 : next_segment_id_;
    next_segment_id_ = id >= kMaxSegmentId ? 1 : id + 1;
    if (segments_.count(id) != 0 || pending_ids_.count(id) != 0 || pinned_ids_.count(id) != 0) continue;
    pending_ids_.insert(id);
    return id;
  }
  return Status::NoSpace("no free segment id: " + std::to_string(segments_.size()) + " segments exist");
}

void Writer::Impl::RecordBirth(uint32_t id, uint64_t sealed_bytes) {
  const uint64_t birth = next_birth_++;
  births_[id] = ManifestSegment{birth, sealed_bytes};
  if (manifest_) manifest_->AddSegment(id, birth, sealed_bytes).ok();
}

void Writer::Impl::RecordSeal(uint32_t id, uint64_t bytes) {
  auto it = births_.find(id);
  if (it == births_.end()) return;
  it->second.sealed_bytes = bytes;
  if (manifest_) manifest_->SealSegment(id, bytes).ok();
}

Status Writer::Impl::ReserveSeqs(uint64_t count) {
  if (read_only_) return Status::ReadOnly("writes stopped after: " + read_only_cause_.ToString());
  if (!manifest_) {
    auto m = Manifest::Create(env_, dir_, seed_, births_, next_seq_ + count + kSeqReserve);
    if (!m.ok()) {
      if (m.status().Is(Code::kNoSpace)) disk_.NoSpace(0);  // the disk is full, as after a refused record
      return m.status();
    }
    manifest_ = std::move(m.value());
    return Status::OK();
  }
  if (next_seq_ + count <= manifest_->seq_high_water()) return Status::OK();
  Status s = manifest_->SetSeqHighWater(next_seq_ + count + kSeqReserve);
  if (s.Is(Code::kNoSpace)) disk_.NoSpace(0);
  else if (!s.ok()) TurnReadOnly(s);  // the mark's durability is unknown: never retry
  return s;
}

void Writer::Impl::CountRefused(std::span<const WriteResult> results) {
  uint64_t refused = 0;
  for (const WriteResult& r : results) refused += r.status.Is(Code::kNoSpace) ? 1 : 0;
  if (refused != 0) disk_.Refused(refused);
}

const Status& Writer::Impl::CountRefused(const Status& s) {
  if (s.Is(Code::kNoSpace)) disk_.Refused(1);
  return s;
}

Status Writer::Impl::CreateActiveSegment() {
  // The sync thread's covered offsets and descriptors were the previous
  // segment's (it is idle: the pipeline drains before anything rotates).
  if (sync_) {
    sync_->Restart();
    sync_->SetSpareFiles({});
  }
  sync_files_id_ = 0;
  Status rs = ReserveSeqs(1);
  if (!rs.ok()) return rs;
  auto allocated = AllocateSegmentId();
  if (!allocated.ok()) return allocated.status();
  const uint32_t id = allocated.value();
  const std::string path = JoinPath(dir_, SegmentFileName(id));
  auto file = env_.OpenFile(path, OpenMode::kCreateExclusive);
  if (!file.ok()) {
    ReleaseSegmentId(id);
    return file.status();
  }
  char header[kSegmentHeaderBytes];
  SegmentHeader h;
  h.seed = seed_;
  h.segment_id = id;
  // Each creation consumes a seq, so the newest appendable segment is the one
  // with the highest seq_floor (ids are reused and say nothing of age).
  h.seq_floor = next_seq_++;
  EncodeSegmentHeader(h, header);
  Status s = file.value()->Append(std::string_view(header, sizeof header));
  KINGX_KILL_POINT("rotate.after_create");
  // The header is durable before the directory entry is: the first step of
  // preallocated room (zeros after it, then an fdatasync of the file) makes
  // it so, and only without that step does it take an fdatasync of its own.
  if (s.ok() && !StartRoom(id, kSegmentHeaderBytes)) s = file.value()->Sync();
  std::unique_ptr<HintWriter> hint;
  if (s.ok()) {
    // Optional: without a hint, recovery scans this segment.
    auto hw = HintWriter::Create(env_, JoinPath(dir_, HintFileName(id)), id);
    if (hw.ok()) hint = std::move(hw.value());
    else Log("segment " + std::to_string(id) + " gets no hint file: " + hw.status().ToString());
  }
  if (s.ok()) s = env_.SyncDir(dir_);
  if (!s.ok()) {
    // Nothing was published in it: remove what exists (best effort; recovery
    // also drops a segment whose header is torn).
    if (extender_) extender_->Stop();
    file.value().reset();
    env_.RemoveFile(path).ok();
    env_.RemoveFile(JoinPath(dir_, HintFileName(id))).ok();
    ReleaseSegmentId(id);
    if (s.Is(Code::kIOError)) TurnReadOnly(s);  // an fsync may have failed: stop
    return s;
  }
  KINGX_KILL_POINT("rotate.after_dir_sync");
  // Not synced: a lost add only means this segment is not checked for at the
  // next open (its next sync comes with the next removal or seq mark).
  RecordBirth(id, 0);
  active_ = std::move(file.value());
  active_id_ = id;
  active_size_ = kSegmentHeaderBytes;
  active_hint_ = std::move(hint);
  unsynced_ = false;
  SegmentStats& st = segments_[id];
  st.id = id;
  st.bytes = active_size_;
  st.active = true;
  st.max_seq = 0;
  ReleaseSegmentId(id);  // in segments_ now
  PublishCounters();
  return Status::OK();
}

bool Writer::Impl::StartRoom(uint32_t id, uint64_t size) {
  if (!extender_) return false;
  auto file = env_.OpenFile(JoinPath(dir_, SegmentFileName(id)), OpenMode::kReadWrite);
  if (!file.ok()) {
    Log("segment " + std::to_string(id) + " gets no preallocated room: " + file.status().ToString());
    return false;
  }
  extender_->Start(std::move(file.value()), size, options_.segment_bytes);
  return extender_->room_end() > size;
}

uint64_t Writer::Impl::RoomStepBytes() {
  constexpr uint64_t kMinStepBytes = 64 << 10;
  const uint64_t live = index_.counters().live_bytes.load(std::memory_order_relaxed);
  return std::min(options_.room_bytes, std::max(kMinStepBytes, live / 256));
}

Status Writer::Impl::CutRoom() {
  if (!extender_) return Status::OK();  // no room was ever made
  auto size = active_->Size();
  if (!size.ok()) return size.status();
  const uint64_t end = active_size_ + inflight_bytes_;
  if (size.value() <= end) return Status::OK();
  KINGX_KILL_POINT("seal.before_cut");
  Status s = active_->Truncate(end);
  if (s.ok() && extender_) extender_->Truncated(end);
  return s;
}

Status Writer::Impl::Rotate() {
  if (active_) {
    // The preallocated room goes first: a sealed segment ends at its last
    // record (the sync below makes the cut durable before the hint is
    // finished or the next segment exists, so a crash before it leaves this
    // segment active, and its zero tail is cut by recovery).
    if (extender_) extender_->Stop();
    Status s = CutRoom();
    if (!s.ok()) {
      TurnReadOnly(s);  // what the file holds past its records is unknown now
      return s;
    }
    KINGX_KILL_POINT("seal.after_cut");
    s = SyncActive();
    if (!s.ok()) return s;
    KINGX_KILL_POINT("seal.before_hint");
    if (active_hint_) {
      Status hs = active_hint_->Finish(active_size_);
      if (!hs.ok()) {
        // Only an accelerator: recovery scans a segment without a hint. An
        // unfinished one is removed, so that a sealed segment's bad hint
        // always means damage.
        Log("rotation: hint of segment " + std::to_string(active_id_) + " not written: " + hs.ToString());
        active_hint_.reset();
        env_.RemoveFile(JoinPath(dir_, HintFileName(active_id_))).ok();
      }
    }
    // Its cut is durable and its hint finished (or removed): from here on a
    // crash leaves it sealed. Not before the hint is: a sealed segment's
    // unfinished hint reads as damage, while the newest segment without a
    // seal is read as the active one (a finished hint then seals it).
    KINGX_KILL_POINT("seal.before_seal");
    RecordSeal(active_id_, active_size_);
    SegmentStats& sealed = segments_[active_id_];
    sealed.active = false;
    // Writes may have killed everything it holds while it was active
    // (CountIfEmptied leaves the active segment alone): now sealed, it is
    // the dead-only pass's.
    if (sealed.live_bytes == 0 && sealed.bytes >= kDeleteScannedBytes)
      emptied_segments_.fetch_add(1, std::memory_order_relaxed);
    active_.reset();
    active_hint_.reset();
  }
  return CreateActiveSegment();
}

void Writer::Impl::FinishActiveHintAtClose() {
  if (!active_hint_) return;
  // A hint may say how long the segment is only once that length is
  // durable: not with bytes no fdatasync covered, nor after a failed one.
  if (read_only_ || unsynced_ || !active_) {
    active_hint_->Flush().ok();
    return;
  }
  KINGX_KILL_POINT("close.before_hint");
  Status s = active_hint_->Finish(active_size_);
  if (!s.ok()) {
    // The next open scans the segment as after a crash (the active
    // segment's hint is never read for its entries).
    LogError("close: hint of active segment " + std::to_string(active_id_) + " not finished (" + s.ToString() +
             "); until the next open, a cut of the segment cannot be told from a torn tail");
    active_hint_.reset();
    env_.RemoveFile(JoinPath(dir_, HintFileName(active_id_))).ok();
  }
}

Status Writer::Impl::SyncActive() {
  if (read_only_) return Status::ReadOnly("writes stopped after: " + read_only_cause_.ToString());
  if (!active_) return Status::OK();
  KINGX_KILL_POINT("append.before_sync");
  auto start = std::chrono::steady_clock::now();
  Status s = active_->Sync();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
  ++syncs_;
  last_sync_us_ = static_cast<uint64_t>(us);
  total_sync_us_ += last_sync_us_;
  if (!s.ok()) {
    // Linux may have dropped the dirty pages and cleared the error: a retry
    // could "succeed" without the data. Never retry; stop writing.
    TurnReadOnly(s);
    return s;
  }
  KINGX_KILL_POINT("append.after_sync");
  unsynced_ = false;
  return Status::OK();
}

void Writer::Impl::TurnReadOnly(const Status& cause) {
  if (read_only_) return;
  read_only_ = true;
  read_only_flag_.store(true, std::memory_order_relaxed);
  read_only_cause_ = cause;
  Log("writer: read-only until reopened after " + cause.ToString());
}

Status Writer::Impl::UnindexedOutcome(const Status& index_error) {
  return Status::OutcomeUnknown("the record is in the file but the index refused it (" + index_error.ToString() +
                                "): it may or may not be applied; writes stop until the writer is reopened");
}

Status Writer::Impl::SyncFailedOutcome(const Status& sync_error) {
  return Status::OutcomeUnknown("the write reached the file but its fdatasync failed (" + sync_error.ToString() +
                                "): it may or may not be applied");
}

void Writer::Impl::Log(const std::string& line) const {
  if (options_.log) options_.log(line);
}

void Writer::Impl::LogError(const std::string& line) const {
  if (options_.log_error) options_.log_error(line);
  else if (options_.log) options_.log(line);
}

void Writer::Impl::LogDebug(const std::string& line) const {
  if (options_.log_debug) options_.log_debug(line);
}

void Writer::Impl::PublishCounters() {
  uint64_t live = 0, dead = 0;
  for (const auto& [id, st] : segments_) {
    live += st.live_bytes;
    dead += st.dead_bytes;
  }
  IndexCounters& c = index_.counters();
  c.keys.store(keys_, std::memory_order_relaxed);
  c.live_bytes.store(live, std::memory_order_relaxed);
  c.dead_bytes.store(dead, std::memory_order_relaxed);
  c.segments.store(segments_.size(), std::memory_order_relaxed);
}

void Writer::Impl::PublishCountersMoved(uint64_t live_added, uint64_t live_removed, uint64_t dead_added) {
  IndexCounters& c = index_.counters();
  // Only this thread (the holder of mu_) stores them.
  const uint64_t live = c.live_bytes.load(std::memory_order_relaxed) + live_added - live_removed;
  const uint64_t dead = c.dead_bytes.load(std::memory_order_relaxed) + dead_added;
  c.keys.store(keys_, std::memory_order_relaxed);
  c.live_bytes.store(live, std::memory_order_relaxed);
  c.dead_bytes.store(dead, std::memory_order_relaxed);
  c.segments.store(segments_.size(), std::memory_order_relaxed);
}

void Writer::Impl::PrefetchLookups(std::span<const WriteOp> ops, LookupWindow& window) {
  const size_t n = std::min(ops.size(), kLookupWindow);
  // Three passes: every slot's fetch starts before the first probe waits for
  // one, then every record's before FindKey compares the first key. The
  // records' fetches start together, under one hold of the cache's lock: a
  // locked instruction between two of them would wait for the page walk of
  // the one before, and at 1M keys nearly every record's page misses the TLB.
  for (size_t i = 0; i < n; ++i) {
    window.hashes[i] = KeyHash(seed_, ops[i].key);
    index_.PrefetchForWriter(window.hashes[i]);
  }
  Location records[kLookupWindow * kMaxCandidates];
  size_t found = 0;
  size_t longest_key = 0;
  for (size_t i = 0; i < n; ++i) {
    const Candidates& c = window.candidates[i];
    window.looked_up[i] = index_.LookupForWriter(window.hashes[i], &window.candidates[i]).ok();
    if (!window.looked_up[i]) continue;  // FindKey reports it
    for (uint32_t j = 0; j < c.count; ++j) records[found++] = c.locations[j];
    if (c.count != 0) longest_key = std::max(longest_key, ops[i].key.size());
  }
  // What ReadHead reads of each (the longest key of the window for all: at
  // most a line more for a shorter one).
  cache_.PrefetchMany(std::span<const Location>(records, found), kRecordHeaderBytes + longest_key);
}

Result<KeyState> Writer::Impl::FindKey(std::string_view key, uint64_t hash) {
  Candidates c;
  Status s = index_.LookupForWriter(hash, &c);
  if (!s.ok()) return s;
  return ResolveCandidates(key, c);
}

Result<KeyState> Writer::Impl::ResolveCandidates(std::string_view key, const Candidates& c,
                                                 SegmentCache::HeadHold* hold) {
  KeyState damaged;
  // Unreadable is never "absent": a candidate carries the key's 64-bit hash,
  // so a damaged one (or one in a segment file that is missing: the writer
  // never points into a segment it deleted) is taken as this key's newest
  // record, unless another candidate is readably this key's; anything else
  // (no descriptor, no memory, EIO, a page of the mapping that faults) fails
  // the operation. The first damaged candidate is the one kept.
  auto mark_damaged = [&](Location loc, uint64_t total_bytes) {
    if (damaged.damaged) return;
    damaged.damaged = true;
    damaged.exists = true;
    damaged.loc = loc;
    damaged.total_bytes = total_bytes;
  };
  // Returns false when the read failed the operation.
  auto unreadable = [&](const Status& s, Location loc) {
    if (!s.Is(Code::kCorruption) && !s.Is(Code::kNotFound)) return false;
    mark_damaged(loc, 0);
    return true;
  };
  for (uint32_t i = 0; i < c.count; ++i) {
    const Location loc = c.locations[i];
    // The header and the key only: all a candidate that is this key's record
    // is asked for (its seq, type and size).
    RecordHeader header;
    bool same = false;
    if (Status s = cache_.ReadHead(loc, key, limits_, &header, &same, hold); !s.ok()) {
      if (!unreadable(s, loc)) return s;
      continue;
    }
    if (!same) {
      // Another key's record, unless its body (which holds the key) fails:
      // then the key bytes cannot be trusted either. Rare (two keys whose
      // 64-bit hashes agree), so read whole here.
      if (hold != nullptr) hold->Release();  // ReadRecord takes the cache's lock itself
      auto ref = cache_.ReadRecord(loc, limits_);
      if (!ref.ok()) {
        if (!unreadable(ref.status(), loc)) return ref.status();
        continue;
      }
      auto body = cache_.BodyMatches(ref.value());
      if (!body.ok()) return body.status();
      if (!body.value()) mark_damaged(loc, ref->header.total_bytes());
      continue;
    }
    KeyState st;
    st.exists = header.type == RecordType::kPut;
    st.loc = loc;
    st.seq = header.seq;
    st.total_bytes = header.total_bytes();
    return st;
  }
  if (damaged.damaged) return damaged;
  return KeyState{};
}

}  // namespace kingx::engine
