// What a finished hint says each record of its segment was, looked up by
// offset: recovery and verify use it to name the keys of damaged bytes that
// no longer say which key they held (a damaged key byte, a damaged header),
// where a scan alone would name a key nobody wrote or none at all.
// Internal to engine/.
//
// A hint that cannot be trusted whole (unfinished: a crash came before the
// clean close that finishes it; or damaged) still names candidates: its
// entries as written (LoadAsWritten). Such a name is used only where a
// damaged record's own body checksum proves it (ProvenAt): a damaged key
// byte then costs nothing but the report, where the bytes would name a key
// nobody wrote and leave the real one answering its previous value.
//
// A HintNames holds copies of every entry (keys included) of one hint file,
// loaded whole: only worth it where damage was found. Any thread; not shared.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/env.h"
#include "engine/hint_file.h"
#include "engine/record.h"
#include "engine/status.h"

namespace kingx::engine {

// One hint entry with its own copy of the key.
struct NamedRecord {
  uint64_t seq = 0;
  uint64_t offset = 0;
  uint64_t total_bytes = 0;
  RecordType type = RecordType::kPut;
  std::string key;
  // The entry, its key pointing into this NamedRecord (valid while it lives unchanged).
  HintEntry entry() const { return HintEntry{seq, offset, total_bytes, type, key}; }
};

class HintNames {
 public:
  // Loads the hint file at path of segment_id when it checks out whole for
  // a segment of segment_bytes (LoadHintFile; kAnySegmentSize: whatever
  // length it records). A hint that is missing, unfinished or damaged names
  // nothing: usable() is false, and OK is returned. The Env's errors
  // (kIOError included) when the file cannot be read.
  static Result<HintNames> Load(Env& env, const std::string& path, uint32_t segment_id, uint64_t segment_bytes,
                                const RecordLimits& limits);

  // The entries of the hint file at path as written, finished or not
  // (ReadHintEntriesAsWritten): candidates only, usable() is false. A file
  // that is missing or not a hint of this segment names nothing (OK); the
  // Env's errors (kIOError included) when it cannot be read.
  static Result<HintNames> LoadAsWritten(Env& env, const std::string& path, uint32_t segment_id,
                                         const RecordLimits& limits);

  // Whether a hint was loaded by Load, trusted whole (it may hold no entry).
  bool usable() const { return usable_; }
  // The entries whose records begin in [from, to), in file order. Only for a
  // usable() hint.
  std::span<const NamedRecord> In(uint64_t from, uint64_t to) const;
  // The entry for the record at offset whose header h checked out and whose
  // body did not (record: its h.total_bytes() bytes), when the entry agrees
  // with h (seq, length, type, key length) and its key makes the record's
  // body checksum match (RecordBodyMatchesKey): the record's key bytes were
  // damaged, and this is the key written there. Null otherwise (the damage
  // is elsewhere too, or nothing names the record). Any hint, usable or not.
  const NamedRecord* ProvenAt(uint64_t offset, const RecordHeader& h, const char* record) const;

 private:
  bool usable_ = false;
  std::vector<NamedRecord> records_;  // ascending offsets (LoadHintFile checks the order)
};

}  // namespace kingx::engine
