// Compactor::RunOnce: the mechanism of a pass (copy, install, delete); what
// to pick and which tombstones may go is decided by engine/compaction_policy.h.
// The reasoning behind each step's safety is in engine/compaction.h; the
// invariants kept here:
//  - a record's index entry moves only with Replace(old -> copy), under the
//    writer's mutex, after the copy's segment is durable under its name;
//  - an input is deleted only once none of its records is referenced by the
//    index (its live byte count is 0 under the mutex) and every record it held
//    that must survive has a durable copy;
//  - the writer's mutex is never held across file I/O or a sleep.
#include "engine/compaction.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "engine/compaction_dead.h"
#include "engine/compaction_output.h"
#include "engine/compaction_policy.h"
#include "engine/hash.h"
#include "engine/kill_point.h"
#include "engine/writer_impl.h"

namespace kingx::engine {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kPaceChunkBytes = 256 << 10;
// An input's bytes are read through a window copied out of its mapping
// under the guard (Pass::Fill): at least this much per copy, so that a run
// of small records costs one guarded copy, not one or more per record.
constexpr uint64_t kWindowBytes = 16 << 10;
// A live record larger than this is copied in pieces of this size (the
// window is never larger), not whole.
constexpr uint64_t kCopyChunkBytes = 1 << 20;
// Scanned inputs deleted together (one MANIFEST fdatasync for all).
constexpr size_t kDeleteBatch = 32;

// One record copied into the current output, waiting for its install.
struct Move {
  uint64_t hash;
  Location from;
  uint64_t offset;  // in the output
  uint64_t total;
  RecordType type;
};

}  // namespace

// State kept across passes; used only by the thread running RunOnce, except
// `stop` and the stats (any thread).
struct Compactor::State {
  std::mutex run_mu;  // held by RunOnce
  std::atomic<bool> stop{false};
  std::atomic<bool> hurry{false};
  std::atomic<uint64_t> catch_up_target{UINT64_MAX};  // SetCatchUpTarget
  std::atomic<uint64_t> copy_bytes{0};                 // Compactor::copy_bytes
  mutable std::mutex stats_mu;
  CompactionStats stats;
  // The two maps below are under stats_mu: a dead-only pass beside a
  // running pass drops the entries of the segments it deletes.
  // Outputs made by this process: the writer's next_seq when their pass
  // started. They hold only records that were live at or after that point,
  // so no put older than a tombstone whose seq is below it (compaction.h, 3.).
  std::map<uint32_t, uint64_t> output_start_seq;
  // Outputs made by this process: tombstone bytes they had to keep (not
  // reclaimable by compacting them again while the reason stands).
  std::map<uint32_t, uint64_t> kept_tombstone_bytes;
  // Segments left alone after a corrupt record, an unreadable header or a
  // page that could not be read; an entry goes when its segment does.
  std::set<uint32_t> skip;
  // Pacing.
  Clock::time_point pace_start;
  uint64_t paced_bytes = 0;
  // A dead-only pass beside a running pass (compaction_dead.h): one at a
  // time; the segments it read and had to leave, not read again until a
  // pass holding run_mu ran.
  std::mutex beside_mu;
  std::set<uint32_t> beside_rejected;
};

Compactor::Compactor(Writer& writer, CompactionOptions options)
    : writer_(writer), options_(std::move(options)), state_(std::make_unique<State>()) {}

Compactor::~Compactor() = default;

void Compactor::RequestStop() { state_->stop.store(true, std::memory_order_relaxed); }
void Compactor::ClearStop() { state_->stop.store(false, std::memory_order_relaxed); }
void Compactor::Hurry(bool on) { state_->hurry.store(on, std::memory_order_relaxed); }

void Compactor::SetCatchUpTarget(uint64_t reclaimable_bytes) {
  state_->catch_up_target.store(reclaimable_bytes, std::memory_order_relaxed);
}

uint64_t Compactor::copy_bytes() const { return state_->copy_bytes.load(std::memory_order_relaxed); }

CompactionStats Compactor::stats() const {
  std::lock_guard lock(state_->stats_mu);
  return state_->stats;
}

namespace {

// The work of one pass; a class so that the steps share the pass's context.
class Pass {
 public:
  Pass(Writer::Impl& w, const CompactionOptions& o, Compactor::State& st, PassReport* report, PassKind kind)
      : w_(w),
        o_(o),
        st_(st),
        report_(*report),
        catch_up_(kind == PassKind::kCatchUp),
        dead_only_(kind == PassKind::kDeadOnly) {}
  ~Pass() {
    SetCopy(0);
    if (inputs_.empty()) return;
    std::lock_guard lock(w_.mu_);
    for (const Input& in : inputs_) w_.compacting_.erase(in.stats.id);
  }

  Status Run();
  // The inputs as picked (CompactionOptions::log_debug's detail).
  std::string DescribeInputs() const;
  uint64_t largest_pending_output() const { return largest_pending_output_; }
  uint64_t bytes_deleted() const { return bytes_deleted_; }
  uint64_t bytes_written() const { return bytes_written_; }
  // What this pass adds to CompactionStats' cumulative counters (passes,
  // failures and bytes_freed aside): RunOnce adds it all at the pass's end.
  const CompactionStats& counted() const { return counted_; }

 private:
  struct Input {
    SegmentStats stats;
    uint64_t reclaimable = 0;
    PickReason why = PickReason::kThreshold;
    bool contributed = false;  // has records in the current, not yet installed output
    bool left = false;         // a large copy left when its turn came (LargeCopyLeft)
  };

  // Beside a write stall (CompactionOptions::stall_floor_bytes), a catch-up
  // pass's space-bound or target input that holds more than a quarter of
  // the live data now is left, not copied, unless the writes still wait
  // (the reclaimable bytes above the target) and its copy fits beside the
  // reclaimable and staged bytes of now (LargeCopyFits) or the stall needs
  // it (LargeCopyNeeded). In any pass an input picked as holding more than
  // half the live data (PickReason::kOverHalf) is left unless it still
  // does and its copy still fits (SplitOverHalf). The writer's lock and
  // stats_mu, briefly.
  bool LargeCopyLeft(Input& in);

