// Point-in-time cuts and segment pins (Writer::PinSegments; see writer.h and
// writer_impl.h). A pin keeps every segment file of a cut on disk until it is
// released: an online backup reads the files of its cut at leisure, and the
// keyspace's catch-up or rebuild reads segments without compaction moving
// records out of sight.
#include "engine/writer_impl.h"

#include <algorithm>

namespace kingx::engine {

bool Writer::Impl::BeginDelete(uint32_t id) {
  if (pins_ > 0) return false;
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

Result<DatabaseCut> Writer::PinSegments() {
  Impl& w = *impl_;
  std::lock_guard lock(w.mu_);
  ++w.pins_;
  return w.CutLocked();
}

void Writer::UnpinSegments() {
  Impl& w = *impl_;
  std::lock_guard lock(w.mu_);
  if (w.pins_ > 0) --w.pins_;
}

std::string EncodeCutManifest(const DatabaseCut& cut) {
  std::map<uint32_t, uint64_t> births;
  for (const SegmentFileCut& f : cut.segments) births[f.id] = f.birth;
  return Manifest::Encode(cut.seed, births, cut.seq_high_water);
}

}  // namespace kingx::engine
