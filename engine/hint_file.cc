#include "engine/hint_file.h"

#include <cstring>

#include "engine/coding.h"

namespace kingx::engine {
namespace {

constexpr char kHintMagic[8] = {'K', 'I', 'N', 'G', 'X', 'H', 'N', 'T'};
constexpr uint32_t kHintVersion = 1;
constexpr size_t kHintHeaderBytes = 24;   // magic, u32 version, u32 flags, u64 segment id
constexpr size_t kEntryFixedBytes = 28;   // u64 seq, u64 offset, u64 total, u16 key_len, u8 type, u8 zero
constexpr size_t kTrailerBytes = 24;      // u64 count, u64 segment bytes, u64 checksum

}  // namespace

Result<std::unique_ptr<HintWriter>> HintWriter::Create(Env& env, const std::string& path, uint32_t segment_id) {
  auto file = env.OpenFile(path, OpenMode::kCreateTruncate);
  if (!file.ok()) return file.status();
  std::unique_ptr<HintWriter> w(new HintWriter(std::move(file.value())));
  char h[kHintHeaderBytes];
  std::memcpy(h, kHintMagic, 8);
  PutFixed32(h + 8, kHintVersion);
  PutFixed32(h + 12, 0);
  PutFixed64(h + 16, segment_id);
  w->buf_.append(h, sizeof h);
  return w;
}

void HintWriter::Add(const HintEntry& e) {
  char f[kEntryFixedBytes];
  PutFixed64(f, e.seq);
  PutFixed64(f + 8, e.offset);
  PutFixed64(f + 16, e.total_bytes);
  PutFixed16(f + 24, static_cast<uint16_t>(e.key.size()));
  f[26] = static_cast<char>(e.type);
  f[27] = 0;
  buf_.append(f, sizeof f);
  buf_.append(e.key);
  ++count_;
}

Status HintWriter::Flush() {
  if (buf_.empty()) return Status::OK();
  checksum_.Update(buf_.data(), buf_.size());
  Status s = file_->Append(buf_);
  buf_.clear();
  return s;
}

Status HintWriter::Finish(uint64_t segment_bytes) {
  AppendFixed64(&buf_, count_);
  AppendFixed64(&buf_, segment_bytes);
  checksum_.Update(buf_.data(), buf_.size());
  AppendFixed64(&buf_, checksum_.Digest());
  Status s = file_->Append(buf_);
  buf_.clear();
  if (!s.ok()) return s;
  return file_->Sync();
}

Status LoadHintFile(Env& env, const std::string& path, uint32_t segment_id, uint64_t segment_bytes,
                    const RecordLimits& limits, const std::function<void(const HintEntry&)>& fn) {
  auto mapped = env.MapReadOnly(path, 0);
  if (!mapped.ok()) return mapped.status();
  auto size = mapped.value()->FileSize();
  if (!size.ok()) return size.status();
  const uint64_t n = std::min(size.value(), mapped.value()->mapped_bytes());
  const char* p = mapped.value()->data();
  if (n < kHintHeaderBytes + kTrailerBytes) return Status::Corruption("hint file too short");
  if (std::memcmp(p, kHintMagic, 8) != 0 || GetFixed32(p + 8) != kHintVersion || GetFixed32(p + 12) != 0 ||
      GetFixed64(p + 16) != segment_id)
    return Status::Corruption("hint file header mismatch");
  const char* trailer = p + n - kTrailerBytes;
  if (GetFixed64(trailer + 16) != Checksum64(p, n - 8)) return Status::Corruption("hint file checksum mismatch");
  const uint64_t count = GetFixed64(trailer);
  if (GetFixed64(trailer + 8) != segment_bytes) return Status::Corruption("hint file describes another segment size");

  // Pass 1: check every entry; pass 2: hand them out. A hint is all or nothing.
  for (int pass = 0; pass < 2; ++pass) {
    uint64_t pos = kHintHeaderBytes;
    const uint64_t end = n - kTrailerBytes;
    uint64_t next_offset = kSegmentHeaderBytes;  // entries are in file order, records do not overlap
    for (uint64_t i = 0; i < count; ++i) {
      if (end - pos < kEntryFixedBytes) return Status::Corruption("hint entry truncated");
      HintEntry e;
      e.seq = GetFixed64(p + pos);
      e.offset = GetFixed64(p + pos + 8);
      e.total_bytes = GetFixed64(p + pos + 16);
      const uint16_t key_len = GetFixed16(p + pos + 24);
      const auto type = static_cast<uint8_t>(p[pos + 26]);
      if (p[pos + 27] != 0 || (type != 1 && type != 2) || key_len == 0 || key_len > limits.max_key_bytes)
        return Status::Corruption("hint entry fields out of range");
      if (end - pos - kEntryFixedBytes < key_len) return Status::Corruption("hint entry key truncated");
      if (e.offset < next_offset || e.total_bytes < kRecordHeaderBytes + key_len ||
          e.total_bytes > segment_bytes || e.offset > segment_bytes - e.total_bytes)
        return Status::Corruption("hint entry points outside its segment");
      next_offset = e.offset + e.total_bytes;
      e.type = static_cast<RecordType>(type);
      e.key = std::string_view(p + pos + kEntryFixedBytes, key_len);
      pos += kEntryFixedBytes + key_len;
      if (pass == 1) fn(e);
    }
    if (pos != end) return Status::Corruption("hint file has bytes after its entries");
  }
  return Status::OK();
}

}  // namespace kingx::engine