  void Log(const std::string& line) const {
    if (o_.log) o_.log("compaction: " + line);
  }
  bool Stopping() const { return st_.stop.load(std::memory_order_relaxed); }
  // Compactor::copy_bytes: what the output being written will hold beside
  // its inputs once the input being copied is done.
  void SetCopy(uint64_t bytes) {
    copy_planned_ = bytes;
    st_.copy_bytes.store(bytes, std::memory_order_relaxed);
  }
  Result<uint64_t> FreeBytes() const {
    if (o_.free_bytes) return o_.free_bytes(w_.dir_);
    auto space = w_.env_.Space(w_.dir_);
    if (!space.ok()) return space.status();
    return space.value().free_bytes;
  }
  // File bytes of the scanned inputs whose records wait in the current output.
  uint64_t WaitingInputBytes() const {
    uint64_t bytes = 0;
    for (const Input& in : inputs_)
      if (in.contributed) bytes += in.stats.bytes;
    return bytes;
  }
  // Scanned inputs with nothing in the current output (DeleteReady's candidates).
  size_t ReadyCount() {
    size_t n = 0;
    for (const uint32_t id : scanned_)
      if (const Input* in = FindInput(id); in == nullptr || !in->contributed) ++n;
    return n;
  }
  uint64_t ReadyBytes() {
    uint64_t bytes = 0;
    for (const uint32_t id : scanned_)
      if (const Input* in = FindInput(id); in != nullptr && !in->contributed) bytes += in->stats.bytes;
    return bytes;
  }
  Input* FindInput(uint32_t id) {
    for (Input& in : inputs_)
      if (in.stats.id == id) return &in;
    return nullptr;
  }
  void Pace(uint64_t bytes);
  // Under w_.mu_: seals the active segment when the policy says its dead
  // records are worth compacting (SealActiveFirst). Does the file I/O of a
  // rotation under the mutex, as the writer thread does for its own.
  // Not when there is no room to copy its live records (sealing writes).
  void SealActiveIfWorthIt(bool low_space, uint64_t free_bytes);
  // Free bytes an output for live_to_copy bytes needs (with its hint and the margin).
  uint64_t OutputNeed(uint64_t live_to_copy) const {
    const uint64_t out_bytes = std::min<uint64_t>(w_.options_.segment_bytes, live_to_copy + kSegmentHeaderBytes);
    return out_bytes + out_bytes / 4 + o_.free_margin_bytes;
  }
  // pinned: segments that may not be deleted now (an online backup's cut,
  // or all of them while the key view's catch-up or rebuild reads them).
  // view_pin: every segment is pinned by the key view's job (pinned names
  // them all); report_.view_pinned then counts what the pass left for it.
  void Pick(const std::map<uint32_t, SegmentStats>& segs, const std::set<uint32_t>& pinned, bool view_pin,
            bool low_space);
  void ComputeGuards(const std::map<uint32_t, SegmentStats>& segs);
  SegmentOrigin ReadOrigin(uint32_t id);
  // OK with *complete = false when the input must stay (corrupt, no room);
  // kIOError when a page of it could not be read (InputUnreadable).
  Status CompactInput(Input& in, bool* complete);
  // The input being compacted: its mapping (kept by holder) and its bytes.
  struct Mapped {
    uint32_t id = 0;
    std::shared_ptr<const void> holder;
    const char* data = nullptr;
    uint64_t size = 0;
  };
  // Makes the input's bytes [off, off + n) (n <= m.size - off) readable at
  // At(off): unless the window holds them already, copies the input from
  // off, max(n, kWindowBytes) bytes up to its end, into the window under the
  // mapping guard (SegmentCache::CopyMapped; the window is grown before,
  // outside the guard). A fault answers the cache's FaultedError, the window
  // then empty.
  Status Fill(const Mapped& m, uint64_t off, uint64_t n) {
    if (win_len_ != 0 && off >= win_off_ && off + n <= win_off_ + win_len_) return Status::OK();
    return Refill(m, off, n);
  }
  Status Refill(const Mapped& m, uint64_t off, uint64_t n);
  const char* At(uint64_t off) const { return win_.data() + (off - win_off_); }
  // A page of input `id` at or after offset `off` could not be read (the
  // mapping is marked): logged at error level, counted as a read failure,
  // never picked again by this compactor while the segment exists. Returns
  // the error that ends the pass (its pending output is abandoned by Run).
  Status InputUnreadable(uint32_t id, uint64_t off, const Status& fault);
  Status StartOutput(uint64_t live_to_copy);
  // No room for an output (or ENOSPC writing it): the output is abandoned,
  // `in` stays, the pass goes on with the inputs that need nothing written.
  Status NoRoom(Input& in, const Status& s);
  // Makes room in the current output, or starts one, for a record of total bytes.
  Status OutputFor(uint64_t total);
  Status Copy(const char* rec, const RecordHeader& h, std::string_view key, uint64_t hash, Location from);
  // Copies the live record at input offset off, larger than kCopyChunkBytes,
  // into the output in pieces of at most kCopyChunkBytes, each read through
  // the window (Fill); its body checksum is computed over the pieces. key
  // (read before) is used before the first piece is read. *corrupt: the
  // checksum did not match: the output (which holds part of the record) is
  // abandoned, as when there is no room for it.
  Status CopyLarge(const Mapped& m, uint64_t off, const RecordHeader& h, std::string_view key, uint64_t hash,
                   Location from, bool* corrupt);
  Status FinishOutput();
  void AbandonOutput();
  Status Install();
  Status DeleteReady();
  Result<bool> IsLive(uint64_t hash, Location loc);
  Result<bool> CanDropTombstone(uint32_t seg, const RecordHeader& h, std::string_view key, uint64_t hash);

  Writer::Impl& w_;
  const CompactionOptions& o_;
  Compactor::State& st_;
  PassReport& report_;
  const bool catch_up_;
  const bool dead_only_;  // PassKind::kDeadOnly

  uint64_t start_seq_ = 0;
  uint64_t seed_ = 0;
  bool durable_index_ = false;  // sync=always: every indexed record is durable
  std::vector<Input> inputs_;
  uint64_t live_left_ = 0;  // live bytes of inputs not finished yet (space estimate)
  TombstoneGuards guards_;  // over the snapshot's segments

