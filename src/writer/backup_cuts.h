// BackupCuts: the writer's side of the backup slots (src/ipc/backup_slots.h).
//
// Serve runs on the writer loop's thread between two batches: it takes the
// cut of each requested slot (engine::Writer::PinSegments: a few
// microseconds under the writer's lock, no I/O), publishes its file list in
// the slot and hands a Completion to `post` for the requester; it unpins and
// frees slots the worker released or whose worker died; and it drops the
// pin of a cut older than max_pin_ms (state kExpired, logged), so that a
// stuck backup cannot keep compaction from freeing disk forever.
//
// Pins live in the engine::Writer, per segment of the cut (compaction goes
// on deleting segments born after it): the destructor gives back every pin
// this object still holds. Repin (a new writer process, before compaction
// starts) pins again the files listed in the slots a previous writer had
// cut.
//
// Threading: the writer loop's thread only. Workers touch the slots through
// their atomics only.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "engine/writer.h"
#include "src/ipc/completion_ring.h"
#include "src/ipc/shm.h"

namespace kingx {

class BackupCuts {
 public:
  using PostFn = std::function<void(uint32_t slot, const Completion& c)>;
  // shm and writer must outlive this object. max_pin_ms: --backup-max-ms.
  BackupCuts(SharedMemory& shm, engine::Writer& writer, uint64_t max_pin_ms);
  ~BackupCuts();
  BackupCuts(const BackupCuts&) = delete;
  BackupCuts& operator=(const BackupCuts&) = delete;

  // Pins again for every slot in kCut (cuts a previous writer took).
  void Repin();
  // One round over the slots (see the file comment). now_ms: CLOCK_MONOTONIC.
  void Serve(uint64_t now_ms, const PostFn& post);

  // Pins this writer holds (for tests and logs).
  uint32_t pins() const;

 private:
  bool RequesterAlive(const BackupSlot& b) const;
  void Cut(uint32_t i, BackupSlot& b, uint64_t now_ms, const PostFn& post);
  void Unpin(uint32_t i);

  SharedMemory& shm_;
  engine::Writer& writer_;
  const uint64_t max_pin_ms_;
  void Pin(uint32_t i, std::vector<uint32_t> ids);
  bool pinned_[kMaxBackups] = {};
  std::vector<uint32_t> pinned_ids_[kMaxBackups];  // the segment ids slot i holds
};

}  // namespace kingx
