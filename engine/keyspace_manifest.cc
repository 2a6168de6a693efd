// keys/MANIFEST: reading it and the segment ids its runs name (see
// keyspace_manifest.h). Keyspace::Checkpoint writes it.
#include "engine/keyspace_manifest.h"

#include <algorithm>
#include <cstring>

#include "engine/coding.h"
#include "engine/hash.h"
#include "engine/key_run.h"
#include "engine/keyspace_region.h"
#include "engine/location.h"
#include "engine/read_exact.h"

namespace kingx::engine {

Status ReadKeyspaceManifest(Env& env, const std::string& dir, uint64_t seed, KeyspaceManifest* out) {
  *out = KeyspaceManifest{};
  const std::string path = JoinPath(dir, kKeyspaceManifestName);
  auto size = env.FileSize(path);
  if (!size.ok()) return size.status();
  // Larger than any valid MANIFEST: not read (judged unusable below).
  const uint64_t n = std::min<uint64_t>(size.value(), kKeyspaceManifestFixedBytes + 8ull * kMaxKeyRuns + 8 + 1);
  std::string bytes(n, '\0');
  if (Status rs = ReadExact(env, path, 0, n, bytes.data()); !rs.ok()) return rs;
  const char* p = bytes.data();
  if (n < kKeyspaceManifestFixedBytes + 8 || std::memcmp(p, kKeyspaceManifestMagic, 8) != 0 ||
      GetFixed32(p + 8) != kKeyspaceManifestVersion || GetFixed32(p + 12) != 0 || GetFixed64(p + 16) != seed)
    return Status::Corruption(path + ": not a MANIFEST of this database");
  const uint32_t count = GetFixed32(p + 48);
  if (count > kMaxKeyRuns || n != kKeyspaceManifestFixedBytes + 8ull * count + 8 ||
      GetFixed64(p + n - 8) != Checksum64(p, n - 8))
    return Status::Corruption(path + ": damaged");
  out->covered = GetFixed64(p + 24);
  out->next_run_id = GetFixed64(p + 32);
  out->secret = GetFixed64(p + 40);
  for (uint32_t i = 0; i < count; ++i) out->runs.push_back(GetFixed64(p + kKeyspaceManifestFixedBytes + 8 * i));
  return Status::OK();
}

Status AppendNamedSegmentIds(Env& env, const std::string& dir, uint64_t seed, const std::vector<uint64_t>& runs,
                             std::vector<uint64_t>* named) {
  for (uint64_t id : runs) {
    auto run = KeyRun::Open(env, JoinPath(dir, KeyRunFileName(id)), id, seed, /*verify_checksum=*/false);
    if (!run.ok()) return run.status();
    for (const auto& [seg, n] : run.value()->segment_counts()) named->push_back(seg);
  }
  return Status::OK();
}

uint32_t SegmentIdPast(uint32_t next, const std::vector<uint64_t>& named) {
  uint64_t highest = 0;
  for (uint64_t seg : named)
    if (seg <= kMaxSegmentId) highest = std::max(highest, seg);
  if (highest < next) return next;
  return highest >= kMaxSegmentId ? 1 : static_cast<uint32_t>(highest + 1);
}

}  // namespace kingx::engine
