#include "engine/segment_scan.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "engine/hash.h"

namespace kingx::engine {
namespace {

// The bytes of a segment already in memory.
class MemorySource final : public ScanSource {
 public:
  MemorySource(const char* data, uint64_t size) : data_(data), size_(size) {}
  uint64_t size() const override { return size_; }
  uint64_t window_bytes() const override { return size_ == 0 ? 1 : size_; }
  Status Bytes(uint64_t offset, uint64_t, const char** out) override {
    *out = data_ + offset;
    return Status::OK();
  }

 private:
  const char* data_;
  uint64_t size_;
};

// The next offset in [from, starts_below) where a whole valid record (within
// [0, size)) begins, or size. Tries a header at every offset, so each try
// must cost a few instructions: the headers are checked in spans of up to a
// window, in place, and rejected without building a Status; only a header
// that checks out costs a read of its record (which may move the window:
// the next span starts after it).
Result<uint64_t> FindNextRecord(ScanSource& src, uint64_t from, uint64_t starts_below, uint64_t size,
                                const RecordLimits& limits) {
  uint64_t at = from;
  while (at < starts_below && at + kRecordHeaderBytes <= size) {
    const uint64_t span = std::min(std::max<uint64_t>(src.window_bytes(), kRecordHeaderBytes), size - at);
    const char* p = nullptr;
    Status s = src.Bytes(at, span, &p);
    if (!s.ok()) return s;
    const uint64_t span_start = at;
    const uint64_t span_end = std::min(starts_below, span_start + span - kRecordHeaderBytes + 1);  // header fits
    RecordHeader h;
    while (at < span_end && CheckRecordHeader(p + (at - span_start), size - at, limits, &h) != nullptr) ++at;
    if (at == span_end) continue;
    s = src.Bytes(at, h.total_bytes(), &p);
    if (!s.ok()) return s;
    if (RecordBodyMatches(p, h)) return at;
    ++at;
  }
  return size;
}

// True when meta looks like what the server stores there: a media type
// (printable ASCII with a '/'), or nothing.
bool PlausibleMeta(std::string_view meta) {
  if (meta.empty()) return true;
  bool slash = false;
  for (char c : meta) {
    if (c < 0x20 || c > 0x7e) return false;
    slash |= c == '/';
  }
  return slash;
}

// Bytes Salvage reads of damaged bytes of length len: the header, and a key
// and meta within the limits.
uint64_t SalvageBytes(uint64_t len, const RecordLimits& limits) {
  return std::min<uint64_t>(len, kRecordHeaderBytes + uint64_t{limits.max_key_bytes} + kMaxMetaBytes);
}

// Names the key of the damaged bytes [p, p + len), which end where a valid
// record begins; only their first SalvageBytes(len) bytes are read. The
// stored lengths must add up to exactly len, or be made to
// by taking one of them as the damaged field (a raw value's stored length is
// its raw length; otherwise the reading whose meta looks like a media type,
// stored length first, then meta length, then key length). A wrong guess
// names a key nobody has (or damages one more key's answer); giving up would
// let the real key answer its older value. The seq must be bounded (see the
// header). prev_seq: the seq of the record before (0: none); next_seq: of the
// one after.
bool Salvage(const char* p, uint64_t len, uint64_t prev_seq, uint64_t next_seq, bool seq_ordered,
             const RecordLimits& limits, ScanItem* item) {
  if (len < kRecordHeaderBytes + 1) return false;
  RecordHeader h = ReadRecordHeaderUnchecked(p);
  const char* body = p + kRecordHeaderBytes;
  const uint64_t n = len - kRecordHeaderBytes;
  const uint64_t key = h.key_len, meta = h.meta_len, stored = h.stored_len;
  struct Split {
    uint64_t key, meta;
  };
  std::vector<Split> tries;
  if (key + meta + stored == n) {
    tries.push_back({key, meta});
  } else {
    if (h.codec == Codec::kRaw && key + meta + h.raw_len == n) tries.push_back({key, meta});  // stored_len damaged
    if (key + meta <= n) tries.push_back({key, meta});                                    // stored_len damaged
    if (key + stored <= n && n - key - stored <= kMaxMetaBytes) tries.push_back({key, n - key - stored});
    if (meta + stored < n) tries.push_back({n - meta - stored, meta});                    // key_len damaged
  }
  for (const Split& s : tries) {
    if (s.key == 0 || s.key > limits.max_key_bytes || s.key + s.meta > n) continue;
    if (!PlausibleMeta(std::string_view(body + s.key, s.meta))) continue;
    h.key_len = static_cast<uint16_t>(s.key);
    h.meta_len = static_cast<uint8_t>(s.meta);
    h.stored_len = static_cast<uint32_t>(n - s.key - s.meta);
    if (seq_ordered) {
      if (next_seq <= prev_seq + 1) return false;  // no seq fits between them: not one record
      if (h.seq <= prev_seq || h.seq >= next_seq) h.seq = next_seq - 1;
    } else if (h.seq == 0 || h.seq >= next_seq + (uint64_t{1} << 40)) {
      return false;  // nothing bounds it and it is implausible
    }
    item->event = ScanEvent::kDamagedRecord;
    item->bytes = len;
    item->header = h;
    item->key = std::string_view(body, h.key_len);
    item->header_trusted = false;
    return true;
  }
  return false;
}

// Where the run of zero bytes that ends data[0, size) begins (size when the
// last byte is not zero).
uint64_t ZeroTailStart(const char* data, uint64_t size) {
  uint64_t at = size;
  while (at >= 8) {
    uint64_t word;
    std::memcpy(&word, data + at - 8, 8);
    if (word != 0) break;
    at -= 8;
  }
  while (at > 0 && data[at - 1] == 0) --at;
  return at;
}

// ZeroTailStart of the whole segment, read backwards a window at a time.
Result<uint64_t> ZeroTailStart(ScanSource& src) {
  const uint64_t window = std::max<uint64_t>(src.window_bytes(), 1);
  for (uint64_t at = src.size(); at > 0;) {
    const uint64_t from = at > window ? at - window : 0;
    const char* p = nullptr;
    Status s = src.Bytes(from, at - from, &p);
    if (!s.ok()) return s;
    const uint64_t z = ZeroTailStart(p, at - from);
    if (z > 0) return from + z;
    at = from;
  }
  return uint64_t{0};
}

// Whether the header at p (available bytes from it) decodes to h: every
// byte of a header that decodes is read into a field or must be zero, so
// equal fields are equal bytes.
bool SameHeader(const char* p, uint64_t available, const RecordLimits& limits, const RecordHeader& h) {
  RecordHeader again;
  return DecodeRecordHeader(p, available, limits, &again).ok() && again == h;
}

// Asks src for every byte of [from, to), a window at a time: a scan that
// stops early still meets a byte that cannot be read.
Status ReadThrough(ScanSource& src, uint64_t from, uint64_t to) {
  const uint64_t window = std::max<uint64_t>(src.window_bytes(), 1);
  for (uint64_t at = from; at < to;) {
    const uint64_t n = std::min(window, to - at);
    const char* p = nullptr;
    Status s = src.Bytes(at, n, &p);
    if (!s.ok()) return s;
    at += n;
  }
  return Status::OK();
}

}  // namespace

Result<ScanSummary> ScanSegment(ScanSource& src, bool active, bool seq_ordered, const RecordLimits& limits,
                                const std::function<void(const ScanItem&)>& fn) {
  const uint64_t size = src.size();
  ScanSummary sum;
  sum.valid_end = size;
  // No record begins at or after it: a header's checksum of zero bytes is not
  // zero. (Its first bytes may still belong to the last record.) The bytes
  // from it to the end have been read.
  auto zero_tail = ZeroTailStart(src);
  if (!zero_tail.ok()) {
    // Read backwards, the error names the last window's first bad byte:
    // name the file's first one, as a reading from the start does.
    Status first = ReadThrough(src, 0, size);
    return first.ok() ? zero_tail.status() : first;
  }
  const uint64_t zero_from = std::max<uint64_t>(zero_tail.value(), kSegmentHeaderBytes);
  uint64_t off = kSegmentHeaderBytes;
  // Every later record's seq is above it: the previous record's, or before
  // the first record, the one below a valid header's seq_floor (in a
  // segment written in seq order). `bounded`: some such bound is known.
  // In a segment sealed at birth seq_floor is its records' lowest seq: it
  // bounds only the segment's only record, from both sides (`floor`).
  uint64_t prev_seq = 0;
  bool bounded = false;
  uint64_t floor = 0;
  if (size >= kSegmentHeaderBytes) {
    const char* p = nullptr;
    Status hs = src.Bytes(0, kSegmentHeaderBytes, &p);
    if (!hs.ok()) return hs;
    SegmentHeader header;
    if (DecodeSegmentHeader(p, kSegmentHeaderBytes, &header).ok() && header.seq_floor > 0) {
      floor = header.seq_floor;
      prev_seq = floor - 1;
      bounded = seq_ordered;
    }
  }
  // Every early end below reports a range running to the end of the file:
  // its bytes are read first (those from zero_from on already were).
  auto rest_readable = [&](uint64_t from) { return ReadThrough(src, from, std::min(zero_from, size)); };
  auto corrupt = [&](uint64_t from, uint64_t to, const Status& why) {
    ScanItem item;
    item.event = ScanEvent::kCorruptBytes;
    item.offset = from;
    item.bytes = to - from;
    item.why = why;
    ++sum.corrupt_ranges;
    sum.corrupt_bytes += to - from;
    fn(item);
  };
  auto torn = [&](uint64_t from, const Status& why) {
    ScanItem item;
    item.event = ScanEvent::kTornTail;
    item.offset = from;
    item.bytes = size - from;
    item.why = why;
    sum.valid_end = from;
    fn(item);
  };
  auto damaged = [&](ScanItem& item, uint64_t at, const Status& why) {
    item.offset = at;
    item.why = why;
    ++sum.damaged_records;
    prev_seq = std::max(prev_seq, item.header.seq);
    bounded = true;
    fn(item);
  };
  while (off < size) {
    if (off >= zero_from) {
      // Zero bytes to the end: the room preallocated after the last record.
      ScanItem item;
      item.event = ScanEvent::kZeroTail;
      item.offset = off;
      item.bytes = size - off;
      sum.valid_end = off;
      fn(item);
      break;
    }
    const uint64_t left = size - off;
    const char* p = nullptr;
    Status rs = src.Bytes(off, std::min<uint64_t>(left, kRecordHeaderBytes), &p);
    if (!rs.ok()) return rs;
    RecordHeader h;
    Status hs = DecodeRecordHeader(p, left, limits, &h);
    if (hs.ok()) {
      // The whole record. When the source read again for it (a record past
      // its window: a second read of the header), the header read again must
      // be the one just checked, or its body checksum vouches for a record
      // whose header nobody checked (bytes that changed between two reads).
      const uint64_t reads_before = src.reads();
      rs = src.Bytes(off, h.total_bytes(), &p);
      if (!rs.ok()) return rs;
      ScanItem item;
      item.bytes = h.total_bytes();
      item.header = h;
      item.key = std::string_view(p + kRecordHeaderBytes, h.key_len);
      item.record = p;
      Status bs = src.reads() == reads_before || SameHeader(p, left, limits, h)
                      ? VerifyRecordBody(p, h)
                      : Status::Corruption("the record's header changed between two reads of it");
      if (bs.ok()) {
        item.event = ScanEvent::kRecord;
        item.offset = off;
        ++sum.records;
        prev_seq = std::max(prev_seq, h.seq);
        bounded = true;
        fn(item);
      } else if (active && zero_from < off + h.total_bytes()) {
        // Its own last bytes and everything after it are zero: a record whose
        // write was cut short inside preallocated room, as a torn tail.
        torn(off, bs);
        break;
      } else {
        item.event = ScanEvent::kDamagedRecord;
        damaged(item, off, bs);
      }
      off += h.total_bytes();
      continue;
    }
    // A header that checks out but claims more bytes than the file has: the
    // record was cut short; its own bytes run to the end of the file.
    RecordHeader cut;
    if (left >= kRecordHeaderBytes && DecodeRecordHeader(p, ~size_t{0} >> 1, limits, &cut).ok()) {
      rs = rest_readable(off);
      if (!rs.ok()) return rs;
      if (active) {
        torn(off, hs);
      } else if (kRecordHeaderBytes + uint64_t{cut.key_len} <= left) {
        rs = src.Bytes(off, kRecordHeaderBytes + cut.key_len, &p);
        if (!rs.ok()) return rs;
        ScanItem item;
        item.event = ScanEvent::kDamagedRecord;
        item.bytes = left;
        item.header = cut;
        item.key = std::string_view(p + kRecordHeaderBytes, cut.key_len);
        damaged(item, off, hs);
      } else {
        corrupt(off, size, hs);
      }
      break;
    }
    auto found = FindNextRecord(src, off + 1, zero_from, size, limits);
    if (!found.ok()) return found.status();
    const uint64_t next = found.value();
    if (next < size) {
      rs = src.Bytes(next, kRecordHeaderBytes, &p);
      if (!rs.ok()) return rs;
      RecordHeader after;
      Status as = DecodeRecordHeader(p, size - next, limits, &after);
      rs = src.Bytes(off, SalvageBytes(next - off, limits), &p);
      if (!rs.ok()) return rs;
      ScanItem item;
      if (as.ok() && Salvage(p, next - off, prev_seq, after.seq, seq_ordered, limits, &item)) {
        damaged(item, off, hs);
      } else {
        corrupt(off, next, hs);
      }
      off = next;
      continue;
    }
    // FindNextRecord read every byte up to zero_from.
    if (active) {
      torn(off, hs);
      break;
    }
    // The last record of a sealed segment: named when its bytes run exactly
    // to the end, with the lowest seq above the record before it (it was
    // written after that one; nothing bounds it from above), or, when it is
    // the segment's first, the header's seq_floor: the lowest its seq can
    // be, and in a segment sealed at birth (a large value, a compaction
    // output: then it is the only record) its seq.
    rs = src.Bytes(off, SalvageBytes(size - off, limits), &p);
    if (!rs.ok()) return rs;
    ScanItem item;
    const bool only = off == kSegmentHeaderBytes && floor > 0;
    if ((bounded || only) && Salvage(p, size - off, prev_seq, prev_seq + 2, seq_ordered || only, limits, &item))
      damaged(item, off, hs);
    else
      corrupt(off, size, hs);
    break;
  }
  return sum;
}

ScanSummary ScanSegment(const char* data, uint64_t size, bool active, bool seq_ordered, const RecordLimits& limits,
                        const std::function<void(const ScanItem&)>& fn) {
  MemorySource src(data, size);
  auto sum = ScanSegment(src, active, seq_ordered, limits, fn);
  assert(sum.ok());  // bytes in memory are always readable
  return sum.value();
}

bool AllZero(const char* data, uint64_t n) { return ZeroTailStart(data, n) == 0; }

bool CreationCutShort(const SegmentFileInfo& f, uint64_t sealed_bytes) {
  if (f.header_ok || f.size > kSegmentHeaderBytes) return false;
  return sealed_bytes <= kSegmentHeaderBytes || sealed_bytes <= f.size;
}

int PickActiveSegment(const std::vector<SegmentFileInfo>& files, uint64_t seed) {
  int best = -1;
  for (size_t i = 0; i < files.size(); ++i) {
    const SegmentFileInfo& f = files[i];
    if (!f.header_ok || f.header.seed != seed || (f.header.flags & kSegmentFlagSealedAtBirth) != 0) continue;
    if (best < 0) {
      best = static_cast<int>(i);
      continue;
    }
    const SegmentFileInfo& b = files[static_cast<size_t>(best)];
    if (f.header.seq_floor > b.header.seq_floor || (f.header.seq_floor == b.header.seq_floor && f.id > b.id))
      best = static_cast<int>(i);
  }
  return best;
}

}  // namespace kingx::engine
