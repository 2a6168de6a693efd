// Deleting dead segments beside a running compaction pass (see compaction_dead.h).
#include "engine/compaction_dead.h"

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "engine/hash.h"
#include "engine/writer_impl.h"

namespace kingx::engine {
namespace {

// The index's candidates for hash (under the writer's mutex when a lock-free
// lookup gives up).
Status LookupHash(Writer::Impl& w, uint64_t hash, Candidates* c) {
  Status s = w.index_.Lookup(hash, c);
  if (s.Is(Code::kBusy)) {
    std::lock_guard lock(w.mu_);
    s = w.index_.LookupForWriter(hash, c);
  }
  return s;
}

// True when every record of segment `id` (file_bytes long) may go with it:
// no put of it is indexed, and every tombstone's key has a newer indexed put.
// False also when anything in it cannot be read or checked (a page of its
// mapping that faults too: its bytes are read from copies taken under the
// mapping guard).
bool AllDroppable(Writer::Impl& w, uint32_t id, uint64_t file_bytes, uint64_t seed) {
  auto span = w.cache_.Read(id, 0, file_bytes);
  if (!span.ok()) return false;
  const char* data = span->data;
  std::string buf(std::max<uint64_t>(kSegmentHeaderBytes, kRecordHeaderBytes), '\0');
  const size_t header_bytes = std::min<uint64_t>(kSegmentHeaderBytes, file_bytes);
  if (!w.cache_.CopyMapped(span->holder, data, header_bytes, buf.data()).ok()) return false;
  SegmentHeader sh;
  if (!DecodeSegmentHeader(buf.data(), header_bytes, &sh).ok() || sh.segment_id != id || sh.seed != seed) return false;
  for (uint64_t off = kSegmentHeaderBytes; off < file_bytes;) {
    const char* p = data + off;
    const uint64_t avail = file_bytes - off;
    if (!w.cache_.CopyMapped(span->holder, p, std::min<uint64_t>(kRecordHeaderBytes, avail), buf.data()).ok())
      return false;
    RecordHeader h;
    if (!DecodeRecordHeader(buf.data(), avail, w.limits_, &h).ok()) return false;
    if (buf.size() < kRecordHeaderBytes + h.key_len) buf.resize(kRecordHeaderBytes + h.key_len);
    if (!w.cache_.CopyMapped(span->holder, p, kRecordHeaderBytes + h.key_len, buf.data()).ok()) return false;
    const std::string_view key(buf.data() + kRecordHeaderBytes, h.key_len);
    Candidates c;
    if (!LookupHash(w, KeyHash(seed, key), &c).ok()) return false;
    const Location here = MakeLocation(id, off);
    bool newer_put = false;
    for (uint32_t i = 0; i < c.count; ++i) {
      if (c.locations[i] == here) return false;  // a live put: the accounting was wrong
      if (h.type != RecordType::kDelete) continue;
      auto ref = w.cache_.ReadRecord(c.locations[i], w.limits_);
      if (!ref.ok()) continue;
      auto same = w.cache_.KeyIs(ref.value(), key);
      if (!same.ok()) return false;
      if (!same.value()) continue;
      newer_put = ref->header.type == RecordType::kPut && ref->header.seq > h.seq;
      break;
    }
    if (h.type == RecordType::kDelete && !newer_put) return false;
    off += h.total_bytes();
  }
  return true;
}

}  // namespace

Status DeleteDeadBesidePass(Writer::Impl& w, std::set<uint32_t>* rejected, DeadBesideResult* result) {
  *result = DeadBesideResult{};
  struct Candidate {
    uint32_t id;
    uint64_t bytes;
  };
  std::vector<Candidate> claimed;
  uint64_t seed = 0;
  {
    std::lock_guard lock(w.mu_);
    if (w.read_only_ || w.options_.sync != SyncMode::kAlways) return Status::OK();
    seed = w.seed_;
    for (const auto& [id, s] : w.segments_) {
      if (s.active || s.missing || s.live_bytes != 0 || w.deleting_.count(id) != 0) continue;
      if (w.compacting_.count(id) != 0 || rejected->count(id) != 0) {
        ++result->left;
        continue;
      }
      if (w.pinned_ids_.count(id) != 0) continue;  // a backup's cut: a pass after its release
      if (w.pins_ > 0) {
        ++result->view_pinned;
        continue;
      }
      claimed.push_back(Candidate{id, s.bytes});
      w.compacting_.insert(id);
    }
  }
  if (claimed.empty()) return Status::OK();
  // Read without the mutex; the claim keeps the running pass (and the next)
  // away from these segments, and a segment never gets a live record back.
  std::vector<uint32_t> go;
  for (const Candidate& c : claimed) {
    if (AllDroppable(w, c.id, c.bytes, seed)) {
      go.push_back(c.id);
    } else {
      rejected->insert(c.id);
      ++result->left;
    }
  }
  const auto release = [&w, &claimed]() {
    std::lock_guard lock(w.mu_);
    for (const Candidate& c : claimed) w.compacting_.erase(c.id);
  };
  {
    std::lock_guard lock(w.mu_);
    std::erase_if(go, [&w](uint32_t id) {
      const auto it = w.segments_.find(id);
      return it == w.segments_.end() || it->second.live_bytes != 0 || !w.BeginDelete(id);
    });
  }
  if (go.empty()) {
    release();
    return Status::OK();
  }
  if (w.manifest_) {
    // Durable before the unlinks, as every deletion (Pass::DeleteReady); on a
    // full disk the space comes first.
    Status ms = w.manifest_->RemoveSegments(go);
    if (!ms.ok() && !ms.Is(Code::kNoSpace)) {
      {
        std::lock_guard lock(w.mu_);
        for (const uint32_t id : go) w.EndDelete(id);
      }
      release();
      return ms;
    }
  }
  Status result_status;
  for (const uint32_t id : go) {
    Status s = result_status.ok() ? w.env_.RemoveFile(JoinPath(w.dir_, SegmentFileName(id))) : result_status;
    if (!s.ok() && !s.Is(Code::kNotFound)) {
      // Recorded as removed but still there: the next open removes it.
      std::lock_guard lock(w.mu_);
      w.EndDelete(id);
      result_status = s;
      continue;
    }
    w.env_.RemoveFile(JoinPath(w.dir_, HintFileName(id))).ok();  // an orphan hint is removed by recovery
    std::lock_guard lock(w.mu_);
    result->bytes_deleted += w.ForgetUnlinked(id);
    ++result->deleted;
    result->deleted_ids.push_back(id);
    w.PublishCounters();
  }
  release();
  return result_status;
}

}  // namespace kingx::engine
