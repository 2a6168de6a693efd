// Pipelined group commit (Writer::Submit / TakeFinished): a batch written
// while an earlier batch's fdatasync is in flight is acknowledged only after
// an fdatasync that started after it was written returned success; when the
// pipelined fdatasync fails, nothing it covers and nothing written after it
// is acknowledged as durable, and the writer never syncs again. The sync
// thread is held at its fdatasync through the fault env's sync hook.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/compaction.h"
#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/pipeline.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;

namespace {

// Waits (bounded: 30 s) until no fdatasync of submitted batches runs or waits.
bool WaitSyncIdle(TestDb& db) {
  for (int i = 0; i < 120000; ++i) {
    if (db.writer().SyncIdle()) return true;
    usleep(1000);
  }
  return false;
}

// How often the thread of this process named `name` has slept and been woken
// (voluntary_ctxt_switches of /proc/self/task/TID/status); -1 without one.
long WakeUps(const std::string& name) {
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(e.path() / "comm");
    std::string n;
    if (!std::getline(comm, n) || n != name) continue;
    std::ifstream status(e.path() / "status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) return std::stol(line.substr(24));
    }
  }
  return -1;
}

// The names of this process's threads (/proc/self/task/TID/comm).
std::vector<std::string> ThreadNames() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream in(e.path() / "comm");
    std::string name;
    if (std::getline(in, name)) names.push_back(name);
  }
  return names;
}

// An open database on a fault-injecting Env whose sync thread's returns are
// counted (Options::on_synced).
struct SyncCountedDb {
  static Options Counting(std::atomic<int>* returned) {
    Options o;
    o.on_synced = [returned] { returned->fetch_add(1); };
    return o;
  }
  TempDir dir;
  FaultInjectionEnv env;
  std::atomic<int> syncs_returned{0};
  TestDb db{env, dir.path(), Counting(&syncs_returned)};
};

}  // namespace

TEST_CASE("the fdatasync of submitted batches runs on a thread named kingx-sync, told apart from outside",
          "[engine][pipeline]") {
  TempDir dir;
  FaultInjectionEnv env;
  TestDb db(env, dir.path(), Options{});
  REQUIRE(db.Open().ok());
  SyncGate gate(env);
  Batch a = Puts({"a1"}, "va");
  CHECK(db.writer().Submit(a.ops) == 1);
  REQUIRE(gate.WaitEntered(1));  // the sync thread is in its fdatasync
  const std::vector<std::string> names = ThreadNames();
  CHECK(std::count(names.begin(), names.end(), "kingx-sync") == 1);
  gate.Open();
  TakeNext(db, 1, Code::kOk);
}

TEST_CASE("a batch written while the previous fdatasync runs is acknowledged only after a later fdatasync returns",
          "[engine][pipeline]") {
  // Or written once A's fdatasync returned (SyncIdle) but before A is taken:
  // the writer loop's turnaround.
  const bool after_a_synced = GENERATE(false, true);
  TempDir dir;
  FaultInjectionEnv env;
  TestDb db(env, dir.path(), Options{});
  REQUIRE(db.Open().ok());
  SyncGate gate(env);
  Batch a = Puts({"a1", "a2"}, "va");
  Batch b = Puts({"b1"}, "vb");
  CHECK(db.writer().SyncIdle());            // nothing in flight
  CHECK(db.writer().Submit(a.ops) == 1);
  REQUIRE(gate.WaitEntered(1));             // A's fdatasync is in flight
  CHECK_FALSE(db.writer().SyncIdle());
  if (after_a_synced) {
    gate.Release();
    REQUIRE(WaitSyncIdle(db));              // A's fdatasync returned; A is not taken
    CHECK(db.Get("a1").status().Is(Code::kNotFound));
  }
  const uint64_t writes = env.Calls(FaultOp::kWrite, "seg-");
  CHECK(db.writer().Submit(b.ops) == 2);    // B is written meanwhile
  CHECK(env.Calls(FaultOp::kWrite, "seg-") > writes);
  if (!after_a_synced) {
    CHECK_FALSE(Take(db, false).got);       // nothing is durable yet
    CHECK(db.Get("a1").status().Is(Code::kNotFound));
    gate.Release();                         // the sync that started before B was written returns
  }
  REQUIRE(gate.WaitEntered(2));             // B's own sync is in flight
  CHECK_FALSE(db.writer().SyncIdle());
  Taken first = Take(db, false);
  REQUIRE(first.got);
  CHECK(first.ticket == 1);
  CHECK(AllOk(first));
  CHECK(db.Get("a2").value() == "va");
  CHECK_FALSE(Take(db, false).got);         // B: its covering sync has not returned
  CHECK(db.Get("b1").status().Is(Code::kNotFound));
  gate.Release();
  Taken second = Take(db, true);
  REQUIRE(second.got);
  CHECK(second.ticket == 2);
  CHECK(AllOk(second));
  CHECK(db.Get("b1").value() == "vb");
  CHECK(db.writer().Unfinished() == 0);
}

