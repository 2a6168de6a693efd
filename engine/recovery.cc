// Writer::Open and recovery: rebuilds the shared index from the segment files.
//
// Order of work:
//  1. Begin a rebuild of the index in its second area (readers keep the
//     published one), remove staging leftovers (*.tmp).
//  2. Read the MANIFEST (if any) and every segment header. A segment no
//     longer than a header whose header is invalid holds no record (its
//     creation was cut short): removed. The seed: the MANIFEST's, else the one
//     most valid headers hold, else (nothing trustworthy left) a new one —
//     the seed only seeds the in-memory index, so a new one loses nothing.
//  3. Load each segment from its hint file, or read it (engine/segment_scan.h)
//     when the hint is missing or bad. Damage is counted and reported, never
//     taken for the end of the log while valid records follow; a record whose
//     header holds but whose body does not is indexed as the key's (damaged)
//     record, so the key answers "damaged" rather than an older value.
//     A sealed segment (one with a seal in the MANIFEST: its length when its
//     cut was durable) shorter than its seal was cut: reported at every open;
//     zeros past its seal are a lost cut (cut, not damage).
//  4. The active segment (PickActiveSegment) loses only a torn tail: bytes
//     after which no valid record begins. After a clean close its finished
//     hint records where its records end: a file shorter than that was cut,
//     a tail starting before it is damaged records; either way the segment
//     is reported and sealed at that length, never appended to.
//  5. Segments the MANIFEST lists whose files are gone are reported; their
//     hint files (kept) still say which keys they held, and those keys then
//     answer "missing" rather than an older value.
//  6. Each key keeps its highest-seq record; deletes stay in the index as
//     tombstone-marked locations until every segment was replayed, then go. A
//     candidate that cannot be read is ordered by its hint entry; when nothing
//     says its seq, the open fails rather than guess.
//  7. The next seq is above every seq on disk and the MANIFEST's high-water
//     mark; a fresh MANIFEST is written with a new mark; the rebuilt index is
//     published with its seed in one step; counters, a new segment epoch
//     (readers revalidate their mappings), then ready = 1.
//
// A read-only open (Options::read_only) does all the reading above and none
// of the writing: leftovers stay, deletions the MANIFEST records are taken
// as done (the segment is not replayed), a torn tail is left on disk and
// read up to its last valid record, no hint or MANIFEST is written and no
// segment created. Every write then returns kReadOnly.
#include <algorithm>
#include <map>
#include <optional>
#include <span>
#include <unordered_map>

#include "engine/candidate_reader.h"
#include "engine/data_dir_lock.h"
#include "engine/hash.h"
#include "engine/hint_names.h"
#include "engine/keyspace_manifest.h"
#include "engine/read_exact.h"
#include "engine/segment_scan.h"
#include "engine/segment_window.h"
#include "engine/staged_hint.h"
#include "engine/writer_impl.h"

namespace kingx::engine {

Writer::Impl::Impl(Env& env, std::string dir, const Options& options, SharedIndex& index)
    : env_(env),
      dir_(std::move(dir)),
      options_(options),
      index_(index),
      limits_{options.max_key_bytes, options.max_value_bytes},
      cache_(env, dir_, options.segment_bytes, options.max_open_segments),
      disk_(env, dir_, options.disk_reserve_bytes, options.log) {}

Writer::Writer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Writer>> Writer::Open(Env& env, std::string dir, const Options& options,
                                             SharedIndex& index) {
  Status s = ValidateOptions(options);
  if (!s.ok()) return s;
  if (!options.read_only) {
    s = env.CreateDir(dir);
    if (!s.ok()) return s;
  }
  auto impl = std::make_unique<Impl>(env, std::move(dir), options, index);
  if (options.take_lock) {
    auto lock = LockDataDir(env, impl->dir_, options.read_only);
    if (!lock.ok()) return lock.status();
    impl->lock_ = std::move(lock.value());
  }
  s = impl->Recover();
  if (!s.ok()) return s;
  return std::unique_ptr<Writer>(new Writer(std::move(impl)));
}

namespace {

// Whether bytes [offset, offset + n) of the file at path are all zero, read
// a piece at a time (a tail may be most of a segment).
Result<bool> ReadAllZero(Env& env, const std::string& path, uint64_t offset, uint64_t n) {
  auto file = env.OpenFile(path, OpenMode::kRead);
  if (!file.ok()) return file.status();
  constexpr uint64_t kPiece = 1 << 20;
  std::unique_ptr<char[]> piece(new char[std::min(n, kPiece)]);
  for (uint64_t done = 0; done < n;) {
    const uint64_t len = std::min(n - done, kPiece);
    Status s = ReadExact(*file.value(), path, offset + done, len, piece.get());
    if (!s.ok()) return s;
    if (!AllZero(piece.get(), len)) return false;
    done += len;
  }
  return true;
}

// Whether the hint file of segment id is finished for a segment longer
// than size bytes (its checksum holds; the length in its trailer is above
// size): the segment file was cut.
bool HintSaysLonger(Env& env, const std::string& dir, uint32_t id, uint64_t size, const RecordLimits& limits) {
  uint64_t recorded = 0;
  Status s = LoadHintFile(env, JoinPath(dir, HintFileName(id)), id, size, limits, [](const HintEntry&) {}, &recorded);
  return s.Is(Code::kCorruption) && recorded > size;
}

// What a hint file says of the record at one offset of its segment.
struct HintedRecord {
  uint64_t seq = 0;
  uint64_t total_bytes = 0;
  RecordType type = RecordType::kPut;
  std::string key;
};

// Replays one record found on disk into the index (highest seq wins) and the
// per-segment byte counts.
class Replayer {
 public:
  explicit Replayer(Writer::Impl& w) : w_(w), records_(w.env_, w.dir_, w.limits_) {}

  // A record read by a scan whose header failed its checks (its key and seq
  // named by segment_scan's salvage): it cannot be read back, so what it is
  // is remembered here for later comparisons.
  void NoteUnreadable(uint32_t segment_id, const HintEntry& e) {
    unreadable_[MakeLocation(segment_id, e.offset)] = HintedRecord{e.seq, e.total_bytes, e.type, std::string(e.key)};
  }

