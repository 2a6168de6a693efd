// Large values in parts: each is staged in its own file "large-N.tmp" laid out
// as a complete single-record segment (segment header, record header, key,
// meta, stored bytes). The two headers are written last, once the stored
// length, body checksum and seq are known; then fdatasync, rename into a fresh
// segment id, directory fsync, and only then the index points at it. A crash
// at any point leaves either no trace (the .tmp is removed by recovery) or a
// complete, durable segment.
#include <algorithm>

#include "engine/compress.h"
#include "engine/hash.h"
#include "engine/kill_point.h"
#include "engine/writer_impl.h"

namespace kingx::engine {
namespace {

constexpr size_t kLargePrefixBytes = kSegmentHeaderBytes + kRecordHeaderBytes;

Status ReadOnlyStatus(const Writer::Impl& w) {
  return Status::ReadOnly("writes stopped after: " + w.read_only_cause_.ToString());
}

}  // namespace

Result<uint64_t> Writer::BeginLarge(const WriteOp& op) {
  Impl& w = *impl_;
  if (w.read_only_) return ReadOnlyStatus(w);
  if (op.type != OpType::kPut) return Status::InvalidArgument("only a put can be written in parts");
  if (op.key.empty() || op.key.size() > w.options_.max_key_bytes) return Status::InvalidArgument("bad key length");
  if (op.content_type.size() > kMaxMetaBytes) return Status::InvalidArgument("content type longer than 255 bytes");
  if (op.codec != Codec::kRaw && op.codec != Codec::kZstd) return Status::InvalidArgument("unknown codec");
  const uint64_t prefix_bytes = kLargePrefixBytes + op.key.size() + op.content_type.size();
  if (!w.disk_.Admit(prefix_bytes)) return w.CountRefused(Status::NoSpace("the disk is full: " + w.disk_.Describe()));
  const uint64_t id = w.next_large_id_++;
  Impl::Large large;
  large.path = JoinPath(w.dir_, "large-" + std::to_string(id) + ".tmp");
  auto file = w.env_.OpenFile(large.path, OpenMode::kCreateTruncate);
  if (!file.ok()) return w.CountRefused(file.status());
  large.file = std::move(file.value());
  large.key = std::string(op.key);
  large.content_type = std::string(op.content_type);
  large.codec = op.codec;
  large.condition = op.condition;
  large.body = std::make_unique<Checksum64Stream>();
  large.body->Update(large.key.data(), large.key.size());
  large.body->Update(large.content_type.data(), large.content_type.size());
  std::string prefix(kLargePrefixBytes, '\0');  // placeholders for the two headers
  prefix += large.key;
  prefix += large.content_type;
  Status s = large.file->Append(prefix);
  if (!s.ok()) {
    large.file.reset();
    w.env_.RemoveFile(large.path).ok();
    if (s.Is(Code::kNoSpace)) w.disk_.NoSpace(prefix.size());
    return w.CountRefused(s);
  }
  w.disk_.Consumed(prefix.size());
  w.large_.emplace(id, std::move(large));
  return id;
}

Status Writer::AppendLarge(uint64_t id, std::string_view stored_part) {
  Impl& w = *impl_;
  auto it = w.large_.find(id);
  if (it == w.large_.end()) return Status::InvalidArgument("unknown large value id");
  Impl::Large& large = it->second;
  Status s;
  if (w.read_only_) s = ReadOnlyStatus(w);
  else if (large.stored_len + stored_part.size() > MaxStoredBytes(large.codec, w.options_.max_value_bytes))
    s = Status::TooLarge("value larger than max_value_bytes");
  else if (!w.disk_.Admit(stored_part.size()))
    s = Status::NoSpace("the disk is full: " + w.disk_.Describe());
  else if (s = large.file->Append(stored_part); s.Is(Code::kNoSpace))
    w.disk_.NoSpace(stored_part.size());
  if (!s.ok()) {
    AbortLarge(id);
    return w.CountRefused(s);
  }
  w.disk_.Consumed(stored_part.size());
  large.body->Update(stored_part.data(), stored_part.size());
  large.stored_len += stored_part.size();
  return Status::OK();
}

void Writer::AbortLarge(uint64_t id) {
  Impl& w = *impl_;
  auto it = w.large_.find(id);
  if (it == w.large_.end()) return;
  it->second.file.reset();
  w.env_.RemoveFile(it->second.path).ok();
  w.large_.erase(it);
  w.disk_.Changed();
}

void Writer::FinishLarge(uint64_t id, uint64_t raw_len, WriteResult* result) {
  Impl& w = *impl_;
  if (w.keyspace_) w.keyspace_->Pace();  // before the lock: the flush it may wait for takes no writer lock
  std::lock_guard lock(w.mu_);  // compaction may be installing on its thread
  *result = WriteResult{};
  auto it = w.large_.find(id);
  if (it == w.large_.end()) {
    result->status = Status::InvalidArgument("unknown large value id");
    return;
  }
  Impl::Large large = std::move(it->second);
  w.large_.erase(it);
  bool renamed = false;
  std::string seg_path;
  auto fail = [&](const Status& s) {
    result->status = w.CountRefused(s);
    large.file.reset();
    if (!renamed) w.env_.RemoveFile(large.path).ok();
  };

  if (w.read_only_) return fail(ReadOnlyStatus(w));
  if (raw_len > w.options_.max_value_bytes) return fail(Status::TooLarge("value larger than max_value_bytes"));
  if (large.codec == Codec::kRaw && large.stored_len != raw_len)
    return fail(Status::InvalidArgument("raw value size differs from raw_len"));
  if (large.codec == Codec::kZstd &&
      (large.stored_len > MaxStoredBytes(Codec::kZstd, raw_len) || (raw_len > 0 && large.stored_len == 0)))
    return fail(Status::InvalidArgument("compressed value size out of range for raw_len"));
  const uint64_t hash = KeyHash(w.seed_, large.key);
  auto cur = w.FindKey(large.key, hash);
  if (!cur.ok()) return fail(cur.status());
  const Condition& c = large.condition;
  if (cur->damaged && c.kind != Condition::Kind::kNone)
    return fail(Status::Corruption("the key's newest record is damaged: its version is unknown"));
  if (c.kind == Condition::Kind::kIfAbsent && cur->exists) return fail(Status::PreconditionFailed("key exists"));
  if (c.kind == Condition::Kind::kIfMatch && (!cur->exists || cur->seq != c.seq))
    return fail(Status::PreconditionFailed("key has another version"));

  if (Status rs = w.ReserveSeqs(1); !rs.ok()) return fail(rs);
  auto allocated = w.AllocateSegmentId();
  if (!allocated.ok()) return fail(allocated.status());
  const uint32_t seg_id = allocated.value();
  struct Release {
    Writer::Impl& w;
    uint32_t id;
    ~Release() { w.ReleaseSegmentId(id); }  // in segments_ once published, free again otherwise
  } release{w, seg_id};
  const uint64_t seq = w.next_seq_++;
  char headers[kLargePrefixBytes];
  SegmentHeader sh;
  sh.flags = kSegmentFlagSealedAtBirth;
  sh.seed = w.seed_;
  sh.segment_id = seg_id;
  sh.seq_floor = seq;
  EncodeSegmentHeader(sh, headers);
  EncodeRecordHeader(seq, RecordType::kPut, large.codec, large.key.size(), large.content_type.size(),
                     large.stored_len, raw_len, large.body->Digest(), headers + kSegmentHeaderBytes);
  Status s = large.file->PWrite(0, std::string_view(headers, sizeof headers));
  if (!s.ok()) return fail(s);
  s = large.file->Sync();
  if (!s.ok()) {
    w.TurnReadOnly(s);
    return fail(s);
  }
  const uint64_t total = RecordBytes(large.key.size(), large.content_type.size(), large.stored_len);
  const uint64_t file_bytes = kSegmentHeaderBytes + total;
  // Its hint, so that recovery never reads the value back.
  {
    auto hint = HintWriter::Create(w.env_, JoinPath(w.dir_, HintFileName(seg_id)), seg_id);
    Status hs = hint.ok() ? Status::OK() : hint.status();
    if (hs.ok()) {
      hint.value()->Add(HintEntry{seq, kSegmentHeaderBytes, total, RecordType::kPut, large.key});
      hs = hint.value()->Finish(file_bytes);
    }
    if (!hs.ok()) {
      w.env_.RemoveFile(JoinPath(w.dir_, HintFileName(seg_id))).ok();
      if (hs.Is(Code::kIOError)) {
        w.TurnReadOnly(hs);
        return fail(hs);
      }
    }
  }
  KINGX_KILL_POINT("large.before_rename");
  seg_path = JoinPath(w.dir_, SegmentFileName(seg_id));
  s = w.env_.Rename(large.path, seg_path);
  if (!s.ok()) return fail(s);
  renamed = true;
  s = w.env_.SyncDir(w.dir_);
  if (!s.ok()) {
    // The rename may or may not survive a crash: the next open may find the
    // value or not.
    w.TurnReadOnly(s);
    return fail(Status::OutcomeUnknown("the value's file is in place but the directory's fsync failed (" +
                                       s.ToString() + "): it may or may not be applied"));
  }
  KINGX_KILL_POINT("large.after_rename");
  large.file.reset();
  w.RecordBirth(seg_id, file_bytes);  // not synced: see CreateActiveSegment

  SegmentStats& st = w.segments_[seg_id];
  st.id = seg_id;
  st.bytes = file_bytes;
  st.live_bytes = total;
  st.max_seq = seq;
  const Location loc = MakeLocation(seg_id, kSegmentHeaderBytes);
  if (w.keyspace_)
    w.keyspace_->Add(KeyPut{KeyEntry{large.key, seq, seg_id, kSegmentHeaderBytes, raw_len, large.content_type},
                            cur->exists});
  if (cur->exists) {
    SegmentStats& old = w.segments_[LocationSegment(cur->loc)];
    old.live_bytes -= std::min(old.live_bytes, cur->total_bytes);
    old.dead_bytes += cur->total_bytes;
    w.CountIfEmptied(LocationSegment(cur->loc), old, cur->total_bytes);
  }
  Status is = Status::OK();
  if (!(cur->exists && w.index_.Replace(hash, cur->loc, loc))) {
    is = w.index_.Insert(hash, loc);
    if (is.ok() && !cur->exists) ++w.keys_;
  }
  if (w.keyspace_) w.keyspace_->Published(seq);
  w.DeleteEmptiedLocked();
  w.PublishCounters();
  if (!is.ok()) {
    w.TurnReadOnly(is);
    result->status = Impl::UnindexedOutcome(is);
    return;
  }
  ++w.batches_;
  w.last_batch_ops_ = 1;
  result->seq = seq;
  result->existed = cur->exists;
}

}  // namespace kingx::engine
