// Reader: looks keys up in the SharedIndex and reads their records from the
// segment files through read-only mappings. Usable in any process that maps
// the index region (attach after fork), and thread-safe: one Reader per
// process can serve every thread.
//
// Get never returns bytes it has not verified: the header checksum, the key
// and the body checksum are checked, and compressed values are decoded within
// their recorded size. A mismatch is counted in the index's corruption
// counter and returned as kCorruption.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "engine/env.h"
#include "engine/key_probe.h"
#include "engine/options.h"
#include "engine/record.h"
#include "engine/status.h"

namespace kingx::engine {

class SharedIndex;

// A value found by Get. content_type and data point into memory kept alive by
// holder (a segment mapping or a decoded buffer): keep the Value (or a copy of
// holder) until the bytes are sent.
struct Value {
  uint64_t seq = 0;  // the record's sequence number (the ETag)
  std::string_view content_type;
  std::string_view data;     // the value (kFull); empty for kMetadata and kStored
  uint64_t raw_len = 0;      // size of the value (== data.size() for kFull)
  // ReadMode::kStored only: the value as stored (verified against its
  // checksum, not decoded) and its codec; decode it with ValueDecoder
  // (engine/compress.h) while holder lives.
  std::string_view stored;
  Codec codec = Codec::kRaw;
  std::shared_ptr<const void> holder;
  // Get with a RecordCopy copied the record there: content_type and, for a
  // raw value, data / stored view the caller's copy, not the mapping.
  bool copied = false;
};

// Memory the caller owns for Get to copy a small record into (see Get).
// Its size bounds the whole record (header, key, content type, stored
// value), so that a value read from a copy is never longer than
// kBytes - kRecordHeaderBytes.
struct RecordCopy {
  static constexpr size_t kBytes = kRecordHeaderBytes + 1024;
  char bytes[kBytes];
};

enum class ReadMode : uint8_t {
  kFull,      // data holds the value (decompressed if needed)
  kMetadata,  // seq, content_type and raw_len only, no decompression (HEAD, If-None-Match)
  kStored,    // seq, content_type, raw_len, stored and codec: no decompression, for
              // callers that stream a large value piece by piece
};

class Reader {
 public:
  // env and index must outlive the Reader. options must match the writer's
  // max_key_bytes / max_value_bytes. Does no I/O.
  Reader(Env& env, std::string dir, const Options& options, SharedIndex& index);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // The newest value of key. Errors: kNotFound; kBusy (index not ready, the
  // lookup kept racing with the writer, or the process is out of descriptors
  // or mappings); kCorruption (checksum or format failure, or the segment
  // file holding the key's newest record is missing; counted in
  // corruptions); kIOError (a segment could not be read); kInvalidArgument
  // (empty or over-long key). A segment that could not be read (kIOError, or
  // kBusy for descriptors or mappings) is counted in the index's
  // read_failures; the next Get tries to read it again. A page of a mapped
  // segment that cannot be read (SIGBUS: a failing disk, a file truncated
  // under the mapping) is kIOError too, counted and reported (at most a line
  // a second): the record is read under MappingGuard, and its segment's
  // mapping is marked so that later Gets of any key in it answer kIOError
  // at once, without touching it, until the file is removed or replaced
  // (compaction, a writer's recovery) or the mapping is evicted
  // (engine/segment_cache.h). The bytes a Value views were verified under
  // the guard; a caller that reads them again later (decoding a stored
  // value: ValueDecoder reads under the guard too) reports a fault with
  // ReportReadFault.
  // Never answers kNotFound or an older value for a key whose newest record
  // cannot be read.
  Result<Value> Get(std::string_view key, ReadMode mode = ReadMode::kFull);
  // The same answer, reusing what PrefetchRecord left in *hint when that
  // still holds: if the index still stores hint's candidate, unchanged
  // (SharedIndex::StillFound), and the record there is key's own, it is
  // read without hashing or probing; in every other case (a hint of another
  // key, an overwrite, delete, compaction move or growth since, a vanished
  // segment) Get looks the key up afresh. The hint is only read.
  Result<Value> Get(std::string_view key, ReadMode mode, const KeyProbe& hint);
  // The same answer (hint may be null), for a caller that reads small values
  // at once: a record that fits *copy is copied there whole by a single
  // guarded read (its header, key and value together), its key and checksum
  // are checked on the copy, and the Value views the copy (v.copied; a
  // compressed value's stored bytes, in kStored, still view the mapping):
  // the bytes handed out are the bytes verified. Keep *copy unchanged while
  // the Value's views are used. A larger record is read as by Get (not
  // copied). Faults and errors as Get.
  Result<Value> Get(std::string_view key, ReadMode mode, const KeyProbe* hint, RecordCopy* copy);

  // Hints for a Get(key) that will follow soon on this thread, so that its
  // cache and TLB misses overlap the caller's work in between: PrefetchIndex
  // starts fetching the index slot the lookup reads first; PrefetchRecord
  // looks the key up (as Get does) and starts fetching the first bytes of
  // its newest candidate record. Neither waits for memory, does I/O, maps a
  // segment, or changes anything a Get sees; any failure is ignored (the Get
  // will meet it). Any thread. With `hint`: PrefetchIndex leaves the key's
  // hash there; PrefetchRecord reuses it (the caller promises hint came from
  // PrefetchIndex of the same key, or is fresh) and leaves the candidate it
  // found, for Get(key, mode, hint).
  void PrefetchIndex(std::string_view key);
  void PrefetchRecord(std::string_view key);
  void PrefetchIndex(std::string_view key, KeyProbe* hint);
  void PrefetchRecord(std::string_view key, KeyProbe* hint);
  // Both hints for many keys whose Gets follow soon, each stage for every
  // key in one pass: every key's index slot, then every key's record. A
  // prefetch that misses the TLB waits for its page walk, so one key at a
  // time pays the walks one after another; issued together, the walks of
  // different keys overlap. hints[i] is left as PrefetchIndex then
  // PrefetchRecord of keys[i] with hints[i] would leave it (empty for an
  // empty, over-long or unreadable key, or before recovery), for
  // Get(keys[i], mode, hints[i]). Same guarantees as PrefetchRecord (no I/O,
  // no mapping, no effect on any answer, failures ignored). Requires
  // keys.size() == hints.size() <= kMaxPrefetchKeys. Any thread.
  static constexpr size_t kMaxPrefetchKeys = 64;
  void PrefetchKeys(std::span<const std::string_view> keys, std::span<KeyProbe> hints);

  // A read of v's bytes after Get found a page that could not be read (a
  // ValueDecoder of v.stored answered kIOError): marks v's segment mapping
  // as Get does, counts the failure in read_failures and reports it. v from
  // Get with ReadMode::kStored or kMetadata (its holder is the mapping). Any
  // thread.
  void ReportReadFault(const Value& v);

  // Drops cached mappings of segments whose files are gone or were replaced
  // (also done by Get when the index's segment epoch changes), so that the
  // space of deleted segments is released. In-flight Values stay valid.
  void DropStaleMappings();
  // DropStaleMappings if the segment epoch moved since the last check; a
  // load and a compare otherwise. For a timer of a process that may go long
  // without a Get (a write-only worker would otherwise pin deleted files).
  void ReleaseDeletedSegments();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kingx::engine
