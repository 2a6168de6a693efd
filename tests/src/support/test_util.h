// Helpers shared by the tests of src/: a scratch directory, the sizes of a
// small shared mapping, and workers in its slots.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "src/ipc/shm.h"

namespace kingx::test {

// A fresh directory under /tmp, removed with everything in it by the
// destructor. Test failure (Catch2) if it cannot be made.
struct TempDir {
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path;
};

// Sizes of a shared mapping small enough for a unit test: `slots` worker
// slots, a 64K-key index, a 1 MiB write queue, `ring_entries` completions per
// slot.
ShmSizes SmallShmSizes(uint32_t slots, uint32_t ring_entries);

// The master's part: a worker of generation `generation` runs in `slot`.
void OccupySlot(SharedMemory& shm, uint32_t slot, uint32_t generation);

// A small mapping (SmallShmSizes(4, 64)) whose slots 0 and 1 hold running
// workers of generation 1. Test failure (Catch2) if it cannot be made.
struct TwoWorkerShm {
  TwoWorkerShm();
  engine::Result<std::unique_ptr<SharedMemory>> created;
  SharedMemory* shm = nullptr;
};

}  // namespace kingx::test
