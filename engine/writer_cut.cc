// Point-in-time cuts and segment pins (Writer::PinSegments; see writer.h and
// writer_impl.h). A cut's pin keeps the segment files of that cut on disk
// (and their ids unused by new segments) until it is released, so an online
// backup reads them at leisure while compaction goes on deleting the
// segments born after the cut. The keyspace's catch-up or rebuild pins every
// segment (pins_) so that compaction moves no record out of its sight.
//
// A cut never waits for the pipeline's fdatasync: it is the published prefix
// of the log (writer.h, PinSegments), which under SyncMode::kAlways is
// durable, so the bytes a backup streams are never ones a failed sync could
// take back. The batches in flight at the cut are after it: none of them was
// acknowledged yet, so leaving them out keeps "every write acknowledged
// before the request is in the backup".
#include "engine/writer_impl.h"

#include <algorithm>

namespace kingx::engine {

bool Writer::Impl::BeginDelete(uint32_t id, bool view_pin_holds) {
  if ((view_pin_holds && pins_ > 0) || pinned_ids_.count(id) != 0) return false;
  deleting_.insert(id);
  return true;
}

void Writer::Impl::EndDelete(uint32_t id) { deleting_.erase(id); }

uint64_t Writer::Impl::ForgetUnlinked(uint32_t id) {
  const auto it = segments_.find(id);
  const uint64_t bytes = it != segments_.end() ? it->second.bytes : 0;
  if (it != segments_.end()) segments_.erase(it);
  births_.erase(id);
  EndDelete(id);
  cache_.Forget(id);
  // After the unlink: a reader that sees the new epoch finds the file gone.
  index_.counters().segment_epoch.fetch_add(1, std::memory_order_release);
  return bytes;
}

DatabaseCut Writer::Impl::CutLocked() const {
  DatabaseCut cut;
  cut.seed = seed_;
  // Seqs are handed out in submission order and batches published in that
  // order: the first record in flight starts what the cut leaves out.
  cut.next_seq = next_seq_;
  for (const auto& b : inflight_) {
    if (b->pending.empty()) continue;
    cut.next_seq = b->pending.front().seq;
    break;
  }
  cut.seq_high_water = manifest_ ? std::max(manifest_->seq_high_water(), next_seq_) : next_seq_;
  for (const auto& [id, st] : segments_) {
    if (deleting_.count(id) != 0) continue;  // its records live in installed copies
    SegmentFileCut f;
    f.id = id;
    f.active = active_ != nullptr && id == active_id_;
    f.missing = st.missing;
    // active_size_ ends at the last published record: the bytes in flight past it are not in the cut.
    f.bytes = f.active ? active_size_ : (st.missing ? 0 : st.bytes);
    if (active_ == nullptr && read_only_tail_id_ != 0 && id == read_only_tail_id_ && !st.missing) {
      // A read-only open's last segment: what its open read (a torn tail or
      // the zero room after it is left out). Named active, as the segment
      // the log ends in, whose hint on disk may be unfinished (a crash): a
      // backup builds the hint of its bytes at the cut.
      f.active = true;
      f.bytes = read_only_tail_bytes_;
    }
    const auto birth = births_.find(id);
    f.birth = birth != births_.end() ? birth->second.birth : 0;
    f.sealed_bytes = birth != births_.end() && !f.active ? birth->second.sealed_bytes : 0;
    cut.segments.push_back(f);
  }
  return cut;
}

std::vector<uint32_t> DatabaseCut::ids() const {
  std::vector<uint32_t> out;
  out.reserve(segments.size());
  for (const SegmentFileCut& f : segments) out.push_back(f.id);
  return out;
}

Result<DatabaseCut> Writer::PinSegments() {
  Impl& w = *impl_;
  // Not mu_.lock(): that would wait for the fdatasync in flight. Rotation,
  // compaction's installs and deletions drain first, so with the raw mutex
  // held segments_ is settled and only the active segment's tail is in flight.
  w.mu_.LockKeepingPipeline();
  std::lock_guard<std::mutex> unlock_at_return(w.mu_.raw(), std::adopt_lock);
  // Publishes what a finished sync already covers (without waiting), so that
  // the cut is as recent as it can be without an fdatasync of its own.
  if (!w.inflight_.empty()) w.FinishSynced(w.sync_->Poll());
  DatabaseCut cut = w.CutLocked();
  for (const SegmentFileCut& f : cut.segments) ++w.pinned_ids_[f.id];
  return cut;
}

void Writer::PinSegmentIds(const std::vector<uint32_t>& ids) {
  Impl& w = *impl_;
  std::lock_guard lock(w.mu_);
  for (const uint32_t id : ids) ++w.pinned_ids_[id];
}

void Writer::UnpinSegmentIds(const std::vector<uint32_t>& ids) {
  Impl& w = *impl_;
  std::lock_guard lock(w.mu_);
  for (const uint32_t id : ids) {
    auto it = w.pinned_ids_.find(id);
    if (it == w.pinned_ids_.end()) continue;
    if (--it->second == 0) w.pinned_ids_.erase(it);
  }
}

size_t Writer::pinned_segments() const {
  const Impl& w = *impl_;
  std::lock_guard lock(w.mu_);
  return w.pinned_ids_.size();
}

std::string EncodeCutManifest(const DatabaseCut& cut) {
  // The copy's sealed segments are whole copies: the seals hold there too
  // (one cut short here is reported there as well). Its active segment, cut
  // at its last published record, stays unsealed.
  ManifestSegments listed;
  for (const SegmentFileCut& f : cut.segments) listed[f.id] = ManifestSegment{f.birth, f.sealed_bytes};
  return Manifest::Encode(cut.seed, listed, cut.seq_high_water);
}

}  // namespace kingx::engine
