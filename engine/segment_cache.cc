#include "engine/segment_cache.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <mutex>

#include "engine/mapping_guard.h"

namespace kingx::engine {
namespace {

constexpr uint64_t kMinGrowthRoom = 1 << 20;

size_t Bound(Env& env, size_t wanted) {
  size_t bound = std::max(wanted, SegmentCache::kMinOpen);
  const uint64_t limit = env.OpenFileLimit();
  if (limit != 0) bound = std::min<size_t>(bound, std::max<uint64_t>(limit / 4, SegmentCache::kMinOpen));
  return bound;
}

// The decode step ReadRecord and ReadHeadMapped share: one guarded read at
// src of guard_bytes (at least the header) copies the record header into head
// and runs also() under the same guard (it may read head and the bytes after
// it); then the header is decoded against the `readable` bytes from src (its
// lengths and checksum). False when a page could not be read (nothing
// decoded: the caller marks the mapping faulted); otherwise true with
// *decoded the decoder's verdict.
template <class Also>
bool ReadAndDecodeHeader(const char* src, uint64_t guard_bytes, uint64_t readable, const RecordLimits& limits,
                         char (&head)[kRecordHeaderBytes], RecordHeader* header, Status* decoded, Also&& also) {
  auto read = [&] {
    std::memcpy(head, src, kRecordHeaderBytes);
    also();
  };
  if (!GuardMappedRead(src, guard_bytes, read)) return false;
  *decoded = DecodeRecordHeader(head, readable, limits, header);
  return true;
}

}  // namespace

struct SegmentCache::Mapping {
  std::unique_ptr<MappedFile> file;
  uint32_t id = 0;
  // Set once a read of its bytes raised SIGBUS: no byte of it is touched again.
  std::atomic<bool> faulted{false};
  // Largest file size seen: bytes below it exist in the file (a segment only
  // grows, apart from the writer cutting a torn or failed tail that nothing
  // points to; a deleted file stays readable through its mapping).
  std::atomic<uint64_t> known_size{0};
  // Second chance: set by every read, cleared by the clock hand.
  std::atomic<bool> referenced{true};

  // Bytes from the start that may be read through the mapping: known to
  // exist and mapped.
  uint64_t readable() const {
    return std::min<uint64_t>(known_size.load(std::memory_order_relaxed), file->mapped_bytes());
  }
};

SegmentCache::SegmentCache(Env& env, std::string dir, uint64_t segment_bytes, size_t max_open)
    : env_(env), dir_(std::move(dir)), segment_bytes_(segment_bytes), max_open_(Bound(env, max_open)) {}

size_t SegmentCache::cached() const {
  std::shared_lock lock(mu_);
  return maps_.size();
}

void SegmentCache::MakeRoomLocked() {
  // Bounded: each step either drops an entry, clears a reference bit, or
  // skips a stale clock slot; two sweeps clear every bit.
  for (size_t steps = 0; maps_.size() >= max_open_ && !clock_.empty() && steps < 3 * clock_.size() + 3; ++steps) {
    if (hand_ >= clock_.size()) hand_ = 0;
    const uint32_t id = clock_[hand_];
    auto it = maps_.find(id);
    if (it == maps_.end()) {  // forgotten meanwhile: drop the stale slot
      clock_.erase(clock_.begin() + static_cast<std::ptrdiff_t>(hand_));
      continue;
    }
    if (it->second->referenced.exchange(false, std::memory_order_relaxed)) {
      ++hand_;
      continue;
    }
    maps_.erase(it);
    clock_.erase(clock_.begin() + static_cast<std::ptrdiff_t>(hand_));
    evictions_.fetch_add(1, std::memory_order_relaxed);
  }
  if (clock_.size() > 2 * max_open_ + 16) {
    std::erase_if(clock_, [&](uint32_t id) { return maps_.count(id) == 0; });
    hand_ = 0;
  }
}

Result<std::shared_ptr<SegmentCache::Mapping>> SegmentCache::MapSegment(uint32_t id, uint64_t min_bytes) {
  const std::string path = JoinPath(dir_, SegmentFileName(id));
  auto size = env_.FileSize(path);
  if (!size.ok()) return size.status();
  uint64_t want = size.value();
  if (want < segment_bytes_) want = std::min(segment_bytes_, want + std::max(want / 4, kMinGrowthRoom));
  auto mapped = env_.MapReadOnly(path, std::max(want, min_bytes));
  if (!mapped.ok()) return mapped.status();
  auto m = std::make_shared<Mapping>();
  m->file = std::move(mapped.value());
  m->id = id;
  auto now = m->file->FileSize();
  if (!now.ok()) return now.status();
  m->known_size.store(now.value(), std::memory_order_relaxed);
  std::unique_lock lock(mu_);
  auto it = maps_.find(id);
  if (it != maps_.end()) {
    // Another thread mapped it meanwhile; keep the larger mapping of the same file.
    if (it->second->file->identity() == m->file->identity() &&
        it->second->file->mapped_bytes() >= m->file->mapped_bytes())
      return it->second;
    it->second = m;
    return m;
  }
  MakeRoomLocked();
  maps_.emplace(id, m);
  clock_.push_back(id);
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
    m->referenced.store(true, std::memory_order_relaxed);
    if (m->faulted.load(std::memory_order_relaxed)) return FaultedError(id);
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
    if (end <= m->file->mapped_bytes()) return SegmentSpan{m->file->data() + offset, m->readable() - offset, m};
    m.reset();  // the file outgrew the mapping: map it again, larger
  }
  return Status::IOError("segment " + std::to_string(id) + " keeps outgrowing its mapping");
}