TEST_CASE("when the pipelined fdatasync fails, nothing it covers or written after it is acknowledged as durable",
          "[engine][pipeline][faults]") {
  const bool power_loss = GENERATE(false, true);
  TempDir dir;
  FaultInjectionEnv env;
  TestDb db(env, dir.path(), Options{});
  REQUIRE(db.Open().ok());
  REQUIRE(db.Put("before", "ok").status.ok());
  Batch a = Puts({"a1"}, "va");
  Batch b = Puts({"b1", "b2"}, "vb");
  Batch c = Puts({"c1"}, "vc");
  Batch d = Puts({"d1"}, "vd");
  uint64_t segment_syncs = 0;
  {
    SyncGate gate(env);
    db.writer().Submit(a.ops);
    REQUIRE(gate.WaitEntered(1));
    // Counted from here: A's sync (held before its fault check) is the 1st,
    // B's (the pipelined one) the 2nd.
    env.FailNth(FaultOp::kSync, 2, Code::kIOError, /*forever=*/false, "seg-");
    db.writer().Submit(b.ops);
    gate.Release();
    REQUIRE(gate.WaitEntered(2));           // B's sync is in flight
    db.writer().Submit(c.ops);              // C is written while it runs
    WriteOp missing;                        // and a batch that writes nothing
    missing.type = OpType::kDelete;
    missing.key = "c1";                     // its answer rests on C, in flight
    missing.condition.kind = Condition::Kind::kIfMatch;
    missing.condition.seq = 1;
    std::vector<WriteOp> refused = {missing};
    db.writer().Submit(refused);
    gate.Open();                            // B's sync fails
    Taken ta = Take(db, true);
    REQUIRE(ta.got);
    CHECK(ta.ticket == 1);
    CHECK(AllOk(ta));                       // A's own sync had returned success
    Taken tb = Take(db, true);
    REQUIRE(tb.got);
    CHECK(tb.ticket == 2);
    for (const WriteResult& r : tb.results) CHECK(r.status.Is(Code::kOutcomeUnknown));
    Taken tc = Take(db, true);
    REQUIRE(tc.got);
    CHECK(tc.ticket == 3);
    for (const WriteResult& r : tc.results) CHECK(r.status.Is(Code::kOutcomeUnknown));
    // Decided against C (412: another version) but finished behind it: C's
    // outcome is unknown, so is this answer.
    Taken tr = Take(db, true);
    REQUIRE(tr.got);
    CHECK(tr.ticket == 4);
    REQUIRE(tr.results.size() == 1);
    CHECK(tr.results[0].status.Is(Code::kOutcomeUnknown));
    CHECK(env.FaultsFired() == 1);
    CHECK(db.writer().read_only());
    // Later batches are refused; no fdatasync is ever tried again.
    segment_syncs = env.Calls(FaultOp::kSync, "seg-");
    db.writer().Submit(d.ops);
    Taken td = Take(db, true);
    REQUIRE(td.got);
    for (const WriteResult& r : td.results) CHECK(r.status.Is(Code::kReadOnly));
    CHECK(env.Calls(FaultOp::kSync, "seg-") == segment_syncs);
  }
  for (const char* k : {"b1", "b2", "c1", "d1"}) {
    INFO(k);
    CHECK(db.Get(k).status().Is(Code::kNotFound));  // never published
  }
  CHECK(db.Get("a1").value() == "va");
  db.Close();
  CHECK(env.Calls(FaultOp::kSync, "seg-") == segment_syncs);  // not even at close
  if (power_loss) REQUIRE(env.DropUnsynced().ok());
  env.ClearFaults();
  REQUIRE(db.Open().ok());
  CHECK(db.Get("before").value() == "ok");
  CHECK(db.Get("a1").value() == "va");
  // B (written while A's sync was held) and C were written after every sync
  // that returned began: a power loss drops them.
  for (const char* k : {"b1", "c1"}) {
    INFO(k);
    if (power_loss) CHECK(db.Get(k).status().Is(Code::kNotFound));
    else CHECK(db.Get(k).ok());
  }
  CHECK(db.Get("d1").status().Is(Code::kNotFound));
  CHECK(db.writer().Stats().corruptions == 0);
}

