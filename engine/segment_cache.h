// SegmentCache: one process's read-only mappings of segment files, keyed by
// segment id, shared by the Reader (any thread) and the Writer (recovery,
// key comparisons). Internal to engine/.
//
// A segment is mapped once with room for segment_bytes (so the active segment
// can grow without a remap); bytes are only touched below the file size last
// seen (fstat again when a record lies beyond it; remap when the file outgrew
// the mapping). Mappings are shared_ptr-held: dropping one from the cache
// never invalidates a record a caller still holds.
//
// Thread-safety: every method is safe from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "engine/env.h"
#include "engine/location.h"
#include "engine/record.h"
#include "engine/status.h"

namespace kingx::engine {

// Bytes of one segment, readable while `holder` lives.
struct SegmentSpan {
  const char* data = nullptr;  // at the requested offset
  uint64_t available = 0;      // readable bytes from data on (>= the requested length)
  std::shared_ptr<const void> holder;
};

// A record whose header checksum and key were read (body not verified).
struct RecordRef {
  RecordHeader header;
  const char* record = nullptr;  // the header's first byte; header.total_bytes() readable
  std::string_view key;
  std::shared_ptr<const void> holder;
};

class SegmentCache {
 public:
  SegmentCache(Env& env, std::string dir, uint64_t segment_bytes);

  // At least n readable bytes of segment `id` from offset. kNotFound when the
  // segment file does not exist (deleted); kCorruption when offset + n is past
  // its end; kIOError when it cannot be mapped.
  Result<SegmentSpan> Read(uint32_t id, uint64_t offset, uint64_t n);

  // Reads and checks the header of the record at loc, and makes its whole
  // record readable. Errors as Read, plus kCorruption for a bad header.
  Result<RecordRef> ReadRecord(Location loc, const RecordLimits& limits);

  // Forgets segment id's mapping (held spans stay valid).
  void Forget(uint32_t id);
  // Forgets every mapping whose file no longer exists.
  void DropMissing();
  // Forgets everything.
  void Clear();

 private:
  struct Mapping;
  Result<std::shared_ptr<Mapping>> MapSegment(uint32_t id, uint64_t min_bytes);

  Env& env_;
  const std::string dir_;
  const uint64_t segment_bytes_;
  std::shared_mutex mu_;
  std::unordered_map<uint32_t, std::shared_ptr<Mapping>> maps_;
};

}  // namespace kingx::engine