  Status Apply(uint32_t segment_id, const HintEntry& e) {
    return ApplyHashed(segment_id, e, KeyHash(w_.seed_, e.key), w_.segments_[segment_id],
                       w_.recovered_max_seq_[segment_id]);
  }

  // Apply for a batch of one segment's entries, in order, given the batch
  // that will come next. In a table of millions of keys nearly every first
  // probe misses the cache and the TLB: the index entries of `next` are
  // prefetched before `batch` is applied, so that those misses overlap with
  // useful work instead of being paid one after another.
  Status ApplyBatch(uint32_t segment_id, std::span<const HintEntry> batch, std::span<const HintEntry> next) {
    // hashes_ holds batch's hashes when the previous call announced it as `next`.
    const bool announced = !batch.empty() && announced_count_ == batch.size() && announced_key_ == batch[0].key.data();
    announced_count_ = 0;
    if (!announced) Prefetch(batch, hashes_);
    Prefetch(next, next_hashes_);
    SegmentStats& seg = w_.segments_[segment_id];
    uint64_t& seg_max = w_.recovered_max_seq_[segment_id];
    for (size_t i = 0; i < batch.size(); ++i) {
      const uint64_t hash = i < kHintBatchEntries ? hashes_[i] : KeyHash(w_.seed_, batch[i].key);
      Status s = ApplyHashed(segment_id, batch[i], hash, seg, seg_max);
      if (!s.ok()) return s;
    }
    std::swap(hashes_, next_hashes_);
    announced_count_ = next.size();
    announced_key_ = next.empty() ? nullptr : next[0].key.data();
    return Status::OK();
  }

  uint64_t max_seq() const { return max_seq_; }

 private:
  // Hashes the first kHintBatchEntries keys of entries into out and prefetches their index entries.
  void Prefetch(std::span<const HintEntry> entries, uint64_t* out) {
    const size_t n = std::min(entries.size(), kHintBatchEntries);
    for (size_t i = 0; i < n; ++i) {
      out[i] = KeyHash(w_.seed_, entries[i].key);
      w_.index_.PrefetchForWriter(out[i]);
    }
  }

  // seg and seg_max: segment_id's entries in w_.segments_ and w_.recovered_max_seq_.
  Status ApplyHashed(uint32_t segment_id, const HintEntry& e, uint64_t hash, SegmentStats& seg, uint64_t& seg_max) {
    max_seq_ = std::max(max_seq_, e.seq);
    seg_max = std::max(seg_max, e.seq);
    Location loc = MakeLocation(segment_id, e.offset);
    if (e.type == RecordType::kDelete) loc = WithTombstone(loc);
    Candidates c;
    Status s = w_.index_.LookupForWriter(hash, &c);
    if (!s.ok()) return s;
    for (uint32_t i = 0; i < c.count; ++i) {
      // The very record again (a hint that failed part way, then its
      // segment's scan): it counts once.
      if (WithoutTombstone(c.locations[i]) == WithoutTombstone(loc)) return Status::OK();
      uint64_t seq = 0, total = 0;
      bool same_key = false;
      s = Describe(WithoutTombstone(c.locations[i]), e.key, &same_key, &seq, &total);
      if (!s.ok()) return s;
      if (!same_key) continue;
      // An older record, or a copy (same seq: compaction) in a segment born
      // earlier: the index keeps what it has. Of two copies the later-born
      // wins, so the moves a compaction pass made before a crash stay made.
      const uint32_t other = LocationSegment(c.locations[i]);
      if (e.seq < seq || (e.seq == seq && Birth(segment_id) <= Birth(other))) {
        seg.dead_bytes += e.total_bytes;
        return Status::OK();
      }
      if (!IsTombstone(c.locations[i])) {
        SegmentStats& old = w_.segments_[LocationSegment(c.locations[i])];
        old.live_bytes -= std::min(old.live_bytes, total);
        old.dead_bytes += total;
      }
      w_.index_.Replace(hash, c.locations[i], loc);
      Account(seg, e);
      return Status::OK();
    }
    s = w_.index_.Insert(hash, loc, c);
    if (!s.ok()) return s;
    Account(seg, e);
    return Status::OK();
  }

  uint64_t Birth(uint32_t id) const {
    auto it = w_.births_.find(id);
    return it == w_.births_.end() ? 0 : it->second.birth;
  }

  static void Account(SegmentStats& seg, const HintEntry& e) {
    if (e.type == RecordType::kPut) seg.live_bytes += e.total_bytes;
    else seg.dead_bytes += e.total_bytes;  // a tombstone serves no read
  }

  // Whether the record at loc (an index candidate: same 64-bit hash) is of
  // key, and its seq and size. Read from the segment; when that fails (a
  // damaged header, a missing file, a page that cannot be read), from the
  // segment's hint, which describes the record as it was written. Unreadable
  // and unhinted: the open fails (kIOError when the read failed, kCorruption
  // when the bytes are damaged).
  Status Describe(Location loc, std::string_view key, bool* same_key, uint64_t* seq, uint64_t* total) {
    Status why = DescribeRead(loc, key, same_key, seq, total);
    if (why.ok()) return why;
    if (!why.Is(Code::kCorruption) && !why.Is(Code::kNotFound) && !why.Is(Code::kIOError)) return why;
    const HintedRecord* h = nullptr;
    if (auto u = unreadable_.find(loc); u != unreadable_.end()) h = &u->second;
    else h = Hinted(LocationSegment(loc), LocationOffset(loc));
    if (h == nullptr)
      return Status(why.Is(Code::kIOError) ? Code::kIOError : Code::kCorruption,
                    "record at segment " + std::to_string(LocationSegment(loc)) + " offset " +
                        std::to_string(LocationOffset(loc)) + " cannot be read (" + why.ToString() +
                        ") and no hint describes it: cannot tell which record of its key is newest");
    *same_key = h->key == key;
    *seq = h->seq;
    *total = h->total_bytes;
    return Status::OK();
  }

