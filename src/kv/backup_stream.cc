// BackupClient and TarBackupStream (see backup_stream.h).
#include "src/kv/backup_stream.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>

#include <unistd.h>

#include "engine/cut_hint.h"
#include "engine/env.h"
#include "engine/options.h"
#include "engine/record.h"
#include "src/conf/log.h"
#include "src/ipc/token.h"
#include "src/kv/token_table.h"

namespace kingx {

namespace {

constexpr uint64_t kBlock = 512;

uint64_t RoundUp(uint64_t n) { return (n + kBlock - 1) / kBlock * kBlock; }

// Octal, zero-padded, NUL-terminated, in a field of `width` bytes; when the
// value does not fit, GNU tar's base-256 (first byte 0x80, big-endian).
void PutNumber(char* field, size_t width, uint64_t v) {
  const uint64_t max_octal = (uint64_t{1} << (3 * (width - 1))) - 1;
  if (v <= max_octal) {
    std::snprintf(field, width, "%0*llo", static_cast<int>(width - 1), static_cast<unsigned long long>(v));
    return;
  }
  std::memset(field, 0, width);
  field[0] = static_cast<char>(0x80);
  for (size_t i = width - 1; i > 0 && v > 0; --i, v >>= 8) field[i] = static_cast<char>(v & 0xFF);
}

const char kZeros[2 * kBlock] = {};

}  // namespace

// ---------------------------------------------------------------- BackupClient

BackupClient::BackupClient(BackupRegion& region, engine::Env& env, std::function<void()> wake_writer,
                           std::string data_dir, uint32_t slot, uint32_t generation)
    : region_(region), env_(env), wake_writer_(std::move(wake_writer)), data_dir_(std::move(data_dir)), slot_(slot),
      generation_(generation) {}

engine::Result<uint32_t> BackupClient::Request(uint32_t token_prefix) {
  for (uint32_t i = 0; i < kMaxBackups; ++i) {
    BackupSlot& b = region_.slots[i];
    uint32_t expected = static_cast<uint32_t>(BackupState::kFree);
    if (!b.state.compare_exchange_strong(expected, static_cast<uint32_t>(BackupState::kClaimed))) continue;
    b.slot.store(slot_, std::memory_order_relaxed);
    b.token.store(EncodeTableToken(generation_, token_prefix, i), std::memory_order_relaxed);
    b.state.store(static_cast<uint32_t>(BackupState::kRequested), std::memory_order_release);
    if (wake_writer_) wake_writer_();
    return i;
  }
  return engine::Status::Busy("at most " + std::to_string(kMaxBackups) +
                              " backups run at once; one of them must finish first");
}

BackupState BackupClient::State(uint32_t i) const {
  return static_cast<BackupState>(region_.slots[i].state.load(std::memory_order_acquire));
}

engine::Status BackupClient::Failure(uint32_t i) const {
  const auto code = static_cast<engine::Code>(region_.slots[i].error_code.load(std::memory_order_relaxed));
  return engine::Status(code == engine::Code::kOk ? engine::Code::kIOError : code,
                        "the writer could not take the backup's cut");
}

engine::DatabaseCut BackupClient::Cut(uint32_t i) const {
  const BackupSlot& b = region_.slots[i];
  engine::DatabaseCut cut;
  cut.seed = b.seed.load(std::memory_order_relaxed);
  cut.next_seq = b.next_seq.load(std::memory_order_relaxed);
  cut.seq_high_water = b.seq_high_water.load(std::memory_order_relaxed);
  const uint32_t n = std::min(b.file_count.load(std::memory_order_relaxed), kMaxBackupFiles);
  for (uint32_t k = 0; k < n; ++k) {
    engine::SegmentFileCut f;
    f.id = b.files[k].id.load(std::memory_order_relaxed);
    const uint32_t flags = b.files[k].flags.load(std::memory_order_relaxed);
    f.active = (flags & kBackupFileActive) != 0;
    f.missing = (flags & kBackupFileMissing) != 0;
    f.bytes = b.files[k].bytes.load(std::memory_order_relaxed);
    f.birth = b.files[k].birth.load(std::memory_order_relaxed);
    cut.segments.push_back(f);
  }
  return cut;
}

void BackupClient::Release(uint32_t i) {
  region_.slots[i].state.store(static_cast<uint32_t>(BackupState::kReleased), std::memory_order_release);
  if (wake_writer_) wake_writer_();
}

// ---------------------------------------------------------------- PrepareCutHints

const PreparedHint* PreparedHints::Find(uint32_t id) const {
  for (const PreparedHint& h : hints)
    if (h.segment_id == id) return &h;
  return nullptr;
}

namespace {

// The finished hint of the first `bytes` bytes of segment f, built into a
// scratch file that is unlinked once open again. Null when the segment is
// not whole valid records there (logged).
engine::Result<std::optional<PreparedHint>> PrepareOne(engine::Env& env, const std::string& data_dir,
                                                       const engine::SegmentFileCut& f, const std::string& scratch) {
  const std::string name = engine::SegmentFileName(f.id);
  // Any record the format allows: the hint describes what is there; the
  // copy's open checks it against its own limits.
  const engine::RecordLimits limits{engine::kLargestKeyBytes, engine::kLargestValueBytes};
  engine::Status s = engine::WriteCutHint(env, engine::JoinPath(data_dir, name), f.id, f.bytes, limits, scratch);
  std::optional<PreparedHint> hint;
  if (s.ok()) {
    auto file = env.OpenFile(scratch, engine::OpenMode::kRead);
    auto size = file.ok() ? file.value()->Size() : engine::Result<uint64_t>(file.status());
    if (size.ok()) {
      hint = PreparedHint{f.id, std::move(file.value()), size.value()};
    } else {
      s = size.status();
    }
  }
  (void)env.RemoveFile(scratch);  // open or not, the name goes now (a failed write may have left part of it)
  if (s.Is(engine::Code::kCorruption)) {
    KINGX_LOG_ERROR("backup: %s is not whole valid records below the cut (%s): the archive carries no hint of it",
                    name.c_str(), s.ToString().c_str());
    return std::optional<PreparedHint>();
  }
  if (!s.ok()) return engine::Status(s.code(), name + ": " + std::string(s.message()));
  return hint;
}

}  // namespace

engine::Result<std::shared_ptr<PreparedHints>> PrepareCutHints(engine::Env& env, const std::string& data_dir,
                                                               const engine::DatabaseCut& cut,
                                                               const std::string& scratch_dir, const std::string& tag) {
  auto out = std::make_shared<PreparedHints>();
  for (const engine::SegmentFileCut& f : cut.segments) {
    if (f.missing || f.bytes < engine::kSegmentHeaderBytes) continue;
    if (!f.active) {
      // A sealed segment's hint file, when there, is finished (or damaged:
      // the copy's open reports it as the original's does).
      auto size = env.FileSize(engine::JoinPath(data_dir, engine::HintFileName(f.id)));
      if (size.ok()) continue;
      if (!size.status().Is(engine::Code::kNotFound)) return size.status();
    }
    const std::string scratch = engine::JoinPath(
        scratch_dir, "kingx-backup-" + std::to_string(::getpid()) + "-" + tag + "-" + std::to_string(f.id) + ".hint");
    auto one = PrepareOne(env, data_dir, f, scratch);
    if (!one.ok()) return one.status();
    if (one.value()) out->hints.push_back(std::move(*one.value()));
  }
  return out;
}

// ---------------------------------------------------------------- TarBackupStream

std::string TarBackupStream::TarHeader(const std::string& name, uint64_t size, uint64_t mtime_s) {
  char h[kBlock] = {};
  std::memcpy(h, name.data(), std::min<size_t>(name.size(), 100));
  PutNumber(h + 100, 8, 0644);   // mode
  PutNumber(h + 108, 8, 0);      // uid
  PutNumber(h + 116, 8, 0);      // gid
  PutNumber(h + 124, 12, size);  // size
  PutNumber(h + 136, 12, mtime_s);
  std::memset(h + 148, ' ', 8);  // the checksum counts its own field as spaces
  h[156] = '0';                  // regular file
  std::memcpy(h + 257, "ustar", 6);
  std::memcpy(h + 263, "00", 2);
  unsigned sum = 0;
  for (size_t i = 0; i < kBlock; ++i) sum += static_cast<unsigned char>(h[i]);
  std::snprintf(h + 148, 8, "%06o", sum);  // six digits, NUL, then the space already there
  h[155] = ' ';
  return std::string(h, kBlock);
}

// The piece buffer and its reservation in the response budget. Shared with
// a read in flight, so that a stream destroyed meanwhile leaves the buffer
// (and its reservation) to the read until it ends.
struct TarBackupStream::PieceBuffer {
  explicit PieceBuffer(ByteBudget& b) : budget(b) { bytes.reserve(kPieceBytes); }
  ~PieceBuffer() { budget.Release(kPieceBytes); }
  PieceBuffer(const PieceBuffer&) = delete;
  PieceBuffer& operator=(const PieceBuffer&) = delete;
  ByteBudget& budget;
  std::string bytes;
};

namespace {

// Reads `want` bytes at offset of the file at path into *out, opening it
// first when *file is null. A file shorter than that is kCorruption.
engine::Status ReadPiece(engine::Env& env, const std::string& path, std::shared_ptr<engine::File>* file,
                         uint64_t offset, size_t want, std::string* out) {
  if (!*file) {
    auto f = env.OpenFile(path, engine::OpenMode::kRead);
    if (!f.ok()) return f.status();
    *file = std::move(f.value());
  }
  out->resize(want);
  size_t done = 0;
  while (done < want) {
    size_t got = 0;
    engine::Status s = (*file)->Read(offset + done, want - done, out->data() + done, &got);
    if (!s.ok()) return s;
    if (got == 0) return engine::Status::Corruption("shorter than at the backup's cut");
    done += got;
  }
  return engine::Status::OK();
}

}  // namespace

// One piece read on the Offload's thread. It owns what that thread touches:
// the piece buffer, the file (opened there for a member's first piece), the
// result; `owner` is read and cleared on the owning thread only.
struct TarBackupStream::ReadJob {
  TarBackupStream* owner = nullptr;  // null once the stream is gone
  std::shared_ptr<PieceBuffer> piece;
  std::shared_ptr<engine::File> file;
  engine::Env* env = nullptr;
  std::string path;
  uint64_t offset = 0;
  size_t want = 0;
  engine::Status status = engine::Status::IOError("the read was not run");
};

TarBackupStream::TarBackupStream(BackupClient& client, uint32_t i, ByteBudget& budget, uint64_t mtime_s,
                                 Offload* offload, std::function<void()> resume, std::shared_ptr<PreparedHints> hints)
    : client_(client), slot_(i), budget_(budget), mtime_s_(mtime_s), offload_(offload), resume_(std::move(resume)) {
  const engine::DatabaseCut cut = client.Cut(i);
  Member manifest;
  manifest.name = "MANIFEST";
  manifest.inline_data = engine::EncodeCutManifest(cut);
  manifest.bytes = manifest.inline_data.size();
  members_.push_back(std::move(manifest));
  // Every hint first, then every segment's data: a cut inside the data
  // keeps the hints of all the segments it took bytes from.
  std::vector<Member> data;
  for (const engine::SegmentFileCut& f : cut.segments) {
    if (!f.missing) {  // a missing one stays missing in the copy (its MANIFEST entry and hint say so)
      Member seg;
      seg.name = engine::SegmentFileName(f.id);
      seg.path = engine::JoinPath(client.data_dir(), seg.name);
      seg.bytes = f.bytes;
      data.push_back(std::move(seg));
    }
    Member hint;
    hint.name = engine::HintFileName(f.id);
    if (const PreparedHint* p = hints ? hints->Find(f.id) : nullptr; p != nullptr) {
      hint.file = p->file;
      hint.bytes = p->bytes;
      members_.push_back(std::move(hint));
      continue;
    }
    if (f.active) continue;  // the writer's hint of it is unfinished (a prepared one was not possible)
    hint.path = engine::JoinPath(client.data_dir(), hint.name);
    auto size = client.env().FileSize(hint.path);
    if (!size.ok()) continue;  // none (removed as damaged): an open scans the segment
    hint.bytes = size.value();
    members_.push_back(std::move(hint));
  }
  for (Member& m : data) members_.push_back(std::move(m));
  for (const Member& m : members_) total_bytes_ += kBlock + RoundUp(m.bytes);
  total_bytes_ += 2 * kBlock;  // the end of the archive
}

TarBackupStream::~TarBackupStream() {
  if (job_) job_->owner = nullptr;  // the read ends on its own; its buffer goes with it
  file_.reset();
  piece_.reset();
  BackupRegion& r = client_.region();
  (given_ == total_bytes_ ? r.finished : r.failed).fetch_add(1, std::memory_order_relaxed);
  client_.Release(slot_);
}

bool TarBackupStream::Prime() {
  if (piece_) return true;
  if (!budget_.TryReserve(kPieceBytes)) return false;
  piece_ = std::make_shared<PieceBuffer>(budget_);
  return true;
}

bool TarBackupStream::StartRead(const Member& m, size_t want) {
  auto job = std::make_shared<ReadJob>();
  job->owner = this;
  job->piece = piece_;
  job->file = file_;
  job->env = &client_.env();
  job->path = m.path;
  job->offset = offset_;
  job->want = want;
  const bool queued = offload_->Queue(
      [job] { job->status = ReadPiece(*job->env, job->path, &job->file, job->offset, job->want, &job->piece->bytes); },
      [job] {
        if (job->owner != nullptr) job->owner->OnRead(*job);
      });
  if (queued) job_ = std::move(job);
  return queued;
}

// The owning thread, once the Offload's thread finished job_.
void TarBackupStream::OnRead(ReadJob& job) {
  job.owner = nullptr;
  file_ = std::move(job.file);
  read_status_ = job.status;
  read_done_ = true;
  job_.reset();
  const std::function<void()> resume = resume_;  // the call may destroy this stream
  if (resume) resume();
}

TarBackupStream::Fill TarBackupStream::FillPiece(const Member& m, size_t want) {
  std::string& buf = piece_->bytes;
  if (m.path.empty() && !m.file) {
    buf.assign(m.inline_data, offset_, want);
    return Fill::kReady;
  }
  engine::Status s;
  if (read_done_) {
    read_done_ = false;
    s = read_status_;
  } else if (offload_ != nullptr && StartRead(m, want)) {
    return Fill::kWaiting;
  } else {
    s = ReadPiece(client_.env(), m.path, &file_, offset_, want, &buf);
  }
  if (!s.ok()) {
    KINGX_LOG_ERROR("backup: %s cannot be read (the archive is cut short): %s", m.name.c_str(),
                    s.ToString().c_str());
    return Fill::kFailed;
  }
  // After the read: a pin dropped before it finished means the bytes may be another file's.
  if (client_.State(slot_) != BackupState::kCut) {
    KINGX_LOG_ERROR("backup: the writer dropped this backup's pin (--backup-max-ms): the archive is cut short");
    return Fill::kFailed;
  }
  return Fill::kReady;
}

http::BodyStream::Pull TarBackupStream::Next(std::string_view* piece) {
  if (!piece_ && !Prime()) return Pull::kError;  // the Connection calls Next only after Prime succeeded
  if (job_) return Pull::kAgain;                 // not asked while waiting; harmless if it is
  for (;;) {
    if (phase_ == 4) return Pull::kError;  // never asked past stream_length
    if (phase_ == 3) {
      *piece = std::string_view(kZeros, 2 * kBlock);
      phase_ = 4;
      break;
    }
    if (index_ == members_.size()) {
      phase_ = 3;
      continue;
    }
    const Member& m = members_[index_];
    if (phase_ == 0) {
      head_ = TarHeader(m.name, m.bytes, mtime_s_);
      *piece = head_;
      phase_ = 1;
      offset_ = 0;
      file_ = m.file;  // null: opened by the first read
      break;
    }
    if (phase_ == 1) {
      if (offset_ == m.bytes) {
        phase_ = 2;
        continue;
      }
      const size_t want = static_cast<size_t>(std::min<uint64_t>(kPieceBytes, m.bytes - offset_));
      switch (FillPiece(m, want)) {
        case Fill::kReady:
          break;
        case Fill::kWaiting:
          return Pull::kAgain;
        case Fill::kFailed:
          return Pull::kError;
      }
      offset_ += want;
      *piece = piece_->bytes;
      break;
    }
    // phase_ == 2: padding to the block, then the next member.
    const uint64_t pad = RoundUp(m.bytes) - m.bytes;
    ++index_;
    phase_ = 0;
    file_.reset();
    if (pad > 0) {
      *piece = std::string_view(kZeros, static_cast<size_t>(pad));
      break;
    }
  }
  given_ += piece->size();
  client_.region().bytes_sent.fetch_add(piece->size(), std::memory_order_relaxed);
  return Pull::kPiece;
}

}  // namespace kingx
