// Keyspace merges (see keyspace.h): which runs to merge, and the merge
// itself, which resolves every key against the index so the output holds
// each live key once, at its current record.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include "engine/hash.h"
#include "engine/key_resolve.h"
#include "engine/keyspace.h"
#include "engine/writer_impl.h"

namespace kingx::engine {
namespace {

// A run whose entries point into deleted segments at least this much is
// rewritten (compaction moved its records: readers would follow each entry
// to its copy through an extra record read).
constexpr double kStaleFraction = 0.25;
// Above this many runs, a busy keyspace merges its smallest runs anyway.
constexpr size_t kBusyRunLimit = 24;
// Entries merged between two looks at the tails.
constexpr uint64_t kTailCheckEvery = 1024;
// Entries of the largest run looked up when the view settles after
// overwrites (StaleShare): a quarter stale is told from a tenth with a
// standard error under 3 points, for 256 lookups whatever the run's size.
constexpr uint64_t kStaleSample = 256;

}  // namespace

void Keyspace::RevalidateCache() {
  const uint64_t epoch = w_.index_.counters().segment_epoch.load(std::memory_order_acquire);
  if (epoch == cache_epoch_) return;
  cache_.Revalidate();
  cache_epoch_ = epoch;
}

Status Keyspace::ResolveGroup(std::span<const KeyEntry> group, std::deque<std::string>* store,
                              std::vector<KeyEntry>* out, const std::function<bool(uint64_t)>* skip_segment) {
  if (group.empty()) return Status::OK();
  Location known[16];
  size_t index_of[16];
  size_t n = 0;
  for (size_t i = 0; i < group.size() && n < 16; ++i) {
    if (group[i].segment > kMaxSegmentId || group[i].offset > kMaxOffset) continue;
    known[n] = MakeLocation(group[i].segment, group[i].offset);
    index_of[n] = i;
    ++n;
  }
  // An entry the writer added but has not published yet would look dead:
  // wait for its batch (it publishes right after adding), boundedly.
  for (int waited = 0; group[0].seq > published_.load(std::memory_order_acquire) && waited < 20000; ++waited) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  const uint64_t hash = KeyHash(w_.seed_, group[0].key);
  Resolution r;
  Status s;
  // The index answers kBusy only while the writer holds a write section
  // (group commit, table growth): wait for it, boundedly.
  // A resolution read while a segment was deleted is read again: its id may
  // have named another file meanwhile.
  for (int attempt = 0; attempt < 2000; ++attempt) {
    RevalidateCache();
    const uint64_t epoch = cache_epoch_;
    s = ResolveKey(w_.index_, cache_, w_.limits_, hash, group[0].key, std::span<const Location>(known, n), &r,
                   skip_segment);
    if (!s.Is(Code::kBusy) && w_.index_.counters().segment_epoch.load(std::memory_order_acquire) == epoch) break;
    if (!s.Is(Code::kBusy)) continue;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (s.Is(Code::kBusy)) return s;
  if (!s.ok()) {
    // Cannot tell (a damaged candidate): keep the newest entry; a listing
    // meets the same damage and reports it.
    out->push_back(group[0]);
    return Status::OK();
  }
  switch (r.kind) {
    case Resolution::Kind::kDead:
      return Status::OK();
    case Resolution::Kind::kKnown:
      out->push_back(group[index_of[r.known_index]]);
      return Status::OK();
    case Resolution::Kind::kMoved:
      store->push_back(std::move(r.content_type));
      out->push_back(KeyEntry{group[0].key, r.seq, r.segment, r.offset, r.raw_len, store->back()});
      region_.counters().entries_repaired.fetch_add(1, std::memory_order_relaxed);
      return Status::OK();
  }
  return Status::OK();
}

Result<double> Keyspace::StaleShare(const KeyRun& run) {
  const uint64_t blocks = run.blocks();
  if (blocks == 0) return 0.0;
  const uint64_t n = std::min(blocks, kStaleSample);
  KeyRun::Iterator it(run);
  uint64_t stale = 0;
  for (uint64_t i = 0; i < n; ++i) {
    it.SeekToBlock(i * blocks / n);
    if (!it.Valid()) return it.status().ok() ? Status::Corruption("key run shorter than its sparse index") : it.status();
    const KeyEntry& e = it.entry();
    Candidates c;
    if (Status s = w_.index_.Lookup(KeyHash(w_.seed_, e.key), &c); !s.ok()) return s;
    bool current = false;
    if (e.segment <= kMaxSegmentId && e.offset <= kMaxOffset) {
      const Location at = MakeLocation(e.segment, e.offset);
      for (uint32_t k = 0; k < c.count; ++k) current = current || c.locations[k] == at;
    }
    if (!current) ++stale;
  }
  return static_cast<double>(stale) / static_cast<double>(n);
}

Status Keyspace::MaybeMerge() {
  std::vector<RunInfo> runs;
  bool busy, sample;
  {
    std::lock_guard lock(mu_);
    if (!complete_ || lost_ || job_ != Job::kNone) return Status::OK();
    runs = runs_;
    const uint64_t now = NowMs();
    busy = now - last_flush_ms_ < o_.settle_ms;
    if (skipped_upto_ != skip_seen_) {
      skip_seen_ = skipped_upto_;
      skip_seen_ms_ = now;
    }
    sample = skip_seen_ != skip_sampled_ && now - skip_seen_ms_ >= o_.settle_ms;
  }
  if (runs.empty()) return Status::OK();

  // Runs that point mostly into deleted segments, rewritten by one merge:
  // one at a time, each to its own output, would keep the run count (after a
  // restart under compaction, often every run is stale) for as many turns of
  // the loop as there are stale runs.
  const uint64_t epoch = w_.index_.counters().segment_epoch.load(std::memory_order_acquire);
  if (epoch != seen_epoch_) {
    seen_epoch_ = epoch;
    std::set<uint32_t> present;
    {
      // The raw mutex: segments_ is settled under it (holders that change it
      // drain first), and a drain would wait for the fdatasync in flight.
      w_.mu_.LockKeepingPipeline();
      std::lock_guard<std::mutex> wlock(w_.mu_.raw(), std::adopt_lock);
      for (const auto& [id, st] : w_.segments_) present.insert(id);
    }
    std::vector<uint64_t> stale;
    for (const RunInfo& r : runs) {
      if (!r.run || r.entries == 0) continue;
      uint64_t gone = 0;
      for (const auto& [seg, n] : r.run->segment_counts())
        if (seg > kMaxSegmentId || present.count(static_cast<uint32_t>(seg)) == 0) gone += n;
      if (static_cast<double>(gone) >= kStaleFraction * static_cast<double>(r.entries)) stale.push_back(r.id);
    }
    if (!stale.empty()) {
      seen_epoch_ = 0;  // look again after this rewrite
      return MergeRuns(stale);
    }
  }

  const uint32_t width = std::max<uint32_t>(2, o_.merge_width);
  const double base = static_cast<double>(region_.tail_entries());
  auto size_class = [&](uint64_t entries) {
    return static_cast<int>(std::log(std::max(1.0, static_cast<double>(entries) / base)) / std::log(double(width)));
  };
  if (busy) {
    std::map<int, std::vector<uint64_t>> classes;
    for (const RunInfo& r : runs) classes[size_class(r.entries)].push_back(r.id);
    for (auto& [cls, ids] : classes)
      if (ids.size() >= width) return MergeRuns(ids);
    if (runs.size() > kBusyRunLimit) {
      std::sort(runs.begin(), runs.end(), [](const RunInfo& a, const RunInfo& b) { return a.entries < b.entries; });
      std::vector<uint64_t> ids;
      for (size_t i = 0; i < width && i < runs.size(); ++i) ids.push_back(runs[i].id);
      return MergeRuns(ids);
    }
    return Status::OK();
  }
  std::sort(runs.begin(), runs.end(), [](const RunInfo& a, const RunInfo& b) { return a.entries < b.entries; });
  // Settled after overwrites: the largest run, which the rule below leaves
  // alone, still names the records its keys had when it was written. Once
  // no put was left unrecorded for settle_ms (and once after the open), a
  // sample of it says what share a listing answers by reading a record; from
  // kStaleFraction on, every run is merged, repointed at the current records.
  if (sample && runs.back().run) {
    auto share = StaleShare(*runs.back().run);
    if (!share.ok()) return share.status();  // kBusy: the next turn samples again
    skip_sampled_ = skip_seen_;
    if (share.value() >= kStaleFraction) {
      std::vector<uint64_t> all;
      for (const RunInfo& r : runs) all.push_back(r.id);
      return MergeRuns(all);
    }
  }
  // Settled: at most two runs, the largest one and the rest merged.
  if (runs.size() < 2) return Status::OK();
  uint64_t rest = 0;
  for (size_t i = 0; i + 1 < runs.size(); ++i) rest += runs[i].entries;
  std::vector<uint64_t> ids;
  if (rest * 4 >= runs.back().entries) {
    for (const RunInfo& r : runs) ids.push_back(r.id);
  } else if (runs.size() >= 3) {
    for (size_t i = 0; i + 1 < runs.size(); ++i) ids.push_back(runs[i].id);
  }
  if (ids.size() < 2) return Status::OK();
  return MergeRuns(ids);
}

Result<Keyspace::RunInfo> Keyspace::WriteMerged(const std::vector<std::shared_ptr<const KeyRun>>& inputs,
                                                bool resolve) {
  uint64_t out_id;
  {
    std::lock_guard lock(mu_);
    out_id = next_run_id_++;
  }
  const std::string path = RunPath(out_id);
  auto builder = KeyRunBuilder::Create(w_.env_, path, out_id, w_.seed_);
  if (!builder.ok()) return builder.status();
  auto fail = [&](const Status& s) {
    builder.value().reset();
    w_.env_.RemoveFile(path).ok();
    return s;
  };

  std::vector<KeyRun::Iterator> its;
  its.reserve(inputs.size());
  for (const auto& run : inputs) {
    its.emplace_back(*run);
    its.back().SeekToFirst();
    if (!its.back().status().ok()) return fail(its.back().status());
  }
  // A binary min-heap of the valid iterators by current key. An iterator
  // whose entry joins the group is advanced at once and sifted down from
  // the top (one sift instead of a pop and a push); the group's keys stay
  // readable: each iterator is advanced once per group, and an entry's key
  // outlives one Next (KeyRun::Iterator::entry).
  std::vector<size_t> heap;
  heap.reserve(its.size());
  auto less = [&](size_t a, size_t b) { return its[a].entry().key < its[b].entry().key; };
  auto sift_down = [&](size_t at) {
    const size_t item = heap[at];
    for (;;) {
      size_t child = 2 * at + 1;
      if (child >= heap.size()) break;
      if (child + 1 < heap.size() && less(heap[child + 1], heap[child])) ++child;
      if (!less(heap[child], item)) break;
      heap[at] = heap[child];
      at = child;
    }
    heap[at] = item;
  };
  // Resolving a key probes its index slot, a random place in a large table:
  // each iterator's next key has its slot fetched as soon as it is read, so
  // that miss overlaps the groups merged before that key comes up.
  auto prefetch = [&](size_t i) {
    if (resolve) w_.index_.PrefetchKey(its[i].entry().key);
  };
  for (size_t i = 0; i < its.size(); ++i) {
    if (!its[i].Valid()) continue;
    prefetch(i);
    heap.push_back(i);
  }
  for (size_t at = heap.size() / 2; at-- > 0;) sift_down(at);

  std::vector<KeyEntry> group, out;
  std::deque<std::string> store;
  uint64_t read = 0;
  while (!heap.empty()) {
    group.clear();
    const std::string_view key = its[heap.front()].entry().key;
    while (!heap.empty() && its[heap.front()].entry().key == key) {
      const size_t i = heap.front();
      group.push_back(its[i].entry());
      its[i].Next();
      if (!its[i].status().ok()) return fail(its[i].status());
      if (its[i].Valid()) {
        prefetch(i);
      } else {
        heap.front() = heap.back();
        heap.pop_back();
        if (heap.empty()) break;
      }
      sift_down(0);
    }
    std::sort(group.begin(), group.end(), [](const KeyEntry& a, const KeyEntry& b) { return a.seq > b.seq; });
    out.clear();
    if (resolve) {
      Status s = ResolveGroup(group, &store, &out);
      if (!s.ok()) return fail(s);
    } else {
      out.push_back(group[0]);  // the newest entry; the index decides when listing
    }
    for (const KeyEntry& e : out) {
      Status s = builder.value()->Add(e);
      if (!s.ok()) return fail(s);
    }
    store.clear();
    read += group.size();
    if (resolve && read % kTailCheckEvery < group.size()) {
      Status s = FlushFrozenTail();  // the tails must not wait for a long merge
      if (!s.ok()) return fail(s);
      std::lock_guard lock(mu_);
      if (stop_) return fail(Status::Busy("keyspace closing"));
    }
  }
  Status s = builder.value()->Finish(/*sync=*/false);
  if (!s.ok()) return fail(s);
  builder.value().reset();
  auto run = KeyRun::Open(w_.env_, path, out_id, w_.seed_, /*verify_checksum=*/false);
  if (!run.ok()) return fail(run.status());
  region_.counters().runs_written.fetch_add(1, std::memory_order_relaxed);
  region_.counters().run_bytes_written.fetch_add(run.value()->file_bytes(), std::memory_order_relaxed);
  region_.counters().merges.fetch_add(1, std::memory_order_relaxed);
  region_.counters().entries_merged.fetch_add(read, std::memory_order_relaxed);
  return RunInfo{out_id, run.value()->entries(), false, run.value()};
}

Status Keyspace::MergeRuns(std::vector<uint64_t> ids) {
  std::vector<std::shared_ptr<const KeyRun>> inputs;
  {
    std::lock_guard lock(mu_);
    for (uint64_t id : ids) {
      for (const RunInfo& r : runs_)
        if (r.id == id && r.run) inputs.push_back(r.run);
    }
  }
  if (inputs.size() != ids.size()) return Status::OK();  // changed meanwhile
  merging_ = true;
  auto merged = WriteMerged(inputs, /*resolve=*/true);
  merging_ = false;
  if (!merged.ok()) return merged.status();

  std::lock_guard lock(mu_);
  ReplaceRuns(&runs_, ids, std::move(merged.value()));
  dirty_ = true;
  PublishLocked(-1);
  return Status::OK();
}

void Keyspace::ReplaceRuns(std::vector<RunInfo>* runs, const std::vector<uint64_t>& ids, RunInfo merged) {
  std::vector<RunInfo> next;
  bool placed = false;
  for (RunInfo& r : *runs) {
    if (std::find(ids.begin(), ids.end(), r.id) == ids.end()) {
      next.push_back(std::move(r));
      continue;
    }
    doomed_.push_back(r.id);
    if (!placed && merged.entries > 0) {
      next.push_back(merged);
      placed = true;
    }
  }
  if (!placed) doomed_.push_back(merged.id);  // every key of the inputs is gone
  *runs = std::move(next);
}

Status Keyspace::FitRuns(std::vector<RunInfo>* runs, size_t adding) {
  if (runs->size() + adding <= kMaxKeyRuns) return Status::OK();
  // One combination of the smallest runs brings the set within the bound.
  const size_t count = std::min(runs->size(), runs->size() + adding - kMaxKeyRuns + 1);
  if (count < 2) return Status::InvalidArgument("more new runs than the shared region can name");
  std::vector<size_t> order(runs->size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return (*runs)[a].entries < (*runs)[b].entries; });
  std::vector<uint64_t> ids;
  std::vector<std::shared_ptr<const KeyRun>> inputs;
  for (size_t i = 0; i < count; ++i) {
    RunInfo& r = (*runs)[order[i]];
    if (!r.run) {  // named by the MANIFEST, not opened yet
      auto run = KeyRun::Open(w_.env_, RunPath(r.id), r.id, w_.seed_, /*verify_checksum=*/false);
      if (!run.ok()) return run.status();
      r.run = std::move(run.value());
    }
    ids.push_back(r.id);
    inputs.push_back(r.run);
  }
  auto combined = WriteMerged(inputs, /*resolve=*/false);
  if (!combined.ok()) return combined.status();
  Log("combined the " + std::to_string(count) + " smallest runs into one: the shared region names at most " +
      std::to_string(kMaxKeyRuns));
  std::lock_guard lock(mu_);
  ReplaceRuns(runs, ids, std::move(combined.value()));
  return Status::OK();
}

}  // namespace kingx::engine
