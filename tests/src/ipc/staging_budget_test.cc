// The staging budget: staged bytes within a share of the live data (one
// upload alone always admitted), part-by-part uploads never waiting on each
// other for ever, a dead worker's reservations and overdraft returned.
#include "src/ipc/staging_budget.h"

#include <catch2/catch.hpp>
#include <memory>

#include "tests/src/support/test_util.h"

namespace kingx {
namespace {

constexpr uint64_t kMiB = 1 << 20;

struct Fixture : test::TwoWorkerShm {
  // The budgets a and b of the workers in slots 0 and 1, claimed.
  Fixture() {
    a = std::make_unique<StagingBudget>(*shm, 0, 1);
    b = std::make_unique<StagingBudget>(*shm, 1, 1);
    a->Claim();
    b->Claim();
  }
  void Occupy(uint32_t slot, uint32_t gen) { test::OccupySlot(*shm, slot, gen); }
  void SetLive(uint64_t bytes) { shm->index().counters().live_bytes.store(bytes); }
  uint64_t Total() const { return shm->control().staging.reserved_bytes.load(); }

  std::unique_ptr<StagingBudget> a, b;
};

}  // namespace

TEST_CASE("uploads with a length are admitted within an eighth of the live data, or alone", "[src][staging]") {
  Fixture f;
  StagingBudget &a = *f.a, &b = *f.b;
  f.SetLive(32 * kMiB);  // share: 4 MiB
  CHECK(a.ShareBytes() == 4 * kMiB);
  StagingBudget::Holder u1, u2, u3;
  REQUIRE(a.TryReserve(&u1, 2 * kMiB, true));
  REQUIRE(b.TryReserve(&u2, 2 * kMiB, true));
  CHECK(f.Total() == 4 * kMiB);
  // A third one would pass the share: held, nothing reserved.
  CHECK_FALSE(a.TryReserve(&u3, 1, true));
  CHECK(u3.reserved == 0);
  CHECK(f.Total() == 4 * kMiB);
  b.Release(&u2);
  CHECK(f.Total() == 2 * kMiB);
  CHECK(a.TryReserve(&u3, 2 * kMiB, true));
  a.Release(&u1);
  a.Release(&u3);
  CHECK(f.Total() == 0);

  // A small database (share 1 KiB): one upload of any size alone, the next
  // waits until it is done.
  f.SetLive(8 * 1024);
  StagingBudget::Holder big, next;
  REQUIRE(a.TryReserve(&big, 64 * kMiB, true));
  CHECK_FALSE(b.TryReserve(&next, 100, true));
  a.Release(&big);
  CHECK(b.TryReserve(&next, 100, true));
  b.Release(&next);
  CHECK(f.Total() == 0);
  CHECK(f.shm->slot(0).staging_reserved.load() % (uint64_t{1} << 40) == 0);
}

TEST_CASE("two uploads reserving part by part past the share never wait for each other for ever", "[src][staging]") {
  Fixture f;
  StagingBudget &a = *f.a, &b = *f.b;
  f.SetLive(16 * kMiB);  // share: 2 MiB
  StagingBudget::Holder u1, u2, u3;
  REQUIRE(a.TryReserve(&u1, kMiB, false));
  REQUIRE(b.TryReserve(&u2, kMiB, false));
  // The share is used up; a new upload's first part waits.
  CHECK_FALSE(a.TryReserve(&u3, kMiB, false));
  // Both half-staged uploads want more: the first to ask takes the overdraft
  // and goes on; the other waits for it, not for ever.
  CHECK(a.TryReserve(&u1, kMiB, false));
  CHECK(u1.overdraft);
  CHECK_FALSE(b.TryReserve(&u2, kMiB, false));
  CHECK(a.TryReserve(&u1, kMiB, false));
  CHECK(f.Total() == 4 * kMiB);
  a.Release(&u1);  // done: the overdraft is free
  CHECK(f.shm->control().staging.overdraft_owner.load() == 0);
  CHECK(b.TryReserve(&u2, kMiB, false));  // within the share again
  CHECK(b.TryReserve(&u2, kMiB, false));  // past it, but alone (u3 holds nothing)
  CHECK_FALSE(u2.overdraft);
  // A whole reservation never takes the overdraft.
  StagingBudget::Holder whole;
  CHECK_FALSE(a.TryReserve(&whole, kMiB, true));
  b.Release(&u2);
  CHECK(f.Total() == 0);
}

TEST_CASE("a held upload is not starved by later ones that would fit", "[src][staging]") {
  Fixture f;
  StagingBudget &a = *f.a, &b = *f.b;
  f.SetLive(32 * kMiB);  // share: 4 MiB
  StagingBudget::Holder holder, big, small, part;
  REQUIRE(a.TryReserve(&holder, 3 * kMiB, true));
  REQUIRE(a.TryReserve(&part, kMiB / 4, false));  // a chunked upload's first part
  // Larger than the share: only alone. It is refused and first in line.
  CHECK_FALSE(b.TryReserve(&big, 5 * kMiB, true));
  CHECK(big.first);
  // A later upload that would fit waits behind it...
  CHECK_FALSE(a.TryReserve(&small, kMiB / 4, true));
  CHECK_FALSE(small.first);
  // ...but an upload already holding bytes goes on (it must not wait for it).
  CHECK(a.TryReserve(&part, kMiB / 4, false));
  a.Release(&holder);
  a.Release(&part);
  CHECK(b.TryReserve(&big, 5 * kMiB, true));  // alone now
  CHECK_FALSE(big.first);
  CHECK(f.shm->control().staging.first_in_line.load() == 0);
  CHECK_FALSE(a.TryReserve(&small, kMiB / 4, true));  // 5 MiB staged: past the share
  CHECK(small.first);
  b.Release(&big);
  CHECK(a.TryReserve(&small, kMiB / 4, true));
  a.Release(&small);
  CHECK(f.Total() == 0);
  CHECK(f.shm->control().staging.first_in_line.load() == 0);

  SECTION("a dead worker's upload first in line lets the others go") {
    StagingBudget::Holder d, next;
    REQUIRE(a.TryReserve(&holder, 5 * kMiB, true));
    CHECK_FALSE(b.TryReserve(&d, 5 * kMiB, true));
    REQUIRE(d.first);
    a.Release(&holder);
    f.shm->slot(1).state.store(static_cast<uint32_t>(SlotState::kFree));  // b's worker is gone
    CHECK(a.TryReserve(&next, kMiB, true));
    StagingBudget::ReturnDeadSlots(*f.shm);
    CHECK(f.shm->control().staging.first_in_line.load() == 0);
    a.Release(&next);
  }
}

TEST_CASE("held uploads are counted while they wait, each wait once", "[src][staging]") {
  Fixture f;
  StagingBudget &a = *f.a, &b = *f.b;
  StagingBudget::Holder u1, u2;
  a.SetHeld(&u1, true);
  a.SetHeld(&u1, true);
  b.SetHeld(&u2, true);
  CHECK(StagingBudget::HeldUploads(*f.shm) == 2);
  a.SetHeld(&u1, false);
  CHECK(StagingBudget::HeldUploads(*f.shm) == 1);
  CHECK(f.shm->control().staging.holds.load() == 2);
  b.Release(&u2);  // answered while held
  CHECK(StagingBudget::HeldUploads(*f.shm) == 0);
  // A dead worker's held uploads are not counted.
  b.SetHeld(&u2, true);
  f.shm->slot(1).state.store(static_cast<uint32_t>(SlotState::kFree));
  CHECK(StagingBudget::HeldUploads(*f.shm) == 0);
}

TEST_CASE("a dead worker's reservations and overdraft are returned exactly once", "[src][staging]") {
  Fixture f;
  f.SetLive(16 * kMiB);  // share: 2 MiB
  StagingBudget &a = *f.a, &dead = *f.b;
  StagingBudget::Holder d1, d2, u1;
  REQUIRE(dead.TryReserve(&d1, kMiB, false));
  REQUIRE(a.TryReserve(&u1, kMiB, false));
  REQUIRE(dead.TryReserve(&d1, kMiB, false));  // takes the overdraft
  REQUIRE(d1.overdraft);
  REQUIRE(f.Total() == 3 * kMiB);
  CHECK_FALSE(a.TryReserve(&u1, kMiB, false));  // the overdraft is taken

  SECTION("the writer loop returns them once the master reaped the worker") {
    StagingBudget::ReturnDeadSlots(*f.shm);  // still alive: nothing happens
    CHECK(f.Total() == 3 * kMiB);
    f.shm->slot(1).state.store(static_cast<uint32_t>(SlotState::kFree));
    StagingBudget::ReturnDeadSlots(*f.shm);
    CHECK(f.Total() == kMiB);
    CHECK(f.shm->control().staging.overdraft_owner.load() == 0);
    // The next occupant's claim finds nothing left to return.
    f.Occupy(1, 2);
    StagingBudget next(*f.shm, 1, 2);
    next.Claim();
    StagingBudget::ReturnDeadSlots(*f.shm);
    CHECK(f.Total() == kMiB);
  }
  SECTION("the slot's next worker returns them when it claims the slot first") {
    f.Occupy(1, 2);
    StagingBudget next(*f.shm, 1, 2);
    // The dead upload's overdraft is taken over by the next one that asks.
    CHECK(a.TryReserve(&u1, kMiB, false));
    CHECK(u1.overdraft);
    next.Claim();
    CHECK(f.Total() == 2 * kMiB);
    StagingBudget::ReturnDeadSlots(*f.shm);
    CHECK(f.Total() == 2 * kMiB);
    REQUIRE(next.TryReserve(&d2, 0, true));
  }
  a.Release(&u1);
  CHECK(f.Total() == 0);
}

}  // namespace kingx
