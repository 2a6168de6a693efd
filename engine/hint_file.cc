#include "engine/hint_file.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "engine/coding.h"
#include "engine/mapping_guard.h"
#include "engine/read_exact.h"

namespace kingx::engine {
namespace {

constexpr char kHintMagic[8] = {'K', 'I', 'N', 'G', 'X', 'H', 'N', 'T'};
// Version 2: varint entries (version 1 had 28 fixed bytes an entry, which made
// hint files about a quarter of the live data for 100-byte values). A version
// 1 hint is rejected like any other bad hint: recovery scans the segment.
constexpr uint32_t kHintVersion = 2;
constexpr size_t kHintHeaderBytes = 24;   // magic, u32 version, u32 flags, u64 segment id
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
  std::memcpy(w->Room(sizeof h), h, sizeof h);
  w->used_ += sizeof h;
  return w;
}

char* HintWriter::Room(size_t bytes) {
  // Doubles only while more bytes gather between two writes than ever
  // before; FlushIfLarge writes them out past kFlushBytes, so it settles at
  // most about twice that, and from then on nothing is zero-filled.
  if (buf_.size() - used_ < bytes) buf_.resize(std::max(buf_.size() * 2, used_ + bytes));
  return buf_.data() + used_;
}

// Entry: varint zigzag(seq - previous entry's seq), varint offset, varint
// total bytes, varint key length, u8 type, key (FORMAT.md, "Hint files").
// Encoded in place, after one room check: this runs for every put a batch
// publishes.
void HintWriter::Add(const HintEntry& e) {
  char* const start = Room(4 * kMaxVarint64Bytes + 1 + e.key.size());
  char* p = PutVarint64(start, ZigZag(static_cast<int64_t>(e.seq - last_seq_)));
  p = PutVarint64(p, e.offset);
  p = PutVarint64(p, e.total_bytes);
  p = PutVarint64(p, e.key.size());
  *p++ = static_cast<char>(e.type);
  if (!e.key.empty()) std::memcpy(p, e.key.data(), e.key.size());
  p += e.key.size();
  const auto bytes = static_cast<size_t>(p - start);
  used_ += bytes;
  entry_bytes_ += bytes;
  last_seq_ = e.seq;
  ++count_;
}

uint64_t HintWriter::finished_bytes() const { return kHintHeaderBytes + entry_bytes_ + kTrailerBytes; }

Status HintWriter::Flush() {
  if (used_ == 0) return Status::OK();
  checksum_.Update(buf_.data(), used_);
  Status s = file_->Append(std::string_view(buf_.data(), used_));
  used_ = 0;
  return s;
}

Status HintWriter::Finish(uint64_t segment_bytes) {
  Status s = FinishUnsynced(segment_bytes);
  if (!s.ok()) return s;
  return file_->Sync();
}

Status HintWriter::FinishUnsynced(uint64_t segment_bytes) {
  char* p = Room(kTrailerBytes);
  PutFixed64(p, count_);
  PutFixed64(p + 8, segment_bytes);
  used_ += 16;
  checksum_.Update(buf_.data(), used_);
  PutFixed64(p + 16, checksum_.Digest());
  used_ += 8;
  Status s = file_->Append(std::string_view(buf_.data(), used_));
  used_ = 0;
  return s;
}

namespace {

// A hint file's header and trailer fields, read without the checksum: its
// magic and version checked, nothing else.
struct UncheckedTrailer {
  uint64_t entries = 0;
  uint64_t segment_bytes = 0;
};

Result<UncheckedTrailer> ReadUncheckedTrailer(Env& env, const std::string& path) {
  auto size = env.FileSize(path);
  if (!size.ok()) return size.status();
  if (size.value() < kHintHeaderBytes + kTrailerBytes) return Status::Corruption("hint file too short");
  auto file = env.OpenFile(path, OpenMode::kRead);
  if (!file.ok()) return file.status();
  char h[kHintHeaderBytes], t[kTrailerBytes];
  size_t got = 0;
  Status s = file.value()->Read(0, sizeof h, h, &got);
  if (s.ok() && got != sizeof h) s = Status::Corruption("hint file header short");
  if (s.ok()) s = file.value()->Read(size.value() - sizeof t, sizeof t, t, &got);
  if (s.ok() && got != sizeof t) s = Status::Corruption("hint file trailer short");
  if (!s.ok()) return s;
  if (std::memcmp(h, kHintMagic, 8) != 0 || GetFixed32(h + 8) != kHintVersion)
    return Status::Corruption("not a hint file of this version");
  return UncheckedTrailer{GetFixed64(t), GetFixed64(t + 8)};
}

}  // namespace

Result<uint64_t> HintEntryCount(Env& env, const std::string& path, uint64_t segment_bytes) {
  auto trailer = ReadUncheckedTrailer(env, path);
  if (!trailer.ok()) return trailer.status();
  if (trailer->segment_bytes != segment_bytes) return Status::Corruption("no hint trailer for this segment");
  return trailer->entries;
}

Result<uint64_t> HintTrailerSegmentBytes(Env& env, const std::string& path) {
  auto trailer = ReadUncheckedTrailer(env, path);
  if (!trailer.ok()) return trailer.status();
  return trailer->segment_bytes;
}

Status LoadHintFile(Env& env, const std::string& path, uint32_t segment_id, uint64_t segment_bytes,
                    const RecordLimits& limits, const std::function<void(const HintEntry&)>& fn,
                    uint64_t* recorded_bytes) {
  return LoadHintFileBatches(
      env, path, segment_id, segment_bytes, limits,
      [&](std::span<const HintEntry> batch, std::span<const HintEntry>) {
        for (const HintEntry& e : batch) fn(e);
      },
      recorded_bytes);
}

namespace {

// Where decoding stands in a hint file's entries.
struct EntryCursor {
  const char* pos;
  const char* end;
  uint64_t next_offset = kSegmentHeaderBytes;  // entries are in file order, records do not overlap
  uint64_t seq = 0;
  uint64_t left;  // entries not decoded yet
};

// Decodes up to max entries at c into out, checking each; a key is copied
// into arena (when not null: room for max keys of limits.max_key_bytes) or
// points into the file. Returns the entries decoded, or sets *why and stops.
// A plain computation (no allocation, no lock): it runs under MappingGuard.
size_t DecodeEntries(EntryCursor& c, size_t max, uint64_t segment_bytes, const RecordLimits& limits, HintEntry* out,
                     char* arena, const char** why) {
  size_t k = 0;
  for (; k < max && c.left > 0; ++k, --c.left) {
    uint64_t seq_delta = 0, key_len = 0;
    HintEntry& e = out[k];
    if (!GetVarint64(&c.pos, c.end, &seq_delta) || !GetVarint64(&c.pos, c.end, &e.offset) ||
        !GetVarint64(&c.pos, c.end, &e.total_bytes) || !GetVarint64(&c.pos, c.end, &key_len) || c.pos == c.end) {
      *why = "hint entry truncated";
      return k;
    }
    const auto type = static_cast<uint8_t>(*c.pos++);
    if ((type != 1 && type != 2) || key_len == 0 || key_len > limits.max_key_bytes) {
      *why = "hint entry fields out of range";
      return k;
    }
    if (static_cast<uint64_t>(c.end - c.pos) < key_len) {
      *why = "hint entry key truncated";
      return k;
    }
    if (e.offset < c.next_offset || e.total_bytes < kRecordHeaderBytes + key_len || e.total_bytes > segment_bytes ||
        e.offset > segment_bytes - e.total_bytes) {
      *why = "hint entry points outside its segment";
      return k;
    }
    c.seq += static_cast<uint64_t>(UnZigZag(seq_delta));
    e.seq = c.seq;
    c.next_offset = e.offset + e.total_bytes;
    e.type = static_cast<RecordType>(type);
    if (arena != nullptr) {
      char* key = arena + k * limits.max_key_bytes;
      std::memcpy(key, c.pos, key_len);
      e.key = std::string_view(key, key_len);
    } else {
      e.key = std::string_view(c.pos, key_len);
    }
    c.pos += key_len;
  }
  return k;
}

Status Unreadable(const std::string& path) {
  return Status::IOError("hint file " + path + ": a page of it could not be read (SIGBUS)");
}

}  // namespace

// The file is mapped and every read of it runs under MappingGuard: a page the
// disk cannot read is an I/O error (kIOError), never a SIGBUS. Pass 1 checks
// the header, trailer, checksum and every entry in one guarded call; pass 2
// decodes a batch per guarded call, copying its keys out of the mapping, and
// hands it out outside the guard (fn allocates).
Status LoadHintFileBatches(
    Env& env, const std::string& path, uint32_t segment_id, uint64_t segment_bytes, const RecordLimits& limits,
    const std::function<void(std::span<const HintEntry> batch, std::span<const HintEntry> next)>& fn,
    uint64_t* recorded_bytes) {
  auto mapped = env.MapReadOnly(path, 0);
  if (!mapped.ok()) return mapped.status();
  auto size = mapped.value()->FileSize();
  if (!size.ok()) return size.status();
  const uint64_t n = std::min(size.value(), mapped.value()->mapped_bytes());
  const char* p = mapped.value()->data();
  if (n < kHintHeaderBytes + kTrailerBytes) return Status::Corruption("hint file too short");
  const char* why = nullptr;
  uint32_t version = 0, flags = 0;
  uint64_t id = 0, count = 0, recorded = 0;
  auto head = [&] {
    if (std::memcmp(p, kHintMagic, 8) != 0) {
      why = "hint file magic mismatch";
      return;
    }
    const char* trailer = p + n - kTrailerBytes;
    if (GetFixed64(trailer + 16) != Checksum64(p, n - 8)) {
      why = "hint file checksum mismatch";
      return;
    }
    version = GetFixed32(p + 8);
    flags = GetFixed32(p + 12);
    id = GetFixed64(p + 16);
    count = GetFixed64(trailer);
    recorded = GetFixed64(trailer + 8);
  };
  if (!GuardMappedRead(p, n, head)) return Unreadable(path);
  if (why != nullptr) return Status::Corruption(why);
  // Whole and intact, but of another version (version 1, before varint
  // entries): not damage, just not ours to read.
  if (version != kHintVersion) return Status::NotFound("hint file of version " + std::to_string(version));
  if (flags != 0 || id != segment_id) return Status::Corruption("hint file header mismatch");
  if (recorded_bytes != nullptr) *recorded_bytes = recorded;
  if (segment_bytes == kAnySegmentSize) segment_bytes = recorded;
  if (recorded != segment_bytes) return Status::Corruption("hint file describes another segment size");

  // Pass 1: check every entry; pass 2: hand them out. A hint is all or nothing.
  // Pass 2 decodes into two buffers in turn: one batch is handed out once
  // the one after it is decoded.
  HintEntry bufs[2][kHintBatchEntries];
  const EntryCursor start{p + kHintHeaderBytes, p + n - kTrailerBytes, kSegmentHeaderBytes, 0, count};
  EntryCursor c = start;
  auto check = [&] {
    while (c.left > 0 && why == nullptr) DecodeEntries(c, kHintBatchEntries, segment_bytes, limits, bufs[0], nullptr, &why);
  };
  if (!GuardMappedRead(p, n, check)) return Unreadable(path);
  if (why != nullptr) return Status::Corruption(why);
  if (c.pos != c.end) return Status::Corruption("hint file has bytes after its entries");

  std::unique_ptr<char[]> arenas(new char[2 * kHintBatchEntries * limits.max_key_bytes]);
  c = start;
  size_t sizes[2] = {0, 0};
  size_t filling = 0;
  bool decoded_before = false;  // bufs[1 - filling] holds a batch not handed out yet
  while (c.left > 0) {
    char* arena = arenas.get() + filling * kHintBatchEntries * limits.max_key_bytes;
    auto decode = [&] {
      sizes[filling] = DecodeEntries(c, kHintBatchEntries, segment_bytes, limits, bufs[filling], arena, &why);
    };
    if (!GuardMappedRead(p, n, decode)) return Unreadable(path);
    if (why != nullptr) return Status::Corruption(why);  // the file changed since pass 1
    if (sizes[filling] < kHintBatchEntries) break;       // the last batch
    if (decoded_before) fn({bufs[1 - filling], sizes[1 - filling]}, {bufs[filling], sizes[filling]});
    decoded_before = true;
    filling = 1 - filling;
    sizes[filling] = 0;
  }
  const std::span<const HintEntry> last(bufs[filling], sizes[filling]);
  if (decoded_before) fn({bufs[1 - filling], sizes[1 - filling]}, last);
  if (!last.empty()) fn(last, {});
  return Status::OK();
}

Status ReadHintEntriesAsWritten(Env& env, const std::string& path, uint32_t segment_id, const RecordLimits& limits,
                                const std::function<void(const HintEntry&)>& fn) {
  auto file = env.OpenFile(path, OpenMode::kRead);
  if (!file.ok()) return file.status();
  auto size = file.value()->Size();
  if (!size.ok()) return size.status();
  const uint64_t n = size.value();
  if (n < kHintHeaderBytes) return Status::Corruption("hint file too short");
  std::unique_ptr<char[]> bytes(new char[n]);
  Status rs = ReadExact(*file.value(), path, 0, n, bytes.get());
  if (!rs.ok()) return rs;
  const char* p = bytes.get();
  if (std::memcmp(p, kHintMagic, 8) != 0 || GetFixed32(p + 8) != kHintVersion || GetFixed32(p + 12) != 0 ||
      GetFixed64(p + 16) != segment_id)
    return Status::Corruption("not a hint header of this segment");
  EntryCursor c{p + kHintHeaderBytes, p + n, kSegmentHeaderBytes, 0, ~uint64_t{0}};
  const char* why = nullptr;
  HintEntry batch[kHintBatchEntries];
  while (why == nullptr && c.pos != c.end) {
    const size_t got = DecodeEntries(c, kHintBatchEntries, kAnySegmentSize, limits, batch, nullptr, &why);
    for (size_t i = 0; i < got; ++i) fn(batch[i]);
  }
  return Status::OK();
}

}  // namespace kingx::engine
