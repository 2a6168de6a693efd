#include "engine/record.h"

#include <cassert>
#include <cstdio>
#include <cstring>

#include "engine/coding.h"
#include "engine/compress.h"
#include "engine/hash.h"
#include "engine/location.h"

namespace kingx::engine {
namespace {

// Header byte offsets (FORMAT.md).
constexpr size_t kOffHeaderChecksum = 0;
constexpr size_t kOffBodyChecksum = 8;
constexpr size_t kOffSeq = 16;
constexpr size_t kOffStoredLen = 24;
constexpr size_t kOffRawLen = 28;
constexpr size_t kOffKeyLen = 32;
constexpr size_t kOffMetaLen = 34;
constexpr size_t kOffFlags = 35;
constexpr size_t kOffReserved = 36;

constexpr uint8_t kTypeMask = 0x03;
constexpr uint8_t kCodecShift = 2;
constexpr uint8_t kCodecMask = 0x03 << kCodecShift;

constexpr char kSegmentMagic[8] = {'K', 'I', 'N', 'G', 'X', 'S', 'E', 'G'};

}  // namespace

void EncodeRecordHeader(uint64_t seq, RecordType type, Codec codec, size_t key_len, size_t meta_len,
                        uint64_t stored_len, uint64_t raw_len, uint64_t body_checksum, char* out) {
  assert(key_len >= 1 && key_len <= 0xffff);
  assert(meta_len <= kMaxMetaBytes);
  assert(stored_len <= 0xffffffffull && raw_len <= 0xffffffffull);
  PutFixed64(out + kOffBodyChecksum, body_checksum);
  PutFixed64(out + kOffSeq, seq);
  PutFixed32(out + kOffStoredLen, static_cast<uint32_t>(stored_len));
  PutFixed32(out + kOffRawLen, static_cast<uint32_t>(raw_len));
  PutFixed16(out + kOffKeyLen, static_cast<uint16_t>(key_len));
  out[kOffMetaLen] = static_cast<char>(meta_len);
  out[kOffFlags] = static_cast<char>(static_cast<uint8_t>(type) | (static_cast<uint8_t>(codec) << kCodecShift));
  PutFixed32(out + kOffReserved, 0);
  PutFixed64(out + kOffHeaderChecksum, Checksum64(out + 8, kRecordHeaderBytes - 8));
}

void EncodeRecord(uint64_t seq, RecordType type, Codec codec, std::string_view key, std::string_view meta,
                  std::string_view stored, uint64_t raw_len, std::string* out) {
  assert(type == RecordType::kPut || (stored.empty() && raw_len == 0 && meta.empty()));
  // The body (key, meta, stored) is appended first and checksummed where it
  // lies, in one pass: no streaming state, which XXH3 keeps on the heap.
  // One resize for the whole record (a group commit encodes one per op).
  const size_t start = out->size();
  const size_t body_bytes = key.size() + meta.size() + stored.size();
  out->resize(start + kRecordHeaderBytes + body_bytes);
  char* body = out->data() + start + kRecordHeaderBytes;
  char* p = body;
  for (std::string_view part : {key, meta, stored}) {
    if (!part.empty()) std::memcpy(p, part.data(), part.size());
    p += part.size();
  }
  const uint64_t body_checksum = Checksum64(body, body_bytes);
  EncodeRecordHeader(seq, type, codec, key.size(), meta.size(), stored.size(), raw_len, body_checksum,
                     out->data() + start);
}

RecordHeader ReadRecordHeaderUnchecked(const char* p) {
  RecordHeader h;
  h.header_checksum = GetFixed64(p + kOffHeaderChecksum);
  h.body_checksum = GetFixed64(p + kOffBodyChecksum);
  h.seq = GetFixed64(p + kOffSeq);
  h.stored_len = GetFixed32(p + kOffStoredLen);
  h.raw_len = GetFixed32(p + kOffRawLen);
  h.key_len = GetFixed16(p + kOffKeyLen);
  h.meta_len = static_cast<uint8_t>(p[kOffMetaLen]);
  const auto flags = static_cast<uint8_t>(p[kOffFlags]);
  h.type = (flags & kTypeMask) == static_cast<uint8_t>(RecordType::kDelete) ? RecordType::kDelete : RecordType::kPut;
  h.codec = ((flags & kCodecMask) >> kCodecShift) == static_cast<uint8_t>(Codec::kZstd) ? Codec::kZstd : Codec::kRaw;
  return h;
}

const char* CheckRecordHeader(const char* p, size_t available, const RecordLimits& limits, RecordHeader* out) {
  if (available < kRecordHeaderBytes) return "record header truncated";
  // The fixed fields are checked before the header checksum: the outcome is
  // the same, but a search for the next record at every byte offset of
  // damaged bytes (segment_scan.cc) then rejects almost every offset on its
  // flags or reserved bytes without hashing 32 bytes (and, the reason being
  // a literal, without building a Status).
  RecordHeader h;
  h.header_checksum = GetFixed64(p + kOffHeaderChecksum);
  h.body_checksum = GetFixed64(p + kOffBodyChecksum);
  h.seq = GetFixed64(p + kOffSeq);
  h.stored_len = GetFixed32(p + kOffStoredLen);
  h.raw_len = GetFixed32(p + kOffRawLen);
  h.key_len = GetFixed16(p + kOffKeyLen);
  h.meta_len = static_cast<uint8_t>(p[kOffMetaLen]);
  const auto flags = static_cast<uint8_t>(p[kOffFlags]);
  if ((flags & ~(kTypeMask | kCodecMask)) != 0) return "record flags hold unknown bits";
  if (GetFixed32(p + kOffReserved) != 0) return "record reserved field is not zero";
  const uint8_t type = flags & kTypeMask;
  const uint8_t codec = (flags & kCodecMask) >> kCodecShift;
  if (type != static_cast<uint8_t>(RecordType::kPut) && type != static_cast<uint8_t>(RecordType::kDelete))
    return "record type unknown";
  if (codec != static_cast<uint8_t>(Codec::kRaw) && codec != static_cast<uint8_t>(Codec::kZstd))
    return "record codec unknown";
  h.type = static_cast<RecordType>(type);
  h.codec = static_cast<Codec>(codec);
  if (h.key_len == 0 || h.key_len > limits.max_key_bytes) return "record key length out of range";
  if (h.raw_len > limits.max_value_bytes) return "record raw length over the limit";
  if (h.type == RecordType::kDelete) {
    if (h.stored_len != 0 || h.raw_len != 0 || h.meta_len != 0 || h.codec != Codec::kRaw)
      return "delete record carries a value";
  } else if (h.codec == Codec::kRaw) {
    if (h.stored_len != h.raw_len) return "raw record with stored length != raw length";
  } else if (h.stored_len > MaxStoredBytes(Codec::kZstd, h.raw_len) || (h.raw_len > 0 && h.stored_len == 0)) {
    return "compressed record stored length out of range";
  }
  if (h.header_checksum != Checksum64(p + 8, kRecordHeaderBytes - 8))
    return "record header checksum mismatch";
  if (h.total_bytes() > available) return "record extends past the end of its segment";
  *out = h;
  return nullptr;
}

Status DecodeRecordHeader(const char* p, size_t available, const RecordLimits& limits, RecordHeader* out) {
  const char* why = CheckRecordHeader(p, available, limits, out);
  return why == nullptr ? Status::OK() : Status::Corruption(why);
}

bool RecordBodyMatches(const char* p, const RecordHeader& h) {
  return Checksum64(p + kRecordHeaderBytes, h.total_bytes() - kRecordHeaderBytes) == h.body_checksum;
}

bool RecordBodyMatchesKey(const char* p, const RecordHeader& h, std::string_view key) {
  if (key.size() != h.key_len) return false;
  Checksum64Stream body;
  body.Update(key.data(), key.size());
  const uint64_t rest = kRecordHeaderBytes + uint64_t{h.key_len};
  body.Update(p + rest, h.total_bytes() - rest);
  return body.Digest() == h.body_checksum;
}

Status VerifyRecordBody(const char* p, const RecordHeader& h) {
  if (!RecordBodyMatches(p, h)) return Status::Corruption("record body checksum mismatch");
  return Status::OK();
}

Result<RecordView> DecodeRecord(const char* p, size_t available, const RecordLimits& limits) {
  RecordView v;
  Status s = DecodeRecordHeader(p, available, limits, &v.header);
  if (!s.ok()) return s;
  s = VerifyRecordBody(p, v.header);
  if (!s.ok()) return s;
  const char* body = p + kRecordHeaderBytes;
  v.key = std::string_view(body, v.header.key_len);
  v.meta = std::string_view(body + v.header.key_len, v.header.meta_len);
  v.stored = std::string_view(body + v.header.key_len + v.header.meta_len, v.header.stored_len);
  return v;
}

void EncodeSegmentHeader(const SegmentHeader& h, char* out) {
  std::memcpy(out, kSegmentMagic, 8);
  PutFixed32(out + 8, kSegmentFormatVersion);
  PutFixed32(out + 12, h.flags);
  PutFixed64(out + 16, h.seed);
  PutFixed64(out + 24, h.segment_id);
  PutFixed64(out + 32, h.seq_floor);
  PutFixed64(out + 40, Checksum64(out, 40));
}

Status DecodeSegmentHeader(const char* p, size_t available, SegmentHeader* out) {
  if (available < kSegmentHeaderBytes) return Status::Corruption("segment header truncated");
  if (std::memcmp(p, kSegmentMagic, 8) != 0) return Status::Corruption("segment magic mismatch");
  if (GetFixed64(p + 40) != Checksum64(p, 40)) return Status::Corruption("segment header checksum mismatch");
  if (GetFixed32(p + 8) != kSegmentFormatVersion) return Status::Corruption("segment format version unknown");
  if ((GetFixed32(p + 12) & ~kSegmentFlagSealedAtBirth) != 0)
    return Status::Corruption("segment flags hold unknown bits");
  SegmentHeader h;
  h.flags = GetFixed32(p + 12);
  h.seed = GetFixed64(p + 16);
  h.segment_id = GetFixed64(p + 24);
  h.seq_floor = GetFixed64(p + 32);
  if (h.seed == 0) return Status::Corruption("segment hash seed is zero");
  *out = h;
  return Status::OK();
}

std::string SegmentFileName(uint32_t segment_id) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "seg-%08u.kxd", segment_id);
  return buf;
}

std::string HintFileName(uint32_t segment_id) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "seg-%08u.hint", segment_id);
  return buf;
}

namespace {

// "seg-" + 8 decimal digits + suffix, naming an id a Location can hold
// (1..kMaxSegmentId); any other spelling is not ours and is left alone.
bool ParseSegmentName(std::string_view name, std::string_view suffix, uint32_t* segment_id) {
  if (name.size() != 12 + suffix.size() || name.substr(0, 4) != "seg-" || name.substr(12) != suffix) return false;
  uint32_t id = 0;
  for (char c : name.substr(4, 8)) {
    if (c < '0' || c > '9') return false;
    id = id * 10 + static_cast<uint32_t>(c - '0');
  }
  if (id == 0 || id > kMaxSegmentId) return false;
  *segment_id = id;
  return true;
}

}  // namespace

bool ParseSegmentFileName(std::string_view name, uint32_t* segment_id) {
  return ParseSegmentName(name, ".kxd", segment_id);
}

bool ParseHintFileName(std::string_view name, uint32_t* segment_id) {
  return ParseSegmentName(name, ".hint", segment_id);
}

}  // namespace kingx::engine
