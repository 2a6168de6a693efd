// Helpers shared by the tests of src/: a scratch directory and the sizes of a
// small shared mapping.
#pragma once

#include <cstdint>
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

}  // namespace kingx::test
