// Overlapping fdatasyncs (Options::sync_depth above 1, engine/sync_thread.h):
// the next batch's fdatasync starts while earlier ones run, each on a
// descriptor of its own; batches are acknowledged in submission order, each
// only once its own and every earlier fdatasync returned success; the first
// failure fails every batch in flight, whatever the other syncs return.
// Syncs are held and let go one by one through the fault env's sync hook.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/pipeline.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;

namespace {

Options Depth(uint32_t depth) {
  Options o;
  o.sync_depth = depth;
  return o;
}

// A database at sync_depth 2 with batch A's fdatasync held, then batch B's
// started beside it (both held).
struct TwoInFlight {
  TempDir dir;
  FaultInjectionEnv env;
  TestDb db{env, dir.path(), Depth(2)};
  Batch a = Puts({"a1", "a2"}, "va");
  Batch b = Puts({"b1"}, "vb");
  std::unique_ptr<SyncGate> gate;

  void Start() {
    REQUIRE(db.Open().ok());
    gate = std::make_unique<SyncGate>(env);
    REQUIRE(db.writer().Submit(a.ops) == 1);
    REQUIRE(gate->WaitEntered(1));          // A's fdatasync runs
    CHECK(db.writer().SyncRoom());          // room for one more beside it
    REQUIRE(db.writer().Submit(b.ops) == 2);
    REQUIRE(gate->WaitEntered(2));          // B's started while A's still runs
    CHECK_FALSE(db.writer().SyncRoom());    // the depth is full
  }
};

}  // namespace

TEST_CASE("with two fdatasyncs in flight, a failure of the earlier one fails both batches though the later one "
          "returned success",
          "[engine][pipeline][faults]") {
  TwoInFlight t;
  t.Start();
  t.gate->ReleaseNth(2);  // B's fdatasync returns success first
  REQUIRE(WaitUntil([&] { return t.db.writer().SyncRoom(); }));
  // B's success says nothing of A's bytes: neither batch is final, nothing published.
  CHECK_FALSE(Take(t.db, false).got);
  CHECK(t.db.Get("b1").status().Is(Code::kNotFound));
  CHECK(t.db.Get("a1").status().Is(Code::kNotFound));
  t.env.FailNth(FaultOp::kSync, 1, Code::kIOError, /*forever=*/false, "seg-");  // A's (held before its check)
  t.gate->ReleaseNth(1);
  TakeNext(t.db, 1, Code::kOutcomeUnknown);
  TakeNext(t.db, 2, Code::kOutcomeUnknown);
  CHECK(t.db.writer().read_only());
  CHECK(t.db.Get("a1").status().Is(Code::kNotFound));
  CHECK(t.db.Get("b1").status().Is(Code::kNotFound));
  Batch c = Puts({"c1"}, "vc");
  t.db.writer().Submit(c.ops);
  TakeNext(t.db, 3, Code::kReadOnly);
}

TEST_CASE("with two fdatasyncs in flight, a failure of the later one fails the earlier batch too, whatever its sync "
          "returns after",
          "[engine][pipeline][faults]") {
  TwoInFlight t;
  t.Start();
  t.env.FailNth(FaultOp::kSync, 1, Code::kIOError, /*forever=*/false, "seg-");
  t.gate->ReleaseNth(2);  // B's fails first
  // Seen as the writer loop sees it (SyncRoom takes a failure in).
  REQUIRE(WaitUntil([&] { return !t.db.writer().SyncRoom() && t.db.writer().read_only(); }));
  // Both final at once, outcome unknown, while A's sync still runs; its
  // success afterwards is not trusted.
  TakeNext(t.db, 1, Code::kOutcomeUnknown);
  TakeNext(t.db, 2, Code::kOutcomeUnknown);
  t.gate->ReleaseNth(1);
  CHECK(t.db.Get("a1").status().Is(Code::kNotFound));
  CHECK(t.db.Get("b1").status().Is(Code::kNotFound));
}

TEST_CASE("with two fdatasyncs in flight, batches are acknowledged in order, each once every earlier sync returned",
          "[engine][pipeline]") {
  TwoInFlight t;
  t.Start();
  // A third batch waits for a free place: its sync starts once one returns,
  // and covers it alone.
  Batch c = Puts({"c1"}, "vc");
  REQUIRE(t.db.writer().Submit(c.ops) == 3);
  usleep(20000);
  CHECK_FALSE(t.gate->WaitEntered(3, std::chrono::milliseconds(0)));
  t.gate->ReleaseNth(2);  // B's returns first: nothing is final yet
  REQUIRE(t.gate->WaitEntered(3));  // C's starts in B's place
  CHECK_FALSE(Take(t.db, false).got);
  CHECK(t.db.Get("b1").status().Is(Code::kNotFound));
  t.gate->ReleaseNth(1);  // A's returns: A and B are final, in order
  TakeNext(t.db, 1, Code::kOk);
  TakeNext(t.db, 2, Code::kOk);
  CHECK(t.db.Get("a2").value() == "va");
  CHECK(t.db.Get("b1").value() == "vb");
  CHECK_FALSE(Take(t.db, false).got);  // C's still runs
  CHECK(t.db.Get("c1").status().Is(Code::kNotFound));
  t.gate->ReleaseNth(3);
  TakeNext(t.db, 3, Code::kOk);
  CHECK(t.db.Get("c1").value() == "vc");
  t.gate.reset();
  t.db.Close();
  REQUIRE(t.db.Open().ok());
  CHECK(t.db.Get("b1").value() == "vb");
}

