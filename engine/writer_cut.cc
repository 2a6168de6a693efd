// Point-in-time cuts and segment pins (Writer::PinSegments; see writer.h and
// writer_impl.h). A cut's pin keeps the segment files of that cut on disk
// (and their ids unused by new segments) until it is released, so an online
// backup reads them at leisure while compaction goes on deleting the
// segments born after the cut. The keyspace's catch-up or rebuild pins every
// segment (pins_) so that compaction moves no record out of its sight.
#include "engine/writer_impl.h"

#include <algorithm>

namespace kingx::engine {

bool Writer::Impl::BeginDelete(uint32_t id) {
  if (pins_ > 0 || pinned_ids_.count(id) != 0) return false;
  deleting_.insert(id);
  return true;
}

void Writer::Impl::EndDelete(uint32_t id) { deleting_.erase(id); }

DatabaseCut Writer::Impl::CutLocked() const {
  DatabaseCut cut;
  cut.seed = seed_;
  cut.next_seq = next_seq_;
  cut.seq_high_water = manifest_ ? std::max(manifest_->seq_high_water(), next_seq_) : next_seq_;
  for (const auto& [id, st] : segments_) {
    if (deleting_.count(id) != 0) continue;  // its records live in installed copies
    SegmentFileCut f;
    f.id = id;
    f.active = active_ != nullptr && id == active_id_;
    f.missing = st.missing;
    f.bytes = f.active ? active_size_ : (st.missing ? 0 : st.bytes);
    const auto birth = births_.find(id);
    f.birth = birth != births_.end() ? birth->second : 0;
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
  std::lock_guard lock(w.mu_);
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
  std::map<uint32_t, uint64_t> births;
  for (const SegmentFileCut& f : cut.segments) births[f.id] = f.birth;
  return Manifest::Encode(cut.seed, births, cut.seq_high_water);
}

}  // namespace kingx::engine
