// Keyspace catch-up and rebuild (see keyspace.h): reading puts back from the
// segments into runs, while segment deletions are pinned.
//
// A catch-up (at open: from the MANIFEST's covered seq; after a loss: from
// the seq below which the runs hold every put) reads the segments whose
// highest seq (SegmentStats::max_seq) is at or above it, and those where it
// is not tracked (compaction outputs); a rebuild reads every segment. Both take the
// puts with seq in [from, tail_start_) (the tails hold the rest), sort them
// in chunks of chunk_entries, resolve each key against the index (a record
// moved by compaction since is followed to its copy; candidates in segments
// of the cut are not read, since the job reads those segments itself) and
// write each chunk as a run. The runs are published together; the view is
// then complete (kReady).
#include <algorithm>
#include <deque>
#include <unordered_set>

#include "engine/hash.h"
#include "engine/hint_file.h"
#include "engine/key_resolve.h"
#include "engine/keyspace.h"
#include "engine/read_exact.h"
#include "engine/segment_scan.h"
#include "engine/segment_window.h"
#include "engine/writer_impl.h"

namespace kingx::engine {
namespace {

// Calls fn for every put or delete record of segment `id` (its first `bytes`
// bytes): from its hint file when that checks out, else by reading the
// records as recovery does (ScanSegment: a damaged record or range is
// skipped, reading resumes at the next valid record; only valid records are
// passed on). The records are read with read(2) through a SegmentWindow,
// never mapped: the call holds at most one window of the segment (and one
// record larger than it) whatever the segment's size, and nothing of it once
// it returns. A byte that cannot be read fails the call with the window's
// kIOError naming the file and the offset: it is never taken for damage (the
// records after it are not skipped). A segment file that is gone: kNotFound.
Status ForEachSegmentEntry(Writer::Impl& w, uint32_t id, uint64_t bytes,
                           const std::function<void(const HintEntry&)>& fn) {
  Status hs = LoadHintFile(w.env_, JoinPath(w.dir_, HintFileName(id)), id, bytes, w.limits_, fn);
  if (hs.ok()) return hs;
  if (bytes <= kSegmentHeaderBytes) return Status::OK();
  const std::string path = JoinPath(w.dir_, SegmentFileName(id));
  auto file = w.env_.OpenFile(path, OpenMode::kRead);
  if (!file.ok()) return file.status();
  SegmentWindow window(*file.value(), path, bytes);
  // Which segment is appended to, and its seq order, only classify what is
  // skipped (a tail, a damaged record's seq): valid records come the same.
  auto scan = ScanSegment(window, /*active=*/false, /*seq_ordered=*/false, w.limits_, [&](const ScanItem& item) {
    if (item.event == ScanEvent::kRecord)
      fn(HintEntry{item.header.seq, item.offset, item.bytes, item.header.type, item.key});
  });
  return scan.ok() ? Status::OK() : scan.status();
}

// Sets the size and content type of the entries of *out at `unknown` from
// their records' first bytes (header, key, content type), read with read(2),
// never mapped: a mapping kept every page of every live record it touched
// resident in the process until the end, a whole database after a rebuild.
// The records are read in file order; records less than kReadGapBytes apart
// share one read of at most kReadSpanBytes, so a dense chunk costs few
// calls and a sparse one reads little more than its records. Memory: one
// span. An entry whose record cannot be read or checked keeps the unknown
// size: a listing reads its record again and reports the damage rather
// than guessing. The segments are pinned by the job (they exist).
constexpr uint64_t kReadGapBytes = 4 << 10;
constexpr uint64_t kReadSpanBytes = 1 << 20;

void ReadSizes(Writer::Impl& w, std::vector<KeyEntry>* out, std::vector<size_t>* unknown,
               std::deque<std::string>* store) {
  std::sort(unknown->begin(), unknown->end(), [&](size_t a, size_t b) {
    const KeyEntry& x = (*out)[a];
    const KeyEntry& y = (*out)[b];
    return x.segment != y.segment ? x.segment < y.segment : x.offset < y.offset;
  });
  std::unique_ptr<char[]> span;
  // Sets e from the record whose first `have` bytes are at p; false when they do not check out.
  auto fill = [&](KeyEntry& e, const char* p, uint64_t have, uint64_t file_size) {
    RecordHeader h;
    if (have < kRecordHeaderBytes || !DecodeRecordHeader(p, file_size - e.offset, w.limits_, &h).ok()) return;
    if (kRecordHeaderBytes + h.key_len + h.meta_len > have) return;
    e.raw_len = h.raw_len;
    store->emplace_back(p + kRecordHeaderBytes + h.key_len, h.meta_len);
    e.content_type = store->back();
  };
  for (size_t i = 0; i < unknown->size();) {
    const uint64_t id = (*out)[(*unknown)[i]].segment;
    size_t end = i;
    while (end < unknown->size() && (*out)[(*unknown)[end]].segment == id) ++end;
    const std::string path = JoinPath(w.dir_, SegmentFileName(static_cast<uint32_t>(id)));
    auto file = w.env_.OpenFile(path, OpenMode::kRead);
    auto size = file.ok() ? file.value()->Size() : Result<uint64_t>(file.status());
    if (!size.ok()) {
      i = end;
      continue;
    }
    const uint64_t file_size = size.value();
    // The bytes a record's entry needs: its header, key and content type at most.
    auto need = [&](const KeyEntry& e) {
      if (e.offset >= file_size) return uint64_t{0};
      return std::min<uint64_t>(kRecordHeaderBytes + e.key.size() + kMaxMetaBytes, file_size - e.offset);
    };
    for (size_t k = i; k < end;) {
      // A span: records from k on while each starts less than kReadGapBytes
      // after the previous one's needed bytes, within kReadSpanBytes.
      const uint64_t from = (*out)[(*unknown)[k]].offset;
      uint64_t to = from + need((*out)[(*unknown)[k]]);
      size_t last = k + 1;
      for (; last < end; ++last) {
        const KeyEntry& e = (*out)[(*unknown)[last]];
        const uint64_t e_to = e.offset + need(e);
        if (e.offset > to + kReadGapBytes || e_to - from > kReadSpanBytes) break;
        to = std::max(to, e_to);
      }
      if (to > from) {
        if (!span) span.reset(new char[kReadSpanBytes + kRecordHeaderBytes + 65536 + kMaxMetaBytes]);
        if (ReadExact(*file.value(), path, from, to - from, span.get()).ok()) {
          for (size_t r = k; r < last; ++r) {
            KeyEntry& e = (*out)[(*unknown)[r]];
            fill(e, span.get() + (e.offset - from), need(e), file_size);
          }
        } else {
          // A sector somewhere in the span cannot be read: each record by itself.
          for (size_t r = k; r < last; ++r) {
            KeyEntry& e = (*out)[(*unknown)[r]];
            const uint64_t n = need(e);
            if (n > 0 && ReadExact(*file.value(), path, e.offset, n, span.get()).ok()) fill(e, span.get(), n, file_size);
          }
        }
      }
      k = last;
    }
    i = end;
  }
  unknown->clear();
}

}  // namespace

struct Keyspace::Collected {
  struct Item {
    uint64_t key_off;
    uint32_t key_len;
    uint64_t seq, segment, offset;
  };
  std::string keys;
  std::vector<Item> items;
  std::unordered_set<uint64_t> cut_segments;  // segments the job reads itself
  std::string_view Key(const Item& i) const { return std::string_view(keys.data() + i.key_off, i.key_len); }
};

void Keyspace::StartRecoveryAfterLoss() {
  // Same lock order as Add (writer's lock, then ours): no put slips between
  // the cleared tails and the job's upper bound.
  std::lock_guard wlock(w_.mu_);
  std::lock_guard lock(mu_);
  if (!lost_) return;
  region_.ClearTails();
  lost_ = false;
  tail_start_ = w_.next_seq_;
  tail_flushed_upto_ = tail_start_;
  complete_ = false;
  if (job_ != Job::kNone) {
    // A job that failed is retried as it was: it now reaches the new
    // tail_start_ (the runs its tail flushes left are kept either way).
    Log("the sorted view fell behind during an unfinished " +
        std::string(job_ == Job::kRebuild ? "rebuild" : "catch-up") + "; retrying it");
  } else if (covers_prefix_ && !rebuild_due_) {
    // The runs hold every put below covered_: only the gap is read back.
    Log("the sorted view fell behind; catching up from seq " + std::to_string(covered_));
    job_ = Job::kCatchUp;
    job_from_ = covered_;
    verify_manifest_ = false;
  } else {
    Log(std::string(rebuild_due_ ? "a key run was damaged" : "the sorted view fell behind before it was complete") +
        "; rebuilding it from the segments");
    job_ = Job::kRebuild;
    job_from_ = 0;
    job_run_floor_ = next_run_id_;
    verify_manifest_ = false;
    rebuild_due_ = false;
    covers_prefix_ = false;
  }
  if (!pinned_) {
    ++w_.pins_;
    pinned_ = true;
  }
  region_.SetState(KeyspaceState::kLost);
}

Status Keyspace::VerifyManifestRuns() {
  std::vector<RunInfo> runs;
  {
    std::lock_guard lock(mu_);
    runs = runs_;
  }
  for (RunInfo& r : runs) {
    if (r.run) continue;
    auto run = KeyRun::Open(w_.env_, RunPath(r.id), r.id, w_.seed_, /*verify_checksum=*/true);
    if (!run.ok()) return Status::Corruption("run " + KeyRunFileName(r.id) + ": " + run.status().ToString());
    std::lock_guard lock(mu_);
    for (RunInfo& live : runs_) {
      if (live.id != r.id) continue;
      live.entries = run.value()->entries();
      live.run = run.value();
    }
  }
  return Status::OK();
}

Status Keyspace::RunJob() {
  Job job;
  uint64_t from, below;
  bool verify;
  {
    std::lock_guard lock(mu_);
    job = job_;
    from = job_from_;
    below = tail_start_;
    verify = verify_manifest_;
    if (job == Job::kRebuild && job_run_floor_ == 0) job_run_floor_ = next_run_id_;
  }
  if (job == Job::kNone) return Status::OK();
  if (verify) {
    Status vs = VerifyManifestRuns();
    std::lock_guard lock(mu_);
    verify_manifest_ = false;
    if (!vs.ok()) {
      Log("checkpointed runs unusable (" + vs.ToString() + "): rebuilding from the segments");
      job_ = job = Job::kRebuild;
      job_from_ = from = 0;
      job_run_floor_ = next_run_id_;
      for (const RunInfo& r : runs_) doomed_.push_back(r.id);
      runs_.clear();
    }
  }
  if (job == Job::kRebuild) region_.counters().rebuilds.fetch_add(1, std::memory_order_relaxed);
  else region_.counters().catch_ups.fetch_add(1, std::memory_order_relaxed);
  const uint64_t t0 = NowMs();
  Collected c;
  std::vector<RunInfo> made;
  Status s = CollectSegments(from, below, job == Job::kRebuild, &c, &made);
  if (s.ok()) s = ChunkToRuns(&c, &made);
  if (!s.ok()) {
    for (const RunInfo& r : made) w_.env_.RemoveFile(RunPath(r.id)).ok();
    return s;
  }
  uint64_t entries = 0;
  for (const RunInfo& r : made) entries += r.entries;
  // The view after the job: its runs, then the runs it keeps (a rebuild keeps
  // those flushed from the tails meanwhile and replaces the rest), combined
  // as needed to fit the region.
  std::vector<RunInfo> next = made;
  std::vector<uint64_t> replaced;
  {
    std::lock_guard lock(mu_);
    for (const RunInfo& r : runs_) {
      if (job == Job::kRebuild && r.id < job_run_floor_) replaced.push_back(r.id);
      else next.push_back(r);
    }
  }
  s = FitRuns(&next, 0);
  if (!s.ok()) {
    for (const RunInfo& r : made) w_.env_.RemoveFile(RunPath(r.id)).ok();
    return s;
  }
  {
    std::lock_guard lock(mu_);
    doomed_.insert(doomed_.end(), replaced.begin(), replaced.end());
    runs_ = std::move(next);
    job_ = Job::kNone;
    job_run_floor_ = 0;
    dirty_ = true;
    PublishLocked(-1);
    // The runs now hold every put below the job's bound and those of the
    // tails flushed meanwhile, whatever happened to the tails since.
    covered_ = std::max(tail_start_, tail_flushed_upto_);
    covers_prefix_ = true;
    if (lost_) {
      // The tails overflowed again during the job: its runs stay, and the
      // loop catches up from covered_; the view is not complete.
      Log("the sorted view fell behind again during the " + std::string(job == Job::kRebuild ? "rebuild" : "catch-up"));
    } else {
      complete_ = true;
      last_checkpoint_ms_ = 0;  // checkpoint at once
      // A new cursor secret is on disk only after that checkpoint: until
      // then no cursor may be handed out (secret_on_disk_).
      if (o_.persist && !secret_on_disk_) ready_at_checkpoint_ = true;
      else region_.SetState(KeyspaceState::kReady);
    }
  }
  if (pinned_) {
    // The raw mutex, not w_.mu_.lock(): the pin count needs no drained
    // pipeline, and a drain here would wait for the fdatasync in flight while
    // the writer thread, behind this lock, could not answer the batches an
    // earlier sync already covers.
    w_.mu_.LockKeepingPipeline();
    std::lock_guard<std::mutex> wlock(w_.mu_.raw(), std::adopt_lock);
    if (w_.pins_ > 0) --w_.pins_;
    pinned_ = false;
  }
  // A catch-up is how every open resumes the view; a rebuild that found no
  // key had nothing to lose (a new database). A rebuild that found keys
  // means the view was missing or damaged: worth an operator's look.
  const bool routine = job == Job::kCatchUp || entries == 0;
  const std::string line = std::string(job == Job::kRebuild ? "rebuilt" : "caught up") + " the sorted view: " +
                           std::to_string(entries) + " entries in " + std::to_string(made.size()) + " run(s), " +
                           std::to_string(NowMs() - t0) + " ms";
  if (routine) LogInfo(line);
  else Log(line);
  return Status::OK();
}

Status Keyspace::CollectSegments(uint64_t from, uint64_t below, bool all_segments, Collected* c,
                                 std::vector<RunInfo>* made) {
  DatabaseCut cut;
  std::map<uint32_t, uint64_t> max_seq;  // per segment of the cut (kUnknownMaxSeq: read it)
  {
    // The raw mutex, as Writer::PinSegments takes it (no drain, so no wait
    // for the fdatasync in flight while the writer's answers wait behind
    // this lock): rotation, compaction's installs and deletions drain first,
    // so segments_ is settled; the cut leaves out the active segment's bytes
    // in flight, whose puts are at or above tail_start_ (the tails get them).
    w_.mu_.LockKeepingPipeline();
    std::lock_guard<std::mutex> wlock(w_.mu_.raw(), std::adopt_lock);
    cut = w_.CutLocked();
    for (const SegmentFileCut& f : cut.segments) {
      auto it = w_.segments_.find(f.id);
      max_seq[f.id] = it != w_.segments_.end() ? it->second.max_seq : SegmentStats::kUnknownMaxSeq;
    }
  }
  for (const SegmentFileCut& f : cut.segments) c->cut_segments.insert(f.id);
  // The cut's segments are pinned: none is deleted (nor its id reused) until
  // the job ends; mappings from before the pin are checked once here.
  RevalidateCache();
  uint64_t seen = 0;
  for (const SegmentFileCut& f : cut.segments) {
    if (!all_segments && max_seq[f.id] < from) continue;  // nothing at or above `from` in it
    Status inner;
    Status s = ForEachSegmentEntry(w_, f.id, f.bytes, [&](const HintEntry& e) {
      if (!inner.ok() || e.type != RecordType::kPut || e.seq < from || e.seq >= below) return;
      c->items.push_back(Collected::Item{c->keys.size(), static_cast<uint32_t>(e.key.size()), e.seq, f.id, e.offset});
      c->keys.append(e.key);
      if (c->items.size() >= o_.chunk_entries) inner = ChunkToRuns(c, made);
      if (++seen % 1024 == 0 && inner.ok()) inner = FlushFrozenTail();  // keep the tails moving
    });
    if (!inner.ok()) return inner;
    if (s.Is(Code::kNotFound)) continue;  // cannot happen while pinned; harmless if it does
    if (!s.ok()) return s;
    {
      std::lock_guard lock(mu_);
      if (stop_) return Status::Busy("keyspace closing");
    }
  }
  return Status::OK();
}

Status Keyspace::ChunkToRuns(Collected* c, std::vector<RunInfo>* made) {
  if (c->items.empty()) return Status::OK();
  std::vector<uint32_t> order(c->items.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    const int cmp = c->Key(c->items[a]).compare(c->Key(c->items[b]));
    if (cmp != 0) return cmp < 0;
    return c->items[a].seq > c->items[b].seq;
  });
  const std::function<bool(uint64_t)> skip = [c](uint64_t seg) { return c->cut_segments.count(seg) != 0; };
  std::vector<KeyEntry> out, group;
  std::vector<size_t> unknown;  // entries of out whose size and content type are to be read
  std::deque<std::string> store;
  out.reserve(order.size());
  for (size_t i = 0; i < order.size();) {
    group.clear();
    size_t j = i;
    const std::string_view key = c->Key(c->items[order[i]]);
    for (; j < order.size() && c->Key(c->items[order[j]]) == key; ++j) {
      const Collected::Item& it = c->items[order[j]];
      group.push_back(KeyEntry{key, it.seq, it.segment, it.offset, kKeyEntryUnknownSize, {}});
    }
    const size_t before = out.size();
    Status s = ResolveGroup(group, &store, &out, &skip);
    if (!s.ok()) return s;
    // Live where the job found it: its size and content type come from the
    // record, read below with the chunk's others, in file order.
    if (out.size() > before && out.back().raw_len == kKeyEntryUnknownSize) unknown.push_back(out.size() - 1);
    i = j;
    if ((i & 0x3FF) == 0) {
      Status fs = FlushFrozenTail();
      if (!fs.ok()) return fs;
    }
  }
  ReadSizes(w_, &out, &unknown, &store);
  Status s;
  if (!out.empty()) {
    auto r = WriteRun(out);
    if (r.ok()) made->push_back(std::move(r.value()));
    else s = r.status();
  }
  c->items.clear();  // after the run is written: `out` views these keys
  c->keys.clear();
  return s;
}

}  // namespace kingx::engine
