// The disk room of body spills: granted only while the free space, less
// every living worker's spill writes in flight, stays above the writer's
// reserve; a dead worker's bytes are not counted; refusals take nothing.
#include "src/ipc/spill_room.h"

#include <catch2/catch.hpp>
#include <memory>

#include "tests/engine/support/fault_env.h"
#include "tests/src/support/test_util.h"

namespace kingx {
namespace {

constexpr uint64_t kMiB = 1 << 20;

struct Fixture : test::TwoWorkerShm {
  // Spill rooms of the workers in slots 0 and 1; a simulated disk of 10 MiB.
  Fixture() {
    a = std::make_unique<SpillRoom>(*shm, 0, 1);
    b = std::make_unique<SpillRoom>(*shm, 1, 1);
    env.SimulateDisk(dir.path, 10 * kMiB);
  }
  void Occupy(uint32_t slot, uint32_t gen) { test::OccupySlot(*shm, slot, gen); }

  std::unique_ptr<SpillRoom> a, b;
  test::TempDir dir;
  engine::test::FaultInjectionEnv env;
};

}  // namespace

TEST_CASE("spill room is granted above the reserve, counting every worker's writes in flight", "[src][spill]") {
  Fixture f;
  const uint64_t reserve = 4 * kMiB;  // 10 MiB free: 6 MiB for spills
  REQUIRE(f.a->TryTake(3 * kMiB, f.env, f.dir.path, reserve).ok());
  REQUIRE(f.b->TryTake(3 * kMiB, f.env, f.dir.path, reserve).ok());
  // Both writes still in flight: a third would reach into the reserve.
  engine::Status s = f.a->TryTake(1, f.env, f.dir.path, reserve);
  CHECK(s.Is(engine::Code::kNoSpace));
  CHECK(s.ToString().find("kept in reserve") != std::string::npos);
  // A refusal took nothing: once b's write ended, its room is a's.
  f.b->Give(3 * kMiB);
  CHECK(f.a->TryTake(3 * kMiB, f.env, f.dir.path, reserve).ok());
  f.a->Give(3 * kMiB);
  f.a->Give(3 * kMiB);
  CHECK(f.a->TryTake(6 * kMiB, f.env, f.dir.path, reserve).ok());
  f.a->Give(6 * kMiB);
  // Nothing at all when the disk is below the reserve already.
  CHECK(f.a->TryTake(1, f.env, f.dir.path, 11 * kMiB).Is(engine::Code::kNoSpace));
}

TEST_CASE("spill room: a dead worker's writes in flight are not counted, its slot's next worker starts afresh",
          "[src][spill]") {
  Fixture f;
  const uint64_t reserve = 4 * kMiB;
  REQUIRE(f.b->TryTake(5 * kMiB, f.env, f.dir.path, reserve).ok());
  CHECK(f.a->TryTake(2 * kMiB, f.env, f.dir.path, reserve).Is(engine::Code::kNoSpace));
  // b's worker dies in mid-write: the master reaps it (slot free).
  f.shm->slot(1).state.store(static_cast<uint32_t>(SlotState::kFree));
  CHECK(f.a->TryTake(2 * kMiB, f.env, f.dir.path, reserve).ok());
  f.a->Give(2 * kMiB);
  // The slot's next worker (generation 2) counts only its own.
  f.Occupy(1, 2);
  SpillRoom next(*f.shm, 1, 2);
  REQUIRE(next.TryTake(6 * kMiB, f.env, f.dir.path, reserve).ok());
  CHECK(f.a->TryTake(1, f.env, f.dir.path, reserve).Is(engine::Code::kNoSpace));
  next.Give(6 * kMiB);
  CHECK(f.a->TryTake(6 * kMiB, f.env, f.dir.path, reserve).ok());
}

TEST_CASE("spill room: a failed measurement takes nothing", "[src][spill]") {
  Fixture f;
  f.env.FailNth(engine::test::FaultOp::kSpace, 1, engine::Code::kIOError);
  CHECK(f.a->TryTake(kMiB, f.env, f.dir.path, 0).Is(engine::Code::kIOError));
  CHECK(f.a->TryTake(6 * kMiB, f.env, f.dir.path, 4 * kMiB).ok());
}

}  // namespace kingx
