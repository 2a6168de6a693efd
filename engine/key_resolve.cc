// ResolveKey (see key_resolve.h).
#include "engine/key_resolve.h"

namespace kingx::engine {
namespace {

// A candidate's segment vanished (compaction moved the record and deleted the
// file): the index points elsewhere by then; look again.
constexpr int kMaxVanishedRetries = 8;

}  // namespace

Status ResolveKey(const SharedIndex& index, SegmentCache& cache, const RecordLimits& limits, uint64_t hash,
                  std::string_view key, std::span<const Location> known, Resolution* out,
                  const std::function<bool(uint64_t)>* skip_segment, const Candidates* looked_up) {
  *out = Resolution{};
  for (int attempt = 0; attempt <= kMaxVanishedRetries; ++attempt) {
    Candidates fresh;
    if (attempt > 0 || looked_up == nullptr) {
      if (Status s = index.Lookup(hash, &fresh); !s.ok()) return s;
    }
    const Candidates& c = attempt == 0 && looked_up != nullptr ? *looked_up : fresh;
    for (uint32_t i = 0; i < c.count; ++i) {
      for (size_t k = 0; k < known.size(); ++k) {
        if (c.locations[i] == known[k]) {
          out->kind = Resolution::Kind::kKnown;
          out->known_index = k;
          return Status::OK();
        }
      }
    }
    bool vanished = false;
    for (uint32_t i = 0; i < c.count; ++i) {
      const Location loc = c.locations[i];
      if (IsTombstone(loc)) continue;
      if (skip_segment != nullptr && (*skip_segment)(LocationSegment(loc))) continue;
      auto ref = cache.ReadRecord(loc, limits);
      if (!ref.ok()) {
        if (ref.status().Is(Code::kNotFound)) {
          vanished = true;
          cache.Forget(LocationSegment(loc));
          continue;
        }
        if (ref.status().Is(Code::kCorruption)) {
          index.counters().corruptions.fetch_add(1, std::memory_order_relaxed);
        }
        return ref.status();
      }
      // The key and the content type are read under the mapping guard: a
      // page that faults is this read's I/O error (the mapping marked).
      auto same = cache.KeyIs(ref.value(), key);
      if (!same.ok()) return same.status();
      if (!same.value()) continue;
      if (ref->header.type != RecordType::kPut) return Status::OK();  // never indexed once ready
      out->kind = Resolution::Kind::kMoved;
      out->seq = ref->header.seq;
      out->segment = LocationSegment(loc);
      out->offset = LocationOffset(loc);
      out->raw_len = ref->header.raw_len;
      out->content_type.resize(ref->header.meta_len);
      if (Status cs = cache.CopyMapped(ref->holder, ref->record + kRecordHeaderBytes + ref->header.key_len,
                                       ref->header.meta_len, out->content_type.data());
          !cs.ok())
        return cs;
      return Status::OK();
    }
    if (!vanished) return Status::OK();  // dead
  }
  return Status::Busy("segments kept vanishing while resolving a key");
}

}  // namespace kingx::engine
