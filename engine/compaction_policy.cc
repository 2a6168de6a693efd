// Compaction policy (see compaction_policy.h).
#include "engine/compaction_policy.h"

#include <algorithm>
#include <optional>

#include "engine/record.h"

namespace kingx::engine {
namespace {

uint64_t Reclaimable(uint32_t id, const SegmentStats& s, const std::map<uint32_t, uint64_t>& kept_tombstone_bytes) {
  const auto kept = kept_tombstone_bytes.find(id);
  const uint64_t kept_bytes = kept == kept_tombstone_bytes.end() ? 0 : kept->second;
  return s.dead_bytes > kept_bytes ? s.dead_bytes - kept_bytes : 0;
}

double Profit(const PickedSegment& p) {
  return static_cast<double>(p.reclaimable) / static_cast<double>(p.stats.live_bytes + 1);
}

bool ByProfit(const PickedSegment& a, const PickedSegment& b) { return Profit(a) > Profit(b); }

// TargetCopyWorthIt (compaction_policy.h) for a pass's candidate.
bool WorthTargetCopy(const PickedSegment& p, uint64_t live_bytes) {
  return TargetCopyWorthIt(p.stats.bytes, p.stats.live_bytes, p.reclaimable, live_bytes);
}

// PickOptions::large_copies for a candidate of the space bound or the
// target, with `reclaimable` bytes left in every segment before it.
bool LargeCopyAllowed(const PickedSegment& p, uint64_t live_bytes, uint64_t reclaimable, const PickOptions& o) {
  if (p.stats.live_bytes <= live_bytes / kMaxActiveShare) return true;
  switch (o.large_copies) {
    case LargeCopies::kAny: return true;
    case LargeCopies::kIfFits:
      return LargeCopyFits(p.stats.live_bytes, live_bytes, reclaimable, o.staged_bytes, o.stall_floor_bytes) ||
             LargeCopyNeeded(live_bytes, reclaimable, o.stall_floor_bytes);
  }
  return true;
}

// Appends the small sealed segments to merge (PickSegments' contract), after
// the other picks: they are the least profitable, and their copies go into
// the outputs that the other picks' live records started.
void MergeSmall(const std::map<uint32_t, SegmentStats>& segments, const std::set<uint32_t>& skip,
                const std::map<uint32_t, uint64_t>& kept_tombstone_bytes, const PickOptions& o,
                std::vector<PickedSegment>* picked) {
  std::vector<PickedSegment> small;
  uint64_t small_live = 0;
  for (const auto& [id, s] : segments) {
    if (s.active || s.missing || skip.count(id) != 0 || s.bytes >= o.segment_bytes / 2) continue;
    const bool already = std::any_of(picked->begin(), picked->end(),
                                     [id = id](const PickedSegment& q) { return q.stats.id == id; });
    if (already) continue;
    PickedSegment p;
    p.stats = s;
    p.reclaimable = Reclaimable(id, s, kept_tombstone_bytes);
    p.why = PickReason::kMergeSmall;
    small.push_back(p);
    small_live += s.live_bytes;
  }
  size_t take = 0;
  if (small_live >= o.segment_bytes) {
    take = small.size();
  } else if (small.size() > o.max_small_segments) {
    take = small.size() - o.max_small_segments / 2;
  }
  if (take < 2) return;  // merging one segment alone would only copy it
  std::stable_sort(small.begin(), small.end(),
                   [](const PickedSegment& a, const PickedSegment& b) { return a.stats.bytes < b.stats.bytes; });
  picked->insert(picked->end(), small.begin(), small.begin() + static_cast<ptrdiff_t>(take));
}

}  // namespace

const char* PickReasonName(PickReason reason) {
  switch (reason) {
    case PickReason::kPickAll: return "all";
    case PickReason::kReclaimable: return "reclaimable";
    case PickReason::kEmpty: return "empty";
    case PickReason::kThreshold: return "threshold";
    case PickReason::kLowSpace: return "low-space";
    case PickReason::kSpaceBound: return "space-bound";
    case PickReason::kTarget: return "stall-target";
    case PickReason::kOverHalf: return "over-half";
    case PickReason::kMergeSmall: return "merge-small";
  }
  return "?";
}

std::vector<PickedSegment> PickSegments(const std::map<uint32_t, SegmentStats>& segments,
                                        const std::set<uint32_t>& skip,
                                        const std::map<uint32_t, uint64_t>& kept_tombstone_bytes,
                                        const PickOptions& o) {
  std::vector<PickedSegment> picked;
  for (const auto& [id, s] : segments) {
    if (s.active || skip.count(id) != 0) continue;
    PickedSegment p;
    p.stats = s;
    p.reclaimable = Reclaimable(id, s, kept_tombstone_bytes);
    // A segment with no live record is worth deleting unless all it holds is
    // tombstones known to have to stay.
    const bool empty = s.live_bytes == 0 && (p.reclaimable > 0 || s.bytes <= kSegmentHeaderBytes);
    const double ratio = s.bytes == 0 ? 1.0 : static_cast<double>(p.reclaimable) / static_cast<double>(s.bytes);
    if (o.pick_all) {
      p.why = PickReason::kPickAll;
    } else if (empty) {
      p.why = PickReason::kEmpty;
    } else if (o.pick_reclaimable && p.reclaimable > 0) {
      p.why = PickReason::kReclaimable;
    } else if (ratio >= o.dead_ratio) {
      p.why = PickReason::kThreshold;
    } else if (o.low_space && p.reclaimable > 0) {
      p.why = PickReason::kLowSpace;
    } else {
      continue;
    }
    picked.push_back(p);
  }
  const auto is_picked = [&picked](uint32_t id) {
    return std::any_of(picked.begin(), picked.end(), [id](const PickedSegment& q) { return q.stats.id == id; });
  };
  // The sealed segments' live and reclaimable bytes (the space bound's
  // fraction), every segment's (SplitOverHalf: all of them stand beside a
  // copy), and the segment holding more than half the live data, if any
  // (there is at most one), with dead bytes of its own.
  uint64_t live = 0, reclaimable = 0, all_live = 0, all_reclaimable = 0, active_reclaimable = 0;
  std::vector<PickedSegment> rest;
  std::optional<PickedSegment> over_half;
  for (const auto& [id, s] : segments) all_live += s.live_bytes;
  for (const auto& [id, s] : segments) {
    const uint64_t r = Reclaimable(id, s, kept_tombstone_bytes);
    all_reclaimable += r;
    if (s.active) active_reclaimable += r;
    if (s.active || skip.count(id) != 0) continue;
    PickedSegment p;
    p.stats = s;
    p.reclaimable = r;
    live += s.live_bytes + (s.dead_bytes - r);
    reclaimable += r;
    if (r == 0 || is_picked(id)) continue;
    rest.push_back(p);
    if (!o.pick_all && s.live_bytes > all_live / 2) over_half = p;
  }
  for (const PickedSegment& p : picked) {
    reclaimable -= std::min(reclaimable, p.reclaimable);
    all_reclaimable -= std::min(all_reclaimable, p.reclaimable);
  }
  // Beside such a segment the target is at most what lets its copy fit
  // (SplitOverHalf): the space bound and the target take the segments
  // worth copying until its turn comes with room for it.
  uint64_t target = o.max_reclaimable_bytes;
  if (over_half) {
    const uint64_t room = WriteStallBoundsFor(all_live, o.stall_floor_bytes).begin_bytes + all_live / kMaxActiveShare;
    const uint64_t elsewhere = all_reclaimable - std::min(all_reclaimable, reclaimable);  // the active segment's, pinned ones'
    const uint64_t need = over_half->stats.live_bytes + o.staged_bytes + elsewhere;
    if (room >= need) target = std::min(target, room - need);
  }
  // Space bound: while the sealed segments' reclaimable fraction stays above
  // max_dead_fraction, also take the most profitable segments below the
  // threshold until the projection falls under it; then, for the target,
  // those worth copying for it.
  // A target is the write stall's, which counts the active segment's
  // reclaimable bytes too: met only once those and the sealed ones' are
  // within it (measured on the sealed ones alone, a pass picked nothing while
  // the stall saw its target passed, and the stall took that as compaction
  // having nothing left to do).
  if (o.max_dead_fraction > 0 && !o.pick_all) {
    std::stable_sort(rest.begin(), rest.end(), ByProfit);
    for (PickedSegment& p : rest) {
      const bool fraction_met =
          static_cast<double>(reclaimable) <= o.max_dead_fraction * static_cast<double>(live + reclaimable);
      const uint64_t against_target = o.stop_at_target ? reclaimable + active_reclaimable : reclaimable;
      if ((fraction_met || o.stop_at_target) && against_target <= target) break;
      // Below the fraction only for the target: only a copy worth its bytes.
      if (fraction_met && !WorthTargetCopy(p, all_live)) continue;
      if (!LargeCopyAllowed(p, all_live, all_reclaimable, o)) continue;
      p.why = fraction_met ? PickReason::kTarget : PickReason::kSpaceBound;
      picked.push_back(p);
      reclaimable -= p.reclaimable;
      all_reclaimable -= std::min(all_reclaimable, p.reclaimable);
    }
  }
  // Most profitable first (empty segments first).
  std::stable_sort(picked.begin(), picked.end(), ByProfit);
  // The segment over half the live data last: its copy fits once the picks
  // before it are deleted.
  if (over_half && !is_picked(over_half->stats.id) &&
      SplitOverHalf(over_half->stats.live_bytes, over_half->reclaimable, all_live, all_reclaimable, o.staged_bytes,
                    o.stall_floor_bytes)) {
    over_half->why = PickReason::kOverHalf;
    picked.push_back(*over_half);
  }
  if (o.segment_bytes > 0 && !o.pick_all) MergeSmall(segments, skip, kept_tombstone_bytes, o, &picked);
  return picked;
}

bool TargetCopyWorthIt(uint64_t file_bytes, uint64_t segment_live_bytes, uint64_t reclaimable,
                       uint64_t live_bytes) {
  const bool frees_a_share =
      static_cast<double>(reclaimable) >= kCatchUpDeadFraction * static_cast<double>(file_bytes);
  return frees_a_share && segment_live_bytes <= live_bytes / kMaxActiveShare;
}

bool LargeCopyFits(uint64_t segment_live_bytes, uint64_t live_bytes, uint64_t reclaimable, uint64_t staged_bytes,
                   uint64_t floor_bytes) {
  const uint64_t share = live_bytes / kMaxActiveShare;
  if (segment_live_bytes <= share) return true;
  const uint64_t room = WriteStallBoundsFor(live_bytes, floor_bytes).begin_bytes + share;
  return reclaimable <= room && staged_bytes <= room - reclaimable &&
         segment_live_bytes <= room - reclaimable - staged_bytes;
}

bool SplitOverHalf(uint64_t segment_live_bytes, uint64_t segment_reclaimable, uint64_t live_bytes,
                   uint64_t reclaimable, uint64_t staged_bytes, uint64_t floor_bytes) {
  if (segment_reclaimable == 0 || segment_live_bytes <= live_bytes / 2) return false;
  return LargeCopyFits(segment_live_bytes, live_bytes, reclaimable, staged_bytes, floor_bytes);
}

bool FinishOutputForShare(uint64_t output_live_bytes, uint64_t record_bytes, uint64_t live_bytes) {
  const uint64_t share = std::max<uint64_t>(live_bytes / kMaxActiveShare, kCatchUpFinishMinBytes);
  return output_live_bytes > 0 && output_live_bytes + record_bytes > share;
}

bool LargeCopyNeeded(uint64_t live_bytes, uint64_t reclaimable, uint64_t floor_bytes) {
  return reclaimable > WriteStallBoundsFor(live_bytes, floor_bytes).end_bytes;
}

bool SealActiveFirst(const SegmentStats& active, uint64_t min_bytes, const PickOptions& o) {
  if (!active.active || active.dead_bytes == 0) return false;
  if (active.bytes < min_bytes) return false;
  const double ratio = static_cast<double>(active.dead_bytes) / static_cast<double>(active.bytes);
  return o.pick_all || o.pick_reclaimable || o.low_space || ratio >= o.dead_ratio;
}

uint64_t ActiveSealMinBytes(uint64_t segment_bytes, uint64_t live_bytes) {
  return std::min(segment_bytes / 4, std::max<uint64_t>(live_bytes / 2, 1 << 20));
}

bool RotateActiveForShare(uint64_t active_file_bytes, uint64_t active_live_bytes, uint64_t record_bytes,
                          uint64_t live_bytes, uint64_t segment_bytes) {
  if (active_file_bytes < std::min(kShareRotateMinBytes, segment_bytes)) return false;
  return active_live_bytes + record_bytes > live_bytes / kMaxActiveShare;
}

bool FinishOutputAfterInput(uint64_t waiting_input_bytes, uint64_t output_bytes, uint64_t segment_bytes) {
  if (waiting_input_bytes >= segment_bytes) return true;
  const uint64_t enough = std::min<uint64_t>(segment_bytes, 1 << 20);
  return waiting_input_bytes >= enough && waiting_input_bytes >= 2 * output_bytes;
}

bool FinishCatchUpOutputAfterInput(uint64_t waiting_input_bytes, uint64_t output_bytes) {
  return output_bytes >= kCatchUpFinishMinBytes && waiting_input_bytes > output_bytes;
}

bool DeleteScannedAfterInput(size_t count, uint64_t file_bytes, size_t batch_count) {
  return count > 0 && (count >= batch_count || file_bytes >= kDeleteScannedBytes);
}

WriteStallBounds WriteStallBoundsFor(uint64_t live_bytes, uint64_t floor_bytes) {
  WriteStallBounds b;
  b.begin_bytes = std::max(live_bytes / 2, floor_bytes);
  b.end_bytes = b.begin_bytes / 2;
  return b;
}

uint64_t CopyBeyondShare(uint64_t copy_bytes, uint64_t live_bytes) {
  const uint64_t share = live_bytes / kMaxActiveShare;
  return copy_bytes > share ? copy_bytes - share : 0;
}

uint64_t CompactionBackoffMs(uint32_t fruitless, uint64_t min_ms, uint64_t max_ms) {
  if (fruitless == 0) return 0;
  uint64_t ms = min_ms;
  for (uint32_t i = 1; i < fruitless && ms < max_ms; ++i) ms *= 2;
  return std::min(ms, max_ms);
}

uint64_t SegmentGuard(const SegmentOrigin& origin, uint64_t seed) {
  // Unreadable, or a damaged header (recovery still reads its records, of
  // any seq, and a missing file's hint is replayed): it may hold anything.
  uint64_t guard = 0;
  if (origin.readable && origin.valid)
    guard = origin.seed == seed ? origin.seq_floor : kNoGuard;  // another seed: never replayed
  if (origin.output_start_seq && guard != kNoGuard) guard = std::max(guard, *origin.output_start_seq);
  return guard;
}

void TombstoneGuards::Add(uint32_t segment_id, uint64_t guard) {
  if (guard < guard1_) {
    guard2_ = guard1_;
    guard1_ = guard;
    guard1_id_ = segment_id;
  } else if (guard < guard2_) {
    guard2_ = guard;
  }
}

bool TombstoneGuards::NothingOlderElsewhere(uint32_t segment_id, uint64_t seq) const {
  const uint64_t others = segment_id == guard1_id_ ? guard2_ : guard1_;
  return others > seq;
}

}  // namespace kingx::engine
