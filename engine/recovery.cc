// Writer::Open and recovery: rebuilds the shared index from the segment files.
//
// Order of work:
//  1. Begin a rebuild of the index in its second area (readers keep the
//     published one), remove staging leftovers (*.tmp) and orphan hints.
//  2. Read every segment header; the seed comes from the first valid one.
//  3. Load each sealed segment from its hint file, or scan it when the hint is
//     missing or bad (a corrupt record there is skipped, counted and logged;
//     the scan resynchronises on the next valid record).
//  4. Scan the active segment (the newest one that is not sealed) and
//     truncate it at its first invalid record: a torn tail is not corruption.
//  5. Each key keeps its highest-seq record; deletes stay in the index as
//     tombstone-marked locations until every segment was replayed, then go.
//  6. Publish the rebuilt index with its seed in one step, counters,
//     ready = 1.
#include <algorithm>

#include "engine/hash.h"
#include "engine/writer_impl.h"

namespace kingx::engine {
namespace {

struct SegmentFile {
  uint32_t id = 0;
  uint64_t size = 0;
  bool header_ok = false;
  SegmentHeader header;
};

}  // namespace

Writer::Impl::Impl(Env& env, std::string dir, const Options& options, SharedIndex& index)
    : env_(env),
      dir_(std::move(dir)),
      options_(options),
      index_(index),
      limits_{options.max_key_bytes, options.max_value_bytes},
      cache_(env, dir_, options.segment_bytes),
      disk_(env, dir_, options.disk_reserve_bytes, options.log) {}

Writer::Writer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Writer>> Writer::Open(Env& env, std::string dir, const Options& options,
                                             SharedIndex& index) {
  Status s = ValidateOptions(options);
  if (!s.ok()) return s;
  s = env.CreateDir(dir);
  if (!s.ok()) return s;
  auto impl = std::make_unique<Impl>(env, std::move(dir), options, index);
  if (options.take_lock) {
    auto lock = env.LockFile(JoinPath(impl->dir_, "LOCK"));
    if (!lock.ok()) return lock.status();
    impl->lock_ = std::move(lock.value());
  }
  s = impl->Recover();
  if (!s.ok()) return s;
  return std::unique_ptr<Writer>(new Writer(std::move(impl)));
}

namespace {

// Replays one record found on disk into the index (highest seq wins) and the
// per-segment byte counts.
class Replayer {
 public:
  explicit Replayer(Writer::Impl& w) : w_(w) {}

  Status Apply(uint32_t segment_id, const HintEntry& e) {
    max_seq_ = std::max(max_seq_, e.seq);
    uint64_t& seg_max = w_.recovered_max_seq_[segment_id];
    seg_max = std::max(seg_max, e.seq);
    const uint64_t hash = KeyHash(w_.seed_, e.key);
    Location loc = MakeLocation(segment_id, e.offset);
    if (e.type == RecordType::kDelete) loc = WithTombstone(loc);
    SegmentStats& seg = w_.segments_[segment_id];
    Candidates c;
    Status s = w_.index_.LookupForWriter(hash, &c);
    if (!s.ok()) return s;
    for (uint32_t i = 0; i < c.count; ++i) {
      auto ref = w_.cache_.ReadRecord(WithoutTombstone(c.locations[i]), w_.limits_);
      if (!ref.ok() || ref->key != e.key) continue;
      if (e.seq <= ref->header.seq) {  // an older (or the same, copied) record
        seg.dead_bytes += e.total_bytes;
        return Status::OK();
      }
      if (!IsTombstone(c.locations[i])) {
        SegmentStats& old = w_.segments_[LocationSegment(c.locations[i])];
        old.live_bytes -= ref->header.total_bytes();
        old.dead_bytes += ref->header.total_bytes();
      }
      w_.index_.Replace(hash, c.locations[i], loc);
      Account(seg, e);
      return Status::OK();
    }
    s = w_.index_.Insert(hash, loc);
    if (!s.ok()) return s;
    Account(seg, e);
    return Status::OK();
  }

