// Fault injection through the file seam: EIO on fdatasync, ENOSPC and short
// writes, failures at rotation and while staging large values. Nothing that
// was not durable is acknowledged, and the database always reopens cleanly.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <set>

#include "tests/engine/support/fault_env.h"
#include "tests/engine/support/test_util.h"

using namespace kingx::engine;
using namespace kingx::engine::test;
namespace fs = std::filesystem;

namespace {

std::vector<WriteResult> PutBatch(TestDb& db, const std::vector<std::string>& keys, const std::string& value) {
  std::vector<WriteOp> ops(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    ops[i].key = keys[i];
    ops[i].stored = value;
    ops[i].raw_len = value.size();
  }
  std::vector<WriteResult> r(keys.size());
  db.writer().Apply(ops, r);
  return r;
}

uint64_t ActiveSegmentSize(const std::string& dir) { return fs::file_size(SegmentFiles(dir).back()); }

}  // namespace

TEST_CASE("an fdatasync failure fails the whole batch, publishes nothing and makes the writer read-only",
          "[engine][faults]") {
  TempDir dir;
  FaultInjectionEnv env;
  TestDb db(env, dir.path(), Options{});
  REQUIRE(db.Open().ok());
  REQUIRE(db.Put("before", "ok").status.ok());
  env.FailNth(FaultOp::kSync, 1, Code::kIOError);
  auto r = PutBatch(db, {"a", "b", "c"}, "lost");
  for (const auto& x : r) REQUIRE(x.status.Is(Code::kIOError));
  CHECK(env.FaultsFired() == 1);
  CHECK(db.writer().read_only());
  CHECK(db.Get("a").status().Is(Code::kNotFound));  // never published
  CHECK(db.Put("later", "x").status.Is(Code::kReadOnly));
  CHECK(db.Delete("before").status.Is(Code::kReadOnly));
  CHECK(db.writer().Sync().Is(Code::kReadOnly));
  CHECK(db.Get("before").value() == "ok");  // reads go on
  // Power loss after the failure: the batch was never durable, so it is gone;
  // the reopened database writes again.
  db.Close();
  REQUIRE(env.DropUnsynced().ok());
  env.ClearFaults();
  REQUIRE(db.Open().ok());
  CHECK(db.Get("before").value() == "ok");
  for (const char* k : {"a", "b", "c"}) CHECK(db.Get(k).status().Is(Code::kNotFound));
  CHECK(db.Put("after", "y").status.ok());
  CHECK(db.writer().Stats().corruptions == 0);
}

TEST_CASE("ENOSPC on write fails the batch, removes the partial bytes, and later writes succeed",
          "[engine][faults]") {
  const bool short_write = GENERATE(false, true);
  TempDir dir;
  FaultInjectionEnv env;
  TestDb db(env, dir.path(), Options{});
  REQUIRE(db.Open().ok());
  REQUIRE(db.Put("before", "ok").status.ok());
  const uint64_t size = ActiveSegmentSize(dir.path());
  if (short_write) env.ShortWriteNth(1, 30, Code::kNoSpace);
  else env.FailNth(FaultOp::kWrite, 1, Code::kNoSpace);
  auto r = PutBatch(db, {"a", "b"}, std::string(500, 'v'));
  for (const auto& x : r) REQUIRE(x.status.Is(Code::kNoSpace));
  CHECK_FALSE(db.writer().read_only());
  CHECK(ActiveSegmentSize(dir.path()) == size);  // the partial bytes were truncated away
  CHECK(db.Get("a").status().Is(Code::kNotFound));
  REQUIRE(db.Put("after", "fits").status.ok());
  REQUIRE(db.Open().ok());
  CHECK(db.Get("before").value() == "ok");
  CHECK(db.Get("after").value() == "fits");
  CHECK(db.Get("a").status().Is(Code::kNotFound));
  CHECK(db.writer().Stats().corruptions == 0);
}

TEST_CASE("a short write with EIO is not acknowledged and a failed truncate stops the writer",
          "[engine][faults]") {
  TempDir dir;
  FaultInjectionEnv env;
  TestDb db(env, dir.path(), Options{});
  REQUIRE(db.Open().ok());
  env.ShortWriteNth(1, 45, Code::kIOError);
  env.FailNth(FaultOp::kTruncate, 1, Code::kIOError);
  CHECK(db.Put("k", std::string(100, 'x')).status.Is(Code::kIOError));
  CHECK(db.writer().read_only());  // the log may now end in garbage: stop writing
  db.Close();
  env.ClearFaults();
  REQUIRE(db.Open().ok());  // the torn bytes are a torn tail for recovery
  CHECK(db.Get("k").status().Is(Code::kNotFound));
  CHECK(db.Put("k", "v").status.ok());
}