  // Describe from the record's bytes (the header and key and, on a
  // mismatch, the body), read rather than mapped: what the open holds of a
  // sealed segment is the record at hand, not the pages around it.
  Status DescribeRead(Location loc, std::string_view key, bool* same_key, uint64_t* seq, uint64_t* total) {
    RecordHeader header;
    Status s = records_.ReadHead(loc, key, &header, same_key);
    if (!s.ok()) return s;
    *seq = header.seq;
    *total = header.total_bytes();
    // A mismatch with a body that fails its checksum: the key bytes may be
    // the damaged ones; the hint, when there is one, knows the key.
    if (*same_key) return Status::OK();
    auto body = records_.BodyMatches(loc, header);
    if (!body.ok()) return body.status();
    if (body.value()) return Status::OK();
    if (const HintedRecord* h = Hinted(LocationSegment(loc), LocationOffset(loc)); h != nullptr)
      *same_key = h->key == key;
    return Status::OK();
  }

  const HintedRecord* Hinted(uint32_t segment_id, uint64_t offset) {
    auto [it, fresh] = hinted_.try_emplace(segment_id);
    if (fresh) {
      // Whatever the segment file's size now (cut, missing): an intact hint
      // still says what its records were.
      LoadHintFile(w_.env_, JoinPath(w_.dir_, HintFileName(segment_id)), segment_id, kAnySegmentSize, w_.limits_,
                   [&](const HintEntry& e) {
                     it->second[e.offset] = HintedRecord{e.seq, e.total_bytes, e.type, std::string(e.key)};
                   })
          .ok();
    }
    auto r = it->second.find(offset);
    return r == it->second.end() ? nullptr : &r->second;
  }

  Writer::Impl& w_;
  CandidateReader records_;  // the records index candidates point to
  uint64_t max_seq_ = 0;
  // ApplyBatch's hashes of the batch at hand and of the next one; the next
  // batch is recognised by its size and its first key's address.
  uint64_t hash_store_[2][kHintBatchEntries] = {};
  uint64_t* hashes_ = hash_store_[0];
  uint64_t* next_hashes_ = hash_store_[1];
  size_t announced_count_ = 0;
  const char* announced_key_ = nullptr;
  std::map<uint32_t, std::unordered_map<uint64_t, HintedRecord>> hinted_;  // only segments with unreadable candidates
  std::unordered_map<Location, HintedRecord> unreadable_;
};

}  // namespace

Status Writer::Impl::Unreadable(uint32_t id, const char* what, const Status& why) {
  if (why.Is(Code::kBusy)) return why;
  const std::string line = "recovery: segment " + std::to_string(id) + ": " + what + " cannot be read (" +
                           std::string(why.message()) + "); the open fails and changes nothing of the segment, " +
                           "whose records past that point are not taken for a torn tail";
  LogError(line);
  return Status::IOError(line);
}

Status Writer::Impl::CutZeroTail(uint32_t id, uint64_t size, uint64_t end) {
  Log("recovery: segment " + std::to_string(id) + ": " + std::to_string(size - end) +
      " zero byte(s) after its last record at offset " + std::to_string(end) +
      (options_.read_only ? "; left on disk (read-only)" : "; cut"));
  if (options_.read_only) return Status::OK();
  auto file = env_.OpenFile(JoinPath(dir_, SegmentFileName(id)), OpenMode::kReadWrite);
  if (!file.ok()) return file.status();
  Status s = file.value()->Truncate(end);
  if (s.ok()) s = file.value()->Sync();
  cache_.Forget(id);  // the mapping's idea of the size is stale
  return s;
}

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
  // point to: only leftovers that were never published (*.tmp, a segment
  // whose creation was cut short, a torn tail) and segments whose removal the
  // MANIFEST holds (written only after compaction moved the index off them).
  IndexCounters& counters = index_.counters();
  const bool ro = options_.read_only;
  cache_.Clear();
  segments_.clear();
  pending_ids_.clear();
  births_.clear();
  next_birth_ = 1;
  corruptions_ = 0;
  missing_segments_ = 0;
  recovered_max_seq_.clear();