  std::unique_ptr<CompactionOutput> out_;
  std::vector<Move> moves_;
  uint64_t out_kept_tombstone_bytes_ = 0;
  std::vector<uint32_t> scanned_;  // inputs fully scanned, not deleted yet
  // Set when no output can be written any more in this pass (no room, or a
  // write failed with ENOSPC): inputs that need nothing copied still go.
  Status no_room_;
  Status corruption_;
  // The window: input bytes [win_off_, win_off_ + win_len_) copied out of
  // the input's mapping (Fill), at most kCopyChunkBytes.
  std::string win_;
  uint64_t win_off_ = 0, win_len_ = 0;
  uint64_t bytes_deleted_ = 0, bytes_written_ = 0;  // segment file bytes (bytes_freed's terms)
  CompactionStats counted_;
  // The largest output finished while inputs waited on it (its copies on
  // top of those inputs until they are deleted).
  uint64_t largest_pending_output_ = 0;
  // What SetCopy published last.
  uint64_t copy_planned_ = 0;
  // The sealed segments as the pass saw them when it picked.
  uint64_t sealed_live_ = 0, sealed_dead_ = 0;
  // The live bytes of every segment when it picked: an output holds at most
  // a quarter of them (FinishOutputForShare).
  uint64_t pass_live_ = 0;
};

std::string Pass::DescribeInputs() const {
  std::string line =
      "sealed live " + std::to_string(sealed_live_) + " dead " + std::to_string(sealed_dead_) + "; inputs";
  for (const Input& in : inputs_) {
    line += " " + std::to_string(in.stats.id) + " (" + PickReasonName(in.why) + ": live " +
            std::to_string(in.stats.live_bytes) + " dead " + std::to_string(in.stats.dead_bytes);
    if (in.reclaimable != in.stats.dead_bytes) line += " reclaimable " + std::to_string(in.reclaimable);
    if (in.left) line += " left: its copy does not fit";
    line += ")";
  }
  return line;
}

void Pass::Pace(uint64_t bytes) {
  if (o_.rate_bytes_per_sec == 0 || bytes == 0 || catch_up_ || dead_only_ || st_.hurry.load(std::memory_order_relaxed)) return;
  st_.paced_bytes += bytes;
  const auto due = st_.pace_start + std::chrono::microseconds(st_.paced_bytes * 1000000 / o_.rate_bytes_per_sec);
  // Sleep in short steps so that RequestStop is honoured quickly; bounded by due.
  for (int i = 0; i < 100000 && Clock::now() < due && !Stopping(); ++i)
    std::this_thread::sleep_for(std::min<Clock::duration>(due - Clock::now(), std::chrono::milliseconds(10)));
}

void Pass::SealActiveIfWorthIt(bool low_space, uint64_t free_bytes) {
  if (!w_.active_) return;
  const auto it = w_.segments_.find(w_.active_id_);
  if (it == w_.segments_.end() || free_bytes < OutputNeed(it->second.live_bytes)) return;
  PickOptions po;
  po.dead_ratio = w_.options_.compaction_dead_ratio;
  // A catch-up pass seals it once it is as dead as the sealed segments the
  // pass picks; not for a few dead bytes (its live bytes would be copied,
  // a compaction output beside the writes, to free next to nothing).
  if (catch_up_) po.dead_ratio = std::min(po.dead_ratio, kCatchUpDeadFraction);
  po.pick_all = o_.pick_all;
  po.pick_reclaimable = o_.pick_reclaimable;
  po.low_space = low_space;
  uint64_t live = 0;
  for (const auto& [id, seg] : w_.segments_) live += seg.live_bytes;
  uint64_t min_bytes = ActiveSealMinBytes(w_.options_.segment_bytes, live);
  if (catch_up_) min_bytes = std::min(min_bytes, kCatchUpSealMinBytes);
  // Offline no write follows that would fill it: its dead records are now or never.
  if (o_.offline) min_bytes = 0;
  if (!SealActiveFirst(it->second, min_bytes, po)) return;
  const uint32_t sealed = w_.active_id_;
  const Status s = w_.Rotate();
  // A failed rotation that got as far as sealing (no room for the next active
  // segment: the next write creates it) still makes the segment compactable;
  // a failed sync turned the writer read-only (the caller checks).
  const auto& sink = s.ok() ? o_.log_debug : o_.log;
  if (sink) {
    sink("compaction: sealed the active segment " + std::to_string(sealed) + " (" +
        std::to_string(it->second.dead_bytes) + " dead bytes) to compact it" +
        (s.ok() ? std::string() : ": " + s.ToString()));
  }
}

void Pass::Pick(const std::map<uint32_t, SegmentStats>& segs, const std::set<uint32_t>& pinned, bool view_pin,
                bool low_space) {
  PickOptions po;
  po.dead_ratio = w_.options_.compaction_dead_ratio;
  po.max_dead_fraction = o_.max_dead_fraction;
  // Catch-up: the most profitable segments until little is left to reclaim,
  // not every segment with a dead record (copying mostly live segments would
  // only put more bytes on disk while the writes wait).
  if (catch_up_)
    po.max_dead_fraction =
        po.max_dead_fraction > 0 ? std::min(po.max_dead_fraction, kCatchUpDeadFraction) : kCatchUpDeadFraction;
  // Writes waiting until the reclaimable bytes are within a target (the
  // write stall's end bound, or the room a held batch needs): as far as that
  // target, and no further, whichever side of that fraction it is.
  if (catch_up_) {
    po.max_reclaimable_bytes = st_.catch_up_target.load(std::memory_order_relaxed);
    po.stop_at_target = po.max_reclaimable_bytes != UINT64_MAX;
  }
  // Beside a write stall, a catch-up pass copies a segment holding more than
  // a quarter of the live data for the space bound or a target only when it
  // fits beside what the writes left, or when the stall needs it
  // (CompactionOptions::stall_floor_bytes; checked again when its turn
  // comes, LargeCopyLeft).
  if (o_.stall_floor_bytes != 0 && catch_up_) po.large_copies = LargeCopies::kIfFits;
  // Also what any pass measures a segment holding more than half the live
  // data against (SplitOverHalf).
  po.stall_floor_bytes = o_.stall_floor_bytes;
  po.staged_bytes = o_.staged_bytes ? o_.staged_bytes() : 0;
  po.pick_all = o_.pick_all;
  po.pick_reclaimable = o_.pick_reclaimable;
  po.low_space = low_space;
  po.segment_bytes = w_.options_.segment_bytes;
  // A pinned segment is left for a pass after its pin: compacting it now
  // would delete nothing (copies would only add bytes), and a pass that
  // picked only such segments would count as fruitless, backing compaction
  // off (and with it the write stall) for a second or more while writes go
  // on; pins are mostly short (the key view's catch-up after an open).
  std::set<uint32_t> skip = st_.skip;
  skip.insert(pinned.begin(), pinned.end());
  std::map<uint32_t, uint64_t> kept;
  {
    std::lock_guard lock(st_.stats_mu);
    kept = st_.kept_tombstone_bytes;
  }
  for (const auto& [id, seg] : segs) {
    pass_live_ += seg.live_bytes;
    if (seg.active) continue;
    sealed_live_ += seg.live_bytes;
    sealed_dead_ += seg.dead_bytes;
  }
  for (const PickedSegment& p : PickSegments(segs, skip, kept, po)) {
    if (dead_only_ && p.stats.live_bytes != 0) continue;
    Input in;
    in.stats = p.stats;
    in.reclaimable = p.reclaimable;
    in.why = p.why;
    inputs_.push_back(in);
    live_left_ += in.stats.live_bytes;
  }
  // What the key view's pin kept from this pass: the write stall waits for
  // the pin to end (it is short) instead of taking the pass as compaction
  // having nothing to do.
  if (view_pin)
    report_.view_pinned = static_cast<uint32_t>(PickSegments(segs, st_.skip, kept, po).size());
}

bool Pass::LargeCopyLeft(Input& in) {
  const bool over_half = in.why == PickReason::kOverHalf;
  if (!over_half) {
    if (o_.stall_floor_bytes == 0 || !catch_up_) return false;
    if (in.why != PickReason::kSpaceBound && in.why != PickReason::kTarget) return false;
  }
  std::map<uint32_t, uint64_t> kept;
  {
    std::lock_guard lock(st_.stats_mu);
    kept = st_.kept_tombstone_bytes;
  }
  uint64_t live = 0, reclaimable = 0, input_live = 0, input_reclaimable = 0;
  {
    std::lock_guard lock(w_.mu_);
    for (const auto& [id, seg] : w_.segments_) {
      live += seg.live_bytes;
      const auto k = kept.find(id);
      const uint64_t kept_bytes = k == kept.end() ? 0 : k->second;
      const uint64_t seg_reclaimable = seg.dead_bytes > kept_bytes ? seg.dead_bytes - kept_bytes : 0;
      reclaimable += seg_reclaimable;
      if (id == in.stats.id) {
        input_live = seg.live_bytes;
        input_reclaimable = seg_reclaimable;
      }
    }
  }
  const uint64_t staged = o_.staged_bytes ? o_.staged_bytes() : 0;
  if (over_half) {
    if (SplitOverHalf(input_live, input_reclaimable, live, reclaimable, staged, o_.stall_floor_bytes)) return false;
    in.left = true;
    ++report_.left_for_room;
    return true;
  }
  if (input_live <= live / kMaxActiveShare) return false;
  // Writes wait until the reclaimable bytes are within the target: above
  // it they still wait, and go on only once an input is deleted (this
  // one's, after its copy). At or under it they may go on beside the copy.
  const bool writes_wait = reclaimable > st_.catch_up_target.load(std::memory_order_relaxed);
  if (writes_wait && (LargeCopyFits(input_live, live, reclaimable, staged, o_.stall_floor_bytes) ||
                      LargeCopyNeeded(live, reclaimable, o_.stall_floor_bytes)))
    return false;
  in.left = true;
  ++report_.left_for_room;
  return true;
}

SegmentOrigin Pass::ReadOrigin(uint32_t id) {
  SegmentOrigin origin;
  auto span = w_.cache_.Read(id, 0, kSegmentHeaderBytes);
  char header[kSegmentHeaderBytes];
  if (span.ok() && w_.cache_.CopyMapped(span->holder, span->data, kSegmentHeaderBytes, header).ok()) {
    origin.readable = true;
    SegmentHeader h;
    if (DecodeSegmentHeader(header, kSegmentHeaderBytes, &h).ok() && h.segment_id == id) {
      origin.valid = true;
      origin.seed = h.seed;
      origin.seq_floor = h.seq_floor;
    }
  }
  std::lock_guard lock(st_.stats_mu);
  if (auto it = st_.output_start_seq.find(id); it != st_.output_start_seq.end()) origin.output_start_seq = it->second;
  return origin;
}

void Pass::ComputeGuards(const std::map<uint32_t, SegmentStats>& segs) {
  for (const auto& [id, s] : segs) guards_.Add(id, SegmentGuard(ReadOrigin(id), seed_));
}

Result<bool> Pass::IsLive(uint64_t hash, Location loc) {
  Candidates c;
  Status s = w_.index_.Lookup(hash, &c);
  if (s.Is(Code::kBusy)) {
    std::lock_guard lock(w_.mu_);
    s = w_.index_.LookupForWriter(hash, &c);
  }
  if (!s.ok()) return s;
  for (uint32_t i = 0; i < c.count; ++i)
    if (c.locations[i] == loc) return true;
  return false;
}

Result<bool> Pass::CanDropTombstone(uint32_t seg, const RecordHeader& h, std::string_view key, uint64_t hash) {
  // No other segment can hold an older record of the key.
  if (guards_.NothingOlderElsewhere(seg, h.seq)) return true;
  if (!durable_index_) return false;
  // A newer, durable put of the key is live: it outranks every older record.
  Candidates c;
  Status s = w_.index_.Lookup(hash, &c);
  if (s.Is(Code::kBusy)) return false;
  if (!s.ok()) return s;
  for (uint32_t i = 0; i < c.count; ++i) {
    auto ref = w_.cache_.ReadRecord(c.locations[i], w_.limits_);
    if (!ref.ok()) continue;
    auto same = w_.cache_.KeyIs(ref.value(), key);
    if (!same.ok() || !same.value()) continue;  // unreadable: not known newer, the tombstone stays
    return ref->header.type == RecordType::kPut && ref->header.seq > h.seq;
  }
  return false;
}

Status Pass::StartOutput(uint64_t live_to_copy) {
  auto free = FreeBytes();
  if (!free.ok()) return free.status();
  // The output's size bound, its hint (bounded by a quarter of it) and the margin.
  const uint64_t need = OutputNeed(live_to_copy);
  if (free.value() < need)
    return Status::NoSpace("compaction needs " + std::to_string(need) + " free bytes for an output segment, " +
                           std::to_string(free.value()) + " available");
  uint32_t id = 0;
  {
    std::lock_guard lock(w_.mu_);
    if (w_.read_only_) return Status::ReadOnly("writer is read-only: " + w_.read_only_cause_.ToString());
    auto allocated = w_.AllocateSegmentId();
    if (!allocated.ok()) return allocated.status();
    id = allocated.value();
  }
  auto out = CompactionOutput::Create(w_.env_, w_.dir_, id, seed_);
  if (!out.ok()) {
    std::lock_guard lock(w_.mu_);
    w_.ReleaseSegmentId(id);
    return out.status();
  }
  out_ = std::move(out.value());
  moves_.clear();
  out_kept_tombstone_bytes_ = 0;
  return Status::OK();
}

Status Pass::NoRoom(Input& in, const Status& s) {
  Log("no room for an output segment: " + s.ToString());
  if (out_) AbandonOutput();
  in.contributed = false;
  no_room_ = s;
  return Status::OK();
}

Status Pass::OutputFor(uint64_t total) {
  const uint64_t held = out_ && out_->size() > kSegmentHeaderBytes ? out_->size() - kSegmentHeaderBytes : 0;
  if (held > 0 && (out_->size() + total > w_.options_.segment_bytes || FinishOutputForShare(held, total, pass_live_))) {
    Status s = FinishOutput();
    if (!s.ok()) return s;
  }
  if (out_) return Status::OK();
  Status s = DeleteReady();  // free what can be freed before taking room for an output
  if (s.ok()) s = StartOutput(std::max(live_left_, total));
  return s;
}

Status Pass::Copy(const char* rec, const RecordHeader& h, std::string_view key, uint64_t hash, Location from) {
  const uint64_t total = h.total_bytes();
  if (Status s = OutputFor(total); !s.ok()) return s;
  uint64_t offset = 0, written = 0;
  Status s = out_->Add(std::string_view(rec, total), h, key, &offset, &written);
  if (!s.ok()) return s;
  Pace(written);
  moves_.push_back(Move{hash, from, offset, total, h.type});
  if (h.type == RecordType::kDelete) out_kept_tombstone_bytes_ += total;
  return Status::OK();
}

Status Pass::CopyLarge(const Mapped& m, uint64_t off, const RecordHeader& h, std::string_view key, uint64_t hash,
                       Location from, bool* corrupt) {
  *corrupt = false;
  const uint64_t total = h.total_bytes();
  if (Status s = OutputFor(total); !s.ok()) return s;
  uint64_t offset = 0;
  out_->BeginRecord(h, key, total, &offset);  // key is in the window: used before Fill moves it
  Checksum64Stream body;
  for (uint64_t done = 0; done < total;) {
    const uint64_t n = std::min(kCopyChunkBytes, total - done);
    if (Status s = Fill(m, off + done, n); !s.ok()) return InputUnreadable(m.id, off + done, s);
    const char* piece = At(off + done);
    const uint64_t skip = done < kRecordHeaderBytes ? kRecordHeaderBytes - done : 0;  // the header is not in it
    body.Update(piece + skip, n - skip);
    uint64_t written = 0;
    if (Status s = out_->AddBytes(std::string_view(piece, n), &written); !s.ok()) return s;
    Pace(written);
    done += n;
  }
  if (body.Digest() != h.body_checksum) {
    *corrupt = true;
    AbandonOutput();
    return Status::OK();
  }
  moves_.push_back(Move{hash, from, offset, total, h.type});
  return Status::OK();
}

void Pass::AbandonOutput() {
  const uint32_t id = out_->id();
  out_.reset();  // removes the .tmp and the hint
  SetCopy(0);
  {
    std::lock_guard lock(w_.mu_);
    w_.ReleaseSegmentId(id);
  }
  moves_.clear();
  // The inputs that fed it keep their records: they must not be deleted.
  std::vector<uint32_t> keep;
  for (uint32_t id : scanned_) {
    Input* in = FindInput(id);
    if (in == nullptr || !in->contributed) keep.push_back(id);
  }
  scanned_ = std::move(keep);
  for (Input& in : inputs_) in.contributed = false;
}

// Publishes the current output, installs its records, deletes the inputs it completed.
Status Pass::FinishOutput() {
  largest_pending_output_ = std::max(largest_pending_output_, out_->size());
  const uint64_t unpaced = out_->buffered();
  Status s = out_->Finish();
  if (!s.ok()) {
    AbandonOutput();
    return s;
  }
  Pace(unpaced);
  {
    std::lock_guard lock(w_.mu_);
    w_.RecordBirth(out_->id(), out_->size());  // born after its inputs: its copies win a tie at recovery
  }
  bytes_written_ += out_->size();
  counted_.bytes_written += out_->size() + out_->hint_bytes();
  ++counted_.segments_written;
  {
    std::lock_guard lock(st_.stats_mu);
    st_.output_start_seq[out_->id()] = start_seq_;
    st_.kept_tombstone_bytes[out_->id()] = out_kept_tombstone_bytes_;
  }
  ++report_.outputs;
  const uint64_t finished = out_->size();
  s = Install();
  out_.reset();  // published: the destructor leaves its files alone
  moves_.clear();
  // Installed, its copies count as its inputs' dead bytes until they are
  // deleted; what stays planned is the rest of an input it could not hold.
  SetCopy(copy_planned_ > finished ? copy_planned_ - finished : 0);
  if (!s.ok()) return s;
  return DeleteReady();
}

Status Pass::Install() {
  const uint32_t out_id = out_->id();
  const size_t batch = std::max<uint32_t>(o_.install_batch, 1);
  uint64_t moved = 0, superseded = 0;
  for (size_t i = 0; i < moves_.size(); i += batch) {
    {
      std::lock_guard lock(w_.mu_);
      if (w_.read_only_) return Status::ReadOnly("writer is read-only: " + w_.read_only_cause_.ToString());
      SegmentStats& out = w_.segments_[out_id];
      out.id = out_id;
      out.bytes = out_->size();
      out.active = false;
      w_.ReleaseSegmentId(out_id);  // in segments_ now
      for (size_t j = i; j < std::min(moves_.size(), i + batch); ++j) {
        const Move& m = moves_[j];
        const Location to = MakeLocation(out_id, m.offset);
        if (m.type == RecordType::kPut && w_.index_.Replace(m.hash, m.from, to)) {
          SegmentStats& from = w_.segments_[LocationSegment(m.from)];
          from.live_bytes -= m.total;
          from.dead_bytes += m.total;
          out.live_bytes += m.total;
          ++moved;
        } else {
          // A kept tombstone, or a copy that a newer write beat meanwhile.
          out.dead_bytes += m.total;
          if (m.type == RecordType::kPut) ++superseded;
        }
      }
      w_.PublishCounters();
    }
    KINGX_KILL_POINT("compact.mid_install");
  }
  for (Input& in : inputs_) in.contributed = false;
  counted_.records_moved += moved;
  counted_.records_superseded += superseded;
  return Status::OK();
}

// Deletes the scanned inputs that have nothing in a pending output. Their
// removals go to the MANIFEST together, with one fdatasync, before the first
// unlink.
Status Pass::DeleteReady() {
  std::vector<uint32_t> keep, go;
  for (const uint32_t id : scanned_) {
    Input* in = FindInput(id);
    if (in != nullptr && in->contributed) {
      keep.push_back(id);
      continue;
    }
    // Ids are reused once free; readers revalidate their mappings by file
    // identity when the segment epoch moves (bumped below, after the unlink),
    // so any segment, the newest included, may go.
    std::lock_guard lock(w_.mu_);
    if (w_.segments_[id].live_bytes != 0) {
      // The accounting says the index still points into it: never delete.
      Log("segment " + std::to_string(id) + " still has " + std::to_string(w_.segments_[id].live_bytes) +
          " live bytes after its records were moved; left alone");
      st_.skip.insert(id);
      continue;
    }
    // A pinned segment (an online backup or the keyspace's rebuild reads
    // it) stays, fully dead, until a later pass.
    if (!w_.BeginDelete(id)) {
      keep.push_back(id);
      continue;
    }
    go.push_back(id);
  }
  scanned_ = std::move(keep);
  if (go.empty()) return Status::OK();
  if (w_.manifest_) {
    // Durable before the unlinks: a power loss never makes them look missing.
    // On a full disk freeing space comes first: the removals stay in the
    // manifest's memory and are written with its next rewrite (a crash
    // before that makes the next open report these segments missing).
    Status ms = w_.manifest_->RemoveSegments(go);
    if (!ms.ok() && !ms.Is(Code::kNoSpace)) {
      std::lock_guard lock(w_.mu_);
      for (const uint32_t id : go) w_.EndDelete(id);
      scanned_.insert(scanned_.end(), go.begin(), go.end());
      return ms;
    }
    if (!ms.ok()) Log("MANIFEST not updated before deleting " + std::to_string(go.size()) + " segment(s): " + ms.ToString());
  }
  Status result;
  for (const uint32_t id : go) {
    if (!result.ok()) {
      // Recorded as removed but not unlinked: the next open finishes it.
      std::lock_guard lock(w_.mu_);
      w_.EndDelete(id);
      scanned_.push_back(id);
      continue;
    }
    KINGX_KILL_POINT("compact.before_unlink");
    Status s = w_.env_.RemoveFile(JoinPath(w_.dir_, SegmentFileName(id)));
    if (!s.ok() && !s.Is(Code::kNotFound)) {
      std::lock_guard lock(w_.mu_);
      w_.EndDelete(id);
      result = s;
      scanned_.push_back(id);
      continue;
    }
    KINGX_KILL_POINT("compact.after_unlink");
    w_.env_.RemoveFile(JoinPath(w_.dir_, HintFileName(id))).ok();  // an orphan hint is removed by recovery
    KINGX_KILL_POINT("compact.after_unlink_hint");
    uint64_t bytes = 0;
    {
      std::lock_guard lock(w_.mu_);
      bytes = w_.ForgetUnlinked(id);
      w_.PublishCounters();
    }
    ++report_.deleted;
    bytes_deleted_ += bytes;
    ++counted_.segments_compacted;
    std::lock_guard lock(st_.stats_mu);
    st_.output_start_seq.erase(id);
    st_.kept_tombstone_bytes.erase(id);
  }
  return result;
}

Status Pass::InputUnreadable(uint32_t id, uint64_t off, const Status& fault) {
  st_.skip.insert(id);
  w_.index_.counters().read_failures.fetch_add(1, std::memory_order_relaxed);
  w_.LogError("compaction: segment " + std::to_string(id) + " could not be read at or after offset " +
              std::to_string(off) + " (" + fault.ToString() + "); pass abandoned, the segment is left alone and " +
              "not compacted again until it is replaced or the writer restarts");
  return fault;
}

Status Pass::Refill(const Mapped& m, uint64_t off, uint64_t n) {
  const uint64_t len = std::min(m.size - off, std::max(n, kWindowBytes));
  win_len_ = 0;
  if (win_.size() < len) win_.resize(len);  // outside the guard: it may allocate
  Status s = w_.cache_.CopyMapped(m.holder, m.data + off, len, win_.data());
  if (!s.ok()) return s;
  win_off_ = off;
  win_len_ = len;
  return Status::OK();
}

Status Pass::CompactInput(Input& in, bool* complete) {
  *complete = false;
  const uint32_t id = in.stats.id;
  auto span = w_.cache_.Read(id, 0, in.stats.bytes);
  if (!span.ok()) {
    st_.skip.insert(id);
    Log("segment " + std::to_string(id) + " unreadable (" + span.status().ToString() + "); left alone");
    corruption_ = span.status();
    return Status::OK();
  }
  const Mapped m{id, span->holder, span->data, in.stats.bytes};
  win_len_ = 0;
  // Every byte of the input is read from a copy taken under the mapping
  // guard (the window, Fill): a page that cannot be read fails the pass
  // (InputUnreadable) instead of ending the writer.
  const size_t seg_header_bytes = std::min<uint64_t>(kSegmentHeaderBytes, in.stats.bytes);
  if (Status cs = Fill(m, 0, seg_header_bytes); !cs.ok()) return InputUnreadable(id, 0, cs);
  SegmentHeader sh;
  if (!DecodeSegmentHeader(At(0), seg_header_bytes, &sh).ok() || sh.segment_id != id || sh.seed != seed_) {
    st_.skip.insert(id);
    Log("segment " + std::to_string(id) + " has a bad header; left alone");
    return Status::OK();
  }
  // read: bytes this pass looked at (the header, then each record whole, or
  // only its header and key when it is a dead put).
  uint64_t off = kSegmentHeaderBytes, paced = 0, read = kSegmentHeaderBytes;
  uint64_t dropped = 0, kept = 0;
  while (off < in.stats.bytes) {
    if (Stopping()) return Status::Busy("compaction stopped");
    const uint64_t avail = in.stats.bytes - off;
    if (Status cs = Fill(m, off, std::min<uint64_t>(kRecordHeaderBytes, avail)); !cs.ok())
      return InputUnreadable(id, off, cs);
    RecordHeader h;
    Status rs = DecodeRecordHeader(At(off), avail, w_.limits_, &h);
    // A put the index no longer points to is dropped unverified: its header
    // (checksummed) gives its length, its key says whether it is live, and
    // its body is neither verified nor paced (nor read, past the window). A
    // damaged key can only make a live put look dead: the segment then
    // keeps live bytes in the accounting and DeleteReady leaves it alone.
    bool dead_put = false;
    if (rs.ok() && h.type == RecordType::kPut) {
      if (Status cs = Fill(m, off, kRecordHeaderBytes + h.key_len); !cs.ok()) return InputUnreadable(id, off, cs);
      const std::string_view key(At(off) + kRecordHeaderBytes, h.key_len);
      auto live = IsLive(KeyHash(seed_, key), MakeLocation(id, off));
      if (!live.ok()) return live.status();
      dead_put = !live.value();
    }
    // A live record larger than kCopyChunkBytes goes to the output in pieces
    // (its checksum over them), never whole in memory.
    const bool large = rs.ok() && !dead_put && h.total_bytes() > kCopyChunkBytes;
    if (rs.ok() && !dead_put && !large) {
      if (Status cs = Fill(m, off, h.total_bytes()); !cs.ok()) return InputUnreadable(id, off, cs);
      rs = VerifyRecordBody(At(off), h);
    }
    if (large) {
      if (!no_room_.ok()) return Status::OK();  // needs an output we cannot write: the input stays
      const std::string_view key(At(off) + kRecordHeaderBytes, h.key_len);
      bool corrupt = false;
      Status s = CopyLarge(m, off, h, key, KeyHash(seed_, key), MakeLocation(id, off), &corrupt);
      if (s.Is(Code::kNoSpace)) return NoRoom(in, s);
      if (!s.ok()) return s;
      if (corrupt) rs = Status::Corruption("record body checksum mismatch");
      in.contributed = !corrupt;
      win_.resize(kWindowBytes);  // the pieces' room is not kept for the pass
      win_.shrink_to_fit();
      win_len_ = 0;
    }
    if (!rs.ok()) {
      // Unknown keys past this point: the segment cannot be deleted safely.
      st_.skip.insert(id);
      Log("segment " + std::to_string(id) + ": corrupt record at offset " + std::to_string(off) + " (" +
          rs.ToString() + "); segment left alone");
      corruption_ = Status::Corruption("segment " + std::to_string(id) + " has a corrupt record");
      return Status::OK();
    }
    if (!large) {
      const std::string_view key(At(off) + kRecordHeaderBytes, h.key_len);
      const uint64_t hash = KeyHash(seed_, key);
      bool copy = false;
      if (h.type == RecordType::kPut) {
        copy = !dead_put;
      } else {
        auto drop = CanDropTombstone(id, h, key, hash);
        if (!drop.ok()) return drop.status();
        copy = !drop.value();
        (copy ? kept : dropped) += 1;
      }
      if (copy) {
        if (!no_room_.ok()) return Status::OK();  // needs an output we cannot write: the input stays
        Status s = Copy(At(off), h, key, hash, MakeLocation(id, off));
        if (s.Is(Code::kNoSpace)) return NoRoom(in, s);
        if (!s.ok()) return s;
        in.contributed = true;
      }
    }
    off += h.total_bytes();
    const uint64_t looked_at = dead_put ? kRecordHeaderBytes + h.key_len : h.total_bytes();
    paced += looked_at;
    read += looked_at;
    if (paced >= kPaceChunkBytes) {
      Pace(paced);
      paced = 0;
    }
  }
  Pace(paced);
  live_left_ -= std::min(live_left_, in.stats.live_bytes);
  *complete = true;
  counted_.bytes_read += read;
  counted_.tombstones_dropped += dropped;
  counted_.tombstones_kept += kept;
  return Status::OK();
}

Status Pass::Run() {
  const uint64_t seg = w_.options_.segment_bytes;
  const uint64_t low_mark =
      o_.low_space_bytes != 0 ? o_.low_space_bytes : std::max(2 * seg, w_.options_.disk_reserve_bytes + seg);
  auto free = FreeBytes();
  if (!free.ok()) return free.status();
  const bool low_space = free.value() < low_mark;
  std::map<uint32_t, SegmentStats> segs;
  std::set<uint32_t> pinned;
  bool view_pin = false;
  {
    std::lock_guard lock(w_.mu_);
    if (w_.read_only_) return Status::ReadOnly("writer is read-only: " + w_.read_only_cause_.ToString());
    // A dead-only pass only deletes, and only what durable writes made dead.
    if (dead_only_ && w_.options_.sync != SyncMode::kAlways) return Status::OK();
    if (!dead_only_) SealActiveIfWorthIt(low_space, free.value());
    if (w_.read_only_) return Status::ReadOnly("writer is read-only: " + w_.read_only_cause_.ToString());
    segs = w_.segments_;
    view_pin = w_.pins_ > 0;
    if (view_pin) {
      for (const auto& [id, seg] : segs) pinned.insert(id);
    } else {
      for (const auto& [id, holders] : w_.pinned_ids_) pinned.insert(id);
    }
    start_seq_ = w_.next_seq_;
    seed_ = w_.seed_;
    durable_index_ = w_.options_.sync == SyncMode::kAlways;
  }
  // What this compactor kept of segments that writes deleted since
  // (Writer::Impl::DeleteEmptiedLocked: a one-record output, overwritten).
  {
    std::lock_guard lock(st_.stats_mu);
    std::erase_if(st_.output_start_seq, [&](const auto& e) { return segs.count(e.first) == 0; });
    std::erase_if(st_.kept_tombstone_bytes, [&](const auto& e) { return segs.count(e.first) == 0; });
  }
  // A segment left alone that is gone since: its id may name a new file.
  std::erase_if(st_.skip, [&](uint32_t id) { return segs.count(id) == 0; });
  Pick(segs, pinned, view_pin, low_space);
  {
    // Its inputs are its own: a write that empties one leaves it to this
    // pass (Writer::Impl::DeleteEmptiedLocked), and so does a dead-only pass
    // beside it (compaction_dead.h). A segment deleted since the snapshot,
    // or claimed by a dead-only pass beside this one, is dropped from the picks.
    std::lock_guard lock(w_.mu_);
    std::erase_if(inputs_, [&](const Input& in) {
      return w_.segments_.count(in.stats.id) == 0 || w_.compacting_.count(in.stats.id) != 0;
    });
    for (const Input& in : inputs_) w_.compacting_.insert(in.stats.id);
  }
  report_.inputs = static_cast<uint32_t>(inputs_.size());
  if (inputs_.empty()) return Status::OK();
  ComputeGuards(segs);
  st_.pace_start = Clock::now();
  st_.paced_bytes = 0;

  Status s;
  for (Input& in : inputs_) {
    KINGX_KILL_POINT("compact.before_input");
    if (in.why == PickReason::kOverHalf) {
      // Its copy fits once the inputs before it are deleted (PickSegments):
      // their output is finished and they go first.
      s = out_ ? FinishOutput() : DeleteReady();
      if (s.Is(Code::kNoSpace)) {
        no_room_ = s;
        s = Status::OK();
      }
      if (!s.ok()) break;
    }
    if (LargeCopyLeft(in)) continue;
    // Announced before its output grows, so that the write stall counts the
    // whole copy from its start (a live byte copied stands beside its input).
    if (in.stats.live_bytes > 0) SetCopy((out_ ? out_->size() : 0) + in.stats.live_bytes);
    bool complete = false;
    s = CompactInput(in, &complete);
    SetCopy(out_ ? out_->size() : 0);
    if (!s.ok()) break;
    if (!complete) continue;
    scanned_.push_back(in.stats.id);
    if (out_ && (FinishOutputAfterInput(WaitingInputBytes(), out_->size(), seg) ||
                 (catch_up_ && FinishCatchUpOutputAfterInput(WaitingInputBytes(), out_->size())))) {
      // Published now, the copies so far survive a crash, and the inputs
      // they complete are deleted below.
      s = FinishOutput();
      if (s.Is(Code::kNoSpace)) {
        no_room_ = s;
        s = Status::OK();
      }
      if (!s.ok()) break;
    }
    // Inputs that put nothing in the pending output go in batches (one
    // MANIFEST fdatasync each) once they are worth it, and before any output
    // is started (Copy): on a full disk that frees space before anything is
    // written.
    if (DeleteScannedAfterInput(ReadyCount(), ReadyBytes(), kDeleteBatch)) s = DeleteReady();
    if (!s.ok()) break;
  }
  if (s.ok() && out_) {
    s = FinishOutput();
    if (s.Is(Code::kNoSpace)) {
      no_room_ = s;
      s = Status::OK();
    }
  }
  if (s.ok()) s = DeleteReady();  // the rest: inputs that needed nothing written
  if (!s.ok()) {
    if (out_) AbandonOutput();  // an unpublished output is removed; its inputs stay
    return s;
  }
  if (report_.deleted > 0) {
    KINGX_KILL_POINT("compact.before_final_dir_sync");
    w_.env_.SyncDir(w_.dir_).ok();  // deletions need no durability: a surviving input only duplicates copies
  }
  if (!no_room_.ok()) return no_room_;
  return corruption_;
}

}  // namespace

