// The writer's segment life cycle: creating the active segment, sealing it
// (rotation), syncing it, and the read-only state after a failed sync.
#include <chrono>

#include "engine/kill_point.h"
#include "engine/writer_impl.h"

namespace kingx::engine {

Status Writer::Impl::CreateActiveSegment() {
  if (next_segment_id_ > kMaxSegmentId) return Status::NoSpace("segment ids exhausted");
  const uint32_t id = next_segment_id_++;
  const std::string path = JoinPath(dir_, SegmentFileName(id));
  auto file = env_.OpenFile(path, OpenMode::kCreateExclusive);
  if (!file.ok()) return file.status();
  char header[kSegmentHeaderBytes];
  SegmentHeader h;
  h.seed = seed_;
  h.segment_id = id;
  h.seq_floor = next_seq_;
  EncodeSegmentHeader(h, header);
  Status s = file.value()->Append(std::string_view(header, sizeof header));
  KINGX_KILL_POINT("rotate.after_create");
  if (s.ok()) s = file.value()->Sync();
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
    file.value().reset();
    env_.RemoveFile(path).ok();
    env_.RemoveFile(JoinPath(dir_, HintFileName(id))).ok();
    if (s.Is(Code::kIOError)) TurnReadOnly(s);  // an fsync may have failed: stop
    return s;
  }
  KINGX_KILL_POINT("rotate.after_dir_sync");
  active_ = std::move(file.value());
  active_id_ = id;
  active_size_ = kSegmentHeaderBytes;
  active_hint_ = std::move(hint);
  unsynced_ = false;
  SegmentStats& st = segments_[id];
  st.id = id;
  st.bytes = active_size_;
  st.active = true;
  PublishCounters();
  return Status::OK();
}

Status Writer::Impl::Rotate() {
  if (active_) {
    Status s = SyncActive();
    if (!s.ok()) return s;
    if (active_hint_) {
      Status hs = active_hint_->Finish(active_size_);
      if (!hs.ok()) {
        // Only an accelerator: recovery scans a segment whose hint is bad.
        Log("rotation: hint of segment " + std::to_string(active_id_) + " not written: " + hs.ToString());
      }
    }
    segments_[active_id_].active = false;
    active_.reset();
    active_hint_.reset();
  }
  return CreateActiveSegment();
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
  read_only_cause_ = cause;
  Log("writer: read-only until reopened after " + cause.ToString());
}

void Writer::Impl::Log(const std::string& line) const {
  if (options_.log) options_.log(line);
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

Result<KeyState> Writer::Impl::FindKey(std::string_view key, uint64_t hash) {
  Candidates c;
  Status s = index_.LookupForWriter(hash, &c);
  if (!s.ok()) return s;
  for (uint32_t i = 0; i < c.count; ++i) {
    auto ref = cache_.ReadRecord(c.locations[i], limits_);
    if (!ref.ok()) continue;  // unreadable: cannot be this key's record as far as we know
    if (ref->key != key) continue;
    KeyState st;
    st.exists = ref->header.type == RecordType::kPut;
    st.loc = c.locations[i];
    st.seq = ref->header.seq;
    st.total_bytes = ref->header.total_bytes();
    return st;
  }
  return KeyState{};
}

}  // namespace kingx::engine
