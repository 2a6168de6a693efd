// Manifest: the small file "MANIFEST" that says which segment files the
// database holds, its hash seed, and how far sequence numbers were handed
// out (engine/FORMAT.md, "Manifest"). It lets an open notice a segment file
// that is missing (deleted by hand, lost by a file system), keeps a second
// copy of the seed (a damaged segment header no longer makes it unknown), and
// keeps sequence numbers (ETags) from being handed out twice after a power
// loss dropped writes that had been acknowledged without fdatasync.
//
// It also orders segments by birth: each add carries the segment's birth
// number (one more than any before), since ids are reused and say nothing of
// age; of two copies of one record (compaction), the later-born wins.
//
// It is a log: a header, then fixed-size entries (segment added, segment
// removed, sequence high-water mark), each with its own checksum. Adds are
// appended without fdatasync (a lost add only means that segment is not
// checked for); removes and high-water marks are fdatasynced before the caller
// goes on (a segment is unlinked only after its removal is durable, so a
// power loss never makes a deleted segment look missing; a seq is handed out
// only below a durable mark). The log is rewritten whole (temporary file,
// fdatasync, rename, directory fsync) when it holds many more entries than
// live segments, and by every open.
//
// Thread-safety: Manifest's methods may be called from any thread (one
// internal mutex): the writer thread and compaction both record changes.
// Failure: an append or sync that fails returns the error; the in-memory state
// then includes the change (the caller decides; the writer turns read-only).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/env.h"
#include "engine/status.h"

namespace kingx::engine {

// What an existing MANIFEST says.
struct ManifestState {
  bool header_ok = false;            // false: the header is damaged (seed unknown from it)
  uint64_t seed = 0;                 // when header_ok
  std::map<uint32_t, uint64_t> segments;  // added and not removed since: id -> birth number
  std::set<uint32_t> removed;             // removed and not added again since (their unlink may not have happened)
  uint64_t seq_high_water = 0;       // every seq ever handed out is below it (0: none recorded)
  uint64_t damaged_entries = 0;      // entries that failed their checksum, followed by valid ones
  uint64_t torn_tail_bytes = 0;      // bytes after the last whole valid entry, no valid entry after them
  uint64_t entries = 0;              // valid entries read
};

class Manifest {
 public:
  static constexpr const char* kFileName = "MANIFEST";

  // Reads dir/MANIFEST. kNotFound when there is none (a database made by a
  // version without it, or a new one); kCorruption when the header and every
  // entry are unreadable; the Env's errors.
  static Result<ManifestState> Read(Env& env, const std::string& dir);

  // Writes a fresh dir/MANIFEST holding exactly this state (through
  // MANIFEST.tmp, fdatasync, rename, directory fsync) and returns the handle
  // that appends to it.
  static Result<std::unique_ptr<Manifest>> Create(Env& env, const std::string& dir, uint64_t seed,
                                                  const std::map<uint32_t, uint64_t>& segments,
                                                  uint64_t seq_high_water);

  // The bytes of a MANIFEST holding exactly this state (what Create writes),
  // for a copy of the database made elsewhere (an online backup). Pure.
  static std::string Encode(uint64_t seed, const std::map<uint32_t, uint64_t>& segments, uint64_t seq_high_water);

  // Records a segment file that now exists under its name (its directory entry
  // already durable), born `birth` (above every birth before). Not synced.
  Status AddSegment(uint32_t id, uint64_t birth);
  // Records that a segment is about to be deleted; durable when it returns OK.
  Status RemoveSegment(uint32_t id);
  // The same for several segments, with one fdatasync for all of them.
  Status RemoveSegments(const std::vector<uint32_t>& ids);
  // Records that every seq handed out from now on is below mark; durable when
  // it returns OK.
  Status SetSeqHighWater(uint64_t mark);

  // Writes the state again when an earlier append failed (a full disk), so
  // that a clean close leaves an exact MANIFEST. OK when nothing is pending.
  Status Flush();

  uint64_t seq_high_water() const;
  std::map<uint32_t, uint64_t> segments() const;

 private:
  Manifest(Env& env, std::string dir, uint64_t seed);
  Status AppendLocked(uint32_t type, uint32_t id, uint64_t value, bool sync);
  Status RewriteLocked();

  Env& env_;
  const std::string dir_;
  const uint64_t seed_;
  mutable std::mutex mu_;
  std::unique_ptr<File> file_;
  uint64_t size_ = 0;          // bytes in the file (header + entries)
  uint64_t entries_ = 0;       // entries in the file
  std::map<uint32_t, uint64_t> segments_;  // id -> birth
  uint64_t seq_high_water_ = 0;
};

}  // namespace kingx::engine
