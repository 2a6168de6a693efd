// Location: where a record lives on disk, packed into one 64-bit word so that
// an index entry is two words (hash, location).
//
//   bit 63      tombstone marker (used only by recovery, see below)
//   bits 62..39 segment id   (24 bits: 0 .. kMaxSegmentId)
//   bits 38..0  byte offset  (39 bits: 0 .. kMaxOffset, i.e. < 512 GiB) of the
//               record's first byte inside that segment file
//
// The tombstone bit lets recovery keep "this key was deleted at this
// location" in the index while it replays segments out of order of deletion;
// recovery drops every tombstoned entry before the index is marked ready, so
// readers never see one (a reader that does must treat it as not found).
//
// Thread-safety: pure constexpr functions.
#pragma once

#include <cassert>
#include <cstdint>

namespace kingx::engine {

using Location = uint64_t;

inline constexpr int kLocationOffsetBits = 39;
inline constexpr int kLocationSegmentBits = 24;
inline constexpr uint64_t kMaxOffset = (uint64_t{1} << kLocationOffsetBits) - 1;
inline constexpr uint64_t kMaxSegmentId = (uint64_t{1} << kLocationSegmentBits) - 1;
inline constexpr Location kTombstoneBit = uint64_t{1} << 63;

// Packs (segment_id, offset). Both must be within their limits (asserted;
// callers check offsets against kMaxOffset when they size segments, and
// segment ids against kMaxSegmentId when they create a segment).
constexpr Location MakeLocation(uint64_t segment_id, uint64_t offset) {
  assert(segment_id <= kMaxSegmentId && offset <= kMaxOffset);
  return (segment_id << kLocationOffsetBits) | offset;
}

// The segment id of `loc` (the tombstone bit is ignored).
constexpr uint32_t LocationSegment(Location loc) {
  return static_cast<uint32_t>((loc >> kLocationOffsetBits) & kMaxSegmentId);
}

// The byte offset of `loc` inside its segment (the tombstone bit is ignored).
constexpr uint64_t LocationOffset(Location loc) { return loc & kMaxOffset; }

constexpr bool IsTombstone(Location loc) { return (loc & kTombstoneBit) != 0; }
constexpr Location WithTombstone(Location loc) { return loc | kTombstoneBit; }
constexpr Location WithoutTombstone(Location loc) { return loc & ~kTombstoneBit; }

}  // namespace kingx::engine