  // ---- 1. The directory.
  auto names = env_.ListDir(dir_);
  if (!names.ok()) return names.status();
  std::vector<uint32_t> ids;
  std::vector<uint32_t> hint_ids;
  for (const std::string& name : names.value()) {
    uint32_t id = 0;
    if (ParseSegmentFileName(name, &id)) {
      ids.push_back(id);
    } else if (ParseHintFileName(name, &id)) {
      hint_ids.push_back(id);
    } else if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
      // A large value, compaction output or MANIFEST that never got its name: never published.
      if (ro) continue;
      Status s = env_.RemoveFile(JoinPath(dir_, name));
      if (!s.ok() && !s.Is(Code::kNotFound)) return s;
    }
  }
  std::sort(ids.begin(), ids.end());

  // ---- 2. The MANIFEST, the headers, the seed.
  ManifestState listed;
  bool have_manifest = false;
  {
    auto m = Manifest::Read(env_, dir_);
    if (m.ok()) {
      listed = std::move(m.value());
      have_manifest = true;
      if (!listed.header_ok) {
        ++corruptions_;
        LogError("recovery: the MANIFEST's header is damaged; its entries are used, the seed comes from the segments");
      }
      if (listed.damaged_entries > 0) {
        ++corruptions_;
        LogError("recovery: " + std::to_string(listed.damaged_entries) +
                 " MANIFEST entr(ies) failed their checksum and were skipped");
      }
    } else if (m.status().Is(Code::kCorruption)) {
      ++corruptions_;
      LogError("recovery: the MANIFEST is unreadable (" + m.status().ToString() +
               "); missing segments cannot be detected on this open");
    } else if (!m.status().Is(Code::kNotFound)) {
      return m.status();
    }
  }

  std::vector<SegmentFileInfo> files;
  for (uint32_t id : ids) {
    if (listed.removed.count(id) != 0) {
      // Its removal was recorded (durably) right before its unlink: every
      // record it held that mattered has a durable copy elsewhere. Finish it
      // (read-only: leave it, unread, as the MANIFEST says it is gone).
      if (ro) {
        Log("recovery: segment " + std::to_string(id) + " is recorded as deleted in the MANIFEST; not read");
        continue;
      }
      Log("recovery: finishing the deletion of segment " + std::to_string(id) + " (recorded in the MANIFEST)");
      Status s = env_.RemoveFile(JoinPath(dir_, SegmentFileName(id)));
      if (!s.ok() && !s.Is(Code::kNotFound)) return s;
      env_.RemoveFile(JoinPath(dir_, HintFileName(id))).ok();
      continue;
    }
    SegmentFileInfo f;
    f.id = id;
    auto size = env_.FileSize(JoinPath(dir_, SegmentFileName(id)));
    if (!size.ok()) return size.status();
    f.size = size.value();
    if (f.size >= kSegmentHeaderBytes) {
      char header[kSegmentHeaderBytes];
      Status hs = ReadExact(env_, JoinPath(dir_, SegmentFileName(id)), 0, kSegmentHeaderBytes, header);
      if (!hs.ok()) return Unreadable(id, "its header", hs);
      f.header_ok = DecodeSegmentHeader(header, kSegmentHeaderBytes, &f.header).ok() && f.header.segment_id == id;
    }
    const auto seal = listed.segments.find(id);
    if (CreationCutShort(f, seal != listed.segments.end() ? seal->second.sealed_bytes : 0) &&
        !HintSaysLonger(env_, dir_, id, f.size, limits_)) {
      // No room for a record: its creation was cut short (or an empty
      // segment lost its header). Nothing is lost by removing it. With a
      // finished hint of a longer segment, or a seal in the MANIFEST past
      // its header, the file was cut instead (a backup archive or a copy
      // cut inside its first bytes): read below as a sealed segment cut
      // short, reported at every open, its hint (if any) naming the keys
      // whose records were lost.
      Log("recovery: " + std::string(ro ? "ignoring" : "removing") + " segment " + std::to_string(id) + " (" +
          std::to_string(f.size) + " bytes, no valid header, no record)");
      cache_.Forget(id);
      listed.segments.erase(id);
      if (ro) continue;
      Status s = env_.RemoveFile(JoinPath(dir_, SegmentFileName(id)));
      if (!s.ok() && !s.Is(Code::kNotFound)) return s;
      env_.RemoveFile(JoinPath(dir_, HintFileName(id))).ok();
      continue;
    }
    files.push_back(f);
  }

  seed_ = listed.header_ok ? listed.seed : 0;
  if (seed_ == 0) {
    // The seed most valid headers hold (ties: the lowest id's).
    std::map<uint64_t, size_t> votes;
    for (const SegmentFileInfo& f : files)
      if (f.header_ok && f.header.seed != 0) ++votes[f.header.seed];
    size_t best = 0;
    for (const SegmentFileInfo& f : files) {
      if (!f.header_ok) continue;
      if (votes[f.header.seed] > best) {
        best = votes[f.header.seed];
        seed_ = f.header.seed;
      }
    }
  }
  if (seed_ == 0) {
    seed_ = NewHashSeed();
    if (!files.empty()) {
      ++corruptions_;
      LogError("recovery: no segment header and no MANIFEST can be trusted for the hash seed; a new one is used "
               "and every segment is read as damaged-header");
    }
  }

  // Birth order: the MANIFEST's; segments it does not list (a database from
  // before it, or adds a power loss dropped) are younger than every listed
  // one, among themselves in id order (ids were never reused before it).
  // Seals come along: a sealed segment keeps the length it was sealed at,
  // also when its file is shorter now (so every open reports the cut).
  for (const auto& [id, seg] : listed.segments) {
    births_[id] = seg;
    next_birth_ = std::max(next_birth_, seg.birth + 1);
  }
  for (const SegmentFileInfo& f : files)
    if (births_.count(f.id) == 0) births_[f.id] = ManifestSegment{next_birth_++, 0};

  {
    std::vector<std::pair<uint32_t, uint64_t>> sizes;
    for (const SegmentFileInfo& f : files) sizes.emplace_back(f.id, f.size);
    Status rs = index_.BeginRebuild(ExpectedKeys(sizes));
    if (rs.Is(Code::kNoSpace)) rs = index_.BeginRebuild(0);  // a wild estimate: grow as needed
    if (!rs.ok()) return rs;
  }
  // ---- 3, 4. Replay every segment.
  const int active_index = PickActiveSegment(files, seed_);
  Replayer replay(*this);
  uint64_t seq_floor = 1;
  std::unique_ptr<StagedHint> active_hint;  // the active segment's hint, written by its scan
  uint64_t active_valid_end = 0;
  bool active_torn = false;  // its scan met a cut record or garbage (reported as a torn tail)
  bool active_is_sealed = false;
  std::vector<uint32_t> sealed_for_damage;  // active segments sealed where their damaged records end
  std::vector<uint32_t> on_disk;
  for (size_t i = 0; i < files.size(); ++i) {
    const SegmentFileInfo& f = files[i];
    on_disk.push_back(f.id);
    SegmentStats& st = segments_[f.id];
    st.id = f.id;
    st.bytes = f.size;
    const std::string name = "segment " + std::to_string(f.id);
    if (f.header_ok && f.header.seed != seed_) {
      ++corruptions_;
      st.dead_bytes = f.size;
      LogError("recovery: " + name + " belongs to another database (its seed differs); skipped");
      continue;
    }
    if (!f.header_ok) {
      // Its records carry their own checksums: read them as a sealed segment.
      ++corruptions_;
      LogError("recovery: " + name + " has a damaged header; reading its records");
    } else {
      seq_floor = std::max(seq_floor, f.header.seq_floor);
    }
    // Its length when sealed (0: not sealed, or not known). A sealed segment
    // is never appended to again, also when it is the newest (a rotation cut
    // short before the next segment existed): a new one is created.
    uint64_t& sealed = births_[f.id].sealed_bytes;
    bool is_active = static_cast<int>(i) == active_index && sealed == 0;
    const std::string hint_path = JoinPath(dir_, HintFileName(f.id));
    const std::string segment_path = JoinPath(dir_, SegmentFileName(f.id));
    // The length the active segment's hint records in its trailer, read
    // unchecked (a few bytes): a clean close finishes that hint with the end
    // of the segment's last record. Only a length the file or its scan falls
    // short of is worth checking the whole hint for (0: nothing to check).
    uint64_t said = 0;
    if (is_active) {
      auto trailer = HintTrailerSegmentBytes(env_, hint_path);
      if (trailer.ok()) said = trailer.value();
    }
    if (said > f.size) {
      // A file shorter than its finished hint's length was cut after the
      // close: its records are lost, which the torn-tail rule would take for
      // writes never made. It is read as a sealed segment cut short instead
      // (reported below, the keys its hint names answer "damaged"), sealed
      // at that length, never appended to. A hint that is not finished (its
      // last bytes are entries, not a trailer) or cannot be read says
      // nothing: the segment is scanned as the active one.
      uint64_t closed_at = 0;
      Status cs = LoadHintFile(env_, hint_path, f.id, f.size, limits_, [](const HintEntry&) {}, &closed_at);
      if (cs.Is(Code::kCorruption) && closed_at > f.size) {
        sealed = closed_at;
        is_active = false;
      }
      said = 0;
    }
    if (static_cast<int>(i) == active_index && !is_active) active_is_sealed = true;
    Status inner;
    uint64_t recorded = 0;
    bool cut_reported = false;  // the segment is shorter than it was sealed at: counted once
    auto apply = [&](std::span<const HintEntry> batch, std::span<const HintEntry> next) {
      if (inner.ok()) inner = replay.ApplyBatch(f.id, batch, next);
    };
    // The active segment is always scanned (its hint, finished or not, is
    // rebuilt from the scan and appended to again).
    Status hs = is_active ? Status::NotFound("the active segment is scanned")
                          : LoadHintFileBatches(env_, hint_path, f.id, f.size, limits_, apply, &recorded);
    if (hs.Is(Code::kCorruption) && recorded >= kSegmentHeaderBytes && recorded < f.size) {
      // An intact hint of a shorter segment followed by zero bytes: the hint
      // names every record, so the zeros (a cut of the preallocated room that
      // the device did not keep) hold none. No damage: cut them.
      auto zero = ReadAllZero(env_, segment_path, recorded, f.size - recorded);
      if (!zero.ok()) return Unreadable(f.id, "the bytes after its hint's last record", zero.status());
      if (zero.value()) {
        hs = LoadHintFileBatches(env_, hint_path, f.id, recorded, limits_, apply);
        if (hs.ok()) {
          Status cs = CutZeroTail(f.id, f.size, recorded);
          if (!cs.ok()) return cs;
          st.bytes = recorded;
        }
      }
    }
    if (hs.Is(Code::kCorruption) && recorded > f.size && !is_active) {
      // An intact hint of a longer segment: the file was cut. The hint still
      // names what the lost bytes held, so those keys answer "damaged"
      // (their records read past the end) rather than an older value.
      hs = LoadHintFileBatches(env_, hint_path, f.id, kAnySegmentSize, limits_, apply);
      if (hs.ok()) {
        ++corruptions_;
        cut_reported = true;
        LogError("recovery: " + name + " holds " + std::to_string(f.size) + " bytes but its hint describes " +
                 std::to_string(recorded) + ": the file was cut; keys whose records were lost answer 'damaged'");
      }
    }
    if (!inner.ok()) return inner;
    // A hint only saves reading its segment: one that cannot be read costs a
    // scan (entries it handed out before the page that failed are replayed
    // again by the scan, which counts each record once).
    const bool hint_unreadable = hs.Is(Code::kIOError);
    if (hint_unreadable) {
      index_.counters().read_failures.fetch_add(1, std::memory_order_relaxed);
      LogError("recovery: hint of " + name + " cannot be read (" + hs.ToString() + "); scanning the segment");
    }
    if (sealed != 0 && f.size < sealed && !cut_reported) {
      // Its seal is the length its durable cut left: the missing bytes held
      // records, also when the file now ends at a record boundary.
      ++corruptions_;
      cut_reported = true;
      LogError("recovery: " + name + " holds " + std::to_string(f.size) + " bytes but was sealed at " +
               std::to_string(sealed) + " (MANIFEST): the file was cut; the records in the last " +
               std::to_string(sealed - f.size) + " bytes are lost" +
               (hs.ok() ? "" : " and, without an intact hint, so is which keys they held"));
    }
    if (hs.ok()) {
      if (sealed == 0 && !cut_reported) sealed = st.bytes;  // an intact hint ends where its last record does
      continue;
    }
    if (!hs.Is(Code::kNotFound) && !hs.Is(Code::kCorruption) && !hint_unreadable) return hs;  // never guess
    // A sealed segment's hint is finished or removed, so a bad one there is
    // damage (it costs a scan); the active segment's is not read.
    const bool hint_damaged = hs.Is(Code::kCorruption) && !is_active;
    if (hint_damaged) {
      ++corruptions_;
      LogError("recovery: hint of " + name + " is damaged (" + hs.ToString() + "); scanning the segment");
    }
    // Read, not mapped: a sector that cannot be read is an I/O error naming
    // where, never a SIGBUS, and never a place the torn-tail rule would cut.
    // Read through a window: a scan holds a few MiB, not the segment.
    auto segment_file = env_.OpenFile(segment_path, OpenMode::kRead);
    if (!segment_file.ok()) return Unreadable(f.id, "its records", segment_file.status());
    SegmentWindow window(*segment_file.value(), segment_path, f.size);
    // A sealed segment's records, for a fresh hint when it scans clean; the
    // active segment's, for its hint. Written as the scan goes.
    std::unique_ptr<StagedHint> hint;
    if (!ro)
      hint = std::make_unique<StagedHint>(env_, hint_path, f.id, (is_active ? "hint of active " : "hint of ") + name,
                                          [this](const std::string& line) { Log(line); });
    Status as;
    std::optional<ScanItem> torn;  // the active segment's torn tail
    bool zero_damage = false;  // a sealed segment ends in zeros nothing vouches for
    uint64_t zero_cut = 0;     // a sealed segment's zeros start at its seal: cut there
    const bool seq_ordered = f.header_ok && (f.header.flags & kSegmentFlagSealedAtBirth) == 0;
    // The hint a clean close finished for the active segment (said > 0),
    // loaded whole at the first damage its scan meets: it says which keys
    // the damaged bytes held, where the bytes themselves may name another
    // key (a damaged key byte) or none. Null when there is none to trust.
    std::optional<HintNames> closed_hint;
    auto names_of_closed = [&]() -> const HintNames* {
      if (!is_active || said == 0) return nullptr;
      if (!closed_hint) {
        auto loaded = HintNames::Load(env_, hint_path, f.id, said, limits_);
        if (!loaded.ok()) {
          as = Unreadable(f.id, "the hint its clean close finished", loaded.status());
          closed_hint.emplace();
        } else {
          closed_hint = std::move(loaded.value());
        }
      }
      return closed_hint->usable() ? &*closed_hint : nullptr;
    };
    // Damaged bytes the closed hint names records in: those records (keys,
    // seqs) are what was written there, indexed as damaged. False when
    // nothing names them.
    auto apply_named = [&](const ScanItem& item) {
      const HintNames* names = names_of_closed();
      if (names == nullptr) return false;
      std::span<const NamedRecord> named = names->In(item.offset, item.offset + item.bytes);
      if (named.empty()) return false;
      for (const NamedRecord& n : named) {
        const HintEntry e = n.entry();
        replay.NoteUnreadable(f.id, e);
        if (as.ok()) as = replay.Apply(f.id, e);
        if (hint) hint->Add(e);
      }
      return true;
    };
    // The segment's hint file as written (one a crash left unfinished, or a
    // damaged one), loaded at the first damaged record no finished hint
    // names: the key it names there replaces the record's own key bytes when
    // the record's body checksum proves it (a damaged key byte).
    std::optional<HintNames> written_hint;
    auto proven_key = [&](const ScanItem& item) -> const NamedRecord* {
      if (item.record == nullptr || hint_unreadable) return nullptr;
      if (!written_hint) {
        auto loaded = HintNames::LoadAsWritten(env_, hint_path, f.id, limits_);
        if (!loaded.ok()) {
          index_.counters().read_failures.fetch_add(1, std::memory_order_relaxed);
          LogError("recovery: hint of " + name + " cannot be read (" + loaded.status().ToString() +
                   "); its damaged records are named by their own bytes");
        }
        written_hint = loaded.ok() ? std::move(loaded.value()) : HintNames{};
      }
      return written_hint->ProvenAt(item.offset, item.header, item.record);
    };
    auto scan = ScanSegment(window, is_active, seq_ordered, limits_, [&](const ScanItem& item) {
      if (!as.ok()) return;
      switch (item.event) {
        case ScanEvent::kRecord:
        case ScanEvent::kDamagedRecord: {
          HintEntry e{item.header.seq, item.offset, item.bytes, item.header.type, item.key};
          if (item.event == ScanEvent::kDamagedRecord) {
            ++corruptions_;
            const bool named = apply_named(item);
            const NamedRecord* proven = named ? nullptr : proven_key(item);
            if (proven != nullptr) e.key = proven->key;
            LogError("recovery: " + name + " offset " + std::to_string(item.offset) + ": damaged record (" +
                     std::to_string(item.bytes) + " bytes, seq " + std::to_string(item.header.seq) +
                     (item.header_trusted ? "" : " at most") + "): " + item.why.ToString() +
                     (named ? "; the key the hint its clean close finished names there"
                      : proven != nullptr
                          ? "; its key bytes are damaged: the key its hint names there (its checksum proves it)"
                          : "; its key") +
                     " answers 'damaged' until overwritten");
            if (named || !as.ok()) break;
          }
          if (!item.header_trusted) replay.NoteUnreadable(f.id, e);
          as = replay.Apply(f.id, e);
          if (hint) hint->Add(e);
          break;
        }
        case ScanEvent::kCorruptBytes: {
          ++corruptions_;
          const bool named = apply_named(item);
          if (!named) st.dead_bytes += item.bytes;
          LogError("recovery: " + name + ": " + std::to_string(item.bytes) + " corrupt byte(s) at offset " +
                   std::to_string(item.offset) + " (" + item.why.ToString() + "); skipped, reading resumes after them" +
                   (named ? "; the keys the hint its clean close finished names there answer 'damaged'" : ""));
          break;
        }
        case ScanEvent::kTornTail:
          torn = item;  // logged below, unless a finished hint shows it is damage
          break;
        case ScanEvent::kZeroTail:
          if (is_active) break;  // the preallocated room: the end of the log (cut below)
          if (sealed != 0 && item.offset == sealed) {
            zero_cut = item.offset;  // its seal ends where the zeros begin: a cut the device did not keep
            break;
          }
          // A sealed segment's cut is durable before its hint is finished and
          // before the next segment exists, so without an intact hint to end
          // there, zeros after its records may be records a device lost.
          ++corruptions_;
          zero_damage = true;
          st.dead_bytes += item.bytes;
          LogError("recovery: " + name + ": " + std::to_string(item.bytes) + " zero byte(s) at offset " +
                   std::to_string(item.offset) + " after the last record of a sealed segment without an intact " +
                   "hint or a seal ending there; records there may have been lost; left in place");
          break;
      }
    });
    if (!scan.ok()) return Unreadable(f.id, "its records", scan.status());
    if (!as.ok()) return as;
    const ScanSummary& sum = scan.value();
    if (zero_cut != 0) {
      Status cs = CutZeroTail(f.id, f.size, zero_cut);
      if (!cs.ok()) return cs;
      st.bytes = zero_cut;
    }
    // Where the active segment's valid records end, before the length its
    // finished hint records: the records between are damaged, not a torn
    // tail (a clean close made them durable). The segment is sealed at that
    // length instead of cut and appended to: the damage stays in place, is
    // reported at every open, and no later record goes behind it.
    bool damaged_tail = false;
    std::span<const NamedRecord> tail_named;
    if (is_active && said > sum.valid_end) {
      const HintNames* names = names_of_closed();
      if (!as.ok()) return as;
      damaged_tail = names != nullptr;  // damage even when it names no record there: the length says so
      if (names != nullptr) tail_named = names->In(sum.valid_end, said);
    }
    if (damaged_tail) {
      ++corruptions_;
      LogError("recovery: " + name + ": its records end at " + std::to_string(said) +
               " (the hint its clean close finished) but its last valid record ends at " +
               std::to_string(sum.valid_end) + ": the bytes between are damaged records, not a torn tail; " +
               "their keys answer 'damaged'; the segment is sealed there and never appended to");
      for (const NamedRecord& n : tail_named) {
        const HintEntry e = n.entry();
        replay.NoteUnreadable(f.id, e);
        Status ds = replay.Apply(f.id, e);
        if (!ds.ok()) return ds;
      }
      is_active = false;
      active_is_sealed = true;
      sealed = said;
      sealed_for_damage.push_back(f.id);
      if (hint) hint->Drop();
      if (!ro && f.size > said) {
        // The preallocated room after the records: cut, as a sealed
        // segment's zeros past its seal are.
        auto zero = ReadAllZero(env_, segment_path, said, f.size - said);
        if (!zero.ok()) return Unreadable(f.id, "the bytes after its records", zero.status());
        if (zero.value()) {
          Status cs = CutZeroTail(f.id, f.size, said);
          if (!cs.ok()) return cs;
          st.bytes = said;
        }
      }
    } else if (torn) {
      Log("recovery: " + name + ": torn tail of " + std::to_string(torn->bytes) + " byte(s) at offset " +
          std::to_string(torn->offset) + " (" + torn->why.ToString() + ")" +
          (ro ? "; left on disk (read-only)" : "; cut"));
    }
    if (damaged_tail) {
      // Sealed above; its finished hint is removed once the seal is in the
      // MANIFEST (below), so that every later open reads it and reports it.
    } else if (is_active) {
      active_valid_end = sum.valid_end;
      active_torn = torn.has_value();
      active_hint = std::move(hint);
    } else {
      const bool clean = f.header_ok && sum.corrupt_ranges == 0 && sum.damaged_records == 0 && !zero_damage;
      if (clean && sealed == 0 && !cut_reported) sealed = st.bytes;  // it ends at its last record
      if (!ro && clean && !cut_reported) {
        // A clean sealed segment without a usable hint (damaged, missing, or of
        // an older version) gets one again. One with damage (or cut shorter
        // than its seal) keeps being read, so that the damage stays visible at
        // every open.
        if (hint) hint->PublishSealed(st.bytes);
      }
    }
  }

  // ---- 5. Missing segments and orphan hints.
  std::sort(on_disk.begin(), on_disk.end());
  std::set<uint32_t> missing;
  if (have_manifest) {
    for (const auto& [id, birth] : listed.segments)
      if (!std::binary_search(on_disk.begin(), on_disk.end(), id)) missing.insert(id);
  }
  for (uint32_t id : hint_ids) {
    if (ro || std::binary_search(on_disk.begin(), on_disk.end(), id) || missing.count(id) != 0) continue;
    // A large value or compaction output that never got its name.
    Status s = env_.RemoveFile(JoinPath(dir_, HintFileName(id)));
    if (!s.ok() && !s.Is(Code::kNotFound)) return s;
  }
  for (uint32_t id : missing) {
    ++corruptions_;
    ++missing_segments_;
    SegmentStats& st = segments_[id];
    st.id = id;
    st.missing = true;
    Status inner;
    Status hs = LoadHintFile(env_, JoinPath(dir_, HintFileName(id)), id, kAnySegmentSize, limits_,
                             [&](const HintEntry& e) {
                               if (inner.ok()) inner = replay.Apply(id, e);
                             });
    if (!inner.ok()) return inner;
    if (hs.ok()) {
      LogError("recovery: segment " + std::to_string(id) + " is listed in the MANIFEST but its file is missing; "
               "the keys its hint lists answer 'missing' until overwritten");
    } else {
      LogError("recovery: segment " + std::to_string(id) + " is listed in the MANIFEST but its file is missing, "
               "and so is a usable hint (" + hs.ToString() + "): the keys it held may answer older values");
    }
  }

  next_seq_ = std::max({seq_floor, replay.max_seq() + 1, listed.seq_high_water});

  // Deletes were kept as tombstones so that older puts replayed later lose; drop them now.
  index_.RemoveIf([](uint64_t, Location loc) { return IsTombstone(loc); });
  keys_ = index_.size();

  // ---- 7 (first part). A fresh MANIFEST and a seq reservation: before any
  // new segment is created (which consumes a seq).
  for (auto it = births_.begin(); it != births_.end();) {  // drop births of files removed above
    const bool exists = std::binary_search(on_disk.begin(), on_disk.end(), it->first) || missing.count(it->first);
    it = exists ? std::next(it) : births_.erase(it);
  }
  next_segment_id_ = on_disk.empty() ? 1 : (on_disk.back() >= kMaxSegmentId ? 1 : on_disk.back() + 1);
  if (!ro) StartPastKeyViewIds();
  if (ro) {
    // Nothing is appended: the active segment is read up to its last valid
    // record (a torn tail stays on disk, untouched), no segment is created.
    read_only_tail_id_ = 0;
    if (active_index >= 0 && !active_is_sealed) {
      SegmentStats& st = segments_[files[static_cast<size_t>(active_index)].id];
      // Its bytes are its records, as after a writing open's cut: the
      // preallocated room or a torn tail after them is no record's, live or dead.
      st.bytes = std::min(st.bytes, active_valid_end);
      read_only_tail_id_ = st.id;
      read_only_tail_bytes_ = st.bytes;
    }
    read_only_ = true;
    read_only_flag_.store(true, std::memory_order_relaxed);
    read_only_cause_ = Status::ReadOnly("the database was opened read-only");
  } else {
    auto m = Manifest::Create(env_, dir_, seed_, births_, next_seq_ + kSeqReserve);
    if (m.ok()) {
      manifest_ = std::move(m.value());
      // Their seals are durable now: without the hint their clean close
      // finished (which would be used instead of reading them), every later
      // open reads them as sealed segments and reports their damage.
      for (uint32_t id : sealed_for_damage) {
        Status rs = env_.RemoveFile(JoinPath(dir_, HintFileName(id)));
        if (rs.ok()) rs = env_.SyncDir(dir_);
        if (!rs.ok() && !rs.Is(Code::kNotFound))
          LogError("recovery: hint of damaged segment " + std::to_string(id) + " not removed (" + rs.ToString() +
                   "); later opens may read it from that hint without reporting its damage");
      }
    } else {
      // Reads go on; writes wait for the reservation (ReserveSeqs retries).
      LogError("recovery: the MANIFEST could not be written (" + m.status().ToString() +
               "); writes fail until it can be");
    }
  }

  if (!ro && options_.room_bytes > 0 && options_.sync == SyncMode::kAlways)
    extender_ = std::make_unique<SegmentExtender>([this] { return RoomStepBytes(); }, options_.log,
                                                  [this](uint64_t bytes) { return disk_.Spare(bytes); });
  if (ro) {
    // Read-only: see above.
  } else if (active_index >= 0 && !active_is_sealed) {
    const SegmentFileInfo& f = files[static_cast<size_t>(active_index)];
    auto file = env_.OpenFile(JoinPath(dir_, SegmentFileName(f.id)), OpenMode::kReadWrite);
    if (!file.ok()) return file.status();
    active_ = std::move(file.value());
    if (active_valid_end < f.size) {
      // Every restart cuts the preallocated zero room (FORMAT.md), so only a
      // torn tail is worth an operator's attention, and its line (above)
      // already names the segment and the offset: this one is detail.
      LogDebug("recovery: truncating segment " + std::to_string(f.id) + " from " + std::to_string(f.size) + " to " +
               std::to_string(active_valid_end) + " bytes (" +
               (active_torn ? "the torn tail reported above" : "the preallocated zero room past the last record") +
               ")");
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
    if (active_hint) active_hint_ = active_hint->PublishActive();
    // Without a fresh one, the hint a clean close finished must go: it
    // describes a length the segment will pass.
    Status hs = active_hint_ ? env_.SyncDir(dir_) : Status::IOError("no fresh hint");
    if (!hs.ok()) {
      Log("recovery: hint of active segment " + std::to_string(f.id) + " not written: " + hs.ToString());
      active_hint_.reset();
      env_.RemoveFile(JoinPath(dir_, HintFileName(f.id))).ok();
    }
    StartRoom(f.id, active_size_);
  } else {
    // Without a MANIFEST, or without room for a segment (a full disk), the
    // new segment waits for the first write: reads go on meanwhile.
    if (manifest_) {
      Status s = CreateActiveSegment();
      if (s.Is(Code::kNoSpace)) LogError("recovery: no room for a new active segment (" + s.ToString() +
                                         "); the first write that finds room creates it");
      else if (!s.ok()) return s;
    }
  }
  active_hint.reset();
  for (auto& [id, st] : segments_) {
    auto it = recovered_max_seq_.find(id);
    if (it != recovered_max_seq_.end()) st.max_seq = it->second;
  }

  if (corruptions_ > 0)
    LogError("recovery: " + std::to_string(corruptions_) + " damaged record(s), range(s), header(s), hint(s) or "
             "missing segment(s) found; `kingx-tool verify` lists them");
  index_.PublishRebuild(seed_);
  counters.corruptions.store(corruptions_, std::memory_order_relaxed);
  PublishCounters();
  // Files may have been removed or cut, and ids are reused: readers drop and
  // revalidate their mappings before they read through the new index.
  counters.segment_epoch.fetch_add(1, std::memory_order_release);
  counters.ready.store(1, std::memory_order_release);
  return Status::OK();
}

