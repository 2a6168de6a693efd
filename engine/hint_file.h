// Hint files: the per-segment index that lets recovery skip reading a sealed
// segment (Bitcask's hint file, KingDB's offset array). Internal to engine/;
// FORMAT.md describes the bytes.
//
// A hint file "seg-N.hint" lists, for every valid record of segment N in file
// order, its key, seq, offset, total size and type, and ends with a trailer
// holding the entry count, the segment's size and a checksum of everything
// before. A hint that is missing, short, fails its checksum or disagrees with
// the segment's size is ignored: recovery scans the segment instead.
//
// Thread-safety: a HintWriter belongs to the writer thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "engine/env.h"
#include "engine/hash.h"
#include "engine/record.h"
#include "engine/status.h"

namespace kingx::engine {

struct HintEntry {
  uint64_t seq = 0;
  uint64_t offset = 0;       // of the record's first byte in the segment
  uint64_t total_bytes = 0;  // header + key + meta + stored
  RecordType type = RecordType::kPut;
  std::string_view key;
};

// Builds one hint file, entry by entry, buffering up to ~1 MiB between writes.
class HintWriter {
 public:
  // Creates (truncating) path and writes the hint header for segment_id.
  // The file's directory entry is made durable by the caller's SyncDir.
  static Result<std::unique_ptr<HintWriter>> Create(Env& env, const std::string& path, uint32_t segment_id);

  void Add(const HintEntry& e);
  // Bytes the file holds once finished with the entries added so far: its
  // header, those entries and its trailer (what Finish leaves on disk).
  uint64_t finished_bytes() const;
  // Writes the buffered entries (no sync).
  Status Flush();
  // Flush, but only once ~1 MiB is buffered: the writer calls it after every
  // batch without paying a second write() per batch.
  Status FlushIfLarge() { return used_ >= kFlushBytes ? Flush() : Status::OK(); }
  // Writes the rest and the trailer for a segment of segment_bytes bytes,
  // then fdatasyncs. The segment must already be durable at that size.
  Status Finish(uint64_t segment_bytes);
  // Finish without the fdatasync: for a scratch hint that no open of the
  // database ever reads (an online backup's copy of a cut, engine/cut_hint.h).
  Status FinishUnsynced(uint64_t segment_bytes);

 private:
  static constexpr size_t kFlushBytes = 1 << 20;
  HintWriter(std::unique_ptr<File> file) : file_(std::move(file)) {}
  std::unique_ptr<File> file_;
  // At least `bytes` writable bytes at the end of the buffered ones (buf_
  // grows, never shrinks); the caller advances used_ by what it wrote.
  char* Room(size_t bytes);
  std::string buf_;  // [0, used_): the bytes not yet written; the rest is room
  size_t used_ = 0;
  Checksum64Stream checksum_;
  uint64_t count_ = 0;
  uint64_t last_seq_ = 0;  // entries store their seq as a delta from the previous one
  uint64_t entry_bytes_ = 0;
};

// LoadHintFile's segment_bytes for a segment whose file is missing: the
// size the hint records is taken as is.
inline constexpr uint64_t kAnySegmentSize = ~uint64_t{0};

// The entry count a sealed hint file announces in its trailer, read without
// loading it (recovery sizes the index with it before replaying). Only the
// header's magic and version and the trailer's segment size are checked:
// an estimate, never a substitute for LoadHintFile. kNotFound when there is
// no hint file; kCorruption when it has no trailer for a segment of
// segment_bytes (an active segment's hint, or a bad one).
Result<uint64_t> HintEntryCount(Env& env, const std::string& path, uint64_t segment_bytes);

// The segment size a hint file's trailer records, read the same way (the
// header's magic and version checked, not the checksum): whether the file
// may be a finished hint of a longer segment (or of records a scan does not
// reach), worth a LoadHintFile. Its last 24 bytes are read as a trailer
// whether or not the hint is finished.
// kNotFound when there is no hint file; kCorruption when it is too short or
// not a hint of this version.
Result<uint64_t> HintTrailerSegmentBytes(Env& env, const std::string& path);

// Loads the hint file at path for segment_id, whose segment file holds
// segment_bytes bytes: checks it whole (checksum, bounds of every entry
// against the segment and the limits) and only then calls fn for each entry,
// in file order. kNotFound when there is no hint file, or an intact one of
// another version; kCorruption when it cannot be trusted (damaged, or never
// finished; fn is then never called); the Env's errors when it cannot be read
// (kIOError as well when a page of the mapped file cannot be read: it is read
// under MappingGuard, so such a page is an error, never a SIGBUS; fn is then
// not called for that entry or any after it).
// recorded_bytes (optional): set to the segment size the hint records as
// soon as its checksum holds (also when that size is why it was rejected).
Status LoadHintFile(Env& env, const std::string& path, uint32_t segment_id, uint64_t segment_bytes,
                    const RecordLimits& limits, const std::function<void(const HintEntry&)>& fn,
                    uint64_t* recorded_bytes = nullptr);

// Most entries LoadHintFileBatches hands out in one call.
inline constexpr size_t kHintBatchEntries = 32;

// LoadHintFile, with the same checks and results, but fn receives the
// entries in file order in batches of 1 to kHintBatchEntries, each together
// with the batch that comes after it (`next`, already decoded; empty with the
// last batch). A caller that needs memory per entry (recovery: the index
// entry each key hashes to) can start fetching it for `next` while it handles
// `batch`. Keys point into copies taken out of the mapped hint file: valid
// during the call only.
Status LoadHintFileBatches(
    Env& env, const std::string& path, uint32_t segment_id, uint64_t segment_bytes, const RecordLimits& limits,
    const std::function<void(std::span<const HintEntry> batch, std::span<const HintEntry> next)>& fn,
                           uint64_t* recorded_bytes = nullptr);

// The entries of the hint file at path for segment_id as they were written,
// finished or not: a hint a crash left unfinished (the active segment's), or
// one damaged past some entry. Its header must be a hint header of this
// version naming segment_id; then each entry is handed to fn in file order
// until the first that does not decode (the trailer of a finished hint, a
// cut-short last entry, damage). No checksum covers these entries: each
// names only a candidate, for a caller that can prove it (a record's own body
// checksum: RecordBodyMatchesKey). Read with read(2) into memory (the whole
// file, a few MiB per 256 MiB segment); keys point into it, valid during fn.
// kNotFound when there is no hint file; kCorruption when its header is not
// one of this segment's (fn is never called); the Env's errors (kIOError:
// a byte that cannot be read) when it cannot be read.
Status ReadHintEntriesAsWritten(Env& env, const std::string& path, uint32_t segment_id, const RecordLimits& limits,
                                const std::function<void(const HintEntry&)>& fn);

}  // namespace kingx::engine
