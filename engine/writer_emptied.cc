// Segments a write emptied, deleted as the write is published
// (Writer::Impl::DeleteEmptiedLocked; see writer_impl.h).
//
// A large value lives alone in its segment. The write that overwrites or
// deletes it leaves that file with nothing live; deleting it later (a
// compaction pass, even one run before the next batch) leaves a moment in
// which the killed value's bytes sit in the directory beside the live data
// that replaced it, long enough on a loaded disk (a MANIFEST fdatasync) for
// a few such files to put the directory over twice the live data. Here the
// file goes before the write's counters are published: at any instant the
// live bytes reported still count the killed value while its file exists.
//
// Crash safety: called only after the write is durable (SyncMode::kAlways:
// after the fdatasync covering the batch; a large value after its file's
// fdatasync, rename and directory fsync), so the killed record is never
// needed again. The removal is in the MANIFEST (fdatasync) before the unlink,
// as for compaction's deletions: a power loss never makes the file look
// missing, and one that removed the entry but not the file leaves a file the
// next open removes.
//
// Readers (other processes) follow compaction's contract: the index already
// points elsewhere; one that looked up the old location and opens the file
// after the unlink gets ENOENT and looks up again; one holding a mapping
// keeps reading it; the segment epoch moves after the unlink so that mappings
// are dropped.
//
// Only segments holding exactly the killed record (CountIfEmptied): no
// tombstone can be in them, so deleting one never lets an older put of
// another key come back, and no compaction pass had moved a record out of
// one (the key view's pin needs no say, BeginDelete).
#include "engine/writer_impl.h"

namespace kingx::engine {

void Writer::Impl::DeleteEmptiedLocked() {
  if (emptied_now_.empty()) return;
  std::vector<uint32_t> go;
  for (const uint32_t id : emptied_now_) {
    const auto it = segments_.find(id);
    if (it == segments_.end() || it->second.live_bytes != 0 || it->second.active) continue;
    // The write is durable when answered only with kAlways; a compaction
    // pass owns its inputs; a cut's pin keeps the file for a backup.
    if (options_.sync != SyncMode::kAlways || read_only_ || compacting_.count(id) != 0 ||
        !BeginDelete(id, /*view_pin_holds=*/false)) {
      emptied_segments_.fetch_add(1, std::memory_order_relaxed);  // a dead-only pass tries later
      continue;
    }
    go.push_back(id);
  }
  emptied_now_.clear();
  if (go.empty()) return;
  if (manifest_) {
    // As compaction's deletions (Pass::DeleteReady): on a full disk the
    // space comes first, the removals stay in the manifest's memory.
    Status ms = manifest_->RemoveSegments(go);
    if (!ms.ok() && !ms.Is(Code::kNoSpace)) {
      for (const uint32_t id : go) EndDelete(id);
      emptied_segments_.fetch_add(go.size(), std::memory_order_relaxed);
      return;
    }
  }
  for (const uint32_t id : go) {
    Status s = env_.RemoveFile(JoinPath(dir_, SegmentFileName(id)));
    if (!s.ok() && !s.Is(Code::kNotFound)) {
      // Recorded as removed but still there: the next open removes it.
      EndDelete(id);
      emptied_segments_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    env_.RemoveFile(JoinPath(dir_, HintFileName(id))).ok();  // an orphan hint is removed by recovery
    ForgetUnlinked(id);
  }
}

}  // namespace kingx::engine
