#include "engine/compaction_output.h"

#include "engine/kill_point.h"

namespace kingx::engine {
namespace {

constexpr size_t kWriteChunkBytes = 1 << 20;

}  // namespace

CompactionOutput::CompactionOutput(Env& env, std::string dir, uint32_t id, uint64_t seed)
    : env_(env),
      dir_(std::move(dir)),
      id_(id),
      seed_(seed),
      tmp_path_(JoinPath(dir_, "compact-" + std::to_string(id) + ".tmp")),
      seg_path_(JoinPath(dir_, SegmentFileName(id))),
      hint_path_(JoinPath(dir_, HintFileName(id))) {}

Result<std::unique_ptr<CompactionOutput>> CompactionOutput::Create(Env& env, const std::string& dir, uint32_t id,
                                                                   uint64_t seed) {
  std::unique_ptr<CompactionOutput> out(new CompactionOutput(env, dir, id, seed));
  auto file = env.OpenFile(out->tmp_path_, OpenMode::kCreateTruncate);
  if (!file.ok()) return file.status();
  out->file_ = std::move(file.value());
  auto hint = HintWriter::Create(env, out->hint_path_, id);
  if (!hint.ok()) return hint.status();  // the destructor removes the .tmp
  out->hint_ = std::move(hint.value());
  // The real header (seq floor known only at the end) replaces these zeros in Finish.
  out->buf_.assign(kSegmentHeaderBytes, '\0');
  return out;
}

CompactionOutput::~CompactionOutput() {
  if (!done_) Abandon();
}

void CompactionOutput::Abandon() {
  file_.reset();
  hint_.reset();
  // Best effort: a leftover .tmp or orphan hint is removed by recovery.
  env_.RemoveFile(renamed_ ? seg_path_ : tmp_path_).ok();
  env_.RemoveFile(hint_path_).ok();
  done_ = true;
}

Status CompactionOutput::WriteBuffer() {
  if (buf_.empty()) return Status::OK();
  KINGX_KILL_POINT("compact.before_write");
  Status s = file_->Append(buf_);
  if (!s.ok()) return s;
  KINGX_KILL_POINT("compact.after_write");
  buf_.clear();
  return hint_->Flush();
}

Status CompactionOutput::Add(std::string_view record, const RecordHeader& h, std::string_view key,
                             uint64_t* offset, uint64_t* written) {
  BeginRecord(h, key, record.size(), offset);
  return AddBytes(record, written);
}

void CompactionOutput::BeginRecord(const RecordHeader& h, std::string_view key, uint64_t total, uint64_t* offset) {
  *offset = size_;
  hint_->Add(HintEntry{h.seq, size_, total, h.type, key});
  size_ += total;
  ++records_;
  min_seq_ = std::min(min_seq_, h.seq);
}

Status CompactionOutput::AddBytes(std::string_view bytes, uint64_t* written) {
  *written = 0;
  buf_.append(bytes);
  if (buf_.size() < kWriteChunkBytes) return Status::OK();
  *written = buf_.size();
  return WriteBuffer();
}

Status CompactionOutput::Finish() {
  Status s = WriteBuffer();
  if (!s.ok()) return s;
  SegmentHeader sh;
  sh.flags = kSegmentFlagSealedAtBirth;
  sh.seed = seed_;
  sh.segment_id = id_;
  sh.seq_floor = records_ == 0 ? 0 : min_seq_;  // every record of the segment has seq >= this
  char header[kSegmentHeaderBytes];
  EncodeSegmentHeader(sh, header);
  KINGX_KILL_POINT("compact.before_write");
  s = file_->PWrite(0, std::string_view(header, sizeof header));
  if (!s.ok()) return s;
  KINGX_KILL_POINT("compact.after_write");
  KINGX_KILL_POINT("compact.before_sync");
  s = file_->Sync();
  if (!s.ok()) return s;
  KINGX_KILL_POINT("compact.after_sync");
  KINGX_KILL_POINT("compact.before_hint");
  s = hint_->Finish(size_);
  if (!s.ok()) return s;
  KINGX_KILL_POINT("compact.after_hint");
  hint_bytes_ = hint_->finished_bytes();
  file_.reset();
  hint_.reset();
  KINGX_KILL_POINT("compact.before_rename");
  s = env_.Rename(tmp_path_, seg_path_);
  if (!s.ok()) return s;
  renamed_ = true;
  KINGX_KILL_POINT("compact.after_rename");
  KINGX_KILL_POINT("compact.before_dir_sync");
  s = env_.SyncDir(dir_);
  if (!s.ok()) return s;
  KINGX_KILL_POINT("compact.after_dir_sync");
  done_ = true;
  return Status::OK();
}

}  // namespace kingx::engine