TEST_CASE("a writer lock taken with two fdatasyncs in flight waits for both and finds every batch published",
          "[engine][pipeline]") {
  TwoInFlight t;
  t.Start();
  WriterStats stats;
  std::thread drainer([&] { stats = t.db.writer().Stats(); });  // takes the lock the draining way
  usleep(20000);
  t.gate->ReleaseNth(2);
  usleep(20000);
  t.gate->ReleaseNth(1);
  drainer.join();
  CHECK(stats.syncs == 2);
  TakeNext(t.db, 1, Code::kOk);
  TakeNext(t.db, 2, Code::kOk);
}

// The segment files opened (not created) while `depth` writes the same
// batches, and the segments they filled: the first batch alone, then 40
// batches of 8 KiB across rotations of 64 KiB segments.
struct Opens {
  uint64_t first_batch = 0;
  uint64_t second_batch = 0;
  uint64_t rotations = 0;
  uint64_t segments = 0;
};
Opens OpensAtDepth(uint32_t depth) {
  TempDir dir;
  FaultInjectionEnv env;
  Options o = Depth(depth);
  o.segment_bytes = 64 << 10;
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  Opens r;
  uint64_t opens = env.Calls(FaultOp::kOpen, "seg-");
  auto since = [&] {
    const uint64_t before = opens;
    opens = env.Calls(FaultOp::kOpen, "seg-");
    return opens - before;
  };
  Batch a = Puts({"a1"}, "va");
  db.writer().Submit(a.ops);
  r.first_batch = since();
  TakeNext(db, 1, Code::kOk);
  Batch b = Puts({"b1"}, "vb");
  db.writer().Submit(b.ops);
  TakeNext(db, 2, Code::kOk);
  r.second_batch = since();
  std::vector<Batch> batches;
  for (int i = 0; i < 40; ++i) batches.push_back(Puts({"k" + std::to_string(i)}, std::string(8 << 10, 'x')));
  for (const Batch& batch : batches) db.writer().Submit(batch.ops);
  for (uint64_t ticket = 3; ticket < 43; ++ticket) TakeNext(db, ticket, Code::kOk);
  r.rotations = since();
  r.segments = SegmentFiles(dir.path()).size();
  return r;
}

TEST_CASE("each fdatasync in flight at once runs on a descriptor of its own, opened before its segment's writes",
          "[engine][pipeline]") {
  const Opens one = OpensAtDepth(1);
  CHECK(one.first_batch == 0);
  for (uint32_t depth : {2u, 3u}) {
    INFO("depth " << depth);
    const Opens d = OpensAtDepth(depth);
    CHECK(d.first_batch == depth - 1);  // the spares, read-only: nothing of the disk changes
    CHECK(d.second_batch == 0);         // same segment: the same descriptors
    // Every new segment gets spares of its own.
    REQUIRE(d.segments == one.segments);
    REQUIRE(d.segments > 3);
    CHECK(d.rotations == one.rotations + (depth - 1) * (d.segments - 1));
  }
}

TEST_CASE("when a spare descriptor cannot be opened, fdatasyncs run one at a time and every batch still succeeds",
          "[engine][pipeline][faults]") {
  TempDir dir;
  FaultInjectionEnv env;
  TestDb db(env, dir.path(), Depth(2));
  REQUIRE(db.Open().ok());
  env.FailNth(FaultOp::kOpen, 1, Code::kBusy, /*forever=*/false, "seg-");
  SyncGate gate(env);
  Batch a = Puts({"a1"}, "va");
  Batch b = Puts({"b1"}, "vb");
  db.writer().Submit(a.ops);
  REQUIRE(gate.WaitEntered(1));
  CHECK_FALSE(db.writer().SyncRoom());  // one descriptor: one sync at a time
  db.writer().Submit(b.ops);
  usleep(20000);
  CHECK_FALSE(gate.WaitEntered(2, std::chrono::milliseconds(0)));
  gate.Release();
  REQUIRE(gate.WaitEntered(2));
  gate.Release();
  TakeNext(db, 1, Code::kOk);
  TakeNext(db, 2, Code::kOk);
  CHECK(db.Get("b1").value() == "vb");
}