Result<RecordRef> SegmentCache::ReadRecord(Location loc, const RecordLimits& limits, char* copy,
                                           size_t copy_bytes) {
  const uint32_t seg = LocationSegment(loc);
  const uint64_t off = LocationOffset(loc);
  auto head = Read(seg, off, kRecordHeaderBytes);
  if (!head.ok()) return head.status();
  RecordRef ref;
  // The header is decoded from a copy taken under the guard; a small record
  // comes with it in the same guarded call. Its lengths are not checked yet
  // (the checksum is verified below, on the copy): the copy is only bounded
  // by the room given and by the bytes known to exist.
  char header[kRecordHeaderBytes];
  const uint64_t room = std::min<uint64_t>(copy_bytes, head->available);
  const char* const src = head->data;
  bool whole = false;
  auto copy_whole = [&] {
    if (copy == nullptr) return;
    const uint64_t total = ReadRecordHeaderUnchecked(header).total_bytes();
    if (total > room) return;
    std::memcpy(copy, src, total);
    whole = true;
  };
  // Parse with all readable bytes; if the record lies past what is known,
  // read again for its full length (refreshes the file size).
  Status s;
  if (!ReadAndDecodeHeader(src, std::max<uint64_t>(kRecordHeaderBytes, room), head->available, limits, header,
                           &ref.header, &s, copy_whole)) {
    MarkFaulted(head->holder);
    return FaultedError(seg);
  }
  if (!s.ok()) {
    // Distinguish "past the known end" from a bad header: decode against an
    // unbounded length, then ask for the full record.
    s = DecodeRecordHeader(header, ~size_t{0} >> 1, limits, &ref.header);
    if (!s.ok()) return s;
    auto full = Read(seg, off, ref.header.total_bytes());
    if (!full.ok()) return full.status();
    head = std::move(full);
  }
  ref.record = head->data;
  if (whole) ref.copy = copy;
  ref.key = std::string_view((whole ? copy : head->data) + kRecordHeaderBytes, ref.header.key_len);
  ref.holder = std::move(head->holder);
  return ref;
}

Status SegmentCache::ReadHead(Location loc, std::string_view key, const RecordLimits& limits, RecordHeader* header,
                              bool* same_key, HeadHold* hold) {
  assert(hold == nullptr || &hold->cache_ == this);
  Status s;
  if (ReadHeadMapped(loc, key, limits, header, same_key, &s, hold)) return s;
  auto ref = ReadRecord(loc, limits);
  if (!ref.ok()) return ref.status();
  auto same = KeyIs(ref.value(), key);
  if (!same.ok()) return same.status();
  *header = ref->header;
  *same_key = same.value();
  return Status::OK();
}

bool SegmentCache::ReadHeadMapped(Location loc, std::string_view key, const RecordLimits& limits,
                                  RecordHeader* header, bool* same_key, Status* status, HeadHold* hold) {
  const uint32_t seg = LocationSegment(loc);
  const uint64_t off = LocationOffset(loc);
  const uint64_t want = kRecordHeaderBytes + key.size();
  char head[kRecordHeaderBytes];
  bool key_bytes_equal = false;
  bool newly_faulted = false;
  // The shared lock keeps the mapping cached (Forget, eviction and a remap
  // replace it only under the exclusive lock), so no reference to it is
  // taken.
  std::shared_lock<std::shared_mutex> own(mu_, std::defer_lock);
  std::shared_lock<std::shared_mutex>& lock = hold != nullptr ? hold->lock_ : own;
  if (!lock.owns_lock()) lock.lock();
  // The general way (false) takes the lock its own way.
  auto general = [&] {
    lock.unlock();
    return false;
  };
  {
    auto it = maps_.find(seg);
    if (it == maps_.end()) return general();
    Mapping& m = *it->second;
    if (m.faulted.load(std::memory_order_relaxed)) return general();  // the general way answers the fault
    const uint64_t readable = m.readable();
    if (off > readable || readable - off < want) return general();
    m.referenced.store(true, std::memory_order_relaxed);
    // key.size() bytes after the header, whatever the record's key length:
    // they lie below the known size, and only equal lengths count below.
    const char* const src = m.file->data() + off;
    auto compare_key = [&] { key_bytes_equal = std::memcmp(src + kRecordHeaderBytes, key.data(), key.size()) == 0; };
    Status decoded;
    if (!ReadAndDecodeHeader(src, want, readable - off, limits, head, header, &decoded, compare_key)) {
      newly_faulted = MarkMappingFaulted(m);
    } else if (!decoded.ok()) {
      return general();  // damaged, or the record lies past the known size: ReadRecord tells which
    } else {
      *same_key = key_bytes_equal && header->key_len == key.size();
      *status = Status::OK();
      return true;
    }
  }
  // Outside the lock: the reporter may be anything.
  lock.unlock();
  if (newly_faulted && report_fault_) report_fault_(seg);
  *status = FaultedError(seg);
  return true;
}