Status Compactor::RunOnce(PassReport* report, PassKind kind, const char* cause) {
  PassReport local;
  if (report == nullptr) report = &local;
  *report = PassReport{};
  if (state_->stop.load(std::memory_order_relaxed)) return Status::Busy("compaction stopped");
  if (writer_.impl_->options_.read_only) return Status::ReadOnly("the database was opened read-only");
  // One pass at a time; a dead-only pass does not wait for another (which
  // picked its inputs before, so its caller tries again later).
  std::unique_lock run(state_->run_mu, std::defer_lock);
  if (kind == PassKind::kDeadOnly) {
    if (!run.try_lock()) return RunDeadOnlyBeside(report);
  } else {
    run.lock();
  }
  {
    // This pass sees every segment: what a dead-only pass beside an earlier
    // one had to leave may be read again.
    std::lock_guard beside(state_->beside_mu);
    state_->beside_rejected.clear();
  }
  const auto start = Clock::now();
  Pass pass(*writer_.impl_, options_, *state_, report, kind);
  Status s = pass.Run();
  report->bytes_freed = pass.bytes_deleted() > pass.bytes_written() ? pass.bytes_deleted() - pass.bytes_written() : 0;
  const uint64_t us =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
  {
    // Every counter of the pass at once: a reader of stats() never sees a
    // pass's deletions without its pass, or its outputs without the bytes
    // they freed.
    std::lock_guard lock(state_->stats_mu);
    CompactionStats& st = state_->stats;
    const CompactionStats& c = pass.counted();
    if (report->inputs > 0) ++st.passes;
    if (!s.ok()) ++st.failures;
    st.segments_compacted += c.segments_compacted;
    st.segments_written += c.segments_written;
    st.bytes_read += c.bytes_read;
    st.bytes_written += c.bytes_written;
    st.bytes_freed += report->bytes_freed;
    st.records_moved += c.records_moved;
    st.records_superseded += c.records_superseded;
    st.tombstones_dropped += c.tombstones_dropped;
    st.tombstones_kept += c.tombstones_kept;
    state_->stats.last_pass_us = us;
    uint64_t kept = 0;
    for (const auto& [id, bytes] : state_->kept_tombstone_bytes) kept += bytes;
    state_->stats.kept_tombstone_bytes = kept;
  }
  const char* kind_name = kind == PassKind::kCatchUp ? "catch-up " : kind == PassKind::kDeadOnly ? "dead-only " : "";
  // A pass that ended well, or stopped with the compactor, is routine (its
  // counts are in stats()).
  const auto& sink = s.ok() || s.Is(Code::kBusy) ? options_.log_debug : options_.log;
  if (sink && (report->inputs > 0 || !s.ok()))
    sink(std::string("compaction: ") + kind_name + "pass picked " + std::to_string(report->inputs) +
         " segment(s), deleted " + std::to_string(report->deleted) + ", wrote " + std::to_string(report->outputs) +
         ", freed " + std::to_string(report->bytes_freed) + " bytes in " + std::to_string(us / 1000) + " ms: " +
         s.ToString());
  if (options_.log_debug && report->inputs > 0)
    options_.log_debug(std::string("compaction: ") + kind_name + "pass (" + (cause != nullptr ? cause : "direct call") +
                       "): " + pass.DescribeInputs() + "; wrote " + std::to_string(pass.bytes_written()) + ", deleted " +
                       std::to_string(pass.bytes_deleted()) + ", largest output beside its inputs " +
                       std::to_string(pass.largest_pending_output()));
  return s;
}