TEST_CASE("a batch that rotates behind a failed pipelined fdatasync writes nothing: not after the failure, not over "
          "the failed batch's bytes",
          "[engine][pipeline][faults]") {
  // C's first op is encoded, its second does not fit in the segment: C
  // drains the pipeline before the rotation, and A's fdatasync fails then.
  // The writer is read-only from that moment: C's first record must not be
  // written (it would go where A's records are, behind A's bytes only as far
  // as the active segment's committed size, while an earlier fdatasync may
  // still be carrying A's pages to the disk: a power loss could then leave a
  // record of A's with a valid header over C's bytes, a damaged record whose
  // seq hides the key's acknowledged value).
  const uint32_t depth = GENERATE(1u, 2u);  // one fdatasync in flight is enough
  TempDir dir;
  FaultInjectionEnv env;
  Options o;
  o.sync_depth = depth;
  o.segment_bytes = 64 << 10;
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  REQUIRE(db.Put("c1", "acknowledged").status.ok());
  Batch a = Puts({"a1"}, "va");
  const std::string small = "vc", large(o.segment_bytes - 100, 'c');
  std::vector<WriteOp> c(2);
  c[0].key = "c1";
  c[0].stored = small;
  c[0].raw_len = small.size();
  c[1].key = "c2";
  c[1].stored = large;
  c[1].raw_len = large.size();
  {
    SyncGate gate(env, ".kxd");
    REQUIRE(db.writer().Submit(a.ops) == 1);
    REQUIRE(gate.WaitEntered(1));  // A's fdatasync runs
    std::atomic<bool> submitting{false};
    uint64_t ticket = 0;
    std::thread submit_c([&] {
      submitting = true;
      ticket = db.writer().Submit(c);
    });
    REQUIRE(WaitUntil([&] { return submitting.load(); }));
    usleep(300 * 1000);  // C now waits in the drain for A's fdatasync (no I/O before it)
    const uint64_t writes = env.Calls(FaultOp::kWrite, ".kxd");
    env.FailNth(FaultOp::kSync, 1, Code::kIOError, /*forever=*/false, ".kxd");
    gate.ReleaseNth(1);
    submit_c.join();
    CHECK(ticket == 2);
    CHECK(env.Calls(FaultOp::kWrite, ".kxd") == writes);  // nothing written after the failure
    TakeNext(db, 1, Code::kOutcomeUnknown);
    TakeNext(db, 2, Code::kReadOnly);  // refused, not written: the client may retry knowing it was not applied
  }
  db.Close();
  REQUIRE(env.DropUnsynced().ok());
  REQUIRE(db.Open().ok());
  CHECK(db.Get("c1").value() == "acknowledged");
  CHECK(db.Get("c2").status().Is(Code::kNotFound));
  CHECK(db.writer().Stats().corruptions == 0);
}

