// Helpers shared by the tests of src/ (see test_util.h).
#include "tests/src/support/test_util.h"

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>

namespace kingx::test {

TempDir::TempDir() {
  char tmpl[] = "/tmp/kingx-src-test-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  path = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

ShmSizes SmallShmSizes(uint32_t slots, uint32_t ring_entries) {
  ShmSizes sizes;
  sizes.slot_count = slots;
  sizes.index_max_keys = 1 << 16;
  sizes.index_initial_capacity = 1024;
  sizes.write_queue_bytes = 1 << 20;
  sizes.completion_ring_entries = ring_entries;
  return sizes;
}

void OccupySlot(SharedMemory& shm, uint32_t slot, uint32_t generation) {
  shm.slot(slot).generation.store(generation);
  shm.slot(slot).state.store(static_cast<uint32_t>(SlotState::kRunning));
}

TwoWorkerShm::TwoWorkerShm() : created(SharedMemory::Create(SmallShmSizes(4, 64))) {
  REQUIRE(created.ok());
  shm = created->get();
  for (uint32_t i = 0; i < 2; ++i) OccupySlot(*shm, i, 1);
}

}  // namespace kingx::test