  uint64_t max_seq() const { return max_seq_; }

 private:
  static void Account(SegmentStats& seg, const HintEntry& e) {
    if (e.type == RecordType::kPut) seg.live_bytes += e.total_bytes;
    else seg.dead_bytes += e.total_bytes;  // a tombstone serves no read
  }
  Writer::Impl& w_;
  uint64_t max_seq_ = 0;
};

}  // namespace

// How many keys the rebuilt index is sized for before anything is replayed,
// so that it never grows (a rehash of everything) during the replay: the
// published index's size when a complete one exists (a writer restart), else
// the entries the sealed segments' hints announce plus the other segments'
// bytes at the same bytes per entry. An estimate: the table still grows if
// it is short, and a large overestimate only costs RAM (the replay reads
// nothing twice).
uint64_t Writer::Impl::ExpectedKeys(const std::vector<std::pair<uint32_t, uint64_t>>& segments) {
  if (index_.counters().ready.load(std::memory_order_acquire) != 0 && !index_.rebuilding()) return index_.size();
  uint64_t entries = 0, hinted_bytes = 0, other_bytes = 0;
  for (const auto& [id, size] : segments) {
    auto n = HintEntryCount(env_, JoinPath(dir_, HintFileName(id)), size);
    if (n.ok()) {
      entries += n.value();
      hinted_bytes += size;
    } else {
      other_bytes += size;
    }
  }
  constexpr uint64_t kBytesPerEntryGuess = 128;  // a 100-byte value and a short key, with the record header
  const uint64_t per_entry = entries > 0 ? std::max<uint64_t>(hinted_bytes / entries, 1) : kBytesPerEntryGuess;
  return entries + other_bytes / per_entry;
}

Status Writer::Impl::Recover() {
  // The index is rebuilt beside the published one, which readers keep using
  // (it may be a previous writer's) until PublishRebuild below. So nothing
  // here may remove or shorten a file or record that a published index can
  // point to: only leftovers that were never published (*.tmp, orphan
  // hints, a segment whose creation was cut short, a torn tail).
  cache_.Clear();
  recovered_max_seq_.clear();

  auto names = env_.ListDir(dir_);
  if (!names.ok()) return names.status();
  std::vector<uint32_t> ids;
  std::vector<uint32_t> hint_ids;
  for (const std::string& name : names.value()) {
    uint32_t id = 0;
    if (ParseSegmentFileName(name, &id)) {
      ids.push_back(id);
    } else if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
      // A large value or compaction output that never got its name: never published.
      Status s = env_.RemoveFile(JoinPath(dir_, name));
      if (!s.ok() && !s.Is(Code::kNotFound)) return s;
    } else if (name.size() == 17 && name.compare(0, 4, "seg-") == 0 && name.compare(12, 5, ".hint") == 0) {
      hint_ids.push_back(static_cast<uint32_t>(std::stoul(name.substr(4, 8))));
    }
  }
  std::sort(ids.begin(), ids.end());
  for (uint32_t id : hint_ids) {
    if (!std::binary_search(ids.begin(), ids.end(), id)) {
      Status s = env_.RemoveFile(JoinPath(dir_, HintFileName(id)));
      if (!s.ok() && !s.Is(Code::kNotFound)) return s;
    }
  }