TEST_CASE("conditions of a submitted batch see the ops still in flight", "[engine][pipeline]") {
  TempDir dir;
  FaultInjectionEnv env;
  TestDb db(env, dir.path(), Options{});
  REQUIRE(db.Open().ok());
  SyncGate gate(env);
  Batch a = Puts({"k", "gone"}, "v1");
  db.writer().Submit(a.ops);
  REQUIRE(gate.WaitEntered(1));
  // k and gone exist only in flight: a create of k must fail, a delete of gone succeed.
  Batch b = Puts({"k", "new"}, "v2");
  b.ops[0].condition.kind = Condition::Kind::kIfAbsent;
  WriteOp del;
  del.type = OpType::kDelete;
  del.key = "gone";
  b.ops.push_back(del);
  db.writer().Submit(b.ops);
  // A batch refused outright still finishes behind the ones in flight.
  Batch again = Puts({"k"}, "v3");
  again.ops[0].condition.kind = Condition::Kind::kIfAbsent;
  db.writer().Submit(again.ops);
  CHECK_FALSE(Take(db, false).got);
  gate.Open();
  Taken ta = Take(db, true);
  Taken tb = Take(db, true);
  Taken tc = Take(db, true);
  REQUIRE(ta.got);
  REQUIRE(tb.got);
  REQUIRE(tc.got);
  CHECK(ta.ticket == 1);
  CHECK(tb.ticket == 2);
  CHECK(tc.ticket == 3);
  REQUIRE(tc.results.size() == 1);
  CHECK(tc.results[0].status.Is(Code::kPreconditionFailed));
  CHECK(AllOk(ta));
  REQUIRE(tb.results.size() == 3);
  CHECK(tb.results[0].status.Is(Code::kPreconditionFailed));
  CHECK(tb.results[1].status.ok());
  CHECK(tb.results[2].status.ok());
  CHECK(tb.results[2].existed);
  CHECK(db.Get("k").value() == "v1");
  CHECK(db.Get("gone").status().Is(Code::kNotFound));
  db.Close();
  REQUIRE(db.Open().ok());
  CHECK(db.Get("k").value() == "v1");
  CHECK(db.Get("new").value() == "v2");
  CHECK(db.Get("gone").status().Is(Code::kNotFound));
}

TEST_CASE("submitted batches across segment rotations finish in order with every record", "[engine][pipeline]") {
  TempDir dir;
  FaultInjectionEnv env;
  Options o;
  o.segment_bytes = 4096;
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  std::vector<Batch> batches;
  batches.reserve(200);
  uint64_t taken = 0;
  for (int i = 0; i < 200; ++i) {
    batches.push_back(Puts({"key" + std::to_string(i % 50), "other" + std::to_string(i)},
                           std::string(100 + i, static_cast<char>('a' + i % 26))));
    CHECK(db.writer().Submit(batches.back().ops) == uint64_t(i) + 1);
    Taken t = Take(db, i % 3 == 0);
    while (t.got) {
      CHECK(t.ticket == ++taken);
      CHECK(AllOk(t));
      t = Take(db, false);
    }
  }
  for (Taken t = Take(db, true); t.got; t = Take(db, true)) {
    CHECK(t.ticket == ++taken);
    CHECK(AllOk(t));
  }
  CHECK(taken == 200);
  CHECK(SegmentFiles(dir.path()).size() > 10);
  for (int pass = 0; pass < 2; ++pass) {
    for (int k = 0; k < 50; ++k) {
      const int last = 150 + k;  // the last batch that wrote key k
      CHECK(db.Get("key" + std::to_string(k)).value() == std::string(100 + last, static_cast<char>('a' + last % 26)));
    }
    CHECK(db.Get("other199").value() == std::string(299, static_cast<char>('a' + 199 % 26)));
    db.Close();
    REQUIRE(db.Open().ok());
  }
}

