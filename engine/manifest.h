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
// And it records each sealed segment's length (a seal: after a rotation's cut
// is durable, or with the add of a segment written whole — a compaction output,
// a large value), so that an open notices a sealed segment that lost its last
// records even when they ended at a record boundary and its hint is gone.
//
// It is a log: a header, then fixed-size entries (segment added, segment
// removed, sequence high-water mark, segment sealed), each with its own
// checksum. Adds and seals are appended without fdatasync (a lost add only
// means that segment is not checked for, a lost seal that its length is not); removes and high-water marks are fdatasynced before the caller
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

// What the MANIFEST says of one segment.
struct ManifestSegment {
  uint64_t birth = 0;         // its birth number
  uint64_t sealed_bytes = 0;  // its length when sealed; 0: not sealed, or the seal is not known
  bool operator==(const ManifestSegment&) const = default;
};
using ManifestSegments = std::map<uint32_t, ManifestSegment>;

// What an existing MANIFEST says.
struct ManifestState {
  bool header_ok = false;            // false: the header is damaged (seed unknown from it)
  uint64_t seed = 0;                 // when header_ok
  ManifestSegments segments;         // added and not removed since
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
                                                  const ManifestSegments& segments, uint64_t seq_high_water);

  // The bytes of a MANIFEST holding exactly this state (what Create writes),
  // for a copy of the database made elsewhere (an online backup). Pure.
  static std::string Encode(uint64_t seed, const ManifestSegments& segments, uint64_t seq_high_water);

  // Records a segment file that now exists under its name (its directory entry
  // already durable), born `birth` (above every birth before), and its seal
  // when it was written whole (sealed_bytes != 0: its length, durable). Not
  // synced.
  Status AddSegment(uint32_t id, uint64_t birth, uint64_t sealed_bytes);
  // Records that segment id (listed) is sealed at `bytes`, a length already
  // durable (its cut fdatasynced). Not synced.
  Status SealSegment(uint32_t id, uint64_t bytes);
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
  ManifestSegments segments() const;

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
  ManifestSegments segments_;
  uint64_t seq_high_water_ = 0;
};

}  // namespace kingx::engine
