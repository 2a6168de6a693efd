// Keyspace: open, Add, the keyspace thread's loop, tail flushes and
// checkpoints (see keyspace.h). Catch-up and rebuild are in
// keyspace_build.cc, merges in keyspace_merge.cc.
#include "engine/keyspace.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>

#include "engine/coding.h"
#include "engine/hash.h"
#include "engine/key_resolve.h"
#include "engine/keyspace_manifest.h"
#include "engine/writer_impl.h"
#include "engine/thread_name.h"

namespace kingx::engine {
namespace {

constexpr uint64_t kRetryAfterErrorMs = 1000;

}  // namespace

Keyspace::Keyspace(Writer::Impl& w, KeyspaceRegion region, const KeyspaceOptions& options)
    : w_(w), region_(region), o_(options), cache_(w.env_, w.dir_, w.options_.segment_bytes, w.options_.max_open_segments) {}

uint64_t Keyspace::NowMs() const {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

void Keyspace::Log(const std::string& line) const {
  if (o_.log) o_.log("keyspace: " + line);
}

void Keyspace::LogInfo(const std::string& line) const {
  if (o_.log_info) o_.log_info("keyspace: " + line);
}

std::string Keyspace::RunPath(uint64_t id) const { return JoinPath(o_.dir, KeyRunFileName(id)); }

Result<std::unique_ptr<Keyspace>> Keyspace::Open(Writer::Impl& w, KeyspaceRegion region,
                                                 const KeyspaceOptions& options) {
  if (options.dir.empty()) return Status::InvalidArgument("keyspace directory not set");
  std::unique_ptr<Keyspace> ks(new Keyspace(w, region, options));
  Status s = ks->region_.Reset(options.dir);
  if (!s.ok()) return s;
  s = w.env_.CreateDir(options.dir);
  if (!s.ok()) return s;
  uint64_t covered = 0;
  std::vector<uint64_t> manifest_runs;
  s = ks->PrepareDir(&covered, &manifest_runs);
  if (!s.ok()) return s;
  ks->region_.SetCursorSecret(ks->cursor_secret_);
  // The segment ids the MANIFEST's runs name (their tables, no entry read).
  // A run damaged or unreadable: the job below would find it so and rebuild.
  std::vector<uint64_t> named;
  bool named_ok = AppendNamedSegmentIds(w.env_, options.dir, w.seed_, manifest_runs, &named).ok();
  {
    std::lock_guard wlock(w.mu_);
    ks->tail_start_ = w.next_seq_;
    ks->published_.store(w.next_seq_ - 1, std::memory_order_relaxed);
    ++w.pins_;  // released when the catch-up or rebuild is done
    if (named_ok && !ks->SegmentIdsSafe(named)) {
      ks->Log("the sorted view names a segment id that this open gave to a new segment: rebuilding it from the "
              "segments");
      named_ok = false;
    }
  }
  if (!named_ok) {
    manifest_runs.clear();
    covered = 0;
  }
  ks->pinned_ = true;
  ks->covered_ = covered;
  ks->checkpointed_runs_ = manifest_runs.size();
  if (!manifest_runs.empty() || covered > 0) {
    for (uint64_t id : manifest_runs) ks->runs_.push_back(RunInfo{id, 0, true, nullptr});
    ks->job_ = Job::kCatchUp;
    ks->job_from_ = covered;
    ks->verify_manifest_ = true;
  } else {
    ks->job_ = Job::kRebuild;
    ks->job_from_ = 0;
  }
  ks->region_.SetState(KeyspaceState::kBuilding);
  ks->last_checkpoint_ms_ = ks->NowMs();
  ks->thread_ = std::thread([k = ks.get()] { k->Loop(); });
  return ks;
}

bool Keyspace::SegmentIdsSafe(const std::vector<uint64_t>& named) {
  for (uint64_t seg : named) {
    if (seg > kMaxSegmentId) continue;  // an entry of no segment: never matched
    const auto it = w_.segments_.find(static_cast<uint32_t>(seg));
    // A segment without a record: no entry can name it, unless its id named
    // another file when the entry was made (an open that did not read this
    // view's MANIFEST created it: a view kept elsewhere, or an older binary).
    if (it != w_.segments_.end() && !it->second.missing && it->second.bytes <= kSegmentHeaderBytes) return false;
  }
  if (w_.options_.read_only) return true;  // gives no id
  // Recovery did the same for the data directory's own view.
  w_.next_segment_id_ = SegmentIdPast(w_.next_segment_id_, named);
  return true;
}

// Reads the MANIFEST of the view kept in `dir` (persist, or a seed): true
// when it is valid for this database, with what it says in the out-params.
bool Keyspace::ReadManifest(const std::string& dir, uint64_t* covered, uint64_t* next_id, uint64_t* secret,
                            std::vector<uint64_t>* runs) const {
  KeyspaceManifest m;
  const Status s = ReadKeyspaceManifest(w_.env_, dir, w_.seed_, &m);
  if (s.Is(Code::kCorruption)) {
    Log("MANIFEST in " + dir + " unusable: rebuilding the sorted view from the segments");
  } else if (!s.ok() && !s.Is(Code::kNotFound)) {
    // A page the disk cannot read is an error here (the view is rebuilt),
    // never a SIGBUS in the key view's thread: it is read, not mapped.
    Log("MANIFEST in " + dir + " unreadable (" + s.ToString() + "): rebuilding the sorted view");
  }
  *covered = m.covered;
  *next_id = m.next_run_id;
  if (s.ok()) *secret = m.secret;
  *runs = std::move(m.runs);
  return s.ok();
}

// Reads the MANIFEST (persist) or the seed's, removes every run file of
// o_.dir it does not name (a seed's runs are linked again) and every *.tmp,
// and picks the next run id above every id ever used here.
Status Keyspace::PrepareDir(uint64_t* manifest_covered, std::vector<uint64_t>* manifest_runs) {
  Env& env = w_.env_;
  auto names = env.ListDir(o_.dir);
  if (!names.ok()) return names.status();
  *manifest_covered = 0;
  manifest_runs->clear();
  uint64_t manifest_next = 0;
  bool manifest_ok = false;
  const bool seeded = !o_.persist && !o_.seed_dir.empty();
  if (o_.persist) {
    manifest_ok = ReadManifest(o_.dir, manifest_covered, &manifest_next, &cursor_secret_, manifest_runs);
  } else if (seeded) {
    uint64_t seed_secret = 0;  // not reused: this directory's run ids may repeat across opens
    manifest_ok = ReadManifest(o_.seed_dir, manifest_covered, &manifest_next, &seed_secret, manifest_runs);
  }
  uint64_t max_id = 0;
  for (const std::string& name : names.value()) {
    uint64_t id = 0;
    const bool is_tmp = name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0;
    if (ParseKeyRunFileName(name, &id)) {
      max_id = std::max(max_id, id);
      if (manifest_ok && !seeded &&
          std::find(manifest_runs->begin(), manifest_runs->end(), id) != manifest_runs->end())
        continue;
    } else if (!is_tmp) {
      continue;  // MANIFEST and anything unknown stay
    }
    Status s = env.RemoveFile(JoinPath(o_.dir, name));
    if (!s.ok() && !s.Is(Code::kNotFound)) return s;
  }
  next_run_id_ = std::max(manifest_next, max_id + 1);
  if (seeded && manifest_ok) {
    // The seed's runs are read where they are: nothing of the seed changes.
    std::error_code ec;
    const std::string seed = std::filesystem::absolute(o_.seed_dir, ec).lexically_normal().string();
    for (uint64_t id : *manifest_runs) {
      Status s = env.Symlink(JoinPath(seed, KeyRunFileName(id)), RunPath(id));
      if (!s.ok()) {
        Log("cannot use the sorted view in " + o_.seed_dir + " (" + s.ToString() + "): rebuilding it from the segments");
        for (uint64_t linked : *manifest_runs) env.RemoveFile(RunPath(linked)).ok();
        manifest_ok = false;
        manifest_runs->clear();
        *manifest_covered = 0;
        break;
      }
    }
    if (manifest_ok)
      LogInfo("starting from the sorted view in " + o_.seed_dir + ": " + std::to_string(manifest_runs->size()) +
          " runs, catching up from seq " + std::to_string(*manifest_covered));
  }
  // Cursors handed out under an older secret are refused (400), never misread.
  // A view that is not persisted gets a new one on every open: its run ids
  // may come back with other contents, and readers cache runs by secret and id.
  if (!manifest_ok || cursor_secret_ == 0 || !o_.persist) cursor_secret_ = NewHashSeed();
  else secret_on_disk_ = true;
  return Status::OK();
}

Keyspace::~Keyspace() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // A clean close hands the next open a view with nothing to catch up.
  if (o_.persist && o_.checkpoint_at_close && complete_ && !lost_ && job_ == Job::kNone) {
    Status s = FlushFrozenTail();
    if (s.ok()) {
      int frozen;
      {
        std::lock_guard lock(mu_);
        frozen = region_.Freeze();
      }
      if (frozen >= 0) s = FlushFrozenTail();
    }
    if (s.ok()) s = Checkpoint();
    if (!s.ok()) Log("final checkpoint failed: " + s.ToString());
  }
  if (pinned_) {
    w_.mu_.LockKeepingPipeline();  // the pin count needs no drain (see RunJob)
    std::lock_guard<std::mutex> wlock(w_.mu_.raw(), std::adopt_lock);
    if (w_.pins_ > 0) --w_.pins_;
  }
  region_.SetState(KeyspaceState::kNoOwner);
}

void Keyspace::Add(const KeyPut& put) { Add(std::span<const KeyPut>(&put, 1)); }

void Keyspace::Add(std::span<const KeyPut> puts) {
  std::lock_guard lock(mu_);
  // covered_ moves past a run of unrecorded puts once, before the next
  // recorded one or at the end: each CoverSkippedLocked of the run would
  // find what the last one finds (nothing between them changes the tails,
  // the job or lost_), and the count is added once.
  uint64_t unrecorded = 0;
  bool cover = false;
  for (const KeyPut& put : puts) {
    if (lost_) break;  // the rebuild that follows covers them
    if (put.replaces_live && complete_) {
      // The key has an entry already, and keeps it while it stays live
      // (keyspace.h). During a catch-up or rebuild every put is recorded: the
      // job leaves the records from tail_start_ on to the tails.
      skipped_upto_ = put.entry.seq + 1;
      ++unrecorded;
      cover = true;
      continue;
    }
    if (cover) {
      CoverSkippedLocked();
      cover = false;
    }
    RecordLocked(put.entry);
  }
  if (cover) CoverSkippedLocked();
  if (unrecorded != 0) region_.counters().overwrites_unrecorded.fetch_add(unrecorded, std::memory_order_relaxed);
}

void Keyspace::RecordLocked(const KeyEntry& e) {
  if (region_.Append(e)) return;
  if (region_.Freeze() >= 0) {
    cv_.notify_all();
    if (region_.Append(e)) return;
  }
  // Both tails are full: the keyspace thread is behind (or cannot write
  // runs). Stop recording; the thread rebuilds from the segments.
  lost_ = true;
  region_.SetState(KeyspaceState::kLost);
  region_.counters().lost.fetch_add(1, std::memory_order_relaxed);
  cv_.notify_all();
}

void Keyspace::CoverSkippedLocked() {
  // With nothing left in the tails, every recorded put is in the runs, and so
  // is the entry each skipped one relied on (added before it).
  if (!covers_prefix_ || lost_ || job_ != Job::kNone || skipped_upto_ <= covered_) return;
  if (region_.FrozenTail() >= 0 || region_.ActiveCount() != 0) return;
  covered_ = skipped_upto_;
  dirty_ = true;  // the next checkpoint's MANIFEST says so: a restart reads back less
}

void Keyspace::Pace() {
  if (o_.lag_wait_ms == 0) return;
  auto behind = [&] { return region_.FrozenTail() >= 0 && region_.ActiveHalfFull(); };
  std::unique_lock lock(mu_);
  if (lost_ || stop_ || NowMs() < backoff_until_ms_ || !behind()) return;
  region_.counters().writer_waits.fetch_add(1, std::memory_order_relaxed);
  cv_.notify_all();  // the thread may be waiting for work
  cv_.wait_for(lock, std::chrono::milliseconds(o_.lag_wait_ms),
               [&] { return lost_ || stop_ || NowMs() < backoff_until_ms_ || !behind(); });
}

Status Keyspace::WaitReady(uint64_t timeout_ms) {
  const uint64_t deadline = NowMs() + timeout_ms;
  while (region_.state() != KeyspaceState::kReady) {
    if (NowMs() >= deadline) return Status::Busy("the sorted key view is not ready");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return Status::OK();
}

void Keyspace::PublishLocked(int free_tail) {
  assert(runs_.size() <= kMaxKeyRuns && "FitRuns keeps the run set within what the region names");
  std::vector<std::pair<uint64_t, uint64_t>> ids;
  ids.reserve(runs_.size());
  for (const RunInfo& r : runs_) ids.emplace_back(r.id, r.entries);
  region_.Publish(ids, free_tail);
}

Result<Keyspace::RunInfo> Keyspace::WriteRun(std::vector<KeyEntry>& sorted) {
  uint64_t id;
  {
    std::lock_guard lock(mu_);
    id = next_run_id_++;
  }
  const std::string path = RunPath(id);
  auto b = KeyRunBuilder::Create(w_.env_, path, id, w_.seed_);
  if (!b.ok()) return b.status();
  Status s;
  for (const KeyEntry& e : sorted) {
    s = b.value()->Add(e);
    if (!s.ok()) break;
  }
  if (s.ok()) s = b.value()->Finish(/*sync=*/false);
  if (!s.ok()) {
    w_.env_.RemoveFile(path).ok();
    return s;
  }
  auto run = KeyRun::Open(w_.env_, path, id, w_.seed_, /*verify_checksum=*/false);
  if (!run.ok()) {
    w_.env_.RemoveFile(path).ok();
    return run.status();
  }
  region_.counters().runs_written.fetch_add(1, std::memory_order_relaxed);
  region_.counters().run_bytes_written.fetch_add(run.value()->file_bytes(), std::memory_order_relaxed);
  return RunInfo{id, run.value()->entries(), false, std::move(run.value())};
}

namespace {

// The eight bytes of `key` from `at` on, big-endian, zero-padded: where two
// of these differ, they order the keys as memcmp does (keys equal before
// `at`); where they are equal, the keys must be compared in full.
uint64_t SortPrefix(std::string_view key, size_t at) {
  unsigned char b[8] = {};
  if (at < key.size()) std::memcpy(b, key.data() + at, std::min<size_t>(8, key.size() - at));
  uint64_t v = 0;
  for (unsigned char c : b) v = (v << 8) | c;
  return v;
}

}  // namespace

Status Keyspace::FlushFrozenTail() {
  const int t = region_.FrozenTail();
  if (t < 0) return Status::OK();
  TailCopy& tail = tail_copy_;
  region_.ReadTail(t, &tail);
  // Keys of one tail often share a long prefix ("users/0001..."): sorting by
  // the sixteen bytes after the prefix common to all of them settles most
  // comparisons without reading the keys.
  size_t common = 0;
  uint64_t max_seq = 0;
  if (!tail.entries.empty()) {
    const std::string_view first = tail.Key(tail.entries[0]);
    common = first.size();
    for (const TailCopy::Entry& e : tail.entries) {
      const std::string_view k = tail.Key(e);
      size_t i = 0;
      const size_t n = std::min(common, k.size());
      while (i < n && k[i] == first[i]) ++i;
      common = i;
      max_seq = std::max(max_seq, e.seq);
    }
  }
  struct Sorted {
    uint64_t prefix[2];
    uint32_t entry;
    bool SamePrefix(const Sorted& o) const { return prefix[0] == o.prefix[0] && prefix[1] == o.prefix[1]; }
  };
  std::vector<Sorted> order(tail.entries.size());
  for (size_t i = 0; i < order.size(); ++i) {
    const std::string_view key = tail.Key(tail.entries[i]);
    order[i] = Sorted{{SortPrefix(key, common), SortPrefix(key, common + 8)}, static_cast<uint32_t>(i)};
  }
  std::sort(order.begin(), order.end(), [&](const Sorted& a, const Sorted& b) {
    if (a.prefix[0] != b.prefix[0]) return a.prefix[0] < b.prefix[0];
    if (a.prefix[1] != b.prefix[1]) return a.prefix[1] < b.prefix[1];
    const TailCopy::Entry& ea = tail.entries[a.entry];
    const TailCopy::Entry& eb = tail.entries[b.entry];
    const int cmp = tail.Key(ea).compare(tail.Key(eb));
    if (cmp != 0) return cmp < 0;
    return ea.seq > eb.seq;
  });
  // The newest entry of each key. No index lookups here (merges resolve):
  // a flush must be far faster than the writer can fill a tail.
  std::vector<KeyEntry> out;
  out.reserve(tail.entries.size());
  for (size_t i = 0; i < order.size(); ++i) {
    const TailCopy::Entry& e = tail.entries[order[i].entry];
    const std::string_view key = tail.Key(e);
    if (i > 0 && order[i].SamePrefix(order[i - 1]) && key == out.back().key) continue;
    out.push_back(KeyEntry{key, e.seq, e.segment, e.offset, e.raw_len, tail.ContentType(e)});
  }
  RunInfo info;
  if (!out.empty()) {
    if (merging_) {
      // The merge under way frees a place when it ends; its inputs must stay
      // until then. The tail stays frozen meanwhile.
      if (runs_.size() >= kMaxKeyRuns) return Status::OK();
    } else {
      Status s = FitRuns(&runs_, 1);
      if (!s.ok()) return s;
    }
    auto r = WriteRun(out);
    if (!r.ok()) return r.status();
    info = std::move(r.value());
  }
  std::lock_guard lock(mu_);
  if (!out.empty()) runs_.push_back(std::move(info));
  PublishLocked(t);
  tail_flushed_upto_ = std::max(tail_flushed_upto_, max_seq + 1);
  // Only with no job under way: a job's tails start above the gap it fills.
  if (covers_prefix_ && job_ == Job::kNone) covered_ = std::max(covered_, tail_flushed_upto_);
  CoverSkippedLocked();
  dirty_ = true;
  last_flush_ms_ = NowMs();
  cv_.notify_all();  // a writer in Pace
  return Status::OK();
}

Status Keyspace::Checkpoint() {
  std::vector<RunInfo> runs;
  std::vector<uint64_t> doomed;
  uint64_t covered, next_id;
  {
    std::lock_guard lock(mu_);
    if (!complete_ || lost_) return Status::OK();  // the previous MANIFEST stays the truth
    runs = runs_;
    doomed = doomed_;
    covered = covered_;
    next_id = next_run_id_;
    dirty_ = false;
  }
  Env& env = w_.env_;
  if (o_.persist) {
    for (RunInfo& r : runs) {
      if (r.synced) continue;
      auto f = env.OpenFile(RunPath(r.id), OpenMode::kRead);
      Status s = f.ok() ? f.value()->Sync() : f.status();
      if (!s.ok()) {
        std::lock_guard lock(mu_);
        dirty_ = true;
        return s;
      }
      std::lock_guard lock(mu_);
      for (RunInfo& live : runs_)
        if (live.id == r.id) live.synced = true;
    }
    std::string m(kKeyspaceManifestMagic, 8);
    AppendFixed32(&m, kKeyspaceManifestVersion);
    AppendFixed32(&m, 0);
    AppendFixed64(&m, w_.seed_);
    AppendFixed64(&m, covered);
    AppendFixed64(&m, next_id);
    AppendFixed64(&m, cursor_secret_);
    AppendFixed32(&m, static_cast<uint32_t>(runs.size()));
    AppendFixed32(&m, 0);
    for (const RunInfo& r : runs) AppendFixed64(&m, r.id);
    AppendFixed64(&m, Checksum64(m.data(), m.size()));
    const std::string tmp = JoinPath(o_.dir, std::string(kKeyspaceManifestName) + ".tmp");
    auto f = env.OpenFile(tmp, OpenMode::kCreateTruncate);
    Status s = f.ok() ? f.value()->Append(m) : f.status();
    if (s.ok()) s = f.value()->Sync();
    if (f.ok()) f.value().reset();
    if (s.ok()) s = env.Rename(tmp, JoinPath(o_.dir, kKeyspaceManifestName));
    if (s.ok()) s = env.SyncDir(o_.dir);
    if (!s.ok()) {
      env.RemoveFile(tmp).ok();
      std::lock_guard lock(mu_);
      dirty_ = true;
      return s;
    }
    region_.counters().checkpoints.fetch_add(1, std::memory_order_relaxed);
  }
  {
    std::lock_guard lock(mu_);
    checkpointed_runs_ = runs.size();
    if (o_.persist) secret_on_disk_ = true;
    if (ready_at_checkpoint_ && secret_on_disk_ && complete_ && !lost_) {
      ready_at_checkpoint_ = false;
      region_.SetState(KeyspaceState::kReady);
    }
  }
  // Replaced runs go once no MANIFEST names them. A reader that still had
  // one in its snapshot keeps its mapping, or retries its page.
  for (uint64_t id : doomed) env.RemoveFile(RunPath(id)).ok();
  std::lock_guard lock(mu_);
  for (uint64_t id : doomed) doomed_.erase(std::remove(doomed_.begin(), doomed_.end(), id), doomed_.end());
  last_checkpoint_ms_ = NowMs();
  return Status::OK();
}

void Keyspace::Loop() {
  NameThisThread("kingx-keyview");
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(100), [&] {
        return stop_ || (NowMs() >= backoff_until_ms_ && (region_.FrozenTail() >= 0 || lost_ || job_ != Job::kNone));
      });
      if (stop_) return;
      if (NowMs() < backoff_until_ms_) continue;
    }
    Status s;
    bool lost, job;
    {
      std::lock_guard lock(mu_);
      lost = lost_;
      job = job_ != Job::kNone;
    }
    if (lost) {
      StartRecoveryAfterLoss();
      job = true;
    }
    if (job) s = RunJob();
    if (s.ok()) s = FlushFrozenTail();
    if (s.ok()) s = MaybeMerge();
    if (s.ok()) {
      bool due;
      {
        std::lock_guard lock(mu_);
        // Also at once when merges left at most half the runs the last
        // MANIFEST names: a crash before the interval would bring them all
        // back (a server killed every few seconds would never see its view
        // merged).
        const bool shrunk = checkpointed_runs_ > o_.merge_width && 2 * runs_.size() <= checkpointed_runs_;
        const bool interval = NowMs() - last_checkpoint_ms_ >= o_.checkpoint_interval_ms;
        due = (dirty_ || !doomed_.empty()) && (shrunk || interval);
        // Puts left unrecorded after the active tail's entries are covered
        // only once those are in a run: a tail that overwrites alone never
        // fill is flushed partly full, at most once per interval.
        if (interval && !due && complete_ && !lost_ && skipped_upto_ > covered_ && region_.FrozenTail() < 0 &&
            region_.ActiveCount() > 0)
          region_.Freeze();  // the next turn flushes it, and checkpoints
      }
      if (due) s = Checkpoint();
    }
    if (!s.ok() && !s.Is(Code::kBusy)) {
      Log("background work failed (retrying in 1 s): " + s.ToString());
      std::lock_guard lock(mu_);
      backoff_until_ms_ = NowMs() + kRetryAfterErrorMs;
      cv_.notify_all();  // a writer in Pace stops waiting
      if (s.Is(Code::kCorruption)) {
        // A damaged run: start over from the segments.
        rebuild_due_ = true;
        if (!lost_ && job_ == Job::kNone) {
          lost_ = true;
          region_.SetState(KeyspaceState::kLost);
          region_.counters().lost.fetch_add(1, std::memory_order_relaxed);
        }
      }
    }
  }
}

// ---------------------------------------------------------------- Writer API

Status Writer::StartKeyspace(const KeyspaceRegion& region, const KeyspaceOptions& options) {
  Impl& w = *impl_;
  if (w.keyspace_) return Status::InvalidArgument("the keyspace is already started");
  KeyspaceOptions o = options;
  if (w.options_.read_only) {
    // The view's runs are written as it is built: never into a read-only database.
    const bool inside = o.dir == w.dir_ || o.dir.starts_with(w.dir_ + "/");
    if (o.persist || inside)
      return Status::InvalidArgument("a read-only database keeps its sorted key view in a scratch directory "
                                     "outside it (persist = false): " + o.dir);
  }
  if (!o.log) o.log = w.options_.log;
  auto ks = Keyspace::Open(w, region, o);
  if (!ks.ok()) return ks.status();
  std::lock_guard lock(w.mu_);
  w.keyspace_ = std::move(ks.value());
  return Status::OK();
}

Status Writer::WaitKeyspaceReady(uint64_t timeout_ms) {
  Impl& w = *impl_;
  if (!w.keyspace_) return Status::InvalidArgument("the keyspace is not started");
  return w.keyspace_->WaitReady(timeout_ms);
}

}  // namespace kingx::engine
