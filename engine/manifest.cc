// The MANIFEST log (bytes in engine/FORMAT.md): a 32-byte header (magic,
// version, flags, seed, checksum) then 24-byte entries (type, segment id,
// value, checksum over the entry's first 16 bytes and its file offset).
#include "engine/manifest.h"

#include <cstring>

#include "engine/coding.h"
#include "engine/hash.h"

namespace kingx::engine {
namespace {

constexpr char kMagic[8] = {'K', 'I', 'N', 'G', 'X', 'M', 'A', 'N'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 32;
constexpr size_t kEntryBytes = 24;

enum EntryType : uint32_t { kAdd = 1, kRemove = 2, kSeqHighWater = 3, kSeal = 4 };

std::string EncodeHeader(uint64_t seed) {
  char h[kHeaderBytes];
  std::memcpy(h, kMagic, 8);
  PutFixed32(h + 8, kVersion);
  PutFixed32(h + 12, 0);
  PutFixed64(h + 16, seed);
  PutFixed64(h + 24, Checksum64(h, 24));
  return std::string(h, sizeof h);
}

uint64_t EntryChecksum(const char* e, uint64_t offset) {
  char buf[24];
  std::memcpy(buf, e, 16);
  PutFixed64(buf + 16, offset);
  return Checksum64(buf, sizeof buf);
}

std::string EncodeEntry(uint32_t type, uint32_t id, uint64_t value, uint64_t offset) {
  char e[kEntryBytes];
  PutFixed32(e, type);
  PutFixed32(e + 4, id);
  PutFixed64(e + 8, value);
  PutFixed64(e + 16, EntryChecksum(e, offset));
  return std::string(e, sizeof e);
}

bool EntryValid(const char* e, uint64_t offset) {
  const uint32_t type = GetFixed32(e);
  return GetFixed64(e + 16) == EntryChecksum(e, offset) && type >= kAdd && type <= kSeal;
}

}  // namespace

Result<ManifestState> Manifest::Read(Env& env, const std::string& dir) {
  auto file = env.OpenFile(JoinPath(dir, kFileName), OpenMode::kRead);
  if (!file.ok()) return file.status();
  auto size = file.value()->Size();
  if (!size.ok()) return size.status();
  std::string bytes(size.value(), '\0');
  size_t got = 0;
  Status s = file.value()->Read(0, bytes.size(), bytes.data(), &got);
  if (!s.ok()) return s;
  bytes.resize(got);

  ManifestState st;
  if (bytes.size() >= kHeaderBytes && std::memcmp(bytes.data(), kMagic, 8) == 0 &&
      GetFixed32(bytes.data() + 8) == kVersion && GetFixed32(bytes.data() + 12) == 0 &&
      GetFixed64(bytes.data() + 24) == Checksum64(bytes.data(), 24)) {
    st.header_ok = true;
    st.seed = GetFixed64(bytes.data() + 16);
  }
  // Entries sit at fixed offsets: one that fails its checksum is skipped when
  // a valid one follows (damage), and ends the log when none does (a torn tail).
  uint64_t last_valid_end = kHeaderBytes;
  uint64_t damaged = 0;
  for (uint64_t off = kHeaderBytes; off + kEntryBytes <= bytes.size(); off += kEntryBytes) {
    const char* e = bytes.data() + off;
    if (!EntryValid(e, off)) {
      ++damaged;
      continue;
    }
    st.damaged_entries += damaged;
    damaged = 0;
    last_valid_end = off + kEntryBytes;
    ++st.entries;
    const uint32_t id = GetFixed32(e + 4);
    switch (GetFixed32(e)) {
      case kAdd:
        st.segments[id] = ManifestSegment{GetFixed64(e + 8), 0};
        st.removed.erase(id);
        break;
      case kSeal:
        // A seal follows its segment's add; one whose add was lost or
        // damaged says nothing of a listed segment.
        if (auto it = st.segments.find(id); it != st.segments.end()) it->second.sealed_bytes = GetFixed64(e + 8);
        break;
      case kRemove:
        st.segments.erase(id);
        st.removed.insert(id);
        break;
      case kSeqHighWater: st.seq_high_water = std::max(st.seq_high_water, GetFixed64(e + 8)); break;
    }
  }
  if (bytes.size() > last_valid_end) st.torn_tail_bytes = bytes.size() - last_valid_end;
  if (!st.header_ok && st.entries == 0) return Status::Corruption("MANIFEST holds nothing readable");
  return st;
}

Manifest::Manifest(Env& env, std::string dir, uint64_t seed) : env_(env), dir_(std::move(dir)), seed_(seed) {}

Result<std::unique_ptr<Manifest>> Manifest::Create(Env& env, const std::string& dir, uint64_t seed,
                                                   const ManifestSegments& segments, uint64_t seq_high_water) {
  std::unique_ptr<Manifest> m(new Manifest(env, dir, seed));
  m->segments_ = segments;
  m->seq_high_water_ = seq_high_water;
  std::lock_guard lock(m->mu_);
  Status s = m->RewriteLocked();
  if (!s.ok()) return s;
  return m;
}

std::string Manifest::Encode(uint64_t seed, const ManifestSegments& segments, uint64_t seq_high_water) {
  std::string bytes = EncodeHeader(seed);
  if (seq_high_water != 0) bytes += EncodeEntry(kSeqHighWater, 0, seq_high_water, bytes.size());
  for (const auto& [id, seg] : segments) {
    bytes += EncodeEntry(kAdd, id, seg.birth, bytes.size());
    if (seg.sealed_bytes != 0) bytes += EncodeEntry(kSeal, id, seg.sealed_bytes, bytes.size());
  }
  return bytes;
}

Status Manifest::RewriteLocked() {
  const std::string tmp = JoinPath(dir_, std::string(kFileName) + ".tmp");
  const std::string path = JoinPath(dir_, kFileName);
  const std::string bytes = Encode(seed_, segments_, seq_high_water_);
  const uint64_t entries = (bytes.size() - kHeaderBytes) / kEntryBytes;
  file_.reset();
  auto file = env_.OpenFile(tmp, OpenMode::kCreateTruncate);
  if (!file.ok()) return file.status();
  Status s = file.value()->Append(bytes);
  if (s.ok()) s = file.value()->Sync();
  if (s.ok()) s = env_.Rename(tmp, path);
  if (s.ok()) s = env_.SyncDir(dir_);
  if (!s.ok()) {
    env_.RemoveFile(tmp).ok();
    return s;
  }
  file_ = std::move(file.value());  // the same open file, now under its name
  size_ = bytes.size();
  entries_ = entries;
  return Status::OK();
}

Status Manifest::AppendLocked(uint32_t type, uint32_t id, uint64_t value, bool sync) {
  // A rewrite holds the change already (and is durable): after a failed
  // append (unknown bytes at the end), and when the log grew long.
  if (!file_ || entries_ > 3 * segments_.size() + 1024) return RewriteLocked();
  const std::string e = EncodeEntry(type, id, value, size_);
  Status s = file_->Append(e);
  if (!s.ok()) {
    file_.reset();  // unknown bytes at the end: rewrite before the next append
    return s;
  }
  size_ += e.size();
  ++entries_;
  return sync ? file_->Sync() : Status::OK();
}

Status Manifest::AddSegment(uint32_t id, uint64_t birth, uint64_t sealed_bytes) {
  std::lock_guard lock(mu_);
  segments_[id] = ManifestSegment{birth, sealed_bytes};
  Status s = AppendLocked(kAdd, id, birth, /*sync=*/false);
  if (s.ok() && sealed_bytes != 0) s = AppendLocked(kSeal, id, sealed_bytes, /*sync=*/false);
  return s;
}

Status Manifest::SealSegment(uint32_t id, uint64_t bytes) {
  std::lock_guard lock(mu_);
  auto it = segments_.find(id);
  if (it == segments_.end()) return Status::OK();  // not listed (an add that could not be written is rewritten whole)
  it->second.sealed_bytes = bytes;
  return AppendLocked(kSeal, id, bytes, /*sync=*/false);
}

Status Manifest::RemoveSegment(uint32_t id) {
  std::lock_guard lock(mu_);
  segments_.erase(id);
  return AppendLocked(kRemove, id, 0, /*sync=*/true);
}

Status Manifest::RemoveSegments(const std::vector<uint32_t>& ids) {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < ids.size(); ++i) {
    segments_.erase(ids[i]);
    Status s = AppendLocked(kRemove, ids[i], 0, /*sync=*/i + 1 == ids.size());
    if (!s.ok()) {
      // The rest is held in memory; the rewrite after a failed append writes it.
      for (size_t j = i + 1; j < ids.size(); ++j) segments_.erase(ids[j]);
      return s;
    }
  }
  return Status::OK();
}

Status Manifest::SetSeqHighWater(uint64_t mark) {
  std::lock_guard lock(mu_);
  seq_high_water_ = std::max(seq_high_water_, mark);
  return AppendLocked(kSeqHighWater, 0, seq_high_water_, /*sync=*/true);
}

Status Manifest::Flush() {
  std::lock_guard lock(mu_);
  return file_ ? Status::OK() : RewriteLocked();
}

uint64_t Manifest::seq_high_water() const {
  std::lock_guard lock(mu_);
  return seq_high_water_;
}

ManifestSegments Manifest::segments() const {
  std::lock_guard lock(mu_);
  return segments_;
}

}  // namespace kingx::engine
