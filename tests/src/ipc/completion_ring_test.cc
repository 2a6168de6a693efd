// The completion ring: order, fullness, generations, wrap-around, and the
// format's argument checks.
#include "src/ipc/completion_ring.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <vector>

namespace kingx {
namespace {

// Memory for one ring, aligned as the shared mapping places it.
struct RingMemory {
  explicit RingMemory(size_t bytes) : base(std::aligned_alloc(64, (bytes + 63) & ~size_t{63})) {
    REQUIRE(base != nullptr);
  }
  ~RingMemory() { std::free(base); }
  void* base;
};

}  // namespace

TEST_CASE("completion rings deliver in order, refuse when full and drop other generations",
          "[src][completion_ring]") {
  RingMemory region(CompletionRing::RegionBytes(8));
  REQUIRE(CompletionRing::Format(region.base, 8).ok());
  CompletionRing ring(region.base);
  for (uint64_t i = 0; i < 8; ++i) {
    const uint32_t gen = i % 2 == 0 ? 5 : 4;  // odd ones belong to a previous occupant
    REQUIRE(ring.TryPost(Completion{MakeToken(gen, i), 100 + i, engine::Code::kOk, i == 2}));
  }
  CHECK_FALSE(ring.TryPost(Completion{MakeToken(5, 9), 0, engine::Code::kOk, false}));
  CHECK(ring.Pending() == 8);
  std::vector<Completion> seen;
  CHECK(ring.Drain(5, [&](const Completion& c) { seen.push_back(c); }) == 4);
  REQUIRE(seen.size() == 4);
  for (size_t i = 0; i < seen.size(); ++i) {
    CHECK(TokenLocalId(seen[i].token) == 2 * i);
    CHECK(seen[i].seq == 100 + 2 * i);
  }
  CHECK(seen[1].existed);
  CHECK_FALSE(seen[0].existed);
  CHECK(ring.Pending() == 0);
  // Wraps around.
  for (uint64_t i = 0; i < 20; ++i) {
    REQUIRE(ring.TryPost(Completion{MakeToken(5, i), i, engine::Code::kPreconditionFailed, false}));
    size_t n = ring.Drain(5, [&](const Completion& c) {
      CHECK(c.seq == i);
      CHECK(c.code == engine::Code::kPreconditionFailed);
    });
    CHECK(n == 1);
  }
}

TEST_CASE("a completion ring's size must be a power of two of at least 2", "[src][completion_ring]") {
  RingMemory region(CompletionRing::RegionBytes(16));
  CHECK(CompletionRing::Format(region.base, 0).Is(engine::Code::kInvalidArgument));
  CHECK(CompletionRing::Format(region.base, 1).Is(engine::Code::kInvalidArgument));
  CHECK(CompletionRing::Format(region.base, 12).Is(engine::Code::kInvalidArgument));
  CHECK(CompletionRing::Format(region.base, 16).ok());
}

}  // namespace kingx