TEST_CASE("a batch submitted after a failed fdatasync not taken yet is refused, not written",
          "[engine][pipeline][faults]") {
  // Seen through SyncIdle (the writer loop's way) or not seen at all before
  // the next Submit (the sync thread's callback says it returned).
  const bool ask_idle = GENERATE(true, false);
  SyncCountedDb f;
  auto& [dir, env, syncs_returned, db] = f;
  REQUIRE(db.Open().ok());
  Batch a = Puts({"a1"}, "va");
  Batch b = Puts({"b1"}, "vb");
  {
    SyncGate gate(env);
    db.writer().Submit(a.ops);
    REQUIRE(gate.WaitEntered(1));
    env.FailNth(FaultOp::kSync, 1, Code::kIOError, /*forever=*/false, "seg-");  // A's (held before its check)
    gate.Open();
  }
  if (ask_idle) {
    REQUIRE(WaitSyncIdle(db));              // failed, not taken
    CHECK(db.writer().read_only());
  } else {
    for (int i = 0; i < 120000 && syncs_returned.load() == 0; ++i) usleep(1000);
    REQUIRE(syncs_returned.load() == 1);
  }
  const uint64_t writes = env.Calls(FaultOp::kWrite, "seg-");
  db.writer().Submit(b.ops);
  CHECK(env.Calls(FaultOp::kWrite, "seg-") == writes);  // nothing of B written behind the failure
  TakeNext(db, 1, Code::kOutcomeUnknown);
  TakeNext(db, 2, Code::kReadOnly);
  CHECK(db.writer().read_only());
  CHECK(db.Get("a1").status().Is(Code::kNotFound));
  CHECK(db.Get("b1").status().Is(Code::kNotFound));
  // The sync thread reported its one fdatasync once, and nothing since (it
  // does not spin on the request the failure left uncovered). It reports
  // after publishing the failure, so SyncIdle may have seen it first.
  for (int i = 0; i < 120000 && syncs_returned.load() == 0; ++i) usleep(1000);
  CHECK(syncs_returned.load() == 1);
  db.Close();
  env.ClearFaults();
  REQUIRE(db.Open().ok());
  CHECK(db.Get("b1").status().Is(Code::kNotFound));
}

TEST_CASE("a batch whose fdatasync its caller runs is final when SyncSubmitted returns, with no thread woken",
          "[engine][pipeline]") {
  SyncCountedDb f;
  auto& [dir, env, syncs_returned, db] = f;
  REQUIRE(db.Open().ok());
  std::atomic<int> synced_here{0}, synced_elsewhere{0};
  const std::thread::id caller = std::this_thread::get_id();
  env.SetSyncHook([&](const std::string& path) {
    if (path.find("seg-") == std::string::npos) return;
    (std::this_thread::get_id() == caller ? synced_here : synced_elsewhere).fetch_add(1);
  });
  Batch a = Puts({"a1", "a2"}, "va");
  CHECK(db.writer().Submit(a.ops, Writer::SyncBy::kCaller) == 1);
  usleep(20000);  // time for a sync thread that was (wrongly) woken to run
  CHECK_FALSE(db.writer().SyncIdle());  // requested, not run
  CHECK_FALSE(Take(db, false).got);
  CHECK(db.Get("a1").status().Is(Code::kNotFound));
  CHECK(synced_elsewhere.load() == 0);
  CHECK(db.writer().SyncSubmitted());
  CHECK(synced_here.load() == 1);
  CHECK(db.writer().SyncIdle());
  Taken t = Take(db, false);  // final without waiting
  REQUIRE(t.got);
  CHECK(t.ticket == 1);
  CHECK(AllOk(t));
  CHECK(db.Get("a2").value() == "va");
  CHECK_FALSE(db.writer().SyncSubmitted());  // nothing in flight
  CHECK(syncs_returned.load() == 0);          // the caller knows: no callback
  CHECK(synced_elsewhere.load() == 0);
  CHECK(db.writer().Stats().syncs >= 1);      // counted as the thread's are
  // More of them: no sync thread wakes for them (none is started for a sync
  // its caller runs: -1 before and after; one started meanwhile would
  // sleep through them all).
  const long sync_thread_wakeups = WakeUps("kingx-sync");
  Batch more = Puts({"m1"}, "vm");
  for (uint64_t ticket = 2; ticket <= 21; ++ticket) {
    CHECK(db.writer().Submit(more.ops, Writer::SyncBy::kCaller) == ticket);
    CHECK(db.writer().SyncSubmitted());
    TakeNext(db, ticket, Code::kOk);
  }
  CHECK(WakeUps("kingx-sync") == sync_thread_wakeups);
  CHECK(synced_here.load() == 21);
  CHECK(synced_elsewhere.load() == 0);
  env.SetSyncHook({});
  db.Close();
  REQUIRE(db.Open().ok());
  CHECK(db.Get("a1").value() == "va");
}