bool SegmentCache::MarkMappingFaulted(Mapping& m) { return !m.faulted.exchange(true, std::memory_order_relaxed); }

uint32_t SegmentCache::MarkFaulted(const std::shared_ptr<const void>& holder) {
  // Every holder this cache hands out is its Mapping.
  auto* m = const_cast<Mapping*>(static_cast<const Mapping*>(holder.get()));
  if (MarkMappingFaulted(*m) && report_fault_) report_fault_(m->id);
  return m->id;
}

Status SegmentCache::CopyMapped(const std::shared_ptr<const void>& holder, const char* p, size_t n, char* out) {
  if (GuardedCopy(out, p, n)) return Status::OK();
  return FaultedError(MarkFaulted(holder));
}

Result<bool> SegmentCache::KeyIs(const RecordRef& ref, std::string_view key) {
  if (ref.key.size() != key.size()) return false;
  bool equal = false;
  auto compare = [&] { equal = std::memcmp(ref.key.data(), key.data(), key.size()) == 0; };
  if (!GuardMappedRead(ref.key.data(), ref.key.size(), compare)) return FaultedError(MarkFaulted(ref.holder));
  return equal;
}

Result<bool> SegmentCache::BodyMatches(const RecordRef& ref) {
  bool matches = false;
  auto check = [&] { matches = RecordBodyMatches(ref.record, ref.header); };
  if (!GuardMappedRead(ref.record, ref.header.total_bytes(), check)) return FaultedError(MarkFaulted(ref.holder));
  return matches;
}

Status SegmentCache::FaultedError(uint32_t id) {
  return Status::IOError("segment " + std::to_string(id) + ": a page of its mapping could not be read (SIGBUS)");
}

void SegmentCache::Prefetch(Location loc, uint64_t bytes) const {
  std::shared_lock lock(mu_);
  PrefetchLocked(loc, bytes);
}

void SegmentCache::PrefetchMany(std::span<const Location> locs, uint64_t bytes) const {
  std::shared_lock lock(mu_);
  for (Location loc : locs) PrefetchLocked(loc, bytes);
}

void SegmentCache::PrefetchLocked(Location loc, uint64_t bytes) const {
  const uint64_t off = LocationOffset(loc);
  auto it = maps_.find(LocationSegment(loc));
  if (it == maps_.end()) return;
  const Mapping& m = *it->second;
  const uint64_t readable = std::min<uint64_t>(m.known_size.load(std::memory_order_relaxed), m.file->mapped_bytes());
  if (off >= readable) return;
  // Within the known size: a prefetch never faults, but past the file's
  // pages it would fetch nothing.
  const uint64_t end = std::min(readable, off + bytes);
  const char* base = m.file->data();
  for (uint64_t p = off & ~uint64_t{63}; p < end; p += 64) __builtin_prefetch(base + p, 0, 3);
}

void SegmentCache::Forget(uint32_t id) {
  std::unique_lock lock(mu_);
  maps_.erase(id);  // its clock slot is dropped when the hand reaches it
}

void SegmentCache::Revalidate() {
  std::vector<std::pair<uint32_t, FileIdentity>> cached;
  {
    std::shared_lock lock(mu_);
    cached.reserve(maps_.size());
    for (auto& [id, m] : maps_) cached.emplace_back(id, m->file->identity());
  }
  for (const auto& [id, identity] : cached) {
    auto now = env_.Identify(JoinPath(dir_, SegmentFileName(id)));
    if (now.ok() && now.value() == identity) continue;
    std::unique_lock lock(mu_);
    auto it = maps_.find(id);
    if (it != maps_.end() && it->second->file->identity() == identity) maps_.erase(it);
  }
}

void SegmentCache::Clear() {
  std::unique_lock lock(mu_);
  maps_.clear();
  clock_.clear();
  hand_ = 0;
}

}  // namespace kingx::engine