TEST_CASE("a failure to create the next segment fails only the ops that needed it", "[engine][faults]") {
  TempDir dir;
  FaultInjectionEnv env;
  Options o;
  o.segment_bytes = 4096;
  TestDb db(env, dir.path(), o);
  REQUIRE(db.Open().ok());
  const std::string value = MakeValue("v", 1, 1000, false);  // incompressible: 3 fit a segment
  int ok = 0;
  for (; ok < 3; ++ok) REQUIRE(db.Put("k" + std::to_string(ok), value).status.ok());
  env.FailNth(FaultOp::kCreate, 1, Code::kNoSpace);
  WriteResult r = db.Put("k3", value);  // needs a new segment
  INFO(r.status.ToString());
  CHECK(r.status.Is(Code::kNoSpace));
  CHECK_FALSE(db.writer().read_only());
  REQUIRE(db.Put("k4", value).status.ok());  // creation retried
  Status reopen = db.Open();
  INFO(reopen.ToString());
  REQUIRE(reopen.ok());
  CHECK(db.Get("k3").status().Is(Code::kNotFound));
  for (const char* k : {"k0", "k1", "k2", "k4"}) CHECK(db.Get(k).value() == value);
}

TEST_CASE("a large value whose sync fails is not published and leaves no file behind", "[engine][faults]") {
  TempDir dir;
  FaultInjectionEnv env;
  TestDb db(env, dir.path(), Options{});
  REQUIRE(db.Open().ok());
  WriteOp head;
  head.key = "big";
  auto id = db.writer().BeginLarge(head);
  REQUIRE(id.ok());
  REQUIRE(db.writer().AppendLarge(id.value(), std::string(100000, 'x')).ok());
  env.FailNth(FaultOp::kSync, 1, Code::kIOError);
  WriteResult r;
  db.writer().FinishLarge(id.value(), 100000, &r);
  CHECK(r.status.Is(Code::kIOError));
  CHECK(db.Get("big").status().Is(Code::kNotFound));
  CHECK(db.writer().read_only());
  for (const auto& e : fs::directory_iterator(dir.path())) CHECK(e.path().extension() != ".tmp");
  db.Close();
  env.ClearFaults();
  REQUIRE(db.Open().ok());
  CHECK(db.Get("big").status().Is(Code::kNotFound));
}

TEST_CASE("failing the Nth write or sync of a workload: acknowledged writes survive, failed ones do not",
          "[engine][faults]") {
  // SQLite-style: for N = 1, 2, ... fail the Nth call of one kind until the
  // workload runs through without meeting the fault.
  const FaultOp op = GENERATE(FaultOp::kWrite, FaultOp::kSync, FaultOp::kSyncDir);
  Options o;
  o.segment_bytes = 4096;
  for (uint64_t n = 1; n < 400; ++n) {
    TempDir dir;
    FaultInjectionEnv env;
    TestDb db(env, dir.path(), o);
    REQUIRE(db.Open().ok());
    env.FailNth(op, n, op == FaultOp::kWrite ? Code::kNoSpace : Code::kIOError);
    std::map<std::string, std::string> acked;
    std::set<std::string> failed;
    for (int i = 0; i < 40; ++i) {
      std::string k = "k" + std::to_string(i % 25);
      std::string v = MakeValue(k, i, 100 + i * 7, false);
      WriteResult r = db.Put(k, v);
      if (r.status.ok()) {
        acked[k] = v;
        failed.erase(k);
      } else {
        failed.insert(k);
      }
    }
    const bool fired = env.FaultsFired() > 0;
    db.Close();
    env.ClearFaults();
    REQUIRE(env.DropUnsynced().ok());  // and a power loss on top
    INFO("op " << static_cast<int>(op) << " n " << n);
    Status open = db.Open();
    INFO(open.ToString());
    REQUIRE(open.ok());
    for (const auto& [k, v] : acked) {
      auto got = db.Get(k);
      REQUIRE(got.ok());
      if (!failed.count(k)) REQUIRE(got.value() == v);
    }
    REQUIRE(db.writer().Stats().corruptions == 0);
    if (!fired) break;
  }
}