TEST_CASE("a batch left for its caller to sync is made durable by the sync thread when another thread waits first",
          "[engine][pipeline]") {
  // Waiting for the batch (TakeFinished) or for the writer's lock (Sync):
  // either one drains. Had the deferred request no way to the sync thread,
  // the waiter would hang; it is given 20 s, then the test unblocks it.
  const bool wait_by_take = GENERATE(true, false);
  SyncCountedDb f;
  auto& [dir, env, syncs_returned, db] = f;
  REQUIRE(db.Open().ok());
  Batch a = Puts({"a1"}, "va");
  CHECK(db.writer().Submit(a.ops, Writer::SyncBy::kCaller) == 1);
  std::atomic<bool> done{false};
  Taken t;
  Status synced;
  std::thread waiter([&] {
    if (wait_by_take) {
      t = Take(db, true);
    } else {
      synced = db.writer().Sync();
    }
    done.store(true);
  });
  for (int i = 0; i < 120000 && !done.load(); ++i) usleep(1000);
  const bool drained_alone = done.load();
  if (!drained_alone) (void)db.writer().SyncSubmitted();  // lets the waiter go so that the test ends
  waiter.join();
  REQUIRE(drained_alone);
  // The sync thread ran it. It reports after publishing the outcome (which is
  // what let the waiter go), so its report may come a moment later.
  for (int i = 0; i < 120000 && syncs_returned.load() == 0; ++i) usleep(1000);
  CHECK(syncs_returned.load() >= 1);
  if (wait_by_take) {
    REQUIRE(t.got);
    CHECK(t.ticket == 1);
    CHECK(AllOk(t));
  } else {
    CHECK(synced.ok());
    TakeNext(db, 1, Code::kOk);
  }
  CHECK_FALSE(db.writer().SyncSubmitted());  // the caller's late call finds nothing to do
  CHECK(db.Get("a1").value() == "va");
}

TEST_CASE("when the fdatasync its caller runs fails, the batch's outcome is unknown and nothing more is written",
          "[engine][pipeline][faults]") {
  TempDir dir;
  FaultInjectionEnv env;
  TestDb db(env, dir.path(), Options{});
  REQUIRE(db.Open().ok());
  Batch a = Puts({"a1"}, "va");
  Batch b = Puts({"b1"}, "vb");
  env.FailNth(FaultOp::kSync, 1, Code::kIOError, /*forever=*/false, "seg-");
  CHECK(db.writer().Submit(a.ops, Writer::SyncBy::kCaller) == 1);
  CHECK(db.writer().SyncSubmitted());
  TakeNext(db, 1, Code::kOutcomeUnknown);
  CHECK(db.writer().read_only());
  const uint64_t writes = env.Calls(FaultOp::kWrite, "seg-");
  const uint64_t syncs = env.Calls(FaultOp::kSync, "seg-");
  CHECK(db.writer().Submit(b.ops, Writer::SyncBy::kCaller) == 2);
  CHECK_FALSE(db.writer().SyncSubmitted());
  TakeNext(db, 2, Code::kReadOnly);
  CHECK(env.Calls(FaultOp::kWrite, "seg-") == writes);  // nothing of B written behind the failure
  CHECK(env.Calls(FaultOp::kSync, "seg-") == syncs);    // and no fdatasync retried
  db.Close();
  env.ClearFaults();
  REQUIRE(db.Open().ok());
  CHECK(db.Get("b1").status().Is(Code::kNotFound));  // a1's outcome is unknown: either is right
}

