// The on-disk record and segment header formats (engine/FORMAT.md describes
// every byte). Pure functions over byte buffers: no I/O, any thread.
//
// A record is a 40-byte little-endian header, then key, meta (the value's
// Content-Type) and the stored value (raw or zstd):
//   u64 header_checksum  Checksum64 of header bytes 8..40
//   u64 body_checksum    Checksum64 of key || meta || stored
//   u64 seq              sequence number (the ETag), monotonic per database
//   u32 stored_len       bytes of the stored value
//   u32 raw_len          bytes of the value once decoded
//   u16 key_len          1..max_key_bytes
//   u8  meta_len         0..255
//   u8  flags            bits 0-1 type (1 put, 2 delete), bits 2-3 codec (0 raw, 1 zstd), others 0
//   u32 reserved         0
// Decoding checks every length against the limits and against the bytes
// available before any of them is used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/status.h"

namespace kingx::engine {

inline constexpr size_t kRecordHeaderBytes = 40;
inline constexpr size_t kMaxMetaBytes = 255;

enum class RecordType : uint8_t { kPut = 1, kDelete = 2 };
enum class Codec : uint8_t { kRaw = 0, kZstd = 1 };

// What a decoder accepts; taken from Options (max_key_bytes, max_value_bytes).
struct RecordLimits {
  uint32_t max_key_bytes = 1024;
  uint64_t max_value_bytes = 64ull << 20;
};

// The decoded header fields (checksums included, as stored).
struct RecordHeader {
  uint64_t header_checksum = 0;
  uint64_t body_checksum = 0;
  uint64_t seq = 0;
  uint32_t stored_len = 0;
  uint32_t raw_len = 0;
  uint16_t key_len = 0;
  uint8_t meta_len = 0;
  RecordType type = RecordType::kPut;
  Codec codec = Codec::kRaw;

  // Header + key + meta + stored value.
  uint64_t total_bytes() const { return kRecordHeaderBytes + key_len + meta_len + uint64_t{stored_len}; }

  bool operator==(const RecordHeader&) const = default;
};

// A record whose header and body were verified; views point into the buffer
// given to DecodeRecord and live as long as it does.
struct RecordView {
  RecordHeader header;
  std::string_view key;
  std::string_view meta;
  std::string_view stored;
};

// Bytes EncodeRecord appends for these lengths.
inline uint64_t RecordBytes(size_t key_len, size_t meta_len, uint64_t stored_len) {
  return kRecordHeaderBytes + key_len + meta_len + stored_len;
}

// Appends one record to *out. The caller has validated the lengths (key
// 1..65535 bytes, meta <= 255, stored and raw < 4 GiB; for a delete, stored
// empty and raw_len 0); violating them is a programmer error (asserted).
void EncodeRecord(uint64_t seq, RecordType type, Codec codec, std::string_view key,
                  std::string_view meta, std::string_view stored, uint64_t raw_len, std::string* out);

// Writes the 40-byte header of a record whose body checksum was computed
// separately (large values written in parts) into out[0..40).
void EncodeRecordHeader(uint64_t seq, RecordType type, Codec codec, size_t key_len, size_t meta_len,
                        uint64_t stored_len, uint64_t raw_len, uint64_t body_checksum, char* out);

// Decodes and checks the header at p, where `available` bytes may be read
// from p on. kCorruption when: fewer than 40 bytes, flags or reserved hold
// unknown bits, the type or codec is unknown, key_len is 0 or above
// limits.max_key_bytes, raw_len above limits.max_value_bytes, a raw value
// whose stored_len != raw_len, a delete with a value or meta, the header
// checksum differs, or the whole record does not fit in `available`
// (checked in that order: the cheap field checks reject most garbage
// before the checksum is computed).
Status DecodeRecordHeader(const char* p, size_t available, const RecordLimits& limits, RecordHeader* out);
// The same checks without a Status: nullptr when the header is valid (*out
// set), else the reason (a string literal; *out untouched). Allocates
// nothing: for a search that tries a header at every byte offset.
const char* CheckRecordHeader(const char* p, size_t available, const RecordLimits& limits, RecordHeader* out);

// The header fields at p (40 readable bytes) as stored, checked for nothing;
// an unknown type reads as put, an unknown codec as raw. Only for naming the
// key of a record whose header failed its checks (engine/segment_scan.h).
RecordHeader ReadRecordHeaderUnchecked(const char* p);

// Verifies the body checksum of the record at p whose header is h (p points at
// the header; h.total_bytes() bytes must be readable). kCorruption on mismatch.
Status VerifyRecordBody(const char* p, const RecordHeader& h);
// The same check as a bool: no Status, nothing allocated, so that it may run
// under MappingGuard (engine/mapping_guard.h).
bool RecordBodyMatches(const char* p, const RecordHeader& h);
// Whether the record at p (header h; h.total_bytes() bytes readable) would
// match its body checksum if its key bytes were `key` (key.size() ==
// h.key_len): for a record whose body fails its checksum, true proves that
// only its key bytes were damaged and that `key` is the key written there
// (the checksum covers key, meta and value alike).
bool RecordBodyMatchesKey(const char* p, const RecordHeader& h, std::string_view key);

// DecodeRecordHeader + VerifyRecordBody + the views.
Result<RecordView> DecodeRecord(const char* p, size_t available, const RecordLimits& limits);

// ---- Segment header: the first 48 bytes of every segment file ----
//   8 bytes magic "KINGXSEG", u32 version (1), u32 flags,
//   u64 hash seed, u64 segment id, u64 seq_floor, u64 Checksum64 of bytes 0..40.
inline constexpr size_t kSegmentHeaderBytes = 48;
inline constexpr uint32_t kSegmentFormatVersion = 1;

// Segment header flag: the segment was written whole before it got its name
// (a large value, a compaction output) and is never appended to; recovery
// never treats it as the active segment. Other flag bits must be 0.
inline constexpr uint32_t kSegmentFlagSealedAtBirth = 1;

struct SegmentHeader {
  uint32_t flags = 0;
  uint64_t seed = 0;        // the database's KeyHash seed, same in every segment
  uint64_t segment_id = 0;  // equals the id in the file name
  uint64_t seq_floor = 0;   // every record in the segment has seq >= seq_floor
};

void EncodeSegmentHeader(const SegmentHeader& h, char* out /* kSegmentHeaderBytes */);
// kCorruption for a short buffer, a bad magic, checksum, version, unknown flags or a zero seed.
Status DecodeSegmentHeader(const char* p, size_t available, SegmentHeader* out);

// "seg-00000042.kxd" / "seg-00000042.hint" for a segment id.
std::string SegmentFileName(uint32_t segment_id);
std::string HintFileName(uint32_t segment_id);
// Parses a segment file name; false if name is not "seg-%08u.kxd" (8
// digits) with an id in 1..kMaxSegmentId.
bool ParseSegmentFileName(std::string_view name, uint32_t* segment_id);
// Parses a hint file name; false if name is not "seg-%08u.hint" (8 digits)
// with an id in 1..kMaxSegmentId.
bool ParseHintFileName(std::string_view name, uint32_t* segment_id);

}  // namespace kingx::engine
