#include "engine/segment_cache.h"

#include <atomic>
#include <mutex>
#include <vector>

namespace kingx::engine {

struct SegmentCache::Mapping {
  std::unique_ptr<MappedFile> file;
  // Largest file size seen: bytes below it exist in the file (segments only
  // grow until deleted, and deleted files stay readable through the mapping).
  std::atomic<uint64_t> known_size{0};
};

SegmentCache::SegmentCache(Env& env, std::string dir, uint64_t segment_bytes)
    : env_(env), dir_(std::move(dir)), segment_bytes_(segment_bytes) {}

Result<std::shared_ptr<SegmentCache::Mapping>> SegmentCache::MapSegment(uint32_t id, uint64_t min_bytes) {
  auto mapped = env_.MapReadOnly(JoinPath(dir_, SegmentFileName(id)), std::max(segment_bytes_, min_bytes));
  if (!mapped.ok()) return mapped.status();
  auto m = std::make_shared<Mapping>();
  m->file = std::move(mapped.value());
  auto size = m->file->FileSize();
  if (!size.ok()) return size.status();
  m->known_size.store(size.value(), std::memory_order_relaxed);
  std::unique_lock lock(mu_);
  auto& slot = maps_[id];
  // Another thread may have mapped it meanwhile; keep the larger mapping.
  if (slot && slot->file->mapped_bytes() >= m->file->mapped_bytes()) return slot;
  slot = m;
  return m;
}

Result<SegmentSpan> SegmentCache::Read(uint32_t id, uint64_t offset, uint64_t n) {
  const uint64_t end = offset + n;
  if (end < offset) return Status::Corruption("record location overflows");
  std::shared_ptr<Mapping> m;
  {
    std::shared_lock lock(mu_);
    auto it = maps_.find(id);
    if (it != maps_.end()) m = it->second;
  }
  // Bounded: at most one fresh map and one remap.
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (!m) {
      auto r = MapSegment(id, end);
      if (!r.ok()) return r.status();
      m = std::move(r.value());
    }
    uint64_t known = m->known_size.load(std::memory_order_relaxed);
    if (end > known) {
      auto size = m->file->FileSize();
      if (!size.ok()) return size.status();
      known = size.value();
      uint64_t prev = m->known_size.load(std::memory_order_relaxed);
      while (prev < known && !m->known_size.compare_exchange_weak(prev, known, std::memory_order_relaxed)) {
      }
      if (end > known) return Status::Corruption("record extends past the end of segment " + std::to_string(id));
    }
    if (end <= m->file->mapped_bytes()) {
      const char* base = m->file->data();
      uint64_t readable = std::min<uint64_t>(known, m->file->mapped_bytes());
      return SegmentSpan{base + offset, readable - offset, m};
    }
    m.reset();  // the file outgrew the mapping: map it again, larger
  }
  return Status::IOError("segment " + std::to_string(id) + " keeps outgrowing its mapping");
}

Result<RecordRef> SegmentCache::ReadRecord(Location loc, const RecordLimits& limits) {
  const uint32_t seg = LocationSegment(loc);
  const uint64_t off = LocationOffset(loc);
  auto head = Read(seg, off, kRecordHeaderBytes);
  if (!head.ok()) return head.status();
  RecordRef ref;
  // Parse with all readable bytes; if the record lies past what is known,
  // read again for its full length (refreshes the file size).
  Status s = DecodeRecordHeader(head->data, head->available, limits, &ref.header);
  if (!s.ok()) {
    // Distinguish "past the known end" from a bad header: decode against an
    // unbounded length, then ask for the full record.
    s = DecodeRecordHeader(head->data, ~size_t{0} >> 1, limits, &ref.header);
    if (!s.ok()) return s;
    auto full = Read(seg, off, ref.header.total_bytes());
    if (!full.ok()) return full.status();
    head = std::move(full);
  }
  ref.record = head->data;
  ref.key = std::string_view(head->data + kRecordHeaderBytes, ref.header.key_len);
  ref.holder = std::move(head->holder);
  return ref;
}

void SegmentCache::Forget(uint32_t id) {
  std::unique_lock lock(mu_);
  maps_.erase(id);
}

void SegmentCache::DropMissing() {
  std::vector<uint32_t> ids;
  {
    std::shared_lock lock(mu_);
    for (auto& [id, m] : maps_) ids.push_back(id);
  }
  for (uint32_t id : ids) {
    auto size = env_.FileSize(JoinPath(dir_, SegmentFileName(id)));
    if (!size.ok() && size.status().Is(Code::kNotFound)) Forget(id);
  }
}

void SegmentCache::Clear() {
  std::unique_lock lock(mu_);
  maps_.clear();
}

}  // namespace kingx::engine