TEST_CASE("a compaction pass that waits for the fdatasync in flight does not hold back a batch an earlier sync "
          "covered",
          "[engine][pipeline][compaction][regression]") {
  // Regression: a holder of the writer's lock that drains (a compaction
  // pass's first step) waited for the fdatasync in flight while holding the
  // lock, so the batch an earlier fdatasync had already covered could not be
  // taken until the later one returned: its answer waited one sync more (with
  // a stalled disk, until the stall ended). The writer loop's turnaround: A
  // synced, B written, its sync left to the caller; the pass starts before A
  // is taken. Its drain hands B's sync to the sync thread, which the gate
  // holds. Either kind of pass; B's sync returning or failing.
  const PassKind kind = GENERATE(PassKind::kNormal, PassKind::kDeadOnly);
  const bool b_sync_fails = GENERATE(false, true);
  TempDir dir;
  FaultInjectionEnv env;
  TestDb db(env, dir.path(), Options{});
  REQUIRE(db.Open().ok());
  Compactor compactor(db.writer(), CompactionOptions{});
  Batch a = Puts({"a1", "a2"}, "va");
  Batch b = Puts({"b1"}, "vb");
  CHECK(db.writer().Submit(a.ops, Writer::SyncBy::kCaller) == 1);
  CHECK(db.writer().SyncSubmitted());  // A is durable, not taken
  SyncGate gate(env);
  if (b_sync_fails) env.FailNth(FaultOp::kSync, 1, Code::kIOError, /*forever=*/false, "seg-");
  CHECK(db.writer().Submit(b.ops, Writer::SyncBy::kCaller) == 2);
  Status pass_status;
  std::thread pass([&] { pass_status = compactor.RunOnce(nullptr, kind); });
  REQUIRE(gate.WaitEntered(1));  // the pass waits for the pipeline: B's sync is held
  // A is taken while B's sync is held. Bounded (120 s): on a writer whose
  // drain keeps the lock the taker would wait for B's sync, so the test
  // lets the gate go and fails instead of hanging.
  std::atomic<bool> taken{false};
  Taken first;
  std::thread taker([&] {
    first = Take(db, false);
    taken.store(true);
  });
  for (int i = 0; i < 120000 && !taken.load(); ++i) usleep(1000);
  const bool taken_while_held = taken.load();
  CHECK_FALSE(db.writer().read_only());  // B's sync has not returned
  gate.Open();
  taker.join();
  pass.join();
  REQUIRE(taken_while_held);
  REQUIRE(first.got);
  CHECK(first.ticket == 1);
  CHECK(AllOk(first));
  CHECK(db.Get("a1").value() == "va");
  // The pass held the lock only once nothing was in flight: B is final, with
  // the outcome of its own sync.
  CHECK(db.writer().SyncIdle());
  TakeNext(db, 2, b_sync_fails ? Code::kOutcomeUnknown : Code::kOk);
  CHECK(db.writer().Unfinished() == 0);
  if (b_sync_fails) {
    CHECK(db.writer().read_only());
    CHECK(pass_status.Is(Code::kReadOnly));  // the pass saw the failure, not a pipeline in flight
    CHECK(db.Get("b1").status().Is(Code::kNotFound));
  } else {
    CHECK(pass_status.ok());
    CHECK(db.Get("b1").value() == "vb");
  }
}
