// The sorted key view's checkpoint, keys/MANIFEST (FORMAT.md "Keyspace
// manifest"): its layout, reading it, and the segment ids its runs name.
//
// Those ids are why this is shared: an entry of a run may name a record of
// a segment that was deleted since, and if its id were given to a new
// segment, the same key's newer record could come to sit at the place the
// entry names and be taken for it unread (engine/keyspace.h, the id-reuse
// invariant). So every open that gives ids starts past them: recovery
// (Writer::Open, for the server and kingx-tool alike), before it creates
// any segment, and Keyspace::Open again for a view kept elsewhere.
//
// Free functions on the file seam (engine/env.h): no state, any thread. The
// MANIFEST is read with read(2), never mapped; run files are opened as
// KeyRun::Open does (tables only, no entry read, no checksum).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/env.h"
#include "engine/status.h"

namespace kingx::engine {

inline constexpr char kKeyspaceManifestMagic[8] = {'K', 'I', 'N', 'G', 'X', 'K', 'S', 'M'};
inline constexpr uint32_t kKeyspaceManifestVersion = 1;
inline constexpr size_t kKeyspaceManifestFixedBytes = 56;
inline constexpr const char* kKeyspaceManifestName = "MANIFEST";
// The directory of a data directory that holds its view (FORMAT.md).
inline constexpr const char* kKeyViewDirName = "keys";

struct KeyspaceManifest {
  uint64_t covered = 0;      // every put with a lower seq has its key in the runs
  uint64_t next_run_id = 0;  // above every run id used so far
  uint64_t secret = 0;       // signs listing cursors
  std::vector<uint64_t> runs;
};

// Reads `dir`/MANIFEST. OK with what it says; kNotFound when there is none;
// kCorruption when it is not a valid MANIFEST of the database whose hash
// seed is `seed` (the view is then rebuilt, nothing of it trusted); the
// read's error otherwise. *out is cleared first.
Status ReadKeyspaceManifest(Env& env, const std::string& dir, uint64_t seed, KeyspaceManifest* out);

// Appends to *named the segment ids that the runs `runs` in `dir` name
// (their tables). A run that cannot be opened: its error (kNotFound,
// kCorruption: the view's open rebuilds then, and trusts no entry).
Status AppendNamedSegmentIds(Env& env, const std::string& dir, uint64_t seed, const std::vector<uint64_t>& runs,
                             std::vector<uint64_t>* named);

// Where the search for a free segment id must start (it goes round robin
// upwards) so that an id in `named` is given again only after every other
// free one: past the highest named id when that is at or above `next`,
// else `next`. Values above kMaxSegmentId (entries of no segment) count
// for nothing.
uint32_t SegmentIdPast(uint32_t next, const std::vector<uint64_t>& named);

}  // namespace kingx::engine
