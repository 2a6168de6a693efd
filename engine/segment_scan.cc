#include "engine/segment_scan.h"

#include <cstring>

#include "engine/hash.h"

namespace kingx::engine {
namespace {

// The next offset in [from, starts_below) where a whole valid record (within
// [0, size)) begins, or size.
uint64_t FindNextRecord(const char* data, uint64_t from, uint64_t starts_below, uint64_t size,
                        const RecordLimits& limits) {
  for (uint64_t at = from; at < starts_below && at + kRecordHeaderBytes <= size; ++at) {
    RecordHeader h;
    if (DecodeRecordHeader(data + at, size - at, limits, &h).ok() && VerifyRecordBody(data + at, h).ok()) return at;
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

// Names the key of the damaged bytes [p, p + len), which end where a valid
// record begins. The stored lengths must add up to exactly len, or be made to
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

// Where the run of zero bytes that ends the file begins (size when the last
// byte is not zero).
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

}  // namespace

ScanSummary ScanSegment(const char* data, uint64_t size, bool active, bool seq_ordered, const RecordLimits& limits,
                        const std::function<void(const ScanItem&)>& fn) {
  ScanSummary sum;
  sum.valid_end = size;
  // No record begins at or after it: a header's checksum of zero bytes is not
  // zero. (Its first bytes may still belong to the last record.)
  const uint64_t zero_from = std::max<uint64_t>(ZeroTailStart(data, size), kSegmentHeaderBytes);
  uint64_t off = kSegmentHeaderBytes;
  uint64_t prev_seq = 0;
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
    const char* p = data + off;
    const uint64_t left = size - off;
    RecordHeader h;
    Status hs = DecodeRecordHeader(p, left, limits, &h);
    if (hs.ok()) {
      ScanItem item;
      item.bytes = h.total_bytes();
      item.header = h;
      item.key = std::string_view(p + kRecordHeaderBytes, h.key_len);
      Status bs = VerifyRecordBody(p, h);
      if (bs.ok()) {
        item.event = ScanEvent::kRecord;
        item.offset = off;
        ++sum.records;
        prev_seq = std::max(prev_seq, h.seq);
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
      if (active) {
        torn(off, hs);
      } else if (kRecordHeaderBytes + uint64_t{cut.key_len} <= left) {
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
    const uint64_t next = FindNextRecord(data, off + 1, zero_from, size, limits);
    if (next < size) {
      RecordHeader after;
      Status as = DecodeRecordHeader(data + next, size - next, limits, &after);
      ScanItem item;
      if (as.ok() && Salvage(p, next - off, prev_seq, after.seq, seq_ordered, limits, &item)) {
        damaged(item, off, hs);
      } else {
        corrupt(off, next, hs);
      }
      off = next;
      continue;
    }
    if (active) torn(off, hs);
    else corrupt(off, size, hs);
    break;
  }
  return sum;
}

bool AllZero(const char* data, uint64_t n) { return ZeroTailStart(data, n) == 0; }

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
