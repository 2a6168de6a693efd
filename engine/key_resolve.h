// ResolveKey: decides, against the live hash index, what the sorted view's
// entries of one key are worth. Shared by the listing (any process) and the
// keyspace's flushes, merges and rebuilds (writer process). Internal to engine/.
//
// The sorted view may be stale (an entry may point at an overwritten,
// deleted or moved record) but it never lacks a live key. The index is the
// truth: when one of the key's candidate locations is one the view knows,
// the key is live with that entry's metadata, read from the view (no I/O).
// Otherwise each candidate's record is read: one whose key matches is the
// key's current record (it was overwritten or moved after the view was
// taken), with metadata from disk. No matching candidate: the key is dead.
//
// Thread-safety: any thread; the index is read lock-free, the cache is
// thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "engine/index.h"
#include "engine/record.h"
#include "engine/segment_cache.h"
#include "engine/status.h"

namespace kingx::engine {

struct Resolution {
  enum class Kind : uint8_t {
    kDead,   // no live record of the key
    kKnown,  // live at known[known_index]
    kMoved,  // live at a location the view does not know; fields below from disk
  };
  Kind kind = Kind::kDead;
  size_t known_index = 0;
  uint64_t seq = 0;
  uint64_t segment = 0;
  uint64_t offset = 0;
  uint64_t raw_len = 0;
  std::string content_type;
};

// `known`: the locations of the key's entries in the view (tombstone bit
// clear). Errors: kBusy (the index is busy, or segments kept vanishing),
// kCorruption (a candidate's record is damaged: the key's state cannot be
// told; counted in the index's corruption counter), kIOError.
// `skip_segment` (may be null): candidates in segments for which it returns
// true are not read (the caller sees those records elsewhere).
// `looked_up` (may be null): what index.Lookup(hash) returned a moment ago
// (a caller that looked a batch of keys up at once, SharedIndex::LookupBatch);
// used in place of the first lookup. A retry after a vanished segment looks
// up again.
Status ResolveKey(const SharedIndex& index, SegmentCache& cache, const RecordLimits& limits, uint64_t hash,
                  std::string_view key, std::span<const Location> known, Resolution* out,
                  const std::function<bool(uint64_t)>* skip_segment = nullptr,
                  const Candidates* looked_up = nullptr);

}  // namespace kingx::engine
