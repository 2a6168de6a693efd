// CompletionRing: the way back from the writer to one worker, in the shared
// mapping (src/ipc/shm.h): per slot, a single producer (the writer) / single
// consumer (the one thread of the worker that drains completions) ring of
// fixed-size Completion records. The writer writes the slot's eventfd after
// posting a batch's completions, so the worker's loop watches that fd.
//
// Every completion carries the token of its write (src/ipc/token.h); Drain
// drops completions whose generation is not the caller's (a previous
// occupant's leftovers).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>

#include "engine/status.h"
#include "src/ipc/token.h"

namespace kingx {

// ---------------------------------------------------------------- completions

// Why a write failed, beyond its code, when the worker's answer should say
// more than the code does.
enum class CompletionReason : uint8_t {
  kNone = 0,
  kStagingBudget,  // a large upload would pass --staging-bytes (code kBusy)
  kWriterRestarted,  // a large upload whose staging a writer that died had begun (code kBusy): not stored
  kBackupCut,      // not a write: the backup slot of this token was cut or failed (src/ipc/backup_slots.h)
};

struct Completion {
  uint64_t token = 0;
  uint64_t seq = 0;        // the record's sequence number (the ETag) when code is kOk
  engine::Code code = engine::Code::kOk;  // kOk, kPreconditionFailed, kNotFound (delete of
                                          // an absent key), kNoSpace, kIOError, kReadOnly, ...
  bool existed = false;    // a put replaced / a delete removed an existing key
  CompletionReason reason = CompletionReason::kNone;
};

struct CompletionRingHeader;

class CompletionRing {
 public:
  static size_t RegionBytes(uint32_t entries);
  // Formats (master before fork, or a test). entries: power of two >= 2.
  static engine::Status Format(void* base, uint32_t entries);
  CompletionRing() = default;
  explicit CompletionRing(void* base);

  // Producer (the writer's loop thread only). false when the ring is full:
  // the writer keeps the completion and posts it later.
  bool TryPost(const Completion& c);

  // Consumer (one thread of the slot's worker). Calls fn for every posted
  // completion whose TokenGeneration is `generation` (others are dropped) and
  // returns how many fn saw. fn must not call Drain on the same ring.
  size_t Drain(uint32_t generation, const std::function<void(const Completion&)>& fn);

  uint32_t Pending() const;  // racy snapshot

 private:
  CompletionRingHeader* header_ = nullptr;
};

}  // namespace kingx