void Writer::Impl::StartPastKeyViewIds() {
  // An entry of the view's runs may name a record of a segment deleted since
  // (by compaction, here or in an earlier process): no segment this process
  // creates, from the active one below on, may take such an id while the
  // runs can be read (keyspace.h). Every writing open does this, kingx-tool's
  // too, whether or not it starts the view.
  const std::string keys = JoinPath(dir_, kKeyViewDirName);
  KeyspaceManifest m;
  std::vector<uint64_t> named;
  Status s = ReadKeyspaceManifest(env_, keys, seed_, &m);
  if (s.ok()) s = AppendNamedSegmentIds(env_, keys, seed_, m.runs, &named);
  if (s.ok()) {
    next_segment_id_ = SegmentIdPast(next_segment_id_, named);
    return;
  }
  // No view, or one its open will not trust either (it rebuilds): no id to avoid.
  if (s.Is(Code::kNotFound) || s.Is(Code::kCorruption)) return;
  // Unreadable now, perhaps readable by the view's open: it must not trust
  // entries whose ids this process may give. Without its MANIFEST it rebuilds.
  Status rs = env_.RemoveFile(JoinPath(keys, kKeyspaceManifestName));
  if (rs.ok()) rs = env_.SyncDir(keys);  // a crash must not bring it back beside this process's segments
  LogError("recovery: the sorted key view's checkpoint could not be read (" + s.ToString() + "); " +
           (rs.ok() || rs.Is(Code::kNotFound) ? std::string("it was removed: the view is rebuilt from the segments")
                                              : "nor durably removed (" + rs.ToString() + ")"));
}

}  // namespace kingx::engine