  // Segment headers; the seed.
  std::vector<SegmentFile> files;
  for (uint32_t id : ids) {
    SegmentFile f;
    f.id = id;
    auto size = env_.FileSize(JoinPath(dir_, SegmentFileName(id)));
    if (!size.ok()) return size.status();
    f.size = size.value();
    if (f.size >= kSegmentHeaderBytes) {
      auto span = cache_.Read(id, 0, kSegmentHeaderBytes);
      if (!span.ok()) return span.status();
      f.header_ok = DecodeSegmentHeader(span->data, kSegmentHeaderBytes, &f.header).ok() &&
                    f.header.segment_id == id;
    }
    next_segment_id_ = std::max<uint32_t>(next_segment_id_, id + 1);
    files.push_back(f);
  }
  // The newest segment with a torn header was being created: drop it.
  if (!files.empty() && !files.back().header_ok && files.back().size <= kSegmentHeaderBytes) {
    Log("recovery: removing segment " + std::to_string(files.back().id) + " whose creation was cut short");
    cache_.Forget(files.back().id);
    Status s = env_.RemoveFile(JoinPath(dir_, SegmentFileName(files.back().id)));
    if (!s.ok()) return s;
    env_.RemoveFile(JoinPath(dir_, HintFileName(files.back().id))).ok();
    files.pop_back();
  }
  seed_ = 0;
  for (const SegmentFile& f : files) {
    if (f.header_ok) {
      seed_ = f.header.seed;
      break;
    }
  }
  if (seed_ == 0) {
    if (!files.empty()) return Status::Corruption("no segment header in " + dir_ + " can be trusted: hash seed unknown");
    seed_ = NewHashSeed();
  }

  // The active segment: the newest one that is appended to. Segments sealed
  // at birth (large values, compaction outputs) may have higher ids; a newest
  // segment with a damaged header is treated as sealed (never truncated).
  int active_index = -1;
  for (int i = static_cast<int>(files.size()) - 1; i >= 0; --i) {
    if (files[i].header_ok && (files[i].header.flags & kSegmentFlagSealedAtBirth) != 0) continue;
    if (files[i].header_ok && files[i].header.seed == seed_) active_index = i;
    break;
  }

  {
    std::vector<std::pair<uint32_t, uint64_t>> sizes;
    for (const SegmentFile& f : files) sizes.emplace_back(f.id, f.size);
    Status rs = index_.BeginRebuild(ExpectedKeys(sizes));
    if (rs.Is(Code::kNoSpace)) rs = index_.BeginRebuild(0);  // a wild estimate: grow as needed
    if (!rs.ok()) return rs;
  }
  Replayer replay(*this);
  uint64_t seq_floor = 1;
  std::vector<HintEntry> active_entries;  // the active segment's records, to rebuild its hint
  std::shared_ptr<const void> active_mapping;  // keeps active_entries' keys readable
  uint64_t active_valid_end = 0;
  bool active_is_sealed = false;
  for (size_t i = 0; i < files.size(); ++i) {
    const SegmentFile& f = files[i];
    SegmentStats& st = segments_[f.id];
    st.id = f.id;
    st.bytes = f.size;
    if (f.header_ok && f.header.seed != seed_) {
      ++corruptions_;
      st.dead_bytes = f.size;
      Log("recovery: segment " + std::to_string(f.id) + " belongs to another database (seed); skipped");
      continue;
    }
    if (!f.header_ok) {
      // Its records carry their own checksums: read them as a sealed segment.
      ++corruptions_;
      Log("recovery: segment " + std::to_string(f.id) + " has a damaged header; reading its records");
    } else {
      seq_floor = std::max(seq_floor, f.header.seq_floor);
    }
    const bool is_active = static_cast<int>(i) == active_index;
    Status inner;
    Status hs = LoadHintFile(env_, JoinPath(dir_, HintFileName(f.id)), f.id, f.size, limits_,
                             [&](const HintEntry& e) {
                               if (inner.ok()) inner = replay.Apply(f.id, e);
                             });
    if (!inner.ok()) return inner;
    if (hs.ok()) {
      if (is_active) active_is_sealed = true;  // sealed by a rotation cut short after its hint
      continue;
    }
    if (!hs.Is(Code::kNotFound) && !is_active)
      Log("recovery: hint of segment " + std::to_string(f.id) + " unusable (" + hs.ToString() + "); scanning");
    // Scan.
    auto span = cache_.Read(f.id, 0, f.size);
    if (!span.ok()) return span.status();
    const char* data = span->data;
    if (is_active) active_mapping = span->holder;
    uint64_t off = kSegmentHeaderBytes;
    while (off < f.size) {
      const char* p = data + off;
      RecordHeader h;
      Status rs = DecodeRecordHeader(p, f.size - off, limits_, &h);
      if (rs.ok()) rs = VerifyRecordBody(p, h);
      if (rs.ok()) {
        HintEntry e{h.seq, off, h.total_bytes(), h.type,
                    std::string_view(p + kRecordHeaderBytes, h.key_len)};
        Status as = replay.Apply(f.id, e);
        if (!as.ok()) return as;
        if (is_active) active_entries.push_back(e);
        off += h.total_bytes();
        continue;
      }
      if (is_active) break;  // the end of the log: truncated below
      // Corruption inside a sealed segment: skip to the next valid record.
      ++corruptions_;
      Log("recovery: corrupt record in segment " + std::to_string(f.id) + " at offset " + std::to_string(off) +
          " (" + rs.ToString() + "); skipped");
      uint64_t next = off + 1;
      for (; next + kRecordHeaderBytes <= f.size; ++next) {
        RecordHeader h2;
        if (DecodeRecordHeader(data + next, f.size - next, limits_, &h2).ok() &&
            VerifyRecordBody(data + next, h2).ok())
          break;
      }
      if (next + kRecordHeaderBytes > f.size) next = f.size;
      st.dead_bytes += next - off;
      off = next;
    }
    if (is_active) active_valid_end = off;
  }
  next_seq_ = std::max(seq_floor, replay.max_seq() + 1);

