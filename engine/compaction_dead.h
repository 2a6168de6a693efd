// Deleting dead segments beside a running compaction pass: the part of a
// PassKind::kDeadOnly pass that may run while another pass holds the
// compactor (Compactor::RunOnce calls it instead of returning kBusy).
// Internal to engine/ (compaction.cc).
//
// What it deletes: sealed segments with no live record (live bytes 0 under
// the writer's mutex) that the running pass did not pick, that no pin holds
// (an online backup's cut, the key view's catch-up or rebuild: BeginDelete),
// and whose every record it has read back as droppable: each put is no
// longer in the index, and each tombstone's key has a newer put in the index
// (durable: only under SyncMode::kAlways, where an indexed record was
// fdatasynced before it was published). A tombstone with no newer put of its
// key keeps its segment for a full pass (which may keep it by copying it):
// the running pass's output, not yet installed, may hold a copy of an older
// put of that key that a write superseded during the pass, so the seq guards
// of compaction_policy.h cannot be used here.
//
// Why this is safe beside the running pass: the two never share a segment
// (each claims its segments in Writer::Impl::compacting_ under the mutex; the
// pass leaves out what was claimed before it registered its picks); deleting
// a segment only removes records, which never makes one of the pass's
// tombstone decisions unsafe (its guards count the segment as present, the
// conservative way); it writes nothing. Deletion follows compaction's reader
// contract: MANIFEST removal fdatasynced before the unlink, then the hint,
// then the segment epoch.
//
// Threads: any thread of the writer's process; one call at a time per
// Compactor (the caller serialises). Never holds the writer's mutex across
// file I/O.
#pragma once

#include <cstdint>
#include <set>
#include <vector>

#include "engine/compaction.h"
#include "engine/status.h"

namespace kingx::engine {

struct DeadBesideResult {
  uint32_t deleted = 0;         // segments deleted
  std::vector<uint32_t> deleted_ids;
  uint64_t bytes_deleted = 0;   // their file bytes
  // Sealed segments with no live record that were left: the running pass's
  // inputs, or ones whose records need a full pass (a tombstone that may
  // have to stay, a record that cannot be read). The caller tries again
  // after the running pass.
  uint32_t left = 0;
  // Segments left because the key view pins every segment (PassReport::view_pinned).
  uint32_t view_pinned = 0;
};

// Deletes what it can (see above). `rejected`: segments an earlier call read
// and had to leave (not read again; the caller clears it once a full pass
// ran); updated. Errors: kIOError / kNoSpace from the MANIFEST or an unlink
// (the segments concerned stay, intact); OK otherwise.
Status DeleteDeadBesidePass(Writer::Impl& w, std::set<uint32_t>* rejected, DeadBesideResult* result);

}  // namespace kingx::engine