Status Compactor::RunDeadOnlyBeside(PassReport* report) {
  std::unique_lock beside(state_->beside_mu, std::try_to_lock);
  if (!beside.owns_lock()) return Status::Busy("another dead-only pass is running");
  const auto start = Clock::now();
  DeadBesideResult r;
  Status s = DeleteDeadBesidePass(*writer_.impl_, &state_->beside_rejected, &r);
  report->inputs = r.deleted;
  report->deleted = r.deleted;
  report->bytes_freed = r.bytes_deleted;
  report->view_pinned = r.view_pinned;
  const uint64_t us =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
  {
    std::lock_guard lock(state_->stats_mu);
    if (r.deleted > 0) ++state_->stats.passes;
    if (!s.ok()) ++state_->stats.failures;
    state_->stats.segments_compacted += r.deleted;
    state_->stats.bytes_freed += r.bytes_deleted;
    // What the running pass's State kept of them goes now, not at that
    // pass's end (kept tombstone bytes are not reclaimable: counted on, the
    // write stall would hold less).
    for (const uint32_t id : r.deleted_ids) {
      state_->output_start_seq.erase(id);
      state_->kept_tombstone_bytes.erase(id);
    }
    uint64_t kept = 0;
    for (const auto& [id, bytes] : state_->kept_tombstone_bytes) kept += bytes;
    state_->stats.kept_tombstone_bytes = kept;
  }
  const auto& sink = s.ok() ? options_.log_debug : options_.log;
  if (sink && (r.deleted > 0 || !s.ok()))
    sink("compaction: dead-only pass beside a running pass deleted " + std::to_string(r.deleted) +
         " segment(s), freed " + std::to_string(r.bytes_deleted) + " bytes in " + std::to_string(us / 1000) +
         " ms, left " + std::to_string(r.left) + ": " + s.ToString());
  // What it left waits for the running pass: the caller tries again.
  if (s.ok() && r.left > 0) return Status::Busy("another compaction pass is running");
  return s;
}

}  // namespace kingx::engine