  // Deletes were kept as tombstones so that older puts replayed later lose; drop them now.
  index_.RemoveIf([](uint64_t, Location loc) { return IsTombstone(loc); });
  keys_ = index_.size();

  if (active_index >= 0 && !active_is_sealed) {
    const SegmentFile& f = files[active_index];
    auto file = env_.OpenFile(JoinPath(dir_, SegmentFileName(f.id)), OpenMode::kReadWrite);
    if (!file.ok()) return file.status();
    active_ = std::move(file.value());
    if (active_valid_end < f.size) {
      Log("recovery: truncating segment " + std::to_string(f.id) + " from " + std::to_string(f.size) + " to " +
          std::to_string(active_valid_end) + " bytes (torn tail)");
      Status s = active_->Truncate(active_valid_end);
      if (s.ok()) s = active_->Sync();
      if (!s.ok()) return s;
      cache_.Forget(f.id);  // the mapping's idea of the size is stale
    }
    active_id_ = f.id;
    active_size_ = active_valid_end;
    segments_[f.id].bytes = active_size_;
    segments_[f.id].active = true;
    // Its hint is rebuilt from the scan. The hint only speeds up the next
    // open, so failing to write it (a full disk) does not stop this one.
    auto hint = HintWriter::Create(env_, JoinPath(dir_, HintFileName(f.id)), f.id);
    Status hs = hint.ok() ? Status::OK() : hint.status();
    if (hs.ok()) {
      active_hint_ = std::move(hint.value());
      for (const HintEntry& e : active_entries) active_hint_->Add(e);
      hs = active_hint_->Flush();
      if (hs.ok()) hs = env_.SyncDir(dir_);
    }
    if (!hs.ok()) {
      Log("recovery: hint of active segment " + std::to_string(f.id) + " not written: " + hs.ToString());
      active_hint_.reset();
      env_.RemoveFile(JoinPath(dir_, HintFileName(f.id))).ok();
    }
  } else {
    Status s = CreateActiveSegment();
    if (s.Is(Code::kNoSpace)) {
      // A full disk must not keep the database closed (reads, deletes and
      // compaction need it open): the first write creates the active
      // segment, as after a rotation that found no room.
      Log("recovery: no room for a new active segment (" + s.ToString() + "); the first write creates it");
    } else if (!s.ok()) {
      return s;
    }
  }

  if (corruptions_ > 0)
    Log("recovery: " + std::to_string(corruptions_) + " corrupt record(s) or segment(s) skipped");
  IndexCounters& c = index_.counters();
  index_.PublishRebuild(seed_);
  c.corruptions.store(corruptions_, std::memory_order_relaxed);
  PublishCounters();
  c.ready.store(1, std::memory_order_release);
  return Status::OK();
}

}  // namespace kingx::engine
